/**
 * Riak KV (`mod_mam_riak_timed_arch_yz`): the upgrade guide's rule for old objects, done on the
 * generic pipeline. A partition is one bucket (one ISO week); its objects are listed, fetched,
 * and those that still lack `mam_type_register` or `msg_owner_jid_register` are decoded and
 * updated. No checkpoint is kept: an object with both registers is skipped, so a re-run resumes
 * and a run after the end changes nothing (checkpoint mode `none`).
 */
import type { PayloadFormat } from '../../../services/decode/index.js';
import { isWrite, senderOf } from '../../pipeline/decisions.js';
import type {
  Backend,
  Decision,
  ExtractResult,
  Mismatch,
  Page,
  PageLimits,
  Partition,
  PlannedWrite,
  NotWrittenRecord,
  ScanPage,
  ScannedRecord,
  SchemaStatus,
  ShardSpec,
  SourceRecord,
  VerifySample,
  WriteOutcome,
} from '../../pipeline/types.js';
import { PartlyWrittenError } from '../../pipeline/types.js';
import { archiveOwner } from './archive-key.js';
import { mapBounded, retrying, type RetryPolicy } from './bounded.js';
import { indexPage, listBuckets, streamKeyWalk, type KeyWalk, type ListingMode } from './key-listing.js';
import { MAM_TYPE, MSG_OWNER_JID, PACKET, fetchMap, updateMap, type FetchedMap, type MamWrite } from './mam-map.js';
import { isTransientRiakError, type RiakHttp } from './riak-http.js';
import { RELOAD_STEP, SCHEMA_NAME, missingFields, readSchema, uploadSchema } from './search-schema.js';

export interface RiakObjectKey {
  readonly bucket: string;
  readonly key: string;
  /** The map's context from the fetch, sent back with the update. */
  readonly context?: string;
  /** Why the packet could not be read; the payload is then empty and the object is reported. */
  readonly problem?: string;
  /** The registers found (verify only). */
  readonly stored?: { readonly mamType: string; readonly owner: string };
}

/**
 * A position in a bucket's walk. Streamed listings have no resumable position on the server: the
 * walk lives in this process (`walk` names it, `listed` counts the keys handed out), and a cursor
 * from another walk restarts the bucket from its first key; the objects done meanwhile are
 * skipped by their registers. `$bucket` pages carry Riak's own `continuation`.
 */
export interface RiakCursor {
  readonly walk: number;
  readonly listed: number;
  readonly continuation?: string;
}

export interface RiakBackendOptions {
  readonly http: RiakHttp;
  readonly bucketType: string;
  readonly listing: ListingMode;
  /** Fetches and updates in flight per page. */
  readonly requestConcurrency: number;
  /** The operator's schema file for `--apply-schema`, with its name for messages. */
  readonly schemaFile?: { readonly name: string; readonly bytes: Buffer };
  readonly retry?: RetryPolicy;
  readonly log: (line: string) => void;
}

/** How many first objects decide whether packets are text at all. */
export const FORMAT_PROBE_OBJECTS = 10;
const DEFAULT_RETRY: RetryPolicy = { attempts: 6, backoff: { baseMs: 100, maxMs: 5_000 } };

/** Thrown when the packets are not XML text: nothing this tool can do over HTTP (not transient). */
export class PacketFormatError extends Error {
  override readonly name = 'PacketFormatError';
}

/** A partition is one bucket of the bucket type (a week of one archive, as MongooseIM names them). */
export interface RiakBucket extends Partition {
  readonly bucket: string;
}

interface StreamWalk {
  readonly id: number;
  readonly keys: KeyWalk;
  listed: number;
  buffer: string[];
  exhausted: boolean;
}

export class RiakBackend implements Backend<RiakObjectKey, RiakCursor, MamWrite, RiakBucket> {
  readonly name = 'riak';
  readonly defaultFormat: PayloadFormat = 'xml';
  readonly checkpointMode = 'none' as const;

