/**
 * A decoding stream without gRPC: `extractSenderJid` + `splitBareJid` of the decode library,
 * answered in order like the sidecar client's stream. Lets the pipeline suites isolate the
 * database side; the end-to-end suites use the real sidecar.
 */
import type { PayloadFormat } from '../../services/decode/index.js';
import { extractSenderJid } from '../../services/decode/index.js';
import { splitBareJid } from '../../services/decode/index.js';
import type { ExtractItem, ExtractResult, ExtractStream } from '../../clients/pipeline/types.js';

export function inProcessExtract(items: readonly ExtractItem[], format: PayloadFormat): ExtractResult[] {
  return items.map((item): ExtractResult => {
    const answer = extractSenderJid(item.payload, item.format ?? format);
    if ('reason' in answer) return { key: item.key, ok: false, code: answer.reason, detail: answer.detail };
    const split = splitBareJid(answer.jid);
    if ('reason' in split) return { key: item.key, ok: false, code: split.reason, detail: split.detail };
    return { key: item.key, ok: true, bareJid: answer.jid, user: split.user, server: split.server };
  });
}

export function openInProcessStream(format: PayloadFormat): ExtractStream {
  return {
    async extract(items) {
      // Yield once, like a real round trip, so batches really overlap with reads and writes.
      await new Promise((resolve) => setImmediate(resolve));
      return inProcessExtract(items, format);
    },
    async end() {},
  };
}
