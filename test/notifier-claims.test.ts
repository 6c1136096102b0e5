// Unit tests of the notifier's outbox claims (one part, so a stand-in store or HTTP client):
//  - A long outbox must not let its claims lapse before it is read through while it resumes, or
//    other hub processes on the database take those versions over and deliver them too.
//  - The lease fences sends: a process held up past its lease sends nothing more of a version
//    until a renewal answers; renewed, it goes on (nothing stranded); not renewed (another
//    process took it over), it drops the rest unsent and unrecorded, and leaves the outbox entry
//    to the new owner. On the embedded store, whose claims nobody else can take, nothing waits.
//    The same over real processes and PostgreSQL: cluster.test.ts (SIGSTOP).
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../lib/config.js';
import type { HttpClient, HttpResponse } from '../lib/http.js';
import { createLogger, silentLogger } from '../lib/log.js';
import { newSubscription, newTopic, type OutboxEntry, type OutboxKey, type Subscription } from '../lib/model.js';
import { Notifier, type FanOutReport } from '../lib/notifier/notifier.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import type { Store } from '../lib/store/store.js';
import { tempDataDir } from './helpers/hub.js';
import { sleep } from './helpers/recorder.js';
import { until } from './helpers/until.js';

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

/**
 * An embedded store that says (`shared`) whether other processes may take its claims, as
 * PostgreSQL's does, holding `topic` at version 0 and a WebSub subscription of it per callback.
 */
async function claimsStore(shared: boolean, topic: string, callbacks: string[]): Promise<{ store: LowdbStore; dir: string }> {
  const dir = await tempDataDir();
  const store = new LowdbStore({ dir });
  await store.open();
  Object.defineProperty(store, 'sharedClaims', { value: shared });
  await store.putTopic({ ...newTopic(topic), version: 0 });
  for (const cb of callbacks) await store.putSubscription({ ...newSubscription(topic, cb, 'websub', 0, Date.now() + 3600_000), deliveredVersion: 0 });
  return { store, dir };
}

