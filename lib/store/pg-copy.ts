// Copies a store (the embedded one, in practice) into a PostgreSQL store: topics,
// subscriptions, outbox entries with their bodies, pending verifications, pending reads. Every row is an
// upsert that writes only when a value differs, so a second run changes nothing and says so.
// Rows in PostgreSQL that the source does not have are left alone. Sites are not copied: the
// Store interface cannot list them, and they are a cache the hub rebuilds on the next ping.
import type { PgStore, UpsertResult } from './pg-store.js';
import type { Store } from './store.js';

export interface CopyCounts {
  /** Records read from the source. */
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Records left out: an outbox entry whose body the source has lost. */
  skipped: number;
}

export interface CopyReport {
  topics: CopyCounts;
  subscriptions: CopyCounts;
  outbox: CopyCounts;
  verifications: CopyCounts;
  pendingReads: CopyCounts;
  /** Why each skipped record was left out, for the operator. */
  warnings: string[];
}

/** Upserts this many rows at once (each is its own statement; the pool spreads them). */
const IN_FLIGHT = 32;

async function copyAll<T>(items: T[], put: (item: T) => Promise<UpsertResult | 'skipped'>): Promise<CopyCounts> {
  const counts: CopyCounts = { read: items.length, inserted: 0, updated: 0, unchanged: 0, skipped: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      counts[await put(item)]++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
  return counts;
}

export async function copyStore(from: Store, to: PgStore): Promise<CopyReport> {
  const topics = await copyAll(await from.listTopics(), (t) => to.upsertTopic(t));
  const subscriptions = await copyAll(await from.listSubscriptions(), (s) => to.upsertSubscription(s));
  const warnings: string[] = [];
  const outbox = await copyAll(await from.listOutbox(), async (e) => {
    const body = await from.getOutboxBody(e.topic, e.version);
    // Its file lost (removed by hand, a damaged disk): no hub could deliver it either (the hub
    // skips such a version and logs it). Stopping here made every run fail at the same entry,
    // and the move impossible without editing DATA_DIR.
    if (body === undefined) {
      warnings.push(`outbox entry ${e.topic} version ${e.version} has no body in DATA_DIR: not copied (its subscribers get the topic's next version)`);
      return 'skipped';
    }
    return to.upsertOutbox(e, body);
  });
  const verifications = await copyAll(await from.listVerifications(), (v) => to.upsertVerification(v));
  // Publishes answered 204 (and pings thanked) whose reads a stopped hub had not finished: left
  // behind, the hub on PostgreSQL never read those topics, and their subscribers never heard of
  // those changes.
  const pendingReads = await copyAll(await from.listPendingReads(), (r) => to.upsertPendingRead(r));
  return { topics, subscriptions, outbox, verifications, pendingReads, warnings };
}
