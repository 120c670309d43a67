#!/usr/bin/env escript
%%! +sbwt none +sbwtdcpu none +sbwtdio none
%% The Erlang side of bench/stdio.ts: an Erlang VM answering the stdio protocol on the same framed
%% input, the way the reference escript (MongooseIM's tools/migration/sender-jid-from-mam-message.escript)
%% does it: file:read_line/1 for the length line, file:read/2 for the payload, one file:write/2 per
%% answer, on standard_io in binary mode.
%%
%%   escript bench/stdio-baseline.escript eterm|xml  < RECORDS  > ANSWERS
%%
%% eterm: binary_to_term/1 and the reference's rules (sender-jid-semantics.md, eterm 1-7).
%% xml:   xmerl_scan + xmerl_xpath, as the reference's xml mode (with the rules of the semantics
%%        page, as test/support/xmerl-oracle.escript states them; {quiet, true} keeps xmerl's error
%%        reports off stdout).
%% Answers: `LENGTH\nJID` (lower-cased, cut at the first /), `-1\n` or `-2\n`, byte for byte what
%% `mim-sender-jid stdio` answers, so the bench can compare the two outputs.
%%
%% The emulator flags on the second line turn off the schedulers' busy waiting, which burns CPU
%% while idle: the bench compares CPU time, and that time should be the VM's work.
-mode(compile).

-define(MUC_USER, <<"http://jabber.org/protocol/muc#user">>).

main([Format]) when Format =:= "eterm"; Format =:= "xml" ->
    ok = io:setopts(standard_io, [binary]),
    Extract = case Format of
                  "eterm" -> fun jid_from_eterm/1;
                  "xml" -> fun jid_from_xml/1
              end,
    loop(Extract);
main(_) ->
    io:format(standard_error, "usage: stdio-baseline.escript eterm|xml~n", []),
    halt(2).

loop(Extract) ->
    case file:read_line(standard_io) of
        eof -> ok;
        {ok, Line} ->
            Len = binary_to_integer(binary:part(Line, 0, byte_size(Line) - 1)),
            Payload = case Len of
                          0 -> <<>>;
                          _ -> {ok, Data} = file:read(standard_io, Len), Data
                      end,
            ok = file:write(standard_io, answer(Extract, Payload)),
            loop(Extract)
    end.

answer(Extract, Payload) ->
    try Extract(Payload) of
        Jid ->
            [Bare | _] = string:split(string:lowercase(Jid), "/"),
            <<(integer_to_binary(byte_size(Bare)))/binary, $\n, Bare/binary>>
    catch
        throw:not_groupchat -> <<"-2\n">>;
        _:_ -> <<"-1\n">>
    end.

jid_from_eterm(Bin) ->
    {xmlel, <<"message">>, Attrs, Children} = binary_to_term(Bin),
    case lists:keyfind(<<"type">>, 1, Attrs) of
        {_, <<"groupchat">>} -> ok;
        _ -> throw(not_groupchat)
    end,
    case lists:keyfind([{<<"xmlns">>, ?MUC_USER}], 3, Children) of
        {xmlel, <<"x">>, _, XChildren} ->
            {xmlel, _, ItemAttrs, _} = lists:keyfind(<<"item">>, 2, XChildren),
            {_, Jid} = lists:keyfind(<<"jid">>, 1, ItemAttrs),
            true = is_binary(Jid),
            Jid;
        _ -> throw(not_groupchat)
    end.

%% xmerl records by position (erlang-xmerl without its -dev headers): xmlElement namespace 5,
%% xmlNamespace default 2, xmlAttribute value 9.
jid_from_xml(Payload) ->
    Text = "<?xml version='1.0' encoding='utf-8'?>" ++ binary_to_list(Payload),
    {Doc, _Rest} = xmerl_scan:string(Text, [{quiet, true}]),
    case xmerl_xpath:string("/message/@type", Doc) of
        [Type] when element(9, Type) =:= "groupchat" -> ok;
        _ -> throw(not_groupchat)
    end,
    MucUser = 'http://jabber.org/protocol/muc#user',
    lists:any(fun(X) -> element(2, element(5, X)) =:= MucUser end, xmerl_xpath:string("/message/x", Doc))
        orelse throw(not_groupchat),
    [Jid] = xmerl_xpath:string("/message/x/item/@jid", Doc),
    unicode:characters_to_binary(element(9, Jid)).
