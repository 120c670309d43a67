/**
 * The archive every acceptance suite backfills and then asks MongooseIM 3.4's GDPR query about:
 * MUC messages whose payloads a real Erlang VM made (`term_to_binary/1`, `term_to_binary/2` with
 * `compressed`, and the same element as XML), from senders who write in many rooms under several
 * spellings of one JID (case, `İ`/`i̇`, `Σ`/`σ`, the Ohm and Kelvin signs), plus records the
 * backfill must leave alone (undecodable, not group chat, JIDs without local part or domain).
 *
 * Who sent what is never written here by hand: each record's sender is Erlang's answer for its
 * eterm payload (erlangOracle) and xmerl's for its XML payload (askXmerl), and both must agree.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { mucMessage, xmlTerm, type MucMessageSpec } from '../../cli/demo/term-encoder.js';
import { erlangOracle, type ExpectedAnswer } from '../support/erlang-payloads.js';
import { erlangSource } from '../support/term-encoder-erlang.js';
import { askXmerl } from '../support/xmerl-oracle.js';

export const MUC_HOST = 'muc.example.com';
export const ROOMS = Array.from({ length: 8 }, (_, i) => `room${i + 1}`);
export const roomJid = (room: number): string => `${ROOMS[room]}@${MUC_HOST}`;

/**
 * One person each: every spelling in a group must lower-case to the same bare JID (checked
 * against Erlang). Chosen so that stringprep, which MongooseIM applies to the requesting user,
 * leaves that bare JID unchanged (docs/mongooseim-gdpr-queries.md, "Normalisation").
 */
const SENDER_SPELLINGS: readonly (readonly string[])[] = [
  ['Alice@Example.COM/Phone', 'alice@example.com/laptop', 'ALICE@EXAMPLE.COM'],
  ['alicia@example.com/x'],
  ['bob@example.com'],
  ['İstanbul@Example.com/a', 'i\u0307stanbul@example.com/b'],
  ['ΣΑΣ@Ελλάδα.GR/Σ', 'σασ@ελλάδα.gr/y'],
  ['\u2126mega@example.com/ohm', '\u03c9mega@Example.com'],
  ['\u212Aate@example.com', 'kate@example.com/k'],
  ['gżegżółka@brzęczyszczykiewicz.pl/dom'],
  // The bare JID of a room: in SQL the sender shares the room's mam_server_user row.
  ['Room1@MUC.example.com/x'],
  ['carol@example.com/a/b@c'],
];

/** Records the backfill must leave unwritten, and the JIDs of people who sent no group chat. */
const REFUSED: readonly { readonly name: string; readonly spec?: MucMessageSpec; readonly raw?: { eterm: Buffer; xml: Buffer } }[] = [
  // A one-to-one message naming a real sender: it must not join bob's export.
  { name: 'chat from bob', spec: { jid: 'bob@example.com/r', type: 'chat' } },
  { name: 'chat from dave', spec: { jid: 'dave@example.com', type: 'chat' } },
  { name: 'without muc#user x', spec: { withoutX: true } },
  { name: 'item without jid', spec: {} },
  { name: 'bytes that are no term', raw: { eterm: Buffer.from([131, 1, 2, 3]), xml: Buffer.from("<message type='groupchat'><body>cut") } },
  { name: 'jid without local part', spec: { jid: '@example.com/res' } },
  { name: 'jid without domain', spec: { jid: 'erin@' } },
];

/** Asked too, and must get nothing: dave sent only a chat message, erin only a JID without domain. */
export const STRANGERS = ['dave@example.com', 'erin@example.com', 'nobody@example.com'];

export interface AcceptanceRecord {
  /** The message id (decimal), unique in the archive, beyond 2^53. */
  readonly id: string;
  readonly room: number;
  readonly nick: string;
  /** Erlang's term_to_binary of the element, plain or compressed (alternating). */
  readonly eterm: Buffer;
  /** The same element as XML, as MongooseIM's XML codec stores it. */
  readonly xml: Buffer;
  /** The bare JID that sent it, or null when nobody may get it. */
  readonly sender: string | null;
  /** Why the backfill must not write it (null when it must). */
  readonly reason: NotWrittenReason | null;
  /** What the generator made, for messages. */
  readonly what: string;
}

