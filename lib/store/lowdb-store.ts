// The embedded store: every record lives in memory; on disk, DATA_DIR holds
//   snapshot-00.json … snapshot-63.json  lowdb files, the state as of the last compaction,
//                                        sharded by a hash of the topic URL (snapshot-file.ts);
//   snapshot-shards.json                 which of them have been written (snapshot-file.ts);
//   journal-NNNNNNNN.ndjson              append-only segments, every change since (journal.ts);
//   content/<sha256(topic)[:16]>-<version>.bin   outbox bodies over INLINE_BODY_MAX (content-files.ts);
//                                        smaller ones travel inside their entry.
// A write is applied to memory, then appended to the journal with group commit; its promise
// resolves after the fdatasync. Compaction rotates the journal, rewrites the shards that
// changed one at a time (yielding to the event loop between them), and deletes the old
// segments only once every shard is durable. docs/adr/0002-embedded-store-durability.md
// explains the choice and why a crash at any point recovers every acknowledged write.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { silentLogger, type Logger } from '../log.js';
import { callbackHost, hostKey, outboxEntryKey, withTally, type DeliveryTally, type OutboxEntry, type OutboxKey, type PendingRead, type PendingVerification, type Site, type Subscription, type Topic } from '../model.js';
import { ContentFiles, contentFileName } from './content-files.js';
import { checkWritable, isNotFound, KeyedMutex, removeFile, replaceFile, syncDir, yieldToLoop } from './fs-durable.js';
import { lockDataDir, type DirLock } from './dir-lock.js';
import { JournalWriter, LEGACY_JOURNAL, listSegments, replaySegment, segmentName, statsRow, type JournalOp, type JournalStats, type StatsRow } from './journal.js';
import { emptyShard, readWrittenShards, RESTORE_ADVICE, shardDb, shardFileName, SHARD_COUNT, SHARD_FORMAT, shardOf, shardProblem, WRITTEN_SHARDS_FILE, writtenShardsAdvice, writtenShardsText, type ShardFile } from './snapshot-file.js';
import { MemoryState } from './state.js';
import { subscriptionEnded, type ExpiryFilter, type Store, type StoreCounts, type SubscriptionLimit, type SubscriptionLimits, type TopicSubscriptions } from './store.js';

/** The single snapshot file of the store before it was sharded; migrated at open(). */
const LEGACY_SNAPSHOT = 'snapshot.json';
/**
 * Outbox bodies up to this size are kept in the journal line and the snapshot, and in memory
 * until their fan-out ends; larger ones in content/. A feed's diff (its new entries in the
 * envelope) is usually a few KB; the bound keeps a backlog of unfinished fan-outs small in memory.
 */
export const INLINE_BODY_MAX = 16 * 1024;

interface LegacySnapshot {
  topics: Topic[];
  subscriptions: Subscription[];
}

export interface LowdbStoreOptions {
  dir: string;
  /** Compact (rotate the journal, rewrite changed shards) once the current journal segment passes this many bytes. */
  compactAfterBytes?: number;
  /**
   * Compact at most this long after the first write to the current journal segment, however
   * small it is: until then a removed record (an ended subscription, its callback URL and secret)
   * is still in the segment and in its snapshot shard. Default: an hour.
   */
  compactAfterMs?: number;
  /** Where damage met at open() and failed compactions are told. */
  log?: Logger;
}

export interface LowdbStoreStats {
  journal: JournalStats;
  /** A compaction is running now. */
  compacting: boolean;
  compactions: number;
  compactionsFailed: number;
  shardWrites: number;
  lastCompactionMs: number;
  longestCompactionMs: number;
  lastError: string | undefined;
  open: {
    ms: number;
    shardsLoaded: number;
    segmentsReplayed: number;
    opsReplayed: number;
    linesDiscarded: number;
    orphansRemoved: number;
  };
}

/** Copies of records, a slice per turn of the event loop: 100k copies at once take ~80 ms. */
async function copies<T extends object>(refs: T[]): Promise<T[]> {
  const out: T[] = new Array<T>(refs.length);
  for (let i = 0; i < refs.length; i++) {
    out[i] = { ...refs[i]! };
    if (i % COPY_SLICE === COPY_SLICE - 1) await yieldToLoop();
  }
  return out;
}
const COPY_SLICE = 5000;

