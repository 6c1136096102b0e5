// The store interface the core depends on. The embedded lowdb store implements it today; a
// server-backed store (several hub processes on one database) must fit behind it unchanged,
// which is why every method is async even where the embedded store answers from memory.
import type { DeliveryTally, OutboxEntry, OutboxKey, PendingRead, PendingVerification, Site, Subscription, Topic } from '../model.js';

export interface StoreCounts {
  topics: number;
  subscriptions: number;
  byProtocol: Record<string, number>;
}

/** The most subscriptions one topic, and one callback host (host[:port]), may hold. */
export interface SubscriptionLimits {
  perTopic: number;
  perCallbackHost: number;
}

/** Which limit refused a new subscription. */
export type SubscriptionLimit = 'topic' | 'callbackHost';

/** A topic URL and how many subscriptions it has. */
export interface TopicSubscriptions {
  topic: string;
  subscriptions: number;
}

/** What the expiry sweep removes (see deleteExpiredSubscriptions). */
export interface ExpiryFilter {
  /** A lease that ends at or before this time (epoch ms) has ended. */
  now: number;
  /** rssCloud subscriptions with this many failed deliveries in a row are exhausted. */
  maxConsecutiveErrors: number;
  /** The most subscriptions one call deletes. */
  limit: number;
}

/** Whether the expiry sweep removes this subscription: its lease has ended, or rssCloud gave up on it. */
export function subscriptionEnded(s: Subscription, { now, maxConsecutiveErrors }: Omit<ExpiryFilter, 'limit'>): boolean {
  return s.whenExpires <= now || (s.protocol !== 'websub' && s.ctConsecutiveErrors >= maxConsecutiveErrors);
}

export interface Store {
  /** Loads what is on disk; must be called once before anything else. */
  open(): Promise<void>;
  /** Makes every acknowledged write durable and releases files. */
  close(): Promise<void>;
  /** Resolves when every write issued so far is durable. */
  flush(): Promise<void>;

  getTopic(url: string): Promise<Topic | undefined>;
  /** Durable when the promise resolves. */
  putTopic(topic: Topic): Promise<void>;
  /**
   * A read that found no change: the topic with its count and time of check (and validators)
   * brought up to date. Read back at once; durable soon after, not necessarily when the promise
   * resolves (the embedded store writes it with its next batch, within a second): a crash loses
   * at most a count and the time of a check, which costs one read more, never a change.
   */
  recordCheck(topic: Topic): Promise<void>;
  /** Removes the topic and every subscription to it. */
  deleteTopic(url: string): Promise<void>;
  listTopics(): Promise<Topic[]>;
  /**
   * Deletes up to `limit` topics last updated before `before` that nobody subscribes to, and
   * returns how many. Each is found and deleted in one step: a subscription is never deleted
   * with its topic (deleteTopic would), and a topic with one is kept.
   */
  deleteStaleTopics(before: number, limit: number): Promise<number>;
  /**
   * Deletes the topics nobody subscribes to but the `keep` read most recently (whenLastCheck),
   * and returns how many. As in deleteStaleTopics, a topic with a subscription is never deleted.
   */
  trimUnfollowedTopics(keep: number): Promise<number>;

  getSubscription(topic: string, callback: string): Promise<Subscription | undefined>;
  /** Inserts or replaces by (topic, callback); durable when the promise resolves. */
  putSubscription(sub: Subscription): Promise<void>;
  /**
   * Adds delivery outcomes to subscriptions' counters and handled version (withTally in
   * model.ts says how), one tally per subscription; a subscription gone meanwhile is skipped.
   * One durable write for the whole batch: a fan-out records its outcomes in batches.
   */
  recordDeliveries(tallies: DeliveryTally[]): Promise<void>;
  deleteSubscription(topic: string, callback: string): Promise<boolean>;
  subscriptionsOf(topic: string): Promise<Subscription[]>;
  listSubscriptions(): Promise<Subscription[]>;
  /**
   * Every topic URL that has at least one subscription, with how many, in no particular order:
   * from the counts the store keeps, without reading the subscriptions themselves (the
   * operator's pages ask on every load, and a million rows per page load would be the hub's
   * undoing).
   */
  subscribedTopics(): Promise<TopicSubscriptions[]>;
  /**
   * Deletes up to `limit` subscriptions whose lease has ended, or rssCloud ones exhausted by
   * failed deliveries, and resolves to how many it deleted. The expiry sweep calls it until it
   * deletes none: a server-backed store finds them by index, without reading every subscription.
   */
  deleteExpiredSubscriptions(filter: ExpiryFilter): Promise<number>;

