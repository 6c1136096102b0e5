// The clean-up sweep: expired and exhausted subscriptions, and topics and sites nobody follows
// past the retention window, deleted in bounded batches; and what nobody follows beyond
// MAX_UNFOLLOWED_TOPICS, forgotten as new topics come (see Sweeper.topicCreated); and the pending
// reads whose process is gone, found for the hub to read (see Sweeper.orphanedReads).
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { PendingRead } from './model.js';
import type { Store } from './store/store.js';

export interface CleanupReport {
  subscriptionsRemoved: number;
  topicsRemoved: number;
  sitesRemoved: number;
  /** Forgotten beyond MAX_UNFOLLOWED_TOPICS, least recently read first (see trimUnfollowed). */
  topicsTrimmed: number;
  sitesTrimmed: number;
  /** Another hub process on the database was sweeping: this one left the round to it. */
  skipped?: true;
  /** The hub began to close during the sweep: it stopped between passes, the rest left to the next. */
  stopped?: true;
}

/** Rows the sweep deletes per store call (subscriptions, then topics, then sites): bounded work however many are due. */
const SWEEP_BATCH = 1000;

/**
 * Runs a delete of at most SWEEP_BATCH rows until one deletes fewer, or until `stopped()` (the
 * hub closing) before a batch; how many it deleted in all.
 */
async function inBatches(deleteBatch: (limit: number) => Promise<number>, stopped: () => boolean): Promise<number> {
  let total = 0;
  for (;;) {
    // Each pass on a turn of its own: on the embedded store each is one synchronous pass over
    // every subscription, topic or site (~10-30 ms at 100,000), and back to back, with nothing
    // to delete (no write to wait for), the sweep at 100,000 subscriptions held the event loop
    // ~100-150 ms, at every start and every day.
    await yieldToLoop();
    if (stopped()) return total;
    const removed = await deleteBatch(SWEEP_BATCH);
    total += removed;
    if (removed < SWEEP_BATCH) return total;
  }
}

export interface SweeperDeps {
  config: Config;
  store: Store;
  log: Logger;
  now: () => number;
  /** Whether the hub is closing: a sweep or a trim stops between passes, the rest left to the next. */
  closing: () => boolean;
  /** Runs work in the background, waited for by the hub's idle() and logged if it fails. */
  track: (p: Promise<unknown>) => void;
}

export class Sweeper {
  /** Topics this process created since it last trimmed (see topicCreated). */
  private createdSinceTrim = 0;
  private trimming = false;
  /** Topics were created while the running trim counted (see topicCreated). */
  private trimAgain = false;

  constructor(private readonly deps: SweeperDeps) {}

  /**
   * Removes expired and exhausted subscriptions, and topics nobody follows past the retention
   * window. With several processes on one database, one sweeps at a time and the others skip
   * the round: each would find the same rows.
   */
  async removeExpired(): Promise<CleanupReport> {
    const report = await this.deps.store.withSweepLock(() => this.sweep());
    return report ?? { subscriptionsRemoved: 0, topicsRemoved: 0, sitesRemoved: 0, topicsTrimmed: 0, sitesTrimmed: 0, skipped: true };
  }

  private async sweep(): Promise<CleanupReport> {
    const { store, config } = this.deps;
    const now = this.deps.now();
    // Between passes, a hub that is closing stops: what is left is the next start's to delete.
    const stopped = this.deps.closing;
    const subscriptionsRemoved = await inBatches((limit) => store.deleteExpiredSubscriptions({ now, maxConsecutiveErrors: config.maxConsecutiveErrors, limit }), stopped);
    const before = now - config.feedsRetentionDays * 86400_000;
    const topicsRemoved = await inBatches((limit) => store.deleteStaleTopics(before, limit), stopped);
    // A site's page is read again on a ping once SITE_RECHECK_SECONDS have passed, so a site
    // pinged now and then stays; one nobody has pinged for the retention window is forgotten
    // (every new URL pinged as a site would otherwise be kept for ever).
    const unchecked = Math.min(before, now - config.siteRecheckSeconds * 1000);
    const sitesRemoved = await inBatches((limit) => store.deleteStaleSites(unchecked, limit), stopped);
    const trimmed = await this.trimUnfollowed();
    return { subscriptionsRemoved, topicsRemoved, sitesRemoved, ...trimmed, ...(this.deps.closing() && { stopped: true as const }) };
  }

