/**
 * `verify`: re-decodes a random sample of rows that have `sender_id` and compares the decoded
 * sender with the `mam_server_user` row the id points at.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import type { Backend, OpenExtractStream, RowKey } from './types.js';

export const DEFAULT_VERIFY_SAMPLE = 1000;

export type MismatchKind = 'sender_row_missing' | 'decode_failed' | 'sender_differs';

export interface Mismatch {
  readonly key: RowKey;
  readonly kind: MismatchKind;
  readonly senderId: string;
  readonly detail: string;
}

export interface VerifySummary {
  readonly checked: number;
  readonly matching: number;
  readonly mismatches: Mismatch[];
}

export async function runVerify(options: {
  backend: Backend;
  openStream: OpenExtractStream;
  format?: PayloadFormat;
  sample?: number;
}): Promise<VerifySummary> {
  const format = options.format ?? 'eterm';
  const rows = await options.backend.sampleForVerify(options.sample ?? DEFAULT_VERIFY_SAMPLE);
  const stream = await options.openStream(format);
  try {
    const results = rows.length === 0 ? [] : await stream.extract(rows.map((r, i) => ({ key: String(i), payload: r.payload, format })));
    const mismatches: Mismatch[] = [];
    rows.forEach((row, i) => {
      const result = results[i];
      const base = { key: row.key, senderId: row.senderId };
      if (row.user === null || row.server === null) {
        mismatches.push({ ...base, kind: 'sender_row_missing', detail: `no mam_server_user row with id ${row.senderId}` });
      } else if (!result.ok) {
        mismatches.push({ ...base, kind: 'decode_failed', detail: `${result.code}: ${result.detail}` });
      } else if (result.user !== row.user || result.server !== row.server) {
        mismatches.push({
          ...base,
          kind: 'sender_differs',
          detail: `payload says ${result.user}@${result.server}, sender_id ${row.senderId} is ${row.user}@${row.server}`,
        });
      }
    });
    return { checked: rows.length, matching: rows.length - mismatches.length, mismatches };
  } finally {
    await stream.end().catch(() => {});
  }
}
