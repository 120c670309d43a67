#!/usr/bin/env escript
%% -*- erlang -*-
%% Payload generator and oracle for the origin_id and is_groupchat answers, run by erlang-fields.ts.
%% The answers are computed here by MongooseIM's own functions, copied below as they were:
%%   mod_mam_utils:get_origin_id/1 (3.7.0) and mod_mam_utils:is_groupchat/1 (6.2.1),
%%   exml_query:path/3, subelement/3, subelement_with_name_and_ns/4, attr/3 at esl/exml 6ca4f88
%%   (the exml MongooseIM 3.7.0 pins), attr/3 also over an exml 4 attribute map.
%% binary_to_term judges what decodes, with the same limits as erlang-payloads.escript.
%%
%% Commands (binary records, described in erlang-fields.ts):
%%   cases OUT                 named edge cases, eterm (3 encodings) and, where the term can be written as XML, xml
%%   random N SEED OUT         N realistic one-to-one and MUC messages, as eterm, compressed eterm and xml
%%   oracle MAXDEPTH IN OUT    the answers for every eterm payload in IN
-mode(compile).

-record(xmlel, {name, attrs = [], children = []}).

-define(NS_STANZAID, <<"urn:xmpp:sid:0">>).
-define(MUC_USER, <<"http://jabber.org/protocol/muc#user">>).

main(["cases", Out]) -> write_records(Out, cases());
main(["random", N, Seed, Out]) -> write_records(Out, random_messages(list_to_integer(N), list_to_integer(Seed)));
main(["oracle", MaxDepth, In, Out]) -> oracle(list_to_integer(MaxDepth), In, Out);
main(Args) -> io:format(standard_error, "erlang-fields: bad arguments ~p~n", [Args]), halt(2).

%% ---------------------------------------------------------------------------------------------
%% MongooseIM's functions

%% mod_mam_utils (3.7.0)
get_origin_id(Packet) ->
    path(Packet, [{element_with_ns, <<"origin-id">>, ?NS_STANZAID},
                  {attr, <<"id">>}], none).

%% mod_mam_utils (6.2.1), applied by mod_mam_pm:handle_package/7 to exml_query:attr(Packet, <<"type">>)
is_groupchat(<<"groupchat">>) ->
    true;
is_groupchat(_) ->
    false.

