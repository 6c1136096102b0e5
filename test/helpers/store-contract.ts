// The store contract: what every Store must do, whichever store it is. test/store.test.ts runs
// it against the embedded lowdb store and against PostgreSQL; each store's own promises (the
// embedded store's journal and shards, the PostgreSQL schema) are tested beside it.
import { expect } from 'chai';
import { newTopic, type DeliveryTally, type OutboxEntry, type PendingVerification, type Protocol, type Site, type Subscription, type Topic } from '../../lib/model.js';
import type { Store, TopicSubscriptions } from '../../lib/store/store.js';

export function sub(topic: string, callback: string, extra: Partial<Subscription> = {}): Subscription {
  return {
    topic,
    callback,
    protocol: 'http-post',
    ctUpdates: 0,
    ctErrors: 0,
    ctConsecutiveErrors: 0,
    whenCreated: 1,
    whenLastUpdate: null,
    whenLastError: null,
    whenExpires: 2,
    ...extra,
  };
}

export function outbox(topic: string, version: number, createdAt = version): OutboxEntry {
  return { topic, version, contentType: 'application/rss+xml', createdAt };
}

export function verification(id: string, extra: Partial<PendingVerification> = {}): PendingVerification {
  return { id, mode: 'subscribe', topic: 'https://a.example/feed', callback: 'https://s.example/cb', createdAt: 1, ...extra };
}

/** Everything a Store holds, in a stable order, outbox bodies included. */
export async function fullState(store: Store): Promise<unknown> {
  const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  const outboxEntries = (await store.listOutbox()).sort(byKey((e) => `${e.topic} ${e.version}`));
  const bodies = await Promise.all(outboxEntries.map(async (e) => (await store.getOutboxBody(e.topic, e.version))?.toString('utf8')));
  return {
    topics: (await store.listTopics()).sort(byKey((t) => t.url)),
    subscriptions: (await store.listSubscriptions()).sort(byKey((s) => `${s.topic}\n${s.callback}`)),
    outbox: outboxEntries.map((e, i) => ({ ...e, body: bodies[i] })),
    verifications: (await store.listVerifications()).sort(byKey((v) => v.id)),
    pendingReads: await store.listPendingReads(),
    counts: await store.counts(),
  };
}

/** counts() and subscribedTopics() must agree with a full recount of the records. */
export async function expectCountsConsistent(store: Store): Promise<void> {
  const subs = await store.listSubscriptions();
  const byProtocol: Record<string, number> = {};
  const byTopic = new Map<string, number>();
  for (const s of subs) {
    byProtocol[s.protocol] = (byProtocol[s.protocol] ?? 0) + 1;
    byTopic.set(s.topic, (byTopic.get(s.topic) ?? 0) + 1);
  }
  expect(await store.counts()).to.deep.equal({ topics: (await store.listTopics()).length, subscriptions: subs.length, byProtocol });
  expect(sortedTopics(await store.subscribedTopics())).to.deep.equal(sortedTopics([...byTopic].map(([topic, subscriptions]) => ({ topic, subscriptions }))));
}

function sortedTopics(list: TopicSubscriptions[]): TopicSubscriptions[] {
  return [...list].sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0));
}

export function prng(seed: number): () => number {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n random writes of every kind over a few keys, issued in small concurrent groups. */
export async function randomOps(store: Store, seed: number, n: number, { clear = false } = {}): Promise<void> {
  const rnd = prng(seed);
  const int = (k: number): number => Math.floor(rnd() * k);
  const topics = Array.from({ length: 16 }, (_, i) => `https://t${i}.example/feed?id=${i}`);
  const callbacks = Array.from({ length: 12 }, (_, i) => `https://s${i}.example/hook?x=${i}`);
  const protocols: Protocol[] = ['http-post', 'https-post', 'xml-rpc', 'websub'];
  let group: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const topic = topics[int(topics.length)]!;
    const callback = callbacks[int(callbacks.length)]!;
    const protocol = protocols[int(protocols.length)]!;
    if (r < 0.35) {
      group.push(
        store.putSubscription(sub(topic, callback, { protocol, ctUpdates: i, ...(protocol === 'websub' ? { secret: `s3cr3t-${i}`, leaseSeconds: 86400 } : {}) })),
      );
    } else if (r < 0.5) group.push(store.deleteSubscription(topic, callback));
    else if (r < 0.55) group.push(store.putTopic({ ...newTopic(topic), version: i, etag: `"e${i}"`, ...(int(2) === 0 && { fingerprints: [`f${i}`, `f${int(i)}`] }) }));
    // A read that found no change: with the fingerprints it has, or with another list of them.
    else if (r < 0.6) group.push(store.getTopic(topic).then((t) => t && store.recordCheck({ ...t, ctChecks: t.ctChecks + 1, whenLastCheck: i, ...(int(3) === 0 && { fingerprints: [`g${i}`] }) })));
    else if (r < 0.64) group.push(store.deleteTopic(topic));
    else if (r < 0.74) group.push(store.putOutbox(outbox(topic, int(4), i), Buffer.from(`body ${i} of ${topic}`)));
    else if (r < 0.8) group.push(store.deleteOutbox(topic, int(4)));
    else if (r < 0.9) group.push(store.putVerification(verification(`v${int(20)}`, { topic, callback, secret: `k${i}`, createdAt: i })));
    else if (r < 0.985 || !clear) group.push(store.deleteVerification(`v${int(20)}`));
    else group.push(store.clear());
    if (group.length >= 1 + int(8)) {
      await Promise.all(group);
      group = [];
    }
  }
  await Promise.all(group);
}

/**
 * A place a store keeps its data (a directory, a database schema): `open` makes a new store
 * there and opens it; `destroy` removes the place once every store on it is closed.
 */
export interface StorePlace {
  open(): Promise<Store>;
  destroy(): Promise<void>;
}

