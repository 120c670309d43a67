/**
 * The acceptance check: given what MongooseIM 3.4's GDPR query answered for each JID asked, and
 * the report of records the backfill did not write, list every way the answer differs from what
 * the archive's generator says (empty when the backfill is right). Kept apart from the servers so
 * that its own test can show it failing.
 */
import type { AcceptanceArchive, AcceptanceRecord } from './archive.js';

/** One row of `get_mam_muc_gdpr_data`'s answer: message id (decimal) and the stored payload. */
export interface GdprRow {
  readonly id: string;
  readonly message: Buffer;
}

export type GdprAnswers = ReadonlyMap<string, readonly GdprRow[]>;

export interface CheckOptions {
  /** Which stored payload the backend holds (SQL and Cassandra: eterm; search and Riak: XML). */
  readonly format: 'eterm' | 'xml';
  /** The query sorts by id (all but Riak's): the answer must be in ascending id order. */
  readonly ordered: boolean;
}

const byId = (a: string, b: string): number => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

/** Each asked JID must get exactly its own records, once each, with their stored bytes. */
export function gdprProblems(archive: AcceptanceArchive, answers: GdprAnswers, options: CheckOptions): string[] {
  const problems: string[] = [];
  const recordById = new Map(archive.records.map((r) => [r.id, r]));
  for (const jid of archive.asked) {
    const rows = answers.get(jid);
    if (rows === undefined) {
      problems.push(`${jid}: not asked`);
      continue;
    }
    const expected = archive.records.filter((r) => r.sender === jid).map((r) => r.id);
    const got = rows.map((r) => r.id);
    const gotSet = new Set(got);
    const missing = expected.filter((id) => !gotSet.has(id));
    if (missing.length > 0) problems.push(`${jid}: ${missing.length} of its ${expected.length} messages missing (${missing.slice(0, 5).join(', ')})`);
    const expectedSet = new Set(expected);
    for (const row of rows) {
      if (expectedSet.has(row.id)) continue;
      const r = recordById.get(row.id);
      const whose = r === undefined ? 'not in the archive' : r.sender === null ? `nobody's (${r.what})` : `${r.sender}'s`;
      problems.push(`${jid}: got message ${row.id}, ${whose}`);
    }
    if (gotSet.size !== got.length) problems.push(`${jid}: ${got.length - gotSet.size} messages returned twice`);
    for (const row of rows) {
      const r: AcceptanceRecord | undefined = recordById.get(row.id);
      if (r !== undefined && !row.message.equals(r[options.format])) problems.push(`${jid}: message ${row.id} is not the stored payload`);
    }
    if (options.ordered && got.some((id, i) => i > 0 && byId(got[i - 1], id) > 0)) problems.push(`${jid}: answer not in ascending id order`);
  }
  for (const jid of answers.keys()) if (!archive.asked.includes(jid)) problems.push(`${jid}: asked but not one of the archive's JIDs`);
  return problems;
}

/**
 * The report must list exactly the records nobody may get, each once (after a resumed run, the
 * same record may be listed again, with the same reason), with the reason the generator gives.
 */
export function reportProblems(archive: AcceptanceArchive, reported: readonly { id: string; reason: string }[]): string[] {
  const problems: string[] = [];
  const reasons = new Map<string, string>();
  for (const { id, reason } of reported) {
    const before = reasons.get(id);
    if (before !== undefined && before !== reason) problems.push(`report: ${id} listed as ${before} and as ${reason}`);
    reasons.set(id, reason);
  }
  for (const r of archive.records) {
    const got = reasons.get(r.id);
    if (r.reason === null && got !== undefined) problems.push(`report: ${r.id} (${r.sender}) listed as ${got}, but it has a sender`);
    if (r.reason !== null && got !== r.reason) problems.push(`report: ${r.id} (${r.what}) listed as ${got ?? 'nothing'} instead of ${r.reason}`);
  }
  const ids = new Set(archive.records.map((r) => r.id));
  for (const id of reasons.keys()) if (!ids.has(id)) problems.push(`report: ${id} is not in the archive`);
  return problems;
}

/** What a right backfill makes the GDPR query answer: for the checker's own test. */
export function rightAnswers(archive: AcceptanceArchive, format: 'eterm' | 'xml'): Map<string, GdprRow[]> {
  return new Map(archive.asked.map((jid) => [jid, archive.records.filter((r) => r.sender === jid).map((r) => ({ id: r.id, message: r[format] }))]));
}