  /**
   * The outbox: one entry per content version that still has deliveries to make. The body is
   * durable with the entry, before any delivery of it is attempted, so a restart can finish
   * a fan-out. Which subscribers still need it is each subscription's `deliveredVersion`.
   */
  putOutbox(entry: OutboxEntry, body: Buffer): Promise<void>;
  getOutboxBody(topic: string, version: number): Promise<Buffer | undefined>;
  /** The size of an outbox entry's body in bytes, without reading it (undefined: no such entry). */
  outboxBodySize(topic: string, version: number): Promise<number | undefined>;
  deleteOutbox(topic: string, version: number): Promise<void>;
  listOutbox(): Promise<OutboxEntry[]>;
  /** The entries of one topic's outbox, oldest version first (claims included). */
  outboxOf(topic: string): Promise<OutboxEntry[]>;
  /**
   * Claims up to `limit` outbox entries whose claim is absent or expired for `owner`, until
   * now + leaseMs, and returns them (claimed). With several hub processes on one database
   * each entry is claimed by one of them at a time; a process that died leaves claims that
   * expire and are taken over. A single-process store voids every claim when it opens.
   */
  claimOutbox(owner: string, leaseMs: number, limit: number): Promise<OutboxEntry[]>;
  /**
   * Extends the claims `owner` still holds on these entries to now + leaseMs, and resolves to the
   * keys it extended. A key left out is no longer `owner`'s: another process took it over after
   * it expired, or it is gone (the notifier then stops delivering it, see
   * OutboxClaims.startRenewals).
   */
  renewOutboxClaims(owner: string, leaseMs: number, keys: OutboxKey[]): Promise<OutboxKey[]>;
  /**
   * Whether other hub processes may share the store and take this one's outbox claims over once
   * they expire (PostgreSQL). False for the embedded store, which one process holds (its
   * directory lock): a claim there cannot be lost, so the notifier never holds a delivery back
   * for it (see Notifier.takeTurn).
   */
  readonly sharedClaims: boolean;

