/** Comparing our Answer with the answer Erlang computed. */
import { isSuccess, referenceCode, type Answer } from '../../services/decode/index.js';
import type { ExpectedAnswer } from '../support/erlang-payloads.js';

/** Our answer in the reference's terms: the JID, or '-1' / '-2'. */
export function asReference(answer: Answer): ExpectedAnswer {
  return isSuccess(answer) ? { jid: answer.jid } : { code: referenceCode(answer) };
}

export function describe(answer: Answer): string {
  return isSuccess(answer) ? `jid ${JSON.stringify(answer.jid)}` : `${answer.reason}: ${answer.detail}`;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
