#!/usr/bin/env escript
%% -*- erlang -*-
%% Riak MAM archive objects as mod_mam_riak_timed_arch_yz (MongooseIM 3.3) writes them, made by
%% this VM, for the Riak suites (run by riak-archive.ts):
%%   bucket  mam_<ISOYEAR>_<WEEK> of the message time, week not zero-padded (calendar:iso_week_number/1)
%%   key     <LOCAL>/<REMOTE>/<MSGID>, MSGID = (microseconds bsl 8) + node id, in decimal
%%           MUC: room bare JID / nick lower-cased (may hold '/') ; MUC Light: room / sender bare JID
%%           PM:  owner bare JID / remote bare JID
%%   packet  the archived element as XML text (exml-like: no declaration, single-quoted attributes)
%% Storage reference §0.2 and §3. Expected answers are not computed here: the suites ask xmerl
%% (the reference tool's own parser) through xmerl-oracle.ts.
%%
%% Usage: objects N SEED OUT
%% Output: per object four length-prefixed (32-bit) fields: bucket, key, packet, kind.
-mode(compile).

-define(MUC_USER, <<"http://jabber.org/protocol/muc#user">>).

main(["objects", N, Seed, Out]) ->
    rand:seed(exsss, list_to_integer(Seed)),
    Objects = [object(I) || I <- lists:seq(1, list_to_integer(N))],
    ok = file:write_file(Out, [[field(B), field(K), field(P), field(atom_to_binary(Kind, utf8))] || {B, K, P, Kind} <- Objects]);
main(Args) -> io:format(standard_error, "riak-archive: bad arguments ~p~n", [Args]), halt(2).

field(Bin) -> [<<(byte_size(Bin)):32>>, Bin].

u(S) -> unicode:characters_to_binary(S).
pick(List) -> lists:nth(rand:uniform(length(List)), List).

%% Messages over seven weeks around New Year 2019 (ISO year 2019 starts on 2018-12-31) and a few in June.
timestamp_us() ->
    Start = calendar:datetime_to_gregorian_seconds({{2018, 12, 10}, {0, 0, 0}}) - 62167219200,
    Base = case rand:uniform(10) of 1 -> Start + 190 * 86400; _ -> Start end,
    (Base + rand:uniform(49 * 86400)) * 1000000 + rand:uniform(999999).

bucket_of(Us) ->
    {Date, _} = calendar:gregorian_seconds_to_datetime(Us div 1000000 + 62167219200),
    {Year, Week} = calendar:iso_week_number(Date),
    iolist_to_binary(["mam_", integer_to_list(Year), "_", integer_to_list(Week)]).

object(_I) ->
    Us = timestamp_us(),
    Id = integer_to_binary((Us bsl 8) + rand:uniform(256) - 1),
    Bucket = bucket_of(Us),
    R = rand:uniform(100),
    {Kind, Local, Remote, Packet} = if
        R =< 60 -> muc();
        R =< 68 -> muc_light();
        R =< 80 -> chat();
        R =< 83 -> pm_groupchat_copy();
        R =< 86 -> broken(no_jid);
        R =< 89 -> broken(two_items);
        R =< 92 -> broken(truncated);
        R =< 94 -> broken(jid_without_user);
        true -> muc_slash_nick()
    end,
    {Bucket, <<Local/binary, "/", Remote/binary, "/", Id/binary>>, Packet, Kind}.

rooms() -> [<<"coven@chat.shakespeare.lit">>, <<"lobby@muc.localhost">>, u("pokój@konferencja.przykład.pl")].
users() -> [<<"alice">>, <<"Alice">>, <<"BOB">>, u("gżegżółka"), u("ŻANETA"), <<"o'brien">>, <<"a&b">>].
domains() -> [<<"localhost">>, <<"Example.COM">>, u("brzęczyszczykiewicz.pl")].

real_jid() ->
    Bare = <<(pick(users()))/binary, "@", (pick(domains()))/binary>>,
    case rand:uniform(3) of 1 -> Bare; _ -> <<Bare/binary, "/", (pick([<<"Phone">>, <<"res-1">>, u("Zasób")]))/binary>> end.

lower_bare(Jid) -> [Bare | _] = string:split(string:lowercase(Jid), "/"), Bare.

body() -> {xmlel, <<"body">>, [], [{xmlcdata, pick([<<"hello <all> & 'you'">>, u("Zażółć gęślą jaźń"), <<"ok">>])}]}.
item(Attrs) -> {xmlel, <<"item">>, Attrs, []}.
muc_x(Items) -> {xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], Items}.
item_for(Jid) -> item([{<<"affiliation">>, pick([<<"owner">>, <<"member">>, <<"none">>])}, {<<"jid">>, Jid}, {<<"role">>, <<"participant">>}]).

