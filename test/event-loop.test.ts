// Work that grows with the hub's size yields to the event loop between chunks: one JavaScript
// thread serves every protocol, and a synchronous pass over 100,000 of anything answers nothing
// else meanwhile (not even /healthz). Proven by what a turn of the event loop sees while the
// work is under way, never by timing it.
import { expect } from 'chai';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../lib/config.js';
import { Hub } from '../lib/hub.js';
import type { HttpClient, HttpResponse } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import { newSubscription, newTopic } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import { Operator } from '../lib/operator.js';
import type { Poller } from '../lib/feeds/poller.js';
import type { ActivityLog } from '../lib/activity.js';
import type { StreamHub } from '../lib/stream.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { shardFileName, shardOf, type ShardFile } from '../lib/store/snapshot-file.js';
import { escapeXml } from '../lib/xml-escape.js';
import type { IntentAnswer, Verifier } from '../lib/verify.js';
import { tempDataDir } from './helpers/hub.js';

/** An embedded store in a directory of its own; `remove` closes it and deletes the directory. */
async function freshStore(): Promise<{ store: LowdbStore; dir: string; remove: () => Promise<void> }> {
  const dir = await tempDataDir();
  const store = new LowdbStore({ dir });
  await store.open();
  return { store, dir, remove: () => store.close().then(() => rm(dir, { recursive: true, force: true })) };
}

/** `work`'s result, and what `see` returned at each turn of the event loop while it ran. */
async function turnsWhile<T, S>(work: () => Promise<T>, see: () => S): Promise<{ result: T; turns: S[] }> {
  const turns: S[] = [];
  let done = false;
  const sample = (): void => {
    if (done) return;
    turns.push(see());
    setImmediate(sample);
  };
  setImmediate(sample);
  try {
    return { result: await work(), turns };
  } finally {
    done = true;
  }
}