export interface AcceptanceArchive {
  readonly records: readonly AcceptanceRecord[];
  /** Every bare JID that sent at least one record, sorted. */
  readonly senders: readonly string[];
  /** Every JID the suites ask about: the senders and the strangers. */
  readonly asked: readonly string[];
}

const FIRST_MESSAGE_ID = 399582233150625537n;

/** term_to_binary/1, term_to_binary/2 [compressed] and an XML print of each term, by one Erlang VM. */
function erlangPayloads(terms: readonly ReturnType<typeof xmlTerm>[]): { plain: Buffer; compressed: Buffer; xml: Buffer }[] {
  const dir = mkdtempSync(join(tmpdir(), 'mim-acceptance-'));
  try {
    const input = join(dir, 'terms.txt');
    const output = join(dir, 'out.txt');
    writeFileSync(input, terms.map((t) => `${erlangSource(t)}.\n`).join(''));
    // The XML print follows exml:to_binary's shape (attributes in order, single quotes, empty
    // elements self-closed), as test/support/erlang-payloads.escript does.
    const program = `
      Esc = fun(V) -> lists:foldl(fun({F, T}, A) -> binary:replace(A, F, T, [global]) end, V,
                       [{<<"&">>, <<"&amp;">>}, {<<"<">>, <<"&lt;">>}, {<<">">>, <<"&gt;">>}]) end,
      EscA = fun(V) -> binary:replace(binary:replace(Esc(V), <<"'">>, <<"&apos;">>, [global]), <<"\\"">>, <<"&quot;">>, [global]) end,
      ToXml = fun Me({xmlel, N, As, Cs}) ->
                    A = [[" ", K, "='", EscA(V), "'"] || {K, V} <- As],
                    case Cs of [] -> iolist_to_binary(["<", N, A, "/>"]);
                               _ -> iolist_to_binary(["<", N, A, ">", [Me(C) || C <- Cs], "</", N, ">"]) end;
                  Me({xmlcdata, T}) -> Esc(T) end,
      {ok, Terms} = file:consult("${input}"),
      Out = [[binary:encode_hex(term_to_binary(T)), " ", binary:encode_hex(term_to_binary(T, [compressed])), " ",
              binary:encode_hex(ToXml(T)), "\\n"] || T <- Terms],
      ok = file:write_file("${output}", Out),
      halt(0).`;
    const result = spawnSync('erl', ['-noshell', '-eval', program], { encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0)
      throw new Error(`acceptance archive: erl failed (${result.status} ${result.error?.message ?? ''}): ${result.stdout}${result.stderr}`);
    const lines = readFileSync(output, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0);
    if (lines.length !== terms.length) throw new Error(`acceptance archive: Erlang encoded ${lines.length} of ${terms.length} terms`);
    return lines.map((line) => {
      const [plain, compressed, xml] = line.split(' ');
      return { plain: Buffer.from(plain, 'hex'), compressed: Buffer.from(compressed, 'hex'), xml: Buffer.from(xml, 'hex') };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The reference's answer as the backfill's outcome: a bare JID to write, or why not. */
function outcomeOf(answer: ExpectedAnswer): { sender: string | null; reason: NotWrittenReason | null } {
  if (!('jid' in answer)) return { sender: null, reason: answer.code === '-2' ? 'not_groupchat' : 'malformed' };
  const at = answer.jid.indexOf('@');
  if (at <= 0) return { sender: null, reason: 'jid_without_local_part' };
  if (at === answer.jid.length - 1) return { sender: null, reason: 'jid_without_domain' };
  return { sender: answer.jid, reason: null };
}

const same = (a: ExpectedAnswer, b: ExpectedAnswer): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * `perSpelling` messages from every spelling of every sender, round robin (so ids interleave
 * senders), each in the next of a sender's rooms; `perRefused` records of each refused kind.
 */
export async function buildAcceptanceArchive(perSpelling = 24, perRefused = 6): Promise<AcceptanceArchive> {
  interface Draft {
    spec?: MucMessageSpec;
    raw?: { eterm: Buffer; xml: Buffer };
    what: string;
    group?: number;
  }
  const drafts: Draft[] = [];
  const spellings = SENDER_SPELLINGS.flatMap((g, group) => g.map((jid) => ({ jid, group })));
  for (let k = 0; k < Math.max(perSpelling, perRefused); k++) {
    if (k < perSpelling) {
      for (const s of spellings) drafts.push({ spec: { jid: s.jid, body: `message ${drafts.length} from ${s.jid}` }, what: s.jid, group: s.group });
    }
    if (k < perRefused) for (const r of REFUSED) drafts.push({ spec: r.spec && { ...r.spec, body: `refused ${drafts.length}` }, raw: r.raw, what: r.name });
  }
  const withSpec = drafts.filter((d) => d.spec !== undefined);
  const encoded = erlangPayloads(withSpec.map((d) => xmlTerm(mucMessage(d.spec!))));
  const payloadOf = new Map(withSpec.map((d, i) => [d, encoded[i]]));
  const payloads = drafts.map((d, n) => {
    const e = payloadOf.get(d);
    if (e === undefined) return d.raw!;
    return { eterm: n % 2 === 0 ? e.compressed : e.plain, xml: e.xml };
  });
  const etermAnswers = erlangOracle(payloads.map((p) => p.eterm));
  const xmlAnswers = await askXmerl(payloads.map((p) => p.xml));
  const groupJid = new Map<number, string>();
  const records = drafts.map((d, n): AcceptanceRecord => {
    const eterm = etermAnswers[n];
    const xml = xmlAnswers[n];
    const etermOutcome = outcomeOf(eterm);
    if ((etermOutcome.sender !== null) !== (outcomeOf(xml).sender !== null) || (etermOutcome.sender !== null && !same(eterm, xml))) {
      throw new Error(`acceptance archive: Erlang answers ${JSON.stringify(eterm)} for the eterm and ${JSON.stringify(xml)} for the XML of ${d.what}`);
    }
    if (d.group !== undefined) {
      if (etermOutcome.sender === null) throw new Error(`acceptance archive: Erlang reads no sender from ${d.what}`);
      const seen = groupJid.get(d.group) ?? etermOutcome.sender;
      if (seen !== etermOutcome.sender) throw new Error(`acceptance archive: ${d.what} lower-cases to ${etermOutcome.sender}, its group to ${seen}`);
      groupJid.set(d.group, seen);
    } else if (etermOutcome.sender !== null) throw new Error(`acceptance archive: Erlang reads sender ${etermOutcome.sender} from ${d.what}, which must fail`);
    // A sender's k-th message goes to its k-th room (mod 8), shifted per sender: everyone in every room.
    const room = (n * 3 + (d.group ?? 0)) % ROOMS.length;
    const nick = d.spec?.jid?.split('@')[0]?.toLowerCase() || `anon${n % 5}`;
    return { id: String(FIRST_MESSAGE_ID + BigInt(n) * 256n), room, nick, ...payloads[n], ...etermOutcome, what: d.what };
  });
  const senders = [...new Set(records.flatMap((r) => (r.sender === null ? [] : [r.sender])))].sort();
  return { records, senders, asked: [...senders, ...STRANGERS] };
}

/** `user` and `host` as MongooseIM's get_mam_muc_gdpr_data(Username, Host) receives them. */
export function splitJid(jid: string): { user: string; host: string } {
  const at = jid.indexOf('@');
  return { user: jid.slice(0, at), host: jid.slice(at + 1) };
}
