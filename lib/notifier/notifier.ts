// The notifier owns every outbound delivery, whatever the protocol: one outbox, one place
// where outcomes update a subscription, one retry policy, per-host limits and a circuit
// breaker per host.
//
// Durability: a content version goes into the store's outbox (body included) before any
// delivery of it is attempted, and a subscription's `deliveredVersion` records what it has
// been handled for. A hub killed mid-fan-out finds the outbox on restart and resumes with
// the subscriptions still behind; nobody is sent a version twice in a normal run. What waits
// is bounded in bytes (OUTBOX_MAX_BYTES, see outbox-budget.ts): past it, versions are given up.
//
// Order: each subscription has a lane that handles versions oldest first, so a WebSub
// subscriber that was down and comes back receives what it missed in order.
//
// rssCloud keeps its own rule (consecutive errors, no retries: the next change is the
// retry); WebSub retries with exponential backoff and jitter, bounded in count and never
// past the lease, and the subscription stays until its lease ends (REC §7).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Config } from '../config.js';
import type { BodyThread } from '../body-thread.js';
import type { HttpClient } from '../http.js';
import type { Logger } from '../log.js';
import { callbackHost, outboxEntryKey, subscriptionKey, type OutboxEntry, type OutboxKey, type Protocol, type Subscription } from '../model.js';
import type { Store } from '../store/store.js';
import { UNEXPECTED_RETRIES, backoff, longestBackoff, retryWindow, unexpectedRetryDelayMs } from '../backoff.js';
import { CircuitBreaker } from './breaker.js';
import { OutboxClaims } from './claims.js';
import { HostLimiter } from './host-limiter.js';
import { firstPassEnded, letGo, useBare, useContent } from './job-content.js';
import { counted, firstPass, Jobs, type Job } from './jobs.js';
import { Limiter } from './limiter.js';
import { RssCloudPostSender } from './rsscloud-post.js';
import { RssCloudXmlRpcSender } from './rsscloud-xmlrpc.js';
import { describeError } from './outcome.js';
import { withinBudget } from './outbox-budget.js';
import { OutcomeBatch } from './outcome-batch.js';
import type { Content, DeliveryOutcome, Sender } from './sender.js';
import { WebSubContentSender } from './websub-content.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface NotifierDeps {
  config: Config;
  http: HttpClient;
  store: Store;
  log: Logger;
  now?: () => number;
  /** This process's name on outbox claims; random per start unless given. */
  owner?: string;
  /** The first wait after a delivery's unexpected failure (see unexpectedRetryDelayMs); tests shorten it. */
  unexpectedRetryBaseMs?: number;
  /** Where WebSub deliveries are signed; without one, on the main thread. */
  bodies?: BodyThread;
}

export interface FanOutReport {
  attempted: number;
  delivered: number;
  failed: number;
}

/**
 * Emitted as 'delivery' after every attempt, for metrics and the operator's live log. A type
 * rather than an interface: it is LogFields as it stands, so it is logged without a copy.
 */
export type DeliveryEvent = {
  topic: string;
  version: number;
  protocol: Protocol;
  host: string;
  attempt: number;
  ok: boolean;
  status?: number;
  error?: string;
  durationMs: number;
  /** From the content version's creation to this attempt's end. */
  latencyMs: number;
};

interface Lane {
  topic: string;
  callback: string;
  /** The callback parsed once for all its deliveries (undefined if it does not parse: the send says why). */
  target: URL | undefined;
  /** Its host:port, the key of the per-host limit and circuit breaker. */
  host: string;
  versions: number[];
  /** Versions whose first attempt is still to be counted (see settleFirst). */
  unsettled: number[];
  running: boolean;
  /** The version whose retry, or whose host's pause, the lane is sleeping out (see waitBehind). */
  sleepingOn: number | undefined;
  /** Its WebSub request in flight has gone unanswered past REQUEST_TIMEOUT_MS (see countSlow). */
  slow: boolean;
  /**
   * The lane waited for its paused host, or rested after its subscriber's 429, and has sent
   * nothing since (see the rssCloud coalescing in takeTurn).
   */
  behindPause: boolean;
  /** Its subscriber answered 429 to a version it is done with: nothing more is sent to it before this time (see rest). */
  restUntil: number;
  /**
   * Per version queued, how long the lane rested after a 429 while it waited (see rest): time the
   * subscriber asked for, which does not count against the version's retry window. Made at the
   * lane's first rest: a fan-out makes a lane per subscriber, and almost none ever rests.
   */
  rested: Map<number, number> | undefined;
  /** The lane's last versions answered 429 in a row: its rests without Retry-After grow with them (see restAfter429). */
  refusals: number;
}

/**
 * One turn at a host's slot: nothing to send (the subscription is gone or has the version, or
 * the body is missing), paused by the breaker, or a request made and its outcome recorded.
 */
type Attempt =
  | { closing: true }
  | { behind: true }
  | { skipped: DeliveryOutcome }
  | { pausedUntil: number; sub: Subscription }
  | { fenced: Job }
  | { sub: Subscription; content: Content; outcome: DeliveryOutcome; final: boolean; delay: number; started: number; place: Limiter };

/** A timed wait: `host`, the host it waits for; `retrying`, the outbox entry (its key) whose next attempt it waits for. */
interface Sleeper {
  timer: NodeJS.Timeout;
  wake: () => void;
  host?: string;
  retrying?: string;
}

const SKIPPED: DeliveryOutcome = { ok: false, error: 'skipped: the subscription is gone, inactive or already has this version' };
const CONTENT_UNAVAILABLE: DeliveryOutcome = { ok: false, error: 'content unavailable' };
const GIVEN_UP: DeliveryOutcome = { ok: false, error: 'given up: the outbox was over OUTBOX_MAX_BYTES' };
const BEHIND_RETRIES: DeliveryOutcome = { ok: false, error: 'waiting behind an earlier version that is being retried' };
const STILL_WAITING: DeliveryOutcome = { ok: false, error: 'no answer within REQUEST_TIMEOUT_MS yet (waiting up to WEBSUB_TIMEOUT_MS)' };
const SUPERSEDED: DeliveryOutcome = { ok: false, error: 'superseded: a later version of the topic is queued for this subscriber' };
const LOST: DeliveryOutcome = { ok: false, error: 'another process took this version over (its claim lapsed here): it delivers it' };

