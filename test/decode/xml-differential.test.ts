/**
 * Differential tests of the xml decoder over thousands of seeded, MongooseIM-like messages:
 *
 * 1. against xmerl (the reference tool's parser, through test/support/xmerl-oracle.escript):
 *    varied well-formed messages, random mutations of them and markup gibberish (mostly
 *    malformed). Our answer
 *    must equal the reference's, except for our documented deviation (a DOCTYPE is -1).
 * 2. against the rules implemented over fast-xml-parser's output (entity limits on), for the
 *    well-formed messages whose attribute spellings every parser reads alike.
 *
 * The base seed is XML_FUZZ_SEED (default 20190626); a failure names the case seed.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { isSuccess, type Answer } from '../../services/decode/answer.js';
import { DEFAULT_DECODE_LIMITS } from '../../services/decode/limits.js';
import { normalizeJid } from '../../services/decode/jid.js';
import { extractFromXml } from '../../services/decode/xml-rules.js';
import { askXmerl, type OracleAnswer } from '../support/xmerl-oracle.js';
import { MUC_USER, mutate, variedMessage } from '../support/xml-messages.js';
import { seededRandom } from '../../cli/demo/seeded-random.js';

const BASE_SEED = Number(process.env.XML_FUZZ_SEED ?? 20190626);
const VARIED = 3000;
const MUTATED = 5000;
const FXP_CASES = 3000;
const GIBBERISH = 2000;

/** Short documents built from markup-heavy fragments: mostly malformed in every way there is. */
function gibberish(seed: number): Uint8Array {
  const rand = seededRandom(seed);
  const parts = [
    '<',
    '>',
    '/',
    '=',
    "'",
    '"',
    '&',
    ';',
    '#',
    'x',
    '!',
    '?',
    '-',
    '[',
    ']',
    ' ',
    '\n',
    'message',
    'type',
    'groupchat',
    'item',
    'jid',
    'xmlns',
    MUC_USER,
    'CDATA',
    'DOCTYPE',
    'xml',
    'a',
    ':',
    '&amp;',
    '&#65;',
    '<!--',
    '-->',
    '<?',
    '?>',
    ']]>',
    'é',
    '\u0000',
  ];
  const prefix = `<message type='groupchat'><x xmlns='${MUC_USER}'>`;
  let s = rand() < 0.5 ? prefix : '';
  const len = 1 + Math.floor(rand() * 40);
  for (let k = 0; k < len; k++) s += parts[Math.floor(rand() * parts.length)];
  return Buffer.from(s, 'utf8');
}

type Code = string; // 'JID <jid>' | '-1' | '-2', easy to compare and print

function ours(payload: Uint8Array): { code: Code; answer: Answer } {
  const answer = extractFromXml(payload, DEFAULT_DECODE_LIMITS);
  if (isSuccess(answer)) return { code: `JID ${answer.jid}`, answer };
  return { code: answer.reason === 'not_groupchat' ? '-2' : '-1', answer };
}

function oracleCode(a: OracleAnswer): Code {
  return 'jid' in a ? `JID ${a.jid}` : a.code;
}

interface FuzzCase {
  seed: number;
  payload: Uint8Array;
}

function buildCases(): FuzzCase[] {
  const cases: FuzzCase[] = [];
  for (let k = 0; k < GIBBERISH; k++) cases.push({ seed: BASE_SEED + 2_000_000 + k, payload: gibberish(BASE_SEED + 2_000_000 + k) });
  for (let k = 0; k < VARIED + MUTATED; k++) {
    const seed = BASE_SEED + k;
    const rand = seededRandom(seed);
    let payload: Uint8Array = Buffer.from(variedMessage(rand), 'utf8');
    if (k >= VARIED) {
      const rounds = 1 + Math.floor(rand() * 3);
      for (let r = 0; r < rounds; r++) payload = mutate(rand, payload);
    }
    cases.push({ seed, payload });
  }
  return cases;
}

