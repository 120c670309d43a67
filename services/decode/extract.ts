/**
 * The one entry point of the decode library: one payload and its format in, one answer out.
 * Pure and synchronous; never throws on bad input.
 */
import { fail, type Answer, type PayloadFormat } from './answer.js';
import { extractFromEterm } from './eterm-rules.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from './limits.js';
import { extractFromXml } from './xml-rules.js';

export function extractSenderJid(payload: Uint8Array, format: PayloadFormat, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Answer {
  if (payload.length > limits.maxPayloadBytes) {
    return fail('payload_too_large', `payload of ${payload.length} bytes is over the limit of ${limits.maxPayloadBytes} (maxPayloadBytes)`);
  }
  const resolved = format === 'auto' ? detectFormat(payload) : format;
  return resolved === 'eterm' ? extractFromEterm(payload, limits) : extractFromXml(payload, limits);
}

/** 'auto': a payload starting with 131 (the external term format's version byte) is eterm, anything else xml. */
export function detectFormat(payload: Uint8Array): 'eterm' | 'xml' {
  return payload.length > 0 && payload[0] === 131 ? 'eterm' : 'xml';
}