export class Notifier extends EventEmitter {
  private readonly limiter: HostLimiter;
  /** The rssCloud handler tests' own slots (see send). */
  private readonly handlerTests: HostLimiter;
  private readonly breaker: CircuitBreaker;
  private readonly senders: Record<Protocol, Sender>;
  private readonly outcomes: OutcomeBatch;
  /** Deliveries sent whose outcome is not yet durable (see takeTurn). */
  private readonly unrecorded: Limiter;
  /**
   * Deliveries unanswered past DELIVERY_LINGER_AFTER_MS that gave their global slot back (see
   * linger), each holding a place here instead of `unrecorded`'s until its outcome is durable.
   */
  private readonly lingering: Limiter;
  private readonly jobs = new Jobs();
  private readonly lanes = new Map<string, Lane>();
  /** Timed waits (see sleep), woken early by wakeSleepers. */
  private readonly sleepers = new Set<Sleeper>();
  private readonly now: () => number;
  private closed = false;
  /** Waiting in drained() for the last lane to stop. */
  private drainWaiters: (() => void)[] = [];
  /** Who this process is on outbox claims (see startClaims). */
  readonly owner: string;
  private readonly claims: OutboxClaims;
  /** How long a version waits for a paused host, from its publication (see deliverVersion). */
  private readonly retryWindowMs: number;
  /** Per topic, its outbox entries as last read, briefly (see waitForEarlier). */
  private readonly outboxSeen = new Map<string, { at: number; entries: Promise<OutboxEntry[]>; read?: OutboxEntry[] }>();

  constructor(private readonly deps: NotifierDeps) {
    super();
    const { config } = deps;
    this.now = deps.now ?? Date.now;
    this.owner = deps.owner ?? randomUUID();
    this.claims = new OutboxClaims({ store: deps.store, log: deps.log, jobs: this.jobs, owner: this.owner, leaseMs: config.outboxClaimLeaseMs, onLost: (key) => this.wakeRetriesOf(key) });
    this.retryWindowMs = retryWindow(config.websubMaxAttempts, config.websubRetryBaseMs, config.websubRetryMaxMs);
    this.limiter = new HostLimiter(config.deliveryConcurrency, config.deliveryPerHost);
    this.handlerTests = new HostLimiter(config.deliveryConcurrency, config.deliveryPerHost);
    this.breaker = new CircuitBreaker({
      failureThreshold: config.breakerFailures,
      baseCooldownMs: config.breakerCooldownMs,
      maxCooldownMs: config.breakerMaxCooldownMs,
      now: this.now,
    });
    this.outcomes = new OutcomeBatch(deps.store);
    this.unrecorded = new Limiter(config.deliveryConcurrency * UNRECORDED_PER_SLOT);
    this.lingering = new Limiter(config.deliveryLingering);
    const post = new RssCloudPostSender(deps.http);
    this.senders = {
      'http-post': post,
      'https-post': post,
      'xml-rpc': new RssCloudXmlRpcSender(deps.http),
      websub: new WebSubContentSender(deps.http, config.publicUrl, config.websubSignatureAlgorithm, config.websubTimeoutMs, deps.bodies),
    };
  }

  /** Whether a subscription should hear of a change now. */
  isActive(sub: Subscription): boolean {
    if (sub.whenExpires <= this.now()) return false;
    // rssCloud gives up on a subscriber after too many failures in a row; WebSub keeps the
    // subscription until its lease ends and bounds retries per notification instead.
    return sub.protocol === 'websub' || sub.ctConsecutiveErrors < this.deps.config.maxConsecutiveErrors;
  }

  /**
   * Makes a version durable in the outbox, then runs `afterDurable` (the hub records the
   * topic's new version there, so no version is ever recorded without its outbox entry), and
   * returns the function that queues its deliveries; that one resolves once each subscription
   * has had its first attempt (each counted after REQUEST_TIMEOUT_MS at most; WebSub retries
   * go on after). The hub stages one version of a topic at a time and starts it
   * before reading the next, so lanes always receive a topic's versions in order.
   */
  async stage(content: Content, afterDurable: () => Promise<void>): Promise<() => Promise<FanOutReport>> {
    // Written already claimed by this process, which delivers it; others take it over only
    // if this process stops renewing the claim (it died).
    const entry: OutboxEntry = {
      topic: content.topic,
      version: content.version,
      contentType: content.contentType,
      createdAt: this.now(),
      claimedBy: this.owner,
      // The stores compare claims with the wall clock, whatever clock this notifier was given.
      claimedUntil: Date.now() + this.deps.config.outboxClaimLeaseMs,
    };
    const subs = (await this.deps.store.subscriptionsOf(content.topic)).filter((s) => this.due(s, content.version));
    let staged: Promise<OutboxEntry[]> | undefined;
    if (subs.length > 0) {
      await this.deps.store.putOutbox(entry, content.body);
      // Read now, so that the lanes' ordering check (noneEarlier) is answered without a wait.
      staged = this.outboxOf(content.topic, true);
    }
    await afterDurable();
    return () => {
      if (subs.length === 0) return Promise.resolve({ attempted: 0, delivered: 0, failed: 0 });
      // Counted, not a promise per subscription: a fan-out to 10,000 made 10,000 of them.
      return new Promise<FanOutReport>((done) => {
        const first = firstPass(subs.length, done);
        const job: Job = { entry, claim: this.claims.claimUntil(entry.claimedUntil!), content, users: 0, remaining: new Set(), queueing: true, first, bytes: content.body.length };
        this.jobs.set(job);
        withinBudget(this.jobs, job, this.deps);
        // Versions are assigned under the topic lock after the older ones are in the outbox, so
        // the read made at staging shows every older version there will ever be: if each is this
        // process's own (ordered by its lanes), no delivery of this version needs to ask again.
        staged?.then((entries) => {
          job.noEarlier = entries.every((e) => e.version >= entry.version || this.jobs.holds(e.topic, e.version));
        }, noop);
        // In chunks, a turn of the event loop apart: the first deliveries of a fan-out to
        // 100,000 go out while the rest are still being queued, not a second later, and the
        // hub answers other requests meanwhile (its keys made at once held it ~70 ms).
        const enqueueFrom = (from: number): void => {
          const end = Math.min(subs.length, from + ENQUEUE_CHUNK);
          this.queueChunk(job, subs, from, end);
          if (end < subs.length) setImmediate(() => enqueueFrom(end));
        };
        enqueueFrom(0);
      });
    };
  }