  /**
   * Every URL pinged becomes a topic (a web page also a site), kept FEEDS_RETENTION_DAYS though
   * nobody follows it; unbounded, anyone could fill the store with URLs they serve. So every
   * tenth of MAX_UNFOLLOWED_TOPICS new topics (and at each sweep) the hub forgets what nobody
   * follows beyond that many, least recently read first: such a topic loses only its record of
   * what it held (its next read finds every entry new) and its place in the feed lists.
   */
  topicCreated(): void {
    const cap = this.deps.config.maxUnfollowedTopics;
    if (cap === 0 || ++this.createdSinceTrim < Math.ceil(cap / 10)) return;
    // Topics created while a trim runs may come after its count: it trims once more when it
    // ends, or the bound stayed exceeded until the next topic or sweep.
    if (this.trimming) this.trimAgain = true;
    else this.trim();
  }

  private trim(): void {
    this.createdSinceTrim = 0;
    this.trimming = true;
    this.trimAgain = false;
    // With several processes on one database, one trims (or sweeps) at a time; the others skip.
    const trim = this.deps.store
      .withSweepLock(() => this.trimUnfollowed())
      .finally(() => {
        this.trimming = false;
        if (this.trimAgain) this.trim();
      });
    this.deps.track(trim);
  }

  /**
   * The pending reads older than PENDING_READ_ADOPT_AFTER_MS, oldest first: reads owed to a publish
   * or a ping whose process died before they ended (and, on PostgreSQL, was never started again),
   * or whose read stopped on the hub's own failure (its retries spent, its record kept). Read only
   * at a start before, they waited for the next restart of some process, and with polling off
   * their subscribers never heard of that change; server.ts asks every half of the bound.
   *
   * Why 10 minutes by default: a live process's read of its own record ends well within it. Such a
   * read waits for its host's turn (a burst of WAITING_PER_HOST reads drains at FETCH_PER_HOST per
   * REQUEST_TIMEOUT_MS: ~8 min at the defaults, for a host that never answers), then for the topic
   * lock (DATABASE_LOCK_WAIT_MS), then runs at most REQUEST_TIMEOUT_MS, and a failure on the hub's
   * side is tried again for ~31 s. Past that bound (longer timeouts, a longer line), a record still
   * being read is read a second time: harmless, since reads of a topic are serialized (in a process,
   * and across processes by the topic lock), a read queued and not yet started is shared, and the
   * later one finds the content the earlier stored unchanged and notifies nobody; it costs the
   * feed's host one conditional GET more.
   */
  async orphanedReads(): Promise<PendingRead[]> {
    const before = this.deps.now() - this.deps.config.pendingReadAdoptAfterMs;
    return (await this.deps.store.listPendingReads()).filter((r) => r.since < before);
  }

  private async trimUnfollowed(): Promise<{ topicsTrimmed: number; sitesTrimmed: number }> {
    const { store, config, log } = this.deps;
    const cap = config.maxUnfollowedTopics;
    if (cap === 0) return { topicsTrimmed: 0, sitesTrimmed: 0 };
    await yieldToLoop();
    if (this.deps.closing()) return { topicsTrimmed: 0, sitesTrimmed: 0 };
    const topicsTrimmed = await store.trimUnfollowedTopics(cap);
    await yieldToLoop();
    const sitesTrimmed = this.deps.closing() ? 0 : await store.trimSites(cap);
    if (topicsTrimmed + sitesTrimmed > 0) log.warn('forgot what nobody follows beyond MAX_UNFOLLOWED_TOPICS', { cap, topicsTrimmed, sitesTrimmed });
    return { topicsTrimmed, sitesTrimmed };
  }
}
