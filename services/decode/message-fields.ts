/**
 * The other two columns MongooseIM fills when it archives a message, answered from the stored
 * payload: `origin_id` (3.7.0, mod_mam_utils:get_origin_id/1) and `is_groupchat` (6.2.1,
 * mod_mam_utils:is_groupchat/1 of the message's type). docs/extraction-rules.md states the rules;
 * eterm-fields.ts and the xml scanner apply them. Pure and synchronous; never throws on bad input.
 *
 * Both answers come from one decode of the payload: a walk that fills both columns reads and
 * inflates each message once.
 */
import { fail, type Failure, type PayloadFormat } from './answer.js';
import { fieldsFromEterm } from './eterm-fields.js';
import { detectFormat } from './extract.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from './limits.js';
import { scanMessage } from './xml-scanner.js';

/** The message's origin-id, as MongooseIM stores it: the id text, or null (the column stays NULL). */
export interface OriginId {
  readonly originId: string | null;
}

/** Whether the message's type is exactly `groupchat`. */
export interface Groupchat {
  readonly isGroupchat: boolean;
}

export type OriginIdAnswer = OriginId | Failure;
export type GroupchatAnswer = Groupchat | Failure;

export interface FieldAnswers {
  readonly originId: OriginIdAnswer;
  readonly isGroupchat: GroupchatAnswer;
}

export function isOriginId(answer: OriginIdAnswer): answer is OriginId {
  return (answer as OriginId).originId !== undefined;
}

export function isGroupchatAnswer(answer: GroupchatAnswer): answer is Groupchat {
  return (answer as Groupchat).isGroupchat !== undefined;
}

export function extractMessageFields(payload: Uint8Array, format: PayloadFormat, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): FieldAnswers {
  if (payload.length > limits.maxPayloadBytes) {
    const tooLarge = fail('payload_too_large', `payload of ${payload.length} bytes is over the limit of ${limits.maxPayloadBytes} (maxPayloadBytes)`);
    return { originId: tooLarge, isGroupchat: tooLarge };
  }
  const resolved = format === 'auto' ? detectFormat(payload) : format;
  return resolved === 'eterm' ? fieldsFromEterm(payload, limits) : fieldsFromXml(payload, limits);
}

const NS_STANZAID = 'urn:xmpp:sid:0';

/**
 * The same rules on the tree exml would parse from the text: attribute names and `xmlns` as
 * written (no namespace inheritance, a prefixed `u:origin-id` is another name). What our XML
 * reader refuses is malformed for every field.
 */
function fieldsFromXml(payload: Uint8Array, limits: DecodeLimits): FieldAnswers {
  const scanned = scanMessage(payload, limits);
  if ('malformed' in scanned) {
    const malformed = fail('malformed', `xml: ${scanned.malformed}`);
    return { originId: malformed, isGroupchat: malformed };
  }
  const facts = scanned.facts;
  const isGroupchat: GroupchatAnswer = { isGroupchat: facts.rootType === 'groupchat' };
  let originId: OriginIdAnswer;
  if (facts.originIdChild === 'text') {
    originId = fail('malformed', 'xml: the first child of the root that the origin-id lookup finds is the text "origin-id", not an element');
  } else if (facts.originIdChild === 'none' || facts.originIdXmlns !== NS_STANZAID) {
    originId = { originId: null };
  } else {
    originId = { originId: facts.originIdValue };
  }
  return { originId, isGroupchat };
}