groupchat(From, Children) ->
    {xmlel, <<"message">>, [{<<"from">>, From}, {<<"id">>, integer_to_binary(rand:uniform(1 bsl 40))}, {<<"type">>, <<"groupchat">>}], Children}.

muc() ->
    Room = pick(rooms()),
    Nick = pick([<<"firstwitch">>, <<"Bob">>, u("Żaneta")]),
    {muc, Room, string:lowercase(Nick), to_xml(groupchat(<<Room/binary, "/", Nick/binary>>, [body(), muc_x([item_for(real_jid())])]))}.

%% A nick holding '/': the key's middle part then holds '/' too.
muc_slash_nick() ->
    Room = pick(rooms()),
    Nick = pick([<<"a/b">>, <<"Dr/Who/2">>, u("ża/ba")]),
    {muc_slash_nick, Room, string:lowercase(Nick), to_xml(groupchat(<<Room/binary, "/", Nick/binary>>, [body(), muc_x([item_for(real_jid())])]))}.

%% MUC Light: from = room/SENDER_BARE_JID, role = affiliation; the key's nick is the sender's bare JID.
muc_light() ->
    Room = <<"team@muclight.localhost">>,
    Sender = lower_bare(real_jid()),
    Item = item([{<<"affiliation">>, <<"member">>}, {<<"jid">>, Sender}, {<<"role">>, <<"member">>}]),
    {muc_light, Room, Sender, to_xml(groupchat(<<Room/binary, "/", Sender/binary>>, [body(), muc_x([Item])]))}.

%% One-to-one chat in the owner's archive.
chat() ->
    Owner = lower_bare(real_jid()),
    Remote = lower_bare(real_jid()),
    Packet = {xmlel, <<"message">>, [{<<"from">>, Remote}, {<<"to">>, Owner}, {<<"type">>, <<"chat">>}], [body()]},
    {chat, Owner, Remote, to_xml(Packet)}.

%% archive_groupchats: a room message copied into a user's PM archive, without the muc#user x.
pm_groupchat_copy() ->
    Owner = lower_bare(real_jid()),
    Room = pick(rooms()),
    {pm_groupchat_copy, Owner, Room, to_xml(groupchat(<<Room/binary, "/nick">>, [body()]))}.

broken(Kind) ->
    Room = pick(rooms()),
    From = <<Room/binary, "/ghost">>,
    Packet = case Kind of
        no_jid -> to_xml(groupchat(From, [body(), muc_x([item([{<<"role">>, <<"none">>}])])]));
        two_items -> to_xml(groupchat(From, [muc_x([item_for(<<"a@b">>), item_for(<<"c@d">>)])]));
        truncated -> Full = to_xml(groupchat(From, [body(), muc_x([item_for(real_jid())])])),
                     binary:part(Full, 0, byte_size(Full) - 9);
        jid_without_user -> to_xml(groupchat(From, [body(), muc_x([item_for(<<"conference.localhost/bot">>)])]))
    end,
    {Kind, Room, <<"ghost">>, Packet}.

to_xml({xmlel, Name, Attrs, Children}) ->
    A = [[" ", K, "='", escape_attr(V), "'"] || {K, V} <- Attrs],
    case Children of
        [] -> iolist_to_binary(["<", Name, A, "/>"]);
        _ -> iolist_to_binary(["<", Name, A, ">", [to_xml(C) || C <- Children], "</", Name, ">"])
    end;
to_xml({xmlcdata, Text}) -> escape_text(Text).

escape_attr(V) -> binary:replace(binary:replace(escape_text(V), <<"'">>, <<"&apos;">>, [global]), <<"\"">>, <<"&quot;">>, [global]).
escape_text(V) ->
    lists:foldl(fun({From, To}, Acc) -> binary:replace(Acc, From, To, [global]) end, V,
                [{<<"&">>, <<"&amp;">>}, {<<"<">>, <<"&lt;">>}, {<<">">>, <<"&gt;">>}]).
