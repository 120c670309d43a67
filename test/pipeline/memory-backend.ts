/**
 * A backend written in the test suite: an archive of partitions kept in a directory, to drive the
 * real pipeline through what no SQL backend does: many partitions, a write on `-2` (as Riak's
 * `pm`), no transactions (`after-write` checkpoints), no checkpoints at all (`none`: written
 * records are passed over), and kill -9 (everything it keeps is appended to files with one write
 * call, so a killed process leaves whole lines behind).
 *
 * Layout of DIR: `archive.json` (partitions and base64 payloads, written by the test), then
 * `writes.jsonl` (`{p, i, v}` per record written) and `checkpoints.jsonl` (`{p, c}`), appended.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { senderOf } from '../../clients/pipeline/decisions.js';
import {
  PartlyWrittenError,
  type Backend,
  type CheckpointMode,
  type Decision,
  type ExtractResult,
  type Mismatch,
  type Page,
  type PageLimits,
  type Partition,
  type PlannedWrite,
  type ScannedRecord,
  type ScanPage,
  type ShardSpec,
  type SourceRecord,
  type UnwrittenKeys,
  type VerifySample,
  type WriteOutcome,
} from '../../clients/pipeline/types.js';

export interface MemoryKey {
  readonly p: string;
  readonly i: number;
}

export interface MemoryArchive {
  readonly partitions: { readonly name: string; readonly payloads: string[] }[];
}

export function writeArchive(dir: string, partitions: { name: string; payloads: Uint8Array[] }[]): void {
  const archive: MemoryArchive = { partitions: partitions.map((p) => ({ name: p.name, payloads: p.payloads.map((b) => Buffer.from(b).toString('base64')) })) };
  writeFileSync(join(dir, 'archive.json'), JSON.stringify(archive));
}

/** Every record's written value, `p:i` -> value, as the files say. */
export function readWrites(dir: string): Map<string, string> {
  const file = join(dir, 'writes.jsonl');
  const state = new Map<string, string>();
  if (!existsSync(file)) return state;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const w = JSON.parse(line) as { p: string; i: number; v: string; c?: number };
    if (w.c !== undefined) continue; // a checkpoint kept with its batch (in-write)
    state.set(`${w.p}:${w.i}`, w.v);
  }
  return state;
}

export class MemoryBackend implements Backend<MemoryKey, number, string> {
  readonly name = 'memory';
  readonly defaultFormat = 'auto' as const;
  private readonly payloads = new Map<string, Buffer[]>();
  private readonly written: Map<string, string>;
  /** Partitions with a readPage in progress now, and the most seen at once. */
  private reading = 0;
  maxPartitionsReadingAtOnce = 0;
  writeBatches = 0;
  /** Test knob: the write of this batch number (1-based) fails once with a transient error. */
  failWriteBatch: number | null = null;
  /**
   * Test knob, with `failWriteBatch` (not `in-write`): the failing write first lands this many of
   * its records, and fails only once the next batch of its partition has landed (as a bulk
   * request that gives up part-way while the walk's next batch is written).
   */
  landBeforeFailing: number | null = null;
  private landed: ((partition: string) => void) | null = null;
  /** Test knob: the next `unwrittenKeys` fails with a transient error. */
  failUnwrittenKeysOnce = false;
  /** Test knob: `readPage` passes over this record (`p:i`), as a faulty page query would. */
  dropFromWalk: string | null = null;
  /** Test knob: called with every page `readPage` returns (e.g. to archive records behind the walk). */
  afterReadPage: ((partition: Partition, page: Page<MemoryKey, number>) => void) | null = null;
  /** Test knob: the values `scanPage` says are stored, `p:i` -> value (a wrong write, as a faulty backend would make). */
  readonly storedOverride = new Map<string, string>();
  /**
   * Test knob: records (`p:i`) that get their write and are reported for the rest, as a walk of
   * several columns decides a record one column cannot take (`partly`).
   */
  readonly partlyStorable = new Set<string>();
  readonly noAccountingReason = 'the memory backend was told not to count';

