/**
 * A MongooseIM 3.3 Riak archive for the Riak suites: objects made by a real Erlang VM
 * (test/support/riak-archive.escript: buckets per ISO week, keys with '/' in nicks, XML packets of
 * MUC, MUC Light, one-to-one and undecodable messages), loaded into the Riak double as MongooseIM
 * 3.3 writes them (msg_id, source_jid, packet, search_text; no mam_type, no msg_owner_jid).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RiakDouble } from './riak-double.js';

export interface ArchiveObject {
  readonly bucket: string;
  readonly key: string;
  readonly packet: Buffer;
  /** What the generator made: muc, muc_light, muc_slash_nick, chat, pm_groupchat_copy, no_jid, two_items, truncated, jid_without_user. */
  readonly kind: string;
}

const ESCRIPT = fileURLToPath(new URL('../../../test/support/riak-archive.escript', import.meta.url));
const ESCRIPT_TIMEOUT_MS = 300_000;

export function riakArchive(count: number, seed: number): ArchiveObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'riak-archive-'));
  try {
    const out = join(dir, 'objects.bin');
    const run = spawnSync('escript', [ESCRIPT, 'objects', String(count), String(seed), out], { encoding: 'utf8', timeout: ESCRIPT_TIMEOUT_MS });
    if (run.error) throw new Error(`riak-archive: cannot run escript: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`riak-archive: escript exited ${run.status}: ${run.stderr}`);
    const buf = readFileSync(out);
    const objects: ArchiveObject[] = [];
    let pos = 0;
    const field = (): Buffer => {
      const n = buf.readUInt32BE(pos);
      const value = buf.subarray(pos + 4, pos + 4 + n);
      pos += 4 + n;
      return value;
    };
    while (pos < buf.length) {
      const bucket = field().toString('utf8');
      const key = field().toString('utf8');
      const packet = Buffer.from(field());
      const kind = field().toString('utf8');
      objects.push({ bucket, key, packet, kind });
    }
    if (objects.length !== count) throw new Error(`riak-archive: asked for ${count} objects, got ${objects.length}`);
    return objects;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stores the objects in the double as MongooseIM 3.3's mod_mam_riak_timed_arch_yz does. */
export function loadArchive(double: RiakDouble, objects: readonly ArchiveObject[]): void {
  for (const o of objects) {
    const id = o.key.slice(o.key.lastIndexOf('/') + 1);
    double.putMap(o.bucket, o.key, { msg_id: id, source_jid: o.key.slice(0, o.key.lastIndexOf('/')), packet: o.packet, search_text: '' });
  }
}
