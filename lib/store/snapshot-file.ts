// The snapshot is sharded: SHARD_COUNT lowdb files `snapshot-NN.json`, each holding the
// records of the topics (and pending verifications, sites, pending reads) that hash to it. Each shard is a lowdb
// `Low` over a compact-JSON adapter that fsyncs before it renames; lowdb's own JSONFile
// pretty-prints and renames without an fsync, which is not enough to delete the journal after.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import type { OutboxEntry, PendingRead, PendingVerification, Site, Subscription, Topic } from '../model.js';
import { isNotFound, readFailure, replaceFile, yieldToLoop } from './fs-durable.js';
import { wellFormed, type JournalOp } from './journal.js';

/**
 * Part of the on-disk format: changing it (or shardOf) needs a migration, which open() refuses
 * to guess (see ShardFile.shards).
 */
export const SHARD_COUNT = 64;
export const SHARD_FORMAT = 1;

export interface ShardFile {
  format: number;
  shard: number;
  /** SHARD_COUNT when it was written. */
  shards: number;
  topics: Topic[];
  subscriptions: Subscription[];
  /** With `body` (base64) for an entry whose body is kept inline, `size` for one in content/ (see JournalOp). */
  outbox: (OutboxEntry & { body?: string; size?: number })[];
  verifications: PendingVerification[];
  /** Added after format 1 shipped; absent in older files, which read as no sites. */
  sites?: Site[];
  /** Reads owed to topics (Store.putPendingReads), sharded by topic URL; absent in older files. */
  pendingReads?: PendingRead[];
  /**
   * Written while WRITTEN_SHARDS_FILE was in DATA_DIR, which the store never removes: a start
   * that finds this shard without that file is missing it. Absent in files of older builds.
   */
  listed?: true;
}

/**
 * FNV-1a (32 bits) over UTF-16 code units, modulo SHARD_COUNT: stable across runs and Node
 * versions, and cheap enough to compute on every operation (~0.1 µs for an 80-character URL).
 */
export function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SHARD_COUNT;
}

export function shardFileName(k: number): string {
  return `snapshot-${String(k).padStart(2, '0')}.json`;
}

export function emptyShard(k: number): ShardFile {
  return { format: SHARD_FORMAT, shard: k, shards: SHARD_COUNT, topics: [], subscriptions: [], outbox: [], verifications: [] };
}

/** What the error for a damaged snapshot file tells the operator to do. */
export const RESTORE_ADVICE = 'restore it from a backup; the store does not open without it';

/** Records serialised per turn of the event loop when a shard is written (see jsonInSlices). */
const RECORDS_PER_TURN = 5000;

/**
 * JSON.stringify(data) as UTF-8, byte for byte, for an object whose lists hold plain records:
 * RECORDS_PER_TURN records a turn of the event loop apart, in parts to be written in turn
 * (joined, the 30 MB of such a shard took ~80 ms more to allocate and copy). In one piece, the shard of a topic
 * of 100,000 subscribers held the event loop ~170 ms, and the hub answered nothing else
 * meanwhile. The lists are the caller's own arrays; a record in them that changes in place
 * meanwhile (a delivery's counters) is written as it is when its slice is reached, which the
 * journal segment after the rotation sets again on replay, as it does for every later write.
 */
export async function jsonInSlices(data: object, perTurn = RECORDS_PER_TURN): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  let text = '{';
  let fields = 0;
  let records = 0;
  for (const [key, value] of Object.entries(data)) {
    // As JSON.stringify leaves out a field with no JSON (undefined, as an absent `listed` may
    // be, or a function): written, "undefined" made the whole file unreadable.
    const json = Array.isArray(value) ? '[' : (JSON.stringify(value) as string | undefined);
    if (json === undefined) continue;
    text += `${fields++ > 0 ? ',' : ''}${JSON.stringify(key)}:${json}`;
    if (!Array.isArray(value)) continue;
    for (let i = 0; i < value.length; i++) {
      text += `${i > 0 ? ',' : ''}${JSON.stringify(value[i]) ?? 'null'}`;
      if (++records % perTurn === 0) {
        parts.push(Buffer.from(text, 'utf8'));
        text = '';
        await yieldToLoop();
      }
    }
    text += ']';
  }
  parts.push(Buffer.from(`${text}}`, 'utf8'));
  return parts;
}

/**
 * A lowdb adapter: compact JSON, serialised a slice at a time (jsonInSlices), then the file
 * replaced durably.
 */
export class DurableJSONFile<T extends object> implements Adapter<T> {
  /** `advice`: what the error for a damaged file tells its reader to do. */
  constructor(
    private readonly file: string,
    private readonly advice = RESTORE_ADVICE,
  ) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if (isNotFound(e)) return null;
      throw readFailure(this.file, e);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      // Named, and fatal: the records of this shard are nowhere else once its segments are
      // deleted, so opening without them would lose them for good at the next compaction.
      throw new Error(`${this.file} is damaged (${e instanceof Error ? e.message : String(e)}): ${this.advice}`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new Error(`${this.file} is damaged (not a JSON object): ${this.advice}`);
    }
    return data as T;
  }

  async write(data: T): Promise<void> {
    await replaceFile(this.file, await jsonInSlices(data));
  }
}

/** A shard's lists of records, in the order open() applies them. */
const SHARD_LISTS = ['topics', 'subscriptions', 'outbox', 'verifications', 'sites', 'pendingReads'] as const;
type RecordList = (typeof SHARD_LISTS)[number];

/**
 * The journal op that puts one record of a shard's list: the one conversion, which open() both
 * checks (shardProblem) and applies (MemoryState.load), so that what the check passes is what is
 * applied. An outbox record carries its inline body or its size beside the entry's fields.
 */