describe(`xml decoder vs xmerl on ${VARIED} varied, ${MUTATED} mutated and ${GIBBERISH} gibberish payloads (base seed ${BASE_SEED})`, () => {
  const cases = buildCases();
  let oracle: OracleAnswer[] = [];
  before(async () => {
    oracle = await askXmerl(cases.map((c) => c.payload));
  });

  it('answers exactly as the reference, DOCTYPE aside', () => {
    const mismatches: string[] = [];
    const tally = { jid: 0, m1: 0, m2: 0, doctype: 0 };
    cases.forEach((c, k) => {
      const mine = ours(c.payload);
      const theirs = oracleCode(oracle[k]);
      if (!isSuccess(mine.answer) && /DOCTYPE/.test(mine.answer.detail)) {
        tally.doctype += 1; // our deviation: never read a DTD
        return;
      }
      if (mine.code.startsWith('JID')) tally.jid += 1;
      else if (mine.code === '-1') tally.m1 += 1;
      else tally.m2 += 1;
      if (mine.code !== theirs && mismatches.length < 10) {
        const detail = isSuccess(mine.answer) ? '' : ` (${mine.answer.detail})`;
        mismatches.push(
          `seed ${c.seed}: ours ${JSON.stringify(mine.code)}${detail}, xmerl ${JSON.stringify(theirs)}, ` +
            `payload ${JSON.stringify(Buffer.from(c.payload).toString('latin1'))}`,
        );
      }
    });
    assert.deepEqual(mismatches, []);
    // The generator must exercise every answer, or this test proves little.
    assert.ok(tally.jid > 1000 && tally.m1 > 1000 && tally.m2 > 500, `too one-sided: ${JSON.stringify(tally)}`);
  });
});

/** The xml rules, written over fast-xml-parser's ordered output. */
function rulesOverFastXmlParser(parser: XMLParser, xml: string): Code {
  type Node = Record<string, unknown>;
  const nameOf = (n: Node): string | null => {
    const key = Object.keys(n).find((k) => k !== ':@');
    return key === undefined || key.startsWith('#') || key.startsWith('?') ? null : key;
  };
  const attrsOf = (n: Node): Record<string, string> => (n[':@'] ?? {}) as Record<string, string>;
  const childrenOf = (n: Node): Node[] => n[nameOf(n)!] as Node[];
  const doc = parser.parse(xml) as Node[];
  const root = doc.find((n) => nameOf(n) !== null);
  if (root === undefined) return '-1';
  if (nameOf(root) !== 'message' || attrsOf(root).type !== 'groupchat') return '-2';
  const rootNs = attrsOf(root).xmlns;
  const xs = childrenOf(root).filter((n) => nameOf(n) === 'x');
  if (!xs.some((x) => (attrsOf(x).xmlns ?? rootNs) === MUC_USER)) return '-2';
  const jids = xs
    .flatMap((x) => childrenOf(x).filter((n) => nameOf(n) === 'item'))
    .map((item) => attrsOf(item).jid)
    .filter((jid): jid is string => jid !== undefined);
  return jids.length === 1 ? `JID ${normalizeJid(jids[0])}` : '-1';
}

describe(`xml decoder vs the rules over fast-xml-parser on ${FXP_CASES} well-formed messages`, () => {
  it('answers as the same rules over fast-xml-parser (entity limits on)', () => {
    const parser = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: false,
      attributeNamePrefix: '',
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: false,
      htmlEntities: true, // needed for numeric character references; no HTML entity is generated
      processEntities: { enabled: true, maxEntityCount: 100, maxTotalExpansions: 1000, maxExpandedLength: 100_000 },
    });
    const mismatches: string[] = [];
    const seen = new Set<string>();
    for (let k = 0; k < FXP_CASES; k++) {
      const seed = BASE_SEED + 1_000_000 + k;
      const xml = variedMessage(seededRandom(seed), true);
      const mine = ours(Buffer.from(xml, 'utf8')).code;
      const theirs = rulesOverFastXmlParser(parser, xml);
      seen.add(mine.startsWith('JID') ? 'jid' : mine);
      if (mine !== theirs && mismatches.length < 10) {
        mismatches.push(`seed ${seed}: ours ${JSON.stringify(mine)}, fast-xml-parser ${JSON.stringify(theirs)}, payload ${JSON.stringify(xml)}`);
      }
    }
    assert.deepEqual(mismatches, []);
    assert.deepEqual([...seen].sort(), ['-1', '-2', 'jid']);
  });
});
