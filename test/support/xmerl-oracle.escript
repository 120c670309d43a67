#!/usr/bin/env escript
%% The XML oracle for the decoder's tests: the reference tool's xml mode, rebuilt from
%% sender-jid-semantics.md on Erlang's own xmerl (the parser the reference uses), so that our
%% scanner can be compared with the real thing rather than with our reading of the XML spec.
%%
%% With the argument `name-chars` it prints xmerl's name character classes instead.
%%
%% Protocol (the reference's framing): records `LENGTH\nPAYLOAD` on stdin; for each one answer
%% `LENGTH\nJID` (bare, lower-cased JID), `-1\n` or `-2\n` on stdout, in order, until EOF.
%% xmerl runs with {quiet, true} so that its error reports never reach stdout.
-mode(compile).

main(["name-chars"]) ->
    %% The XML name character classes xmerl uses, as inclusive ranges, one class per line:
    %% `letter A-B A-B ...` and `namechar A-B ...`, over every code point.
    lists:foreach(fun({Label, Test}) ->
                          Ranges = ranges(Test, 0, 16#10FFFF, none, []),
                          io:format("~s~s~n", [Label, [io_lib:format(" ~B-~B", [A, B]) || {A, B} <- Ranges]])
                  end, [{"letter", fun xmerl_lib:is_letter/1}, {"namechar", fun xmerl_lib:is_namechar/1}]);
main(_) ->
    ok = io:setopts(standard_io, [binary]),
    loop().

loop() ->
    case file:read_line(standard_io) of
        eof -> ok;
        {ok, Line} ->
            Len = binary_to_integer(string:trim(Line, trailing, "\n")),
            Payload = case Len of
                          0 -> <<>>;
                          _ -> {ok, Data} = file:read(standard_io, Len), Data
                      end,
            ok = file:write(standard_io, answer(Payload)),
            loop()
    end.

answer(Payload) ->
    try jid_from_xml(Payload) of
        Jid ->
            [Bare | _] = string:split(string:lowercase(Jid), "/"),
            [integer_to_binary(byte_size(Bare)), $\n, Bare]
    catch
        throw:not_groupchat -> <<"-2\n">>;
        _:_ -> <<"-1\n">>
    end.

%% xmerl records are read by position: this escript must run with erlang-xmerl alone (no -dev
%% package for the .hrl). xmlElement: name 2, namespace 5; xmlNamespace: default 2;
%% xmlAttribute: value 9.
jid_from_xml(Payload) ->
    Text = "<?xml version='1.0' encoding='utf-8'?>" ++ binary_to_list(Payload),
    {Doc, _Rest} = xmerl_scan:string(Text, [{quiet, true}]),
    case xmerl_xpath:string("/message/@type", Doc) of
        [Type] when element(9, Type) =:= "groupchat" -> ok;
        _ -> throw(not_groupchat)
    end,
    MucUser = 'http://jabber.org/protocol/muc#user',
    Xs = xmerl_xpath:string("/message/x", Doc),
    lists:any(fun(X) -> element(2, element(5, X)) =:= MucUser end, Xs)
        orelse throw(not_groupchat),
    [Jid] = xmerl_xpath:string("/message/x/item/@jid", Doc),
    unicode:characters_to_binary(element(9, Jid)).

ranges(_Test, C, Max, Open, Acc) when C > Max ->
    lists:reverse(case Open of none -> Acc; S -> [{S, Max} | Acc] end);
ranges(Test, C, Max, Open, Acc) ->
    case {Test(C), Open} of
        {true, none} -> ranges(Test, C + 1, Max, C, Acc);
        {true, _} -> ranges(Test, C + 1, Max, Open, Acc);
        {false, none} -> ranges(Test, C + 1, Max, none, Acc);
        {false, S} -> ranges(Test, C + 1, Max, none, [{S, C - 1} | Acc])
    end.
