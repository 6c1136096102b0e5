// The store interface the core depends on. The embedded lowdb store implements it today; a
// server-backed store (several hub processes on one database) must fit behind it unchanged,
// which is why every method is async even where the embedded store answers from memory.
import type { OutboxEntry, PendingVerification, Site, Subscription, Topic } from '../model.js';

export interface StoreCounts {
  topics: number;
  subscriptions: number;
  byProtocol: Record<string, number>;
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
  /** Removes the topic and every subscription to it. */
  deleteTopic(url: string): Promise<void>;
  listTopics(): Promise<Topic[]>;

  getSubscription(topic: string, callback: string): Promise<Subscription | undefined>;
  /** Inserts or replaces by (topic, callback); durable when the promise resolves. */
  putSubscription(sub: Subscription): Promise<void>;
  deleteSubscription(topic: string, callback: string): Promise<boolean>;
  subscriptionsOf(topic: string): Promise<Subscription[]>;
  listSubscriptions(): Promise<Subscription[]>;

  /**
   * The outbox: one entry per content version that still has deliveries to make. The body is
   * durable with the entry, before any delivery of it is attempted, so a restart can finish
   * a fan-out. Which subscribers still need it is each subscription's `deliveredVersion`.
   */
  putOutbox(entry: OutboxEntry, body: Buffer): Promise<void>;
  getOutboxBody(topic: string, version: number): Promise<Buffer | undefined>;
  deleteOutbox(topic: string, version: number): Promise<void>;
  listOutbox(): Promise<OutboxEntry[]>;

  /** WebSub (un)subscription requests accepted (202) but not yet verified. */
  putVerification(v: PendingVerification): Promise<void>;
  deleteVerification(id: string): Promise<void>;
  listVerifications(): Promise<PendingVerification[]>;

  /** Sites: what a site page links to as feeds (weblogUpdates and REST pings that name a site). Keyed by exact URL. */
  getSite(url: string): Promise<Site | undefined>;
  /** Inserts or replaces by url; durable when the promise resolves. */
  putSite(site: Site): Promise<void>;

  counts(): Promise<StoreCounts>;
  /** Subscriptions of one topic, and subscriptions whose callback is on one host (host[:port]). */
  countSubscriptions(filter: { topic: string } | { callbackHost: string }): Promise<number>;
  /** Drops everything (the test API's /test/clear). */
  clear(): Promise<void>;
}
