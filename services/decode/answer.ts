/**
 * The answer to "who sent this archived MUC message?", as a value.
 *
 * Errors are values on the hot path: a batch of 10,000 payloads with a few bad ones must not pay
 * for exceptions. `reason` maps onto the reference escript's answers: `malformed` is its `-1`,
 * `not_groupchat` its `-2`; `payload_too_large` is ours (the reference has no limits) and is a
 * `-1` where only -1/-2 can be said (stdio).
 */
export type PayloadFormat = 'eterm' | 'xml' | 'auto';

export type FailureReason = 'malformed' | 'not_groupchat' | 'payload_too_large';

export interface Success {
  /** The sender's bare JID: lower-cased per character, cut at the first `/`. May be empty or lack `@`. */
  readonly jid: string;
}

export interface Failure {
  readonly reason: FailureReason;
  /** Human-readable and specific: what was wrong and where, for the report of rows not written. */
  readonly detail: string;
}

export type Answer = Success | Failure;

export function isSuccess(answer: Answer): answer is Success {
  return (answer as Success).jid !== undefined;
}

export function fail(reason: FailureReason, detail: string): Failure {
  return { reason, detail };
}

/** The reference tool's numeric code for a failure: -1 or -2. */
export function referenceCode(failure: Failure): '-1' | '-2' {
  return failure.reason === 'not_groupchat' ? '-2' : '-1';
}