  constructor(
    private readonly dir: string,
    readonly checkpointMode: CheckpointMode,
    private readonly writeDelayMs = 0,
  ) {
    const archive = JSON.parse(readFileSync(join(dir, 'archive.json'), 'utf8')) as MemoryArchive;
    for (const p of archive.partitions)
      this.payloads.set(
        p.name,
        p.payloads.map((b) => Buffer.from(b, 'base64')),
      );
    this.written = readWrites(dir);
  }

  describeKey(key: MemoryKey): Record<string, string> {
    return { partition: key.p, index: String(key.i) };
  }
  describeCursor(cursor: number): string {
    return `index ${cursor}`;
  }
  async checkSchema() {
    return { ready: true, missing: [], statements: [] };
  }
  async applySchema(): Promise<string[]> {
    return [];
  }
  async partitions(shard: ShardSpec): Promise<Partition[]> {
    return [...this.payloads.keys()].filter((_, i) => i % shard.count === shard.index).map((name) => ({ name }));
  }
  /** In-write checkpoints share the writes' file: one append holds a batch and its checkpoint. */
  private get checkpointFile(): string {
    return join(this.dir, this.checkpointMode === 'in-write' ? 'writes.jsonl' : 'checkpoints.jsonl');
  }
  async readCheckpoint(partition: Partition): Promise<number | null> {
    const file = this.checkpointFile;
    if (!existsSync(file)) return null;
    let last: number | null = null;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      const entry = JSON.parse(line) as { p: string; c?: number };
      if (entry.p === partition.name && entry.c !== undefined) last = entry.c < 0 ? null : entry.c;
    }
    return last;
  }
  async saveCheckpoint(partition: Partition, cursor: number): Promise<void> {
    appendFileSync(this.checkpointFile, JSON.stringify({ p: partition.name, c: cursor }) + '\n');
  }
  async deleteCheckpoint(partition: Partition): Promise<void> {
    await this.saveCheckpoint(partition, -1);
  }
  async estimate(partitions: readonly Partition[]): Promise<number> {
    return partitions.reduce((n, p) => n + this.payloads.get(p.name)!.length, 0);
  }

  async readPage(partition: Partition, after: number | null, limits: PageLimits): Promise<Page<MemoryKey, number>> {
    this.maxPartitionsReadingAtOnce = Math.max(this.maxPartitionsReadingAtOnce, ++this.reading);
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.reading--;
    const all = this.payloads.get(partition.name)!;
    const records: SourceRecord<MemoryKey>[] = [];
    let i = (after ?? -1) + 1;
    let bytes = 0;
    for (; i < all.length && records.length < limits.records; i++) {
      if (records.length > 0 && bytes + all[i].length > limits.bytes) break;
      // As in every real store, a read passes over what has its write (the query asks for records
      // without it); without checkpoints this is what says what is done.
      if (this.written.has(`${partition.name}:${i}`)) continue;
      if (this.dropFromWalk === `${partition.name}:${i}`) continue;
      records.push({ key: { p: partition.name, i }, payload: all[i] });
      bytes += all[i].length;
    }
    const page = { records, cursor: i - 1 < 0 ? null : i - 1, end: i >= all.length };
    this.afterReadPage?.(partition, page);
    return page;
  }

  /** Archives more records at the end of a partition (as a MongooseIM 3.3 node still running would). */
  addRecords(partition: string, payloads: readonly Uint8Array[]): void {
    this.payloads.get(partition)!.push(...payloads.map((b) => Buffer.from(b)));
    const archive: MemoryArchive = { partitions: [...this.payloads].map(([name, list]) => ({ name, payloads: list.map((b) => b.toString('base64')) })) };
    writeFileSync(join(this.dir, 'archive.json'), JSON.stringify(archive));
  }

  async scanPage(partition: Partition, after: number | null, limits: PageLimits): Promise<ScanPage<MemoryKey, number>> {
    const all = this.payloads.get(partition.name)!;
    const records: ScannedRecord<MemoryKey>[] = [];
    let i = (after ?? -1) + 1;
    let bytes = 0;
    for (; i < all.length && records.length < limits.records; i++) {
      if (records.length > 0 && bytes + all[i].length > limits.bytes) break;
      const id = `${partition.name}:${i}`;
      const stored = this.storedOverride.get(id) ?? this.written.get(id);
      records.push({ key: { p: partition.name, i }, payload: all[i], stored: stored ?? '', written: stored !== undefined });
      bytes += all[i].length;
    }
    return { records, cursor: i - 1 < 0 ? null : i - 1, end: i >= all.length };
  }

  async unwrittenKeys(shard: ShardSpec, max: number): Promise<UnwrittenKeys<MemoryKey>> {
    if (this.failUnwrittenKeysOnce) {
      this.failUnwrittenKeysOnce = false;
      throw Object.assign(new Error('injected: node unavailable'), { transient: true });
    }
    const keys: MemoryKey[] = [];
    for (const { name } of await this.partitions(shard)) {
      const all = this.payloads.get(name)!;
      for (let i = 0; i < all.length; i++) {
        if (this.written.has(`${name}:${i}`)) continue;
        if (keys.length >= max) return { keys, complete: false };
        keys.push({ p: name, i });
      }
    }
    return { keys, complete: true };
  }

  decide(record: SourceRecord<MemoryKey>, answer: ExtractResult): Decision<string> {
    if (!answer.ok && answer.code === 'not_groupchat') return { write: `pm:${record.key.p}` };
    const sender = senderOf(answer);
    if (!('write' in sender)) return sender;
    const write = `muc:${sender.write.bareJid}`;
    if (!this.partlyStorable.has(`${record.key.p}:${record.key.i}`)) return { write };
    return { write, partly: { reason: 'value_not_storable', detail: 'the memory backend was told this record has a second value it cannot store' } };
  }

  async writeBatch(
    partition: Partition,
    writes: readonly PlannedWrite<MemoryKey, string>[],
    cursor: number,
    earlier: Promise<void>,
  ): Promise<WriteOutcome<MemoryKey>> {
    if (++this.writeBatches === this.failWriteBatch) {
      const failure = Object.assign(new Error('injected: node unavailable'), { transient: true });
      if (this.landBeforeFailing === null || this.checkpointMode === 'in-write') throw failure;
      const landed = writes.slice(0, this.landBeforeFailing);
      this.land(landed);
      // The walk's next batch of this partition lands first (or, when there is none, a pause).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.landed = (p) => {
          if (p !== partition.name) return;
          clearTimeout(timer);
          resolve();
        };
      });
      this.landed = null;
      throw new PartlyWrittenError(landed.length, failure);
    }
    if (this.writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
    if (this.checkpointMode === 'in-write') {
      const lines = writes.map((w) => JSON.stringify({ p: w.key.p, i: w.key.i, v: w.write }) + '\n').join('');
      await earlier;
      // One write call for both: what a transaction gives a real store.
      appendFileSync(this.checkpointFile, lines + JSON.stringify({ p: partition.name, c: cursor }) + '\n');
      for (const w of writes) this.written.set(`${w.key.p}:${w.key.i}`, w.write);
    } else this.land(writes);
    this.landed?.(partition.name);
    // Records written in part are reported, so not counted as written (the Decision contract).
    return { written: writes.filter((w) => !this.partlyStorable.has(`${w.key.p}:${w.key.i}`)).length };
  }

  private land(writes: readonly PlannedWrite<MemoryKey, string>[]): void {
    if (writes.length > 0)
      appendFileSync(join(this.dir, 'writes.jsonl'), writes.map((w) => JSON.stringify({ p: w.key.p, i: w.key.i, v: w.write }) + '\n').join(''));
    for (const w of writes) this.written.set(`${w.key.p}:${w.key.i}`, w.write);
  }

  async sampleForVerify(size: number): Promise<VerifySample<MemoryKey>[]> {
    return [...this.written].slice(0, size).map(([k, v]) => {
      const [p, i] = [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))];
      return { key: { p, i }, payload: this.payloads.get(p)![i], stored: v };
    });
  }
  verifyAnswer(sample: VerifySample<MemoryKey>, answer: ExtractResult): Mismatch | null {
    const decision = this.decide(sample, answer);
    if (!('write' in decision)) return { kind: 'undecodable', detail: `payload gives ${decision.reason}: ${decision.detail}` };
    return decision.write === sample.stored ? null : { kind: 'different_sender', detail: `payload says ${JSON.stringify(decision.write)}` };
  }
  isTransient(error: unknown): boolean {
    return (error as { transient?: boolean }).transient === true;
  }
  async close(): Promise<void> {}
}
