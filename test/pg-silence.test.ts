// The PostgreSQL host going silent without closing anything (a network partition, a frozen VM, a
// paused container), then answering again: requests get each protocol's failure reply within
// DATABASE_QUERY_TIMEOUT_MS however many arrive, nothing acknowledged is lost, and the hub
// recovers by itself. pg-outage.test.ts has the server stopped (connections closed, refused).
// The hub reaches a private server through test/helpers/silent-proxy.ts, which stays silent
// until each test's answers are in: on the old code they never came.
import { expect } from 'chai';
import { startPgServer, type PgServer } from './helpers/pg-server.js';
import { withSearchPath } from './helpers/postgres.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { startSilentProxy, type SilentProxy } from './helpers/silent-proxy.js';
import { Subscriber, TopicServer, publish, settled, subscribe, subscriptionsOf } from './helpers/websub.js';
import { ping, pleaseNotify, subscribeForm } from './helpers/rsscloud.js';
import { Recorder } from './helpers/recorder.js';
import { HUB_FAILURE_WORDS } from '../lib/messages.js';
import { PgStore } from '../lib/store/pg-store.js';

describe('a hub on PostgreSQL while the database host is silent', function () {
  this.timeout(20_000);
  let server: PgServer;
  let proxy: SilentProxy;
  let hub: TestHub;
  let topics: TopicServer;
  let webSub: Subscriber;
  let rssSub: Recorder;

  before(async function () {
    this.timeout(60_000);
    server = await startPgServer();
    await server.admin.query('CREATE SCHEMA silence');
    const socketDir = new URL(server.url).searchParams.get('host')!;
    proxy = await startSilentProxy(`${socketDir}/.s.PGSQL.5432`);
    const env = {
      DATABASE_URL: withSearchPath(`postgresql://pushbutton@${proxy.host}:${proxy.port}/postgres`, 'silence'),
      DATABASE_POOL_SIZE: '2',
      DATABASE_QUERY_TIMEOUT_MS: '1000',
      DATABASE_LOCK_WAIT_MS: '1000',
      POLL_ENABLED: 'false',
    };
    hub = await startTestHub(env, await tempDataDir());
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
    rssSub = await Recorder.start();
  });
  afterEach(() => proxy?.heal());
  after(async function () {
    this.timeout(60_000);
    proxy?.heal();
    await hub?.destroy();
    await proxy?.close();
    for (const s of [topics, webSub, rssSub]) await s?.close();
    await server?.stop();
  });

  it('answers rssCloud, WebSub and /metrics with their failure replies while silent, more requests than connections', async () => {
    const feed = topics.set('/silent-feed', { body: 'feed\n', contentType: 'text/plain' });
    // Statements in flight on every pooled connection when the host goes quiet.
    proxy.silence();
    const pings = Array.from({ length: 5 }, () => ping(hub, feed));
    const [notified, subscribed, metrics, healthz] = await Promise.all([
      pleaseNotify(hub, subscribeForm(rssSub, '/rss', feed)),
      subscribe(hub, { 'hub.topic': feed, 'hub.callback': webSub.callback('/silent') }),
      fetch(`${hub.url}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() })),
      fetch(`${hub.url}/healthz`),
    ]);
    // Each was held for as long as the silence lasted: for ever, to a client.
    for (const reply of await Promise.all(pings)) expect(reply).to.include({ status: 500, root: 'result', success: false, msg: HUB_FAILURE_WORDS });
    expect(notified).to.include({ status: 500, root: 'notifyResult', success: false, msg: HUB_FAILURE_WORDS });
    expect(subscribed.status).to.equal(500);
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/^pushbutton_store_up 0$/m);
    expect(healthz.status).to.equal(200);
    expect(proxy.silent).to.equal(true);
  });

  it('keeps what it acknowledged before and during the silence, and serves again once the host answers', async () => {
    const topic = topics.set('/silent-topic', { body: 'before\n', contentType: 'text/plain' });
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': webSub.callback('/kept') })).status).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe', '/kept');
    await settled(hub);

    proxy.silence();
    topics.set('/silent-topic', { body: 'published while the database was silent\n', contentType: 'text/plain' });
    expect((await publish(hub, topic)).status).to.equal(204);
    // Past the statement timeout: the topic's read has failed on the hub's side at least once.
    const failed = await fetch(`${hub.url}/metrics`).then((r) => r.text());
    expect(failed).to.match(/^pushbutton_store_up 0$/m);
    proxy.heal();

    const [delivery] = await webSub.waitDeliveries(1, '/kept');
    expect(delivery!.body.toString()).to.equal('published while the database was silent\n');
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([webSub.callback('/kept')]);
    expect(await fetch(`${hub.url}/metrics`).then((r) => r.text())).to.match(/^pushbutton_store_up 1$/m);
    const feed = topics.set('/after-feed', { body: 'feed\n', contentType: 'text/plain' });
    expect(await pleaseNotify(hub, subscribeForm(rssSub, '/after', feed))).to.include({ status: 200, success: true });
  });

  it('answers a Prometheus scrape within its timeout while silent, at the default DATABASE_QUERY_TIMEOUT_MS', async () => {
    await server.admin.query('CREATE SCHEMA silence_scrape');
    // The query timeout an operator runs with (30 s), far past any scrape_timeout.
    const scraped = await startTestHub(
      { DATABASE_URL: withSearchPath(`postgresql://pushbutton@${proxy.host}:${proxy.port}/postgres`, 'silence_scrape'), DATABASE_QUERY_TIMEOUT_MS: '30000', POLL_ENABLED: 'false' },
      await tempDataDir(),
    );
    try {
      expect(await fetch(`${scraped.url}/metrics`).then((r) => r.text())).to.match(/^pushbutton_store_up 1$/m);
      proxy.silence();
      // As Prometheus scrapes: it says its scrape_timeout, and gives up when it has passed.
      const scrapeTimeoutSeconds = 2;
      const scrape = (): Promise<{ status: number; text: string }> =>
        fetch(`${scraped.url}/metrics`, {
          headers: { 'X-Prometheus-Scrape-Timeout-Seconds': String(scrapeTimeoutSeconds) },
          signal: AbortSignal.timeout(scrapeTimeoutSeconds * 1000),
        }).then(async (r) => ({ status: r.status, text: await r.text() }));
      // Twice: the second finds the first one's count still unanswered, and does not wait it out.
      for (const res of [await scrape(), await scrape()]) {
        expect(res.status).to.equal(200);
        expect(res.text).to.match(/^pushbutton_store_up 0$/m);
        // The counters that say what the outage did are in the scrape that reports it.
        expect(res.text).to.match(/^pushbutton_http_requests_total\{route="\/metrics",status="200"\} [1-9]\d*$/m);
        expect(res.text).to.match(/^pushbutton_topics 0$/m);
      }
      proxy.heal();
      expect(await fetch(`${scraped.url}/metrics`).then((r) => r.text())).to.match(/^pushbutton_store_up 1$/m);
    } finally {
      proxy.heal();
      await scraped.destroy();
    }
  });

  it('gives a transaction whose statement went unanswered up after one timeout, without waiting out another for its ROLLBACK', async () => {
    await server.admin.query('CREATE SCHEMA silence_tx');
    const timeoutMs = 1500;
    const store = new PgStore({
      connectionString: withSearchPath(`postgresql://pushbutton@${proxy.host}:${proxy.port}/postgres`, 'silence_tx'),
      poolSize: 1,
      queryTimeoutMs: timeoutMs,
    });
    await store.open();
    try {
      await store.clear(); // its one connection is open and idle when the host goes quiet
      proxy.silence();
      const started = performance.now();
      const failed: unknown = await store.clear().then(
        () => undefined,
        (e: unknown) => e,
      );
      const waited = performance.now() - started;
      expect(failed).to.be.instanceOf(Error).with.property('message', 'Query read timeout');
      // DATABASE_QUERY_TIMEOUT_MS is the bound a caller is promised: once, not twice.
      expect(waited).to.be.below(timeoutMs * 1.6);
    } finally {
      proxy.heal();
      await store.close();
    }
  });

  it('closes a topic lock connection whose lock went unanswered, so the lock granted late is not held for good', async () => {
    await server.admin.query('CREATE SCHEMA silence_lock');
    const url = withSearchPath(`postgresql://pushbutton@${proxy.host}:${proxy.port}/postgres`, 'silence_lock');
    const timings = { poolSize: 1, lockWaitMs: 500, queryTimeoutMs: 500 };
    const first = new PgStore({ connectionString: url, ...timings });
    const other = new PgStore({ connectionString: withSearchPath(server.url, 'silence_lock'), ...timings });
    await first.open();
    await other.open();
    try {
      const lockBackends = async (): Promise<number[]> =>
        (await server.admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'pushbutton-locks'")).rows.map((r) => r.pid);
      const hubs = await lockBackends();
      await first.withTopicLock('https://locked.example/feed', async () => undefined); // its lock connection is open and idle
      const mine = (await lockBackends()).filter((pid) => !hubs.includes(pid));
      expect(mine).to.have.length(1);
      proxy.silence();
      const failed: unknown = await first.withTopicLock('https://locked.example/feed', async () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failed).to.be.instanceOf(Error).with.property('message', 'Query read timeout');
      proxy.heal();
      // The late pg_advisory_lock reaches the server now: either its connection is gone, or it
      // ran and its session sits idle (holding the lock, were that connection kept).
      for (;;) {
        const { rows } = await server.admin.query<{ state: string; query: string }>('SELECT state, query FROM pg_stat_activity WHERE pid = ANY($1)', [mine]);
        if (rows.every((r) => r.state === 'idle' && r.query.includes('pg_advisory_lock('))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      let ran = false;
      await other.withTopicLock('https://locked.example/feed', async () => void (ran = true));
      expect(ran).to.equal(true);
    } finally {
      proxy.heal();
      await first.close();
      await other.close();
    }
  });
});