export class LowdbStore implements Store {
  /** One process holds the directory (its lock): nobody else can take its claims. */
  readonly sharedClaims = false;
  private readonly state = new MemoryState();
  private readonly dir: string;
  private readonly shards: Low<ShardFile>[];
  private readonly content: ContentFiles;
  /** Serialises the put / delete / clear-cleanup of one content file. */
  private readonly fileLocks = new KeyedMutex();
  /** Outbox claims by claimKey; in memory only (see putOutbox). */
  private readonly claims = new Map<string, { owner: string; until: number }>();
  /** Verification claims by id; in memory only. */
  private readonly verificationClaims = new Map<string, { owner: string; until: number }>();
  private readonly compactAfterBytes: number;
  private readonly compactAfterMs: number;
  /** Set while the current segment holds writes that no compaction has folded yet. */
  private compactTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private journal: JournalWriter | undefined;
  /** The shards written, each with the last segment folded when it was first written (WRITTEN_SHARDS_FILE). */
  private readonly written = new Map<number, number>();
  /** What WRITTEN_SHARDS_FILE holds now; undefined while there is none. */
  private writtenOnDisk: string | undefined;
  private lock: DirLock | undefined;
  private compacting: Promise<void> | undefined;
  private closing = false;
  /** Compactions failed since the last that succeeded. */
  private compactionsFailing = 0;
  /**
   * The journal's failed batches as of the start of the last compaction that succeeded: the
   * changes of those batches are in the shards it wrote from memory (see recordCheck).
   */
  private failedBatchesFolded = 0;
  private readonly counters: Omit<LowdbStoreStats, 'journal' | 'compacting'> = {
    compactions: 0,
    compactionsFailed: 0,
    shardWrites: 0,
    lastCompactionMs: 0,
    longestCompactionMs: 0,
    lastError: undefined,
    open: { ms: 0, shardsLoaded: 0, segmentsReplayed: 0, opsReplayed: 0, linesDiscarded: 0, orphansRemoved: 0 },
  };

  constructor(opts: LowdbStoreOptions) {
    this.dir = opts.dir;
    this.shards = Array.from({ length: SHARD_COUNT }, (_, k) => shardDb(opts.dir, k));
    this.content = new ContentFiles(opts.dir);
    this.compactAfterBytes = opts.compactAfterBytes ?? 16 * 1024 * 1024;
    this.compactAfterMs = opts.compactAfterMs ?? 3600_000;
    this.log = opts.log ?? silentLogger;
  }

