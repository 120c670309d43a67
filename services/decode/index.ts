/** The public API of the decode library. */
export { fail, isSuccess, referenceCode } from './answer.js';
export type { Answer, Failure, FailureReason, PayloadFormat, Success } from './answer.js';
export { DEFAULT_DECODE_LIMITS } from './limits.js';
export type { DecodeLimits } from './limits.js';
export { detectFormat, extractSenderJid } from './extract.js';
export { extractFromEterm } from './eterm-rules.js';
export { extractFromXml } from './xml-rules.js';
export { lowercasePerCodePoint, normalizeJid, splitBareJid } from './jid.js';
export type { SplitJid } from './jid.js';
export { extractMessageFields, isGroupchatAnswer, isOriginId } from './message-fields.js';
export type { FieldAnswers, Groupchat, GroupchatAnswer, OriginId, OriginIdAnswer } from './message-fields.js';
