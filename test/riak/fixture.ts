/**
 * What the Riak suites share: a double loaded with an Erlang-made archive, the backend opened on
 * it through the real definition (flags as the CLI passes them), the expected state of every
 * object after a backfill (from xmerl, the reference tool's parser), and the check of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import definition from '../../clients/backends/riak/definition.js';
import type { RiakBackend } from '../../clients/backends/riak/riak-backend.js';
import type { FlagValues } from '../../clients/backends/registry.js';
import { riakArchive, loadArchive, type ArchiveObject } from '../support/riak-archive.js';
import { startRiakDouble, type RiakDouble, type RiakDoubleOptions } from '../support/riak-double.js';
import { askXmerl } from '../support/xmerl-oracle.js';

/**
 * A stand-in for MongooseIM 3.4's tools/mam_search_schema.xml (we do not ship MongooseIM's file):
 * a Solr schema declaring, among others, the two fields 3.4 added.
 */
export const SCHEMA_34 = `<?xml version="1.0" encoding="UTF-8" ?>
<schema name="mam" version="1.5">
 <fields>
   <field name="_yz_id" type="_yz_str" indexed="true" stored="true" multiValued="false" required="true"/>
   <field name="msg_id_register" type="tlong" indexed="true" stored="false" multiValued="false"/>
   <field name="search_text_register" type="text_general" indexed="true" stored="false" multiValued="false"/>
   <field name="msg_owner_jid_register" type="_yz_str" indexed="true" stored="false" multiValued="false"/>
   <field name="mam_type_register" type="_yz_str" indexed="true" stored="false" multiValued="false"/>
   <dynamicField name="*" type="ignored"/>
 </fields>
 <uniqueKey>_yz_id</uniqueKey>
</schema>
`;

/** MongooseIM 3.3's schema: without the two fields. */
export const SCHEMA_33 = SCHEMA_34.replace(/ *<field name="(msg_owner_jid|mam_type)_register"[^\n]*\n/g, '');

export type Expected = { readonly write: { readonly mamType: 'muc' | 'pm'; readonly owner: string } } | { readonly untouched: string };

export function expectedFor(o: ArchiveObject, answer: { jid: string } | { code: '-1' | '-2' }): Expected {
  if ('jid' in answer) {
    const at = answer.jid.indexOf('@');
    if (at <= 0 || at === answer.jid.length - 1) return { untouched: `JID '${answer.jid}' names no user` };
    return { write: { mamType: 'muc', owner: answer.jid } };
  }
  if (answer.code === '-2') return { write: { mamType: 'pm', owner: o.key.slice(0, o.key.indexOf('/')) } };
  return { untouched: 'reference answers -1' };
}

export interface Archive {
  readonly objects: ArchiveObject[];
  readonly expected: Expected[];
}

export async function makeArchive(count: number, seed: number): Promise<Archive> {
  const objects = riakArchive(count, seed);
  const answers = await askXmerl(objects.map((o) => o.packet));
  return { objects, expected: objects.map((o, i) => expectedFor(o, answers[i])) };
}

export async function startLoadedDouble(archive: Archive | null, options: RiakDoubleOptions, schema: string | null = SCHEMA_34): Promise<RiakDouble> {
  const double = await startRiakDouble(options);
  if (archive) loadArchive(double, archive.objects);
  if (schema !== null) {
    const response = await fetch(`${double.url}/search/schema/mam`, { method: 'PUT', headers: { 'Content-Type': 'application/xml' }, body: schema });
    assert.equal(response.status, 204);
  }
  return double;
}

export interface TempFiles {
  readonly dir: string;
  write(name: string, content: string | Buffer): string;
  remove(): void;
}

export function tempFiles(): TempFiles {
  const dir = mkdtempSync(join(tmpdir(), 'riak-suite-'));
  return {
    dir,
    write(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const logLines: string[] = [];

export async function openBackend(values: FlagValues): Promise<RiakBackend> {
  return (await definition.open(values, { command: 'migrate', concurrency: 4, log: (line) => logLines.push(line) })) as RiakBackend;
}

/** Every object is as expected: written ones hold both registers, the others hold neither, and every packet is untouched. */
export function assertArchive(double: RiakDouble, archive: Archive): { written: number; untouched: number } {
  let written = 0;
  let untouched = 0;
  archive.objects.forEach((o, i) => {
    const stored = double.getMap(o.bucket, o.key);
    assert.ok(stored, `${o.bucket} ${o.key} is gone`);
    assert.equal(stored.packet, o.packet.toString('utf8'), `${o.key}: packet changed`);
    const expected = archive.expected[i];
    if ('write' in expected) {
      written++;
      assert.deepEqual({ mamType: stored.mam_type, owner: stored.msg_owner_jid }, expected.write, `${o.kind} ${o.bucket} ${o.key}`);
    } else {
      untouched++;
      assert.equal(stored.mam_type, undefined, `${o.kind} ${o.key} should be untouched (${expected.untouched})`);
      assert.equal(stored.msg_owner_jid, undefined, `${o.kind} ${o.key} should be untouched`);
    }
  });
  return { written, untouched };
}
