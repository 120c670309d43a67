/**
 * The XML name character tables (XML 1.0 fourth edition, Appendix B) must be exactly the classes
 * the reference's parser uses: re-derived here from xmerl_lib over every code point.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XML_LETTER_RANGES, XML_NAME_CHAR_RANGES, isNameChar, isNameStartChar } from '../../services/decode/xml-name-chars.js';
import { xmerlNameCharRanges } from '../support/xmerl-oracle.js';

describe('xml name characters', () => {
  it('equal xmerl_lib:is_letter/1 and is_namechar/1 over all of Unicode', async () => {
    const xmerl = await xmerlNameCharRanges();
    assert.deepEqual([...XML_LETTER_RANGES], xmerl.letters);
    assert.deepEqual([...XML_NAME_CHAR_RANGES], xmerl.nameChars);
  });

  it('name starts are letters, underscore and colon; digits, dot, hyphen only continue', () => {
    for (const c of 'aZ_:ñ一') assert.ok(isNameStartChar(c.codePointAt(0)!), c);
    for (const c of '0.-\u0300\u00b7') {
      assert.ok(!isNameStartChar(c.codePointAt(0)!), c);
      assert.ok(isNameChar(c.codePointAt(0)!), c);
    }
    for (const c of ' <>=/"\'\u00d7\u0132\u{10000}') assert.ok(!isNameChar(c.codePointAt(0)!), c);
  });
});
