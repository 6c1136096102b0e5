// Unit test of the notifier's outbox claims while it resumes (one part, so a stand-in store
// whose reads are slow): a long outbox must not let its claims lapse before it is read through,
// or other hub processes on the database take those versions over and deliver them too.
import { expect } from 'chai';
import { loadConfig } from '../lib/config.js';
import type { HttpClient } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import type { OutboxEntry, OutboxKey, Subscription } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import type { Store } from '../lib/store/store.js';
import { sleep } from './helpers/recorder.js';

describe('notifier: claims while resuming', () => {
  it('renews the claims of the versions it has claimed and not yet read, from the start of resume()', async () => {
    const LEASE_MS = 300;
    const READ_MS = 150;
    const claimed: OutboxEntry[] = ['a', 'b', 'c', 'd'].map((t) => ({
      topic: `http://${t}.example/feed`,
      version: 1,
      contentType: 'text/plain',
      createdAt: 0,
    }));
    const read: string[] = [];
    // What had been read when each renewal came: the count, not a clock, so load cannot move it.
    const renewals: { readBefore: number; keys: OutboxKey[] }[] = [];
    const store = {
      claimOutbox: async () => claimed,
      getTopic: async () => undefined,
      // Slow: four of them outlast the lease.
      subscriptionsOf: async (topic: string): Promise<Subscription[]> => {
        await sleep(READ_MS);
        read.push(topic);
        return [];
      },
      deleteOutbox: async () => {},
      renewOutboxClaims: async (_owner: string, _lease: number, keys: OutboxKey[]) => {
        renewals.push({ readBefore: read.length, keys });
      },
    } as unknown as Store;
    const notifier = new Notifier({
      config: loadConfig({ OUTBOX_CLAIM_LEASE_MS: String(LEASE_MS) }),
      http: {} as HttpClient,
      store,
      log: silentLogger,
    });
    try {
      await notifier.resume();
      expect(read).to.have.length(4);
      const during = renewals.filter((r) => r.readBefore < 4);
      expect(during.length, 'renewals while it read the outbox').to.be.at.least(2);
      // The last one was still claimed after the first were read (more than a lease after
      // resume() began): renewed meanwhile.
      const last = claimed[3]!.topic;
      expect(during.some((r) => r.readBefore >= 2 && r.keys.some((k) => k.topic === last)), `a renewal that covered ${last}`).to.equal(true);
    } finally {
      notifier.close();
    }
  });
});
