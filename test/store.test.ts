// The store contract: what every Store must do, run against the embedded lowdb store, plus the
// embedded store's own durability promises (group commit, replay, torn journal lines).
import { expect } from 'chai';
import { appendFile, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { newTopic, type Subscription } from '../lib/model.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import type { Store } from '../lib/store/store.js';
import { tempDataDir } from './helpers/hub.js';

function sub(topic: string, callback: string, extra: Partial<Subscription> = {}): Subscription {
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

describe('store contract (lowdb)', () => {
  let dir: string;
  let store: Store;
  const reopen = async (): Promise<Store> => {
    await store.close();
    store = new LowdbStore({ dir });
    await store.open();
    return store;
  };

  beforeEach(async () => {
    dir = await tempDataDir();
    store = new LowdbStore({ dir });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keys subscriptions by exact (topic, callback) and upserts', async () => {
    await store.putSubscription(sub('http://a/feed', 'http://s/1'));
    await store.putSubscription(sub('http://a/feed', 'http://s/1', { ctUpdates: 5 }));
    await store.putSubscription(sub('http://a/feed', 'http://s/1?x=1'));
    await store.putSubscription(sub('http://a/feed/', 'http://s/1'));
    expect(await store.subscriptionsOf('http://a/feed')).to.have.length(2);
    expect((await store.getSubscription('http://a/feed', 'http://s/1'))?.ctUpdates).to.equal(5);
    expect((await store.counts()).subscriptions).to.equal(3);
  });

  it('returns copies, so callers cannot change stored state by accident', async () => {
    await store.putTopic(newTopic('http://a/feed'));
    const t = await store.getTopic('http://a/feed');
    t!.ctChecks = 99;
    expect((await store.getTopic('http://a/feed'))?.ctChecks).to.equal(0);
  });

  it('deletes a topic with its subscriptions, and clears everything', async () => {
    await store.putTopic(newTopic('http://a/feed'));
    await store.putSubscription(sub('http://a/feed', 'http://s/1'));
    await store.putSubscription(sub('http://b/feed', 'http://s/1'));
    await store.deleteTopic('http://a/feed');
    expect(await store.getTopic('http://a/feed')).to.equal(undefined);
    expect(await store.subscriptionsOf('http://a/feed')).to.deep.equal([]);
    expect(await store.deleteSubscription('http://b/feed', 'http://s/1')).to.equal(true);
    expect(await store.deleteSubscription('http://b/feed', 'http://s/1')).to.equal(false);
    await store.putSubscription(sub('http://c/feed', 'http://s/1'));
    await store.clear();
    expect(await store.counts()).to.deep.equal({ topics: 0, subscriptions: 0, byProtocol: {} });
  });

  it('keeps every acknowledged write across a reopen', async () => {
    await store.putTopic({ ...newTopic('http://a/feed'), version: 3, lastHash: 'abc' });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.putSubscription(sub('http://a/feed', `http://s/${i}`))));
    await store.deleteSubscription('http://a/feed', 'http://s/7');
    await reopen();
    expect((await store.subscriptionsOf('http://a/feed')).length).to.equal(199);
    expect((await store.getTopic('http://a/feed'))?.version).to.equal(3);
  });

  it('shares one journal append among writes that arrive together (group commit)', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.putSubscription(sub('http://a/feed', `http://s/${i}`))));
    const journal = await readFile(path.join(dir, 'journal.ndjson'), 'utf8');
    expect(journal.trim().split('\n')).to.have.length(50);
    // Each write is durable on its own line; nothing rewrote the snapshot per request.
    const snapshot = JSON.parse(await readFile(path.join(dir, 'snapshot.json'), 'utf8')) as { subscriptions: unknown[] };
    expect(snapshot.subscriptions).to.have.length(0);
  });

  it('ignores a torn last journal line left by a crash mid-append', async () => {
    await store.putSubscription(sub('http://a/feed', 'http://s/1'));
    await store.flush();
    await appendFile(path.join(dir, 'journal.ndjson'), '{"op":"putSub","sub":{"topic":"http://a/fe');
    await reopen();
    expect(await store.subscriptionsOf('http://a/feed')).to.have.length(1);
  });

  it('compacts the journal into the snapshot once it grows past the threshold', async () => {
    await store.close();
    store = new LowdbStore({ dir, compactAfterBytes: 2000 });
    await store.open();
    for (let i = 0; i < 40; i++) await store.putSubscription(sub('http://a/feed', `http://s/${i}`));
    const journal = await readFile(path.join(dir, 'journal.ndjson'), 'utf8');
    expect(Buffer.byteLength(journal)).to.be.lessThan(4000);
    await reopen();
    expect(await store.subscriptionsOf('http://a/feed')).to.have.length(40);
  });
});