  /**
   * Runs fn while no other hub process runs fn for the same topic URL (a refresh: reading the
   * topic and assigning its next version). A single-process store just runs it: the hub
   * already serializes refreshes of a topic within its process.
   */
  withTopicLock<T>(url: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Runs fn (the expiry sweep) unless another hub process on the same database is running it
   * now; then resolves to undefined at once, without running fn. A single-process store just
   * runs it.
   */
  withSweepLock<T>(fn: () => Promise<T>): Promise<T | undefined>;

  /** WebSub (un)subscription requests accepted (202) but not yet verified, by id. */
  putVerification(v: PendingVerification): Promise<void>;
  /** Whether a verification is still pending: false once deleted or superseded. */
  hasVerification(id: string): Promise<boolean>;
  /**
   * For a request whose verification succeeded, just before the hub applies it: if it is still
   * pending, removes the pending requests of its (topic, callback) accepted before it (by
   * createdAt, then id) and resolves true; false when it is no longer pending (a newer request of
   * the pair was verified and applied first, and removed it). So once a request is applied no
   * older one of its pair can be applied after it (REC §5.1), while an unverified newer request
   * (which anyone could send) withdraws nothing.
   */
  supersedeOlderVerifications(v: PendingVerification): Promise<boolean>;
  deleteVerification(id: string): Promise<void>;
  listVerifications(): Promise<PendingVerification[]>;
  /** As claimOutbox, for verifications: those nobody is running (their process died), claimed. */
  claimVerifications(owner: string, leaseMs: number, limit: number): Promise<PendingVerification[]>;
  /** Extends the claims `owner` still holds on these verifications to now + leaseMs. */
  renewVerificationClaims(owner: string, leaseMs: number, ids: string[]): Promise<void>;
  /**
   * Gives up every claim `owner` holds, on outbox entries and verifications alike, so that the
   * next claim by anyone takes them at once: a process closing gracefully calls it when its
   * work in flight has settled, and a restart (or another process) resumes what is left without
   * waiting out the lease.
   */
  releaseClaims(owner: string): Promise<void>;

  /**
   * Records a read owed to each of `topics` that has at least one subscription (of any
   * protocol), in one durable write, and resolves to the topics recorded. A URL nobody follows
   * gets none: nobody would miss its change, and recording any URL a stranger publishes would
   * let strangers grow the store. A topic already recorded keeps the later of the two `since`.
   */
  putPendingReads(topics: string[], since: number): Promise<string[]>;
  /**
   * Deletes the topic's pending read if its `since` is not after `readSince`: called once a read
   * that began after `readSince` has finished, so a publish that arrived after `readSince` (its
   * change possibly missed by that read) keeps its record until a read of its own finishes.
   */
  deletePendingRead(topic: string, readSince: number): Promise<void>;
  /** Every pending read, oldest first (then by URL): what the hub reads at start-up. */
  listPendingReads(): Promise<PendingRead[]>;

  /** Sites: what a site page links to as feeds (weblogUpdates and REST pings that name a site). Keyed by exact URL. */
  getSite(url: string): Promise<Site | undefined>;
  /** Inserts or replaces by url; durable when the promise resolves. */
  putSite(site: Site): Promise<void>;
  /** Deletes up to `limit` sites whose page was last read before `before`, and returns how many. */
  deleteStaleSites(before: number, limit: number): Promise<number>;
  /** Deletes the sites but the `keep` whose page was read most recently, and returns how many. */
  trimSites(keep: number): Promise<number>;

  counts(): Promise<StoreCounts>;
  /** Subscriptions of one topic, and subscriptions whose callback is on one host (host[:port]). */
  countSubscriptions(filter: { topic: string } | { callbackHost: string }): Promise<number>;
  /**
   * Whether the topic has a subscription the expiry sweep would keep (see subscriptionEnded):
   * the poller asks before each poll, so a topic whose subscriptions have all ended is not read
   * for nobody until the next sweep. Stops at the first such subscription.
   */
  hasLiveSubscription(topic: string, filter: Omit<ExpiryFilter, 'limit'>): Promise<boolean>;
  /**
   * As putSubscription, unless the (topic, callback) pair is new and its topic or its callback
   * host already holds as many subscriptions as `limits` allow: then nothing is written and the
   * limit is named. Counting and writing are one step for every hub process on the store, so
   * concurrent subscribes, through any process, never exceed a limit.
   */
  putSubscriptionWithinLimits(sub: Subscription, limits: SubscriptionLimits): Promise<SubscriptionLimit | null>;
  /**
   * As putSubscriptionWithinLimits, for the verified WebSub request `requestId`: nothing is
   * written, and 'superseded' resolved, unless that request is still pending, and it stays
   * pending until the subscription is written, so a newer request of its pair verified meanwhile
   * (through any process) waits and applies after it.
   */
  putVerifiedSubscription(sub: Subscription, limits: SubscriptionLimits, requestId: string): Promise<SubscriptionLimit | 'superseded' | null>;
  /**
   * The limit a new (topic, callback) pair would exceed now, or null when the pair exists or
   * neither its topic nor its callback host is full: the early answer to a subscribe request,
   * in one read. putSubscriptionWithinLimits has the last word.
   */
  subscriptionLimitReached(topic: string, callback: string, limits: SubscriptionLimits): Promise<SubscriptionLimit | null>;
  /** Drops everything (the test API's /test/clear). */
  clear(): Promise<void>;
}
