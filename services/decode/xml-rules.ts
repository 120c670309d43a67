/**
 * The xml rules of sender-jid-semantics.md, over the facts gathered by the scanner:
 *
 * 1. The payload must be well-formed XML (see xml-scanner.ts for exactly what that means); else -1.
 * 2. The root must be `message` without prefix, with `type` exactly `groupchat`; else -2.
 * 3. Some unprefixed `x` child of the root must have muc#user as its default namespace in scope
 *    (declared on it or inherited from the root); else -2.
 * 4. Exactly one `jid` attribute across all unprefixed `item` children of all unprefixed `x`
 *    children of the root, whatever their namespace; zero or several: -1.
 * 5. Attribute values are decoded (references, and white space as the reference normalises it).
 *    Any DOCTYPE is -1: we never process a DTD (the reference would expand its entities).
 * 6. The JID is lower-cased per character and cut at the first '/'.
 *
 * The checks run in the reference's order: it parses the whole document before looking at
 * anything, so a malformed payload is -1 even when it is not a group chat.
 */
import { fail, type Answer } from './answer.js';
import type { DecodeLimits } from './limits.js';
import { bareJidFromUtf8, normalizeJid } from './jid.js';
import { scanMessage } from './xml-scanner.js';

export function extractFromXml(payload: Uint8Array, limits: DecodeLimits): Answer {
  const scanned = scanMessage(payload, limits);
  if ('malformed' in scanned) return fail('malformed', `xml: ${scanned.malformed}`);
  const facts = scanned.facts;
  if (!facts.rootIsMessage) {
    return fail('not_groupchat', `xml: root element is <${facts.rootName}>, not <message>`);
  }
  if (facts.rootType === null) return fail('not_groupchat', 'xml: <message> has no type attribute');
  if (facts.rootType !== 'groupchat') {
    return fail('not_groupchat', `xml: <message> type is ${JSON.stringify(facts.rootType.slice(0, 100))}, not "groupchat"`);
  }
  if (!facts.hasMucUserX) {
    return fail('not_groupchat', 'xml: no <x> child of <message> in namespace http://jabber.org/protocol/muc#user');
  }
  if (facts.jidCount !== 1 || facts.firstJid === null) {
    return fail(
      'malformed',
      facts.jidCount === 0
        ? 'xml: no jid attribute on an <item> child of an <x> child of <message>'
        : `xml: ${facts.jidCount} jid attributes on <item> children of <x> children of <message>; exactly one is needed`,
    );
  }
  const jid = facts.firstJid;
  if (typeof jid === 'string') return { jid: normalizeJid(jid) };
  // The scanner checked these bytes are valid UTF-8, so bareJidFromUtf8 cannot refuse them.
  return { jid: bareJidFromUtf8(payload, jid.start, jid.end) ?? '' };
}
