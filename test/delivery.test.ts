// Durable delivery over real HTTP on 127.0.0.1 (issue 4): a fan-out cut by SIGKILL and
// finished after a restart, a subscriber that is down and comes back, a slow host beside fast
// ones, the circuit breaker, and what subscribers receive of a feed, format by format.
import { expect } from 'chai';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Recorder, freePort, sleep, type Handler, type Recorded } from './helpers/recorder.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { ping, postForm } from './helpers/rsscloud.js';
import { MAX_DIFF_ENTRIES } from '../lib/feeds/entries.js';
import { TopicServer, outboxBodies, outboxWhen, settled, subscribe, subscriptionsOf, testApi } from './helpers/websub.js';
import { until } from './helpers/until.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/feeds');
const FAR_FUTURE = '2099-01-01T00:00:00.000Z';
/** How long nothing must happen, after the hub is idle, to count as "nothing happened". */
const QUIET_MS = 300;

const deliveries = (r: Recorded): boolean => r.method === 'POST';

/**
 * A Recorder filter that matches the first request of each path (or, with `nth`, the nth), so
 * that `waitFor(n, nthOfEachPath())` waits for n distinct subscribers. Recorder evaluates a
 * filter over its requests in arrival order on every call, so the first time a path is seen
 * here is its earliest request.
 */
function nthOfEachPath(nth = 1, also: (r: Recorded) => boolean = deliveries): (r: Recorded) => boolean {
  const seen = new Map<string, Recorded[]>();
  return (r) => {
    if (!also(r)) return false;
    let list = seen.get(r.path);
    if (!list) seen.set(r.path, (list = []));
    let i = list.indexOf(r);
    if (i === -1) {
      list.push(r);
      i = list.length - 1;
    }
    return i === nth - 1;
  };
}

/** Deliveries per callback path. */
function byPath(recs: Recorder[], filter: (r: Recorded) => boolean = deliveries): Map<string, Recorded[]> {
  const out = new Map<string, Recorded[]>();
  for (const rec of recs) {
    for (const r of rec.matching(filter)) {
      const key = `${rec.port}${r.path}`;
      const list = out.get(key) ?? [];
      list.push(r);
      out.set(key, list);
    }
  }
  return out;
}

const answer =
  (status: number): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
  };

/** A subscriber that takes 20–40 ms to answer, so a fan-out to thousands takes seconds. */
const slowOk: Handler = async (_req, res) => {
  await sleep(20 + Math.random() * 20);
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
};

interface SeedSub {
  url: string;
  protocol: 'websub' | 'http-post';
  whenExpires: string;
}

/** n subscriptions spread round-robin over `recs`, one path each; every 4th is rssCloud http-post, the rest WebSub. */
function seedSubs(recs: Recorder[], n: number, prefix: string): SeedSub[] {
  return Array.from({ length: n }, (_, i) => ({
    url: `http://127.0.0.1:${recs[i % recs.length]!.port}/${prefix}/${i}`,
    protocol: i % 4 === 3 ? 'http-post' : 'websub',
    whenExpires: FAR_FUTURE,
  }));
}

async function seed(hub: { url: string }, feedUrl: string, subscriptions: unknown[]): Promise<void> {
  const res = await fetch(`${hub.url}/test/setSubscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ feedUrl, subscriptions }),
  });
  expect(res.status, await res.clone().text()).to.equal(200);
  expect(await res.json()).to.deep.equal({ success: true });
}

/** The version of every read of an outbox body through `hub`'s store from now on. */
function bodyReads(hub: { store: TestHub['store'] }): number[] {
  const reads: number[] = [];
  const read = hub.store.getOutboxBody.bind(hub.store);
  hub.store.getOutboxBody = (t, v) => {
    reads.push(v);
    return read(t, v);
  };
  return reads;
}

async function publishTo(hub: { url: string }, topic: string): Promise<void> {
  const res = await postForm(hub.url, '/websub', { 'hub.mode': 'publish', 'hub.url': topic });
  expect(res.status, await res.text()).to.equal(204);
}

/** A WebSub subscriber's answer: echoes a verification's challenge, else answers `status()`. */
function subscriberAnswer(status: () => number = () => 200): Handler {
  return (req, res) => {
    const challenge = req.query.get('hub.challenge');
    if (req.method === 'GET' && challenge !== null) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
      return;
    }
    const s = status();
    res.writeHead(s, { 'content-type': 'text/plain' }).end(s < 300 ? 'ok' : 'no');
  };
}

/** Subscribes over WebSub and waits until the verification is done and stored. */
async function subscribed(hub: TestHub, sub: Recorder, topic: string, callbackPath: string): Promise<void> {
  const verifications = (r: Recorded): boolean => r.method === 'GET' && r.path === callbackPath && r.query.get('hub.mode') === 'subscribe';
  const before = sub.matching(verifications).length;
  const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${sub.url}${callbackPath}` });
  expect(res.status, await res.text()).to.equal(202);
  await sub.waitFor(before + 1, verifications);
  await settled(hub);
}