%% exml_query (esl/exml 6ca4f88), the clauses get_origin_id/1 reaches
path(#xmlel{} = Element, [{element_with_ns, Name, NS} | Rest], Default) ->
    Child = subelement_with_name_and_ns(Element, Name, NS),
    path(Child, Rest, Default);
path(#xmlel{} = Element, [{attr, Name}], Default) ->
    attr(Element, Name, Default);
path(_, _, Default) ->
    Default.

subelement(#xmlel{children = Children}, Name, Default) ->
    case lists:keyfind(Name, #xmlel.name, Children) of
        false ->
            Default;
        Result ->
            Result
    end.

subelement_with_name_and_ns(Element, Name, NS) ->
    subelement_with_name_and_ns(Element, Name, NS, undefined).

subelement_with_name_and_ns(Element, Name, NS, Default) ->
    case subelement(Element, Name, undefined) of
        undefined ->
            Default;
        SubElement ->
            subelement_or_default(SubElement, NS, Default)
    end.

subelement_or_default(SubElement, NS, Default) ->
    case attr(SubElement, <<"xmlns">>) of
        NS ->
            SubElement;
        _ ->
            Default
    end.

attr(Element, Name) ->
    attr(Element, Name, undefined).

%% exml 4's attr/3 reads a map (maps:find); the list clause is exml 3's.
attr(#xmlel{attrs = Attrs}, Name, Default) when is_map(Attrs) ->
    case maps:find(Name, Attrs) of
        {ok, Value} -> Value;
        error -> Default
    end;
attr(#xmlel{attrs = Attrs}, Name, Default) ->
    case lists:keyfind(Name, 1, Attrs) of
        {Name, Value} ->
            Value;
        false ->
            Default
    end.

%% ---------------------------------------------------------------------------------------------
%% The answers: {OriginId, IsGroupchat}, each a value or malformed

answer(Bin, MaxDepth) ->
    try binary_to_term(Bin) of
        Term ->
            case unsupported(Term) orelse depth(Term) > MaxDepth of
                true -> {malformed, malformed};
                false -> fields(Term)
            end
    catch _:_ -> {malformed, malformed}
    end.

%% MongooseIM archived only #xmlel{} packets: any other stored term is not its message.
fields(#xmlel{} = Packet) -> {origin_id(Packet), groupchat(Packet)};
fields(_) -> {malformed, malformed}.

origin_id(Packet) ->
    try get_origin_id(Packet) of
        none -> none;
        %% Ours: only text can be stored (MongooseIM would have handed anything else to the driver).
        Id when is_binary(Id) ->
            case unicode:characters_to_binary(Id) of
                Id -> {id, Id};
                _ -> malformed
            end;
        _ -> malformed
    catch _:_ -> malformed
    end.

groupchat(Packet) ->
    try is_groupchat(attr(Packet, <<"type">>))
    catch _:_ -> malformed
    end.

unsupported(T) when is_pid(T); is_port(T); is_reference(T); is_function(T) -> true;
unsupported(T) when is_tuple(T) -> lists:any(fun unsupported/1, tuple_to_list(T));
unsupported(T) when is_map(T) -> lists:any(fun({K, V}) -> unsupported(K) orelse unsupported(V) end, maps:to_list(T));
unsupported([H | T]) -> unsupported(H) orelse unsupported(T);
unsupported(_) -> false.

depth(T) when is_tuple(T), tuple_size(T) > 0 -> 1 + lists:max([depth(E) || E <- tuple_to_list(T)]);
depth(M) when is_map(M), map_size(M) > 0 -> 1 + lists:max([max(depth(K), depth(V)) || {K, V} <- maps:to_list(M)]);
depth([_ | _] = L) -> list_depth(L, 0);
depth(_) -> 0.

list_depth([H | T], Max) -> list_depth(T, max(Max, depth(H)));
list_depth(Tail, Max) -> max(1 + Max, depth(Tail)).

%% ---------------------------------------------------------------------------------------------
%% Records
%% <<NameLen:16, Name, Format:8 ($e | $x), PayloadLen:32, Payload, Answers>>
%% Answers: <<OriginKind:8 (0 id, 1 none, 2 malformed), IdLen:32, Id, Groupchat:8 (0 false, 1 true, 2 malformed)>>

write_records(Out, Records) ->
    {ok, F} = file:open(Out, [write, raw, binary, delayed_write]),
    lists:foreach(fun({Name, Format, Payload, Expected}) ->
        NameBin = unicode:characters_to_binary(Name),
        ok = file:write(F, [<<(byte_size(NameBin)):16>>, NameBin, Format,
                            <<(byte_size(Payload)):32>>, Payload, encode_answers(Expected)])
    end, Records),
    ok = file:close(F).

encode_answers({Origin, Gc}) ->
    O = case Origin of
            {id, Id} -> <<0, (byte_size(Id)):32, Id/binary>>;
            none -> <<1, 0:32>>;
            malformed -> <<2, 0:32>>
        end,
    G = case Gc of false -> 0; true -> 1; malformed -> 2 end,
    <<O/binary, G>>.

oracle(MaxDepth, In, Out) ->
    {ok, Bin} = file:read_file(In),
    ok = file:write_file(Out, oracle_loop(Bin, MaxDepth, [])).

oracle_loop(<<>>, _, Acc) -> lists:reverse(Acc);
oracle_loop(<<Len:32, Payload:Len/binary, Rest/binary>>, MaxDepth, Acc) ->
    oracle_loop(Rest, MaxDepth, [encode_answers(answer(Payload, MaxDepth)) | Acc]).

%% ---------------------------------------------------------------------------------------------
%% Named cases

-define(DEFAULT_DEPTH, 512).

msg(Attrs, Children) -> {xmlel, <<"message">>, Attrs, Children}.
chat() -> [{<<"from">>, <<"alice@localhost/res1">>}, {<<"to">>, <<"bob@localhost">>}, {<<"id">>, <<"m-1">>}, {<<"type">>, <<"chat">>}].
gc() -> [{<<"from">>, <<"room@muc.localhost/alice">>}, {<<"to">>, <<"bob@localhost">>}, {<<"id">>, <<"m-2">>}, {<<"type">>, <<"groupchat">>}].
body(Text) -> {xmlel, <<"body">>, [], [{xmlcdata, Text}]}.
oid(Id) -> {xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, Id}], []}.
muc_x() -> {xmlel, <<"x">>, [{<<"xmlns">>, ?MUC_USER}], [{xmlel, <<"item">>, [{<<"jid">>, <<"alice@localhost/res1">>}], []}]}.
u(S) -> unicode:characters_to_binary(S).

cases() ->
    Terms = [
      {"chat with origin-id", msg(chat(), [body(<<"hi">>), oid(<<"de305d54-75b4-431b-adb2-eb6b9e546014">>)])},
      {"groupchat with origin-id", msg(gc(), [body(<<"hi">>), oid(<<"abc">>), muc_x()])},
      {"chat without origin-id", msg(chat(), [body(<<"hi">>)])},
      {"groupchat without origin-id", msg(gc(), [body(<<"hi">>), muc_x()])},
      {"origin-id first child", msg(chat(), [oid(<<"first">>), body(<<"hi">>)])},
      {"origin-id unicode", msg(chat(), [oid(u("zażółć-🙂")), body(<<"hi">>)])},
      {"origin-id empty", msg(chat(), [oid(<<>>)])},
      {"origin-id with markup characters", msg(chat(), [oid(<<"a&b<c>'\"">>)])},
      {"origin-id long", msg(chat(), [oid(binary:copy(<<"x">>, 400))])},
      {"origin-id without id", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}], []}])},
      {"origin-id without xmlns", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"id">>, <<"a">>}], []}])},
      {"origin-id other namespace", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, <<"urn:xmpp:sid:1">>}, {<<"id">>, <<"a">>}], []}])},
      {"origin-id wrong namespace first, right second", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, <<"urn:other">>}, {<<"id">>, <<"a">>}], []}, oid(<<"b">>)])},
      {"two origin-ids", msg(chat(), [oid(<<"one">>), oid(<<"two">>)])},
      {"stanza-id only", msg(chat(), [{xmlel, <<"stanza-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"s">>}, {<<"by">>, <<"x">>}], []}])},
      {"origin-id nested deeper", msg(chat(), [{xmlel, <<"body">>, [], [oid(<<"deep">>)]}])},
      {"id before xmlns", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"id">>, <<"idfirst">>}, {<<"xmlns">>, ?NS_STANZAID}], []}])},
      {"two id attributes", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"first">>}, {<<"id">>, <<"second">>}], []}])},
      {"id with spaces", msg(chat(), [oid(<<" a b ">>)])},
      {"cdata origin-id before the element", msg(chat(), [{xmlcdata, <<"origin-id">>}, oid(<<"a">>)])},
      {"cdata origin-id after the element", msg(chat(), [oid(<<"a">>), {xmlcdata, <<"origin-id">>}])},
      {"split cdata origin-id", msg(chat(), [{xmlcdata, <<"origin">>}, {xmlcdata, <<"-id">>}, oid(<<"a">>)])},
      {"cdata near origin-id", msg(chat(), [{xmlcdata, <<"origin-id ">>}, oid(<<"a">>)])},
      {"type missing", msg([{<<"id">>, <<"1">>}], [oid(<<"a">>)])},
      {"type normal", msg([{<<"type">>, <<"normal">>}], [])},
      {"type GroupChat", msg([{<<"type">>, <<"GroupChat">>}], [])},
      {"first type chat then groupchat", msg([{<<"type">>, <<"chat">>}, {<<"type">>, <<"groupchat">>}], [])},
      {"root not message, groupchat", {xmlel, <<"presence">>, [{<<"type">>, <<"groupchat">>}], [oid(<<"p">>)]}},
      %% Terms only: crashes of the functions, and what XML cannot write
      {"id value charlist", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, "abc"}], []}])},
      {"id value atom", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, abc}], []}])},
      {"id value invalid utf8", msg(chat(), [oid(<<"a", 255, "b">>)])},
      {"id attribute 3-tuple", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>, x}], []}])},
      {"xmlns attribute 3-tuple", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID, x}, {<<"id">>, <<"a">>}], []}])},
      {"xmlns attribute charlist", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, "urn:xmpp:sid:0"}, {<<"id">>, <<"a">>}], []}])},
      {"origin-id attrs not a list", msg(chat(), [{xmlel, <<"origin-id">>, nope, []}])},
      {"origin-id attrs improper after id", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>} | t], []}])},
      {"origin-id attrs improper before id", msg(chat(), [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID} | t], []}])},
      {"origin-id tuple not xmlel", msg(chat(), [{foo, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>}], []}])},
      {"origin-id 2-tuple", msg(chat(), [{x, <<"origin-id">>}, oid(<<"a">>)])},
      {"children not a list", msg(chat(), kids)},
      {"children improper after origin-id", msg(chat(), [oid(<<"a">>) | tail])},
      {"children improper before origin-id", msg(chat(), [body(<<"hi">>) | tail])},
      {"children with non-tuples", msg(chat(), [1, {}, {a}, oid(<<"a">>)])},
      {"origin-id name as charlist", msg(chat(), [{xmlel, "origin-id", [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>}], []}])},
      {"type value charlist", msg([{<<"type">>, "groupchat"}], [])},
      {"type attribute 3-tuple", msg([{<<"type">>, <<"groupchat">>, x}], [])},
      {"attrs not a list", msg(attrs, [oid(<<"a">>)])},
      {"attrs improper after type", msg([{<<"type">>, <<"groupchat">>} | t], [])},
      {"attrs improper before type", msg([{<<"id">>, <<"1">>} | t], [])},
      {"message name charlist", {xmlel, "message", gc(), [oid(<<"a">>)]}},
      {"not a tuple", [a, b]},
      {"3-tuple", {xmlel, <<"message">>, gc()}},
      {"root not xmlel", {xmlelx, <<"message">>, gc(), [oid(<<"a">>)]}},
      {"exml4 maps", {xmlel, <<"message">>, #{<<"type">> => <<"groupchat">>},
                      [{xmlel, <<"body">>, #{}, [{xmlcdata, <<"hi">>, escaped}]},
                       {xmlel, <<"origin-id">>, #{<<"xmlns">> => ?NS_STANZAID, <<"id">> => <<"map-id">>}, []}]}},
      {"exml4 maps chat without id", {xmlel, <<"message">>, #{<<"type">> => <<"chat">>},
                                      [{xmlel, <<"origin-id">>, #{<<"xmlns">> => ?NS_STANZAID}, []}]}},
      {"exml4 cdata origin-id", {xmlel, <<"message">>, #{<<"type">> => <<"chat">>}, [{xmlcdata, <<"origin-id">>, escaped}]}},
      {"pid in body", msg(chat(), [{xmlel, <<"body">>, [], [self()]}, oid(<<"a">>)])}
    ],
    Eterms = lists:flatmap(fun({Name, Term}) ->
        [{Name ++ " (minor 1)", $e, term_to_binary(Term, [{minor_version, 1}])},
         {Name ++ " (minor 2)", $e, term_to_binary(Term, [{minor_version, 2}])},
         {Name ++ " (compressed)", $e, term_to_binary(Term, [compressed, {minor_version, 2}])}]
    end, Terms),
    Plain = term_to_binary(msg(gc(), [oid(<<"x">>)])),
    Raw = [{"truncated term", $e, binary:part(Plain, 0, byte_size(Plain) - 1)},
           {"trailing bytes after term", $e, <<Plain/binary, 1, 2, 3>>},
           {"version byte only", $e, <<131>>}],
    [{N, $e, P, answer(P, ?DEFAULT_DEPTH)} || {N, $e, P} <- Eterms ++ Raw]
        ++ [{Name ++ " (xml)", $x, to_xml(Term), xml_answer(Term)} || {Name, Term} <- Terms, writable(Term)]
        ++ xml_only_cases().

%% Text that only XML can hold: what exml's parser makes of it, computed on the tree it builds.
xml_only_cases() ->
    Oid = fun(Attrs) -> {xmlel, <<"origin-id">>, Attrs, []} end,
    Cases = [
      {"xml prefixed origin-id", <<"<message type='chat'><s:origin-id xmlns:s='urn:xmpp:sid:0' id='p'/></message>">>,
       msg([{<<"type">>, <<"chat">>}], [{xmlel, <<"s:origin-id">>, [{<<"xmlns:s">>, ?NS_STANZAID}, {<<"id">>, <<"p">>}], []}])},
      {"xml namespace inherited from the root", <<"<message xmlns='urn:xmpp:sid:0' type='chat'><origin-id id='i'/></message>">>,
       msg([{<<"xmlns">>, ?NS_STANZAID}, {<<"type">>, <<"chat">>}], [Oid([{<<"id">>, <<"i">>}])])},
      {"xml references in id", <<"<message type='group&#99;hat'><origin-id xmlns='urn:xmpp:sid:0' id='a&amp;b&#x20;&#233;'/></message>">>,
       msg([{<<"type">>, <<"groupchat">>}], [Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, u("a&b é")}])])},
      {"xml tab and newline in id kept", <<"<message type='chat'><origin-id xmlns='urn:xmpp:sid:0' id='a\tb\nc'/></message>">>,
       msg([{<<"type">>, <<"chat">>}], [Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a\tb\nc">>}])])},
      {"xml text origin-id split by a comment", <<"<message type='chat'>origin<!-- c -->-id<origin-id xmlns='urn:xmpp:sid:0' id='a'/></message>">>,
       msg([{<<"type">>, <<"chat">>}], [{xmlcdata, <<"origin-id">>}, Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>}])])},
      {"xml text origin-id from CDATA and a reference", <<"<message type='chat'><![CDATA[origin]]>&#45;id<origin-id xmlns='urn:xmpp:sid:0' id='a'/></message>">>,
       msg([{<<"type">>, <<"chat">>}], [{xmlcdata, <<"origin-id">>}, Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>}])])},
      {"xml text origin-id inside body", <<"<message type='chat'><body>origin-id</body><origin-id xmlns='urn:xmpp:sid:0' id='a'/></message>">>,
       msg([{<<"type">>, <<"chat">>}], [body(<<"origin-id">>), Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"a">>}])])},
      {"xml text origin-id at the end", <<"<message type='chat'><body>x</body>origin-id</message>">>,
       msg([{<<"type">>, <<"chat">>}], [body(<<"x">>), {xmlcdata, <<"origin-id">>}])},
      {"xml indented", <<"<message type='groupchat'>\n  <body>x</body>\n  <origin-id xmlns='urn:xmpp:sid:0' id='ind'/>\n</message>">>,
       msg([{<<"type">>, <<"groupchat">>}], [{xmlcdata, <<"\n  ">>}, body(<<"x">>), {xmlcdata, <<"\n  ">>},
                                             Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"ind">>}]), {xmlcdata, <<"\n">>}])},
      {"xml double-quoted attributes", <<"<message type=\"groupchat\"><origin-id xmlns=\"urn:xmpp:sid:0\" id=\"dq\"/></message>">>,
       msg([{<<"type">>, <<"groupchat">>}], [Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"dq">>}])])},
      {"xml root not message", <<"<iq type='groupchat'><origin-id xmlns='urn:xmpp:sid:0' id='q'/></iq>">>,
       {xmlel, <<"iq">>, [{<<"type">>, <<"groupchat">>}], [Oid([{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, <<"q">>}])]}}
    ],
    [{Name, $x, Xml, fields(Tree)} || {Name, Xml, Tree} <- Cases].

