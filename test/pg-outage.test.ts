// The PostgreSQL server itself going away and coming back (pg_ctl stop, then start), as a
// restart or a failover does: the hub answers in each protocol's own words meanwhile, loses
// nothing it acknowledged, and recovers by itself. A private server, not the run's shared one,
// since the tests stop it.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { startPgServer, type PgServer } from './helpers/pg-server.js';
import { withSearchPath } from './helpers/postgres.js';
import { spawnHub } from './helpers/child-hub.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { createLogger } from '../lib/log.js';

const ADMIN_TOKEN = 'outage-admin-token-0123456789abcdef';

describe('a hub on PostgreSQL while the database server restarts', function () {
  this.timeout(60_000);
  let server: PgServer;
  let url: string;
  let hub: TestHub;
  let topics: TopicServer;
  let webSub: Subscriber;

  before(async function () {
    this.timeout(60_000);
    server = await startPgServer();
    await server.admin.query('CREATE SCHEMA outage');
    url = withSearchPath(server.url, 'outage');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4', POLL_ENABLED: 'false', ADMIN_TOKEN }, await tempDataDir());
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async function () {
    this.timeout(60_000);
    // Up again whatever a failed test left, so the hub closes without waiting on it.
    await server?.resume().catch(() => undefined);
    await hub?.destroy();
    for (const s of [topics, webSub]) await s?.close();
    await server?.stop();
  });

  it('WebSub: a publish answered 204 while the database is down is delivered once it is back', async () => {
    const topic = topics.set('/outage-topic', { body: 'before\n', contentType: 'text/plain' });
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb') })).status).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe');
    await settled(hub);

    await server.halt('fast');
    topics.set('/outage-topic', { body: 'published while the database was down\n', contentType: 'text/plain' });
    expect((await publish(hub, topic)).status).to.equal(204);
    // The topic is read at once and its change cannot be stored; the database comes back after.
    await new Promise((r) => setTimeout(r, 300));
    await server.resume();

    // Dropped before: the publisher had its 204 and nothing was ever delivered.
    const [delivery] = await webSub.waitDeliveries(1, '/cb');
    expect(delivery!.body.toString()).to.equal('published while the database was down\n');
  });

  it('/metrics answers while the database is down, with pushbutton_store_up 0, and 1 again once it is back', async () => {
    const scrape = async (): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${hub.url}/metrics`);
      return { status: res.status, text: await res.text() };
    };
    expect((await scrape()).status).to.equal(200);
    await server.halt('fast');
    try {
      // Was a 500 with "The hub could not handle this request.": every metric lost with the database.
      const down = await scrape();
      expect(down.status).to.equal(200);
      expect(down.text).to.match(/^pushbutton_store_up 0$/m);
      expect(down.text).to.match(/^pushbutton_http_requests_total\{route="\/metrics",status="200"\} \d+$/m);
      expect(down.text).to.match(/^process_cpu_user_seconds_total /m);
    } finally {
      await server.resume();
    }
    const back = await scrape();
    expect(back.text).to.match(/^pushbutton_store_up 1$/m);
    expect(back.text).to.match(/^pushbutton_topics \d+$/m);
  });

  it('the JSON pages and operator actions answer in JSON while the database is down', async () => {
    const q = new URLSearchParams({ topic: 'https://blog.example/feed.xml', callback: 'https://reader.example/cb' });
    await server.halt('fast');
    try {
      const answers = await Promise.all([
        fetch(`${hub.url}/stats.json`),
        fetch(`${hub.url}/subscription?${q}`),
        fetch(`${hub.url}/admin/subscriptions/delete`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ topic: 'https://blog.example/feed.xml', callback: 'https://reader.example/cb' }),
        }),
      ]);
      // Were text/plain "The hub could not handle this request.", which their clients cannot parse.
      const bodies = await Promise.all(answers.map(async (r) => ({ status: r.status, type: r.headers.get('content-type'), json: (await r.json()) as Record<string, unknown> })));
      const words = 'the hub could not complete the request because of a problem on its side; please try again later';
      expect(bodies).to.deep.equal([
        { status: 500, type: 'application/json; charset=utf-8', json: { error: words } },
        { status: 500, type: 'application/json; charset=utf-8', json: { error: words } },
        { status: 500, type: 'application/json; charset=utf-8', json: { ok: false, error: words } },
      ]);
    } finally {
      await server.resume();
    }
    expect((await fetch(`${hub.url}/stats.json`)).status).to.equal(200);
  });

  it('a hub started while the database is down exits at once, naming the database (never its password)', async () => {
    const withPassword = new URL(url);
    withPassword.password = 'hunter2';
    const dir = await tempDataDir();
    await server.halt('fast');
    try {
      const failed = await spawnHub(dir, { DATABASE_URL: withPassword.toString(), POLL_ENABLED: 'false' }, 30_000).then(
        () => undefined,
        (e: Error) => e.message,
      );
      // Was "pushbutton: failed to start: connect ENOENT /tmp/…/.s.PGSQL.5432" (or ECONNREFUSED host:port).
      expect(failed).to.match(/"error":"PostgreSQL \(DATABASE_URL postgresql:\/\/pushbutton:\*\*\*@localhost\/.*\) could not be opened: connect ENOENT.*","msg":"failed to start"/);
      expect(failed).to.not.contain('hunter2');
    } finally {
      await server.resume();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Deliveries that fail on the hub's side (the store unreachable) are tried again 1 s … 16 s
// later, five times, then the lane stops trying. Two subscribers whose failures begin seconds
// apart (one retrying a 500, one slow to answer) stop at different times: a database back in
// between let the later one finish the fan-out, which removed the version from the outbox while
// the earlier one had never had it. This test's hub retries 250 ms … 4 s later (StartOptions
// unexpectedRetryBaseMs), the same five tries in a quarter of the time: it waits out ~8 s of
// retries, not ~31 s. The two lanes' last tries are still 7 s apart, as at the production
// schedule: that gap is the slow subscriber's 8 s answer less the quick one's ~1 s retry, whatever
// the schedule, and it is the database's time to come back up before the slow lane's last try.
describe('a fan-out on PostgreSQL when the database is down for longer than a delivery is retried', function () {
  this.timeout(90_000);
  let server: PgServer;
  let hub: TestHub;
  let topics: TopicServer;
  let quick: Subscriber;
  let slow: Recorder;
  let slowFirstAnswer = false;
  const lines: string[] = [];

  before(async function () {
    this.timeout(60_000);
    server = await startPgServer();
    await server.admin.query('CREATE SCHEMA fanout');
    const env = {
      DATABASE_URL: withSearchPath(server.url, 'fanout'),
      DATABASE_POOL_SIZE: '4',
      POLL_ENABLED: 'false',
      REQUEST_TIMEOUT_MS: '10000',
      WEBSUB_TIMEOUT_MS: '10000',
      WEBSUB_RETRY_BASE_MS: '1000',
      OUTBOX_CLAIM_LEASE_MS: '2000',
    };
    hub = await startTestHub(env, await tempDataDir(), { log: createLogger('warn', (l) => lines.push(l)), unexpectedRetryBaseMs: 250 });
    topics = await TopicServer.start();
    quick = await Subscriber.start();
    // Answers its verification at once, and its first delivery 8 s late (within WEBSUB_TIMEOUT_MS).
    slow = await Recorder.start(async (req, res) => {
      if (req.method === 'POST' && slowFirstAnswer) {
        slowFirstAnswer = false;
        await sleep(8000);
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('hub.challenge') ?? 'thanks');
    });
  });
  after(async function () {
    this.timeout(60_000);
    await server?.resume().catch(() => undefined);
    await hub?.destroy();
    for (const s of [topics, quick, slow]) await s?.close();
    await server?.stop();
  });

  it('keeps the version for the subscriber whose retries ran out first, and delivers it once the database is back', async () => {
    const topic = topics.set('/fanout', { body: 'first\n', contentType: 'text/plain' });
    for (const callback of [quick.callback('/quick'), `${slow.url}/slow`]) {
      expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback })).status).to.equal(202);
    }
    await settled(hub);
    expect(await hub.store.subscriptionsOf(topic)).to.have.length(2);

    topics.set('/fanout', { body: 'second\n', contentType: 'text/plain' });
    quick.deliveryStatuses = [500];
    slowFirstAnswer = true;
    expect((await publish(hub, topic)).status).to.equal(204);
    await quick.waitDeliveries(1, '/quick');
    // Down before the quick subscriber's retry (1 s or more after its 500) and the slow one's answer.
    await server.halt('fast');
    // The quick subscriber's lane stops trying some 7.75 s after its first failure; the slow one's
    // first failure came ~7 s after, so its last try (~7 s after the quick one gave up) finds the
    // database back.
    const stopped = (): boolean => lines.some((l) => l.includes('delivery failed unexpectedly; version') && l.includes('"level":"error"'));
    while (!stopped()) await sleep(100);
    await server.resume();

    // Lost before: the quick subscriber never had 'second' (only the attempt it answered 500).
    const deliveries = await quick.rec.waitFor(2, (r) => r.method === 'POST' && r.path === '/quick', 20_000);
    expect(deliveries.map((r) => r.body.toString())).to.deep.equal(['second\n', 'second\n']);
    expect(slow.matching((r) => r.method === 'POST').map((r) => r.body.toString())).to.include('second\n');
  });
});
