/**
 * `verify`: re-decodes a random sample of records that already have their write, and asks the
 * backend whether what it holds is what the payload says.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import type { AnyBackend, OpenExtractStream } from './types.js';

export const DEFAULT_VERIFY_SAMPLE = 1000;

export interface VerifyMismatch<Key = any> {
  readonly key: Key;
  /** The key as the backend names its fields. */
  readonly fields: Record<string, string>;
  /** What the store holds, in words. */
  readonly stored: string;
  readonly kind: string;
  readonly detail: string;
}

export interface VerifySummary {
  readonly checked: number;
  readonly matching: number;
  readonly mismatches: VerifyMismatch[];
}

export async function runVerify(options: {
  backend: AnyBackend;
  openStream: OpenExtractStream;
  format?: PayloadFormat;
  sample?: number;
}): Promise<VerifySummary> {
  const backend = options.backend;
  const format = options.format ?? backend.defaultFormat;
  const samples = await backend.sampleForVerify(options.sample ?? DEFAULT_VERIFY_SAMPLE);
  const stream = await options.openStream(format);
  try {
    const answers = samples.length === 0 ? [] : await stream.extract(samples.map((s, i) => ({ key: String(i), payload: s.payload })));
    if (answers.length !== samples.length) throw new Error(`decoding answered ${answers.length} results for ${samples.length} samples`);
    const mismatches: VerifyMismatch[] = [];
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i];
      const mismatch = await backend.verifyAnswer(sample, answers[i]);
      if (mismatch !== null) mismatches.push({ key: sample.key, fields: backend.describeKey(sample.key), stored: sample.stored, ...mismatch });
    }
    return { checked: samples.length, matching: samples.length - mismatches.length, mismatches };
  } finally {
    await stream.end().catch(() => {});
  }
}