  /** After a restart: resumes every fan-out the outbox says is unfinished. Returns how many deliveries. */
  async resume(): Promise<number> {
    this.claims.startRenewals();
    // Claims every entry nobody holds: on the embedded store all of them (claims are void
    // when it opens); with other processes on one database, what they are not delivering.
    const { entries, heldUntil } = await this.claims.claimFree(RESUME_ALL);
    return this.resumeEntries(entries, heldUntil);
  }

  /**
   * With several processes on one database: renews this process's claims and takes over entries
   * whose claim expired (their process died), resuming them as resume() does (see
   * OutboxClaims.start). Started by server.ts; stopped by close().
   */
  startClaims(): void {
    this.claims.start((claimed, heldUntil) => this.resumeEntries(claimed, heldUntil));
  }

  /** Queues claimed entries for every subscription still behind them; entries with nobody due go. */
  private async resumeEntries(claimed: OutboxEntry[], heldUntil: number): Promise<number> {
    const entries = this.claims.adopt(claimed, heldUntil);
    let resumed = 0;
    try {
      for (const { entry, claim } of entries) {
        // A hub killed between writing a version's outbox entry and recording it on the topic
        // comes back with the topic one version behind; catch it up so that number is not given
        // to different content. (The next read then sees the bytes as new: at least once, never lost.)
        const topic = await this.deps.store.getTopic(entry.topic);
        if (topic && topic.version < entry.version) await this.deps.store.putTopic({ ...topic, version: entry.version });
        const subs = (await this.deps.store.subscriptionsOf(entry.topic)).filter((s) => this.due(s, entry.version));
        // Taken over by another process while this one read it (see OutboxClaims.renewed): the
        // entry is its own.
        if (claim.lost) continue;
        if (subs.length === 0) {
          await this.deps.store.deleteOutbox(entry.topic, entry.version);
          continue;
        }
        // Its size counts against OUTBOX_MAX_BYTES from now, not once its lane reaches it. (Missing,
        // it is skipped when its turn comes, with the error logged.)
        const bytes = (await this.deps.store.outboxBodySize(entry.topic, entry.version)) ?? 0;
        if (claim.lost) continue;
        const first = firstPass(subs.length, noop);
        const job: Job = { entry, claim, users: 0, remaining: new Set(), queueing: true, first, bytes };
        // Its own job lost to another process (see OutboxClaims.lose) and claimed back before each
        // of its lanes had dropped it: the new job takes its place, and those lanes count their
        // first attempts into the new one from now on (settleFirst looks the version up). The lost
        // one's first pass ends here, those still owed counted as not delivered: left open, the
        // ping or publish waiting on its report never got one, and shutdown (hub.idle()) waited
        // for it forever.
        const lost = this.jobs.get(entry.topic, entry.version);
        if (lost?.claim.lost && lost.first.pending > 0) {
          lost.first.pending = 0;
          lost.first.done({ attempted: lost.first.attempted, delivered: lost.first.delivered, failed: lost.first.attempted - lost.first.delivered });
        }
        this.jobs.set(job);
        this.claims.resumed(entry);
        withinBudget(this.jobs, job, this.deps);
        // In chunks, a turn of the event loop apart, as stage() queues a fan-out: all at once, a
        // restart with a fan-out to 100,000 unfinished answered nothing (not even /healthz) for
        // over two seconds while every lane was made and started.
        for (let from = 0; from < subs.length; from += ENQUEUE_CHUNK) {
          if (from > 0) await yieldToLoop();
          // Closed meanwhile: the rest stay owed in the outbox entry, for the next start.
          if (this.closed) return resumed;
          this.queueChunk(job, subs, from, Math.min(subs.length, from + ENQUEUE_CHUNK));
        }
        resumed += subs.length;
      }
    } finally {
      for (const { entry } of entries) this.claims.resumed(entry);
    }
    if (resumed > 0) this.deps.log.info('resuming unfinished deliveries', { deliveries: resumed, versions: entries.length });
    return resumed;
  }

  /**
   * One attempt with no retry and no bookkeeping: the rssCloud handler test. Under limits of the
   * same size as deliveries' but slots of its own: a pleaseNotify waits for it, and queued with
   * the deliveries, behind a fan-out to thousands of callbacks on its host (a popular feed
   * followed by the readers of one service), it was answered a minute or more after its caller
   * had given up. A host can so get DELIVERY_PER_HOST handler tests besides its deliveries.
   */
  send(sub: Subscription, content: Content): Promise<DeliveryOutcome> {
    return this.handlerTests.run(callbackHost(sub.callback), () => this.senders[sub.protocol].deliver(sub, content));
  }

  get queueDepth(): number {
    return this.limiter.pending;
  }

  /** Bytes of content versions this process holds for delivery (bounded by OUTBOX_MAX_BYTES). */
  get outboxBytes(): number {
    return this.jobs.bytes;
  }

  pausedHosts(): ReturnType<CircuitBreaker['paused']> {
    return this.breaker.paused();
  }

  /**
   * An operator says a paused host is back (or, without one, every host: the test API's clear):
   * close its circuit and wake what waits for it: deliveries waiting for its pause or for their
   * next attempt (a Retry-After's included), and lanes resting after a 429. Left asleep, these
   * went on waiting up to WEBSUB_RETRY_MAX_MS (an hour) after the operator asked for a retry.
   */
  retryHostNow(host?: string): number {
    if (host === undefined) this.breaker.forgetAll();
    else this.breaker.success(host);
    return this.wakeSleepers((s) => s.host !== undefined && (host === undefined || s.host === host));
  }

  /**
   * A version lost to another process (see OutboxClaims.lose): the lanes sleeping out its next
   * attempt (a retry's backoff, its host's pause) wake now, drop it, and go on to their later
   * versions. Left asleep, a lane held its subscriber's later versions for the rest of the
   * backoff (minutes, up to WEBSUB_RETRY_MAX_MS) while the new owner had the lost one delivered.
   */
  private wakeRetriesOf({ topic, version }: OutboxKey): void {
    const key = outboxEntryKey(topic, version);
    this.wakeSleepers((s) => s.retrying === key);
  }