describe('notifier: the lease fences its sends', () => {
  const LEASE_MS = 300;
  const topic = 'http://t.example/feed';
  const callbacks = ['http://cb.example/a', 'http://cb.example/b', 'http://cb.example/c'];

  /**
   * A fan-out of version 1 to three subscribers, one send at a time, whose first send holds the
   * event loop (a GC, a loaded machine, a paused VM) for longer than the lease. `shared`: the
   * store says other processes may take its claims (as PostgreSQL does); `renew` answers the
   * renewals made after the stall (`own`: the store's own answer).
   */
  async function stalledFanOut(shared: boolean, renew: (own: () => Promise<OutboxKey[]>) => Promise<OutboxKey[]>) {
    const { store, dir } = await claimsStore(shared, topic, callbacks);
    // In order, what happened after the stall: sends and renewals answered.
    const events: string[] = [];
    let stalled = false;
    const http = {
      request: async (_kind: string, url: string | URL) => {
        if (!stalled) {
          stalled = true;
          const end = Date.now() + 2 * LEASE_MS;
          while (Date.now() < end); // held up, renewals and all
        } else events.push(`sent ${String(url)}`);
        return { status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) } satisfies HttpResponse;
      },
    } as unknown as HttpClient;
    const config = loadConfig({ OUTBOX_CLAIM_LEASE_MS: String(LEASE_MS), DELIVERY_CONCURRENCY: '1' });
    const notifier = new Notifier({ config, http, store, log: silentLogger });
    const renewOwn = store.renewOutboxClaims.bind(store);
    store.renewOutboxClaims = async (owner, lease, keys) => {
      const own = (): Promise<OutboxKey[]> => renewOwn(owner, lease, keys);
      const renewed = stalled ? await renew(own) : await own();
      if (stalled && keys.length > 0) events.push(`renewal answered: ${renewed.length} of ${keys.length}`);
      return renewed;
    };
    await notifier.resume(); // nothing to resume: starts the renewals, as at a hub's start
    const start = await notifier.stage({ topic, version: 1, body: Buffer.from('version 1'), contentType: 'text/plain' }, () =>
      store.putTopic({ ...newTopic(topic), version: 1 }),
    );
    const report = await start();
    const delivered = async (cb: string): Promise<number | undefined> => (await store.getSubscription(topic, cb))?.deliveredVersion;
    const done = async (): Promise<void> => {
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    };
    return { store, events, report, delivered, done };
  }

  it('held up past its lease, it sends nothing until a renewal answers; renewed, the fan-out goes on to everyone', async () => {
    const run = await stalledFanOut(true, (own) => own());
    try {
      expect(run.report.attempted).to.equal(3);
      expect(await until(async () => (await run.delivered(callbacks[2]!)) === 1), 'the last subscriber recorded').to.equal(true);
      for (const cb of callbacks) expect(await run.delivered(cb), cb).to.equal(1);
      // After the stall, a renewal answered before anything more went out.
      expect(run.events[0]).to.match(/^renewal answered: 1 of 1$/);
      expect(run.events.filter((e) => e.startsWith('sent')).sort()).to.deep.equal([`sent ${callbacks[1]}`, `sent ${callbacks[2]}`]);
      expect(await run.store.outboxOf(topic), 'the finished version left the outbox').to.deep.equal([]);
    } finally {
      await run.done();
    }
  });

  it('held up past its lease and taken over meanwhile: it sends and records nothing more of it, and leaves the outbox entry to the new owner', async () => {
    // The store's answer once another process has the claim: nothing renewed.
    const run = await stalledFanOut(true, async () => []);
    try {
      // Its first send, under way at the stall, ends and is recorded as usual.
      expect(await until(async () => (await run.delivered(callbacks[0]!)) === 1), 'the send under way recorded').to.equal(true);
      await sleep(3 * LEASE_MS); // more sends would show up now
      expect(run.events.filter((e) => e.startsWith('sent')), 'sent after the stall').to.deep.equal([]);
      expect(run.events[0]).to.equal('renewal answered: 0 of 1');
      expect(await run.delivered(callbacks[1]!)).to.equal(0);
      expect(await run.delivered(callbacks[2]!)).to.equal(0);
      expect((await run.store.outboxOf(topic)).map((e) => e.version), 'left for the new owner').to.deep.equal([1]);
      // Its first pass ended (a ping waiting on it is answered), the two dropped counted as not delivered.
      expect(run.report).to.deep.equal({ attempted: 3, delivered: 1, failed: 2 });
    } finally {
      await run.done();
    }
  });

  it('on the embedded store, whose claims nobody else can take, a stall past the lease holds nothing back', async () => {
    // Renewals that never answer: a send that waited for one would wait for good.
    const run = await stalledFanOut(false, () => new Promise<OutboxKey[]>(() => {}));
    try {
      expect(await until(async () => (await run.delivered(callbacks[2]!)) === 1), 'the last subscriber recorded').to.equal(true);
      for (const cb of callbacks) expect(await run.delivered(cb), cb).to.equal(1);
      expect(run.events.filter((e) => e.startsWith('renewal'))).to.deep.equal([]);
    } finally {
      await run.done();
    }
  });
});

