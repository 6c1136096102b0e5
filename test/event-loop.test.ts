// Work that grows with the hub's size yields to the event loop between chunks: one JavaScript
// thread serves every protocol, and a synchronous pass over 100,000 of anything answers nothing
// else meanwhile (not even /healthz). Proven by what a turn of the event loop sees while the
// work is under way, never by timing it.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../lib/config.js';
import { Hub } from '../lib/hub.js';
import type { HttpClient, HttpResponse } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import { newSubscription, newTopic } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import type { IntentAnswer, Verifier } from '../lib/verify.js';
import { tempDataDir } from './helpers/hub.js';

describe('work at scale yields to the event loop', () => {
  it('a fan-out resumed after a restart is queued in chunks: the event loop turns while its first subscribers are queued and the rest are not', async () => {
    const dir = await tempDataDir();
    const store = new LowdbStore({ dir });
    await store.open();
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
      let resumed: number | undefined;
      let atTurn: { resumed: number | undefined; queued: number } | undefined;
      // Everything resume() reads is in memory: without a yield it runs to its end before this.
      setImmediate(() => (atTurn = { resumed, queued: notifier.queueDepth }));
      resumed = await notifier.resume();
      expect(resumed).to.equal(subscribers);
      expect(atTurn, 'the event loop turned before resume() finished').to.not.equal(undefined);
      expect(atTurn!.resumed, 'resume() still queueing when the event loop turned').to.equal(undefined);
      expect(atTurn!.queued, 'subscribers queued before the turn').to.be.greaterThan(0).and.lessThan(subscribers);
      expect(notifier.queueDepth, 'every subscriber queued in the end').to.equal(subscribers);
    } finally {
      notifier.close();
      for (const answer of answers.splice(0)) answer();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verifications resumed after a restart are started in chunks: the event loop turns while some have asked their subscriber and the rest have not', async () => {
    const dir = await tempDataDir();
    const store = new LowdbStore({ dir });
    await store.open();
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
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
