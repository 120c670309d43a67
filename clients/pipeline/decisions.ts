/** The rule every backend starts from: an answer is worth writing only when its JID names a user. */
import type { Decision, ExtractResult } from './types.js';

export interface Sender {
  readonly bareJid: string;
  readonly user: string;
  readonly server: string;
}

/** The sender of a successful answer whose JID has a local part and a domain; otherwise why not. */
export function senderOf(answer: ExtractResult): Decision<Sender> {
  if (!answer.ok) return { reason: answer.code, detail: answer.detail };
  if (answer.user === '') return { reason: 'jid_without_local_part', detail: `JID '${answer.bareJid}' cannot be split into user and server` };
  if (answer.server === '') return { reason: 'jid_without_domain', detail: `JID '${answer.bareJid}' cannot be split into user and server` };
  return { write: { bareJid: answer.bareJid, user: answer.user, server: answer.server } };
}

export function isWrite<W>(decision: Decision<W>): decision is { readonly write: W } {
  return 'write' in decision;
}