  async open(): Promise<void> {
    const started = performance.now();
    const o = this.counters.open;
    await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
      // mkdir said only "EEXIST: file already exists" of a DATA_DIR that names a file.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') throw new Error(`${path.resolve(this.dir)} is not a directory (it, or a directory above it, is a file): DATA_DIR names the directory the store keeps its files in (created when missing)`);
      throw e;
    });
    this.lock = await lockDataDir(this.dir);
    try {
      await this.load();
    } catch (e) {
      await this.lock.release();
      this.lock = undefined;
      throw e;
    }
    o.ms = performance.now() - started;
  }

  /** open()'s reading and tidying, under the directory's lock. */
  private async load(): Promise<void> {
    const o = this.counters.open;
    await this.content.init();
    await syncDir(this.dir); // content/ itself, on a first run
    await checkWritable(this.dir);
    await checkWritable(this.content.dir);

    const segments = await listSegments(this.dir);
    const listed = await readWrittenShards(this.dir);
    this.writtenOnDisk = listed && writtenShardsText(listed);
    // Segment numbers start again at 1 when none is left; kept above every number the list holds,
    // so that a number in it never names a later segment.
    const last = Math.max(segments.at(-1) ?? 0, ...(listed?.values() ?? []));
    const missing: boolean[] = [];
    let listedIn: number | undefined;
    for (let k = 0; k < SHARD_COUNT; k++) {
      const db = this.shards[k]!;
      const none = emptyShard(k);
      db.data = none;
      await db.read();
      missing[k] = db.data === none;
      const since = listed?.get(k);
      // Listed but missing is lost, unless a segment from before the compaction that first wrote
      // it is still here (a backup that copied the segments before that compaction ran): then its
      // records are in the journal, replayed below, and it is written again.
      if (missing[k] && since !== undefined && since < (segments[0] ?? Infinity)) {
        throw new Error(
          `${path.join(this.dir, shardFileName(k))} is missing: ${WRITTEN_SHARDS_FILE} lists it as written, and its records are nowhere else (the journal segments that held them are gone): restore it from a backup of DATA_DIR (${path.resolve(this.dir)}); the store does not open without it`,
        );
      }
      if (!missing[k]) {
        this.written.set(k, since ?? last);
        if (db.data.listed) listedIn ??= k;
        if (db.data.format !== SHARD_FORMAT || db.data.shards !== SHARD_COUNT) {
          throw new Error(`${shardFileName(k)}: format ${db.data.format} with ${db.data.shards} shards; this build reads format ${SHARD_FORMAT} with ${SHARD_COUNT}`);
        }
        const problem = shardProblem(db.data);
        if (problem !== undefined) {
          throw new Error(`${path.join(this.dir, shardFileName(k))} is damaged (${problem}): ${RESTORE_ADVICE}`);
        }
        this.state.load(db.data, k);
        o.shardsLoaded++;
      }
      db.data = none; // the records live in memory now; do not keep the arrays
      await yieldToLoop();
    }

    if (listed === undefined && listedIn !== undefined) {
      // Without it, a shard lost with it would go unnoticed.
      throw new Error(
        `${path.join(this.dir, WRITTEN_SHARDS_FILE)} is missing: ${shardFileName(listedIn)} was written while it was there, and the store never removes it: ${writtenShardsAdvice(this.dir)}`,
      );
    }

    // The store before sharding: its snapshot fills the shards not written yet, and its journal
    // is older than any segment. Every shard is rewritten, then both files go.
    const legacy = await this.readLegacySnapshot();
    if (legacy) {
      for (const topic of legacy.topics) if (missing[shardOf(topic.url)]) this.state.apply({ op: 'putTopic', topic });
      for (const sub of legacy.subscriptions) if (missing[shardOf(sub.topic)]) this.state.apply({ op: 'putSub', sub });
    }
    const replay = async (file: string): Promise<void> => {
      const r = await replaySegment(file, (op) => this.state.apply(op));
      if (r.found) o.segmentsReplayed++;
      o.opsReplayed += r.applied;
      o.linesDiscarded += r.discarded;
      const segment = path.basename(file);
      if (r.damaged.length > 0) {
        // Acknowledged writes the store cannot read: kept beside the store (the segment goes once
        // the shards are written), for whoever can repair them by hand.
        const kept = await this.damagedFileFor(segment, r.damaged.map((d) => d.text + '\n').join(''));
        await syncDir(this.dir);
        this.log.error('store: unreadable journal lines skipped (the file is damaged); the lines after them are applied', {
          segment,
          lines: r.damaged.map((d) => d.line).join(' '),
          keptIn: kept,
        });
      }
      if (r.discarded > r.damaged.length) {
        this.log.info('store: a torn journal tail discarded (a crash mid-append: never acknowledged)', { segment, lines: r.discarded - r.damaged.length });
      }
    };
    await replay(path.join(this.dir, LEGACY_JOURNAL));
    for (const n of segments) await replay(path.join(this.dir, segmentName(n)));
    if (legacy) this.state.markAllDirty();

    // New appends start a new segment, so they never follow a torn line; once the changed
    // shards are durable the replayed segments are deleted.
    this.journal = new JournalWriter(this.dir, last + 1, (bytes) => this.compactIfDue(bytes));
    await this.persistShards(last);
    if (legacy) await removeFile(path.join(this.dir, LEGACY_SNAPSHOT));

    for (const name of await readdir(this.dir)) {
      if (/^\.snapshot-(\d+|shards)\.json\.tmp$/.test(name)) await removeFile(path.join(this.dir, name));
    }
    const live = new Set<string>();
    for (const e of this.state.outboxRefs()) live.add(contentFileName(e.topic, e.version));
    o.orphansRemoved = await this.content.sweep(live);
  }

  /**
   * Where the damaged lines of `segment` are kept: damaged-<segment>, unless that holds other
   * lines already. Segment numbers start again at 1 after a start that wrote nothing, so a
   * later damage of a segment of the same name replaced lines kept for repair.
   */
  private async damagedFileFor(segment: string, text: string): Promise<string> {
    const base = segment.replace(/\.ndjson$/, '');
    for (let n = 1; ; n++) {
      const kept = path.join(this.dir, n === 1 ? `damaged-${segment}` : `damaged-${base}-${n}.ndjson`);
      const old = await readFile(kept, 'utf8').catch((e: unknown) => {
        if (isNotFound(e)) return undefined;
        throw e;
      });
      if (old === text) return kept; // an open that failed after keeping them
      if (old !== undefined) continue;
      await replaceFile(kept, text);
      return kept;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.compactTimer);
    this.compactTimer = undefined;
    await this.settle();
    await this.journal?.close();
    await this.lock?.release();
    this.lock = undefined;
  }

  async flush(): Promise<void> {
    await this.journal?.flush();
  }

  /** Resolves when every write issued so far is durable and no compaction is running. */
  async settle(): Promise<void> {
    await this.flush();
    while (this.compacting) await this.compacting;
  }

  /** Compacts now (after any compaction already running); rejects if it fails. */
  async compact(): Promise<void> {
    while (this.compacting) await this.compacting;
    const run = this.compactNow();
    this.track(run);
    await run;
  }

  stats(): LowdbStoreStats {
    return { ...this.counters, open: { ...this.counters.open }, journal: this.requireJournal().stats(), compacting: this.compacting !== undefined };
  }

  // --- topics and subscriptions --------------------------------------------------------------

  async getTopic(url: string): Promise<Topic | undefined> {
    const t = this.state.getTopic(url);
    return t && { ...t };
  }

  putTopic(topic: Topic): Promise<void> {
    return this.write({ op: 'putTopic', topic: { ...topic } });
  }

  async recordCheck(topic: Topic): Promise<void> {
    const { fingerprints, ...rest } = topic;
    const stored = this.state.getTopic(topic.url);
    const journal = this.requireJournal();
    // A topic deleted since it was read is written whole, as it always was. So is every topic
    // while a failed batch (a full disk) is not yet made up for by a compaction: memory may hold
    // a change of it that the journal lacks, its fingerprints or the topic itself, and a check
    // without them, replayed over the older record or over none, kept the new count and hash
    // with the old entries (which were then sent again) or set nothing.
    const partial = stored !== undefined && sameList(stored.fingerprints, fingerprints) && journal.failedBatches === this.failedBatchesFolded;
    const whole: JournalOp = { op: 'putTopic', topic: { ...topic } };
    const line = JSON.stringify(partial ? ({ op: 'checkTopic', topic: rest } satisfies JournalOp) : whole) + '\n';
    // Memory takes the whole topic either way, the caller's list with it (equal to the stored
    // one when the line leaves it out): the checker knows the lists it made, and does not diff
    // again a body it read last with one of them (TopicChecker.madeHere).
    this.state.apply(whole);
    journal.appendSoon(line);
  }

  deleteTopic(url: string): Promise<void> {
    return this.write({ op: 'delTopic', url });
  }

  deleteStaleTopics(before: number, limit: number): Promise<number> {
    // In one synchronous pass (see deleteFirst), so no subscription can arrive in between.
    return this.deleteFirst(
      this.state.topicRefs(),
      limit,
      (t) => t.whenLastUpdate < before && this.state.subscriptionCountOf(t.url) === 0,
      (t) => ({ op: 'delTopic', url: t.url }),
    );
  }

  trimUnfollowedTopics(keep: number): Promise<number> {
    // Found and deleted in one synchronous pass, so no subscription can arrive in between.
    // Most hubs hold fewer topics than the bound in all: no pass over them then.
    if (this.state.counts().topics <= keep) return Promise.resolve(0);
    const unfollowed = this.state.topicRefs().filter((t) => this.state.subscriptionCountOf(t.url) === 0);
    return this.deleteAllBut(unfollowed, keep, (t) => t.whenLastCheck, (t) => ({ op: 'delTopic', url: t.url }));
  }

  async listTopics(): Promise<Topic[]> {
    return copies(this.state.topicRefs());
  }

  async getSubscription(topic: string, callback: string): Promise<Subscription | undefined> {
    const s = this.state.getSubscription(topic, callback);
    return s && { ...s };
  }

  putSubscription(sub: Subscription): Promise<void> {
    return this.write({ op: 'putSub', sub: { ...sub } });
  }

  recordDeliveries(tallies: DeliveryTally[]): Promise<void> {
    const journal = this.requireJournal();
    const byTopic = new Map<string, StatsRow[]>();
    for (const t of tallies) {
      const current = this.state.getSubscription(t.topic, t.callback);
      if (!current) continue;
      let rows = byTopic.get(t.topic);
      if (!rows) byTopic.set(t.topic, (rows = []));
      rows.push(statsRow(t.callback, withTally(current, t)));
    }
    if (byTopic.size === 0) return Promise.resolve();
    let lines = '';
    for (const [topic, rows] of byTopic) {
      const op: JournalOp = { op: 'subStats', topic, rows };
      this.state.apply(op);
      lines += JSON.stringify(op) + '\n';
    }
    return journal.append(lines);
  }

  async deleteSubscription(topic: string, callback: string): Promise<boolean> {
    if (!this.state.getSubscription(topic, callback)) return false;
    await this.write({ op: 'delSub', topic, callback });
    return true;
  }

  subscriptionsOf(topic: string): Promise<Subscription[]> {
    // The records gathered at once (a later write cannot make one appear twice), copied a
    // slice at a time: a topic of 100,000 subscribers held the event loop ~100 ms copying them.
    return copies(Array.from(this.state.subscriptionsOf(topic)));
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return copies(this.state.subscriptionRefs());
  }

  async subscribedTopics(): Promise<TopicSubscriptions[]> {
    return this.state.subscribedTopics();
  }

  deleteExpiredSubscriptions({ now, maxConsecutiveErrors, limit }: ExpiryFilter): Promise<number> {
    // In one synchronous pass (see deleteFirst), so a renewal cannot slip in between.
    return this.deleteFirst(
      this.state.subscriptionRefs(),
      limit,
      (s) => subscriptionEnded(s, { now, maxConsecutiveErrors }),
      (s) => ({ op: 'delSub', topic: s.topic, callback: s.callback }),
    );
  }

  // --- outbox --------------------------------------------------------------------------------

  putOutbox(entry: OutboxEntry, body: Buffer): Promise<void> {
    const { claimedBy, claimedUntil, ...copy } = entry;
    // Claims live in memory only: this store serves one process, and every claim is void when
    // it opens (resume() then takes everything, as before claims existed).
    const key = outboxEntryKey(copy.topic, copy.version);
    const claim = claimedBy !== undefined && claimedUntil !== undefined ? { owner: claimedBy, until: claimedUntil } : undefined;
    if (claim) this.claims.set(key, claim);
    const name = contentFileName(copy.topic, copy.version);
    const written = this.fileLocks.run(name, async () => {
      // A small body travels in the entry's journal line: durable with it in one append,
      // where a file of its own took five file-system calls and two more fsyncs before the
      // first delivery could leave (2.7 ms of a 10 ms publish → delivery at idle).
      if (body.length <= INLINE_BODY_MAX) return this.write({ op: 'putOutbox', entry: copy, body: body.toString('base64') });
      // The body is durable before the entry that points at it is journaled (or even visible).
      await this.content.write(name, body);
      await this.write({ op: 'putOutbox', entry: copy, size: body.length });
    });
    if (!claim) return written;
    // An entry that never came to be (its body or line not written) keeps no claim: it stayed
    // here for good, and a later entry of the same version (the next read's, once the disk has
    // room) showed this one's owner and lease.
    return written.catch((e: unknown) => {
      if (this.claims.get(key) === claim && !this.state.hasOutbox(copy.topic, copy.version)) this.claims.delete(key);
      throw e;
    });
  }

  async getOutboxBody(topic: string, version: number): Promise<Buffer | undefined> {
    if (!this.state.hasOutbox(topic, version)) return undefined;
    const inline = this.state.inlineBody(topic, version);
    if (inline !== undefined) return Buffer.from(inline, 'base64');
    const name = contentFileName(topic, version);
    const body = await this.content.read(name);
    const size = this.state.fileSize(topic, version);
    // A file cut short (a restore that stopped midway, a damaged disk) went out to every
    // subscriber as the version's content, with a signature that vouched for it.
    if (body !== undefined && size !== undefined && body.length !== size) {
      this.log.error('store: an outbox body file is not the size it was written at (the file is damaged); its version is not delivered', {
        file: path.join(this.content.dir, name),
        bytes: body.length,
        written: size,
      });
      return undefined;
    }
    return body;
  }

  async outboxBodySize(topic: string, version: number): Promise<number | undefined> {
    if (!this.state.hasOutbox(topic, version)) return undefined;
    const inline = this.state.inlineBody(topic, version);
    return inline !== undefined ? Buffer.byteLength(inline, 'base64') : this.content.size(contentFileName(topic, version));
  }

  deleteOutbox(topic: string, version: number): Promise<void> {
    const name = contentFileName(topic, version);
    return this.fileLocks.run(name, async () => {
      if (!this.state.hasOutbox(topic, version)) return;
      this.claims.delete(outboxEntryKey(topic, version));
      // Journal first: a crash between the two leaves an orphan file, removed at the next open.
      await this.write({ op: 'delOutbox', topic, version });
      await this.content.remove(name);
    });
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return (await copies(this.state.outboxRefs())).sort(
      (a, b) => a.createdAt - b.createdAt || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0) || a.version - b.version,
    );
  }

  async outboxOf(topic: string): Promise<OutboxEntry[]> {
    return this.state
      .outboxRefsOf(topic)
      .map((e) => this.withClaim(e))
      .sort((a, b) => a.version - b.version);
  }

  async claimOutbox(owner: string, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const now = Date.now();
    const out: OutboxEntry[] = [];
    const refs = this.state.outboxRefs().sort((a, b) => a.createdAt - b.createdAt);
    for (const e of refs) {
      if (out.length >= limit) break;
      const key = outboxEntryKey(e.topic, e.version);
      const claim = this.claims.get(key);
      if (claim && claim.until >= now) continue;
      this.claims.set(key, { owner, until: now + leaseMs });
      out.push(this.withClaim(e));
    }
    return out;
  }

  async renewOutboxClaims(owner: string, leaseMs: number, keys: OutboxKey[]): Promise<OutboxKey[]> {
    const until = Date.now() + leaseMs;
    const renewed: OutboxKey[] = [];
    for (const k of keys) {
      const claim = this.claims.get(outboxEntryKey(k.topic, k.version));
      if (claim?.owner !== owner) continue;
      claim.until = until;
      renewed.push({ topic: k.topic, version: k.version });
    }
    return renewed;
  }

  withTopicLock<T>(_url: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  withSweepLock<T>(fn: () => Promise<T>): Promise<T | undefined> {
    return fn();
  }

  private withClaim(e: OutboxEntry): OutboxEntry {
    const claim = this.claims.get(outboxEntryKey(e.topic, e.version));
    return claim ? { ...e, claimedBy: claim.owner, claimedUntil: claim.until } : { ...e };
  }

  // --- pending verifications ------------------------------------------------------------------

  putVerification(v: PendingVerification): Promise<void> {
    const { claimedBy, claimedUntil, ...copy } = v;
    // In memory only, as outbox claims are.
    if (claimedBy !== undefined && claimedUntil !== undefined) this.verificationClaims.set(copy.id, { owner: claimedBy, until: claimedUntil });
    return this.write({ op: 'putVerification', v: copy });
  }

  async supersedeOlderVerifications(v: PendingVerification): Promise<boolean> {
    if (!this.state.hasVerification(v.id)) return false;
    // Decided and written in one synchronous step: nothing can come between the check and the removals.
    const older = this.state.verificationsOf(v.topic, v.callback).filter((o) => acceptedBefore(o, v));
    for (const o of older) this.verificationClaims.delete(o.id);
    await Promise.all(older.map((o) => this.write({ op: 'delVerification', id: o.id })));
    return true;
  }

  async hasVerification(id: string): Promise<boolean> {
    return this.state.hasVerification(id);
  }

  async deleteVerification(id: string): Promise<void> {
    this.verificationClaims.delete(id);
    if (this.state.hasVerification(id)) await this.write({ op: 'delVerification', id });
  }

  async claimVerifications(owner: string, leaseMs: number, limit: number): Promise<PendingVerification[]> {
    const now = Date.now();
    const out: PendingVerification[] = [];
    for (const v of this.state.verificationRefs().sort((a, b) => a.createdAt - b.createdAt)) {
      if (out.length >= limit) break;
      const claim = this.verificationClaims.get(v.id);
      if (claim && claim.until >= now) continue;
      this.verificationClaims.set(v.id, { owner, until: now + leaseMs });
      out.push({ ...v, claimedBy: owner, claimedUntil: now + leaseMs });
    }
    return out;
  }

  async renewVerificationClaims(owner: string, leaseMs: number, ids: string[]): Promise<void> {
    const until = Date.now() + leaseMs;
    for (const id of ids) {
      const claim = this.verificationClaims.get(id);
      if (claim?.owner === owner) claim.until = until;
    }
  }

  async releaseClaims(owner: string): Promise<void> {
    for (const claims of [this.claims, this.verificationClaims]) {
      for (const [key, claim] of claims) if (claim.owner === owner) claims.delete(key);
    }
  }

  async listVerifications(): Promise<PendingVerification[]> {
    return (await copies(this.state.verificationRefs())).sort((a, b) => a.createdAt - b.createdAt);
  }

  // --- pending reads -------------------------------------------------------------------------

  async putPendingReads(topics: string[], since: number): Promise<string[]> {
    // Checked and applied to memory in one synchronous step; the lines share one group commit.
    const recorded = [...new Set(topics)].filter((t) => this.state.subscriptionCountOf(t) > 0);
    await Promise.all(
      recorded.map((topic) => {
        const had = this.state.getPendingRead(topic);
        return this.write({ op: 'putPendingRead', read: { topic, since: Math.max(since, had?.since ?? since) } });
      }),
    );
    return recorded;
  }

  async deletePendingRead(topic: string, readSince: number): Promise<void> {
    const had = this.state.getPendingRead(topic);
    if (had && had.since <= readSince) await this.write({ op: 'delPendingRead', topic });
  }

  async listPendingReads(): Promise<PendingRead[]> {
    return (await copies(this.state.pendingReadRefs())).sort((a, b) => a.since - b.since || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  // --- sites ---------------------------------------------------------------------------------

  async getSite(url: string): Promise<Site | undefined> {
    const s = this.state.getSite(url);
    return s && { ...s, feeds: [...s.feeds], hubs: [...s.hubs] };
  }

  putSite(site: Site): Promise<void> {
    return this.write({ op: 'putSite', site: { ...site, feeds: [...site.feeds], hubs: [...site.hubs] } });
  }

  deleteStaleSites(before: number, limit: number): Promise<number> {
    return this.deleteFirst(
      this.state.siteRefs(),
      limit,
      (s) => s.whenChecked < before,
      (s) => ({ op: 'delSite', url: s.url }),
    );
  }

  trimSites(keep: number): Promise<number> {
    return this.deleteAllBut(this.state.siteRefs(), keep, (s) => s.whenChecked, (s) => ({ op: 'delSite', url: s.url }));
  }

  // --- the rest ------------------------------------------------------------------------------

  async countSubscriptions(filter: { topic: string } | { callbackHost: string }): Promise<number> {
    return 'topic' in filter ? this.state.subscriptionCountOf(filter.topic) : this.state.subscriptionsOfHost(hostKey(filter.callbackHost));
  }

  async hasLiveSubscription(topic: string, filter: Omit<ExpiryFilter, 'limit'>): Promise<boolean> {
    for (const s of this.state.subscriptionsOf(topic)) if (!subscriptionEnded(s, filter)) return true;
    return false;
  }

  putVerifiedSubscription(sub: Subscription, limits: SubscriptionLimits, requestId: string): Promise<SubscriptionLimit | 'superseded' | null> {
    // Checked in the same synchronous step as the write.
    return this.state.hasVerification(requestId) ? this.putSubscriptionWithinLimits(sub, limits) : Promise.resolve('superseded');
  }

  putSubscriptionWithinLimits(sub: Subscription, limits: SubscriptionLimits): Promise<SubscriptionLimit | null> {
    // One process: checked and applied to memory in one synchronous step, so nothing runs in
    // between and the limits are exact without waiting for this write's fdatasync; it becomes
    // durable with the other writes of its turn (group commit). Waiting for every fdatasync in
    // turn made 10,000 pleaseNotify take over 10 s.
    const reached = this.limitReached(sub.topic, sub.callback, limits);
    return reached ? Promise.resolve(reached) : this.putSubscription(sub).then(() => null);
  }

  async subscriptionLimitReached(topic: string, callback: string, limits: SubscriptionLimits): Promise<SubscriptionLimit | null> {
    return this.limitReached(topic, callback, limits);
  }

  private limitReached(topic: string, callback: string, limits: SubscriptionLimits): SubscriptionLimit | null {
    if (this.state.getSubscription(topic, callback)) return null;
    if (this.state.subscriptionCountOf(topic) >= limits.perTopic) return 'topic';
    if (this.state.subscriptionsOfHost(callbackHost(callback)) >= limits.perCallbackHost) return 'callbackHost';
    return null;
  }

  async counts(): Promise<StoreCounts> {
    return this.state.counts();
  }

  clear(): Promise<void> {
    this.claims.clear();
    this.verificationClaims.clear();
    const bodies = this.state.outboxRefs().map((e) => [e.topic, e.version] as const);
    return this.write({ op: 'clear' }).then(async () => {
      for (const [topic, version] of bodies) {
        const name = contentFileName(topic, version);
        await this.fileLocks.run(name, async () => {
          // Put again since the clear: the file is the new entry's.
          if (!this.state.hasOutbox(topic, version)) await this.content.remove(name);
        });
      }
    });
  }

  // --- internals -------------------------------------------------------------------------------

  private requireJournal(): JournalWriter {
    if (!this.journal) throw new Error('LowdbStore: open() first');
    return this.journal;
  }

  /**
   * Deletes the first `limit` of `records` that are `due`, each by the op `del` makes. They are
   * found and applied to memory in one synchronous pass, so nothing can change them in between,
   * and the deletions become durable together.
   */
  private async deleteFirst<T>(records: readonly T[], limit: number, due: (r: T) => boolean, del: (r: T) => JournalOp): Promise<number> {
    const found: T[] = [];
    for (const r of records) {
      if (found.length >= limit) break;
      if (due(r)) found.push(r);
    }
    await Promise.all(found.map((r) => this.write(del(r))));
    return found.length;
  }

  /** Deletes all of `records` but the `keep` most recent by `recency`: deleteFirst of the oldest. */
  private deleteAllBut<T>(records: T[], keep: number, recency: (r: T) => number, del: (r: T) => JournalOp): Promise<number> {
    if (records.length <= keep) return Promise.resolve(0);
    return this.deleteFirst(records.sort((a, b) => recency(a) - recency(b)), records.length - keep, () => true, del);
  }

  /** Applies to memory now; durable when the promise resolves. */
  private write(op: JournalOp): Promise<void> {
    const journal = this.requireJournal();
    this.state.apply(op);
    return journal.append(JSON.stringify(op) + '\n');
  }

  private compactIfDue(segmentBytes: number): void {
    if (this.closing) return;
    // A quiet hub's journal took months to reach compactAfterBytes, and a subscription removed
    // meanwhile (with its callback URL's token and its secret) stayed in DATA_DIR's files as long.
    if (segmentBytes > 0) this.armCompactTimer();
    if (segmentBytes < this.compactAfterBytes || this.compacting) return;
    // A failure is counted in stats; the next batch past the threshold tries again.
    this.track(this.compactNow());
  }

  private armCompactTimer(): void {
    if (this.compactTimer || this.closing) return;
    this.compactTimer = setTimeout(() => void this.compactOnTimer(), this.compactAfterMs);
    this.compactTimer.unref();
  }

  private async compactOnTimer(): Promise<void> {
    this.compactTimer = undefined;
    // One running may have rotated before the writes that armed the timer: compact after it.
    while (this.compacting) await this.compacting;
    if (this.closing) return;
    const run = this.compactNow();
    this.track(run);
    // Failed, it is tried again after the same wait even if nothing more is written: the segments
    // it did not delete still hold what was removed.
    await run.catch(() => this.armCompactTimer());
  }

  private track(run: Promise<void>): void {
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.compacting = settled;
    void settled.then(() => {
      if (this.compacting !== settled) return;
      this.compacting = undefined;
      // Writes kept coming while it ran: the new segment may be due already.
      if (this.journal) this.compactIfDue(this.journal.stats().bytes);
    });
  }

  private async compactNow(): Promise<void> {
    const started = performance.now();
    try {
      // Every op of a batch failed by now was applied to memory before, so is in the shards below.
      const failedBatches = this.requireJournal().failedBatches;
      // From here on appends go to a new segment: every op not in it is in a shard written below.
      const closed = await this.requireJournal().rotate();
      await this.persistShards(closed);
      this.failedBatchesFolded = failedBatches;
      this.counters.compactions++;
      if (this.compactionsFailing > 0) this.log.info('store: compaction succeeded again', { after: this.compactionsFailing });
      this.compactionsFailing = 0;
    } catch (e) {
      this.counters.compactionsFailed++;
      this.counters.lastError = e instanceof Error ? e.message : String(e);
      // Nothing is lost (the segments stay until every shard is written), but the journal and
      // the next start's replay grow until one succeeds: the operator must hear of it.
      this.log.error('store: compaction failed; the journal is kept, and compaction is tried again within COMPACT_INTERVAL_MS, or sooner once it has grown', {
        error: this.counters.lastError,
        failedInARow: ++this.compactionsFailing,
      });
      throw e;
    } finally {
      const ms = performance.now() - started;
      this.counters.lastCompactionMs = ms;
      this.counters.longestCompactionMs = Math.max(this.counters.longestCompactionMs, ms);
    }
  }

  /**
   * Writes every dirty shard, one at a time with a turn of the event loop between them (and
   * between slices of a shard's records: one topic's may be most of the state), makes the renames durable, lists the
   * shards written (WRITTEN_SHARDS_FILE), and only then deletes the journal segments up to `closed`.
   */
  private async persistShards(closed: number): Promise<void> {
    const todo = this.state.dirtyShards();
    for (const k of todo) {
      const db = this.shards[k]!;
      db.data = this.state.takeShard(k);
      if (this.writtenOnDisk !== undefined) db.data.listed = true;
      try {
        await db.write();
      } catch (e) {
        this.state.markDirty(k);
        throw e;
      } finally {
        db.data = emptyShard(k);
      }
      this.counters.shardWrites++;
      if (!this.written.has(k)) this.written.set(k, closed);
      await yieldToLoop();
    }
    if (todo.length > 0) await syncDir(this.dir);
    // Before the segments go: a shard it does not list yet is one whose loss nothing would tell.
    const written = writtenShardsText(this.written);
    if (written !== this.writtenOnDisk && (this.writtenOnDisk !== undefined || this.written.size > 0)) {
      await replaceFile(path.join(this.dir, WRITTEN_SHARDS_FILE), written);
      // Its name durable before a shard says it is there (ShardFile.listed).
      if (this.writtenOnDisk === undefined) await syncDir(this.dir);
      this.writtenOnDisk = written;
    }
    for (const n of await listSegments(this.dir)) {
      if (n <= closed) await removeFile(path.join(this.dir, segmentName(n)));
    }
    await removeFile(path.join(this.dir, LEGACY_JOURNAL));
  }

  private async readLegacySnapshot(): Promise<LegacySnapshot | undefined> {
    const none: LegacySnapshot = { topics: [], subscriptions: [] };
    const db = new Low<LegacySnapshot>(new JSONFile<LegacySnapshot>(path.join(this.dir, LEGACY_SNAPSHOT)), none);
    await db.read();
    return db.data === none ? undefined : { topics: db.data.topics ?? [], subscriptions: db.data.subscriptions ?? [] };
  }
}

/** Whether `a` was accepted before `b`: by createdAt, then by id, as PostgreSQL orders them. */
function acceptedBefore(a: PendingVerification, b: PendingVerification): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
}

/** Whether two lists of fingerprints hold the same ones in the same order (the same array, most often). */
function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}