describe('notifier: a version lost to another process and claimed back', () => {
  it("ends the lost fan-out's first pass when it takes the version back, so a ping or publish waiting on its report is answered", async () => {
    // The other process took the version over while a send of it was still under way here, then
    // gave the claim back (stopped with SIGTERM: releaseClaims) before that send ended; this
    // process's takeover claims it again and resumes it as a new job in the lost one's place.
    const LEASE_MS = 300;
    const topic = 'http://t.example/feed';
    const callbacks = ['http://cb.example/a', 'http://cb.example/b'];
    const { store, dir } = await claimsStore(true, topic, callbacks);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sent: string[] = [];
    const http = {
      request: async (_kind: string, url: string | URL) => {
        sent.push(String(url));
        if (String(url) === callbacks[0]) await held; // under way until released
        return { status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) } satisfies HttpResponse;
      },
    } as unknown as HttpClient;
    const messages: string[] = [];
    const log = createLogger('info', (line) => void messages.push((JSON.parse(line) as { msg: string }).msg));
    const config = loadConfig({ OUTBOX_CLAIM_LEASE_MS: String(LEASE_MS), DELIVERY_CONCURRENCY: '1' });
    const notifier = new Notifier({ config, http, store, log });
    try {
      await notifier.resume();
      const start = await notifier.stage({ topic, version: 1, body: Buffer.from('version 1'), contentType: 'text/plain' }, () =>
        store.putTopic({ ...newTopic(topic), version: 1 }),
      );
      let report: FanOutReport | undefined;
      void start().then((r) => (report = r));
      expect(await until(() => sent.includes(callbacks[0]!)), 'the send to a under way').to.equal(true);
      // Taken over and given back: the claim is nobody's, and the next renewal renews nothing.
      await store.releaseClaims(notifier.owner);
      expect(await until(() => messages.some((m) => m.startsWith('another process took over'))), 'the version lost here').to.equal(true);
      notifier.startClaims();
      expect(await until(() => messages.includes('took over deliveries whose claim expired')), 'the version claimed back').to.equal(true);
      release();
      expect(await until(async () => (await store.outboxOf(topic)).length === 0), 'the version delivered and removed').to.equal(true);
      for (const cb of callbacks) expect((await store.getSubscription(topic, cb))?.deliveredVersion, cb).to.equal(1);
      // Never resolved before: the lanes counted their first attempts into the new job.
      expect(await until(() => report !== undefined), 'the fan-out reported').to.equal(true);
      expect(report!.attempted).to.equal(2);
    } finally {
      release();
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('notifier: a version lost while its lane sleeps out a retry', () => {
  it("wakes the lane when the version is lost, so the subscriber's later versions go out then, not when the retry's wait ends", async () => {
    const LEASE_MS = 300;
    const topic = 'http://t.example/feed';
    const callback = 'http://cb.example/slow';
    const { store, dir } = await claimsStore(true, topic, [callback]);
    // Version 1's first attempt fails (a 503, retried after WEBSUB_RETRY_BASE_MS, a minute); every later one is taken.
    const sent: string[] = [];
    const http = {
      request: async (_kind: string, url: string | URL, opts: { body?: Buffer | string }) => {
        const body = String(opts.body ?? '');
        sent.push(body);
        const status = sent.length === 1 ? 503 : 200;
        return { status, headers: {}, body: Buffer.alloc(0), url: String(url) } satisfies HttpResponse;
      },
    } as unknown as HttpClient;
    const messages: string[] = [];
    const log = createLogger('info', (line) => void messages.push((JSON.parse(line) as { msg: string }).msg));
    const config = loadConfig({ OUTBOX_CLAIM_LEASE_MS: String(LEASE_MS), WEBSUB_RETRY_BASE_MS: '60000', DELIVERY_CONCURRENCY: '1' });
    const notifier = new Notifier({ config, http, store, log });
    const stage = async (version: number): Promise<void> => {
      const start = await notifier.stage({ topic, version, body: Buffer.from(`version ${version}`), contentType: 'text/plain' }, () =>
        store.putTopic({ ...newTopic(topic), version }),
      );
      void start();
    };
    try {
      await notifier.resume();
      await stage(1);
      expect(await until(() => sent.length === 1), 'version 1 tried, refused').to.equal(true);
      // Another process takes version 1 over (this one's claim given up: its next renewal renews
      // nothing) and delivers it: its subscription records it and the entry leaves the outbox.
      await store.releaseClaims(notifier.owner);
      expect(await until(() => messages.some((m) => m.startsWith('another process took over'))), 'version 1 lost here').to.equal(true);
      const sub = (await store.getSubscription(topic, callback))!;
      await store.putSubscription({ ...sub, deliveredVersion: 1 });
      await store.deleteOutbox(topic, 1);
      // Version 2, this process's own: sent once the lane moves on from the version it lost.
      await stage(2);
      expect(await until(() => sent.includes('version 2')), 'version 2 sent (before the minute of version 1\'s retry)').to.equal(true);
      expect(sent, 'version 1 is not sent again here').to.deep.equal(['version 1', 'version 2']);
    } finally {
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