%% What exml's parser gives back for to_xml(Term): adjacent text merged into one cdata, empty text gone.
xml_answer(Term) -> fields(xml_view(Term)).

xml_view({xmlel, Name, Attrs, Children}) -> {xmlel, Name, Attrs, merge_text([xml_view(C) || C <- Children])};
xml_view(Other) -> Other.

merge_text([{xmlcdata, A}, {xmlcdata, B} | Rest]) -> merge_text([{xmlcdata, <<A/binary, B/binary>>} | Rest]);
merge_text([{xmlcdata, <<>>} | Rest]) -> merge_text(Rest);
merge_text([H | T]) -> [H | merge_text(T)];
merge_text([]) -> [].

%% Terms our XML writer can write and exml and our reader read back the same: binary names and
%% values, list attributes without duplicate names, children that are elements or text.
writable({xmlel, Name, Attrs, Children}) when is_binary(Name) ->
    proper(Attrs) andalso proper(Children) andalso writable_content(Attrs, Children);
writable({xmlcdata, Text}) when is_binary(Text) -> true;
writable(_) -> false.

proper(L) -> try length(L) of _ -> true catch _:_ -> false end.

writable_content(Attrs, Children) ->
    Names = [N || {N, _} <- Attrs],
    lists:all(fun({N, V}) -> is_binary(N) andalso is_binary(V) andalso unicode:characters_to_binary(V) =:= V;
                 (_) -> false end, Attrs)
        andalso length(lists:usort(Names)) =:= length(Names)
        andalso lists:all(fun writable/1, Children).

