// The polling fallback over real HTTP on 127.0.0.1 (issue 4): a topic with subscribers whose
// publisher never pings is read with conditional GETs at an adaptive interval, within
// POLL_MIN_SECONDS..POLL_MAX_SECONDS, never faster than its Cache-Control max-age, backing off
// as a Retry-After says, and its subscribers on both protocols are pushed what changed.
import { expect } from 'chai';
import { Recorder, sleep, type Recorded } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { postForm } from './helpers/rsscloud.js';
import { publish, settled, subscribe, unsubscribe } from './helpers/websub.js';

const POLL_ENV = { POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '4' };
const TEXT = 'text/plain; charset=utf-8';

interface Doc {
  body: string;
  status?: number;
  /** Sent with the response; with an ETag a matching If-None-Match is answered 304. */
  headers?: Record<string, string>;
}

/**
 * A publisher that never pings: serves whatever document the test last set for a path (a
 * function is called on every read), honouring If-None-Match against the document's ETag.
 */
class Publisher {
  private readonly docs = new Map<string, Doc | (() => Doc)>();
  private constructor(readonly rec: Recorder) {}

  static async start(): Promise<Publisher> {
    const rec = await Recorder.start();
    const p = new Publisher(rec);
    rec.handler = (req, res) => {
      const entry = p.docs.get(req.path);
      const doc = typeof entry === 'function' ? entry() : entry;
      if (!doc) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      const headers: Record<string, string> = { 'content-type': TEXT, ...doc.headers };
      const etag = headers['etag'];
      if (etag !== undefined && req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();
      res.writeHead(doc.status ?? 200, headers).end(doc.body);
    };
    return p;
  }

  set(path: string, doc: Doc | (() => Doc)): string {
    this.docs.set(path, doc);
    return `${this.rec.url}${path}`;
  }

  reads(path: string): Recorded[] {
    return this.rec.matching((r) => r.method === 'GET' && r.path === path);
  }

  waitReads(path: string, count: number, timeoutMs = 10_000): Promise<Recorded[]> {
    return this.rec.waitFor(count, (r) => r.method === 'GET' && r.path === path, timeoutMs);
  }

  close(): Promise<void> {
    return this.rec.close();
  }
}

/** Gaps between consecutive requests, in ms. */
const gaps = (rs: Recorded[]): number[] => rs.slice(1).map((r, i) => r.at - rs[i]!.at);

describe('polling fallback (POLL_MIN_SECONDS=1, POLL_DEFAULT_SECONDS=1, POLL_MAX_SECONDS=4)', function () {
  this.timeout(30_000);
  let hub: TestHub;
  let publisher: Publisher;
  /** A WebSub subscriber (echoes verification challenges) and an rssCloud one, on one server. */
  let subs: Recorder;

  before(async () => {
    hub = await startTestHub(POLL_ENV);
    publisher = await Publisher.start();
    subs = await Recorder.start((req, res) => {
      const challenge = req.query.get('hub.challenge');
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'GET' && challenge !== null ? challenge : 'ok');
    });
  });
  after(async () => {
    await subs?.close();
    await publisher?.close();
    await hub?.destroy();
  });

  const posts = (path: string): Recorded[] => subs.matching((r) => r.method === 'POST' && r.path === path);
  const waitPosts = (path: string, count: number, timeoutMs = 10_000): Promise<Recorded[]> =>
    subs.waitFor(count, (r) => r.method === 'POST' && r.path === path, timeoutMs);

  async function webSubSubscribe(topic: string, path: string, mode: 'subscribe' | 'unsubscribe' = 'subscribe'): Promise<void> {
    const isVerification = (r: Recorded): boolean => r.method === 'GET' && r.path === path && r.query.get('hub.mode') === mode;
    const before = subs.matching(isVerification).length;
    const form = { 'hub.topic': topic, 'hub.callback': `${subs.url}${path}` };
    const res = await (mode === 'subscribe' ? subscribe(hub, form) : unsubscribe(hub, form));
    expect(res.status, await res.text()).to.equal(202);
    await subs.waitFor(before + 1, isVerification);
    await settled(hub);
  }

  async function rssCloudSubscribe(topic: string, path: string): Promise<void> {
    const res = await postForm(hub.url, '/pleaseNotify', { port: String(subs.port), path, protocol: 'http-post', url1: topic });
    expect(await res.text()).to.contain('success="true"');
  }

  async function publishAndRead(topic: string, path: string): Promise<void> {
    const before = publisher.reads(path).length;
    expect((await publish(hub, topic)).status).to.equal(204);
    await publisher.waitReads(path, before + 1);
    await settled(hub);
  }

  it('an unpinged change reaches a WebSub and an rssCloud subscriber within a few seconds, read with conditional GETs', async () => {
    const v1 = { body: 'state one\n', headers: { etag: '"one"', 'last-modified': 'Mon, 11 Mar 2024 10:00:00 GMT' } };
    const v2 = { body: 'state two\n', headers: { etag: '"two"', 'last-modified': 'Tue, 12 Mar 2024 10:00:00 GMT' } };
    const topic = publisher.set('/unpinged', v1);
    await rssCloudSubscribe(topic, '/unpinged/rss'); // reads the topic: version 1
    const handlerTest = posts('/unpinged/rss').length;
    await webSubSubscribe(topic, '/unpinged/ws');
    const readsBefore = publisher.reads('/unpinged').length;
    expect(readsBefore).to.equal(1);

    // A poll while nothing changed: conditional, answered 304, nobody notified.
    const [, poll] = await publisher.waitReads('/unpinged', 2);
    expect(poll!.headers['if-none-match']).to.equal('"one"');
    expect(poll!.headers['if-modified-since']).to.equal('Mon, 11 Mar 2024 10:00:00 GMT');

    publisher.set('/unpinged', v2);
    const [ws] = await waitPosts('/unpinged/ws', 1);
    await waitPosts('/unpinged/rss', handlerTest + 1);
    expect(ws!.body.toString()).to.equal('state two\n');
    expect(ws!.headers['content-type']).to.equal(TEXT);
    expect(posts('/unpinged/rss').slice(handlerTest).map((r) => r.body.toString())).to.deep.equal([new URLSearchParams({ url: topic }).toString()]);

    const reads = publisher.reads('/unpinged');
    const picked = reads.find((r) => r.at >= poll!.at && r !== poll && r.headers['if-none-match'] === '"one"');
    expect(picked, 'the read that found the change was conditional too').to.not.equal(undefined);
    for (const r of reads.slice(1)) expect(r.headers['if-none-match'], 'every poll is conditional').to.be.oneOf(['"one"', '"two"']);
    await settled(hub);
    expect(posts('/unpinged/ws')).to.have.length(1);
  });

  // Without max-age a topic that changes on every read is polled every POLL_MIN_SECONDS (1 s):
  // a max-age of twice that tells the two apart; a longer one (it was 3) only made the test longer.
  it('Cache-Control: max-age=2 — a topic that changes on every read is still polled no faster than every 2 s', async () => {
    let n = 0;
    const topic = publisher.set('/max-age', () => ({ body: `read ${++n}\n`, headers: { 'cache-control': 'public, max-age=2' } }));
    await publishAndRead(topic, '/max-age');
    const first = publisher.reads('/max-age').length;
    await webSubSubscribe(topic, '/max-age/ws');
    // Three polls; each finds a change (so without max-age the interval would stay at 1 s).
    const reads = (await publisher.waitReads('/max-age', first + 3, 15_000)).slice(first);
    for (const gap of gaps(reads)) expect(gap, 'ms between polls').to.be.at.least(2000);
    await waitPosts('/max-age/ws', 3);
    expect(posts('/max-age/ws').map((r) => r.body.toString())).to.deep.equal(reads.map((_, i) => `read ${first + i + 1}\n`));
  });

  it('Retry-After on a 503 is honoured: the next poll waits for it (3 s, where the backoff alone would be 2 s), then the change is delivered', async () => {
    const topic = publisher.set('/retry-after', { body: 'before\n' });
    await publishAndRead(topic, '/retry-after');
    const read = publisher.reads('/retry-after').length;
    publisher.set('/retry-after', { body: 'busy\n', status: 503, headers: { 'retry-after': '3' } });
    await webSubSubscribe(topic, '/retry-after/ws');
    const [refused] = (await publisher.waitReads('/retry-after', read + 1)).slice(read);
    publisher.set('/retry-after', { body: 'after\n' });
    const [next] = (await publisher.waitReads('/retry-after', read + 2)).slice(read + 1);
    expect(next!.at - refused!.at, 'ms from the 503 to the next poll').to.be.at.least(3000);
    const [d] = await waitPosts('/retry-after/ws', 1);
    expect(d!.body.toString()).to.equal('after\n');
  });

  it('a topic with no subscribers is not polled: never subscribed, or its only subscriber gone', async () => {
    const lonely = publisher.set('/lonely', { body: 'nobody reads me\n' });
    await publishAndRead(lonely, '/lonely');
    const left = publisher.set('/left', { body: 'they left\n' });
    await publishAndRead(left, '/left');
    await webSubSubscribe(left, '/left/ws');
    await webSubSubscribe(left, '/left/ws', 'unsubscribe');
    const leftReads = publisher.reads('/left').length;
    // Two default intervals: a polled topic would have been read at least once by now.
    await sleep(2000);
    expect(publisher.reads('/lonely'), 'never subscribed: only the publish read it').to.have.length(1);
    expect(publisher.reads('/left').length - leftReads, 'unsubscribed: no poll').to.equal(0);
  });

  it('a ping pushes the next poll back: no poll while the publisher pings every 250 ms, and polling resumes after', async () => {
    const topic = publisher.set('/pinged', { body: 'steady\n', headers: { etag: '"steady"' } });
    await rssCloudSubscribe(topic, '/pinged/rss'); // reads it, and the poller tracks it
    // Wait for one poll (the interval is then 1.5 s: unchanged makes it grow).
    await publisher.waitReads('/pinged', 2);
    const start = publisher.reads('/pinged').length;
    const PINGS = 10;
    let lastPingSent = 0;
    for (let i = 0; i < PINGS; i++) {
      lastPingSent = Date.now();
      const res = await postForm(hub.url, '/ping', { url: topic });
      expect(await res.text()).to.contain('Thanks for the ping.');
      await sleep(250);
    }
    expect(publisher.reads('/pinged').length - start, 'one read per ping, no poll').to.equal(PINGS);
    const [poll] = (await publisher.waitReads('/pinged', start + PINGS + 1)).slice(start + PINGS);
    expect(poll!.at - lastPingSent, 'ms from the last ping to the next poll').to.be.at.least(1000);
    expect(poll!.headers['if-none-match']).to.equal('"steady"');
  });

  it('a store error while polling is logged and the topic polled again later, not an unhandled rejection (which ends a hub process)', async () => {
    const topic = publisher.set('/store-error', { body: 'steady\n', headers: { etag: '"steady"' } });
    await webSubSubscribe(topic, '/store-error/ws');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const live = hub.store.hasLiveSubscription.bind(hub.store);
    let failed = false;
    hub.store.hasLiveSubscription = (topic, filter) => {
      if (failed) return live(topic, filter);
      failed = true;
      return Promise.reject(new Error('connection lost (test)'));
    };
    try {
      const before = publisher.reads('/store-error').length;
      for (const t0 = Date.now(); !failed && Date.now() - t0 < 10_000; ) await sleep(20);
      expect(failed, 'a poll asked the store').to.equal(true);
      await publisher.waitReads('/store-error', before + 1);
      await sleep(100);
      expect(unhandled.map(String)).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      hub.store.hasLiveSubscription = live;
    }
  });
});
