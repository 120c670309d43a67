/**
 * What one walk of a search archive fills, and the only rules that differ between the walks:
 * - the sender walk (3.3 -> 3.4): `from_jid` (keyword) in the MUC archive `muc_messages`,
 *   whose documents are named `room$mam_id`;
 * - the is_groupchat walk (-> 6.2.1): `is_groupchat` (boolean) in the one-to-one archive
 *   `messages`, whose documents are named `owner$mam_id`.
 * Everything else (partitions, pages, bulk writes, checkpoints, accounting) is shared: the
 * backend and its helpers read the field, the second sort key and the words from here.
 */
import { senderOf } from '../../pipeline/decisions.js';
import type { AnswerKind, Decision, ExtractResult, FieldsResult, Mismatch } from '../../pipeline/types.js';

/** Lucene refuses a keyword term longer than this many UTF-8 bytes. */
export const MAX_KEYWORD_BYTES = 32_766;

/** A value a walk writes into its field. */
export type FieldValue = string | boolean;

export interface WalkTarget<Answer = unknown> {
  /** The document field the walk fills (its absence is what "not yet written" means). */
  readonly field: 'from_jid' | 'is_groupchat';
  /** Its mapping type, as MongooseIM's mapping has it (what `--apply-schema` adds). */
  readonly fieldType: 'keyword' | 'boolean';
  /**
   * Mapping types of the field the walk also works with, writing the value as text (what
   * MongooseIM's queries of the field still match); none for the sender's keyword.
   */
  readonly textTypes: readonly string[];
  /**
   * The keyword sorted on after `mam_id`: with it, the key is unique for MongooseIM's own
   * documents (their `_id` is `<key>$<mam_id>`).
   */
  readonly keyField: 'room' | 'owner';
  /** The archive in words, for errors. */
  readonly archive: string;
  readonly defaultIndex: string;
  /** The mapping type of MongooseIM's Elasticsearch 5/6 typed index. */
  readonly typedName: string;
  /** The MongooseIM version whose queries need the field (words for a mapping conflict). */
  readonly neededBy: string;
  /**
   * Names this walk's checkpoints and partition plan apart from any other walk of the same
   * index ('' for the sender walk: its ids are those it always had).
   */
  readonly checkpointSuffix: string;
  /** The decoding answers `decide` takes. */
  readonly answers: AnswerKind;
  /** What to write for a decodable message, or why nothing. */
  decide(answer: Answer): Decision<FieldValue>;
  /** The stored value as the walk compares it (`undefined`: none). */
  normalise(stored: unknown): FieldValue | undefined;
  /** Null when `stored` is what `answer` says, else what is wrong. */
  verify(stored: FieldValue, answer: Answer): Mismatch | null;
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export const SENDER_WALK: WalkTarget<ExtractResult> = {
  field: 'from_jid',
  fieldType: 'keyword',
  textTypes: [],
  keyField: 'room',
  archive: 'MUC archive',
  defaultIndex: 'muc_messages',
  typedName: 'muc',
  neededBy: 'MongooseIM 3.4 queries it with a term filter',
  checkpointSuffix: '',
  answers: 'sender',
  decide(answer) {
    const sender = senderOf(answer);
    if (!('write' in sender)) return sender;
    const bytes = Buffer.byteLength(sender.write.bareJid, 'utf8');
    if (bytes > MAX_KEYWORD_BYTES) return { reason: 'jid_not_storable', detail: `JID of ${bytes} bytes: a keyword holds at most ${MAX_KEYWORD_BYTES}` };
    return { write: sender.write.bareJid };
  },
  normalise: (stored) => (stored === undefined || stored === null ? undefined : asText(stored)),
  verify(stored, answer) {
    const decision = this.decide(answer);
    if (!('write' in decision))
      return { kind: 'undecodable', detail: `from_jid '${String(stored)}', but the message gives ${decision.reason}: ${decision.detail}` };
    if (decision.write !== stored) return { kind: 'different_sender', detail: `from_jid '${String(stored)}', the message says '${String(decision.write)}'` };
    return null;
  },
};

export const GROUPCHAT_WALK: WalkTarget<FieldsResult> = {
  field: 'is_groupchat',
  fieldType: 'boolean',
  // MongooseIM 6.2.1 sends "true"/"false": written to a 6.2.0 index whose mapping was not updated,
  // the first one maps the field dynamically as text (with a keyword sub-field), and its
  // `term: {is_groupchat: "false"}` still matches the token "false".
  textTypes: ['text', 'keyword'],
  keyField: 'owner',
  archive: 'one-to-one archive',
  defaultIndex: 'messages',
  typedName: 'pm',
  neededBy: 'MongooseIM 6.2.1 filters on it with a term query',
  checkpointSuffix: ':is_groupchat',
  answers: 'fields',
  decide(answer) {
    const g = answer.isGroupchat;
    // false is an answer like true: a document without the field drops out of "no groupchat" queries.
    return g.ok ? { write: g.value } : { reason: g.code, detail: g.detail };
  },
  // MongooseIM sends "true"/"false" as strings; the index maps both forms to the same boolean.
  normalise(stored) {
    if (stored === undefined || stored === null) return undefined;
    if (stored === true || stored === 'true') return true;
    if (stored === false || stored === 'false') return false;
    return asText(stored);
  },
  verify(stored, answer) {
    const g = answer.isGroupchat;
    if (!g.ok) return { kind: 'undecodable', detail: `is_groupchat ${JSON.stringify(stored)}, but the message gives ${g.code}: ${g.detail}` };
    if (g.value !== stored) return { kind: 'different_value', detail: `payload says is_groupchat ${g.value}, the document holds ${JSON.stringify(stored)}` };
    return null;
  },
};

/** The stored value in words, for verify lines (the sender walk's: the JID as it always was). */
export function describeStored(target: WalkTarget, value: FieldValue): string {
  return target.field === 'from_jid' ? String(value) : `is_groupchat ${JSON.stringify(value)}`;
}