const PUT: { [K in RecordList]: (r: NonNullable<ShardFile[K]>[number]) => JournalOp } = {
  topics: (topic) => ({ op: 'putTopic', topic }),
  subscriptions: (sub) => ({ op: 'putSub', sub }),
  outbox: ({ body, size, ...entry }) => ({ op: 'putOutbox', entry, ...(body !== undefined && { body }), ...(size !== undefined && { size }) }),
  verifications: (v) => ({ op: 'putVerification', v }),
  sites: (site) => ({ op: 'putSite', site }),
  pendingReads: (read) => ({ op: 'putPendingRead', read }),
};

function putOp(list: RecordList, record: unknown): JournalOp {
  return (PUT[list] as (r: unknown) => JournalOp)(record);
}

/** The ops that put every record of a shard, which shardProblem has passed, in the order of SHARD_LISTS. */
export function* shardOps(data: ShardFile): Generator<JournalOp> {
  for (const list of SHARD_LISTS) for (const record of data[list] ?? []) yield putOp(list, record);
}

/**
 * What makes a shard of this build's format unreadable, or undefined. Its records are applied as journal
 * ops at open(), and one of the wrong shape (a hand edit, a file from another program) threw a
 * TypeError there ("object is not iterable") that stopped the start without naming the file.
 */
export function shardProblem(data: ShardFile): string | undefined {
  for (const list of SHARD_LISTS) {
    const records: unknown = data[list];
    if (records === undefined && (list === 'sites' || list === 'pendingReads')) continue;
    if (!Array.isArray(records)) return `"${list}" is not a list`;
    const bad = records.findIndex((r: unknown) => typeof r !== 'object' || r === null || !wellFormed(putOp(list, r)));
    // Its field names, never its values: a subscription's record holds its WebSub secret.
    if (bad !== -1) return `${list}[${bad}] is not a record this build can read (${describeRecord(records[bad])})`;
  }
  return undefined;
}

function describeRecord(r: unknown): string {
  if (typeof r !== 'object' || r === null) return r === null ? 'null' : typeof r;
  return Array.isArray(r) ? 'a list' : `fields: ${Object.keys(r).join(', ') || 'none'}`;
}

export function shardDb(dir: string, k: number): Low<ShardFile> {
  return new Low<ShardFile>(new DurableJSONFile<ShardFile>(path.join(dir, shardFileName(k))), emptyShard(k));
}

/**
 * Which shards the snapshot has written. A shard file is written only once it holds a record, so
 * without this list one deleted by hand, or left out of a partial copy or restore, could not be
 * told from a shard never written: the start went on without its records (subscriptions among
 * them), which the journal segments deleted since held nowhere else. Written atomically after
 * the shards it lists are durable and before the segments they fold are deleted; absent from the
 * DATA_DIR of builds before it, which loads as it did (and gets the list at its first start).
 */
export const WRITTEN_SHARDS_FILE = 'snapshot-shards.json';
const WRITTEN_SHARDS_FORMAT = 1;

/**
 * What to do when the list is lost or damaged. Without a backup, an empty list starts the store
 * on the shards that are there (each listed from then on); removing the file does not, since the
 * shards written while it was there say so (ShardFile.listed).
 */
export function writtenShardsAdvice(dir: string): string {
  const empty = JSON.stringify({ format: WRITTEN_SHARDS_FORMAT, shards: SHARD_COUNT, written: [] });
  return `restore it from a backup of DATA_DIR (${path.resolve(dir)}); with none, write ${empty} into it to start on the shards that are there (a shard missing from them then goes unnoticed); the store does not open without it`;
}

interface WrittenShardsFile {
  format: number;
  shards: number;
  /**
   * Each shard written, with the last journal segment folded by the compaction that first wrote
   * it. Its records from before that compaction are in segments up to that number: where one of
   * them is still in DATA_DIR (a backup that copied the segments before a compaction that ran
   * meanwhile wrote the shard), a missing shard's records are still in the journal.
   */
  written: [shard: number, segment: number][];
}

/** The shards written, by shard, each with its segment (see WrittenShardsFile); undefined where the file is absent. */
export async function readWrittenShards(dir: string): Promise<Map<number, number> | undefined> {
  const file = path.join(dir, WRITTEN_SHARDS_FILE);
  const data = await new DurableJSONFile<WrittenShardsFile>(file, writtenShardsAdvice(dir)).read();
  if (data === null) return undefined;
  if (data.format !== WRITTEN_SHARDS_FORMAT || data.shards !== SHARD_COUNT) {
    throw new Error(`${file}: format ${String(data.format)} with ${String(data.shards)} shards; this build reads format ${WRITTEN_SHARDS_FORMAT} with ${SHARD_COUNT}: ${writtenShardsAdvice(dir)}`);
  }
  const written = new Map<number, number>();
  const count = (v: unknown, below: number): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < below;
  const list: unknown = data.written;
  if (!Array.isArray(list) || !list.every((w: unknown) => Array.isArray(w) && w.length === 2 && count(w[0], SHARD_COUNT) && count(w[1], Number.MAX_SAFE_INTEGER))) {
    throw new Error(`${file} is damaged ("written" is not a list of shards with their segments): ${writtenShardsAdvice(dir)}`);
  }
  for (const [shard, segment] of list as [number, number][]) written.set(shard, segment);
  return written;
}

export function writtenShardsText(written: ReadonlyMap<number, number>): string {
  const data: WrittenShardsFile = { format: WRITTEN_SHARDS_FORMAT, shards: SHARD_COUNT, written: [...written].sort((a, b) => a[0] - b[0]) };
  return JSON.stringify(data);
}