%% ---------------------------------------------------------------------------------------------
%% Random realistic messages: a user's archive (chat, and groupchat copies) and a room's archive

random_messages(N, Seed) ->
    rand:seed(exsss, Seed),
    lists:flatmap(fun(I) -> random_message(I) end, lists:seq(1, N)).

random_message(I) ->
    Type = pick([<<"chat">>, <<"chat">>, <<"groupchat">>, <<"groupchat">>, <<"normal">>, none]),
    Attrs = [{<<"from">>, pick([<<"alice@localhost/res1">>, <<"room@muc.localhost/bob">>])},
             {<<"to">>, <<"bob@localhost">>}, {<<"id">>, integer_to_binary(rand:uniform(1 bsl 40))}]
            ++ case Type of none -> []; _ -> [{<<"type">>, Type}] end,
    Body = {xmlel, <<"body">>, [], [{xmlcdata, random_text(5 + rand:uniform(200))}]},
    Origin = case rand:uniform(10) of
        1 -> [];
        2 -> [{xmlel, <<"origin-id">>, [{<<"xmlns">>, <<"urn:xmpp:sid:1">>}, {<<"id">>, <<"other-ns">>}], []}];
        3 -> [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}], []}];
        _ -> [{xmlel, <<"origin-id">>, [{<<"xmlns">>, ?NS_STANZAID}, {<<"id">>, random_id()}], []}]
    end,
    Extra = case Type of
        <<"groupchat">> -> [muc_x()];
        _ -> [{xmlel, <<"active">>, [{<<"xmlns">>, <<"http://jabber.org/protocol/chatstates">>}], []}]
    end,
    Children = shuffle_origin([Body | Extra], Origin),
    Term = {xmlel, <<"message">>, Attrs, Children},
    Minor = pick([1, 2]),
    Eterm = term_to_binary(Term, [{minor_version, Minor}]),
    Expected = answer(Eterm, ?DEFAULT_DEPTH),
    Name = "random " ++ integer_to_list(I),
    [{Name, $e, Eterm, Expected},
     {Name ++ " compressed", $e, term_to_binary(Term, [compressed, {minor_version, Minor}]), Expected},
     {Name ++ " xml", $x, to_xml(Term), xml_answer(Term)}].

shuffle_origin(Children, []) -> Children;
shuffle_origin(Children, [Origin]) ->
    {Before, After} = lists:split(rand:uniform(length(Children) + 1) - 1, Children),
    Before ++ [Origin | After].

random_id() ->
    case rand:uniform(3) of
        1 -> integer_to_binary(rand:uniform(1 bsl 60), 36);
        2 -> u(io_lib:format("~8.16.0b-~4.16.0b-4~3.16.0b", [rand:uniform(1 bsl 32) - 1, rand:uniform(1 bsl 16) - 1, rand:uniform(1 bsl 12) - 1]));
        3 -> random_text(1 + rand:uniform(30))
    end.

random_text(Chars) ->
    Alphabet = u("abcdefghijklmnopqrstuvwxyz ABC 0123456789 .,!? zażółć <>&'\" ß €🙂"),
    Cps = unicode:characters_to_list(Alphabet),
    Len = length(Cps),
    unicode:characters_to_binary([lists:nth(rand:uniform(Len), Cps) || _ <- lists:seq(1, Chars)]).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

%% The exml-like serializer of erlang-payloads.escript: single-quoted attributes, empty elements self-closed.
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
