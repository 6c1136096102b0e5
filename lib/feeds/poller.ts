// The polling fallback: a topic with subscribers whose publisher never pings is read with
// conditional GETs at an adaptive interval, so its subscribers on every protocol still get
// pushed updates. The interval halves when a poll finds a change and grows by half when it
// does not, within [POLL_MIN_SECONDS, POLL_MAX_SECONDS]; it is never shorter than the
// publisher's Cache-Control max-age, and a Retry-After is honoured up to POLL_MAX_SECONDS; a
// failed read doubles it, a failure of the hub's own (its store) leaves it. A
// ping or publish resets the clock: a publisher that pings makes polling unnecessary.
// Intervals live in memory; after a restart every topic starts again at the default.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { FetchFailed, isReadFailure, type CheckResult } from './checker.js';
import { describeError } from '../notifier/outcome.js';

interface Slot {
  intervalSec: number;
  nextAt: number;
  /** When a poll last looked at the topic, or it was scheduled (see publisherActive). */
  lookedAt: number;
  /** A subscription came while a poll asked whether any is live (see poll). */
  subscribed?: boolean;
}

export interface PollerDeps {
  config: Config;
  store: Store;
  log: Logger;
  /**
   * Reads the topic and fans a change out (the hub's pollRead), unless a read of it ended within
   * `withinMs` of now: then when that was.
   */
  refresh: (url: string, withinMs: number) => Promise<CheckResult | { readAt: number }>;
  /**
   * The schedule's clock: monotonic by default. On the wall clock, a step back (NTP, a VM
   * restored) stopped every poll for as long as the step, and a step forward made all due at once.
   */
  now?: () => number;
}

/**
 * Whether a read stamped `readAt` (wall clock) stands for a poll due now. The store's times are
 * on the wall clock: a read stamped over an interval ahead of it is the clock stepped back
 * since, not a read to count (it would put off every poll of the topic for the whole step).
 */
export function readWithin(readAt: number, intervalMs: number): boolean {
  const since = Date.now() - readAt;
  return since < intervalMs && since > -intervalMs;
}

export class Poller {
  private readonly slots = new Map<string, Slot>();
  private readonly running = new Set<string>();
  private readonly polls = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private tickMs = 0;
  /** The topics due at the last tick, most overdue first, and the next of them to start (see tick). */
  private line: string[] = [];
  private next = 0;
  /** How late the most overdue poll not yet started was at the last tick, in ms (see lagSeconds). */
  private lagMs = 0;
  private readonly now: () => number;

