#!/usr/bin/env escript
%% -*- erlang -*-
%% Payload generator and oracle for the decode tests and the bench, run by erlang-payloads.ts.
%% Payloads are made by this VM's term_to_binary; expected answers are computed here, by the
%% reference escript's own rules (sender-jid-from-mam-message.escript, eterm mode) re-stated below,
%% plus our documented extensions (exml 4 attribute maps) and limits (nesting depth, unsupported
%% term types): binary_to_term is the judge of what decodes.
%%
%% Commands (all output is binary records, described in erlang-payloads.ts):
%%   cases OUT                      named edge cases of the semantics page
%%   random N SEED OUT              N realistic MUC messages, each as eterm, compressed eterm and xml
%%   oracle MAXDEPTH IN OUT         the expected answer for every payload in IN
%%   lowercase OUT                  every code point that string:lowercase/1 changes
-mode(compile).

-define(MUC_USER, <<"http://jabber.org/protocol/muc#user">>).

main(["cases", Out]) -> write_records(Out, cases());
main(["random", N, Seed, Out]) -> write_records(Out, random_messages(list_to_integer(N), list_to_integer(Seed)));
main(["oracle", MaxDepth, In, Out]) -> oracle(list_to_integer(MaxDepth), In, Out);
main(["lowercase", Out]) -> lowercase_table(Out);
main(Args) -> io:format(standard_error, "erlang-payloads: bad arguments ~p~n", [Args]), halt(2).

%% ---------------------------------------------------------------------------------------------
%% The answer, as the reference computes it (plus our extensions and limits)

answer(Bin, MaxDepth) ->
    try binary_to_term(Bin) of
        Term ->
            case unsupported(Term) of
                true -> {error, 1};
                false ->
                    case depth(Term) > MaxDepth of
                        true -> {error, 1};
                        false -> rules(Term)
                    end
            end
    catch _:_ -> {error, 1}
    end.

rules(Term) ->
    try bare_jid(jid_from_eterm(Term))
    catch
        throw:not_muc_message -> {error, 2};
        _:_ -> {error, 1}
    end.

%% As the reference's safe_jid_extraction/2 + bare_jid/1: byte_size/1 fails on anything but a binary.
bare_jid(JID) ->
    [Bare | _] = string:split(string:lowercase(JID), "/"),
    _ = byte_size(Bare),
    {jid, Bare}.

jid_from_eterm(Term) ->
    {xmlel, <<"message">>, MsgAttrs, MsgChildren} = Term,
    case attr(<<"type">>, MsgAttrs) of
        {_, <<"groupchat">>} -> ok;
        _ -> throw(not_muc_message)
    end,
    case find_muc_x(MsgChildren) of
        {xmlel, <<"x">>, _, XChildren} ->
            {xmlel, _, ItemAttrs, _} = lists:keyfind(<<"item">>, 2, XChildren),
            {_, JID} = attr(<<"jid">>, ItemAttrs),
            JID;
        _ ->
            throw(not_muc_message)
    end.

%% exml 4 extension: attributes as a map.
attr(Key, Attrs) when is_map(Attrs) ->
    case maps:find(Key, Attrs) of {ok, V} -> {Key, V}; error -> false end;
attr(Key, Attrs) -> lists:keyfind(Key, 1, Attrs).

