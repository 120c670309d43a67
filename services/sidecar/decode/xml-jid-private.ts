/**
 * TEMPORARY private copy of rule 6 (the JID normalisation) until jid.ts (owned by the eterm
 * helper) lands; then xml-rules.ts imports normalizeJid from './jid.js' and this file goes.
 * Per code point full Unicode lower-casing, with no final-sigma context rule, then cut at '/'.
 */
export function normalizeJid(raw: string): string {
  let lower = '';
  for (const ch of raw) lower += ch.toLowerCase();
  const slash = lower.indexOf('/');
  return slash < 0 ? lower : lower.slice(0, slash);
}