/** The contract every Store keeps, run against the stores `newPlace` makes. */
export function describeStoreContract(name: string, newPlace: () => Promise<StorePlace>): void {
  describe(`store contract (${name})`, function () {
    let place: StorePlace | undefined;
    let store: Store;
    const reopen = async (): Promise<Store> => {
      await store.close();
      store = await place!.open();
      return store;
    };

    beforeEach(async () => {
      place = undefined;
      const made = await newPlace();
      try {
        store = await made.open();
      } catch (e) {
        await made.destroy();
        throw e;
      }
      place = made;
    });
    afterEach(async () => {
      if (!place) return; // newPlace failed: its error is the one to read
      await store.close();
      await place.destroy();
    });

    it('keys subscriptions by exact (topic, callback) and upserts', async () => {
      await store.putSubscription(sub('http://a/feed', 'http://s/1'));
      await store.putSubscription(sub('http://a/feed', 'http://s/1', { ctUpdates: 5 }));
      await store.putSubscription(sub('http://a/feed', 'http://s/1?x=1'));
      await store.putSubscription(sub('http://a/feed/', 'http://s/1'));
      expect(await store.subscriptionsOf('http://a/feed')).to.have.length(2);
      expect((await store.getSubscription('http://a/feed', 'http://s/1'))?.ctUpdates).to.equal(5);
      expect(await store.getSubscription('http://a/feed', 'http://s/2')).to.equal(undefined);
      expect((await store.counts()).subscriptions).to.equal(3);
    });

    it('gives a topic its subscribers in the order they first subscribed; a renewal keeps its place', async () => {
      for (const n of [3, 1, 2]) await store.putSubscription(sub('http://a/feed', `http://s/${n}`));
      await store.putSubscription(sub('http://a/feed', 'http://s/3', { whenExpires: 99 }));
      expect((await store.subscriptionsOf('http://a/feed')).map((s) => s.callback)).to.deep.equal(['http://s/3', 'http://s/1', 'http://s/2']);
    });

    it('keeps every field of every protocol, and leaves absent optional fields absent', async () => {
      const topics: Topic[] = [
        newTopic('https://a.example/bare'),
        {
          ...newTopic('https://a.example/full?x=1&y=%20'),
          lastHash: 'd41d8cd98f00b204e9800998ecf8427e',
          lastSize: 1234,
          ctChecks: 7,
          whenLastCheck: 1_700_000_000_123,
          ctUpdates: 3,
          whenLastUpdate: 1_700_000_000_000,
          etag: 'W/"abc"',
          lastModified: 'Tue, 14 Nov 2023 22:13:20 GMT',
          contentType: 'application/atom+xml; charset=utf-8',
          fingerprints: ['a', 'b', 'ç'],
          version: 42,
        },
        { ...newTopic('https://a.example/no-entries'), fingerprints: [] },
      ];
      const subs: Subscription[] = [
        sub('https://a.example/full?x=1&y=%20', 'http://s.example:8080/post?x=1', { protocol: 'http-post' }),
        sub('https://a.example/full?x=1&y=%20', 'https://s.example/post', { protocol: 'https-post', ctErrors: 2, ctConsecutiveErrors: 1, whenLastError: 5 }),
        sub('https://a.example/full?x=1&y=%20', 'http://s.example/RPC2', { protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', whenLastUpdate: 4 }),
        sub('https://a.example/full?x=1&y=%20', 'http://w.example/cb?id=é', {
          protocol: 'websub',
          secret: 'hmac key ✓',
          leaseSeconds: 864000,
          signatureAlgorithm: 'sha1',
          hubPath: '/',
          whenCreated: 1_700_000_000_000,
          whenExpires: 1_700_864_000_000,
          deliveredVersion: 41,
        }),
        sub('https://a.example/bare', 'http://s.example/RPC2', { protocol: 'xml-rpc', notifyProcedure: '' }),
      ];
      for (const t of topics) await store.putTopic(t);
      for (const s of subs) await store.putSubscription(s);
      const check = async (): Promise<void> => {
        for (const t of topics) expect(await store.getTopic(t.url)).to.deep.equal(t);
        for (const s of subs) expect(await store.getSubscription(s.topic, s.callback)).to.deep.equal(s);
        expect(await store.subscriptionsOf('https://a.example/full?x=1&y=%20')).to.deep.equal(subs.slice(0, 4));
        expect(await store.listTopics()).to.have.deep.members(topics);
        expect(await store.listSubscriptions()).to.have.deep.members(subs);
      };
      await check();
      await reopen();
      await check();
    });

    it('records a check that found no change: read back at once, kept by a close, in order with a later write', async () => {
      const t = { ...newTopic('http://a/checked'), lastHash: 'h', version: 3 };
      await store.putTopic(t);
      await store.recordCheck({ ...t, ctChecks: 1, whenLastCheck: 1000 });
      expect(await store.getTopic(t.url)).to.deep.include({ ctChecks: 1, whenLastCheck: 1000 });
      await store.recordCheck({ ...t, ctChecks: 2, whenLastCheck: 2000 });
      await store.putTopic({ ...t, ctChecks: 3, whenLastCheck: 3000, version: 4 });
      await store.recordCheck({ ...newTopic('http://a/checked-last'), ctChecks: 5 });
      await reopen();
      expect(await store.getTopic(t.url)).to.deep.include({ ctChecks: 3, whenLastCheck: 3000, version: 4 });
      expect(await store.getTopic('http://a/checked-last')).to.deep.include({ ctChecks: 5 });
    });

    it('records a check with the fingerprints it brings, the same ones or others, and keeps them across a reopen', async () => {
      const t = { ...newTopic('http://a/remembers'), lastHash: 'h', version: 2, fingerprints: ['a', 'b', 'c'] };
      await store.putTopic(t);
      await store.recordCheck({ ...t, ctChecks: 1, whenLastCheck: 1000, etag: '"e1"' });
      expect(await store.getTopic(t.url)).to.deep.equal({ ...t, ctChecks: 1, whenLastCheck: 1000, etag: '"e1"' });
      // Entries reordered and one remembered: a check that stores another list.
      await store.recordCheck({ ...t, ctChecks: 2, whenLastCheck: 2000, lastHash: 'h2', fingerprints: ['b', 'a', 'c', 'd'] });
      await store.recordCheck({ ...t, ctChecks: 3, whenLastCheck: 3000, lastHash: 'h2', fingerprints: ['b', 'a', 'c', 'd'], lastModified: 'Sat, 05 Dec 2026 14:00:00 GMT' });
      const expected = { ...t, ctChecks: 3, whenLastCheck: 3000, lastHash: 'h2', fingerprints: ['b', 'a', 'c', 'd'], lastModified: 'Sat, 05 Dec 2026 14:00:00 GMT' };
      expect(await store.getTopic(t.url)).to.deep.equal(expected);
      await reopen();
      expect(await store.getTopic(t.url)).to.deep.equal(expected);
    });

    it('takes URLs of any length and characters as keys', async () => {
      const long = (c: string): string => `https://${c}.example/${c.repeat(3000)}?q=${'ü'.repeat(500)}`;
      await store.putTopic(newTopic(long('t')));
      await store.putSubscription(sub(long('t'), long('c')));
      await store.putSubscription(sub(long('t'), `${long('c')}x`));
      await store.putOutbox(outbox(long('t'), 1), Buffer.from('long'));
      expect((await store.getTopic(long('t')))?.url).to.equal(long('t'));
      expect((await store.subscriptionsOf(long('t'))).map((s) => s.callback)).to.deep.equal([long('c'), `${long('c')}x`]);
      expect(await store.countSubscriptions({ callbackHost: 'c.example' })).to.equal(2);
      expect((await store.getOutboxBody(long('t'), 1))?.toString()).to.equal('long');
      expect(await store.deleteSubscription(long('t'), long('c'))).to.equal(true);
      await store.deleteTopic(long('t'));
      expect(await store.subscriptionsOf(long('t'))).to.deep.equal([]);
    });

    it('returns copies, so callers cannot change stored state by accident', async () => {
      await store.putTopic({ ...newTopic('http://a/feed'), fingerprints: ['x'] });
      const t = await store.getTopic('http://a/feed');
      t!.ctChecks = 99;
      expect(await store.getTopic('http://a/feed')).to.deep.equal({ ...newTopic('http://a/feed'), fingerprints: ['x'] });
      const s = sub('http://a/feed', 'http://s/1');
      await store.putSubscription(s);
      s.ctUpdates = 7;
      (await store.subscriptionsOf('http://a/feed'))[0]!.ctErrors = 9;
      expect(await store.getSubscription('http://a/feed', 'http://s/1')).to.deep.equal(sub('http://a/feed', 'http://s/1'));
      const v = verification('v1');
      await store.putVerification(v);
      v.topic = 'changed';
      (await store.listVerifications())[0]!.callback = 'changed';
      expect((await store.listVerifications())[0]).to.deep.equal(verification('v1'));
    });

    it('deletes a topic with its subscriptions, and clears everything', async () => {
      await store.putTopic(newTopic('http://a/feed'));
      await store.putSubscription(sub('http://a/feed', 'http://s/1'));
      await store.putSubscription(sub('http://b/feed', 'http://s/1'));
      await store.deleteTopic('http://a/feed');
      await store.deleteTopic('http://never/feed');
      expect(await store.getTopic('http://a/feed')).to.equal(undefined);
      expect(await store.subscriptionsOf('http://a/feed')).to.deep.equal([]);
      expect(await store.deleteSubscription('http://b/feed', 'http://s/1')).to.equal(true);
      expect(await store.deleteSubscription('http://b/feed', 'http://s/1')).to.equal(false);
      await store.putTopic(newTopic('http://c/feed'));
      await store.putSubscription(sub('http://c/feed', 'http://s/1'));
      await store.putVerification(verification('v1'));
      await store.putOutbox(outbox('http://c/feed', 1), Buffer.from('x'));
      await store.putSite(site('http://c/'));
      await store.clear();
      expect(await store.counts()).to.deep.equal({ topics: 0, subscriptions: 0, byProtocol: {} });
      expect(await store.listTopics()).to.deep.equal([]);
      expect(await store.listSubscriptions()).to.deep.equal([]);
      expect(await store.listVerifications()).to.deep.equal([]);
      expect(await store.listOutbox()).to.deep.equal([]);
      expect(await store.getOutboxBody('http://c/feed', 1)).to.equal(undefined);
      expect(await store.getSite('http://c/')).to.equal(undefined);
      await reopen();
      expect(await fullState(store)).to.deep.equal({ topics: [], subscriptions: [], outbox: [], verifications: [], pendingReads: [], counts: { topics: 0, subscriptions: 0, byProtocol: {} } });
    });

    it('counts topics and subscriptions by protocol, agreeing with the records', async () => {
      expect(await store.counts()).to.deep.equal({ topics: 0, subscriptions: 0, byProtocol: {} });
      await store.putSubscription(sub('http://a/feed', 'http://s/1'));
      await store.putSubscription(sub('http://a/feed', 'http://s/1', { protocol: 'websub' }));
      await store.putSubscription(sub('http://a/feed', 'http://s/2', { protocol: 'xml-rpc' }));
      await store.putSubscription(sub('http://b/feed', 'http://s/2', { protocol: 'xml-rpc' }));
      await store.putTopic(newTopic('http://a/feed'));
      expect(await store.counts()).to.deep.equal({ topics: 1, subscriptions: 3, byProtocol: { websub: 1, 'xml-rpc': 2 } });
      await store.deleteTopic('http://a/feed');
      expect(await store.counts()).to.deep.equal({ topics: 0, subscriptions: 1, byProtocol: { 'xml-rpc': 1 } });
    });

    it('counts the subscriptions of one topic and of one callback host (host:port, any case)', async () => {
      await store.putSubscription(sub('http://a/feed', 'http://Hooks.Example/1'));
      await store.putSubscription(sub('http://a/feed', 'http://user@hooks.example/2?x'));
      await store.putSubscription(sub('http://b/feed', 'http://hooks.example/3'));
      await store.putSubscription(sub('http://b/feed', 'http://hooks.example:8080/4'));
      await store.putSubscription(sub('http://b/feed', 'https://other.example/5'));
      expect(await store.countSubscriptions({ topic: 'http://a/feed' })).to.equal(2);
      expect(await store.countSubscriptions({ topic: 'http://b/feed' })).to.equal(3);
      expect(await store.countSubscriptions({ topic: 'http://c/feed' })).to.equal(0);
      expect(await store.countSubscriptions({ callbackHost: 'hooks.example' })).to.equal(3);
      expect(await store.countSubscriptions({ callbackHost: 'HOOKS.example:8080' })).to.equal(1);
      expect(await store.countSubscriptions({ callbackHost: 'nobody.example' })).to.equal(0);
      await store.deleteSubscription('http://a/feed', 'http://Hooks.Example/1');
      expect(await store.countSubscriptions({ callbackHost: 'hooks.example' })).to.equal(2);
    });

    it('counts one callback host however it is spelt: a root dot, an IPv4-mapped IPv6 address (lib/model.ts hostKey)', async () => {
      await store.putSubscription(sub('http://a/feed', 'http://hooks.example:8080/1'));
      await store.putSubscription(sub('http://a/feed', 'http://Hooks.Example.:8080/2'));
      await store.putSubscription(sub('http://a/feed', 'http://127.0.0.1:81/3'));
      await store.putSubscription(sub('http://a/feed', 'http://[::ffff:127.0.0.1]:81/4'));
      await store.putSubscription(sub('http://a/feed', 'http://[::FFFF:7F00:1]:81/5'));
      expect(await store.countSubscriptions({ callbackHost: 'hooks.example:8080' })).to.equal(2);
      expect(await store.countSubscriptions({ callbackHost: 'HOOKS.example.:8080' })).to.equal(2);
      expect(await store.countSubscriptions({ callbackHost: '127.0.0.1:81' })).to.equal(3);
      expect(await store.countSubscriptions({ callbackHost: '[::ffff:7f00:1]:81' })).to.equal(3);
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://hooks.example./3', { perTopic: 100, perCallbackHost: 2 })).to.equal(null);
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://hooks.example.:8080/3', { perTopic: 100, perCallbackHost: 2 })).to.equal('callbackHost');
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://[::ffff:127.0.0.1]:81/6', { perTopic: 100, perCallbackHost: 3 })).to.equal('callbackHost');
    });

    it('lists the topics that have subscriptions, with how many, from its counts', async () => {
      expect(await store.subscribedTopics()).to.deep.equal([]);
      await store.putTopic(newTopic('http://nobody/feed'));
      for (const cb of ['http://s/1', 'http://s/2']) await store.putSubscription(sub('http://a/feed', cb));
      for (const cb of ['http://s/1', 'http://s/2', 'http://s/3']) await store.putSubscription(sub('http://b/feed?x=1&y=é', cb, { protocol: 'websub' }));
      await store.putSubscription(sub('http://a/feed', 'http://s/1', { ctUpdates: 5 })); // a renewal: still two
      expect(sortedTopics(await store.subscribedTopics())).to.deep.equal([
        { topic: 'http://a/feed', subscriptions: 2 },
        { topic: 'http://b/feed?x=1&y=é', subscriptions: 3 },
      ]);
      await store.deleteSubscription('http://a/feed', 'http://s/1');
      await store.deleteSubscription('http://a/feed', 'http://s/2');
      expect(await store.subscribedTopics()).to.deep.equal([{ topic: 'http://b/feed?x=1&y=é', subscriptions: 3 }]);
      await store.deleteTopic('http://b/feed?x=1&y=é');
      expect(await store.subscribedTopics()).to.deep.equal([]);
    });

    it('puts a subscription within limits: a new one past its topic\'s or its callback host\'s limit is refused, a renewal never', async () => {
      const limits = { perTopic: 2, perCallbackHost: 3 };
      expect(await store.putSubscriptionWithinLimits(sub('http://a/feed', 'http://hooks.example/1'), limits)).to.equal(null);
      expect(await store.putSubscriptionWithinLimits(sub('http://a/feed', 'http://Hooks.Example/2'), limits)).to.equal(null);
      expect(await store.putSubscriptionWithinLimits(sub('http://a/feed', 'http://other.example/3'), limits)).to.equal('topic');
      // A renewal of a subscription already counted, on a full topic and a full host alike.
      expect(await store.putSubscriptionWithinLimits(sub('http://a/feed', 'http://hooks.example/1', { ctUpdates: 4 }), limits)).to.equal(null);
      expect((await store.getSubscription('http://a/feed', 'http://hooks.example/1'))?.ctUpdates).to.equal(4);
      expect(await store.putSubscriptionWithinLimits(sub('http://b/feed', 'http://hooks.example/3'), limits)).to.equal(null);
      expect(await store.putSubscriptionWithinLimits(sub('http://b/feed', 'http://hooks.example/4'), limits)).to.equal('callbackHost');
      expect(await store.putSubscriptionWithinLimits(sub('http://b/feed', 'http://hooks.example:8080/4'), limits)).to.equal(null);
      expect(await store.getSubscription('http://a/feed', 'http://other.example/3')).to.equal(undefined);
      expect(await store.getSubscription('http://b/feed', 'http://hooks.example/4')).to.equal(undefined);
      expect((await store.counts()).subscriptions).to.equal(4);
      // Concurrent puts: exactly as many as the limit.
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.putSubscriptionWithinLimits(sub('http://c/feed', `http://s${i}.example/`), limits)));
      expect(results.filter((r) => r === null)).to.have.length(2);
      expect(results.filter((r) => r === 'topic')).to.have.length(18);
      expect(await store.countSubscriptions({ topic: 'http://c/feed' })).to.equal(2);
      await reopen();
      expect(await store.countSubscriptions({ topic: 'http://c/feed' })).to.equal(2);
    });

    it('answers early which limit a new subscription would reach: none for an existing pair, the topic first, then the callback host', async () => {
      const limits = { perTopic: 2, perCallbackHost: 3 };
      expect(await store.subscriptionLimitReached('http://a/feed', 'http://hooks.example/1', limits)).to.equal(null);
      await store.putSubscription(sub('http://a/feed', 'http://hooks.example/1'));
      await store.putSubscription(sub('http://a/feed', 'http://Hooks.Example/2'));
      expect(await store.subscriptionLimitReached('http://a/feed', 'http://other.example/3', limits)).to.equal('topic');
      // Both full: the topic is named, as putSubscriptionWithinLimits names it.
      expect(await store.subscriptionLimitReached('http://a/feed', 'http://hooks.example/9', { perTopic: 2, perCallbackHost: 2 })).to.equal('topic');
      expect(await store.subscriptionLimitReached('http://a/feed', 'http://hooks.example/1', limits)).to.equal(null);
      await store.putSubscription(sub('http://b/feed', 'http://hooks.example/3'));
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://HOOKS.example/4', limits)).to.equal('callbackHost');
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://hooks.example/3', limits)).to.equal(null);
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://hooks.example:8080/4', limits)).to.equal(null);
      await store.deleteSubscription('http://a/feed', 'http://Hooks.Example/2');
      expect(await store.subscriptionLimitReached('http://a/feed', 'http://other.example/3', limits)).to.equal(null);
      expect(await store.subscriptionLimitReached('http://b/feed', 'http://hooks.example/4', limits)).to.equal(null);
    });

    it('deletes expired and exhausted subscriptions, at most `limit` a call, and nothing else', async () => {
      const now = 1_000_000;
      const filter = { now, maxConsecutiveErrors: 3, limit: 2 };
      const kept = [
        sub('http://a/feed', 'http://s/live', { whenExpires: now + 1 }),
        sub('http://a/feed', 'http://s/failing', { whenExpires: now + 1, ctConsecutiveErrors: 2 }),
        // WebSub retries and drops a notification; its subscription stays until its lease ends.
        sub('http://a/feed', 'http://s/websub-failing', { protocol: 'websub', whenExpires: now + 1, ctConsecutiveErrors: 9 }),
      ];
      const gone = [
        sub('http://a/feed', 'http://s/expired-now', { whenExpires: now }),
        sub('http://a/feed', 'http://s/websub-expired', { protocol: 'websub', whenExpires: now - 1 }),
        sub('http://b/feed', 'http://s/exhausted', { whenExpires: now + 1, ctConsecutiveErrors: 3 }),
        sub('http://b/feed', 'http://s/rpc-exhausted', { protocol: 'xml-rpc', notifyProcedure: 'x', whenExpires: now + 1, ctConsecutiveErrors: 4 }),
        sub('http://b/feed', 'http://s/both', { whenExpires: 5, ctConsecutiveErrors: 7 }),
      ];
      for (const s of [...kept, ...gone]) await store.putSubscription(s);
      const removed: number[] = [];
      for (let n = -1; n !== 0; ) removed.push((n = await store.deleteExpiredSubscriptions(filter)));
      expect(removed.slice(0, -1).every((n) => n >= 1 && n <= 2), `${removed.join(', ')}`).to.equal(true);
      expect(removed.reduce((a, b) => a + b, 0)).to.equal(gone.length);
      expect(await store.listSubscriptions()).to.have.deep.members(kept);
      expect((await store.counts()).subscriptions).to.equal(kept.length);
      await reopen();
      expect(await store.listSubscriptions()).to.have.deep.members(kept);
    });

    it('tells whether a topic has a subscription the expiry sweep would keep (the poller asks)', async () => {
      const now = 1_000_000;
      const filter = { now, maxConsecutiveErrors: 3 };
      const live = [
        sub('http://live/1', 'http://s/1', { whenExpires: now + 1 }),
        sub('http://live/2', 'http://s/1', { whenExpires: now + 1, ctConsecutiveErrors: 2 }),
        sub('http://live/3', 'http://s/1', { protocol: 'websub', whenExpires: now + 1, ctConsecutiveErrors: 9 }),
      ];
      const ended = [
        sub('http://ended/1', 'http://s/1', { whenExpires: now }),
        sub('http://ended/2', 'http://s/1', { protocol: 'websub', whenExpires: now - 1 }),
        sub('http://ended/3', 'http://s/1', { protocol: 'xml-rpc', notifyProcedure: 'x', whenExpires: now + 1, ctConsecutiveErrors: 3 }),
      ];
      for (const s of [...live, ...ended]) await store.putSubscription(s);
      // One live among ended ones.
      await store.putSubscription(sub('http://ended/1', 'http://s/2', { whenExpires: now + 1000 }));
      await store.deleteSubscription('http://ended/1', 'http://s/2');
      await store.putSubscription(sub('http://live/1', 'http://s/0', { whenExpires: 5 }));
      for (const s of live) expect(await store.hasLiveSubscription(s.topic, filter), s.topic).to.equal(true);
      for (const s of ended) expect(await store.hasLiveSubscription(s.topic, filter), s.topic).to.equal(false);
      expect(await store.hasLiveSubscription('http://nobody/feed', filter)).to.equal(false);
    });

    it('deletes topics last updated before a time that nobody follows, at most `limit` a call, and never a subscription', async () => {
      const before = 1_000_000;
      const at = (url: string, whenLastUpdate: number): Topic => ({ ...newTopic(url), whenLastUpdate, version: 3 });
      const gone = [at('http://a/old-1', 5), at('http://a/old-2', before - 1), at('http://a/old-3', 0)];
      const kept = [at('http://a/recent', before), at('http://a/followed', 5)];
      for (const t of [...gone, ...kept]) await store.putTopic(t);
      const follower = sub('http://a/followed', 'http://s/1');
      await store.putSubscription(follower);
      const removed: number[] = [];
      for (let n = -1; n !== 0; ) removed.push((n = await store.deleteStaleTopics(before, 2)));
      expect(removed).to.deep.equal([2, 1, 0]);
      expect(await store.listTopics()).to.have.deep.members(kept);
      expect(await store.listSubscriptions()).to.deep.equal([follower]);
      await reopen();
      expect(await store.listTopics()).to.have.deep.members(kept);
      expect(await store.listSubscriptions()).to.deep.equal([follower]);
    });

    it('trims the topics nobody follows to the `keep` read last, never one that is followed, across a reopen', async () => {
      const at = (url: string, whenLastCheck: number): Topic => ({ ...newTopic(url), whenLastCheck, version: 2 });
      // Written out of order: the order of reads decides, not the order of writes.
      const gone = [at('http://a/read-2', 2), at('http://a/read-1', 1), at('http://a/read-3', 3)];
      const kept = [at('http://a/read-5', 5), at('http://a/followed', 0), at('http://a/read-4', 4)];
      for (const t of [...gone, ...kept]) await store.putTopic(t);
      const follower = sub('http://a/followed', 'http://s/1');
      await store.putSubscription(follower);
      expect(await store.trimUnfollowedTopics(2)).to.equal(3);
      expect(await store.trimUnfollowedTopics(2)).to.equal(0);
      expect(await store.listTopics()).to.have.deep.members(kept);
      await reopen();
      expect(await store.listTopics()).to.have.deep.members(kept);
      expect(await store.listSubscriptions()).to.deep.equal([follower]);
      expect(await store.trimUnfollowedTopics(0)).to.equal(2);
      expect(await store.listTopics()).to.deep.equal([kept[1]]);
    });

    it('answers reads made together each with its own record, or none', async () => {
      for (let i = 0; i < 50; i++) await store.putSubscription(sub(`http://a/feed/${i % 5}`, `http://s/${i}`, { ctUpdates: i }));
      const asked = Array.from({ length: 120 }, (_, i) => ({ topic: `http://a/feed/${i % 5}`, callback: `http://s/${i % 60}` }));
      const got = await Promise.all(asked.map((k) => store.getSubscription(k.topic, k.callback)));
      got.forEach((s, i) => {
        const n = i % 60;
        // Subscriber n is on feed n % 5; asked on feed i % 5, which is the same feed when n < 50.
        if (n < 50 && n % 5 === i % 5) expect(s, `read ${i}`).to.deep.equal(sub(`http://a/feed/${n % 5}`, `http://s/${n}`, { ctUpdates: n }));
        else expect(s, `read ${i}`).to.equal(undefined);
      });
    });

    it('records delivery tallies as increments: a renewal written meanwhile keeps its fields, a gone subscription is skipped', async () => {
      const tally = (callback: string, extra: Partial<DeliveryTally>): DeliveryTally => ({
        topic: 'http://a/feed',
        callback,
        delivered: 0,
        failed: 0,
        limited: 0,
        failedSinceDelivered: 0,
        lastDeliveredAt: null,
        lastFailedAt: null,
        handledVersion: 0,
        ...extra,
      });
      await store.putSubscription(sub('http://a/feed', 'http://s/ok', { ctUpdates: 2, ctErrors: 1, ctConsecutiveErrors: 1, whenLastError: 5, deliveredVersion: 3 }));
      await store.putSubscription(sub('http://a/feed', 'http://s/failing', { ctUpdates: 4, ctConsecutiveErrors: 2, whenLastUpdate: 6, deliveredVersion: 7 }));
      await store.putSubscription(sub('http://a/feed', 'http://s/limited', { ctErrors: 1, ctConsecutiveErrors: 1 }));
      // A renewal after the deliveries were made, before they are recorded.
      await store.putSubscription(sub('http://a/feed', 'http://s/ok', { ctUpdates: 2, ctErrors: 1, ctConsecutiveErrors: 1, whenLastError: 5, deliveredVersion: 3, whenExpires: 999, secret: 'new' }));
      await store.recordDeliveries([
        tally('http://s/ok', { delivered: 2, failed: 1, failedSinceDelivered: 0, lastDeliveredAt: 40, lastFailedAt: 30, handledVersion: 5 }),
        tally('http://s/failing', { failed: 3, failedSinceDelivered: 3, lastFailedAt: 50, handledVersion: 6 }),
        // Two 429s and another failure: each an error, the 429s not toward ctConsecutiveErrors.
        tally('http://s/limited', { failed: 3, limited: 2, failedSinceDelivered: 1, lastFailedAt: 55, handledVersion: 2 }),
        tally('http://s/gone', { delivered: 1, lastDeliveredAt: 60, handledVersion: 9 }),
      ]);
      const check = async (): Promise<void> => {
        expect(await store.getSubscription('http://a/feed', 'http://s/ok')).to.deep.equal(
          sub('http://a/feed', 'http://s/ok', { ctUpdates: 4, ctErrors: 2, ctConsecutiveErrors: 0, whenLastUpdate: 40, whenLastError: 30, deliveredVersion: 5, whenExpires: 999, secret: 'new' }),
        );
        // Failures only: consecutive errors add up; an older handled version never lowers it.
        expect(await store.getSubscription('http://a/feed', 'http://s/failing')).to.deep.equal(
          sub('http://a/feed', 'http://s/failing', { ctUpdates: 4, ctErrors: 3, ctConsecutiveErrors: 5, whenLastUpdate: 6, whenLastError: 50, deliveredVersion: 7 }),
        );
        expect(await store.getSubscription('http://a/feed', 'http://s/limited')).to.deep.equal(
          sub('http://a/feed', 'http://s/limited', { ctErrors: 4, ctConsecutiveErrors: 2, whenLastError: 55, deliveredVersion: 2 }),
        );
        expect(await store.getSubscription('http://a/feed', 'http://s/gone')).to.equal(undefined);
        expect((await store.counts()).subscriptions).to.equal(3);
      };
      await check();
      await reopen();
      await check();
      await store.recordDeliveries([]);
    });

    it('keeps every acknowledged write across a reopen', async () => {
      await store.putTopic({ ...newTopic('http://a/feed'), version: 3, lastHash: 'abc' });
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.putSubscription(sub('http://a/feed', `http://s/${i}`))));
      await store.deleteSubscription('http://a/feed', 'http://s/7');
      await reopen();
      expect((await store.subscriptionsOf('http://a/feed')).length).to.equal(199);
      expect((await store.getTopic('http://a/feed'))?.version).to.equal(3);
    });

    it('flush() resolves once writes issued before it are done', async () => {
      const writes = Array.from({ length: 20 }, (_, i) => store.putSubscription(sub('http://a/feed', `http://s/${i}`)));
      await store.flush();
      expect(await store.countSubscriptions({ topic: 'http://a/feed' })).to.equal(20);
      await Promise.all(writes);
    });

    describe('outbox', () => {
      it('keeps an entry with its body (any bytes) until deleted, across a reopen', async () => {
        const body = Buffer.from([0, 1, 2, 250, 255, 0x5c, 0x27]);
        await store.putOutbox(outbox('https://a.example/feed', 7), body);
        expect(await store.getOutboxBody('https://a.example/feed', 7)).to.deep.equal(body);
        expect(await store.getOutboxBody('https://a.example/feed', 8)).to.equal(undefined);
        expect(await store.getOutboxBody('https://b.example/feed', 7)).to.equal(undefined);
        await reopen();
        expect(await store.listOutbox()).to.deep.equal([outbox('https://a.example/feed', 7)]);
        expect(await store.getOutboxBody('https://a.example/feed', 7)).to.deep.equal(body);
      });

      it("tells a body's size without reading it, small or large (a file of its own on the embedded store)", async () => {
        const large = Buffer.alloc(100_000, 0xab);
        await store.putOutbox(outbox('https://a.example/feed', 1), Buffer.from([0, 255, 7]));
        await store.putOutbox(outbox('https://a.example/feed', 2), large);
        await store.putOutbox(outbox('https://a.example/feed', 3), Buffer.alloc(0));
        for (const again of [false, true]) {
          if (again) await reopen();
          expect(await store.outboxBodySize('https://a.example/feed', 1)).to.equal(3);
          expect(await store.outboxBodySize('https://a.example/feed', 2)).to.equal(100_000);
          expect(await store.outboxBodySize('https://a.example/feed', 3)).to.equal(0);
          expect(await store.outboxBodySize('https://a.example/feed', 4)).to.equal(undefined);
        }
        await store.deleteOutbox('https://a.example/feed', 2);
        expect(await store.outboxBodySize('https://a.example/feed', 2)).to.equal(undefined);
      });

      it('replaces the entry and body of the same (topic, version)', async () => {
        await store.putOutbox(outbox('https://a.example/feed', 1), Buffer.from('first'));
        await store.putOutbox({ ...outbox('https://a.example/feed', 1), contentType: 'text/plain' }, Buffer.from('second'));
        expect(await store.listOutbox()).to.deep.equal([{ ...outbox('https://a.example/feed', 1), contentType: 'text/plain' }]);
        expect((await store.getOutboxBody('https://a.example/feed', 1))?.toString()).to.equal('second');
      });

      it('deletes one version (an absent one is a no-op), and lists oldest first', async () => {
        await store.putOutbox(outbox('https://b.example/feed', 3, 10), Buffer.from('b3'));
        await store.putOutbox(outbox('https://a.example/feed', 1, 20), Buffer.from('one'));
        await store.putOutbox(outbox('https://a.example/feed', 2, 20), Buffer.from('two'));
        await store.putOutbox(outbox('https://a.example/feed', 0, 5), Buffer.from('zero'));
        await store.deleteOutbox('https://a.example/feed', 0);
        await store.deleteOutbox('https://a.example/feed', 9);
        expect(await store.getOutboxBody('https://a.example/feed', 0)).to.equal(undefined);
        const expected = [outbox('https://b.example/feed', 3, 10), outbox('https://a.example/feed', 1, 20), outbox('https://a.example/feed', 2, 20)];
        expect(await store.listOutbox()).to.deep.equal(expected);
        await reopen();
        expect(await store.listOutbox()).to.deep.equal(expected);
        expect((await store.getOutboxBody('https://a.example/feed', 2))?.toString()).to.equal('two');
      });

      it('keeps the outbox when its topic is deleted (the notifier finishes or drops it)', async () => {
        await store.putTopic(newTopic('https://a.example/feed'));
        await store.putOutbox(outbox('https://a.example/feed', 1), Buffer.from('x'));
        await store.deleteTopic('https://a.example/feed');
        expect(await store.listOutbox()).to.deep.equal([outbox('https://a.example/feed', 1)]);
      });
    });

    describe('claims (several hub processes on one database)', () => {
      it('claims outbox entries nobody holds, one owner at a time; renews only its own; takes over expired ones', async () => {
        const t = 'https://a.example/feed';
        const later = Date.now() + 60_000;
        await store.putOutbox({ ...outbox(t, 1), claimedBy: 'A', claimedUntil: later }, Buffer.from('1'));
        await store.putOutbox(outbox(t, 2), Buffer.from('2'));
        await store.putOutbox({ ...outbox(t, 3), claimedBy: 'A', claimedUntil: Date.now() - 1 }, Buffer.from('3'));
        await store.putOutbox(outbox('https://b.example/feed', 4), Buffer.from('4'));
        expect((await store.claimOutbox('B', 60_000, 2)).map((e) => [e.version, e.claimedBy])).to.deep.equal([
          [2, 'B'],
          [3, 'B'],
        ]);
        expect((await store.claimOutbox('C', 60_000, 10)).map((e) => e.version)).to.deep.equal([4]);
        expect(await store.claimOutbox('D', 60_000, 10)).to.deep.equal([]);
        // Not C's: no effect, and nothing said renewed (the notifier then drops the version, see Notifier.renewed).
        expect(await store.renewOutboxClaims('C', -1000, [{ topic: t, version: 2 }])).to.deep.equal([]);
        expect((await store.outboxOf(t)).map((e) => [e.version, e.claimedBy])).to.deep.equal([
          [1, 'A'],
          [2, 'B'],
          [3, 'B'],
        ]);
        // Its own are said renewed, the others left out: 2 and 3 are B's, 1 is A's, 9 is no entry.
        const renewed = await store.renewOutboxClaims('B', 60_000, [
          { topic: t, version: 1 },
          { topic: t, version: 2 },
          { topic: t, version: 3 },
          { topic: t, version: 9 },
        ]);
        expect(renewed.map((k) => [k.topic, k.version]).sort()).to.deep.equal([
          [t, 2],
          [t, 3],
        ]);
        expect(await store.renewOutboxClaims('B', 60_000, [])).to.deep.equal([]);
        expect(await store.renewOutboxClaims('B', -1000, [{ topic: t, version: 2 }])).to.deep.equal([{ topic: t, version: 2 }]); // B's claim on 2 lapses
        expect((await store.claimOutbox('D', 60_000, 10)).map((e) => e.version)).to.deep.equal([2]);
        // Taken over: B's renewal of 2 renews nothing now, D's does.
        expect(await store.renewOutboxClaims('B', 60_000, [{ topic: t, version: 2 }])).to.deep.equal([]);
        expect(await store.renewOutboxClaims('D', 60_000, [{ topic: t, version: 2 }])).to.deep.equal([{ topic: t, version: 2 }]);
        // The listing and the bodies are as without claims.
        expect(await store.listOutbox()).to.deep.equal([outbox(t, 1), outbox(t, 2), outbox(t, 3), outbox('https://b.example/feed', 4)]);
        expect((await store.getOutboxBody(t, 3))?.toString()).to.equal('3');
        await store.deleteOutbox(t, 2);
        expect((await store.outboxOf(t)).map((e) => e.version)).to.deep.equal([1, 3]);
      });

      it('claims pending verifications the same way, and lists them without claims', async () => {
        const v2 = verification('v2', { callback: 'https://s.example/cb2', createdAt: 2 });
        await store.putVerification({ ...verification('v1'), claimedBy: 'A', claimedUntil: Date.now() + 60_000 });
        await store.putVerification(v2);
        expect((await store.claimVerifications('B', 60_000, 10)).map((v) => [v.id, v.claimedBy])).to.deep.equal([['v2', 'B']]);
        expect(await store.claimVerifications('C', 60_000, 10)).to.deep.equal([]);
        await store.renewVerificationClaims('B', -1000, ['v2']);
        expect((await store.claimVerifications('C', 60_000, 10)).map((v) => v.id)).to.deep.equal(['v2']);
        expect(await store.listVerifications()).to.deep.equal([verification('v1'), v2]);
      });

      it("releases every claim of one owner, on outbox entries and verifications, and no one else's", async () => {
        const t = 'https://a.example/feed';
        const later = Date.now() + 60_000;
        await store.putOutbox({ ...outbox(t, 1), claimedBy: 'A', claimedUntil: later }, Buffer.from('1'));
        await store.putOutbox({ ...outbox(t, 2), claimedBy: 'B', claimedUntil: later }, Buffer.from('2'));
        await store.putVerification({ ...verification('v1'), claimedBy: 'A', claimedUntil: later });
        await store.putVerification({ ...verification('v2', { callback: 'https://s.example/cb2', createdAt: 2 }), claimedBy: 'B', claimedUntil: later });
        expect(await store.claimOutbox('C', 60_000, 10)).to.deep.equal([]);
        expect(await store.claimVerifications('C', 60_000, 10)).to.deep.equal([]);
        await store.releaseClaims('A');
        expect((await store.claimOutbox('C', 60_000, 10)).map((e) => [e.version, e.claimedBy])).to.deep.equal([[1, 'C']]);
        expect((await store.claimVerifications('C', 60_000, 10)).map((v) => [v.id, v.claimedBy])).to.deep.equal([['v1', 'C']]);
        expect((await store.outboxOf(t)).map((e) => [e.version, e.claimedBy])).to.deep.equal([
          [1, 'C'],
          [2, 'B'],
        ]);
      });

      it('runs a function under a topic lock and gives back its result or error', async () => {
        expect(await store.withTopicLock('https://a.example/feed', async () => 42)).to.equal(42);
        let failed: unknown;
        await store.withTopicLock('https://a.example/feed', () => Promise.reject(new Error('no'))).catch((e: unknown) => (failed = e));
        expect((failed as Error).message).to.equal('no');
        expect(await store.withTopicLock('https://a.example/feed', async () => 'again')).to.equal('again');
      });

      it('runs the sweep under the sweep lock and gives back its result or error', async () => {
        expect(await store.withSweepLock(async () => 42)).to.equal(42);
        let failed: unknown;
        await store.withSweepLock(() => Promise.reject(new Error('no'))).catch((e: unknown) => (failed = e));
        expect((failed as Error).message).to.equal('no');
        expect(await store.withSweepLock(async () => 'again')).to.equal('again');
      });
    });

    describe('pending verifications', () => {
      it('puts, replaces, lists oldest first, deletes, and keeps them (secrets included) across a reopen', async () => {
        // Each of its own (topic, callback): a newer request supersedes the others of its pair (below).
        const v2 = verification('v2', { callback: 'https://s.example/cb2', createdAt: 2, secret: 'hmac-key', leaseSeconds: 3600, verifyToken: 't', signatureAlgorithm: 'sha1', hubPath: '/' });
        await store.putVerification(v2);
        await store.putVerification(verification('v1', { mode: 'unsubscribe', createdAt: 9 }));
        await store.putVerification(verification('v1', { mode: 'unsubscribe' }));
        await store.putVerification(verification('v3', { callback: 'https://s.example/cb3', createdAt: 3 }));
        await store.deleteVerification('v3');
        await store.deleteVerification('nope');
        const expected = [verification('v1', { mode: 'unsubscribe' }), v2];
        expect(await store.listVerifications()).to.deep.equal(expected);
        expect([await store.hasVerification('v1'), await store.hasVerification('v2'), await store.hasVerification('v3')]).to.deep.equal([true, true, false]);
        await reopen();
        expect(await store.listVerifications()).to.deep.equal(expected);
      });

      it('a verified request\'s subscription is written only while the request is pending', async () => {
        const limits = { perTopic: 10, perCallbackHost: 10 };
        const v = verification('pending-one');
        await store.putVerification(v);
        const written = sub(v.topic, v.callback, { protocol: 'websub' });
        expect(await store.putVerifiedSubscription(written, limits, 'pending-one')).to.equal(null);
        expect((await store.getSubscription(v.topic, v.callback))?.protocol).to.equal('websub');
        const other = sub(v.topic, 'https://s.example/overridden', { protocol: 'websub' });
        expect(await store.putVerifiedSubscription(other, limits, 'gone')).to.equal('superseded');
        expect(await store.getSubscription(v.topic, other.callback)).to.equal(undefined);
      });

      it('a verified request withdraws the older pending ones of its (topic, callback), claims included, and nothing newer; a reopen keeps that', async () => {
        const sameTopic = verification('t', { callback: 'https://s.example/other', createdAt: 1 });
        const sameCallback = verification('c', { topic: 'https://b.example/feed', createdAt: 1 });
        const older = verification('older', { mode: 'unsubscribe', createdAt: 0 });
        const tie = verification('a-tie', { createdAt: 2 }); // same millisecond, an id that sorts first
        const me = verification('me', { createdAt: 2, secret: 's', leaseSeconds: 3600 });
        const newer = verification('newer', { mode: 'unsubscribe', createdAt: 3 });
        for (const v of [sameTopic, sameCallback, newer, me, tie]) await store.putVerification(v);
        await store.putVerification({ ...older, claimedBy: 'A', claimedUntil: Date.now() + 60_000 });
        // Accepting requests withdraws nothing: an unverified one may be anybody's.
        expect((await store.listVerifications()).map((v) => v.id)).to.deep.equal(['older', 'c', 't', 'a-tie', 'me', 'newer']);
        expect(await store.supersedeOlderVerifications(me)).to.equal(true);
        const left = [sameCallback, sameTopic, me, newer];
        expect(await store.listVerifications()).to.deep.equal(left);
        expect([await store.hasVerification('older'), await store.hasVerification('a-tie')]).to.deep.equal([false, false]);
        // The withdrawn one's claim went with it: only those left are there to claim.
        expect((await store.claimVerifications('B', 60_000, 10)).map((v) => v.id).sort()).to.deep.equal(['c', 'me', 'newer', 't']);
        // The newer one, verified in turn, withdraws `me`, which then learns it was overridden.
        expect(await store.supersedeOlderVerifications(newer)).to.equal(true);
        expect(await store.supersedeOlderVerifications(me)).to.equal(false);
        await reopen();
        expect(await store.listVerifications()).to.deep.equal([sameCallback, sameTopic, newer]);
      });
    });

    describe('pending reads (a publish acknowledged before its read finished)', () => {
      const followed = 'https://f.example/feed';
      const alsoFollowed = 'https://g.example/atom?id=1';
      const nobodys = 'https://nobody.example/feed';

      it('records only topics somebody follows, of any protocol, in one call; keeps the later since; lists oldest first, across a reopen', async () => {
        await store.putSubscription(sub(followed, 'https://s.example/cb', { protocol: 'websub' }));
        await store.putSubscription(sub(alsoFollowed, 'http://r.example/notify'));
        await store.putTopic(newTopic(nobodys));
        const recorded = await store.putPendingReads([nobodys, alsoFollowed, followed, alsoFollowed], 200);
        expect([...recorded].sort()).to.deep.equal([followed, alsoFollowed].sort());
        expect(await store.putPendingReads([followed], 100)).to.deep.equal([followed]);
        expect(await store.putPendingReads([], 300)).to.deep.equal([]);
        // Oldest first, then by URL.
        expect(await store.listPendingReads()).to.deep.equal([
          { topic: followed, since: 200 },
          { topic: alsoFollowed, since: 200 },
        ]);
        await store.putPendingReads([followed], 250);
        await reopen();
        expect(await store.listPendingReads()).to.deep.equal([
          { topic: alsoFollowed, since: 200 },
          { topic: followed, since: 250 },
        ]);
      });

      it('deletes a record only for a read begun at or after its since (a publish during a read keeps its record); a clear removes them', async () => {
        await store.putSubscription(sub(followed, 'https://s.example/cb', { protocol: 'websub' }));
        await store.putSubscription(sub(alsoFollowed, 'https://s.example/cb', { protocol: 'websub' }));
        await store.putPendingReads([followed, alsoFollowed], 100);
        // A read that began at 50 finishes after a publish at 100: the record stays.
        await store.deletePendingRead(followed, 50);
        await store.deletePendingRead(nobodys, 1000);
        expect((await store.listPendingReads()).map((r) => r.topic).sort()).to.deep.equal([followed, alsoFollowed].sort());
        // A publish at 150 while the read queued at 100 runs: that read's end leaves it.
        await store.putPendingReads([followed], 150);
        await store.deletePendingRead(followed, 100);
        expect(await store.listPendingReads()).to.deep.equal([{ topic: alsoFollowed, since: 100 }, { topic: followed, since: 150 }]);
        await store.deletePendingRead(followed, 150);
        await reopen();
        expect(await store.listPendingReads()).to.deep.equal([{ topic: alsoFollowed, since: 100 }]);
        await store.clear();
        expect(await store.listPendingReads()).to.deep.equal([]);
      });
    });

    describe('sites', () => {
      it('puts, replaces and gets a site by exact URL, as copies, across a reopen', async () => {
        expect(await store.getSite('https://blog.example/')).to.equal(undefined);
        const s = site('https://blog.example/', { self: 'https://blog.example/self' });
        await store.putSite(s);
        s.feeds.push('mutated');
        const got = await store.getSite('https://blog.example/');
        expect(got).to.deep.equal(site('https://blog.example/', { self: 'https://blog.example/self' }));
        got!.hubs.push('mutated');
        await store.putSite(site('https://blog.example/', { feeds: [], whenChecked: 9 }));
        await reopen();
        expect(await store.getSite('https://blog.example/')).to.deep.equal(site('https://blog.example/', { feeds: [], whenChecked: 9 }));
        expect(await store.getSite('https://blog.example')).to.equal(undefined);
      });

      it('deletes sites last read before a time, at most `limit` a call, across a reopen', async () => {
        for (let i = 0; i < 5; i++) await store.putSite(site(`https://old${i}.example/`, { whenChecked: 100 + i }));
        await store.putSite(site('https://edge.example/', { whenChecked: 200 }));
        await store.putSite(site('https://new.example/', { whenChecked: 300 }));
        expect(await store.deleteStaleSites(200, 3)).to.equal(3);
        expect(await store.deleteStaleSites(200, 3)).to.equal(2);
        expect(await store.deleteStaleSites(200, 3)).to.equal(0);
        await reopen();
        for (let i = 0; i < 5; i++) expect(await store.getSite(`https://old${i}.example/`)).to.equal(undefined);
        expect((await store.getSite('https://edge.example/'))?.whenChecked).to.equal(200);
        expect((await store.getSite('https://new.example/'))?.whenChecked).to.equal(300);
      });

      it('trims the sites to the `keep` whose page was read last, across a reopen', async () => {
        for (const [i, whenChecked] of [30, 10, 50, 20, 40].entries()) await store.putSite(site(`https://s${i}.example/`, { whenChecked }));
        expect(await store.trimSites(2)).to.equal(3);
        expect(await store.trimSites(2)).to.equal(0);
        await reopen();
        const left = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await store.getSite(`https://s${i}.example/`))?.whenChecked));
        expect(left).to.deep.equal([undefined, undefined, 50, undefined, 40]);
      });
    });

    it('gives back exactly the same state after random concurrent writes and a reopen', async () => {
      await randomOps(store, 42, 600, { clear: true });
      await expectCountsConsistent(store);
      const expected = await fullState(store);
      await reopen();
      expect(await fullState(store)).to.deep.equal(expected);
      await expectCountsConsistent(store);
    });
  });
}

export function site(url: string, extra: Partial<Site> = {}): Site {
  return { url, feeds: [`${url}feed.xml`, `${url}atom.xml`], hubs: ['https://hub.example/'], whenChecked: 1, whenCreated: 1, ...extra };
}