/** A small RSS 2.0 feed whose entries are named by `ids` (newest first). */
function rss(ids: string[]): string {
  const items = ids.map((id) => `    <item><title>Entry ${id}</title><guid isPermaLink="false">${id}</guid><description>Text of ${id}.</description></item>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n  <channel>\n    <title>Down and up</title>\n    <link>http://example.com/</link>\n    <description>d</description>\n${items.join('\n')}\n  </channel>\n</rss>\n`;
}

const guids = (body: Buffer): string[] => [...body.toString().matchAll(/<guid[^>]*>([^<]*)<\/guid>/g)].map((m) => m[1]!);

describe('durable delivery', function () {
  this.timeout(40_000);
  let closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    // Last opened, first closed: subscribers before the hub that calls them, so nothing waits
    // on a request timeout while the hub shuts down.
    for (const close of closers.reverse()) await close();
    closers = [];
  });
  async function recorder(handler: Handler = answer(200), host = '127.0.0.1'): Promise<Recorder> {
    const rec = await Recorder.start(handler, host);
    closers.push(() => rec.close());
    return rec;
  }
  async function topicServer(): Promise<TopicServer> {
    const t = await TopicServer.start();
    closers.push(() => t.close());
    return t;
  }
  async function hubWith(env: Record<string, string>): Promise<TestHub> {
    const h = await startTestHub({ POLL_ENABLED: 'false', ...env });
    closers.push(() => h.destroy());
    return h;
  }
  /** A hub on a data directory of its own that the test stops and starts again; the one running at the end is stopped with the rest. */
  async function restartableHub(env: Record<string, string>): Promise<{ readonly hub: TestHub; stop(): Promise<void>; start(env?: Record<string, string>): Promise<TestHub> }> {
    const dir = await tempDataDir();
    let hub = await startTestHub(env, dir);
    let running = true;
    closers.push(async () => {
      if (running) await hub.close();
      await rm(dir, { recursive: true, force: true });
    });
    return {
      get hub() {
        return hub;
      },
      async stop() {
        running = false;
        await hub.close();
      },
      async start(again = env) {
        hub = await startTestHub(again, dir);
        running = true;
        return hub;
      },
    };
  }

  // ---- a fan-out cut by SIGKILL ---------------------------------------------------------

  describe('a fan-out to 1,000 subscribers', () => {
    const SUBSCRIBERS = 1000;
    const HOSTS = 4;
    const PER_HOST = 8;
    const CONCURRENCY = 32;
    /**
     * Deliveries that can be sent with their outcome not yet durable: two per delivery slot
     * (one in flight, one whose outcome is in the batch being written; lib/notifier/notifier.ts).
     */
    const IN_FLIGHT = 2 * Math.min(CONCURRENCY, HOSTS * PER_HOST);
    const ENV = {
      DELIVERY_CONCURRENCY: String(CONCURRENCY),
      DELIVERY_PER_HOST: String(PER_HOST),
      POLL_ENABLED: 'false',
    };

    it(`SIGKILL mid-fan-out, restart on the same data: every subscriber gets the version at least once, duplicates ≤ ${IN_FLIGHT} (the deliveries sent and not yet recorded at the kill), and the next version exactly once`, async () => {
      const dir = await tempDataDir();
      const children: ChildHub[] = [];
      closers.push(async () => {
        for (const c of children) await c.stop('SIGKILL');
        await rm(dir, { recursive: true, force: true });
      });
      const topics = await topicServer();
      const subs: Recorder[] = [];
      for (let i = 0; i < HOSTS; i++) subs.push(await recorder(slowOk));
      const V1 = 'content version 1\n';
      const V2 = 'content version 2\n';
      const topic = topics.set('/fanout', { body: V1, contentType: 'text/plain; charset=utf-8' });
      const bare = new URLSearchParams({ url: topic }).toString();
      const seeded = seedSubs(subs, SUBSCRIBERS, 'k');
      const websubPaths = new Set(seeded.filter((s) => s.protocol === 'websub').map((s) => new URL(s.url).pathname));
      const perHost = SUBSCRIBERS / HOSTS;

      const first = await spawnHub(dir, ENV);
      children.push(first);
      await seed(first, topic, seeded);
      await publishTo(first, topic);
      // Some deliveries are made, far from all of them: kill.
      await subs[0]!.waitFor(perHost / 5, deliveries, 15_000);
      const killed = await first.stop('SIGKILL');
      expect(killed.signal).to.equal('SIGKILL');
      const atKill = byPath(subs).size;
      expect(atKill, 'subscribers reached before the kill').to.be.within(1, SUBSCRIBERS - 1);

      const second = await spawnHub(dir, ENV);
      children.push(second);
      // Every subscriber has the version at least once: WebSub ones its exact body, rssCloud ones `url=<topic>`.
      await Promise.all(subs.map((rec) => rec.waitFor(perHost, nthOfEachPath(1), 30_000)));
      const v1 = byPath(subs);
      expect(v1.size).to.equal(SUBSCRIBERS);
      for (const [key, got] of v1) {
        const want = websubPaths.has(key.slice(key.indexOf('/'))) ? V1 : bare;
        expect(got[0]!.body.toString(), key).to.equal(want);
      }

      // A normal run on the restarted hub: version 2, after the resumed fan-out in each
      // subscription's lane (a lane sends versions oldest first).
      topics.set('/fanout', { body: V2, contentType: 'text/plain; charset=utf-8' });
      await publishTo(second, topic);
      const isV2 = (r: Recorded): boolean => deliveries(r) && websubPaths.has(r.path) && r.body.toString() === V2;
      const rssCloud = (r: Recorded): boolean => deliveries(r) && !websubPaths.has(r.path);
      const count = (rec: Recorder, protocol: SeedSub['protocol']): number =>
        seeded.filter((s) => s.protocol === protocol && s.url.startsWith(`${rec.url}/`)).length;
      await Promise.all(
        subs.map(async (rec) => {
          await rec.waitFor(count(rec, 'websub'), nthOfEachPath(1, isV2), 30_000);
          await rec.waitFor(count(rec, 'http-post'), nthOfEachPath(2, rssCloud), 30_000);
        }),
      );
      await sleep(QUIET_MS * 2);

      let duplicates = 0;
      for (const [key, got] of byPath(subs)) {
        const bodies = got.map((r) => r.body.toString());
        if (websubPaths.has(key.slice(key.indexOf('/')))) {
          expect(bodies.filter((b) => b === V2), `${key}: version 2 exactly once`).to.have.length(1);
          expect(bodies.at(-1), `${key}: version 2 after version 1`).to.equal(V2);
          duplicates += bodies.filter((b) => b === V1).length - 1;
        } else {
          // Bare notifications look alike: one for version 1, one for version 2, the rest duplicates.
          duplicates += bodies.length - 2;
        }
      }
      expect(duplicates, `duplicates (${atKill} subscribers were reached before the kill)`).to.be.at.most(IN_FLIGHT);
      expect(await second.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });
    });

    it('a normal run: each of 1,000 subscribers (WebSub and rssCloud) gets each of two versions exactly once, in order', async () => {
      const hub = await hubWith({ DELIVERY_CONCURRENCY: String(CONCURRENCY), DELIVERY_PER_HOST: String(PER_HOST) });
      const topics = await topicServer();
      const subs: Recorder[] = [];
      for (let i = 0; i < HOSTS; i++) subs.push(await recorder());
      const V1 = 'normal version 1\n';
      const V2 = 'normal version 2\n';
      const topic = topics.set('/normal', { body: V1, contentType: 'text/plain' });
      const bare = new URLSearchParams({ url: topic }).toString();
      const seeded = seedSubs(subs, 1000, 'n');
      const websubPaths = new Set(seeded.filter((s) => s.protocol === 'websub').map((s) => new URL(s.url).pathname));
      await seed(hub, topic, seeded);

      const read = topics.fetches('/normal').length;
      await publishTo(hub, topic);
      await topics.rec.waitFor(read + 1, (r) => r.method === 'GET' && r.path === '/normal');
      topics.set('/normal', { body: V2, contentType: 'text/plain' });
      await publishTo(hub, topic);
      // A lane sends a subscription's versions oldest first: the second delivery to each path is the last.
      await Promise.all(subs.map((rec) => rec.waitFor(1000 / HOSTS, nthOfEachPath(2), 20_000)));
      await settled(hub);
      await sleep(QUIET_MS);

      const got = byPath(subs);
      expect(got.size).to.equal(1000);
      for (const [key, list] of got) {
        const want = websubPaths.has(key.slice(key.indexOf('/'))) ? [V1, V2] : [bare, bare];
        expect(list.map((r) => r.body.toString()), key).to.deep.equal(want);
      }
      expect(topics.fetches('/normal').length - read, 'one read per publish').to.equal(2);
    });
  });

  // ---- down, then up --------------------------------------------------------------------

  describe('a WebSub subscriber that is down (503), then up', () => {
    it('misses three publishes, comes back within the retry window, and receives versions 1, 2 and 3 in order, each exactly once', async () => {
      // The breaker is out of the way here (its own tests are below): this is about retries.
      const hub = await hubWith({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '8', BREAKER_FAILURES: '1000' });
      const topics = await topicServer();
      let down = true;
      const sub = await recorder(subscriberAnswer(() => (down ? 503 : 200)));
      const type = 'application/rss+xml; charset=utf-8';
      const topic = topics.set('/down-up', { body: rss(['a']), contentType: type });
      await subscribed(hub, sub, topic, '/cb');
      const reads = (): number => topics.fetches('/down-up').length;

      await publishTo(hub, topic);
      await sub.waitFor(1, deliveries);
      for (const ids of [['b', 'a'], ['c', 'b', 'a']]) {
        const before = reads();
        topics.set('/down-up', { body: rss(ids), contentType: type });
        await publishTo(hub, topic);
        await topics.rec.waitFor(before + 1, (r) => r.method === 'GET' && r.path === '/down-up');
      }
      // Down through several retries of version 1, then back.
      await sub.waitFor(3, deliveries);
      const upFrom = sub.requests.length;
      down = false;
      const afterUp = (r: Recorded): boolean => deliveries(r) && sub.requests.indexOf(r) >= upFrom;
      await sub.waitFor(3, afterUp, 15_000);
      await settled(hub);
      await sleep(QUIET_MS);

      const failed = sub.matching((r) => deliveries(r) && !afterUp(r));
      expect(failed.length).to.be.at.least(3);
      for (const r of failed) expect(guids(r.body), 'only version 1 is tried while it is undelivered').to.deep.equal(['a']);
      const received = sub.matching(afterUp);
      expect(received.map((r) => guids(r.body)), 'versions 1, 2, 3 in order, each once').to.deep.equal([['a'], ['b'], ['c']]);
      expect(received[0]!.body.toString(), 'version 1 is the whole feed').to.equal(rss(['a']));
      for (const r of received) expect(r.headers['content-type']).to.equal(type);
    });
  });

  describe('a WebSub subscriber whose server labels its answers gzip though they are not', () => {
    it('is delivered to once, as its 2xx says, and a 410 so labelled still ends the subscription', async () => {
      // A server compressing nothing but saying so (a proxy's or framework's header left on): the
      // answer to a delivery is judged by its status, and its body is never read.
      const hub = await hubWith({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '4', BREAKER_FAILURES: '1000' });
      const topics = await topicServer();
      let status = 200;
      const sub = await recorder((req, res) => {
        const challenge = req.query.get('hub.challenge');
        if (req.method === 'GET' && challenge !== null) return void res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
        res.writeHead(status, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }).end(status < 300 ? 'ok' : 'gone');
      });
      const type = 'application/rss+xml; charset=utf-8';
      const topic = topics.set('/labelled-gzip', { body: rss(['a']), contentType: type });
      await subscribed(hub, sub, topic, '/cb');
      await publishTo(hub, topic);
      await sub.waitFor(1, deliveries);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(sub.matching(deliveries), 'one delivery, not retried').to.have.length(1);

      status = 410;
      topics.set('/labelled-gzip', { body: rss(['b', 'a']), contentType: type });
      await publishTo(hub, topic);
      await sub.waitFor(2, deliveries);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(sub.matching(deliveries), 'the 410 is final').to.have.length(2);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    });
  });

  describe('subscribers whose 2xx answer is longer than MAX_RESPONSE_BYTES', () => {
    it('are delivered to, WebSub and rssCloud alike: the answer is judged by its status, not read to the end', async () => {
      const hub = await hubWith({ MAX_RESPONSE_BYTES: '100000', WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '3', BREAKER_FAILURES: '1000' });
      const topics = await topicServer();
      // A framework's welcome page, say: long, and the same whatever was posted.
      const page = 'x'.repeat(200_000);
      const sub = await recorder((req, res) => {
        if (req.method !== 'POST') return answer(200)(req, res);
        res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      });
      const topic = topics.set('/long-answers', { body: 'state 0\n', contentType: 'text/plain' });
      await seed(hub, topic, [
        { url: `${sub.url}/websub`, protocol: 'websub', whenExpires: FAR_FUTURE },
        { url: `${sub.url}/rsscloud`, protocol: 'http-post', whenExpires: FAR_FUTURE },
      ]);
      topics.set('/long-answers', { body: 'state 1\n', contentType: 'text/plain' });
      await publishTo(hub, topic);
      await sub.waitFor(2, deliveries);
      await settled(hub);
      // Read to MAX_RESPONSE_BYTES, each such answer failed as too large: counted against the
      // subscription (an rssCloud one dropped after MAX_CONSECUTIVE_ERRORS), the WebSub version
      // sent again and again, and up to MAX_RESPONSE_BYTES held per delivery under way.
      const subs = await subscriptionsOf(hub, topic);
      expect(subs.map((s) => [s.url.replace(sub.url, ''), s.ctUpdates, s.ctErrors]).sort()).to.deep.equal([
        ['/rsscloud', 1, 0],
        ['/websub', 1, 0],
      ]);
    });
  });

  describe('a WebSub subscriber that is down when the hub stops gracefully', () => {
    it('is still owed the version after the restart, and receives it', async () => {
      // The next retry a minute away: only a restart that still owes the version delivers it.
      const restartable = await restartableHub({ POLL_ENABLED: 'false', WEBSUB_RETRY_BASE_MS: '60000', WEBSUB_MAX_ATTEMPTS: '8', BREAKER_FAILURES: '1000' });
      const topics = await topicServer();
      let down = true;
      const sub = await recorder(subscriberAnswer(() => (down ? 503 : 200)));
      const topic = topics.set('/graceful', { body: rss(['a']), contentType: 'application/rss+xml' });
      await subscribed(restartable.hub, sub, topic, '/cb');
      await publishTo(restartable.hub, topic);
      await sub.waitFor(1, deliveries); // answered 503: retrying, a minute from now
      await restartable.stop(); // graceful: the retry waiting is stopped, not done with
      down = false;
      const hub = await restartable.start();
      await sub.waitFor(2, deliveries, 10_000);
      await settled(hub);
      const received = sub.matching(deliveries);
      expect(received.map((r) => guids(r.body))).to.deep.equal([['a'], ['a']]);
    });

    it('a ping served while the restarted hub is still resuming: the owed version goes first, then the new one, each once', async () => {
      const port = await freePort('127.0.0.1');
      const restartable = await restartableHub({ POLL_ENABLED: 'false', WEBSUB_RETRY_BASE_MS: '60000', WEBSUB_MAX_ATTEMPTS: '8', BREAKER_FAILURES: '1000', PORT: String(port) });
      const topics = await topicServer();
      let down = true;
      const sub = await recorder(subscriberAnswer(() => (down ? 503 : 200)));
      const topic = topics.set('/resumed', { body: rss(['a']), contentType: 'application/rss+xml' });
      await subscribed(restartable.hub, sub, topic, '/cb');
      // Expired subscriptions of another topic, for the start-up sweep to remove: the hub serves
      // requests while it sweeps, before it resumes its outbox, and this keeps that window open.
      const expired = Array.from({ length: 20_000 }, (_, i) => ({ url: `http://127.0.0.1:9/gone/${i}`, protocol: 'http-post', whenExpires: '2000-01-01T00:00:00.000Z' }));
      await seed(restartable.hub, topics.url('/other'), expired);
      await publishTo(restartable.hub, topic);
      await sub.waitFor(1, deliveries); // answered 503: owed, retrying a minute from now
      await restartable.stop();
      down = false;
      topics.set('/resumed', { body: rss(['b', 'a']), contentType: 'application/rss+xml' });
      const restarted = restartable.start();
      // Pinged as soon as the new hub takes connections, long before its outbox is resumed.
      let pinged: { success: boolean } | undefined;
      for (let i = 0; i < 2000 && !pinged; i++) pinged = await ping({ url: `http://127.0.0.1:${port}` }, topic).catch(() => sleep(5).then(() => undefined));
      const hub = await restarted;
      expect(pinged?.success).to.equal(true);
      await sub.waitFor(3, deliveries, 10_000);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(sub.matching(deliveries).map((r) => guids(r.body))).to.deep.equal([['a'], ['a'], ['b']]);
    });
  });

  describe('an outbox over OUTBOX_MAX_BYTES when the hub starts', () => {
    it('counts every resumed version at once and gives up the oldest: the bound holds from the start, not once the lanes reach them', async () => {
      // A subscriber that stays down, and retries a minute apart: the versions stay in the outbox.
      const env = { POLL_ENABLED: 'false', WEBSUB_RETRY_BASE_MS: '60000', BREAKER_FAILURES: '1000' };
      const restartable = await restartableHub({ ...env, OUTBOX_MAX_BYTES: '0' });
      let hub = restartable.hub;
      const topics = await topicServer();
      const sub = await recorder(subscriberAnswer(() => 503));
      const big = (n: number): string => `version ${n}\n${'x'.repeat(40_000)}\n`;
      const topic = topics.set('/resumed', { body: big(0), contentType: 'text/plain' });
      await subscribed(hub, sub, topic, '/cb');
      for (let n = 1; n <= 6; n++) {
        topics.set('/resumed', { body: big(n), contentType: 'text/plain' });
        await publishTo(hub, topic);
        await outboxWhen(hub, (bodies) => bodies.includes(big(n)));
      }
      expect(await outboxBodies(hub), 'with no bound, all six wait').to.have.length(6);
      await restartable.stop();

      // The first lane is waiting a minute to retry version 1: only counting each version as it
      // is resumed keeps the rest within the bound now.
      hub = await restartable.start({ ...env, OUTBOX_MAX_BYTES: '100000' });
      expect(await outboxWhen(hub, (bodies) => bodies.length <= 2)).to.deep.equal([big(5), big(6)]);
    });
  });

  // ---- a slow host beside fast ones -----------------------------------------------------

  describe('a slow host beside fast ones', () => {
    it('a host whose 50 callbacks hang until REQUEST_TIMEOUT_MS never delays the others: every fast delivery arrives before the first slow request times out', async () => {
      const PER_HOST = 4;
      const hub = await hubWith({ REQUEST_TIMEOUT_MS: '3000', WEBSUB_TIMEOUT_MS: '3000', DELIVERY_CONCURRENCY: '16', DELIVERY_PER_HOST: String(PER_HOST) });
      const topics = await topicServer();
      // The slow host: never answers; the hub gives up on each request at its timeout, which
      // the server sees as the connection closing.
      const timedOut: number[] = [];
      let firstTimeout!: () => void;
      const firstTimedOut = new Promise<void>((resolve) => (firstTimeout = resolve));
      const slow = await recorder((_req, res) => {
        res.on('close', () => {
          timedOut.push(Date.now());
          firstTimeout();
        });
      });
      const fastHosts = ['127.0.0.2', '127.0.0.3'];
      const fast: Recorder[] = [];
      for (const host of fastHosts) fast.push(await recorder(answer(200), host));
      const topic = topics.set('/slow-fast', { body: 'hello\n', contentType: 'text/plain' });
      const sub = (host: string, port: number, i: number): SeedSub => ({
        url: `http://${host}:${port}/s/${i}`,
        protocol: i % 2 === 0 ? 'websub' : 'http-post',
        whenExpires: FAR_FUTURE,
      });
      // The slow host's subscriptions come first, so they are first in line for the fan-out.
      await seed(hub, topic, [
        ...Array.from({ length: 50 }, (_, i) => sub('127.0.0.1', slow.port, i)),
        ...fast.flatMap((rec, h) => Array.from({ length: 50 }, (_, i) => sub(fastHosts[h]!, rec.port, i))),
      ]);

      await publishTo(hub, topic);
      await Promise.all(fast.map((rec) => rec.waitFor(50, nthOfEachPath(1), 10_000)));
      const fastArrivals = fast.flatMap((rec) => rec.matching(deliveries).map((r) => r.at));
      expect(timedOut, 'no slow request has timed out yet').to.deep.equal([]);
      expect(slow.requests.length, 'the slow host holds only its own slots').to.be.within(1, PER_HOST);
      expect(slow.requests[0]!.at, 'the slow requests were hanging meanwhile').to.be.at.most(Math.max(...fastArrivals));

      await firstTimedOut;
      expect(Math.max(...fastArrivals)).to.be.below(timedOut[0]!);
      expect(fastArrivals).to.have.length(100);
    });
  });

  // ---- callbacks that never answer, on many hosts ------------------------------------------

  describe('callbacks that accept the connection and never answer, one per host (DELIVERY_CONCURRENCY=4, DELIVERY_LINGER_AFTER_MS=300)', () => {
    const CONCURRENCY = 4;
    const ENV = { DELIVERY_LINGER_AFTER_MS: '300', DELIVERY_CONCURRENCY: String(CONCURRENCY), DELIVERY_PER_HOST: String(CONCURRENCY) };

    /** `n` subscribers, each on a host (port) of its own, that never answer; `ended` gets the time each request's connection closed. */
    async function hangers(n: number): Promise<{ recs: Recorder[]; ended: number[]; open: () => number; mostOpen: () => number }> {
      const ended: number[] = [];
      let open = 0;
      let mostOpen = 0;
      const recs: Recorder[] = [];
      for (let i = 0; i < n; i++) {
        recs.push(
          await recorder((_req, res) => {
            mostOpen = Math.max(mostOpen, ++open);
            res.on('close', () => {
              open--;
              ended.push(Date.now());
            });
          }),
        );
      }
      return { recs, ended, open: () => open, mostOpen: () => mostOpen };
    }

    const subAt = (port: number, path: string, protocol: SeedSub['protocol']): SeedSub => ({ url: `http://127.0.0.1:${port}${path}`, protocol, whenExpires: FAR_FUTURE });

    for (const protocol of ['websub', 'http-post'] as const) {
      it(`${protocol}: twice DELIVERY_CONCURRENCY of them, first in line, do not hold up 100 healthy subscribers: each is delivered while every hanging request still waits for its timeout (4 s)`, async () => {
        const hub = await hubWith({ ...ENV, REQUEST_TIMEOUT_MS: '4000', WEBSUB_TIMEOUT_MS: '4000' });
        const topics = await topicServer();
        const hung = await hangers(2 * CONCURRENCY);
        const healthy = await recorder(answer(200));
        const topic = topics.set(`/hangers-${protocol}`, { body: 'hello\n', contentType: 'text/plain' });
        await seed(hub, topic, [...hung.recs.map((r) => subAt(r.port, '/hang', protocol)), ...Array.from({ length: 100 }, (_, i) => subAt(healthy.port, `/ok/${i}`, protocol))]);

        if (protocol === 'websub') await publishTo(hub, topic);
        // Answered once the hangers' first attempts end, after this test: only its fan-out matters here.
        else void ping(hub, topic).catch(() => undefined);
        const arrived = await healthy.waitFor(100, deliveries, 10_000);
        const lastHealthy = Math.max(...arrived.map((r) => r.at));
        // Holding their slots until their timeout, the first four hanging requests kept every
        // healthy delivery waiting until they were cut, and the next four after them.
        expect(hung.ended, 'hanging requests cut before the last healthy delivery').to.deep.equal([]);
        const hangingSince = hung.recs.map((r) => r.requests[0]?.at);
        expect(hangingSince.every((at) => at !== undefined && at <= lastHealthy), 'every hanger had its request before the last healthy delivery').to.equal(true);
        expect(hung.open(), 'still hanging').to.equal(2 * CONCURRENCY);
      });
    }

    it('waits on without a slot only up to DELIVERY_LINGERING of them at once (2): the others keep theirs, so at most DELIVERY_CONCURRENCY + DELIVERY_LINGERING requests are open', async () => {
      const LINGERING = 2;
      const hub = await hubWith({ ...ENV, WEBSUB_TIMEOUT_MS: '1500', DELIVERY_LINGERING: String(LINGERING) });
      const topics = await topicServer();
      const hung = await hangers(2 * CONCURRENCY);
      const topic = topics.set('/lingering', { body: 'hello\n', contentType: 'text/plain' });
      await seed(hub, topic, hung.recs.map((r) => subAt(r.port, '/hang', 'websub')));

      await publishTo(hub, topic);
      // The first to be cut (at WEBSUB_TIMEOUT_MS, 1.5 s here) frees a place; until then no more go out.
      while (hung.ended.length === 0) await sleep(50);
      expect(hung.mostOpen(), 'requests open at once').to.equal(CONCURRENCY + LINGERING);
    });

    it('a lingering delivery gives its place back once recorded: the next version to the same hanging callbacks lingers again, and healthy subscribers are not held up either time', async () => {
      // Places kept after the send, or left with `unrecorded`, ran out after DELIVERY_LINGERING
      // hanging requests: from then on every hanger held its slot to its timeout again.
      const hub = await hubWith({ ...ENV, DELIVERY_LINGERING: String(CONCURRENCY), WEBSUB_MAX_ATTEMPTS: '1', REQUEST_TIMEOUT_MS: '2000', WEBSUB_TIMEOUT_MS: '2000' });
      const topics = await topicServer();
      const hung = await hangers(CONCURRENCY);
      const healthy = await recorder(answer(200));
      const topic = topics.set('/lingering-again', { body: 'one\n', contentType: 'text/plain' });
      await seed(hub, topic, [...hung.recs.map((r) => subAt(r.port, '/hang', 'websub')), ...Array.from({ length: 20 }, (_, i) => subAt(healthy.port, `/ok/${i}`, 'websub'))]);

      for (const [round, body] of [[1, 'one\n'], [2, 'two\n']] as const) {
        topics.set('/lingering-again', { body, contentType: 'text/plain' });
        const endedBefore = hung.ended.length;
        await publishTo(hub, topic);
        const arrived = await healthy.waitFor(20 * round, deliveries, 10_000);
        expect(hung.ended.length, `round ${round}: hanging requests cut before the last healthy delivery`).to.equal(endedBefore);
        expect(arrived.map((r) => r.body.toString()).slice(-20)).to.deep.equal(Array(20).fill(body));
        while (hung.ended.length < CONCURRENCY * round) await sleep(50);
        await settled(hub);
      }
    });

    it('a delivery that found every lingering place taken moves into one once it frees, giving its slot back: healthy subscribers are not held up until its timeout', async () => {
      // One slot, one place. The first subscriber is slow: it lingers in the place. The second
      // never answers: past DELIVERY_LINGER_AFTER_MS it finds the place taken and keeps the slot.
      // Asking for a place only then, it kept the slot when the slow one answered and freed the
      // place, and every healthy delivery waited for its timeout (4 s).
      const hub = await hubWith({ ...ENV, DELIVERY_CONCURRENCY: '1', DELIVERY_PER_HOST: '1', DELIVERY_LINGER_AFTER_MS: '100', DELIVERY_LINGERING: '1', WEBSUB_MAX_ATTEMPTS: '1', REQUEST_TIMEOUT_MS: '4000', WEBSUB_TIMEOUT_MS: '4000' });
      const topics = await topicServer();
      let answerSlow!: () => void;
      const slowMayAnswer = new Promise<void>((resolve) => (answerSlow = resolve));
      const slow = await recorder(async (req, res) => {
        await slowMayAnswer;
        answer(200)(req, res);
      });
      const hung = await hangers(1);
      const healthy = await recorder(answer(200));
      // A topic each, published in turn: one topic's fan-out goes in the order the store lists
      // its subscribers, which the test API's seed leaves to PostgreSQL's concurrent inserts.
      const [toSlow, toHanger, toHealthy] = ['slow', 'hang', 'ok'].map((name) => topics.set(`/lingering-later-${name}`, { body: 'hello\n', contentType: 'text/plain' }));
      await seed(hub, toSlow!, [subAt(slow.port, '/slow', 'websub')]);
      await seed(hub, toHanger!, [subAt(hung.recs[0]!.port, '/hang', 'websub')]);
      await seed(hub, toHealthy!, Array.from({ length: 10 }, (_, i) => subAt(healthy.port, `/ok/${i}`, 'websub')));

      await publishTo(hub, toSlow!);
      await slow.waitFor(1, deliveries, 5000);
      await publishTo(hub, toHanger!);
      await hung.recs[0]!.waitFor(1, deliveries, 5000);
      await publishTo(hub, toHealthy!);
      // Past the hanger's DELIVERY_LINGER_AFTER_MS (100 ms): it found the place taken.
      await sleep(300);
      expect(healthy.requests, 'healthy subscribers wait behind the hanger, which holds the one slot').to.deep.equal([]);

      answerSlow();
      await healthy.waitFor(10, deliveries, 10_000);
      expect(hung.ended, 'the hanger still waits for its answer, in the place the slow one freed').to.deep.equal([]);
      expect(hung.open()).to.equal(1);
    });

    it('counts the deliveries waiting on without a slot on /metrics (pushbutton_deliveries_lingering) and /stats.json (deliveriesLingering), back to 0 once they end', async () => {
      const LINGERING = 2;
      const hub = await hubWith({ ...ENV, WEBSUB_MAX_ATTEMPTS: '1', WEBSUB_TIMEOUT_MS: '1000', DELIVERY_LINGERING: String(LINGERING) });
      const topics = await topicServer();
      const hung = await hangers(2 * CONCURRENCY);
      const topic = topics.set('/lingering-counted', { body: 'hello\n', contentType: 'text/plain' });
      await seed(hub, topic, hung.recs.map((r) => subAt(r.port, '/hang', 'websub')));
      const lingering = async (): Promise<{ metric: number; stats: number }> => {
        const metrics = await (await fetch(`${hub.url}/metrics`)).text();
        const stats = (await (await fetch(`${hub.url}/stats.json`)).json()) as { deliveriesLingering: number };
        return { metric: Number(/^pushbutton_deliveries_lingering (\d+)$/m.exec(metrics)?.[1]), stats: stats.deliveriesLingering };
      };
      expect(await lingering(), 'before any delivery').to.deep.equal({ metric: 0, stats: 0 });

      await publishTo(hub, topic);
      // Two requests beyond the slots are open only once two deliveries gave theirs back.
      while (hung.open() < CONCURRENCY + LINGERING) await sleep(20);
      expect(hung.ended, 'none cut yet').to.deep.equal([]);
      expect(await lingering(), 'while they hang').to.deep.equal({ metric: LINGERING, stats: LINGERING });

      while (hung.ended.length < 2 * CONCURRENCY) await sleep(50);
      await settled(hub);
      expect(await lingering(), 'once every request ended').to.deep.equal({ metric: 0, stats: 0 });
    });

    it('never holds more than DELIVERY_CONCURRENCY + DELIVERY_LINGERING requests open, as hanging requests end and others take their slots and places', async () => {
      // A slot or place given back twice let one more request out each time a lingering one ended.
      const LINGERING = 1;
      const SLOTS = 2;
      const hub = await hubWith({ ...ENV, DELIVERY_CONCURRENCY: String(SLOTS), DELIVERY_LINGER_AFTER_MS: '100', DELIVERY_LINGERING: String(LINGERING), WEBSUB_MAX_ATTEMPTS: '1', WEBSUB_TIMEOUT_MS: '500' });
      const topics = await topicServer();
      const hung = await hangers(10);
      const topic = topics.set('/lingering-bound', { body: 'hello\n', contentType: 'text/plain' });
      await seed(hub, topic, hung.recs.map((r) => subAt(r.port, '/hang', 'websub')));

      await publishTo(hub, topic);
      while (hung.ended.length < 10) await sleep(50);
      expect(hung.mostOpen(), 'requests open at once').to.equal(SLOTS + LINGERING);
    });
  });

  // ---- the circuit breaker --------------------------------------------------------------

  describe('the circuit breaker (BREAKER_FAILURES=3, BREAKER_COOLDOWN_MS=1000)', () => {
    const FAILURES = 3;
    const PER_HOST = 4;
    const ENV = {
      BREAKER_FAILURES: String(FAILURES),
      BREAKER_COOLDOWN_MS: '1000',
      DELIVERY_PER_HOST: String(PER_HOST),
      WEBSUB_RETRY_BASE_MS: '100',
      WEBSUB_MAX_ATTEMPTS: '8',
    };

    it(`pauses a host that answers 500 (at most ${FAILURES + PER_HOST} requests in 1.5 s for 20 subscriptions), probes it again, and resumes every delivery once it recovers; a healthy host is unaffected`, async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      let badStatus = 500;
      const bad = await recorder((_req, res) => answer(badStatus)(_req, res));
      const healthy = await recorder();
      const topic = topics.set('/breaker', { body: 'news\n', contentType: 'text/plain' });
      await seed(hub, topic, [
        ...Array.from({ length: 20 }, (_, i) => ({ url: `${bad.url}/b/${i}`, protocol: 'websub', whenExpires: FAR_FUTURE })),
        ...Array.from({ length: 20 }, (_, i) => ({ url: `${healthy.url}/h/${i}`, protocol: i % 2 ? 'http-post' : 'websub', whenExpires: FAR_FUTURE })),
      ]);

      await publishTo(hub, topic);
      await healthy.waitFor(20, nthOfEachPath(1));
      const opening = (await bad.waitFor(FAILURES, deliveries))[FAILURES - 1]!;
      // Without a breaker 20 subscriptions retrying every 50–800 ms would make ~100 requests in
      // 1.5 s; with it: the failures that open the circuit, those already in flight, one probe
      // (the next comes two cooldowns later). Counted by arrival time, however late we look.
      const windowEnd = opening.at + 1500;
      await sleep(windowEnd - Date.now());
      const whilePaused = bad.matching((r) => deliveries(r) && r.at <= windowEnd).length;
      expect(whilePaused, 'requests to the failing host in 1.5 s').to.be.at.most(FAILURES + PER_HOST);

      const upFrom = bad.requests.length;
      const upAt = Date.now();
      badStatus = 200;
      const afterUp = (r: Recorded): boolean => deliveries(r) && bad.requests.indexOf(r) >= upFrom;
      await bad.waitFor(20, nthOfEachPath(1, afterUp), 10_000);
      await settled(hub);
      await sleep(QUIET_MS);
      const recovered = byPath([bad], afterUp);
      expect(recovered.size).to.equal(20);
      for (const [key, list] of recovered) expect(list, `${key}: delivered once after recovery`).to.have.length(1);
      const ok = byPath([healthy]);
      expect(ok.size).to.equal(20);
      for (const [key, list] of ok) {
        expect(list, `${key}: delivered exactly once`).to.have.length(1);
        expect(list[0]!.at, `${key}: delivered while the other host was paused`).to.be.below(upAt);
      }
    });

    it('a probe answered 404 (the host is up, that callback is not) closes the circuit too: the other deliveries resume', async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      // 500 until the circuit opens; the first request a cooldown after that is the probe: 404; then 200.
      let opened = Infinity;
      let probe: Recorded | undefined;
      const bad: Recorder = await recorder((req, res) => {
        if (bad.matching(deliveries).length === FAILURES) opened = req.at;
        if (!probe && req.at >= opened + 1000) {
          probe = req;
          return answer(404)(req, res);
        }
        return answer(probe ? 200 : 500)(req, res);
      });
      const topic = topics.set('/probe-404', { body: 'news\n', contentType: 'text/plain' });
      await seed(hub, topic, Array.from({ length: 10 }, (_, i) => ({ url: `${bad.url}/p/${i}`, protocol: 'websub', whenExpires: FAR_FUTURE })));

      await publishTo(hub, topic);
      const afterProbe = (r: Recorded): boolean => deliveries(r) && probe !== undefined && bad.requests.indexOf(r) > bad.requests.indexOf(probe);
      await bad.waitFor(10, nthOfEachPath(1, afterProbe), 10_000);
      expect(bad.matching(deliveries).filter((r) => r.at < opened + 1000).length, 'before the probe').to.be.at.most(FAILURES + PER_HOST - 1);
    });
  });

  describe('an rssCloud subscriber host paused by the breaker (BREAKER_FAILURES=3, BREAKER_COOLDOWN_MS=1000)', () => {
    it('pings while the host is paused are delivered once it is back, one notification per feed however many pings, and count no failure', async () => {
      const hub = await hubWith({ BREAKER_FAILURES: '3', BREAKER_COOLDOWN_MS: '1000', MAX_CONSECUTIVE_ERRORS: '3' });
      const topics = await topicServer();
      // FeedLand's way: one callback for every feed it follows.
      let status = 503;
      const reader = await recorder((req, res) => answer(status)(req, res));
      const callback = `${reader.url}/feedlandPing`;
      const feeds = ['a', 'b', 'c'].map((name) => topics.set(`/${name}.xml`, { body: rss([`${name}1`]), contentType: 'application/rss+xml' }));
      for (const feed of feeds) {
        await seed(hub, feed, [{ url: callback, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
        expect((await ping(hub, feed)).success, 'first read').to.equal(true);
      }
      const change = (feed: string, ids: string[]): void => void topics.set(new URL(feed).pathname, { body: rss(ids), contentType: 'application/rss+xml' });
      // A short outage: three failed notifications open the circuit for a second.
      for (const feed of feeds) {
        change(feed, ['2', '1']);
        await ping(hub, feed);
      }
      expect(reader.matching(deliveries), 'the failures that opened the circuit').to.have.length(3);
      status = 200;
      const pausedFrom = reader.requests.length;
      // While paused: feed a changes three times, b and c once each.
      const [a, b, c] = feeds as [string, string, string];
      for (const ids of [['3', '2', '1'], ['4', '3', '2', '1'], ['5', '4', '3', '2', '1']]) {
        change(a, ids);
        expect((await ping(hub, a)).success).to.equal(true);
      }
      for (const feed of [b, c]) {
        change(feed, ['3', '2', '1']);
        expect((await ping(hub, feed)).success).to.equal(true);
      }
      expect(reader.requests.length, 'nothing sent while paused').to.equal(pausedFrom);
      const after = (r: Recorded): boolean => deliveries(r) && reader.requests.indexOf(r) >= pausedFrom;
      await reader.waitFor(3, after, 10_000);
      await settled(hub);
      await sleep(QUIET_MS);
      const notified = reader.matching(after).map((r) => new URLSearchParams(r.body.toString()).get('url'));
      expect(notified.sort(), 'one notification per feed').to.deep.equal([...feeds].sort());
      for (const feed of feeds) {
        const [sub] = await subscriptionsOf(hub, feed);
        expect(sub?.ctConsecutiveErrors, `${feed}: errors in a row`).to.equal(0);
        expect(sub?.ctErrors, `${feed}: errors: only the real one`).to.equal(1);
      }
    });

    it('while paused, only the version it waits on and the newest are kept for it: the changes in between leave the outbox at once', async () => {
      const hub = await hubWith({ BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '600000' });
      const topics = await topicServer();
      const reader = await recorder((req, res) => answer(503)(req, res));
      const callback = `${reader.url}/feedlandPing`;
      const feeds = Array.from({ length: 5 }, (_, i) => topics.set(`/held-${i}.xml`, { body: rss([`${i}-1`]), contentType: 'application/rss+xml' }));
      for (const feed of feeds) {
        await seed(hub, feed, [{ url: callback, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
        await ping(hub, feed);
      }
      // Four changes of each feed; the first failure pauses the host for ten minutes.
      for (let round = 2; round <= 5; round++) {
        for (const [i, feed] of feeds.entries()) {
          topics.set(new URL(feed).pathname, { body: rss(Array.from({ length: round }, (_, k) => `${i}-${round - k}`)), contentType: 'application/rss+xml' });
          await ping(hub, feed);
        }
      }
      await settled(hub);
      const held = await hub.store.listOutbox();
      expect(held.length, `versions held for the paused host (${feeds.length} feeds)`).to.be.at.most(2 * feeds.length);
      expect(reader.matching(deliveries), 'the one request that paused it').to.have.length(1);
    });

    it('the test API\'s clear forgets paused hosts: the next test\'s subscriber on that host is notified', async () => {
      const hub = await hubWith({ BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '600000' });
      const topics = await topicServer();
      let status = 500;
      const reader = await recorder((req, res) => answer(status)(req, res));
      const feed = topics.set('/cleared.xml', { body: rss(['1']), contentType: 'application/rss+xml' });
      await seed(hub, feed, [{ url: `${reader.url}/first`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      await ping(hub, feed);
      topics.set('/cleared.xml', { body: rss(['2', '1']), contentType: 'application/rss+xml' });
      await ping(hub, feed);
      await reader.waitFor(1, deliveries);
      await settled(hub);
      const clear = await fetch(`${hub.url}/test/clear`, { method: 'POST' });
      expect(clear.status).to.equal(200);
      status = 200;
      await seed(hub, feed, [{ url: `${reader.url}/second`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      await ping(hub, feed);
      topics.set('/cleared.xml', { body: rss(['3', '2', '1']), contentType: 'application/rss+xml' });
      await ping(hub, feed);
      const [got] = await reader.waitFor(1, (r) => deliveries(r) && r.path === '/second', 5000);
      expect(new URLSearchParams(got?.body.toString()).get('url')).to.equal(feed);
    });
  });

  // ---- a subscriber host that rate-limits one feed ------------------------------------------

  // NewsBlur answers 429 to a push for a feed pushed too often and takes pushes for every other
  // feed meanwhile: that is the one subscription asking to wait, not its host failing. Counted
  // toward BREAKER_FAILURES, one busy feed paused every feed's deliveries to the host (here for
  // ten minutes).
  describe('a subscriber host that rate-limits one feed with 429, as NewsBlur does (BREAKER_FAILURES=2)', () => {
    const ENV = { BREAKER_FAILURES: '2', BREAKER_COOLDOWN_MS: '600000', BREAKER_MAX_COOLDOWN_MS: '600000', WEBSUB_RETRY_BASE_MS: '50', WEBSUB_MAX_ATTEMPTS: '8' };
    const RSS = 'application/rss+xml';
    /** Retry-After of the 429s, in seconds: the waits the hub must honour. */
    const RETRY_AFTER_MS = 1000;

    /** A host whose /push/busy answers 429 (Retry-After: 1) to its first `refusals` requests, then 204; every other callback 204. */
    async function rateLimitingHost(refusals: number): Promise<Recorder> {
      let left = refusals;
      return recorder((req, res) => {
        if (req.method === 'POST' && req.path === '/push/busy' && left-- > 0) {
          return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': String(RETRY_AFTER_MS / 1000) }).end('Slow down');
        }
        res.writeHead(204).end();
      });
    }

    async function pausedHosts(hub: TestHub): Promise<string[]> {
      const stats = (await (await fetch(`${hub.url}/stats.json`)).json()) as { pausedHosts: { host: string }[] };
      return stats.pausedHosts.map((p) => p.host);
    }

    /** The gaps between consecutive requests, in ms. */
    const gaps = (recs: Recorded[]): number[] => recs.slice(1).map((r, i) => r.at - recs[i]!.at);

    it('WebSub: the busy feed is retried after each Retry-After until taken, and the host\'s other feed is delivered meanwhile', async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      const host = await rateLimitingHost(2);
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      const calm = topics.set('/calm.xml', { body: rss(['c1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      await seed(hub, calm, [{ url: `${host.url}/push/calm`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      const toBusy = (r: Recorded): boolean => deliveries(r) && r.path === '/push/busy';

      await publishTo(hub, busy);
      // Two 429s in a row from the busy feed: as many as BREAKER_FAILURES.
      await host.waitFor(2, toBusy, 5000);
      await publishTo(hub, calm);
      const [toCalm] = await host.waitFor(1, (r) => deliveries(r) && r.path === '/push/calm', 10_000);
      expect(guids(toCalm!.body)).to.deep.equal(['c1']);
      expect(await pausedHosts(hub), 'hosts paused').to.deep.equal([]);

      const tries = await host.waitFor(3, toBusy, 5000);
      expect(guids(tries[2]!.body), 'taken at last').to.deep.equal(['b1']);
      for (const gap of gaps(tries)) expect(gap, 'each retry waited out Retry-After').to.be.at.least(RETRY_AFTER_MS - 10);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(host.matching(toBusy)).to.have.length(3);
    });

    it('rssCloud: a change while the feed is refused is notified once its Retry-After has passed, and the host\'s other feed is notified meanwhile', async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      const host = await rateLimitingHost(2);
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      const calm = topics.set('/calm.xml', { body: rss(['c1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      await seed(hub, calm, [{ url: `${host.url}/push/calm`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      const toBusy = (r: Recorded): boolean => deliveries(r) && r.path === '/push/busy';

      // The first notification is refused; the next change comes at once, as a busy feed's do.
      expect((await ping(hub, busy)).success).to.equal(true);
      topics.set('/busy.xml', { body: rss(['b2', 'b1']), contentType: RSS });
      expect((await ping(hub, busy)).success).to.equal(true);
      expect((await ping(hub, calm)).success).to.equal(true);
      const [toCalm] = await host.waitFor(1, (r) => deliveries(r) && r.path === '/push/calm', 10_000);
      expect(new URLSearchParams(toCalm!.body.toString()).get('url')).to.equal(calm);

      // The second notification waited out the first 429's Retry-After, and was refused too;
      // a third change waits out that one's, and is taken.
      await host.waitFor(2, toBusy, 5000);
      topics.set('/busy.xml', { body: rss(['b3', 'b2', 'b1']), contentType: RSS });
      expect((await ping(hub, busy)).success).to.equal(true);
      const tries = await host.waitFor(3, toBusy, 5000);
      for (const gap of gaps(tries)) expect(gap, 'each notification waited out the last Retry-After').to.be.at.least(RETRY_AFTER_MS - 10);
      expect(await pausedHosts(hub), 'hosts paused').to.deep.equal([]);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(host.matching(toBusy).map((r) => new URLSearchParams(r.body.toString()).get('url'))).to.deep.equal([busy, busy, busy]);
      const [sub] = await subscriptionsOf(hub, busy);
      expect([sub?.ctErrors, sub?.ctConsecutiveErrors], 'the two refusals, then taken').to.deep.equal([2, 0]);
    });

    it('a host that answers 429 to every feed is still paused: a 429 from each of BREAKER_FAILURES different callbacks in a row', async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      const host = await recorder((_req, res) => void res.writeHead(429, { 'content-type': 'text/plain' }).end('Slow down'));
      const topic = topics.set('/everything.xml', { body: rss(['e1']), contentType: RSS });
      await seed(hub, topic, Array.from({ length: 3 }, (_, i) => ({ url: `${host.url}/push/${i}`, protocol: 'websub', whenExpires: FAR_FUTURE })));
      await publishTo(hub, topic);
      let paused: string[] = [];
      await until(async () => (paused = await pausedHosts(hub)).length > 0);
      expect(paused).to.deep.equal([`127.0.0.1:${host.port}`]);
      // Three subscriptions of eight attempts 50 ms on would make 24 requests within seconds;
      // paused, the host gets those in flight when it opened, and nothing more for ten minutes.
      await sleep(QUIET_MS);
      expect(host.matching(deliveries).length, 'requests to the host').to.be.at.most(4);
    });

    it('a host that answers 429 to every feed through one callback URL is still paused: a 429 from each of BREAKER_FAILURES different subscriptions in a row', async () => {
      // Many subscribers (rssCloud aggregators above all) take every feed's pushes at one URL.
      // Counted once per callback, an overloaded one was never paused, however many feeds it refused.
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      const host = await recorder((_req, res) => void res.writeHead(429, { 'content-type': 'text/plain' }).end('Slow down'));
      const feeds = [0, 1, 2].map((i) => topics.set(`/all-${i}.xml`, { body: rss([`a${i}`]), contentType: RSS }));
      for (const feed of feeds) await seed(hub, feed, [{ url: `${host.url}/push/all`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      for (const feed of feeds) await publishTo(hub, feed);
      let paused: string[] = [];
      await until(async () => (paused = await pausedHosts(hub)).length > 0);
      expect(paused).to.deep.equal([`127.0.0.1:${host.port}`]);
      await sleep(QUIET_MS);
      expect(host.matching(deliveries).length, 'requests to the host').to.be.at.most(4);
    });

    /**
     * A WebSub subscriber that answers its first delivery 429 (with `headers`) and 204 after; two
     * versions of its topic published, one after the other. Resolves to the two deliveries.
     */
    async function nextVersionAfter429(hub: TestHub, headers: Record<string, string>): Promise<Recorded[]> {
      const topics = await topicServer();
      let left = 1;
      const host = await recorder((req, res) => {
        if (req.method === 'POST' && left-- > 0) return void res.writeHead(429, { 'content-type': 'text/plain', ...headers }).end('Slow down');
        res.writeHead(204).end();
      });
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      await publishTo(hub, busy);
      await host.waitFor(1, deliveries, 10_000);
      topics.set('/busy.xml', { body: rss(['b2', 'b1']), contentType: RSS });
      await publishTo(hub, busy);
      return host.waitFor(2, deliveries, 10_000);
    }

    it('WebSub: a 429 to a version\'s last attempt rests the subscription before its next version, for its Retry-After but never past WEBSUB_RETRY_MAX_MS', async () => {
      // One attempt per version, and a Retry-After of an hour against a longest wait of 1.5 s.
      const hub = await hubWith({ ...ENV, WEBSUB_MAX_ATTEMPTS: '1', WEBSUB_RETRY_MAX_MS: '1500' });
      // Sent at once, the next version meets the same refusal; waited for an hour, it is held far
      // past the hub's own longest wait.
      const tries = await nextVersionAfter429(hub, { 'retry-after': '3600' });
      expect(guids(tries[1]!.body), 'the next version, taken').to.deep.equal(['b2']);
      expect(gaps(tries)[0], 'ms between the refused version and the next').to.be.within(1500 - 10, 3000);
    });

    it('a stop does not wait out a rest: a subscriber that asked for an hour holds the stop no longer than any other', async () => {
      const hub = await hubWith({ ...ENV, WEBSUB_MAX_ATTEMPTS: '1' });
      const topics = await topicServer();
      const host = await recorder((_req, res) => void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '3600' }).end('Slow down'));
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      await publishTo(hub, busy);
      await host.waitFor(1, deliveries, 10_000);
      // The version is done with (its one attempt refused) once it leaves the outbox: the lane rests.
      expect(await outboxWhen(hub, (bodies) => bodies.length === 0)).to.deep.equal([]);
      const began = Date.now();
      await hub.close();
      expect(Date.now() - began, 'ms the stop took').to.be.below(5000);
    });

    it('a 429 without Retry-After to a version\'s last attempt rests the subscription for the retry backoff', async () => {
      // WEBSUB_RETRY_BASE_MS=1000: the backoff after one failure is 0.5–1 s.
      const hub = await hubWith({ ...ENV, WEBSUB_MAX_ATTEMPTS: '1', WEBSUB_RETRY_BASE_MS: '1000' });
      const tries = await nextVersionAfter429(hub, {});
      expect(gaps(tries)[0], 'ms between the refused version and the next').to.be.at.least(500 - 10);
    });

    it('rssCloud (XML-RPC): the Retry-After of a 429 is waited out, and the changes made meanwhile are notified once', async () => {
      const hub = await hubWith(ENV);
      const topics = await topicServer();
      let left = 1;
      const host = await recorder((req, res) => {
        if (req.method === 'POST' && left-- > 0) return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': String(RETRY_AFTER_MS / 1000) }).end('Slow down');
        res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>');
      });
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/RPC2`, protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', whenExpires: FAR_FUTURE }]);
      expect((await ping(hub, busy)).success).to.equal(true);
      await host.waitFor(1, deliveries, 10_000);
      // Two more changes while the subscriber asked the hub to wait: each notification says the same.
      topics.set('/busy.xml', { body: rss(['b2', 'b1']), contentType: RSS });
      expect((await ping(hub, busy)).success).to.equal(true);
      topics.set('/busy.xml', { body: rss(['b3', 'b2', 'b1']), contentType: RSS });
      expect((await ping(hub, busy)).success).to.equal(true);
      const tries = await host.waitFor(2, deliveries, 10_000);
      expect(gaps(tries)[0], 'ms between the refused notification and the next').to.be.at.least(RETRY_AFTER_MS - 10);
      await settled(hub);
      await sleep(QUIET_MS + 200);
      expect(host.matching(deliveries), 'notifications: the refused one, then one for both changes').to.have.length(2);
    });

    // The rest after a 429 is time the subscriber asked for. Counted against the next version's
    // retry window, a version that waited out a long rest was given up, never sent, at the first
    // pause of its host it met after, though that pause ended well within its window.
    it('a version that waited out a rest after a 429 still has its retry window: it waits for a short pause of its host and is sent', async () => {
      // Retry window 0.5 s (two attempts, 0.5 s base). The host pauses at each refusal
      // (BREAKER_FAILURES=1): 0.6 s after the first, 1.2 s after the second, the failed probe.
      const hub = await hubWith({
        ...ENV,
        WEBSUB_MAX_ATTEMPTS: '2',
        WEBSUB_RETRY_BASE_MS: '500',
        WEBSUB_RETRY_MAX_MS: '1000',
        BREAKER_FAILURES: '1',
        BREAKER_COOLDOWN_MS: '600',
      });
      const topics = await topicServer();
      let left = 2;
      const host = await recorder((req, res) => {
        if (req.method === 'POST' && left-- > 0) return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('Slow down');
        res.writeHead(204).end();
      });
      const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      await publishTo(hub, busy);
      // Both attempts refused, 1 s apart: the lane rests 1 s, and the host is paused 1.2 s.
      await host.waitFor(2, deliveries, 10_000);
      topics.set('/busy.xml', { body: rss(['b2', 'b1']), contentType: RSS });
      await publishTo(hub, busy);
      // The rest ends ~0.2 s before the pause: the next version waits for it, as any version
      // within its window does, and is the probe.
      const tries = await host.waitFor(3, deliveries, 10_000);
      expect(guids(tries[2]!.body), 'the next version, sent once the pause ended').to.deep.equal(['b2']);
    });

    describe('POST /admin/hosts/retry', () => {
      const ADMIN_TOKEN = 'operator-token-0123456789';
      const retry = async (hub: TestHub, host: string): Promise<unknown> => {
        const res = await fetch(`${hub.url}/admin/hosts/retry`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ host }),
        });
        expect(res.status).to.equal(200);
        return res.json();
      };
      /** A host whose first POST is answered 429 with Retry-After: an hour, every other 204. */
      async function refusesOnceForAnHour(): Promise<Recorder> {
        let left = 1;
        return recorder((req, res) => {
          if (req.method === 'POST' && left-- > 0) return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '3600' }).end('Slow down');
          res.writeHead(204).end();
        });
      }

      // The operator's "try this host again now": it closed the breaker and woke deliveries
      // waiting for a paused host, but a subscription resting after a 429 slept on, up to an hour.
      it('wakes an rssCloud subscription resting after its 429: the change made meanwhile is notified now', async () => {
        const hub = await hubWith({ ...ENV, ADMIN_TOKEN });
        const topics = await topicServer();
        const host = await refusesOnceForAnHour();
        const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
        await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
        expect((await ping(hub, busy)).success).to.equal(true);
        await host.waitFor(1, deliveries, 10_000);
        topics.set('/busy.xml', { body: rss(['b2', 'b1']), contentType: RSS });
        expect((await ping(hub, busy)).success).to.equal(true);
        await sleep(QUIET_MS);
        expect(host.matching(deliveries), 'resting: the Retry-After of an hour').to.have.length(1);

        expect(await retry(hub, `127.0.0.1:${host.port}`)).to.deep.equal({ ok: true, woken: 1 });
        const tries = await host.waitFor(2, deliveries, 10_000);
        expect(new URLSearchParams(tries[1]!.body.toString()).get('url')).to.equal(busy);
      });

      it('wakes a WebSub version waiting out the Retry-After of a 429 before its next attempt', async () => {
        const hub = await hubWith({ ...ENV, ADMIN_TOKEN });
        const topics = await topicServer();
        const host = await refusesOnceForAnHour();
        const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
        await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
        await publishTo(hub, busy);
        await host.waitFor(1, deliveries, 10_000);
        await sleep(QUIET_MS);
        expect(host.matching(deliveries), 'waiting: the Retry-After of an hour').to.have.length(1);

        expect(await retry(hub, `127.0.0.1:${host.port}`)).to.deep.equal({ ok: true, woken: 1 });
        const tries = await host.waitFor(2, deliveries, 10_000);
        expect(guids(tries[1]!.body), 'its second attempt, taken').to.deep.equal(['b1']);
      });

      // The hour a Retry-After asked for grows the version's retry window only by what it waited
      // of it. Counted whole though the operator woke it at once, a version whose host then
      // failed and was paused waited for that host an hour past its window, in the outbox.
      it('a WebSub version woken from a Retry-After of an hour keeps only its own retry window: at a pause after that, it is given up', async () => {
        // Retry window 150 ms (3 attempts, 50 ms base); each failure pauses the host 800 ms.
        const hub = await hubWith({ ...ENV, ADMIN_TOKEN, WEBSUB_MAX_ATTEMPTS: '3', WEBSUB_RETRY_MAX_MS: '3600000', BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '800' });
        const topics = await topicServer();
        const answers = [429, 503];
        const host = await recorder((req, res) => {
          const status = req.method === 'POST' ? (answers.shift() ?? 204) : 204;
          res.writeHead(status, { 'content-type': 'text/plain', ...(status === 429 && { 'retry-after': '3600' }) }).end('no');
        });
        const busy = topics.set('/busy.xml', { body: rss(['b1']), contentType: RSS });
        await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
        await publishTo(hub, busy);
        await host.waitFor(1, deliveries, 10_000);
        await sleep(QUIET_MS);
        expect(await retry(hub, `127.0.0.1:${host.port}`)).to.deep.equal({ ok: true, woken: 1 });
        // The second attempt fails (503) and pauses the host, past the version's window.
        await host.waitFor(2, deliveries, 10_000);
        await settled(hub);
        await sleep(800 + QUIET_MS);
        expect(host.matching(deliveries), 'the refused attempt and the failed one; none after the pause').to.have.length(2);
        expect(await outboxBodies(hub), 'given up, out of the outbox').to.deep.equal([]);
      });
    });

    // A subscriber answering 429 is alive and asks for patience. Counted toward
    // MAX_CONSECUTIVE_ERRORS, three refused notifications ended the subscription: the subscriber
    // heard nothing more, and the expiry sweep deleted it.
    it('rssCloud: 429s do not count toward MAX_CONSECUTIVE_ERRORS: the subscription is notified again once it takes notifications, and is not swept', async () => {
      const hub = await hubWith({ ...ENV, MAX_CONSECUTIVE_ERRORS: '3' });
      const topics = await topicServer();
      let left = 3;
      const host = await recorder((req, res) => {
        // Retry-After: 0, so that nothing rests between the notifications.
        if (req.method === 'POST' && left-- > 0) return void res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '0' }).end('Slow down');
        res.writeHead(204).end();
      });
      const busy = topics.set('/busy.xml', { body: rss(['b0']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      for (let i = 1; i <= 3; i++) {
        topics.set('/busy.xml', { body: rss([`b${i}`]), contentType: RSS });
        expect((await ping(hub, busy)).success).to.equal(true);
        await host.waitFor(i, deliveries, 10_000);
        await settled(hub);
      }
      const [refused] = await subscriptionsOf(hub, busy);
      expect([refused?.ctErrors, refused?.ctConsecutiveErrors], 'three refusals, each counted as an error, none toward removal').to.deep.equal([3, 0]);
      await testApi(hub, 'removeExpired');
      expect(await subscriptionsOf(hub, busy), 'kept by the sweep').to.have.length(1);

      topics.set('/busy.xml', { body: rss(['b4']), contentType: RSS });
      expect((await ping(hub, busy)).success).to.equal(true);
      const tries = await host.waitFor(4, deliveries, 10_000);
      expect(new URLSearchParams(tries[3]!.body.toString()).get('url')).to.equal(busy);
      await settled(hub);
      const [taken] = await subscriptionsOf(hub, busy);
      expect([taken?.ctUpdates, taken?.ctErrors, taken?.ctConsecutiveErrors]).to.deep.equal([1, 3, 0]);
    });

    // The rests after 429s without Retry-After grew with ctConsecutiveErrors, which no longer counts them.
    it('rssCloud: the rests after 429s without Retry-After still grow with the refusals in a row', async () => {
      // Backoff from 400 ms: the rest after the nth refusal in a row is 200·2ⁿ–400·2ⁿ⁻¹ ms.
      const hub = await hubWith({ ...ENV, WEBSUB_RETRY_BASE_MS: '400', BREAKER_FAILURES: '100' });
      const topics = await topicServer();
      const host = await recorder((req, res) => void res.writeHead(req.method === 'POST' ? 429 : 204, { 'content-type': 'text/plain' }).end('Slow down'));
      const busy = topics.set('/busy.xml', { body: rss(['b0']), contentType: RSS });
      await seed(hub, busy, [{ url: `${host.url}/push/busy`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      expect((await ping(hub, busy)).success).to.equal(true);
      // Each change made while the last notification's rest runs, as a busy feed's are.
      for (let i = 1; i <= 3; i++) {
        await host.waitFor(i, deliveries, 10_000);
        topics.set('/busy.xml', { body: rss([`b${i}`]), contentType: RSS });
        expect((await ping(hub, busy)).success).to.equal(true);
      }
      const tries = await host.waitFor(4, deliveries, 10_000);
      const waits = gaps(tries);
      expect(waits[1], 'ms rested after the second refusal in a row').to.be.at.least(400 - 10);
      expect(waits[2], 'ms rested after the third refusal in a row').to.be.at.least(800 - 10);
    });

    it('rssCloud: other failures still count toward MAX_CONSECUTIVE_ERRORS, 429s between them neither adding nor clearing', async () => {
      // Not paused by its failures meanwhile: each notification goes out.
      const hub = await hubWith({ ...ENV, MAX_CONSECUTIVE_ERRORS: '3', BREAKER_FAILURES: '100' });
      const topics = await topicServer();
      const answers = [500, 429, 500, 429, 500];
      const host = await recorder((req, res) => {
        const status = req.method === 'POST' ? (answers.shift() ?? 204) : 204;
        res.writeHead(status, { 'content-type': 'text/plain', ...(status === 429 && { 'retry-after': '0' }) }).end('no');
      });
      const feed = topics.set('/failing.xml', { body: rss(['f0']), contentType: RSS });
      await seed(hub, feed, [{ url: `${host.url}/push/failing`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      for (let i = 1; i <= 5; i++) {
        topics.set('/failing.xml', { body: rss([`f${i}`]), contentType: RSS });
        expect((await ping(hub, feed)).success).to.equal(true);
        await host.waitFor(i, deliveries, 10_000);
        await settled(hub);
      }
      const [sub] = await subscriptionsOf(hub, feed);
      expect([sub?.ctErrors, sub?.ctConsecutiveErrors]).to.deep.equal([5, 3]);
      // Three failures in a row, 429s aside: it is notified no more.
      topics.set('/failing.xml', { body: rss(['f6']), contentType: RSS });
      expect((await ping(hub, feed)).success).to.equal(true);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(host.matching(deliveries)).to.have.length(5);
      await testApi(hub, 'removeExpired');
      expect(await subscriptionsOf(hub, feed), 'removed by the sweep').to.have.length(0);
    });
  });

  describe('the store failing to remove a delivered version from the outbox', () => {
    it('costs nothing but the log line: the lane goes on with the next version', async () => {
      const hub = await hubWith({});
      const topics = await topicServer();
      // Slow enough that the second version is queued behind the first.
      const sub = await recorder(async (req, res) => {
        if (req.method === 'POST') await sleep(200);
        subscriberAnswer()(req, res);
      });
      const topic = topics.set('/removal', { body: 'state 0\n', contentType: 'text/plain' });
      await subscribed(hub, sub, topic, '/cb');
      let failures = 0;
      const remove = hub.store.deleteOutbox.bind(hub.store);
      hub.store.deleteOutbox = (t, v) => (failures++ === 0 ? Promise.reject(new Error('disk full')) : remove(t, v));
      topics.set('/removal', { body: 'state 1\n', contentType: 'text/plain' });
      await publishTo(hub, topic);
      await sub.waitFor(1, deliveries);
      topics.set('/removal', { body: 'state 2\n', contentType: 'text/plain' });
      await publishTo(hub, topic);
      const got = await sub.waitFor(2, deliveries, 5000);
      expect(got.map((r) => r.body.toString())).to.deep.equal(['state 1\n', 'state 2\n']);
      expect(failures, 'the first removal failed').to.be.at.least(1);
    });
  });

  describe('a WebSub subscriber that fails while another is served', () => {
    it('a version\'s body is held for the fan-out\'s first pass only: each retry reads it from the store again', async () => {
      const hub = await hubWith({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '4', BREAKER_FAILURES: '1000' });
      const topics = await topicServer();
      const up = await recorder();
      const down = await recorder(answer(500));
      const topic = topics.set('/large', { body: 'small\n', contentType: 'text/plain' });
      await seed(hub, topic, [
        { url: `${up.url}/up`, protocol: 'websub', whenExpires: FAR_FUTURE },
        { url: `${down.url}/down`, protocol: 'websub', whenExpires: FAR_FUTURE },
      ]);
      const reads = bodyReads(hub);
      // Larger than the bodies the embedded store keeps in its journal: a file of its own.
      const large = `${'a large body '.repeat(10_000)}\n`;
      topics.set('/large', { body: large, contentType: 'text/plain' });
      await publishTo(hub, topic);
      const attempts = await down.waitFor(4, deliveries);
      await settled(hub);
      expect(up.matching(deliveries).map((r) => r.body.toString())).to.deep.equal([large]);
      for (const r of attempts) expect(r.body.toString()).to.equal(large);
      // The three retries each read it; holding it, the hub read it never, and kept it in memory
      // for as long as any subscriber of the version was being retried.
      expect(reads).to.deep.equal([1, 1, 1]);
    });

    it('retries under way at the same time share one read of the body, not one copy each', async () => {
      const n = 12;
      // Retries well after the first pass has ended (and let the body go): on a loaded machine,
      // one started at 100 ms still found the first pass's copy, and read none.
      const hub = await hubWith({ WEBSUB_RETRY_BASE_MS: '400', WEBSUB_MAX_ATTEMPTS: '3', BREAKER_FAILURES: '1000', DELIVERY_PER_HOST: String(n) });
      const topics = await topicServer();
      // Each subscriber refuses its first attempt; its retry is held until every retry has
      // arrived, so all n are under way at once.
      const held: (() => void)[] = [];
      const sub = await recorder((req, res) => {
        if (req.method !== 'POST') return answer(200)(req, res);
        if (sub.matching((r) => deliveries(r) && r.path === req.path).length === 1) return answer(500)(req, res);
        held.push(() => answer(200)(req, res));
        if (held.length === n) for (const release of held) release();
      });
      const topic = topics.set('/shared-retries', { body: 'small\n', contentType: 'text/plain' });
      await seed(
        hub,
        topic,
        Array.from({ length: n }, (_, i) => ({ url: `${sub.url}/cb/${i}`, protocol: 'websub', whenExpires: FAR_FUTURE })),
      );
      const reads = bodyReads(hub);
      const large = `${'a large body '.repeat(10_000)}\n`;
      topics.set('/shared-retries', { body: large, contentType: 'text/plain' });
      await publishTo(hub, topic);
      const got = await sub.waitFor(2 * n, deliveries);
      await settled(hub);
      for (const r of got) expect(r.body.toString()).to.equal(large);
      // Each reading its own, the n retries held n copies of the body at once (up to
      // DELIVERY_CONCURRENCY copies of up to MAX_RESPONSE_BYTES, outside OUTBOX_MAX_BYTES).
      expect(reads.length, 'reads of the body for the retries').to.equal(1);
    });

    it('an rssCloud notification, which carries no content, never reads the body from the store, even past its first pass', async () => {
      // Its host paused by its first failure, the next version waits out the pause past the
      // fan-out's first pass, when the body is no longer held.
      const hub = await hubWith({ BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '300' });
      const topics = await topicServer();
      let failed = false;
      const sub = await recorder((req, res) => {
        if (req.method !== 'POST' || failed) return answer(200)(req, res);
        failed = true;
        return answer(500)(req, res);
      });
      const topic = topics.set('/bare', { body: 'version 1\n', contentType: 'text/plain' });
      await seed(hub, topic, [{ url: `${sub.url}/rss`, protocol: 'http-post', whenExpires: FAR_FUTURE }]);
      const reads = bodyReads(hub);
      const large = `${'a large body '.repeat(10_000)}\n`;
      topics.set('/bare', { body: `${large}2`, contentType: 'text/plain' });
      await publishTo(hub, topic);
      await sub.waitFor(1, deliveries);
      topics.set('/bare', { body: `${large}3`, contentType: 'text/plain' });
      await publishTo(hub, topic);
      const got = await sub.waitFor(2, deliveries);
      await settled(hub);
      expect(got.map((r) => r.body.toString())).to.deep.equal([`url=${encodeURIComponent(topic)}`, `url=${encodeURIComponent(topic)}`]);
      expect(reads.length, 'reads of a body no rssCloud notification carries').to.equal(0);
    });

    it('so is a version resumed after a restart: its retries read the body from the store again', async () => {
      const env = { BREAKER_FAILURES: '1000', WEBSUB_MAX_ATTEMPTS: '4' };
      // Before the restart, the next retry a minute away: the version is still owed at the stop.
      const restartable = await restartableHub({ ...env, POLL_ENABLED: 'false', WEBSUB_RETRY_BASE_MS: '60000' });
      let hub = restartable.hub;
      const topics = await topicServer();
      const down = await recorder(subscriberAnswer(() => 500));
      const large = `${'a large body '.repeat(10_000)}\n`;
      const topic = topics.set('/resumed-large', { body: 'small\n', contentType: 'text/plain' });
      await subscribed(hub, down, topic, '/down');
      topics.set('/resumed-large', { body: large, contentType: 'text/plain' });
      await publishTo(hub, topic);
      await down.waitFor(1, deliveries);
      await restartable.stop();

      hub = await restartable.start({ ...env, POLL_ENABLED: 'false', WEBSUB_RETRY_BASE_MS: '100' });
      // Counted from here: the resumed fan-out's first attempt may already be under way, its
      // three retries (100, 200 and 400 ms apart) are not.
      const reads = bodyReads(hub);
      const attempts = await down.waitFor(5, deliveries, 10_000);
      await settled(hub);
      for (const r of attempts) expect(r.body.toString()).to.equal(large);
      // Held, as a resumed fan-out's body was, it would be read at most once here (by its first
      // attempt) and kept in memory for as long as its retries lasted.
      expect(reads.length, 'reads of the body after the restart').to.be.at.least(3);
    });
  });

  describe('a WebSub subscriber that stays down behind an open circuit', () => {
    it('gives each version up once its retry window has passed, so the outbox does not keep the topic\'s versions for the lease', async () => {
      // Three attempts 100 and 200 ms apart: a 300 ms window; the circuit opens for 0.5 s at a time.
      const hub = await hubWith({ BREAKER_FAILURES: '3', BREAKER_COOLDOWN_MS: '500', BREAKER_MAX_COOLDOWN_MS: '500', WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '3' });
      const topics = await topicServer();
      let status = 500;
      const dead = await recorder((req, res) => answer(status)(req, res));
      const topic = topics.set('/dead', { body: 'state 0\n', contentType: 'text/plain' });
      await seed(hub, topic, [{ url: `${dead.url}/cb`, protocol: 'websub', whenExpires: FAR_FUTURE }]);
      for (let v = 1; v <= 12; v++) {
        topics.set('/dead', { body: `state ${v}\n`, contentType: 'text/plain' });
        await publishTo(hub, topic);
        await sleep(30);
      }
      // Waiting on the circuit, the lane let one attempt go per cooldown: 12 versions of 3
      // attempts each would have stayed in the outbox for 18 s, and for the lease if the topic
      // kept changing.
      let left = (await hub.store.listOutbox()).length;
      for (let i = 0; i < 60 && left > 0; i++) {
        await sleep(100);
        left = (await hub.store.listOutbox()).length;
      }
      expect(left, 'versions still in the outbox').to.equal(0);
      expect(dead.matching(deliveries).length, 'requests to the dead host').to.be.at.most(10);
      const failed = (await subscriptionsOf(hub, topic))[0]!;
      expect(failed.ctErrors, 'the versions given up count as failures').to.be.at.least(12);

      // The subscription stays until its lease ends: once its host is back, the next version reaches it.
      status = 200;
      await sleep(600);
      topics.set('/dead', { body: 'state 13\n', contentType: 'text/plain' });
      await publishTo(hub, topic);
      const late = await dead.waitFor(1, (r) => deliveries(r) && r.body.toString() === 'state 13\n', 5000);
      expect(late).to.have.length(1);
    });
  });

  // ---- feeds, format by format ----------------------------------------------------------

  describe('feed diffing end to end', () => {
    interface Format {
      name: string;
      file: string;
      next: string;
      contentType: string;
      /** The ids of the entries of a feed document, in document order. */
      ids(body: Buffer): string[];
      /** Ids of the new and changed entries of `next`, in its order. */
      changed: string[];
      /** The markup that opens / closes an entry (XML formats). */
      entry?: [string, string];
      /** `next` with a feed-level date changed, twice over: a change that alters no entry. */
      touch(body: string, n: number): string;
    }
    const xml = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'item' || name === 'entry' });
    const text = (v: unknown): string => (typeof v === 'object' && v !== null ? String((v as Record<string, unknown>)['#text']) : String(v));
    type Node = Record<string, unknown>;
    const rss2: Format = {
      name: 'RSS 2.0',
      file: 'rss2.xml',
      next: 'rss2-next.xml',
      contentType: 'application/rss+xml; charset=utf-8',
      ids: (b) => ((((xml.parse(b) as Node).rss as Node).channel as Node).item as Node[] | undefined ?? []).map((i) => text(i.guid ?? i.link)),
      changed: ['tag:notes.example.com,2024:post-1042', 'https://notes.example.com/2024/03/11/espresso'],
      entry: ['<item>', '</item>'],
      touch: (s, n) => s.replace(/<lastBuildDate>[^<]*<\/lastBuildDate>/, `<lastBuildDate>Wed, 13 Mar 2024 1${n}:00:00 GMT</lastBuildDate>`),
    };
    const FORMATS: Format[] = [
      rss2,
      // A feed made by a script often goes out as PHP's default type.
      { ...rss2, name: 'RSS 2.0 served as text/html', contentType: 'text/html; charset=utf-8' },
      {
        name: 'RSS 1.0 (RDF)',
        file: 'rss1.rdf',
        next: 'rss1-next.rdf',
        contentType: 'application/rdf+xml',
        ids: (b) => (((xml.parse(b) as Node)['rdf:RDF'] as Node).item as Node[] | undefined ?? []).map((i) => String(i['@_rdf:about'])),
        changed: ['https://lab.example.org/n/18', 'https://lab.example.org/n/15'],
        entry: ['<item ', '</item>'],
        touch: (s, n) => s.replace('<dc:date>2024-03-13T10:00:00Z</dc:date>', `<dc:date>2024-03-13T1${n}:00:00Z</dc:date>`),
      },
      {
        name: 'Atom',
        file: 'atom.xml',
        next: 'atom-next.xml',
        contentType: 'application/atom+xml; charset=utf-8',
        ids: (b) => (((xml.parse(b) as Node).feed as Node).entry as Node[] | undefined ?? []).map((e) => text(e.id)),
        changed: ['tag:blog.example.net,2024:/2024/03/shipping', 'tag:blog.example.net,2024:/2024/03/edge-cache'],
        entry: ['<entry>', '</entry>'],
        // The first <updated> is the feed's own.
        touch: (s, n) => s.replace('<updated>2024-03-13T07:15:00Z</updated>', `<updated>2024-03-13T1${n}:00:00Z</updated>`),
      },
      {
        name: 'JSON Feed',
        file: 'feed.json',
        next: 'feed-next.json',
        contentType: 'application/feed+json',
        ids: (b) => ((JSON.parse(b.toString()) as { items: { id?: unknown; url?: unknown }[] }).items).map((i) => String(i.id ?? i.url)),
        changed: ['2004', 'https://micro.example.com/2024/03/11/podcast'],
        touch: (s, n) => s.replace('"generated_at": "2024-03-13T09:00:00Z"', `"generated_at": "2024-03-13T1${n}:00:00Z"`),
      },
    ];

    let hub: TestHub;
    let topics: TopicServer;
    let ws: Recorder;
    let cloud: Recorder;
    before(async () => {
      hub = await startTestHub({ POLL_ENABLED: 'false' });
      topics = await TopicServer.start();
      ws = await Recorder.start(subscriberAnswer());
      cloud = await Recorder.start();
    });
    after(async () => {
      await ws?.close();
      await cloud?.close();
      await topics?.close();
      await hub?.destroy();
    });
    const posts = (rec: Recorder, p: string): Recorded[] => rec.matching((r) => r.method === 'POST' && r.path === p);

    for (const f of FORMATS) {
      it(`${f.name}: the first publish delivers the whole feed; the next only its new and changed entries in the feed's own envelope and Content-Type; a feed-level date alone delivers nothing on either protocol`, async () => {
        const key = f.name.replace(/\W/g, '-');
        const v1 = await readFile(path.join(FIXTURES, f.file));
        const next = await readFile(path.join(FIXTURES, f.next));
        const topicPath = `/${key}`;
        const topic = topics.set(topicPath, { body: v1, contentType: f.contentType });

        // Subscribed before the hub ever read the topic: the first read is the first version,
        // and with nothing to diff it against the subscriber receives it whole.
        await subscribed(hub, ws, topic, `/${key}/early`);
        await publishTo(hub, topic);
        await settled(hub);
        const [first, ...none] = posts(ws, `/${key}/early`);
        expect(none).to.deep.equal([]);
        expect(first!.body.equals(v1), 'the whole first version').to.equal(true);
        expect(first!.headers['content-type']).to.equal(f.contentType);

        // Subscribed once the topic is known: it starts at the current version, so it gets only what follows.
        const pn = await postForm(hub.url, '/pleaseNotify', { port: String(cloud.port), path: `/${key}/rss`, protocol: 'http-post', url1: topic });
        expect(await pn.text()).to.contain('success="true"');
        const cloudTest = posts(cloud, `/${key}/rss`).length; // the handler test
        await subscribed(hub, ws, topic, `/${key}/late`);
        await settled(hub);
        expect(posts(ws, `/${key}/late`), 'nothing for a version older than the subscription').to.deep.equal([]);

        topics.set(topicPath, { body: next, contentType: f.contentType });
        await publishTo(hub, topic);
        await settled(hub);
        const early = posts(ws, `/${key}/early`);
        const late = posts(ws, `/${key}/late`);
        expect(early).to.have.length(2);
        expect(late).to.have.length(1);
        const partial = early[1]!.body;
        expect(late[0]!.body.equals(partial), 'both subscribers get the same partial feed').to.equal(true);
        for (const d of [early[1]!, late[0]!]) expect(d.headers['content-type']).to.equal(f.contentType);
        expect(f.ids(partial), 'only the new and changed entries').to.deep.equal(f.changed);
        expect(f.ids(next).length).to.be.above(f.changed.length);
        if (f.entry) {
          // The envelope is the feed's own bytes: everything before the first entry and after the last.
          const [open, close] = f.entry;
          const head = next.subarray(0, next.indexOf(open));
          const tail = next.subarray(next.lastIndexOf(close) + close.length);
          expect(partial.subarray(0, head.length).equals(head), 'the envelope before the entries').to.equal(true);
          expect(partial.subarray(partial.length - tail.length).equals(tail), 'the envelope after the entries').to.equal(true);
          expect(XMLValidator.validate(partial.toString()), 'well-formed').to.equal(true);
        } else {
          const whole = JSON.parse(next.toString()) as { items: unknown[] };
          const kept = whole.items.filter((_, i) => f.changed.includes(f.ids(next)[i]!));
          expect(JSON.parse(partial.toString())).to.deep.equal({ ...whole, items: kept });
        }
        expect(posts(cloud, `/${key}/rss`).map((r) => r.body.toString()).slice(cloudTest)).to.deep.equal([new URLSearchParams({ url: topic }).toString()]);

        // A new lastBuildDate / updated / dc:date / generated_at alone: read, and nobody hears of it.
        const reads = topics.fetches(topicPath).length;
        topics.set(topicPath, { body: f.touch(next.toString(), 1), contentType: f.contentType });
        await publishTo(hub, topic);
        await settled(hub);
        topics.set(topicPath, { body: f.touch(next.toString(), 2), contentType: f.contentType });
        const ping = await postForm(hub.url, '/ping', { url: topic });
        expect(await ping.text()).to.contain('Thanks for the ping.');
        await settled(hub);
        await sleep(QUIET_MS);
        expect(topics.fetches(topicPath).length - reads, 'both changes were read').to.equal(2);
        expect(f.touch(next.toString(), 1)).to.not.equal(next.toString());
        expect(posts(ws, `/${key}/early`)).to.have.length(2);
        expect(posts(ws, `/${key}/late`)).to.have.length(1);
        expect(posts(cloud, `/${key}/rss`)).to.have.length(cloudTest + 1);
      });
    }

    // A CMS whose database is down answers an empty channel, an empty body or an error page with
    // 200; when it is back, its subscribers have every entry but the new one.
    for (const [name, glitch, type] of [
      ['an empty channel', rss([]), 'application/rss+xml'],
      ['an empty body', '', 'application/rss+xml'],
      ['an error page', '<html><body><h1>Error establishing a database connection</h1></body></html>', 'text/html; charset=utf-8'],
    ] as const) {
      it(`a feed that answers ${name} delivers nothing, and back delivers only its new entry, not every entry again`, async () => {
        const topicPath = `/back-after-${name.replace(/\W/g, '-')}`;
        const topic = topics.set(topicPath, { body: rss(['a', 'b', 'c']), contentType: 'application/rss+xml' });
        await publishTo(hub, topic);
        await settled(hub);
        await subscribed(hub, ws, topic, topicPath);
        topics.set(topicPath, { body: glitch, contentType: type });
        await publishTo(hub, topic);
        await settled(hub);
        expect(posts(ws, topicPath), 'nothing new: the feed is not its error page').to.deep.equal([]);
        topics.set(topicPath, { body: rss(['d', 'a', 'b', 'c']), contentType: 'application/rss+xml' });
        await publishTo(hub, topic);
        await settled(hub);
        const got = posts(ws, topicPath);
        expect(got.map((r) => guids(r.body)), 'the entry that is new since the subscriber last heard').to.deep.equal([['d']]);
      });
    }

    it('a feed its server gzips though the hub asked for no compression is diffed and delivered as XML: only the new entry, no gzip bytes', async () => {
      const gzipped = (ids: string[]): { body: Buffer; contentType: string; headers: Record<string, string> } => ({
        body: gzipSync(rss(ids)),
        contentType: 'application/rss+xml',
        headers: { 'content-encoding': 'gzip' },
      });
      const topic = topics.set('/gzipped', gzipped(['a', 'b']));
      await publishTo(hub, topic);
      await settled(hub);
      await subscribed(hub, ws, topic, '/gzipped');
      topics.set('/gzipped', gzipped(['c', 'a', 'b']));
      await publishTo(hub, topic);
      await settled(hub);
      const got = posts(ws, '/gzipped');
      expect(got.map((r) => [r.headers['content-encoding'], r.body.toString()])).to.deep.equal([[undefined, rss(['c'])]]);
      expect(topics.fetches('/gzipped').map((r) => r.headers['accept-encoding'])).to.deep.equal([undefined, undefined]);
    });

    it("a JSON Feed's new items reach subscribers as the publisher wrote them: ids past 2^53 keep their digits, ISO-8859-1 bytes stay ISO-8859-1", async () => {
      // Sequential snowflake-style ids are one number as doubles, and a re-serialised feed went
      // out as UTF-8 under the publisher's ISO-8859-1 label.
      const item = (id: string): string => `{\n      "id": ${id},\n      "title": "Cr\u00e8me br\u00fbl\u00e9e n\u00b0${id.slice(-1)}"\n    }`;
      const feed = (ids: string[]): Buffer =>
        Buffer.from(`{\n  "version": "https://jsonfeed.org/version/1.1",\n  "title": "P\u00e2tisserie",\n  "items": [\n    ${ids.map(item).join(',\n    ')}\n  ]\n}\n`, 'latin1');
      const type = 'application/feed+json; charset=ISO-8859-1';
      const ids = ['1790000000000000003', '1790000000000000002', '1790000000000000001'];
      const topic = topics.set('/json-latin1', { body: feed(ids.slice(2)), contentType: type });
      await publishTo(hub, topic);
      await settled(hub);
      await subscribed(hub, ws, topic, '/json-latin1');
      topics.set('/json-latin1', { body: feed(ids), contentType: type });
      await publishTo(hub, topic);
      await settled(hub);
      const got = posts(ws, '/json-latin1');
      expect(got).to.have.length(1);
      expect(got[0]!.headers['content-type']).to.equal(type);
      expect(got[0]!.body.toString('latin1')).to.equal(feed(ids.slice(0, 2)).toString('latin1'));
      expect(got[0]!.body.includes(Buffer.from('Cr\u00e8me', 'utf8')), 'no UTF-8 under a Latin-1 label').to.equal(false);
    });

    it('a topic that is not a feed (text/plain) is delivered whole, every version', async () => {
      const topic = topics.set('/plain', { body: 'line one\n', contentType: 'text/plain; charset=utf-8' });
      await subscribed(hub, ws, topic, '/plain');
      await publishTo(hub, topic);
      await settled(hub);
      topics.set('/plain', { body: 'line one\nline two\n', contentType: 'text/plain; charset=utf-8' });
      await publishTo(hub, topic);
      await settled(hub);
      const got = posts(ws, '/plain');
      expect(got.map((r) => r.body.toString())).to.deep.equal(['line one\n', 'line one\nline two\n']);
      for (const r of got) expect(r.headers['content-type']).to.equal('text/plain; charset=utf-8');
    });

    it(`a feed of more than ${MAX_DIFF_ENTRIES} entries is compared by its bytes and delivered whole`, async () => {
      const archive = (entries: number, built: string): string =>
        `<?xml version="1.0"?><rss version="2.0"><channel><title>Archive</title><lastBuildDate>${built}</lastBuildDate>${Array.from(
          { length: entries },
          (_, i) => `<item><guid>https://archive.example/${entries - i}</guid></item>`,
        ).join('')}</channel></rss>`;
      const versions = [
        archive(MAX_DIFF_ENTRIES + 1, 'Mon, 01 Jan 2024 00:00:00 GMT'),
        archive(MAX_DIFF_ENTRIES + 2, 'Mon, 01 Jan 2024 00:00:00 GMT'), // one new entry
        archive(MAX_DIFF_ENTRIES + 2, 'Tue, 02 Jan 2024 00:00:00 GMT'), // a new date alone
      ];
      const topic = topics.set('/archive', { body: versions[0]!, contentType: 'application/rss+xml' });
      await subscribed(hub, ws, topic, '/archive');
      for (const body of versions) {
        topics.set('/archive', { body, contentType: 'application/rss+xml' });
        await publishTo(hub, topic);
        await settled(hub);
      }
      // Diffed, the second would be one entry and the third nothing at all.
      expect(posts(ws, '/archive').map((r) => r.body.toString())).to.deep.equal(versions);
    });
  });
});