  constructor(private readonly deps: PollerDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  /** Schedules every topic that has subscribers, spread over one default interval. */
  async start(): Promise<void> {
    const { config } = this.deps;
    if (!config.pollEnabled) return;
    // From the subscription counts, not the topics: a topic subscribed over WebSub has no topic
    // record until its first read succeeds, and listing the topics skipped it after a restart
    // for good. One read, too, where the topics (with every unfollowed one) and a count each
    // were thousands of round trips on PostgreSQL.
    for (const { topic } of await this.deps.store.subscribedTopics()) {
      this.slots.set(topic, {
        intervalSec: config.pollDefaultSeconds,
        nextAt: this.now() + Math.random() * config.pollDefaultSeconds * 1000,
        lookedAt: this.now(),
      });
    }
    this.tickMs = Math.min(5000, (config.pollMinSeconds * 1000) / 2);
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Once the polls under way have ended. A stopping hub waits for them before it gives its
   * claims back: a version a late poll staged was claimed by a process already gone, and on
   * PostgreSQL the restart delivered it only once that claim lapsed (OUTBOX_CLAIM_LEASE_MS).
   */
  async settled(): Promise<void> {
    await Promise.all(this.polls);
  }

  /** A topic gained a subscriber: poll it from now on (first poll one interval away). */
  track(url: string): void {
    if (!this.deps.config.pollEnabled) return;
    const slot = this.slots.get(url);
    if (slot) return void (slot.subscribed = true);
    const intervalSec = this.deps.config.pollDefaultSeconds;
    this.slots.set(url, { intervalSec, nextAt: this.now() + intervalSec * 1000, lookedAt: this.now() });
  }

  /**
   * The publisher told us of this topic (ping or publish): push the next poll back, but never
   * past POLL_MAX_SECONDS after the last poll. A poll is what finds that nobody follows the topic
   * any more and forgets it: put off by every ping, a topic pinged more often than its interval
   * stayed here for good once its subscribers left, one entry per such topic ever subscribed.
   * That poll reads nothing when a ping read the topic within its interval (see poll).
   */
  publisherActive(url: string): void {
    const slot = this.slots.get(url);
    if (slot) slot.nextAt = Math.min(this.now() + slot.intervalSec * 1000, slot.lookedAt + this.deps.config.pollMaxSeconds * 1000);
  }

  /**
   * How many topics are polled: the public /stats.json asks on every load, and listing the
   * schedule to count it took 50 ms of the hub's thread at 100,000 topics.
   */
  get size(): number {
    return this.slots.size;
  }

  /**
   * How late the most overdue poll waiting for a turn was at the last tick: near 0 while
   * POLL_CONCURRENCY keeps up, growing when topics come due faster than their reads end.
   */
  get lagSeconds(): number {
    return this.lagMs / 1000;
  }

  /**
   * Lines up the polls that are due, most overdue first, and starts them up to POLL_CONCURRENCY
   * (at most that many at once, so a backlog does not burst at publishers);
   * a poll that ends starts the next in line at once. Started only by ticks, the hub made at
   * most 4 polls a tick (0.8 a second with the default 5 s tick), fewer than 1,000 topics at
   * the default interval need, and the first due topics in the map took every turn, so beyond
   * that the others were never polled. One pass over the topics a tick (3 ms at 100,000), not
   * one per poll.
   */
  tick(): void {
    if (this.timer === undefined) return;
    const now = this.now();
    const due: { url: string; at: number }[] = [];
    for (const [url, slot] of this.slots) if (slot.nextAt <= now && !this.running.has(url)) due.push({ url, at: slot.nextAt });
    this.line = due.sort((a, b) => a.at - b.at).map((d) => d.url);
    this.next = 0;
    this.startInLine();
    // After the starts: a due topic that gets a turn at once is not late.
    const waiting = due[this.next];
    this.lagMs = waiting ? now - waiting.at : 0;
  }

  private startInLine(): void {
    while (this.timer !== undefined && this.running.size < this.deps.config.pollConcurrency && this.next < this.line.length) {
      const url = this.line[this.next++]!;
      const slot = this.slots.get(url);
      // Gone since the tick (nobody follows it), or put off (a ping), or already started.
      if (!slot || slot.nextAt > this.now() || this.running.has(url)) continue;
      this.running.add(url);
      const poll = this.poll(url, slot).finally(() => {
        this.running.delete(url);
        this.polls.delete(poll);
        this.startInLine();
      });
      this.polls.add(poll);
    }
  }

  private async poll(url: string, slot: Slot): Promise<void> {
    const { config, store, log } = this.deps;
    const clamp = (sec: number): number => Math.min(config.pollMaxSeconds, Math.max(config.pollMinSeconds, sec));
    // Everything in the try: a store error rejecting this (unawaited) poll would end the process.
    try {
      slot.lookedAt = this.now();
      slot.subscribed = false;
      // Live ones only: a topic whose subscriptions have all ended (a lease not renewed, the
      // usual end of one) was read for nobody until the daily sweep deleted them.
      if (!(await store.hasLiveSubscription(url, { now: Date.now(), maxConsecutiveErrors: config.maxConsecutiveErrors }))) {
        // Unless a subscription came while this asked: its track() found the slot still here
        // and added none, and the topic was never polled again (until a restart).
        if (!slot.subscribed) this.slots.delete(url);
        else slot.nextAt = this.now() + slot.intervalSec * 1000;
        return;
      }
      // A read since the last one this process knows of (another hub process's poll on the
      // database: each polled every topic, N processes reading each publisher N times an
      // interval) stands for this poll. The next is an interval after that read and two ticks
      // more, after that process's next poll: the one that polls goes on, the others find its
      // reads.
      const intervalMs = slot.intervalSec * 1000;
      const readElsewhere = (readAt: number): void => {
        slot.nextAt = this.now() + Math.min(intervalMs, intervalMs - (Date.now() - readAt)) + 2 * this.tickMs;
      };
      const readAt = (await store.getTopic(url))?.whenLastCheck;
      if (readAt !== undefined && readWithin(readAt, intervalMs)) return readElsewhere(readAt);
      // Asked again under the topic lock: another process may have looked at the same moment.
      const result = await this.deps.refresh(url, intervalMs);
      if (!('changed' in result)) return readElsewhere(result.readAt);
      slot.intervalSec = clamp(result.changed ? slot.intervalSec / 2 : slot.intervalSec * 1.5);
      if (result.maxAgeSeconds !== undefined) slot.intervalSec = clamp(Math.max(slot.intervalSec, result.maxAgeSeconds));
      slot.nextAt = this.now() + slot.intervalSec * 1000;
      log.debug('poll', { topic: url, changed: result.changed, intervalSec: slot.intervalSec });
    } catch (e) {
      if (!isReadFailure(e)) {
        // The hub's own failure (its store unreachable or full), not the publisher's: the next
        // poll is one interval away as usual. Backing off doubled every topic's interval for each
        // poll in an outage, so after an hour without the database most topics were not read
        // again for hours.
        slot.nextAt = this.now() + slot.intervalSec * 1000;
        log.warn('poll not done: the hub failed', { topic: url, error: describeError(e), nextInSec: slot.intervalSec });
        return;
      }
      slot.intervalSec = clamp(slot.intervalSec * 2);
      // A Retry-After is honoured up to POLL_MAX_SECONDS, the longest the hub goes without
      // reading a followed topic: one of a year (or a typo) stopped its polls until a restart.
      const wait = Math.max(slot.intervalSec, Math.min(config.pollMaxSeconds, e instanceof FetchFailed ? (e.retryAfterSeconds ?? 0) : 0));
      slot.nextAt = this.now() + wait * 1000;
      log.info('poll failed', { topic: url, error: describeError(e), nextInSec: wait });
    }
  }
}
