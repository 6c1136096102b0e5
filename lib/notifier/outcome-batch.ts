// Delivery outcomes reach the store in batches. A fan-out to 10,000 subscribers made 10,000
// separate writes (each a read, a copy and a journal line on the embedded store, a statement
// and a commit on PostgreSQL); now the outcomes that arrive while one batch is being written
// make up the next, so a fan-out costs a few dozen writes. Each caller still waits until its
// outcome is durable: what a kill can make a subscriber receive twice stays bounded by the
// deliveries in flight plus one batch.
import type { DeliveryTally, Subscription } from '../model.js';
import { subscriptionKey } from '../model.js';
import type { Store } from '../store/store.js';

export class OutcomeBatch {
  private pending = new Map<string, DeliveryTally>();
  private next: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  private writing = false;

  constructor(private readonly store: Store) {}

  /**
   * Adds one attempt's outcome for `sub`, and `handledVersion` when the version is done with
   * (delivered, or given up on; 0 otherwise). `rateLimited`: a failure that was the subscriber's
   * 429 (see DeliveryTally.limited). Resolves once it is durable.
   */
  add(sub: Pick<Subscription, 'topic' | 'callback'>, ok: boolean, at: number, handledVersion: number, rateLimited = false): Promise<void> {
    const key = subscriptionKey(sub.topic, sub.callback);
    let t = this.pending.get(key);
    if (!t) {
      t = { topic: sub.topic, callback: sub.callback, delivered: 0, failed: 0, limited: 0, failedSinceDelivered: 0, lastDeliveredAt: null, lastFailedAt: null, handledVersion: 0 };
      this.pending.set(key, t);
    }
    if (ok) {
      t.delivered++;
      t.failedSinceDelivered = 0;
      t.lastDeliveredAt = at;
    } else {
      t.failed++;
      if (rateLimited) t.limited++;
      else t.failedSinceDelivered++;
      t.lastFailedAt = at;
    }
    if (handledVersion > t.handledVersion) t.handledVersion = handledVersion;
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { promise, resolve, reject };
      // Outcomes of the same turn of the event loop join this batch; if a batch is being
      // written, this one starts when it ends (group commit).
      if (!this.writing) setImmediate(() => void this.write());
    }
    return this.next.promise;
  }

  private async write(): Promise<void> {
    const batch = this.next;
    if (!batch || this.writing) return;
    this.writing = true;
    const tallies = [...this.pending.values()];
    this.pending = new Map();
    this.next = undefined;
    try {
      await this.store.recordDeliveries(tallies);
      batch.resolve();
    } catch (e) {
      batch.reject(e);
    } finally {
      this.writing = false;
      if (this.next) void this.write();
    }
  }
}
