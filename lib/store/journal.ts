// The journal: append-only NDJSON segments `journal-NNNNNNNN.ndjson`, one line per change.
// Writes that arrive together share one durable append (group commit): one write to a file
// opened O_DSYNC, or a write and an fdatasync where the platform has no O_DSYNC; each caller's
// promise resolves only after it. Compaction rotates to a new segment, so
// the old ones can be deleted once the snapshot shards holding their effect are durable.
import { constants } from 'node:fs';
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { OutboxEntry, PendingRead, PendingVerification, Site, Subscription, SubscriptionStats, Topic } from '../model.js';

export type StatsRow = [callback: string, ctUpdates: number, ctErrors: number, ctConsecutiveErrors: number, whenLastUpdate: number | null, whenLastError: number | null, deliveredVersion: number];

export function statsRow(callback: string, s: SubscriptionStats): StatsRow {
  return [callback, s.ctUpdates, s.ctErrors, s.ctConsecutiveErrors, s.whenLastUpdate, s.whenLastError, s.deliveredVersion ?? 0];
}
import { FILE_MODE, isNotFound, readFailure, syncDir, yieldToLoop } from './fs-durable.js';

/**
 * Every op is absolute on what it touches: it sets or removes whole records, or everything, or
 * sets given fields of a record that exists (subStats' counters, checkTopic's all but the
 * fingerprints), never a value computed from the one before. That is what makes replaying a
 * journal over snapshot shards that are already newer correct
 * (docs/adr/0002-embedded-store-durability.md).
 */
export type JournalOp =
  | { op: 'putTopic'; topic: Topic }
  /**
   * A topic's record set again but for its fingerprints, which stay as they are: what a read
   * that found no change and the same entries writes (Store.recordCheck). The fingerprints are
   * most of a feed topic's line (up to hundreds of entries' remembered), and written with every
   * such read they were most of what the journal grew by. Sets nothing when the topic is absent
   * (deleted later in the journal). See ADR 0002 for why replaying it over newer shards holds.
   */
  | { op: 'checkTopic'; topic: Omit<Topic, 'fingerprints'> }
  | { op: 'delTopic'; url: string }
  | { op: 'putSub'; sub: Subscription }
  | { op: 'delSub'; topic: string; callback: string }
  /**
   * Delivery counters of subscriptions of one topic, set (not added): what Store.recordDeliveries
   * writes, one line per topic in a batch. Each row is a StatsRow (the callback, then the values in
   * a fixed order): a fan-out writes thousands of rows, and field names on every row doubled it.
   */
  | { op: 'subStats'; topic: string; rows: StatsRow[] }
  /**
   * `body`, base64, when the body is small enough to travel in the line (INLINE_BODY_MAX);
   * otherwise `size`, the bytes of its file in content/ (absent in lines of older builds).
   */
  | { op: 'putOutbox'; entry: OutboxEntry; body?: string; size?: number }
  | { op: 'delOutbox'; topic: string; version: number }
  | { op: 'putVerification'; v: PendingVerification }
  | { op: 'delVerification'; id: string }
  /** A read owed to a topic (Store.putPendingReads), keyed by the topic URL. */
  | { op: 'putPendingRead'; read: PendingRead }
  | { op: 'delPendingRead'; topic: string }
  | { op: 'putSite'; site: Site }
  | { op: 'delSite'; url: string }
  | { op: 'clear' };

const OP_NAMES = new Set<string>([
  'putTopic',
  'checkTopic',
  'delTopic',
  'putSub',
  'delSub',
  'subStats',
  'putOutbox',
  'delOutbox',
  'putVerification',
  'delVerification',
  'putPendingRead',
  'delPendingRead',
  'putSite',
  'delSite',
  'clear',
]);

/** A parsed journal line naming an op this build knows, its fields not yet checked (see wellFormed). */
type RawOp = Record<string, unknown> & { op: JournalOp['op'] };

