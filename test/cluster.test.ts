// Three hub processes on one PostgreSQL database (each as `npm start` would run it, in a child
// process): what one accepts, the others honour. Subscribe through one and ping or publish
// through another: every subscriber gets each update exactly once. Concurrent subscribes through
// all three lose nothing. An SSE stream on one process sees a change published through another.
// SIGKILL one process mid-fan-out of 5,000 subscribers: the others take its claim over once the
// lease expires and complete the fan-out, repeating only what was in flight at the kill.
// SIGSTOP one past its lease mid-fan-out, then SIGCONT: it sends nothing more of the version the
// others took over, so no more is repeated than after a kill.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { newSubscription, type Subscription } from '../lib/model.js';
import { PgStore } from '../lib/store/pg-store.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { tempDataDir } from './helpers/hub.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { FeedServer, MSG, notificationsAt, ping, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { openStream } from './helpers/sse.js';
import { Subscriber } from './helpers/websub.js';

const DELIVERY_CONCURRENCY = 64;

function postForm(hubUrl: string, form: Record<string, string>): Promise<Response> {
  return fetch(`${hubUrl}/websub`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A subscriber that answers every POST after `delayMs`, counting requests per path. */
class SlowSink {
  readonly counts = new Map<string, number>();
  total = 0;
  private constructor(private readonly server: http.Server) {}

  static async start(delayMs: number): Promise<SlowSink> {
    const server = http.createServer({ keepAliveTimeout: 30_000 });
    const sink = new SlowSink(server);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => {
        const path = req.url ?? '/';
        sink.counts.set(path, (sink.counts.get(path) ?? 0) + 1);
        sink.total++;
        setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Stops a suite's hub processes, then removes everything the suite made (each part may be missing if its `before` failed). */
async function tearDown(made: { hubs: ChildHub[]; store?: PgStore; feeds?: FeedServer; dirs: string[]; dbUrl?: string }): Promise<void> {
  await Promise.all(made.hubs.map((h) => h.stop('SIGTERM')));
  await made.store?.close();
  await made.feeds?.close();
  for (const d of made.dirs) await rm(d, { recursive: true, force: true });
  if (made.dbUrl) await dropDatabaseSchema(made.dbUrl);
}

describe('three hub processes on one PostgreSQL database', function () {
  this.timeout(90_000);
  let dbUrl: string;
  let store: PgStore;
  const hubs: ChildHub[] = [];
  const dirs: string[] = [];
  let feeds: FeedServer;

  before(async function () {
    this.timeout(60_000);
    dbUrl = await freshDatabaseUrl('cluster');
    feeds = await FeedServer.start();
    const env = {
      DATABASE_URL: dbUrl,
      DATABASE_POOL_SIZE: '8',
      OUTBOX_CLAIM_LEASE_MS: '1500',
      DELIVERY_CONCURRENCY: String(DELIVERY_CONCURRENCY),
      DELIVERY_PER_HOST: '16',
      POLL_ENABLED: 'false',
    };
    for (let i = 0; i < 3; i++) dirs.push(await tempDataDir());
    // Started at once: the schema migrations race, and run once.
    hubs.push(...(await Promise.all(dirs.map((d) => spawnHub(d, env, 30_000)))));
    store = new PgStore({ connectionString: dbUrl, poolSize: 8 });
    await store.open();
  });

  after(async function () {
    this.timeout(30_000);
    await tearDown({ hubs, store, feeds, dirs, dbUrl });
  });

  it('subscribe through one, ping or publish through another: every subscriber gets each update exactly once, in order', async () => {
    const [a, b, c] = hubs as [ChildHub, ChildHub, ChildHub];
    const feed = feeds.changing('cluster-once');
    const rss = await Recorder.start(subscriberOk);
    const web = await Subscriber.start();
    try {
      const reply = await pleaseNotify(a, subscribeForm(rss, '/notify', feed));
      expect(reply.success, reply.msg).to.equal(true);
      const res = await postForm(a.url, { 'hub.mode': 'subscribe', 'hub.topic': feed, 'hub.callback': web.callback('/cb') });
      expect(res.status, await res.text()).to.equal(202);
      await until('the WebSub subscription', async () => (await store.getSubscription(feed, web.callback('/cb'))) !== undefined);
      rss.reset();
      web.rec.reset();

      expect((await ping(b, feed)).success).to.equal(true);
      // The rssCloud ping answers after its deliveries' first attempts.
      expect(notificationsAt(rss, '/notify')).to.have.length(1);
      await web.waitDeliveries(1, '/cb');

      expect((await postForm(c.url, { 'hub.mode': 'publish', 'hub.url': feed })).status).to.equal(204);
      await rss.waitFor(2, (r) => r.path === '/notify');
      await web.waitDeliveries(2, '/cb');
      await sleep(1500); // a duplicate would show up now
      expect(notificationsAt(rss, '/notify')).to.have.length(2);
      const bodies = web.deliveries('/cb').map((r) => r.body.toString());
      expect(bodies).to.have.length(2);
      // The changing feed says which read it was: the later version comes second.
      const reads = bodies.map((t) => Number(/read (\d+)/.exec(t)?.[1]));
      expect(reads[0]).to.be.lessThan(reads[1]!);
      await until('the outbox to empty', async () => (await store.outboxOf(feed)).length === 0, 5000);
    } finally {
      await rss.close();
      await web.close();
    }
  });

  it("a ping through one process does not wait out another process's retries of an older version", async () => {
    const [a, b] = hubs as [ChildHub, ChildHub, ChildHub];
    const feed = feeds.changing('cluster-behind');
    const web = await Subscriber.start();
    try {
      const res = await postForm(a.url, { 'hub.mode': 'subscribe', 'hub.topic': feed, 'hub.callback': web.callback('/down') });
      expect(res.status, await res.text()).to.equal(202);
      await until('the WebSub subscription', async () => (await store.getSubscription(feed, web.callback('/down'))) !== undefined);
      web.deliveryStatuses = Array.from({ length: 20 }, () => 500);
      // Version 1 through A: its first attempt fails, and A retries it (5 s, then 10 s, …).
      expect((await ping(a, feed)).success).to.equal(true);
      expect(web.deliveries('/down')).to.have.length(1);
      // Version 2 through B waits for A's version 1 to be handled first: its ping must not.
      expect((await ping(b, feed, { signal: AbortSignal.timeout(15_000) })).msg).to.equal(MSG.pinged);
      // Nothing of version 2 went out before version 1 was done with.
      const reads = web.deliveries('/down').map((r) => Number(/read (\d+)/.exec(r.body.toString())?.[1]));
      expect(new Set(reads).size, `one version so far: ${reads.join(', ')}`).to.equal(1);
    } finally {
      // Answered from now on, so the retries end.
      web.deliveryStatuses = [];
      await web.close();
    }
  });

  it('concurrent subscribes through all three processes lose nothing', async () => {
    const feed = feeds.fixed('cluster-concurrent');
    const rss = await Recorder.start(subscriberOk);
    const web = await Subscriber.start();
    try {
      const perHub = 40;
      const requests: Promise<unknown>[] = [];
      hubs.forEach((h, i) => {
        for (let k = 0; k < perHub; k++) {
          requests.push(
            pleaseNotify(h, subscribeForm(rss, `/n/${i}/${k}`, feed)).then((r) => expect(r.success, r.msg).to.equal(true)),
            postForm(h.url, { 'hub.mode': 'subscribe', 'hub.topic': feed, 'hub.callback': web.callback(`/w/${i}/${k}`) }).then((r) => expect(r.status).to.equal(202)),
          );
        }
      });
      await Promise.all(requests);
      await until('every subscription', async () => (await store.countSubscriptions({ topic: feed })) === 2 * 3 * perHub);
      const subs = await store.subscriptionsOf(feed);
      expect(subs.filter((s) => s.protocol === 'http-post')).to.have.length(3 * perHub);
      expect(subs.filter((s) => s.protocol === 'websub')).to.have.length(3 * perHub);
    } finally {
      await rss.close();
      await web.close();
    }
  });

  it("an SSE stream on one process sees a change published through another, with the feed's new entries", async () => {
    const [a, , c] = hubs as [ChildHub, ChildHub, ChildHub];
    // A feed with a new entry on every read: the entries travel to the other process in the
    // change event's NOTIFY, read from the feed when the event is first serialised.
    let reads = 0;
    const site = await Recorder.start((_req, res) => {
      reads++;
      res
        .writeHead(200, { 'content-type': 'application/rss+xml' })
        .end(`<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title><link>http://example.com/</link><item><guid>e${reads}</guid><title>Entry ${reads}</title></item></channel></rss>\n`);
    });
    const feed = `${site.url}/cluster-sse.xml`;
    const web = await Subscriber.start();
    const stream = await openStream(`${a.url}/stream?topic=${encodeURIComponent(feed)}`);
    try {
      // Somebody follows the topic, so a publish reads it and finds a change.
      expect((await postForm(c.url, { 'hub.mode': 'subscribe', 'hub.topic': feed, 'hub.callback': web.callback('/cb') })).status).to.equal(202);
      await until('the subscription', async () => (await store.getSubscription(feed, web.callback('/cb'))) !== undefined);
      expect((await postForm(c.url, { 'hub.mode': 'publish', 'hub.url': feed })).status).to.equal(204);
      const [change] = await stream.waitFor(1, (e) => e.event === 'change', 10_000);
      const data = JSON.parse(change!.data) as { topic: string; entries: { id: string; title: string | null }[] | null };
      expect(data.topic).to.equal(feed);
      expect(data.entries?.map((e) => [e.id, e.title])).to.deep.equal([[`e${reads}`, `Entry ${reads}`]]);
    } finally {
      stream.close();
      await web.close();
      await site.close();
    }
  });

  /**
   * A topic read once through `a` with nobody following it (so its next read is version 2 for
   * everyone), then `total` http-post subscribers spread over ten sinks answering in 30 ms (the
   * fan-out must still be running when a process is killed or stopped after its first 1,000: the
   * other 4,000 take it ~2 s at DELIVERY_CONCURRENCY, where the check takes a few milliseconds).
   */
  async function bigFanOut(a: ChildHub, name: string, total: number): Promise<{ feed: string; sinks: SlowSink[]; delivered: () => number; reached: () => number }> {
    const feed = feeds.changing(name);
    expect((await ping(a, feed)).success).to.equal(true);
    const sinks = await Promise.all(Array.from({ length: 10 }, () => SlowSink.start(30)));
    const now = Date.now();
    const subs: Subscription[] = Array.from({ length: total }, (_, i) =>
      newSubscription(feed, `http://127.0.0.1:${sinks[i % sinks.length]!.port}/${name}/${i}`, 'http-post', now - 1000, now + 86400_000),
    );
    for (let i = 0; i < subs.length; i += 100) await Promise.all(subs.slice(i, i + 100).map((s) => store.putSubscription(s)));
    return { feed, sinks, delivered: () => sinks.reduce((n, s) => n + s.total, 0), reached: () => sinks.reduce((n, s) => n + s.counts.size, 0) };
  }

  it('SIGKILL one process mid-fan-out of 5,000 subscribers: the other two complete it', async () => {
    const [a] = hubs as [ChildHub, ChildHub, ChildHub];
    const total = 5000;
    const { feed, sinks, delivered, reached } = await bigFanOut(a, 'cluster-big', total);
    try {
      // Answered only after every first attempt: the kill cuts it off.
      const pinged = ping(a, feed).catch(() => undefined);
      await until('the fan-out to be under way', () => delivered() >= 1000, 20_000);
      const killedAt = delivered();
      await a.stop('SIGKILL');
      await pinged;
      expect(killedAt, 'the fan-out was still running at the kill').to.be.lessThan(total);

      await until('every subscriber to be reached', () => reached() === total, 45_000);
      await until('the outbox to empty', async () => (await store.outboxOf(feed)).length === 0, 10_000);
      const duplicates = delivered() - total;
      // Sent and not yet durable at the kill: the requests in flight (one per slot) and the
      // outcomes of the batch being written (one more per slot), as the README promises.
      expect(duplicates, 'duplicates beyond what was sent and not yet recorded at the kill').to.be.at.most(2 * DELIVERY_CONCURRENCY);
    } finally {
      for (const s of sinks) await s.close();
    }
  });

  it('SIGSTOP one process past its lease mid-fan-out of 5,000: once it runs again it sends nothing more of what another took over', async () => {
    // The processes still running (the test above killed the first; run alone, all three): the
    // first of them is stopped, the others are there to take its claim over.
    const live = hubs.filter((h) => h.proc.exitCode === null && h.proc.signalCode === null);
    expect(live.length, 'processes running').to.be.at.least(2);
    const a = live[0]!;
    const total = 5000;
    const { feed, sinks, delivered, reached } = await bigFanOut(a, 'cluster-stopped', total);
    try {
      const pinged = ping(a, feed).catch(() => undefined);
      await until('the fan-out to be under way', () => delivered() >= 1000, 20_000);
      // A process whose event loop is held up longer than the lease (load, GC, a paused VM),
      // made deterministic: frozen, it renews nothing, and another process takes the version over.
      a.proc.kill('SIGSTOP');
      const stoppedAt = delivered();
      try {
        // What it had written before the stop still arrives (at most 2 × DELIVERY_CONCURRENCY
        // sends are ever unrecorded): beyond that, only a process that took the claim over sends.
        await until('another process to take the fan-out over', () => delivered() > stoppedAt + 2 * DELIVERY_CONCURRENCY + 200, 20_000);
      } finally {
        a.proc.kill('SIGCONT');
      }
      expect(reached(), 'the fan-out was still running when the stopped process went on').to.be.lessThan(total - 1000);
      await until('every subscriber to be reached', () => reached() === total, 45_000);
      await until('the outbox to empty', async () => (await store.outboxOf(feed)).length === 0, 10_000);
      // The stopped process answers its ping once its lanes have dropped the version it lost.
      await pinged;
      await sleep(500); // a late duplicate would show up now
      const duplicates = delivered() - total;
      // Sent twice: only what the stopped process had sent and not yet recorded when it was
      // frozen. Those sends (in flight, or answered and waiting for their batch to be written)
      // each hold one of its 2 × DELIVERY_CONCURRENCY places for unrecorded deliveries; the stop
      // freezes them with it, so it adds nothing to the SIGKILL bound above. A send that lingers
      // without a place (DELIVERY_LINGERING) would add one more, but answered in 30 ms none does.
      // After SIGCONT its lease has passed by its own clock, so it starts no send until a renewal
      // answers, and the renewal finds the claim another's: the rest is dropped, unsent and
      // unrecorded. (Before, it went on sending its queued remainder alongside the taker.)
      expect(duplicates, 'duplicates beyond what was sent and not yet recorded at the stop').to.be.at.most(2 * DELIVERY_CONCURRENCY);
      expect(
        a.log.some((l) => l.includes('"msg":"another process took over a fan-out')),
        'the stopped process logged that it lost its claim',
      ).to.equal(true);
    } finally {
      a.proc.kill('SIGCONT');
      for (const s of sinks) await s.close();
    }
  });
});

describe('a hub process on PostgreSQL stopped with SIGTERM mid-fan-out', function () {
  this.timeout(90_000);
  const LEASE_MS = 60_000;
  let dbUrl: string;
  let store: PgStore;
  let feeds: FeedServer;
  const dirs: string[] = [];
  const hubs: ChildHub[] = [];
  // A lease far longer than the test waits: only claims given back let the next process resume.
  const env = (): Record<string, string> => ({
    DATABASE_URL: dbUrl,
    DATABASE_POOL_SIZE: '4',
    OUTBOX_CLAIM_LEASE_MS: String(LEASE_MS),
    DELIVERY_CONCURRENCY: '8',
    DELIVERY_PER_HOST: '8',
    POLL_ENABLED: 'false',
  });

  before(async function () {
    this.timeout(60_000);
    dbUrl = await freshDatabaseUrl('graceful');
    feeds = await FeedServer.start();
    store = new PgStore({ connectionString: dbUrl, poolSize: 4 });
    for (let i = 0; i < 3; i++) dirs.push(await tempDataDir());
  });

  after(async function () {
    this.timeout(30_000);
    await tearDown({ hubs, store, feeds, dirs, dbUrl });
  });

  it('gives its claims back as it exits: the next process resumes the rest at once, repeating nothing', async () => {
    const feed = feeds.changing('graceful');
    // Each stop below lets some 50 through (40, then those in flight): 200 still leaves the third
    // process about half the fan-out, and it takes half as long as 400. At 100 ms a delivery, the
    // 40 before each stop take half a second at DELIVERY_CONCURRENCY: nothing here depends on
    // the pace but that the fan-out outlasts the checks between stops (it takes ~2.5 s).
    const total = 200;
    const sink = await SlowSink.start(100);
    try {
      const first = await spawnHub(dirs[0]!, env(), 30_000);
      hubs.push(first);
      await store.open();
      expect((await ping(first, feed)).success).to.equal(true); // version 1, nobody following
      const now = Date.now();
      for (let i = 0; i < total; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, k) =>
            store.putSubscription(newSubscription(feed, `http://127.0.0.1:${sink.port}/g/${i + k}`, 'http-post', now - 1000, now + 86400_000)),
          ),
        );
      }
      // Answered at once (the fan-out goes on behind it), so SIGTERM has no request to wait for.
      expect((await postForm(first.url, { 'hub.mode': 'publish', 'hub.url': feed })).status).to.equal(204);

      /** SIGTERM once `more` deliveries went out, then check the process gave its claim back. */
      const stopMidway = async (hub: ChildHub, more: number): Promise<void> => {
        const from = sink.total;
        await until('deliveries to be under way', () => sink.total >= from + more, 20_000);
        const exit = await hub.stop('SIGTERM');
        expect(exit.code, 'a graceful exit').to.equal(0);
        const left = await store.outboxOf(feed);
        expect(left, 'the fan-out was unfinished when the process exited').to.have.length(1);
        expect(left[0]?.claimedBy, 'the claim was given back').to.equal(undefined);
      };
      await stopMidway(first, 40);
      // The second resumes the fan-out at start (a resumed fan-out is not a request the hub
      // waits for: its lanes must have stopped, their outcomes durable, before the release).
      const second = await spawnHub(dirs[1]!, env(), 30_000);
      hubs.push(second);
      await stopMidway(second, 40);
      expect(sink.counts.size).to.be.lessThan(total);

      const third = await spawnHub(dirs[2]!, env(), 30_000);
      hubs.push(third);
      // Well inside the lease: without the claims given back, this would wait it out.
      await until('every subscriber to be reached', () => sink.counts.size === total, 30_000);
      await until('the outbox to empty', async () => (await store.outboxOf(feed)).length === 0, 10_000);
      expect(sink.total - total, 'deliveries repeated after graceful stops').to.equal(0);
    } finally {
      await sink.close();
    }
  });
});