%% lists:keyfind([{<<"xmlns">>, ?MUC_USER}], 3, Children), also matching the exml 4 map form.
find_muc_x([H | T]) ->
    case is_tuple(H) andalso tuple_size(H) >= 3 andalso
         (element(3, H) == [{<<"xmlns">>, ?MUC_USER}] orelse element(3, H) == #{<<"xmlns">> => ?MUC_USER}) of
        true -> H;
        false -> find_muc_x(T)
    end;
find_muc_x([]) -> false;
find_muc_x(_) -> erlang:error(badarg).

unsupported(T) when is_pid(T); is_port(T); is_reference(T); is_function(T) -> true;
unsupported(T) when is_tuple(T) -> lists:any(fun unsupported/1, tuple_to_list(T));
unsupported(T) when is_map(T) -> lists:any(fun({K, V}) -> unsupported(K) orelse unsupported(V) end, maps:to_list(T));
unsupported([H | T]) -> unsupported(H) orelse unsupported(T);
unsupported(_) -> false.

%% Nesting of non-empty containers; a list's tail does not nest (it is the same list).
depth(T) when is_tuple(T), tuple_size(T) > 0 -> 1 + lists:max([depth(E) || E <- tuple_to_list(T)]);
depth(M) when is_map(M), map_size(M) > 0 -> 1 + lists:max([max(depth(K), depth(V)) || {K, V} <- maps:to_list(M)]);
depth([_ | _] = L) -> list_depth(L, 0);
depth(_) -> 0.

list_depth([H | T], Max) -> list_depth(T, max(Max, depth(H)));
list_depth(Tail, Max) -> max(1 + Max, depth(Tail)).

%% ---------------------------------------------------------------------------------------------
%% Records

%% Record: <<NameLen:16, Name, Format:8 ($e | $x), PayloadLen:32, Payload, Kind:8, JidLen:32, Jid>>
%% Kind 0 = JID, 1 = -1, 2 = -2.
write_records(Out, Records) ->
    {ok, F} = file:open(Out, [write, raw, binary, delayed_write]),
    lists:foreach(fun({Name, Format, Payload, Expected}) ->
        NameBin = unicode:characters_to_binary(Name),
        ok = file:write(F, [<<(byte_size(NameBin)):16>>, NameBin, Format,
                            <<(byte_size(Payload)):32>>, Payload, encode_answer(Expected)])
    end, Records),
    ok = file:close(F).

encode_answer({jid, Jid}) -> <<0, (byte_size(Jid)):32, Jid/binary>>;
encode_answer({error, 1}) -> <<1, 0:32>>;
encode_answer({error, 2}) -> <<2, 0:32>>.

oracle(MaxDepth, In, Out) ->
    {ok, Bin} = file:read_file(In),
    Answers = oracle_loop(Bin, MaxDepth, []),
    ok = file:write_file(Out, Answers).

oracle_loop(<<>>, _, Acc) -> lists:reverse(Acc);
oracle_loop(<<Len:32, Payload:Len/binary, Rest/binary>>, MaxDepth, Acc) ->
    oracle_loop(Rest, MaxDepth, [encode_answer(answer(Payload, MaxDepth)) | Acc]).

lowercase_table(Out) ->
    Changed = [<<Cp:32, (byte_size(L)):8, L/binary>>
               || Cp <- lists:seq(0, 16#10FFFF), Cp < 16#D800 orelse Cp > 16#DFFF,
                  L <- [string:lowercase(<<Cp/utf8>>)], L =/= <<Cp/utf8>>],
    ok = file:write_file(Out, Changed).

%% ---------------------------------------------------------------------------------------------
%% Named cases

-define(DEFAULT_DEPTH, 512).

msg(Attrs, Children) -> {xmlel, <<"message">>, Attrs, Children}.
gc() -> [{<<"from">>, <<"coven@chat.shakespeare.lit/firstwitch">>}, {<<"id">>, <<"162BEBB1-F6DB-4D9A-9BD8-CFDCC801A0B2">>},
         {<<"type">>, <<"groupchat">>}].
body(Text) -> {xmlel, <<"body">>, [], [{xmlcdata, Text}]}.
item(Jid) -> {xmlel, <<"item">>, [{<<"affiliation">>, <<"none">>}, {<<"jid">>, Jid}, {<<"role">>, <<"participant">>}], []}.
muc_x(Children) -> {xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], Children}.
gc_msg(Jid) -> msg(gc(), [body(<<"Zażółć gęślą jaźń"/utf8>>), muc_x([item(Jid)])]).

u(S) -> unicode:characters_to_binary(S).

cases() ->
    Polish = u("gżegżółka@brzęczyszczykiewicz.pl"),
    Terms = [
      {"reference example", gc_msg(Polish)},
      {"resource dropped, case lowered", gc_msg(<<"Alice@Example.COM/Phone">>)},
      {"no resource", gc_msg(<<"bob@example.com">>)},
      {"dotted I", gc_msg(u([16#130, $s, $t, $a, $n, $b, $u, $l, $@, $e, $x, $., $t, $r]))},
      {"final capital sigma", gc_msg(u([16#3A3, 16#391, 16#3A3, $@, $e, $l]))},
      {"capital sharp s", gc_msg(u([16#1E9E, $@, $d, $e]))},
      {"Polish capitals", gc_msg(u("ŻÓŁW.ĄĘ@PRZYKŁAD.PL/Zasób"))},
      {"slash followed by combining mark", gc_msg(u([$a, $@, $b, $/, 16#301, $r, $/, $s]))},
      {"slash after prepend", gc_msg(u([$a, $@, $b, 16#600, $/, $r, $/, $s]))},
      {"empty jid", gc_msg(<<>>)},
      {"jid without at", gc_msg(<<"JustAHost/res">>)},
      {"jid invalid utf8", gc_msg(<<"al", 255, "ce@host">>)},
      {"jid is a charlist", gc_msg("alice@host")},
      {"jid is an atom", gc_msg('alice@host')},
      %% rule 1
      {"not a tuple", [a, b]},
      {"3-tuple", {xmlel, <<"message">>, []}},
      {"name as charlist", {xmlel, "message", gc(), [muc_x([item(<<"a@b">>)])]}},
      {"root presence", {xmlel, <<"presence">>, gc(), [muc_x([item(<<"a@b">>)])]}},
      {"root not xmlel", {xmlelx, <<"message">>, gc(), [muc_x([item(<<"a@b">>)])]}},
      %% rule 2
      {"type missing", msg([{<<"id">>, <<"1">>}], [muc_x([item(<<"a@b">>)])])},
      {"type chat", msg([{<<"type">>, <<"chat">>}], [muc_x([item(<<"a@b">>)])])},
      {"type GroupChat", msg([{<<"type">>, <<"GroupChat">>}], [muc_x([item(<<"a@b">>)])])},
      {"first type chat then groupchat", msg([{<<"type">>, <<"chat">>}, {<<"type">>, <<"groupchat">>}], [muc_x([item(<<"a@b">>)])])},
      {"type attr 3-tuple", msg([{<<"type">>, <<"groupchat">>, x}], [muc_x([item(<<"a@b">>)])])},
      {"type value charlist", msg([{<<"type">>, "groupchat"}], [muc_x([item(<<"a@b">>)])])},
      {"attrs not a list", msg(attrs, [muc_x([item(<<"a@b">>)])])},
      {"attrs improper after type", msg([{<<"type">>, <<"groupchat">>} | tail], [muc_x([item(<<"a@b">>)])])},
      {"attrs improper before type", msg([{<<"id">>, <<"1">>} | tail], [muc_x([item(<<"a@b">>)])])},
      {"attrs with non-tuples", msg([1, {}, {<<"type">>}, {<<"type">>, <<"groupchat">>}], [muc_x([item(<<"a@b">>)])])},
      %% rule 3
      {"no x", msg(gc(), [body(<<"hi">>)])},
      {"x with second attribute", msg(gc(), [{xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}, {<<"a">>, <<"b">>}], [item(<<"a@b">>)]}])},
      {"non-x with muc attrs hides x", msg(gc(), [{xmlel, <<"y">>, [{<<"xmlns">>, ?MUC_USER}], []}, muc_x([item(<<"a@b">>)])])},
      {"x after cdata and short tuples", msg(gc(), [{xmlcdata, <<"\n">>}, {a}, {a, b}, 42, muc_x([item(<<"found@b">>)])])},
      {"x in other namespace", msg(gc(), [{xmlel, <<"x">>, [{<<"xmlns">>, <<"jabber:x:data">>}], [item(<<"a@b">>)]}])},
      {"children improper after x", msg(gc(), [muc_x([item(<<"tail@b">>)]) | tail])},
      {"children improper before x", msg(gc(), [body(<<"hi">>) | tail])},
      {"children not a list", msg(gc(), children)},
      {"muc attrs tuple not xmlel", msg(gc(), [{foo, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], []}])},
      %% rule 4
      {"x without item", msg(gc(), [muc_x([])])},
      {"cdata item", msg(gc(), [muc_x([{xmlcdata, <<"item">>}, item(<<"a@b">>)])])},
      {"item after other children", msg(gc(), [muc_x([{xmlel, <<"status">>, [{<<"code">>, <<"100">>}], []}, item(<<"second@b">>)])])},
      {"x children not a list", msg(gc(), [{xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], none}])},
      {"x children improper after item", msg(gc(), [{xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], [item(<<"i@b">>) | t]}])},
      %% rule 5
      {"item without jid", msg(gc(), [muc_x([{xmlel, <<"item">>, [{<<"role">>, <<"none">>}], []}])])},
      {"two jid attributes", msg(gc(), [muc_x([{xmlel, <<"item">>, [{<<"jid">>, <<"First@b">>}, {<<"jid">>, <<"second@b">>}], []}])])},
      {"jid attr 3-tuple", msg(gc(), [muc_x([{xmlel, <<"item">>, [{<<"jid">>, <<"a@b">>, c}], []}])])},
      {"item attrs not a list", msg(gc(), [muc_x([{xmlel, <<"item">>, nope, []}])])},
      %% exml 4 extension
      {"exml4 map attrs", {xmlel, <<"message">>, maps:from_list(gc()),
                           [{xmlel, <<"body">>, #{}, [{xmlcdata, <<"hi">>, escaped}]},
                            {xmlel, <<"x">>, #{<<"xmlns">> => ?MUC_USER},
                             [{xmlel, <<"item">>, #{<<"affiliation">> => <<"none">>, <<"jid">> => <<"Map@Host/r">>, <<"role">> => <<"none">>}, []}]}]}},
      {"exml4 map type chat", {xmlel, <<"message">>, #{<<"type">> => <<"chat">>}, []}},
      {"exml4 map x with two attrs", {xmlel, <<"message">>, #{<<"type">> => <<"groupchat">>},
                                     [{xmlel, <<"x">>, #{<<"xmlns">> => ?MUC_USER, <<"a">> => <<"b">>}, [item(<<"a@b">>)]}]}},
      {"exml4 map item without jid", {xmlel, <<"message">>, #{<<"type">> => <<"groupchat">>},
                                     [{xmlel, <<"x">>, #{<<"xmlns">> => ?MUC_USER}, [{xmlel, <<"item">>, #{}, []}]}]}},
      {"exml4 cdata 3-tuple item", msg(gc(), [muc_x([{xmlcdata, <<"item">>, cdata}])])},
      %% unsupported types
      {"pid in body", msg(gc(), [{xmlel, <<"body">>, [], [self()]}, muc_x([item(<<"a@b">>)])])},
      {"fun in attrs", msg(gc() ++ [{<<"f">>, fun lists:reverse/1}], [muc_x([item(<<"a@b">>)])])},
      {"reference in x", msg(gc(), [muc_x([item(<<"a@b">>), make_ref()])])}
    ],
    Encoded = lists:flatmap(fun({Name, Term}) ->
        [{Name ++ " (minor 1)", $e, term_to_binary(Term, [{minor_version, 1}])},
         {Name ++ " (minor 2)", $e, term_to_binary(Term, [{minor_version, 2}])},
         {Name ++ " (compressed)", $e, term_to_binary(Term, [compressed, {minor_version, 2}])}]
    end, Terms),
    Big = gc_msg(<<"Big@Example.com/r">>),
    BigTerm = msg(gc(), [body(binary:copy(<<"long body ">>, 200)), muc_x([item(<<"Compressed@Example.com/r">>)])]),
    C = term_to_binary(BigTerm, [compressed]),
    <<131, 80, Size:32, Z/binary>> = C,
    ZLen = byte_size(Z) - 4,
    <<ZBody:ZLen/binary, Adler:32>> = Z,
    Plain = term_to_binary(Big),
    Raw = [
      {"trailing bytes after term", $e, <<Plain/binary, 1, 2, 3>>},
      {"compressed really compressed", $e, C},
      {"trailing bytes after zlib stream", $e, <<C/binary, 0, 1, 2>>},
      {"declared size plus one", $e, <<131, 80, (Size + 1):32, Z/binary>>},
      {"declared size minus one", $e, <<131, 80, (Size - 1):32, Z/binary>>},
      {"declared size zero", $e, <<131, 80, 0:32, Z/binary>>},
      {"bad adler32", $e, <<131, 80, Size:32, ZBody/binary, (Adler bxor 1):32>>},
      {"zlib stream without adler32", $e, <<131, 80, Size:32, ZBody/binary>>},
      {"truncated zlib stream", $e, <<131, 80, Size:32, (binary:part(Z, 0, byte_size(Z) div 2))/binary>>},
      {"inflated data longer than term", $e, inner_padded(BigTerm)},
      {"truncated term", $e, binary:part(Plain, 0, byte_size(Plain) - 1)},
      {"version byte only", $e, <<131>>},
      {"wrong version byte", $e, <<130, (binary:part(Plain, 1, byte_size(Plain) - 1))/binary>>},
      {"invalid utf8 atom", $e, replace_atom(Plain)},
      {"declares 4 GiB", $e, <<131, 80, 16#FFFFFFFF:32, Z/binary>>},
      {"uncompressed in compressed column", $e, term_to_binary(gc_msg(<<"small@x">>), [compressed])}
    ],
    [{Name, Fmt, P, answer(P, ?DEFAULT_DEPTH)} || {Name, Fmt, P} <- Encoded ++ Raw].

inner_padded(Term) ->
    <<131, Inner/binary>> = term_to_binary(Term),
    Padded = <<Inner/binary, "padding">>,
    <<131, 80, (byte_size(Padded)):32, (zlib:compress(Padded))/binary>>.

%% Turn the leading xmlel atom into a SMALL_ATOM_UTF8_EXT holding an invalid byte.
replace_atom(<<131, 104, 4, 100, 0, 5, "xmlel", Rest/binary>>) -> <<131, 104, 4, 119, 5, "xmle", 255, Rest/binary>>.

%% ---------------------------------------------------------------------------------------------
%% Random realistic messages (MongooseIM 3.x archive shape, storage reference 0.2)

random_messages(N, Seed) ->
    rand:seed(exsss, Seed),
    lists:flatmap(fun(I) -> random_message(I) end, lists:seq(1, N)).

random_message(I) ->
    Chat = rand:uniform(100) =< 2,
    Room = pick([<<"coven@chat.shakespeare.lit">>, <<"lobby@muc.example.com">>, u("pokój@konferencja.przykład.pl")]),
    Nick = pick([<<"firstwitch">>, <<"Bob">>, u("Żaneta")]),
    Attrs = [{<<"from">>, <<Room/binary, "/", Nick/binary>>}, {<<"to">>, Room},
             {<<"id">>, integer_to_binary(rand:uniform(1 bsl 40))},
             {<<"type">>, case Chat of true -> <<"chat">>; false -> <<"groupchat">> end}],
    Body = {xmlel, <<"body">>, [], [{xmlcdata, random_text(19 + rand:uniform(401))}]},
    Children = case Chat of
        true -> [Body];
        false ->
            Jid = random_jid(),
            [Body, {xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}],
                    [{xmlel, <<"item">>, [{<<"affiliation">>, pick([<<"owner">>, <<"admin">>, <<"member">>, <<"none">>])},
                                          {<<"jid">>, Jid},
                                          {<<"role">>, pick([<<"moderator">>, <<"participant">>, <<"visitor">>])}], []}]}]
    end,
    Term = {xmlel, <<"message">>, Attrs, Children},
    Minor = pick([1, 2]),
    Eterm = term_to_binary(Term, [{minor_version, Minor}]),
    Expected = answer(Eterm, ?DEFAULT_DEPTH),
    Name = "random " ++ integer_to_list(I),
    [{Name, $e, Eterm, Expected},
     {Name ++ " compressed", $e, term_to_binary(Term, [compressed, {minor_version, Minor}]), Expected},
     {Name ++ " xml", $x, to_xml(Term), Expected}].

random_jid() ->
    User = pick([<<"alice">>, <<"Alice">>, <<"BOB">>, u("gżegżółka"), u("ŻANETA"), u([16#130, $l, $k, $e, $r]),
                 u([16#3A3, 16#391, 16#3A3]), u("Straße"), <<"o'brien">>, <<"a&b">>]),
    Domain = pick([<<"example.com">>, <<"Example.COM">>, u("brzęczyszczykiewicz.pl"), <<"localhost">>]),
    case rand:uniform(4) of
        1 -> <<User/binary, "@", Domain/binary>>;
        _ -> <<User/binary, "@", Domain/binary, "/", (pick([<<"Phone">>, <<"res-1">>, u("Zasób")]))/binary>>
    end.

random_text(Chars) ->
    Alphabet = u("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ 0123456789 .,!? zażółć gęślą jaźń <>&'\" ÄÖÜ ß €"),
    Cps = unicode:characters_to_list(Alphabet),
    Len = length(Cps),
    unicode:characters_to_binary([lists:nth(rand:uniform(Len), Cps) || _ <- lists:seq(1, Chars)]).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

%% A simple exml-like serializer: single-quoted attributes, empty elements self-closed.
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