  /** Ends the timed waits that `match` picks now, as if their time had come; returns how many. */
  private wakeSleepers(match: (s: Sleeper) => boolean): number {
    let woken = 0;
    for (const s of this.sleepers) {
      if (!match(s)) continue;
      clearTimeout(s.timer);
      this.sleepers.delete(s);
      s.wake();
      woken++;
    }
    return woken;
  }

  /** Stops retries and lanes; what is unfinished stays in the outbox for the next start. */
  close(): void {
    this.closed = true;
    this.wakeSleepers(() => true);
    this.claims.close();
  }

  /**
   * After close(): resolves once every lane has stopped. A lane stops after its attempt in
   * flight, whose outcome it waits to be durable, so what this process delivered is recorded.
   */
  drained(): Promise<void> {
    if (this.lanes.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private due(sub: Subscription, version: number): boolean {
    return this.isActive(sub) && (sub.deliveredVersion ?? 0) < version;
  }

  /** `key` is keyOf(sub), made once by the caller, which needs it too. */
  private enqueue(sub: Subscription, key: string, version: number): void {
    let lane = this.lanes.get(key);
    if (!lane) {
      const target = parseCallback(this.senders[sub.protocol].address?.(sub) ?? sub.callback);
      lane = { topic: sub.topic, callback: sub.callback, target, host: callbackHost(sub.callback), versions: [], unsettled: [], running: false, sleepingOn: undefined, slow: false, behindPause: false, restUntil: 0, rested: undefined, refusals: 0 };
      this.lanes.set(key, lane);
    }
    if (!lane.unsettled.includes(version)) lane.unsettled.push(version);
    if (lane.sleepingOn !== undefined) this.settleBehind(lane, lane.sleepingOn);
    else if (lane.slow) this.settleBehind(lane);
    if (!lane.versions.includes(version)) {
      lane.versions.push(version);
      lane.versions.sort((a, b) => a - b);
    }
    // A lane waiting for its paused host owes an rssCloud subscriber only its newest version
    // (see the coalescing in takeTurn): those queued between the one it sleeps on and this
    // one go now, with their outbox entries and bodies, rather than when the host is back. A dead
    // host with one callback for thousands of feeds would otherwise hold every version of each.
    const asleep = lane.sleepingOn;
    if (asleep !== undefined && lane.behindPause && sub.protocol !== 'websub') {
      for (const v of lane.versions.filter((v) => v < version && v !== asleep)) {
        lane.versions.splice(lane.versions.indexOf(v), 1);
        lane.rested?.delete(v);
        this.settleFirst(lane, v, SUPERSEDED);
        void this.handled(key, lane.topic, v);
      }
    }
    if (lane.running) return;
    // The lane starts once it holds a slot of its host; until then it is this callback in the
    // host's queue (see HostLimiter.enter).
    lane.running = true;
    const entered = lane;
    this.limiter.enter(lane.host, () => void this.runLane(key, entered));
  }

  /** Runs a lane's versions in order; called holding a slot of the lane's host, which its first delivery uses. */
  private async runLane(key: string, lane: Lane): Promise<void> {
    let held = true;
    /** Unexpected failures in a row of the version at the lane's head. */
    let failing = { version: 0, count: 0 };
    try {
      while (lane.versions.length > 0 && !this.closed) {
        const version = lane.versions[0] ?? 0;
        const slot = held;
        held = false;
        try {
          // Stopped by close(): the version stays unhandled here (settled below as the hub
          // shutting down) and its outbox entry stays, for the restart or another process.
          const handled = await this.deliverVersion(lane, version, slot);
          if (handled === 'stopped') break;
          // An older version was queued meanwhile: it goes first, this one stays queued behind it.
          if (handled === 'behind') continue;
        } catch (e) {
          this.settleFirst(lane, version, { ok: false, error: 'internal error' });
          failing = failing.version === version ? { version, count: failing.count + 1 } : { version, count: 1 };
          // Usually the store failing for now (a database connection cut, a failover): the
          // version is tried again, later each time (1 s … 16 s), rather than marked handled,
          // which lost it for this subscriber for good. Given up only if it keeps failing.
          if (failing.count <= UNEXPECTED_RETRIES && !this.closed) {
            this.deps.log.warn('delivery failed unexpectedly; trying again', { topic: lane.topic, version, error: describeError(e) });
            await this.sleep(unexpectedRetryDelayMs(failing.count, this.deps.unexpectedRetryBaseMs));
            continue;
          }
          // The entry stays in the outbox (within the retry window): its claim lapses and it is
          // resumed for this subscription, as after a restart. Removed once the other lanes were
          // done, it was lost here whenever they outlasted the failure: a database down for
          // about as long as these retries, with one subscriber's answer slower than another's.
          const job = this.jobs.get(lane.topic, version);
          const later = job !== undefined && (this.closed || this.now() < job.entry.createdAt + this.retryWindowMs);
          if (later) job.resumeLater = true;
          this.deps.log.error(later ? 'delivery failed unexpectedly; version left in the outbox to be resumed' : 'delivery failed unexpectedly; version given up for this subscription', {
            topic: lane.topic,
            version,
            error: describeError(e),
          });
        }
        // By value: an older version queued meanwhile sorts first.
        const at = lane.versions.indexOf(version);
        if (at !== -1) lane.versions.splice(at, 1);
        lane.rested?.delete(version);
        const emptied = this.handled(key, lane.topic, version);
        if (emptied) await emptied;
        if (lane.restUntil > this.now() && !this.closed) await this.rest(lane, version);
      }
    } finally {
      if (held) this.limiter.leave(lane.host);
      lane.running = false;
      for (const v of lane.versions) this.settleFirst(lane, v, { ok: false, error: 'the hub is shutting down' });
      if (this.lanes.get(key) === lane) this.lanes.delete(key);
      if (this.lanes.size === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
  }

  /**
   * Delivers one version to one subscription, retrying as its protocol allows. `held`: the
   * caller holds a slot of the lane's host for the first attempt, and hands it over; it is
   * given back whatever happens. Resolves 'done' when the version is done with for this
   * subscription (delivered, given up on, or not due), 'stopped' when close() stopped it first,
   * 'behind' when an older version joined the lane while this one waited for it (see below).
   */
  private async deliverVersion(lane: Lane, version: number, held: boolean): Promise<'done' | 'stopped' | 'behind'> {
    const { store, config } = this.deps;
    const host = lane.host;
    let ordered = false;
    /**
     * How much longer than the backoffs the subscriber's Retry-Afters made this version wait, with
     * the lane's rests after a 429 while it was queued.
     */
    let asked = lane.rested?.get(version) ?? 0;
    try {
      for (let attempt = 1; !this.closed; ) {
        if (!ordered) {
          ordered = true;
          // Usually answered at once from the outbox read at staging; otherwise read the
          // subscription, and after waiting for another process's older version, start over
          // (without holding a slot of the host meanwhile).
          if (!this.noneEarlier(lane.topic, version)) {
            if (held) {
              held = false;
              this.limiter.leave(host);
            }
            const sub = await store.getSubscription(lane.topic, lane.callback);
            if (!sub || !this.due(sub, version)) return this.settled(lane, version, SKIPPED);
            if (await this.waitForEarlier(lane, sub, version)) continue;
          }
        }
        const turn = (giveBack: () => void): Promise<Attempt> => this.takeTurn(lane, version, attempt, giveBack);
        const turnTaken = held ? this.limiter.runHeld(host, turn) : this.limiter.run(host, turn);
        held = false;
        const tried = await turnTaken;
        if ('closing' in tried) return 'stopped';
        if ('behind' in tried) return 'behind';
        if ('skipped' in tried) {
          if (tried.skipped === CONTENT_UNAVAILABLE) this.deps.log.error('outbox body missing; version skipped', { topic: lane.topic, version });
          return this.settled(lane, version, tried.skipped);
        }
        if ('fenced' in tried) {
          // Its lease here passed before the send (held up past OUTBOX_CLAIM_LEASE_MS, or renewals
          // failing): sent, it might go out alongside another process that took the version over.
          // Wait for a renewal's word, holding no slot: renewed, this attempt goes on; not, the
          // version is the other's, and nothing is recorded here for this subscriber.
          if (await this.claims.confirmed(tried.fenced)) continue;
          return this.settled(lane, version, LOST);
        }
        if ('pausedUntil' in tried) {
          const { sub } = tried;
          if (this.jobs.givenUp(lane.topic, version)) return this.settled(lane, version, GIVEN_UP);
          // Not recorded as failed here: the process that took it over sends it once the host is back.
          if (this.jobs.get(lane.topic, version)?.claim.lost) return this.settled(lane, version, LOST);
          const paused: DeliveryOutcome = { ok: false, error: `${host} is paused after repeated failures` };
          // A version waits for its paused host, and is then sent, only within the time a WebSub
          // version's attempts could take from when it was published; past that it is given up
          // and counted as failed, as if they had run out (the host failed every probe meanwhile).
          // Waiting longer, a dead subscriber's lane let one version go per cooldown ×
          // WEBSUB_MAX_ATTEMPTS, and every later version of the topic stayed in the outbox, body
          // and all, until its lease ended. rssCloud, which has no retries, waits too: counting
          // a failure for a request never made killed the subscriptions of a host that had come
          // back, after a pause as short as one cooldown (MAX_CONSECUTIVE_ERRORS pings).
          const createdAt = this.jobs.get(lane.topic, version)?.entry.createdAt;
          // The window grows by what the subscriber asked for beyond the backoffs, and by the
          // lane's rests after its 429s while this version waited: the waits its Retry-After put
          // past it were no time spent on a paused host. Counted, a version that had waited one
          // out (up to WEBSUB_RETRY_MAX_MS, an hour) was given up at the first pause, even the
          // second a probe of the host takes, with attempts left.
          if (createdAt !== undefined && tried.pausedUntil > createdAt + this.retryWindowMs + asked) {
            await this.record(sub, version, paused, true);
            return this.settled(lane, version, paused);
          }
          this.settleFirst(lane, version, paused);
          lane.behindPause = true;
          await this.waitBehind(lane, version, this.sleep(tried.pausedUntil - this.now(), host, outboxEntryKey(lane.topic, version)));
          continue;
        }
        const { sub, content, outcome, final, delay, started, place } = tried;
        try {
          await this.record(sub, version, outcome, final);
        } finally {
          place.release();
        }
        this.emitDelivery(sub, host, content, attempt, outcome, started);
        this.settleFirst(lane, version, outcome);
        if (final) {
          lane.refusals = outcome.status === 429 ? lane.refusals + 1 : 0;
          if (outcome.status === 429) lane.restUntil = this.now() + this.restAfter429(outcome, sub.protocol === 'websub' ? attempt : lane.refusals);
          return 'done';
        }
        // Woken early by the operator's retry of the host (see retryHostNow), as a pause is.
        const from = this.now();
        await this.waitBehind(lane, version, this.sleep(delay, host, outboxEntryKey(lane.topic, version)));
        // Only what it waited of the delay: counted whole, a Retry-After of an hour the operator
        // cut short kept the version waiting for its host an hour past its window.
        asked += Math.max(0, Math.min(delay, this.now() - from) - longestBackoff(attempt, config.websubRetryBaseMs, config.websubRetryMaxMs));
        attempt++;
      }
      return 'stopped';
    } finally {
      // Not handed over: the hub is closing, or something failed before the first attempt.
      if (held) this.limiter.leave(host);
    }
  }

  /**
   * One attempt of `version` on `lane`, in a turn at its host's slot; `giveBack` gives the slot
   * back early (see linger).
   *
   * The host slot comes first and everything else is read holding it: a fan-out queues
   * thousands of lanes, and each waits as one small closure rather than with its
   * subscription and content read long before its turn. The breaker is asked only once
   * this delivery holds its slot, so deliveries queued behind a failing host do not go out
   * after its circuit opened. Outcomes are recorded in batches after the slot is given
   * back, but each send first takes one of `unrecorded`'s places and keeps it until its
   * outcome is durable: at most UNRECORDED_PER_SLOT × DELIVERY_CONCURRENCY deliveries are
   * ever sent and not yet durable (what a kill can make subscribers receive twice), and a
   * store that falls behind holds the slots back; and DELIVERY_LINGERING more that linger.
   */
  private async takeTurn(lane: Lane, version: number, attempt: number, giveBack: () => void): Promise<Attempt> {
    const { store, config } = this.deps;
    const host = lane.host;
    // A turn queued for the host's slot when the hub began closing sends nothing.
    if (this.closed) return { closing: true };
    // An older version joined the lane while this one waited (for it, for the slot, for a
    // read): a resume after a restart, or a takeover from a process that died, queues it
    // here as it makes it this process's. It goes first; sent after this one, it would be
    // skipped as not due once this one is recorded, and lost.
    if (lane.versions.some((v) => v < version)) return { behind: true };
    // Taken over by another process (see OutboxClaims.lose): dropped without a read of the
    // subscription, as each of the thousands of lanes of a fan-out does.
    if (this.jobs.get(lane.topic, version)?.claim.lost) return { skipped: LOST };
    const sub = await store.getSubscription(lane.topic, lane.callback);
    if (!sub || !this.due(sub, version)) return { skipped: SKIPPED };
    // An rssCloud notification says only "this URL changed", the same words for every
    // version: when changes piled up while the host was paused, the last one says it for
    // all, rather than a burst of the same words once the host is back.
    if (lane.behindPause && sub.protocol !== 'websub' && lane.versions.some((v) => v > version)) return { skipped: SUPERSEDED };
    const job = this.jobs.get(lane.topic, version);
    // Without a promise when the body is held: every delivery of a fan-out's first pass asks.
    const using = job && (sub.protocol === 'websub' ? useContent(job, this.deps.store) : useBare(job));
    const content = using instanceof Promise ? await using : using;
    if (!job || !content) return { skipped: job?.claim.lost ? LOST : this.jobs.givenUp(lane.topic, version) ? GIVEN_UP : CONTENT_UNAVAILABLE };
    let outcome: DeliveryOutcome;
    let started: number;
    let place = this.unrecorded;
    try {
      const pausedUntil = this.breaker.waitUntil(host);
      if (pausedUntil > 0) return { pausedUntil, sub };
      const free = this.unrecorded.acquire();
      if (free) await free;
      // That wait is longest when the store falls behind, as under the flood that fills the outbox.
      if (this.jobs.givenUp(lane.topic, version)) {
        this.unrecorded.release();
        this.breaker.probeNotSent(host);
        return { skipped: GIVEN_UP };
      }
      // The fence, last before the send with nothing awaited between: no delivery starts once
      // this process can no longer be sure it holds the version's claim. Another process takes a
      // claim over only once its lease, counted from a moment no earlier than heldUntil's, has
      // passed, so what this process sends after it was taken over is only what it had started
      // before (bounded by `unrecorded` and `lingering`, as for a kill). One comparison per
      // send: the renewals, every lease/3, move heldUntil on (see OutboxClaims.startRenewals).
      if (job.claim.lost || job.claim.heldUntil <= Date.now()) {
        this.unrecorded.release();
        this.breaker.probeNotSent(host);
        return job.claim.lost ? { skipped: LOST } : { fenced: job };
      }
      lane.behindPause = false;
      started = this.now();
      const slow = this.countSlow(lane, version, sub);
      // `place`: the limiter holding this send's place until its outcome is durable,
      // `unrecorded`, or `lingering` once it lingers (see linger).
      let answered = false;
      const lingers = setTimeout(() => {
        this.linger(() => {
          if (answered) return false;
          place = this.lingering;
          giveBack();
          return true;
        });
      }, config.deliveryLingerAfterMs);
      try {
        outcome = await this.senders[sub.protocol].deliver(sub, content, lane.target);
      } catch (e) {
        place.release();
        this.breaker.probeNotSent(host);
        throw e;
      } finally {
        answered = true;
        clearTimeout(lingers);
        clearTimeout(slow);
        lane.slow = false;
      }
    } finally {
      letGo(job);
    }
    // Any answer that is not the host failing (a 4xx) shows the host is up: that too
    // closes the circuit, or a half-open probe answered 404 would leave it half-open forever.
    // A 429 is this subscription being rate-limited, which its lane waits out, and counts
    // against the host only as the breaker's rateLimited says: once per subscription, not
    // per callback, since many subscribers take every feed's pushes at one URL.
    if (outcome.status === 429) this.breaker.rateLimited(host, subscriptionKey(lane.topic, lane.callback));
    else if (hostFailed(outcome)) this.breaker.failure(host);
    else this.breaker.success(host);
    const retry = !outcome.ok && !outcome.gone && sub.protocol === 'websub' && attempt < config.websubMaxAttempts;
    // A subscriber's Retry-After (a 429 or 503) is waited for, up to WEBSUB_RETRY_MAX_MS, the
    // longest the hub waits between attempts: retried at the backoff's few seconds, a
    // rate-limited subscriber refused those attempts too and the version ran out of them.
    const asked = Math.min(outcome.retryAfterMs ?? 0, config.websubRetryMaxMs);
    const delay = retry ? Math.max(asked, backoff(attempt, config.websubRetryBaseMs, config.websubRetryMaxMs)) : 0;
    const final = !retry || this.now() + delay >= sub.whenExpires;
    return { sub, content, outcome, final, delay, started, place };
  }

  /**
   * How long a subscriber that answered 429 to a version the lane is done with (rssCloud's only
   * attempt, or WebSub's last) is left alone: its Retry-After, up to WEBSUB_RETRY_MAX_MS as for
   * WebSub's retries, else the backoff after `failures` failures in a row (WebSub's attempts at
   * the version; on rssCloud, the lane's notifications answered 429 in a row). Sent at once, the
   * next version of a feed pushed too often was refused too: NewsBlur refuses a feed's pushes
   * within a minute of the last it took.
   */
  private restAfter429(outcome: DeliveryOutcome, failures: number): number {
    const { websubRetryBaseMs, websubRetryMaxMs } = this.deps.config;
    if (outcome.retryAfterMs !== undefined) return Math.min(outcome.retryAfterMs, websubRetryMaxMs);
    return backoff(failures, websubRetryBaseMs, websubRetryMaxMs);
  }

  /**
   * Waits out the lane's rest after its subscriber's 429 (see restAfter429), holding no slot of
   * its host, before the lane's next version; `after` is the version it answered. The lane stays
   * meanwhile, even with nothing queued, so that versions queued while it rests wait too (and
   * count their first attempts at once, as not delivered, see waitBehind). As while its host is
   * paused, an rssCloud subscriber is then sent only the newest: each notification says the same.
   */
  private async rest(lane: Lane, after: number): Promise<void> {
    const until = lane.restUntil;
    lane.restUntil = 0;
    lane.behindPause = true;
    const from = this.now();
    // Woken early by the operator's retry of the host (see retryHostNow).
    await this.waitBehind(lane, after, this.sleep(until - from, lane.host));
    const to = this.now();
    for (const v of lane.versions) {
      const since = Math.max(from, this.jobs.get(lane.topic, v)?.entry.createdAt ?? from);
      if (to > since) (lane.rested ??= new Map()).set(v, (lane.rested.get(v) ?? 0) + to - since);
    }
  }

  /**
   * Order across processes: an older version of the topic that another process is delivering
   * (its outbox entry is not one of this process's jobs), made while this subscription existed
   * and not yet handled for it, goes first. Polls until it is handled or gone (its owner
   * finished, or took it over after a death). Within one process the lane already orders
   * versions, so on a single process this returns at once. Resolves true when it waited.
   * Waiting longer than a first attempt takes (REQUEST_TIMEOUT_MS), the older version is being
   * retried, for as long as the retry window: the lane's first attempts count then, as not
   * delivered, as waitBehind counts them within one process, or a ping through this process
   * would wait out the other's retries.
   */
  private async waitForEarlier(lane: Lane, sub: Subscription, version: number): Promise<boolean> {
    let waited = false;
    const since = this.now();
    for (let pause = 20; !this.closed; pause = Math.min(1000, pause * 2)) {
      // Given up or lost meanwhile: nothing to order (the caller's turn skips it).
      const own = this.jobs.get(sub.topic, version);
      if (own && !counted(own)) return waited;
      const earlier = (await this.outboxOf(sub.topic, waited)).filter(
        (e) => e.version < version && e.createdAt >= sub.whenCreated && !this.jobs.holds(e.topic, e.version),
      );
      if (earlier.length === 0) return waited;
      const current = waited ? await this.deps.store.getSubscription(sub.topic, sub.callback) : sub;
      if (!current || !earlier.some((e) => this.due(current, e.version))) return waited;
      waited = true;
      if (this.now() - since > this.deps.config.requestTimeoutMs) this.settleBehind(lane);
      await this.sleep(pause);
    }
    return waited;
  }

  /**
   * True when no older version of the topic is another process's: known for good from the read
   * at staging, or from the outbox as last read (within OUTBOX_SEEN_MS). waitForEarlier would
   * return false at once. Answered without a promise,
   * since every delivery of a fan-out asks.
   */
  private noneEarlier(topic: string, version: number): boolean {
    if (this.jobs.get(topic, version)?.noEarlier) return true;
    const seen = this.outboxSeen.get(topic);
    if (!seen?.read || this.now() - seen.at >= OUTBOX_SEEN_MS) return false;
    for (const e of seen.read) if (e.version < version && !this.jobs.holds(e.topic, e.version)) return false;
    return true;
  }

  /** A topic's outbox entries, read at most every OUTBOX_SEEN_MS unless `fresh`: one read serves a whole fan-out's lanes. */
  private outboxOf(topic: string, fresh: boolean): Promise<OutboxEntry[]> {
    const now = this.now();
    const seen = this.outboxSeen.get(topic);
    if (!fresh && seen && now - seen.at < OUTBOX_SEEN_MS) return seen.entries;
    const entries = this.deps.store.outboxOf(topic);
    entries.catch(noop);
    const record: { at: number; entries: Promise<OutboxEntry[]>; read?: OutboxEntry[] } = { at: now, entries };
    entries.then((read) => (record.read = read), noop);
    this.outboxSeen.set(topic, record);
    if (this.outboxSeen.size > 10_000) for (const [t, v] of this.outboxSeen) if (now - v.at >= OUTBOX_SEEN_MS) this.outboxSeen.delete(t);
    return entries;
  }

  /** Updates counters; a success or a final failure marks the version handled. */
  private record(sub: Subscription, version: number, outcome: DeliveryOutcome, final: boolean): Promise<void> {
    if (outcome.gone && sub.protocol === 'websub') {
      return this.deps.store.deleteSubscription(sub.topic, sub.callback).then((deleted) => {
        if (deleted) this.deps.log.info('subscription ended by 410 Gone', { topic: sub.topic, host: callbackHost(sub.callback) });
      });
    }
    return this.outcomes.add(sub, outcome.ok, this.now(), outcome.ok || final ? version : 0, outcome.status === 429);
  }

  /**
   * Queues `subs[from..end)` for a job's version; the last chunk ends its queueing, which
   * finishes it if every lane already handled it (a fast first chunk can empty `remaining`
   * before the next is added: that alone must not remove the outbox entry).
   */
  private queueChunk(job: Job, subs: Subscription[], from: number, end: number): void {
    const { version } = job.entry;
    for (let i = from; i < end; i++) {
      const key = keyOf(subs[i]!);
      job.remaining.add(key);
      this.enqueue(subs[i]!, key, version);
    }
    if (end < subs.length) return;
    job.queueing = false;
    if (job.remaining.size === 0) void this.finished(job);
  }

  /** Marks a version handled for one subscription; the last one removes the outbox entry (awaited then). */
  private handled(key: string, topic: string, version: number): Promise<void> | undefined {
    const job = this.jobs.get(topic, version);
    if (!job) return undefined;
    job.remaining.delete(key);
    if (job.remaining.size > 0 || job.queueing) return undefined;
    return this.finished(job);
  }

  /** A version every subscription has handled: its outbox entry goes. */
  private finished(job: Job): Promise<void> | undefined {
    const { topic, version } = job.entry;
    this.jobs.delete(topic, version);
    // No longer renewed, its claim lapses, and the resume delivers it to those still due.
    // Lost to another process: the entry is the new owner's to finish and remove.
    if (job.resumeLater || job.claim.lost) return undefined;
    // A failure must not end the lane (its later versions would wait for a restart). The entry
    // stays: no longer renewed, its claim lapses and it is resumed, finds nobody due, and goes.
    return this.deps.store
      .deleteOutbox(topic, version)
      .catch((e: unknown) => this.deps.log.error('removing a delivered version from the outbox failed', { topic, version, error: describeError(e) }));
  }

  /** Counts a subscription's first attempt at a version, once, into its fan-out's report. */
  private settleFirst(lane: Lane, version: number, outcome: DeliveryOutcome): void {
    const at = lane.unsettled.indexOf(version);
    if (at === -1) return;
    lane.unsettled.splice(at, 1);
    const job = this.jobs.get(lane.topic, version);
    if (!job) return;
    const { first } = job;
    if (outcome.ok) first.delivered++;
    if (--first.pending === 0) {
      first.done({ attempted: first.attempted, delivered: first.delivered, failed: first.attempted - first.delivered });
      firstPassEnded(job);
    }
  }

  /**
   * Sleeps out `version`'s wait (its retry's backoff, its host's pause: up to the retry window,
   * minutes). The later versions in the lane, and any queued meanwhile, cannot be tried before
   * it ends, so their first attempts count now, as not delivered: a ping or pleaseNotify waits
   * for its fan-out's first attempts, and would otherwise wait for an older version's retries.
   */
  private async waitBehind(lane: Lane, version: number, sleeping: Promise<void>): Promise<void> {
    lane.sleepingOn = version;
    this.settleBehind(lane, version);
    try {
      await sleeping;
    } finally {
      lane.sleepingOn = undefined;
    }
  }

  /**
   * A WebSub attempt still unanswered after REQUEST_TIMEOUT_MS counts then, as not delivered,
   * though it goes on for up to WEBSUB_TIMEOUT_MS: an rssCloud ping (and a pleaseNotify) waits
   * for its topic's first attempts, each of them bounded by REQUEST_TIMEOUT_MS before WebSub's
   * were given longer, and its caller gives up soon after. So do the first attempts of the later
   * versions queued behind it (and those queued while it goes on, see enqueue), which cannot be
   * tried before it ends: a second ping of the topic within WEBSUB_TIMEOUT_MS, or one that came
   * while a retry was under way, waited for that request to end, up to WEBSUB_TIMEOUT_MS.
   */
  private countSlow(lane: Lane, version: number, sub: Subscription): NodeJS.Timeout | undefined {
    const { requestTimeoutMs, websubTimeoutMs } = this.deps.config;
    if (sub.protocol !== 'websub' || websubTimeoutMs <= requestTimeoutMs) return undefined;
    return setTimeout(() => {
      lane.slow = true;
      this.settleFirst(lane, version, STILL_WAITING);
      this.settleBehind(lane);
    }, requestTimeoutMs);
  }

  /**
   * A send still unanswered (or unconnected) after DELIVERY_LINGER_AFTER_MS may wait on, up to its
   * timeout, without its DELIVERY_CONCURRENCY slot, which it then gives back (keeping its host's),
   * in one of DELIVERY_LINGERING places: `moveIn` is called once it holds one, at once when one is
   * free, else when one is handed to it, and says whether the send still waits (it then gives its
   * slot back) or has ended meanwhile (the place goes to the next). Such a send costs the hub a
   * socket and no work. Holding their slots, callbacks that accept a connection and never answer,
   * or whose address drops the connection attempt, spread over many hosts (each within
   * DELIVERY_PER_HOST), held every slot for their whole timeout (WebSub's 15 s), and every other
   * subscriber's deliveries, of every topic, queued behind them: 200 such among 2,000 healthy
   * subscribers made the fan-out take 3 minutes instead of under a second, their retries queued
   * ahead of the healthy ones again and again. Asking for a place only once, a send that found
   * none free kept its slot to its timeout though places freed long before. The places bound the
   * sockets, and what a kill can make subscribers receive twice, as `unrecorded` does for the slots.
   */
  private linger(moveIn: () => boolean): void {
    // With no places, a waiter would never be served, and every slow send would leave one behind.
    if (this.deps.config.deliveryLingering === 0) return;
    const take = (): void => {
      if (moveIn()) this.unrecorded.release();
      else this.lingering.release();
    };
    if (this.lingering.enter(take)) take();
  }

  /** Deliveries waiting on for their answer without a DELIVERY_CONCURRENCY slot (see linger). */
  get lingeringDeliveries(): number {
    return this.lingering.running;
  }

  /** Counts as not delivered the first attempts the lane owes, but `except`'s: they wait behind an older version's retries. */
  private settleBehind(lane: Lane, except?: number): void {
    for (const v of [...lane.unsettled]) if (v !== except) this.settleFirst(lane, v, BEHIND_RETRIES);
  }

  /** settleFirst, for a version done with: deliverVersion's 'done'. */
  private settled(lane: Lane, version: number, outcome: DeliveryOutcome): 'done' {
    this.settleFirst(lane, version, outcome);
    return 'done';
  }

  private emitDelivery(sub: Subscription, host: string, content: Content, attempt: number, outcome: DeliveryOutcome, started: number): void {
    const end = this.now();
    const job = this.jobs.get(content.topic, content.version);
    const event: DeliveryEvent = {
      topic: content.topic,
      version: content.version,
      protocol: sub.protocol,
      host,
      attempt,
      ok: outcome.ok,
      durationMs: end - started,
      latencyMs: end - (job?.entry.createdAt ?? started),
    };
    if (outcome.status !== undefined) event.status = outcome.status;
    if (outcome.error !== undefined) event.error = outcome.error;
    this.deps.log.info('delivery', event);
    this.emit('delivery', event);
  }

  private sleep(ms: number, host?: string, retrying?: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, Math.max(0, ms)),
        wake: resolve,
        ...(host !== undefined && { host }),
        ...(retrying !== undefined && { retrying }),
      };
      this.sleepers.add(sleeper);
    });
  }
}

function noop(): void {}

/** Sent-but-not-durable deliveries allowed per DELIVERY_CONCURRENCY slot: one in flight, one being recorded. */
const UNRECORDED_PER_SLOT = 2;
/** Subscriptions queued per turn of the event loop when a fan-out starts. */
const ENQUEUE_CHUNK = 2000;
/** resume() at start claims every entry nobody holds. */
const RESUME_ALL = 1_000_000_000;
/** How long one read of a topic's outbox serves the ordering check (waitForEarlier). */
const OUTBOX_SEEN_MS = 100;

function parseCallback(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function keyOf(sub: Subscription): string {
  return subscriptionKey(sub.topic, sub.callback);
}

/** Whether a failure says something about the host rather than about one subscription (a 429: see CircuitBreaker.rateLimited). */
function hostFailed(outcome: DeliveryOutcome): boolean {
  return outcome.status === undefined || outcome.status >= 500;
}