function isRawOp(v: Record<string, unknown>): v is RawOp {
  return typeof v['op'] === 'string' && OP_NAMES.has(v['op']);
}

/** The single journal of the store before it was sharded; replayed first, then removed. */
export const LEGACY_JOURNAL = 'journal.ndjson';
const SEGMENT_RE = /^journal-(\d{8,})\.ndjson$/;

export function segmentName(n: number): string {
  return `journal-${String(n).padStart(8, '0')}.ndjson`;
}

/** Segment numbers present in `dir`, oldest first. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  const nums: number[] = [];
  for (const name of names) {
    const m = SEGMENT_RE.exec(name);
    if (m) nums.push(Number(m[1]));
  }
  return nums.sort((a, b) => a - b);
}

export interface ReplayResult {
  found: boolean;
  applied: number;
  /** Lines that do not parse, each skipped. */
  discarded: number;
  /**
   * The unreadable lines that a readable one follows, with their 1-based numbers: damage to the
   * file rather than the torn tail of a crash, which nothing readable follows.
   */
  damaged: { line: number; text: string }[];
}

/**
 * Applies every op of one segment file in order. A line that does not parse is skipped, and
 * only it. The usual one is a crash mid-append (a torn last line, or a tail of unsynced pages):
 * nothing in that batch was acknowledged, so applying its whole lines or not is equally right,
 * as for the lines of a batch before its torn one. Anything else is damage to the file (a
 * flipped bit, a bad sector), and the lines after it were acknowledged: stopping there lost
 * every one of them, and open() then deleted the segment. Later segments were started after a
 * restart or a rotation and are replayed normally.
 */
export async function replaySegment(file: string, apply: (op: JournalOp) => void): Promise<ReplayResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return { found: false, applied: 0, discarded: 0, damaged: [] };
    throw readFailure(file, e);
  }
  let applied = 0;
  let lineNo = 0;
  const unreadable: { line: number; text: string }[] = [];
  let damaged = 0;
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl;
    const line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    // A fragment that happens to parse (a number, a string, an array) is no op either.
    if (!isRecord(parsed) || typeof parsed['op'] !== 'string') {
      unreadable.push({ line: lineNo, text: line });
      continue;
    }
    // An op this build does not know (a newer one wrote it) stops open(): skipping it would drop data.
    if (!isRawOp(parsed)) {
      throw new Error(`${path.basename(file)}: unknown journal op ${JSON.stringify(line.slice(0, 40))}`);
    }
    const op = upgraded(parsed);
    // A flipped bit in a field's name still parses: applied, the op threw a TypeError that
    // stopped open() without naming the file. Such a line is damage like any other.
    if (!wellFormed(op)) {
      unreadable.push({ line: lineNo, text: line });
      continue;
    }
    damaged = unreadable.length;
    apply(op);
    // Open is not the hot path, but a long journal should not hold the loop for its whole length.
    if (++applied % 5000 === 0) await yieldToLoop();
  }
  return { found: true, applied, discarded: unreadable.length, damaged: unreadable.slice(0, damaged) };
}

/**
 * An op in the form an older build wrote it, as this build applies it. Builds of f07fa0b wrote
 * each delivery tally as its own subStats line, `{ topic, callback, stats: {…} }`, before they
 * became rows grouped by topic: read as damage, an upgrade from one logged every such line as an
 * error and lost the counters and delivered versions in them, so a version still owed to a
 * failing subscriber was sent again to every subscriber that already had it.
 */
