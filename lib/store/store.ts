// The store interface the core depends on. The embedded lowdb store implements it today; a
// server-backed store (several hub processes on one database) must fit behind it unchanged,
// which is why every method is async even where the embedded store answers from memory.
import type { Subscription, Topic } from '../model.js';

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

  counts(): Promise<StoreCounts>;
  /** Drops everything (the test API's /test/clear). */
  clear(): Promise<void>;
}