  private readonly walks = new Map<string, StreamWalk>();
  /** Objects whose update may have been applied without being counted: its answer was lost (see writeBatch). */
  private readonly uncounted = new Set<string>();
  private nextWalkId = 1;
  private readonly retry: RetryPolicy;
  private probe = { text: 0, notText: 0, decided: false, example: '' };

  constructor(private readonly options: RiakBackendOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  describeKey(key: RiakObjectKey): Record<string, string> {
    return { bucket: key.bucket, key: key.key };
  }

  describeCursor(cursor: RiakCursor): string {
    return cursor.continuation !== undefined ? `$bucket continuation ${cursor.continuation}` : `${cursor.listed} keys listed`;
  }

  async checkSchema(): Promise<SchemaStatus> {
    const schema = await readSchema(this.options.http);
    const missing =
      schema === null
        ? [`search schema '${SCHEMA_NAME}' does not exist`]
        : missingFields(schema.toString('utf8')).map((f) => `search schema '${SCHEMA_NAME}' has no field ${f}`);
    if (missing.length === 0) return { ready: true, missing: [], statements: [] };
    return {
      ready: false,
      missing,
      statements: [
        `curl -XPUT $RIAK/search/schema/${SCHEMA_NAME} -H 'Content-Type: application/xml' --data-binary @mam_search_schema.xml ` +
          "(MongooseIM 3.4's tools/mam_search_schema.xml; --apply-schema FILE does this)",
        RELOAD_STEP,
      ],
    };
  }

  async applySchema(): Promise<string[]> {
    const file = this.options.schemaFile;
    if (file === undefined) throw new Error("--apply-schema needs the schema file: --apply-schema PATH/TO/mam_search_schema.xml (MongooseIM 3.4's tools/)");
    const outcome = await uploadSchema(this.options.http, file.bytes, file.name);
    this.options.log(
      outcome === 'uploaded'
        ? `riak: uploaded ${file.name} as search schema '${SCHEMA_NAME}' and read it back identical`
        : `riak: search schema '${SCHEMA_NAME}' already holds ${file.name}`,
    );
    this.options.log(`riak: NEXT STEP, by hand: ${RELOAD_STEP}`);
    return [`PUT /search/schema/${SCHEMA_NAME} < ${file.name} (${outcome})`];
  }

  async partitions(shard: ShardSpec): Promise<RiakBucket[]> {
    const buckets = await this.listBuckets();
    // By a hash of the name, not by position: a new week's bucket must not move the others to another shard.
    return buckets.filter((name) => fnv1a(name) % shard.count === shard.index).map((bucket) => ({ name: bucket, bucket }));
  }

  async estimate(): Promise<number> {
    return 0; // Riak has no cheap count: only a full listing would tell.
  }

  async readPage(partition: RiakBucket, after: RiakCursor | null, limits: PageLimits): Promise<Page<RiakObjectKey, RiakCursor>> {
    const bucket = partition.bucket;
    const { keys, cursor, end } = await this.listPage(bucket, after, limits.records);
    const records = await this.fetchRecords(bucket, keys);
    this.decideFormat(end);
    return { records, cursor, end };
  }

  /**
   * `verify --complete`: every object of the bucket, written or not, by the same listing as the
   * walk. Riak can only tell which objects lack their registers by fetching every one.
   */
  async scanPage(partition: RiakBucket, after: RiakCursor | null, limits: PageLimits): Promise<ScanPage<RiakObjectKey, RiakCursor>> {
    const bucket = partition.bucket;
    const { http, bucketType, requestConcurrency } = this.options;
    const { keys, cursor, end } = await this.listPage(bucket, after, limits.records);
    const maps = await mapBounded(keys, requestConcurrency, (key) => retrying(this.retry, isTransientRiakError, () => fetchMap(http, bucketType, bucket, key)));
    const records: ScannedRecord<RiakObjectKey>[] = [];
    maps.forEach((map, i) => {
      const key = keys[i];
      if (map.kind === 'notfound') return; // deleted since the listing
      if (map.kind === 'unrenderable') {
        records.push({ key: { bucket, key, problem: `packet is not text: ${map.detail}` }, payload: new Uint8Array(0), stored: '', written: false });
        return;
      }
      const r = map.registers;
      const packet = r[PACKET];
      const payload = typeof packet === 'string' ? Buffer.from(packet, 'utf8') : new Uint8Array(0);
      const problem = typeof packet === 'string' ? {} : { problem: `the map has no ${PACKET}` };
      const mamType = r[MAM_TYPE];
      const owner = r[MSG_OWNER_JID];
      if (isSet(mamType) && isSet(owner)) {
        records.push({
          key: { bucket, key, stored: { mamType: mamType as string, owner: owner as string }, ...problem },
          payload,
          stored: `mam_type=${mamType as string} msg_owner_jid=${owner as string}`,
          written: true,
        });
      } else {
        records.push({ key: { bucket, key, ...problem }, payload, stored: '', written: false });
      }
    });
    return { records, cursor, end };
  }

  readonly noAccountingReason =
    'Riak can list its objects only by listing every key and fetching every map (a full scan): run verify riak --complete to check that every object was written or reported';

  /** The next keys of the bucket's listing after `after`: the `$bucket` index, or the streamed walk. */
  private async listPage(bucket: string, after: RiakCursor | null, rows: number): Promise<{ keys: string[]; cursor: RiakCursor; end: boolean }> {
    if (this.options.listing === '2i') {
      const page = await retrying(this.retry, isTransientRiakError, () =>
        indexPage(this.options.http, this.options.bucketType, bucket, rows, after?.continuation),
      );
      const cursor = {
        walk: 0,
        listed: (after?.listed ?? 0) + page.keys.length,
        ...(page.continuation === undefined ? {} : { continuation: page.continuation }),
      };
      return { keys: page.keys, cursor, end: page.continuation === undefined };
    }
    const walk = this.walkFor(bucket, after);
    const keys = await this.takeKeys(bucket, walk, rows);
    const end = walk.exhausted && walk.buffer.length === 0;
    if (end) this.walks.delete(bucket);
    return { keys, cursor: { walk: walk.id, listed: walk.listed }, end };
  }

  decide(record: SourceRecord<RiakObjectKey>, answer: ExtractResult): Decision<MamWrite> {
    if (record.key.problem !== undefined) return { reason: 'malformed', detail: record.key.problem };
    if (!answer.ok && answer.code === 'not_groupchat') {
      const owner = archiveOwner(record.key.key);
      if (owner === null) return { reason: 'jid_not_storable', detail: `not a groupchat message, and key '${record.key.key}' has no owner part before a '/'` };
      return { write: { mamType: 'pm', owner } };
    }
    const sender = senderOf(answer);
    if (!isWrite(sender)) return sender;
    return { write: { mamType: 'muc', owner: sender.write.bareJid } };
  }

  async writeBatch(_partition: RiakBucket, writes: readonly PlannedWrite<RiakObjectKey, MamWrite>[]): Promise<WriteOutcome<RiakObjectKey>> {
    const { http, bucketType, requestConcurrency } = this.options;
    const settled = await mapBounded(writes, requestConcurrency, (w) =>
      retrying(this.retry, isTransientRiakError, () => updateMap(http, bucketType, w.key.bucket, w.key.key, w.write, w.key.context)).then(
        (outcome) => ({ outcome }),
        (error: unknown) => ({ error }),
      ),
    );
    const refused: NotWrittenRecord<RiakObjectKey>[] = [];
    const updated: RiakObjectKey[] = [];
    const unknown: RiakObjectKey[] = [];
    let failure: { error: unknown } | null = null;
    settled.forEach((s, i) => {
      if ('error' in s) {
        failure ??= { error: s.error };
        unknown.push(writes[i].key);
      } else if (!s.outcome.ok) refused.push({ key: writes[i].key, reason: 'write_refused', detail: s.outcome.detail });
      else updated.push(writes[i].key);
    });
    // The pipeline counts the updated objects now (the next walk passes over them, both registers
    // set). An object whose update failed may still have been applied: a try whose answer was lost
    // (a reset, a deadline) before the later tries were refused. It is remembered, so the walk
    // takes it again and counts it when it writes it; remembering one that was not applied costs
    // nothing, the walk takes it anyway.
    for (const key of updated) this.uncounted.delete(JSON.stringify([key.bucket, key.key]));
    if (failure !== null) {
      this.rememberUncounted(unknown);
      throw new PartlyWrittenError(updated.length, (failure as { error: unknown }).error);
    }
    return { written: updated.length, refused };
  }

  async sampleForVerify(size: number): Promise<VerifySample<RiakObjectKey>[]> {
    const { http, bucketType } = this.options;
    // Reservoir over every key: memory bounded by the sample, whatever the archive's size.
    const capacity = size * 4;
    const reservoir: { bucket: string; key: string }[] = [];
    let seen = 0;
    for (const bucket of await this.listBuckets()) {
      const walk = streamKeyWalk(http, bucketType, bucket);
      try {
        for (let keys = await walk.next(); keys !== null; keys = await walk.next()) {
          for (const key of keys) {
            seen++;
            if (reservoir.length < capacity) reservoir.push({ bucket, key });
            else {
              const j = Math.floor(Math.random() * seen);
              if (j < capacity) reservoir[j] = { bucket, key };
            }
          }
        }
      } finally {
        walk.close();
      }
    }
    const samples: VerifySample<RiakObjectKey>[] = [];
    for (const { bucket, key } of reservoir) {
      if (samples.length >= size) break;
      const map = await retrying(this.retry, isTransientRiakError, () => fetchMap(http, bucketType, bucket, key));
      if (map.kind !== 'map') continue;
      const mamType = map.registers[MAM_TYPE];
      const owner = map.registers[MSG_OWNER_JID];
      const packet = map.registers[PACKET];
      if (typeof mamType !== 'string' || typeof owner !== 'string' || mamType === '' || owner === '' || typeof packet !== 'string') continue;
      samples.push({
        key: { bucket, key, stored: { mamType, owner } },
        payload: Buffer.from(packet, 'utf8'),
        stored: `mam_type=${mamType} msg_owner_jid=${owner}`,
      });
    }
    return samples;
  }

  verifyAnswer(sample: VerifySample<RiakObjectKey>, answer: ExtractResult): Mismatch | null {
    const decision = this.decide({ key: sample.key, payload: sample.payload }, answer);
    if (!isWrite(decision)) {
      return { kind: 'undecodable', detail: `stores ${sample.stored}, but its packet gives ${decision.reason}: ${decision.detail}` };
    }
    const stored = sample.key.stored;
    const expected = `mam_type=${decision.write.mamType} msg_owner_jid=${decision.write.owner}`;
    if (stored?.mamType === decision.write.mamType && stored.owner === decision.write.owner) return null;
    return { kind: 'different_sender', detail: `stores ${sample.stored}, its packet says ${expected}` };
  }

  isTransient(error: unknown): boolean {
    return isTransientRiakError(error);
  }

  async close(): Promise<void> {
    for (const walk of this.walks.values()) walk.keys.close();
    this.walks.clear();
    this.options.http.close();
  }

  // ------------------------------------------------------------------------------------------

  private rememberUncounted(keys: readonly RiakObjectKey[]): void {
    for (const key of keys) this.uncounted.add(JSON.stringify([key.bucket, key.key]));
  }

  /** Retried like key listings, fetches and updates: a listing answered 503 or cut is worth another try. */
  private listBuckets(): Promise<string[]> {
    return retrying(this.retry, isTransientRiakError, () => listBuckets(this.options.http, this.options.bucketType));
  }

  /** The bucket's walk in memory if `after` is where it stands; otherwise a new walk from the first key. */
  private walkFor(bucket: string, after: RiakCursor | null): StreamWalk {
    const current = this.walks.get(bucket);
    if (current !== undefined && after !== null && after.walk === current.id && after.listed === current.listed) return current;
    current?.keys.close();
    const walk: StreamWalk = {
      id: this.nextWalkId++,
      keys: streamKeyWalk(this.options.http, this.options.bucketType, bucket),
      listed: 0,
      buffer: [],
      exhausted: false,
    };
    this.walks.set(bucket, walk);
    return walk;
  }

  private async takeKeys(bucket: string, walk: StreamWalk, rows: number): Promise<string[]> {
    while (walk.buffer.length < rows && !walk.exhausted) {
      let more: string[] | null;
      try {
        more = await walk.keys.next();
      } catch (error) {
        // A broken listing cannot continue: the next read of this bucket starts a new one.
        if (this.walks.get(bucket) === walk) this.walks.delete(bucket);
        throw error;
      }
      if (more === null) walk.exhausted = true;
      else walk.buffer.push(...more);
    }
    const keys = walk.buffer.splice(0, rows);
    walk.listed += keys.length;
    return keys;
  }

  private async fetchRecords(bucket: string, keys: readonly string[]): Promise<SourceRecord<RiakObjectKey>[]> {
    const { http, bucketType, requestConcurrency } = this.options;
    const maps = await mapBounded(keys, requestConcurrency, (key) => retrying(this.retry, isTransientRiakError, () => fetchMap(http, bucketType, bucket, key)));
    const records: SourceRecord<RiakObjectKey>[] = [];
    maps.forEach((map, i) => {
      const record = this.recordOf(bucket, keys[i], map);
      if (record !== null) records.push(record);
    });
    return records;
  }

  /** The record to decode, or null when there is nothing to do (gone, or both registers set). */
  private recordOf(bucket: string, key: string, map: FetchedMap): SourceRecord<RiakObjectKey> | null {
    if (map.kind === 'notfound') return null; // deleted since the listing
    if (map.kind === 'unrenderable') {
      this.notePacket(false, map.detail);
      return { key: { bucket, key, problem: `packet is not text: ${map.detail}` }, payload: new Uint8Array(0) };
    }
    const r = map.registers;
    // Written already: nothing to do, unless this process may have written it without counting
    // it (an update whose answer was lost); then it goes through again (the same registers,
    // assigned again) to be counted.
    if (isSet(r[MAM_TYPE]) && isSet(r[MSG_OWNER_JID]) && !this.uncounted.has(JSON.stringify([bucket, key]))) return null;
    const context = map.context;
    const packet = r[PACKET];
    if (typeof packet !== 'string') {
      return { key: { bucket, key, ...(context === undefined ? {} : { context }), problem: `the map has no ${PACKET}` }, payload: new Uint8Array(0) };
    }
    this.notePacket(looksLikeXml(packet), packet.slice(0, 40));
    return { key: { bucket, key, ...(context === undefined ? {} : { context }) }, payload: Buffer.from(packet, 'utf8') };
  }

  private notePacket(isXml: boolean, example: string): void {
    if (this.probe.decided) return;
    if (isXml) this.probe.text++;
    else {
      this.probe.notText++;
      if (this.probe.example === '') this.probe.example = example;
    }
  }

  /**
   * Riak's default for this backend is XML text. A deployment that set `db_message_format` to an
   * Erlang-term codec stores bytes that this JSON API cannot carry (Riak answers 500, or text that
   * is not XML): we stop on the first objects rather than report a whole archive as undecodable.
   */
  private decideFormat(partitionEnded: boolean): void {
    const p = this.probe;
    const seen = p.text + p.notText;
    if (p.decided || seen === 0 || (seen < FORMAT_PROBE_OBJECTS && !partitionEnded)) return;
    p.decided = true;
    if (p.text > 0) return;
    throw new PacketFormatError(
      `riak: the first ${seen} packet registers are not XML text (e.g. ${JSON.stringify(p.example)}). ` +
        'MongooseIM stores XML in Riak unless db_message_format was set to an Erlang-term codec (mam_message_eterm or ' +
        "mam_message_compressed_eterm); those bytes cannot travel through Riak's HTTP JSON API, which this tool uses. " +
        'Nothing was written. Such an archive needs a client of the protocol buffers API.',
    );
  }
}

function isSet(value: unknown): boolean {
  return typeof value === 'string' && value !== '';
}

/** An exml packet starts with its element (exml writes no declaration); leading white space is allowed. */
function looksLikeXml(packet: string): boolean {
  return /^\s*</.test(packet);
}

/** FNV-1a over the UTF-16 units: stable across runs and machines. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