describe('work at scale yields to the event loop', () => {
  it('a fan-out resumed after a restart is queued in chunks: the event loop turns while its first subscribers are queued and the rest are not', async () => {
    const { store, remove } = await freshStore();
    const topic = 'http://t.example/feed';
    const subscribers = 10_000;
    await store.putTopic({ ...newTopic(topic), version: 1 });
    const expires = Date.now() + 3600_000;
    await Promise.all(
      Array.from({ length: subscribers }, (_, i) => store.putSubscription({ ...newSubscription(topic, `http://cb${i % 50}.example/s/${i}`, 'http-post', 0, expires), deliveredVersion: 0 })),
    );
    // Version 1 in the outbox, owed to every subscriber, as a hub killed mid fan-out leaves it.
    await store.putOutbox({ topic, version: 1, contentType: 'text/plain', createdAt: 1 }, Buffer.from('version 1'));
    // Subscribers that answer only once the test is done: every lane stays queued meanwhile.
    const answers: (() => void)[] = [];
    const http = {
      request: (_kind: string, url: string | URL) =>
        new Promise<HttpResponse>((resolve) => answers.push(() => resolve({ status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) }))),
    } as unknown as HttpClient;
    const notifier = new Notifier({ config: loadConfig({}), http, store, log: silentLogger });
    try {
      // Everything resume() reads is in memory: without a yield it runs to its end before the first turn.
      const { result: resumed, turns } = await turnsWhile(() => notifier.resume(), () => notifier.queueDepth);
      expect(resumed).to.equal(subscribers);
      expect(turns.filter((queued) => queued > 0 && queued < subscribers), 'turns while some subscribers were queued and the rest were not').to.not.be.empty;
      expect(notifier.queueDepth, 'every subscriber queued in the end').to.equal(subscribers);
    } finally {
      notifier.close();
      for (const answer of answers.splice(0)) answer();
      await notifier.drained();
      await remove();
    }
  });

  it('a publish to a topic of 10,000 is queued in chunks and its outbox entry goes only once every subscriber had it, even when the first chunk is done before the next is queued (its subscribers gone)', async () => {
    const { store, remove } = await freshStore();
    const topic = 'http://t.example/feed';
    const subscribers = 10_000;
    await store.putTopic({ ...newTopic(topic), version: 1 });
    const expires = Date.now() + 3600_000;
    await Promise.all(
      Array.from({ length: subscribers }, (_, i) => store.putSubscription({ ...newSubscription(topic, `http://cb${i}.example/s`, 'http-post', 0, expires), deliveredVersion: 1 })),
    );
    // Every subscriber answers at once: a chunk's deliveries can all end before the next is queued.
    let sent = 0;
    const http = {
      request: async (_kind: string, url: string | URL): Promise<HttpResponse> => {
        sent++;
        return { status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) };
      },
    } as unknown as HttpClient;
    const sentAtDelete: number[] = [];
    const deleteOutbox = store.deleteOutbox.bind(store);
    store.deleteOutbox = (t: string, v: number) => {
      sentAtDelete.push(sent);
      return deleteOutbox(t, v);
    };
    const notifier = new Notifier({ config: loadConfig({}), http, store, log: silentLogger });
    try {
      const start = await notifier.stage({ topic, version: 2, contentType: 'text/plain', body: Buffer.from('version 2') }, async () => {});
      // The first chunk's subscribers gone since: their lanes end without a request, at once.
      const gone = 2_000;
      await Promise.all(Array.from({ length: gone }, (_, i) => store.deleteSubscription(topic, `http://cb${i}.example/s`)));
      const { result: report, turns } = await turnsWhile(start, () => notifier.queueDepth + sent);
      expect(report).to.include({ attempted: subscribers, delivered: subscribers - gone });
      expect(turns.filter((seen) => seen < subscribers - gone), 'turns before every subscriber was queued').to.not.be.empty;
      await notifier.drained();
      expect(sentAtDelete, 'deliveries made when the outbox entry was removed').to.deep.equal([subscribers - gone]);
      expect(await store.getOutboxBody(topic, 2)).to.equal(undefined);
    } finally {
      notifier.close();
      await notifier.drained();
      await remove();
    }
  });

  it("the embedded store copies a topic's subscriptions a slice at a time, each once, however they are written meanwhile", async () => {
    const { store, remove } = await freshStore();
    const topic = 'http://t.example/feed';
    const subscribers = 12_000;
    const expires = Date.now() + 3600_000;
    const sub = (i: number) => newSubscription(topic, `http://cb${i}.example/s`, 'http-post', 0, expires);
    await Promise.all(Array.from({ length: subscribers }, (_, i) => store.putSubscription(sub(i))));
    try {
      let copied = false;
      let turns = 0;
      // At the first turn: the first subscription written again, after every other.
      setImmediate(() => {
        if (!copied) turns++;
        void store.deleteSubscription(topic, sub(0).callback).then(() => store.putSubscription(sub(0)));
      });
      const subs = await store.subscriptionsOf(topic);
      copied = true;
      expect(turns, 'turns of the event loop while copying').to.equal(1);
      expect(subs).to.have.length(subscribers);
      expect(new Set(subs.map((s) => s.callback)).size).to.equal(subscribers);
    } finally {
      await remove();
    }
  });

  it('verifications resumed after a restart are started in chunks: the event loop turns while some have asked their subscriber and the rest have not', async () => {
    const { store, remove } = await freshStore();
    const pending = 5_000;
    // Accepted (202) and not yet verified when the hub stopped.
    await Promise.all(
      Array.from({ length: pending }, (_, i) =>
        store.putVerification({ id: `v${i}`, mode: 'unsubscribe', topic: `http://t${i % 50}.example/feed`, callback: `http://cb${i % 50}.example/s/${i}`, createdAt: 1 }),
      ),
    );
    // Subscribers that answer only once the test is done.
    const answers: (() => void)[] = [];
    const verifier = {
      webSubIntent: () => new Promise<IntentAnswer>((resolve) => answers.push(() => resolve('unreachable'))),
      webSubDenied: async () => {},
      close: () => {},
    } as unknown as Verifier;
    const http = {} as HttpClient;
    const config = loadConfig({});
    const notifier = new Notifier({ config, http, store, log: silentLogger });
    const hub = new Hub({ config, store, http, notifier, verifier, log: silentLogger });
    try {
      let resumed = false;
      let atTurn: { resumed: boolean; asked: number } | undefined;
      // Everything resume() reads is in memory: without a yield it runs to its end before this.
      setImmediate(() => (atTurn = { resumed, asked: answers.length }));
      await hub.resume();
      resumed = true;
      expect(atTurn, 'the event loop turned before resume() finished').to.not.equal(undefined);
      expect(atTurn!.resumed, 'resume() still starting verifications when the event loop turned').to.equal(false);
      expect(atTurn!.asked, 'subscribers asked before the turn').to.be.greaterThan(0).and.lessThan(pending);
      for (let i = 0; i < 100 && answers.length < pending; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(answers.length, 'every subscriber asked in the end').to.equal(pending);
    } finally {
      hub.close();
      notifier.close();
      for (const answer of answers.splice(0)) answer();
      await hub.idle();
      await notifier.drained();
      await remove();
    }
  });

  it('/feeds.opml of 12,000 topics is written a slice of outlines at a time, byte for byte the document, and requests meanwhile share the build', async () => {
    const { store, remove } = await freshStore();
    const topics = 12_000;
    const expires = Date.now() + 3600_000;
    // Unsorted, and with what must be escaped.
    const url = (i: number) => `http://t${(i * 7919) % topics}.example/feed?a=1&b=<${i}>`;
    await Promise.all(Array.from({ length: topics }, (_, i) => store.putSubscription(newSubscription(url(i), `http://cb.example/s/${i}`, 'http-post', 0, expires))));
    const now = Date.UTC(2026, 0, 2, 3, 4, 5);
    const operator = new Operator({
      store,
      notifier: {} as Notifier,
      activity: {} as ActivityLog,
      poller: {} as Poller,
      streams: {} as StreamHub,
      signatureAlgorithm: 'sha256',
      now: () => now,
    });
    try {
      let second: Promise<Buffer[]> | undefined;
      // At the first turn, another request for it.
      const { result: parts, turns } = await turnsWhile(
        () => operator.opml('Feeds & more'),
        () => (second ??= operator.opml('Feeds & more')),
      );
      expect(turns, 'turns of the event loop while the OPML was written').to.not.be.empty;
      expect(await second, 'the request made meanwhile').to.equal(parts);
      const outlines = Array.from({ length: topics }, (_, i) => url(i))
        .sort()
        .map((u) => `    <outline type="rss" text="${escapeXml(u)}" xmlUrl="${escapeXml(u)}"/>`);
      const expected = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        '  <head><title>Feeds &amp; more</title><dateCreated>Fri, 02 Jan 2026 03:04:05 GMT</dateCreated></head>',
        '  <body>',
        ...outlines,
        '  </body>',
        '</opml>',
        '',
      ].join('\n');
      expect(Buffer.concat(parts).toString('utf8')).to.equal(expected);
    } finally {
      await remove();
    }
  });

  it("a compaction writes a topic of 12,000 subscribers' shard a slice of records at a time, and what it writes opens to the state as it was at the end", async () => {
    const { store, dir, remove } = await freshStore();
    const topic = 'http://t.example/feed';
    const subscribers = 12_000;
    const expires = Date.now() + 3600_000;
    const callback = (i: number) => `http://cb${i}.example/s`;
    for (let i = 0; i < subscribers; i++) void store.putSubscription(newSubscription(topic, callback(i), 'http-post', 0, expires));
    await store.flush();
    const tally = (i: number) => ({ topic, callback: callback(i), delivered: 1, failed: 0, limited: 0, failedSinceDelivered: 0, lastDeliveredAt: null, lastFailedAt: null, handledVersion: 0 });
    let reopened: LowdbStore | undefined;
    try {
      // At every turn, a delivery each to the first and the last of the shard's subscriptions: in
      // one synchronous pass, the file holds both with the same count.
      // And each turn one subscription near the front is removed: every other one must still
      // be in the file, however the records shift while it is written.
      let removed = 0;
      const { turns } = await turnsWhile(
        () => store.compact(),
        () => Promise.all([store.recordDeliveries([tally(0), tally(subscribers - 1)]), store.deleteSubscription(topic, callback(1 + removed++))]).then(() => undefined),
      );
      await Promise.all(turns);
      const shard = JSON.parse(await readFile(path.join(dir, shardFileName(shardOf(topic))), 'utf8')) as ShardFile;
      // As the shard was when its writing began (a removal or two may come before that, none after).
      expect(removed, 'turns with a removal').to.be.above(2);
      expect(shard.subscriptions.length).to.be.above(subscribers - removed);
      const [first, last] = [shard.subscriptions[0]!, shard.subscriptions.at(-1)!];
      expect([first.callback, last.callback]).to.deep.equal([callback(0), callback(subscribers - 1)]);
      expect(last.ctUpdates, 'deliveries in the file to the last subscription, written turns after the first').to.be.greaterThan(first.ctUpdates);
      // The deliveries after the rotation are in the journal, and set both counts again on open.
      await store.close();
      reopened = new LowdbStore({ dir });
      await reopened.open();
      expect((await reopened.counts()).subscriptions).to.equal(subscribers - removed);
      const kept = new Set((await reopened.subscriptionsOf(topic)).map((s) => s.callback));
      for (let i = 1 + removed; i < subscribers; i++) expect(kept.has(callback(i)), callback(i)).to.equal(true);
      expect((await reopened.getSubscription(topic, callback(0)))?.ctUpdates).to.equal(turns.length);
      expect((await reopened.getSubscription(topic, callback(subscribers - 1)))?.ctUpdates).to.equal(turns.length);
    } finally {
      await reopened?.close();
      await remove();
    }
  });

  it("the hub's sweep (at every start and every day) takes each of its passes over the embedded store on a turn of its own, though it has nothing to delete", async () => {
    const { store, remove } = await freshStore();
    const expires = Date.now() + 3600_000;
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => store.putSubscription(newSubscription(`http://t${i}.example/feed`, `http://cb${i}.example/s`, 'http-post', 0, expires))));
    // The passes in the order they are made.
    const passes: string[] = [];
    for (const name of ['deleteExpiredSubscriptions', 'deleteStaleTopics', 'deleteStaleSites', 'trimUnfollowedTopics', 'trimSites'] as const) {
      const pass = (store[name] as (...args: unknown[]) => Promise<number>).bind(store);
      store[name] = ((...args: unknown[]) => (passes.push(name), pass(...args))) as never;
    }
    const config = loadConfig({});
    const notifier = new Notifier({ config, http: {} as HttpClient, store, log: silentLogger });
    const hub = new Hub({ config, store, http: {} as HttpClient, notifier, verifier: { close: () => {} } as unknown as Verifier, log: silentLogger });
    try {
      const { result: report, turns } = await turnsWhile(() => hub.removeExpired(), () => passes.length);
      expect(report).to.include({ subscriptionsRemoved: 0, topicsRemoved: 0, sitesRemoved: 0 });
      expect(passes).to.deep.equal(['deleteExpiredSubscriptions', 'deleteStaleTopics', 'deleteStaleSites', 'trimUnfollowedTopics', 'trimSites']);
      // A turn after each pass but the last.
      for (let made = 1; made < passes.length; made++) expect(turns, `a turn of the event loop after pass ${made} (${passes[made - 1]})`).to.include(made);
    } finally {
      hub.close();
      notifier.close();
      await hub.idle();
      await remove();
    }
  });
});