function upgraded(o: RawOp): RawOp {
  if (o.op !== 'subStats' || o['rows'] !== undefined || !str(o['callback']) || !isRecord(o['stats'])) return o;
  const s = o['stats'];
  // Anything else missing is damage, left for wellFormed to refuse.
  if (!num(s['ctUpdates']) || !num(s['ctErrors']) || !num(s['ctConsecutiveErrors'])) return o;
  const time = (v: unknown): number | null => (num(v) ? (v as number) : null);
  const row: StatsRow = [
    o['callback'] as string,
    s['ctUpdates'] as number,
    s['ctErrors'] as number,
    s['ctConsecutiveErrors'] as number,
    time(s['whenLastUpdate']),
    time(s['whenLastError']),
    num(s['deliveredVersion']) ? (s['deliveredVersion'] as number) : 0,
  ];
  return { op: 'subStats', topic: o['topic'], rows: [row] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const str = (v: unknown): boolean => typeof v === 'string';
const num = (v: unknown): boolean => typeof v === 'number';
/** A size in bytes: what getOutboxBody compares a content file's length with. */
const byteCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Whether an op of a known name carries the fields its apply reads (see MemoryState.apply). Also
 * the check of a snapshot shard's records (snapshot-file.ts), which are applied as the same ops.
 */
export function wellFormed(o: RawOp): o is JournalOp {
  const rec = (k: string): Record<string, unknown> | undefined => (isRecord(o[k]) ? o[k] : undefined);
  switch (o.op) {
    case 'putTopic':
      return str(rec('topic')?.['url']);
    case 'checkTopic':
      return str(rec('topic')?.['url']) && rec('topic')?.['fingerprints'] === undefined;
    case 'delTopic':
    case 'delSite':
      return str(o['url']);
    case 'putSub':
      return str(rec('sub')?.['topic']) && str(rec('sub')?.['callback']);
    case 'delSub':
      return str(o['topic']) && str(o['callback']);
    case 'subStats':
      return str(o['topic']) && Array.isArray(o['rows']) && (o['rows'] as unknown[]).every((r) => Array.isArray(r) && str(r[0]));
    case 'putOutbox':
      return str(rec('entry')?.['topic']) && num(rec('entry')?.['version']) && (o['body'] === undefined || str(o['body'])) && (o['size'] === undefined || byteCount(o['size']));
    case 'delOutbox':
      return str(o['topic']) && num(o['version']);
    case 'putVerification':
      return str(rec('v')?.['id']) && str(rec('v')?.['topic']) && str(rec('v')?.['callback']);
    case 'delVerification':
      return str(o['id']);
    case 'putPendingRead':
      return str(rec('read')?.['topic']) && num(rec('read')?.['since']);
    case 'delPendingRead':
      return str(o['topic']);
    case 'putSite':
      return str(rec('site')?.['url']);
    case 'clear':
      return true;
  }
}

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface JournalStats {
  segment: number;
  bytes: number;
  batches: number;
  lines: number;
}

/** Where the platform has O_DSYNC (Linux, macOS), each write is durable when it returns. */
const DSYNC = typeof constants.O_DSYNC === 'number' ? constants.O_DSYNC : 0;
const APPEND_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | DSYNC;
/** The longest a line appended with appendSoon waits for a batch to ride with. */
export const SOON_MS = 1000;
const ignore = (): void => {};

/** Appends to the current segment with group commit; rotates on request. */
export class JournalWriter {
  private fh: FileHandle | undefined;
  /** The open segment's name is durable (its directory was synced): it may take a batch after a failed one. */
  private named = false;
  private queue: Pending[] = [];
  /** The batch that new appends will join; set while the queue is non-empty. */
  private scheduled: Promise<void> | undefined;
  /** Set while lines of appendSoon wait for a batch and none is scheduled. */
  private soonTimer: NodeJS.Timeout | undefined;
  /** Batches and rotations run one at a time, in order. */
  private tail: Promise<void> = Promise.resolve();
  private segment: number;
  private bytes = 0;
  private batches = 0;
  private lines = 0;
  private failed = 0;

  constructor(
    private readonly dir: string,
    firstSegment: number,
    /** Called after every batch with the current segment's size. */
    private readonly afterBatch: (segmentBytes: number) => void = () => {},
  ) {
    this.segment = firstSegment;
  }

  stats(): JournalStats {
    return { segment: this.segment, bytes: this.bytes, batches: this.batches, lines: this.lines };
  }

  /** Batches that failed since this writer started: their lines are in memory but maybe not on disk. */
  get failedBatches(): number {
    return this.failed;
  }

  /** Resolves once `line` (newline-terminated) is appended durably (see writeBatch). */
  append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.schedule();
    });
  }

  /** The batch that takes every line queued so far (and those queued before it starts). */
  private schedule(): void {
    clearTimeout(this.soonTimer);
    this.soonTimer = undefined;
    this.scheduled ??= yieldToLoop().then(() => this.exclusive(() => this.writeBatch()));
  }

  /**
   * Appends `line` with the next batch, made by another append or within SOON_MS: for what a
   * crash may lose at no one's cost (a read that found no change: its count and time of check),
   * whose caller need not wait for the disk. In order with every other append. An unchanged
   * ping waited for its own O_DSYNC batch (~100 µs of the process's CPU, one batch at a time) for
   * nothing but that bookkeeping: most of what it cost beyond its read.
   */
  appendSoon(line: string): void {
    this.queue.push({ line, resolve: ignore, reject: ignore });
    if (this.scheduled || this.soonTimer) return;
    this.soonTimer = setTimeout(() => this.schedule(), SOON_MS);
    // close() flushes what waits; the timer alone does not keep a process alive.
    this.soonTimer.unref();
  }

  /** Resolves when every append issued so far is durable (or has failed). */
  async flush(): Promise<void> {
    if (this.queue.length > 0) this.schedule();
    if (this.scheduled) await this.scheduled;
    await this.tail;
  }

  /**
   * Ends the current segment: appends from now on go to a new one. Resolves with the number
   * of the last segment that can hold ops issued before the call.
   */
  rotate(): Promise<number> {
    return this.exclusive(async () => {
      const closed = this.segment;
      await this.closeSegment();
      return closed;
    });
  }

  async close(): Promise<void> {
    await this.flush();
    await this.exclusive(async () => {
      await this.fh?.close();
      this.fh = undefined;
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async closeSegment(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.segment++;
    this.bytes = 0;
    await fh?.close();
  }

  /** Whether the open segment holds exactly what was acknowledged in it, nothing of a failed batch. */
  private async unchanged(): Promise<boolean> {
    try {
      return (await this.fh!.stat()).size === this.bytes;
    } catch {
      return false;
    }
  }

  private async writeBatch(): Promise<void> {
    this.scheduled = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const data = batch.length === 1 ? batch[0]!.line : batch.map((p) => p.line).join('');
    try {
      if (!this.fh) {
        this.named = false;
        this.fh = await open(path.join(this.dir, segmentName(this.segment)), APPEND_FLAGS, FILE_MODE);
        // The new file's name must be durable before anything in it is acknowledged.
        await syncDir(this.dir);
        this.named = true;
      }
      const bytes = Buffer.from(data, 'utf8');
      // One write call per batch: with O_DSYNC it returns once the data (and the file size
      // needed to read it) is on disk, as fdatasync would make it, in one trip to the thread
      // pool instead of two. A busy event loop makes every trip cost a whole turn, and the
      // deliveries of a fan-out wait for this before their slot is free.
      for (let off = 0; off < bytes.length; ) off += (await this.fh.write(bytes, off, bytes.length - off)).bytesWritten;
      if (!DSYNC) await this.fh.datasync();
      this.bytes += bytes.length;
      this.batches++;
      this.lines += batch.length;
      for (const p of batch) p.resolve();
    } catch (e) {
      // Part of the batch may be in the file. Appending after it would put acknowledged lines
      // behind an unreadable one, so later batches go to a new segment. Not when the file is as
      // it was (a full disk refuses the first byte): a new empty segment per failed batch left
      // hundreds of files in DATA_DIR while the disk stayed full.
      if (!(this.named && (await this.unchanged()))) await this.closeSegment().catch(() => {});
      this.failed++;
      for (const p of batch) p.reject(e);
    }
    try {
      this.afterBatch(this.bytes);
    } catch {
      // The hook only schedules work; it must not fail the journal.
    }
  }
}
