// The hub on the PostgreSQL store (DATABASE_URL): an rssCloud subscribe and ping, a WebSub
// subscribe and publish, each delivery seen on the wire; the rows are in PostgreSQL, and a hub
// restarted on the same database still has its subscribers. Three hubs on one database keep the
// subscription limits together, and sweep expired subscriptions one at a time.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pg from 'pg';
import type { CleanupReport } from '../lib/hub.js';
import { PgStore } from '../lib/store/pg-store.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { FeedServer, notificationsAt, notifyBody, ping, pleaseNotify, postForm, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { sub } from './helpers/store-contract.js';
import { Subscriber, TopicServer, publish, settled, subscribe, testApi, validSignature } from './helpers/websub.js';
import { until } from './helpers/until.js';

/** Runs fn on a connection of its own to the database at `url`, closed after. */
async function withDb<T>(url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

/**
 * A suite's hub process, as `npm start` runs it, on a database schema of its own: the suite's
 * before hook makes the schema and data directory, spawn() starts the process, and the after
 * hook stops it and removes both.
 */
function hubProcess(tag: string): { url: () => string; spawn: () => Promise<ChildHub> } {
  let url = '';
  let dir = '';
  let child: ChildHub | undefined;
  before(async () => {
    url = await freshDatabaseUrl(tag);
    dir = await tempDataDir();
  });
  after(async () => {
    await child?.stop('SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
    if (url) await dropDatabaseSchema(url);
  });
  return {
    url: () => url,
    spawn: async () => (child = await spawnHub(dir, { DATABASE_URL: url, DATABASE_POOL_SIZE: '4', POLL_ENABLED: 'false' }, 30_000)),
  };
}

describe('hub on PostgreSQL (DATABASE_URL)', function () {
  let url: string;
  let hub: TestHub;
  let feeds: FeedServer;
  let rssSub: Recorder;
  let topics: TopicServer;
  let webSub: Subscriber;

  const rows = (sql: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> => withDb(url, async (db) => (await db.query(sql, values)).rows);

  before(async () => {
    url = await freshDatabaseUrl('hub');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4' });
    feeds = await FeedServer.start();
    rssSub = await Recorder.start(subscriberOk);
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    for (const s of [feeds, rssSub, topics, webSub]) await s?.close();
    if (url) await dropDatabaseSchema(url);
  });

  it('rssCloud: pleaseNotify, then a ping notifies the subscriber with a form POST', async () => {
    const feed = feeds.changing('pg-rss');
    const reply = await pleaseNotify(hub, subscribeForm(rssSub, '/notify', feed));
    expect(reply.success, reply.msg).to.equal(true);
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    const seen = notificationsAt(rssSub, '/notify');
    expect(seen).to.have.length(1);
    expect(seen[0]!.body.toString()).to.equal(notifyBody(feed));
    expect(await rows('SELECT protocol, callback_host FROM subscriptions WHERE topic = $1', [feed])).to.deep.equal([
      { protocol: 'http-post', callback_host: `127.0.0.1:${rssSub.port}` },
    ]);
  });

  it('WebSub: subscribe (verified), then a publish delivers the new content, signed', async () => {
    const topic = topics.set('/pg-topic', { body: 'version one\n', contentType: 'text/plain' });
    const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb'), 'hub.secret': 'pg-secret' });
    expect(res.status, await res.text()).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe');
    await settled(hub);
    expect(await rows('SELECT protocol, secret, lease_seconds FROM subscriptions WHERE topic = $1', [topic])).to.deep.equal([
      { protocol: 'websub', secret: 'pg-secret', lease_seconds: String(hub.config.websubLeaseDefaultSeconds) },
    ]);

    topics.set('/pg-topic', { body: 'version two\n', contentType: 'text/plain' });
    expect((await publish(hub, topic)).status).to.equal(204);
    const [delivery] = await webSub.waitDeliveries(1, '/cb');
    expect(delivery!.body.toString()).to.equal('version two\n');
    expect(delivery!.headers['content-type']).to.equal('text/plain');
    expect(validSignature(delivery!.headers['x-hub-signature'], 'pg-secret', delivery!.body)).to.equal(true);
    // The fan-out finishes (the outcome is recorded just after the delivery's answer): the
    // subscription is marked up to date and the outbox entry goes.
    await until(async () => (await rows('SELECT topic FROM outbox')).length === 0);
    expect(await rows('SELECT topic FROM outbox')).to.deep.equal([]);
    const [row] = await rows('SELECT delivered_version FROM subscriptions WHERE topic = $1', [topic]);
    expect(Number(row!.delivered_version)).to.be.greaterThan(0);
  });

  it('keeps its subscribers when restarted on the same database', async () => {
    await hub.destroy();
    hub = await startTestHub({ DATABASE_URL: url });
    const feed = feeds.changing('pg-rss');
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    expect(notificationsAt(rssSub, '/notify').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    expect((await hub.store.counts()).byProtocol).to.deep.equal({ 'http-post': 1, websub: 1 });
  });
});

// Three hubs on one database, as three processes would be (each its own store and pool): the
// subscription limits are one check-and-insert across all of them, not one per hub, and one hub
// at a time sweeps expired subscriptions.
describe('subscription limits and the sweep across hubs on one PostgreSQL database', function () {
  this.timeout(60_000);
  const PER_TOPIC = 5;
  const PER_HOST = 7;
  const REQUESTS = 30;
  let url: string;
  let hubs: TestHub[] = [];
  let feeds: FeedServer;
  let topics: TopicServer;
  const closers: { close(): Promise<void> }[] = [];

  before(async function () {
    this.timeout(60_000);
    url = await freshDatabaseUrl('limits');
    const env = {
      DATABASE_URL: url,
      DATABASE_POOL_SIZE: '4',
      POLL_ENABLED: 'false',
      MAX_SUBSCRIPTIONS_PER_TOPIC: String(PER_TOPIC),
      MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST: String(PER_HOST),
    };
    hubs = await Promise.all([0, 1, 2].map(() => startTestHub(env)));
    // A slow insert (as on a loaded server) widens the gap between counting and inserting, so
    // hubs that count at the same time would each see room: the limits must hold anyway.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`
        CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN NEW; END $$;
        CREATE TRIGGER slow_insert BEFORE INSERT ON subscriptions FOR EACH ROW EXECUTE FUNCTION slow_insert();`);
    } finally {
      await client.end();
    }
    feeds = await FeedServer.start();
    topics = await TopicServer.start();
  });
  after(async () => {
    for (const h of hubs) await h.destroy();
    for (const s of [feeds, topics, ...closers]) await s?.close();
    if (url) await dropDatabaseSchema(url);
  });

  async function started<T extends { close(): Promise<void> }>(server: Promise<T>): Promise<T> {
    const s = await server;
    closers.push(s);
    return s;
  }

  it(`rssCloud: ${REQUESTS} concurrent pleaseNotify of one topic through three hubs store exactly MAX_SUBSCRIPTIONS_PER_TOPIC`, async () => {
    const rss = await started(Recorder.start(subscriberOk));
    const feed = feeds.fixed('limits-topic');
    const replies = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) => pleaseNotify(hubs[i % hubs.length]!, subscribeForm(rss, `/t/${i}`, feed))),
    );
    const refused = replies.filter((r) => !r.success);
    expect(await hubs[0]!.store.countSubscriptions({ topic: feed })).to.equal(PER_TOPIC);
    expect(replies.filter((r) => r.success)).to.have.length(PER_TOPIC);
    expect(new Set(refused.map((r) => r.msg))).to.deep.equal(new Set([`Can't accept the subscription because the topic already has ${PER_TOPIC} subscriptions.`]));
  });

  it(`rssCloud: ${REQUESTS} concurrent pleaseNotify of different topics to one callback host store exactly MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST`, async () => {
    const rss = await started(Recorder.start(subscriberOk));
    const host = `127.0.0.1:${rss.port}`;
    const replies = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) => pleaseNotify(hubs[i % hubs.length]!, subscribeForm(rss, `/h/${i}`, feeds.fixed(`limits-host-${i}`)))),
    );
    const refused = replies.filter((r) => !r.success);
    expect(await hubs[0]!.store.countSubscriptions({ callbackHost: host })).to.equal(PER_HOST);
    expect(replies.filter((r) => r.success)).to.have.length(PER_HOST);
    expect(new Set(refused.map((r) => r.msg))).to.deep.equal(new Set([`Can't accept the subscription because ${host} already has ${PER_HOST} subscriptions.`]));
  });

  it(`WebSub: of ${REQUESTS} concurrent subscribes to one topic through three hubs, exactly MAX_SUBSCRIPTIONS_PER_TOPIC are stored; the rest are refused or denied`, async () => {
    const web = await started(Subscriber.start());
    const topic = topics.set('/limits', { body: 'one\n', contentType: 'text/plain' });
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) => subscribe(hubs[i % hubs.length]!, { 'hub.topic': topic, 'hub.callback': web.callback(`/w/${i}`) })),
    );
    await Promise.all(hubs.map((h) => settled(h)));
    const accepted = answers.filter((r) => r.status === 202).length;
    expect(await hubs[0]!.store.countSubscriptions({ topic })).to.equal(PER_TOPIC);
    // Refused on arrival once the topic is full, or verified and then denied (REC §5.2).
    expect(REQUESTS - accepted + web.verifications('denied').length).to.equal(REQUESTS - PER_TOPIC);
    expect(web.verifications('subscribe')).to.have.length(accepted);
  });

  it('the sweep: while another process sweeps, every hub skips the round; then one removes each expired and exhausted subscription once', async () => {
    const store = hubs[0]!.store;
    const topic = feeds.fixed('sweep');
    const now = Date.now();
    const live = [
      sub(topic, 'http://127.0.0.1:9/live', { whenExpires: now + 3600_000 }),
      sub(topic, 'http://127.0.0.1:9/websub-failing', { protocol: 'websub', whenExpires: now + 3600_000, ctConsecutiveErrors: 5 }),
    ];
    const due = [
      ...Array.from({ length: 6 }, (_, i) => sub(topic, `http://127.0.0.1:9/expired/${i}`, { whenExpires: now - 1000 })),
      ...Array.from({ length: 4 }, (_, i) => sub(topic, `http://127.0.0.1:9/exhausted/${i}`, { whenExpires: now + 3600_000, ctConsecutiveErrors: 3 })),
    ];
    for (const s of [...live, ...due]) await store.putSubscription(s);

    const sweeping = new PgStore({ connectionString: url, poolSize: 1 });
    await sweeping.open();
    try {
      const skipped = await sweeping.withSweepLock(() => Promise.all(hubs.map((h) => testApi<{ result: CleanupReport }>(h, 'removeExpired'))));
      expect(skipped?.map((r) => r.result)).to.deep.equal(hubs.map(() => ({ subscriptionsRemoved: 0, topicsRemoved: 0, sitesRemoved: 0, topicsTrimmed: 0, sitesTrimmed: 0, skipped: true })));
    } finally {
      await sweeping.close();
    }
    expect(await store.countSubscriptions({ topic })).to.equal(live.length + due.length);

    const swept = await Promise.all(hubs.map((h) => testApi<{ result: CleanupReport }>(h, 'removeExpired')));
    expect(swept.reduce((n, r) => n + r.result.subscriptionsRemoved, 0)).to.equal(due.length);
    expect(await store.subscriptionsOf(topic)).to.have.deep.members(live);
  });
});

// A hub process as `npm start` runs it: a store error after a delivery (PostgreSQL refusing to
// delete the delivered version's outbox row, once) must not end the process, nor its deliveries.
// Before 2026-12-03 it did: the rejection escaped the delivery lane, unhandled, and Node exited.
describe('a hub process on PostgreSQL whose store fails to remove a delivered version', function () {
  this.timeout(60_000);
  const hubProc = hubProcess('remove-fails');
  let topics: TopicServer;
  let webSub: Subscriber;

  before(async () => {
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async () => {
    for (const s of [topics, webSub]) await s?.close();
  });

  it('logs the error and goes on: the process stays up and the next version is delivered', async () => {
    const hub = await hubProc.spawn();
    await withDb(hubProc.url(), async (db) => {
      // The first DELETE of an outbox row fails (a sequence: nextval outlives the rollback).
      await db.query(`CREATE SEQUENCE outbox_deletes;
        CREATE FUNCTION fail_first_outbox_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('outbox_deletes') = 1 THEN RAISE EXCEPTION 'disk full (test)'; END IF;
          RETURN OLD;
        END $$;
        CREATE TRIGGER fail_first_outbox_delete BEFORE DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION fail_first_outbox_delete();`);
      const form = (fields: Record<string, string>): Promise<Response> => postForm(hub.url, '/websub', fields);
      const topic = topics.set('/removal', { body: 'state 0\n', contentType: 'text/plain' });
      expect((await form({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': webSub.callback('/cb') })).status).to.equal(202);
      await webSub.waitVerifications(1, 'subscribe');
      const subscribed = Date.now() + 10_000;
      while ((await db.query('SELECT 1 FROM subscriptions')).rowCount === 0 && Date.now() < subscribed) await sleep(20);

      for (const n of [1, 2]) {
        topics.set('/removal', { body: `state ${n}\n`, contentType: 'text/plain' });
        expect((await form({ 'hub.mode': 'publish', 'hub.url': topic })).status, `publish ${n}`).to.equal(204);
        await webSub.waitDeliveries(n, '/cb');
        // Until the hub has tried to remove what it delivered (the first try fails).
        await until(async () => !(Number((await db.query('SELECT last_value FROM outbox_deletes')).rows[0]?.last_value) < n));
      }
      await sleep(200); // an exit would come just after the failure
      expect(hub.proc.exitCode, 'the process is still running').to.equal(null);
      expect(webSub.deliveries('/cb').map((d) => d.body.toString())).to.deep.equal(['state 1\n', 'state 2\n']);
      expect(hub.log.some((l) => l.includes('removing a delivered version from the outbox failed')), 'the error is logged').to.equal(true);
    });
  });
});

// A connection lost while the hub holds it checked out of a pool (here: the topic lock's, for the
// whole read of a slow feed) must fail what ran on it, not the process. pg-pool listens for a
// connection's errors only while it is idle; before 2026-12-03 the loss was an 'error' event with
// no listener, and Node exited.
describe('a hub process on PostgreSQL whose topic-lock connection is terminated mid-read', function () {
  this.timeout(60_000);
  let feed: Recorder;
  let release: () => void = () => {};
  // Before the process's after hook (hooks run in the order made): a slow read still waiting
  // is let go before the process is stopped.
  after(() => release());
  const hubProc = hubProcess('lock-lost');

  before(async () => {
    feed = await Recorder.start(async (req, res) => {
      if (req.path === '/slow') await new Promise<void>((r) => (release = r));
      res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><guid>${Date.now()}</guid></item></channel></rss>`);
    });
  });
  after(async () => {
    await feed?.close();
  });

  it('answers the ping, stays up, and reads the feed again on the next one', async () => {
    const hub = await hubProc.spawn();
    const pingOf = (path: string): Promise<Response> => postForm(hub.url, '/ping', { url: `${feed.url}${path}` });
    const answered = pingOf('/slow');
    await feed.waitFor(1, (r) => r.path === '/slow');
    const { rows } = await withDb(hubProc.url(), (db) => db.query("SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'pushbutton-locks'"));
    expect(rows.length, 'the lock connection, found').to.be.at.least(1);
    await sleep(200); // an exit would come now
    release();
    const first = await answered.catch((e: unknown) => e);
    expect(first, 'the ping got an answer').to.be.instanceOf(Response);
    expect(await (first as Response).text(), "in rssCloud's shape").to.match(/^<\?xml [^\n]*\n<result success="(true|false)" msg="[^"]+"\/>\n$/);
    expect(hub.proc.exitCode, 'the process is still running').to.equal(null);
    const again = await pingOf('/again');
    expect(await again.text()).to.contain('success="true"');
  });
});

// Anyone who can connect to the database can NOTIFY on the hubs' channel: an event of another
// shape is ignored. Before 2026-12-03 a payload such as `null` threw inside the connection's
// listener, and every hub process on the schema exited.
describe('a hub process on PostgreSQL hearing events of another shape on its channel', function () {
  this.timeout(60_000);
  const hubProc = hubProcess('bad-events');

  it('ignores them and stays up', async () => {
    const hub = await hubProc.spawn();
    await withDb(hubProc.url(), async (db) => {
      const schema = (await db.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]!.schema;
      const channel = `pushbutton_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
      const listening = (await db.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', ['pushbutton-events'])).rowCount;
      expect(listening, 'the hub listens').to.be.at.least(1);
      // Not JSON at all, and an envelope of the right shape whose event text is not JSON.
      const broken = ['not json', '{"o":"x","e":[["change","{\\"topic\\":"]]}'];
      for (const payload of ['null', '"text"', '[]', '{"o":"x"}', '{"o":"x","e":[1]}', '{"o":"x","e":[["change",5]]}', '{"o":7,"e":[]}', ...broken]) {
        await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
      }
    });
    await sleep(300); // an exit would come now
    expect(hub.proc.exitCode, 'the process is still running').to.equal(null);
    expect((await fetch(`${hub.url}/healthz`)).status).to.equal(200);
  });
});

describe('a topic lock another process holds and never gives back (DATABASE_LOCK_WAIT_MS=500)', function () {
  let url: string;
  let hub: TestHub;
  let feeds: FeedServer;
  before(async () => {
    url = await freshDatabaseUrl('lockwait');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '2', DATABASE_LOCK_WAIT_MS: '500' });
    feeds = await FeedServer.start();
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
    if (url) await dropDatabaseSchema(url);
  });

  it('costs a ping of that topic a read error after the wait, not an answer never given; other topics go on, and the topic once it is free', async () => {
    const locked = feeds.changing('held-by-a-stopped-process');
    expect((await ping(hub, locked)).success).to.equal(true);
    // A connection of its own stands for a process that took the topic's lock and was stopped.
    await withDb(url, async (db) => {
      await db.query('SELECT pg_advisory_lock(hashtext(current_schema()), hashtext($1))', [locked]);
      // More pings than the hub has lock connections: none may wait for good, or hold the others up.
      const waiting = await Promise.all([ping(hub, locked), ping(hub, locked), ping(hub, locked)]);
      for (const reply of waiting) expect(reply.success, reply.msg).to.equal(false);
      expect((await ping(hub, feeds.changing('another-topic'))).success, 'another topic').to.equal(true);
    });
    expect((await ping(hub, locked)).success, 'once the lock is given back').to.equal(true);
  });
});

describe('a subscribe that waits for the subscription limits while its callback unsubscribes (PostgreSQL)', function () {
  let url: string;
  let hub: TestHub;
  let topics: TopicServer;
  let webSub: Subscriber;
  before(async () => {
    url = await freshDatabaseUrl('unsubwait');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4' });
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    for (const s of [topics, webSub]) await s?.close();
    if (url) await dropDatabaseSchema(url);
  });

  it('is not written after the newer unsubscribe was applied: the unsubscribe waits for it, and wins', async () => {
    const topic = topics.set('/limits-wait', { body: 'news\n', contentType: 'text/plain' });
    const form = { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb') };
    await withDb(url, async (db) => {
      // Another subscribe of the topic, through any process, holding the topic's limits lock.
      await db.query('BEGIN');
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ' topic ' || $1, 0))", [topic]);
      expect((await subscribe(hub, form)).status).to.equal(202);
      await webSub.waitVerifications(1, 'subscribe');
      // The subscribe was verified and waits for that lock inside the limits' function.
      for (let i = 0; ; i++) {
        await db.query('SELECT pg_stat_clear_snapshot()'); // else fixed for the whole transaction
        const [row] = (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%put_subscription_within_limits%'")).rows as { n: number }[];
        if (row?.n === 1) break;
        if (i > 200) throw new Error('the subscribe never waited for the limits lock');
        await sleep(25);
      }
      const res = await postForm(hub.url, '/websub', { 'hub.mode': 'unsubscribe', ...form });
      expect(res.status).to.equal(202);
      await webSub.waitVerifications(1, 'unsubscribe');
      await sleep(200);
      await db.query('COMMIT');
    });
    await settled(hub);
    const { subscriptions } = await testApi<{ subscriptions: unknown[] }>(hub, 'getSubscriptions', { feedUrl: topic });
    expect(subscriptions, 'subscribed after the unsubscribe was applied').to.deep.equal([]);
  });
});

describe('polling with two hub processes on one PostgreSQL database', function () {
  this.timeout(30_000);
  const SLOW_READ_MS = 1500;
  let url: string;
  const hubs: TestHub[] = [];
  let feeds: Recorder;
  let subs: Recorder;
  before(async () => {
    url = await freshDatabaseUrl('polltwo');
    feeds = await Recorder.start(async (req, res) => {
      // Slower than a tick of the poller (500 ms): the other process looks while it is under way.
      if (req.url?.startsWith('/slow')) await sleep(SLOW_READ_MS);
      if (req.headers['if-none-match'] === '"same"') return void res.writeHead(304, { etag: '"same"' }).end();
      res.writeHead(200, { 'content-type': 'text/plain', etag: '"same"' }).end('same\n');
    });
    subs = await Recorder.start((req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('hub.challenge') ?? 'ok'));
    // An interval of 1 s, polled on ticks 500 ms apart.
    const env = { DATABASE_URL: url, DATABASE_POOL_SIZE: '4', POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' };
    for (let i = 0; i < 2; i++) hubs.push(await startTestHub(env));
  });
  after(async () => {
    for (const h of hubs) await h.destroy();
    await feeds?.close();
    await subs?.close();
    if (url) await dropDatabaseSchema(url);
  });

  it('reads a topic once an interval, not once per process: the process that did not poll finds the other one’s read', async () => {
    const topic = `${feeds.url}/both`;
    // Subscribed through the first; the second learns of it on the bus and polls it too.
    expect((await subscribe(hubs[0]!, { 'hub.topic': topic, 'hub.callback': `${subs.url}/cb` })).status).to.equal(202);
    await subs.waitFor(1);
    const reads = await feeds.waitFor(6, (r) => r.method === 'GET' && r.path === '/both', 20_000);
    // A process finds the other's read by its stamp, written when the read is done, and one that
    // comes due while the other's read is still under way (both due at once for the first poll,
    // or a loaded machine's slow read) finds it once it holds the topic lock (see the next test).
    // Each process polling on its own makes every other gap short: two of these four at least
    // (more polls only made the test longer, a second each).
    const gaps = reads.slice(2, 6).map((r, i) => r.at - reads[i + 1]!.at);
    expect(gaps.filter((gap) => gap < 900), `ms between polls (${gaps.join(', ')})`).to.deep.equal([]);
  });

  // Both processes come due at once, and the second looks while the first's read is under way:
  // it found no read yet, waited for the topic lock, and read again as soon as the first was
  // done, back to back; it asks again under the lock now. From then on each read ends at least
  // an interval (1 s) before the next begins, the reads of both processes together.
  it('a process that comes due while the other reads the topic finds that read once it holds the topic lock, and does not read it again', async () => {
    const topic = `${feeds.url}/slow`;
    expect((await subscribe(hubs[0]!, { 'hub.topic': topic, 'hub.callback': `${subs.url}/cb-slow` })).status).to.equal(202);
    await subs.waitFor(1, (r) => r.path === '/cb-slow');
    const reads = await feeds.waitFor(3, (r) => r.method === 'GET' && r.path === '/slow', 25_000);
    // From the first read on: the time from each read's answer to the next read.
    const idle = reads.slice(1, 3).map((r, i) => r.at - (reads[i]!.at + SLOW_READ_MS));
    expect(idle.filter((ms) => ms < 500), `ms from a read's answer to the next read (${idle.join(', ')})`).to.deep.equal([]);
  });
});

describe('a publish acknowledged by a hub process killed before its read, on PostgreSQL with another process running', function () {
  this.timeout(30_000);
  let url: string;
  const dirs: string[] = [];
  let dead: ChildHub | undefined;
  let living: TestHub | undefined;
  let topics: TopicServer;
  let webSub: Subscriber;
  before(async () => {
    url = await freshDatabaseUrl('orphan');
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async () => {
    await dead?.stop('SIGKILL');
    await living?.destroy();
    for (const s of [topics, webSub]) await s?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    if (url) await dropDatabaseSchema(url);
  });

  it('is read by the living process once older than PENDING_READ_ADOPT_AFTER_MS: the subscriber hears of the change, the record goes', async () => {
    const env = { DATABASE_URL: url, DATABASE_POOL_SIZE: '4', POLL_ENABLED: 'false' };
    const dir = await tempDataDir();
    dirs.push(dir);
    dead = await spawnHub(dir, env, 30_000);
    living = await startTestHub({ ...env, PENDING_READ_ADOPT_AFTER_MS: '500' });
    const topic = topics.set('/orphaned', { body: 'v1', contentType: 'text/plain' });
    expect((await subscribe(living, { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb') })).status).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe', '/cb');
    await settled(living);

    // The dead process's read (and any other) is held until that process has been killed.
    const serve = topics.rec.handler;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    topics.rec.handler = async (req, res) => {
      await held;
      await serve(req, res);
    };
    topics.set('/orphaned', { body: 'v2', contentType: 'text/plain' });
    const published = await fetch(`${dead.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ 'hub.mode': 'publish', 'hub.url': topic }).toString() });
    expect(published.status).to.equal(204);
    await topics.rec.waitFor(1, (r) => r.method === 'GET' && r.path === '/orphaned');
    expect((await dead.stop('SIGKILL')).signal).to.equal('SIGKILL');
    dead = undefined;
    release();
    expect(webSub.deliveries('/cb')).to.have.length(0);

    // Never started again: only the living process can read what it owed.
    const [delivered] = await webSub.waitDeliveries(1, '/cb');
    expect(delivered!.body.toString()).to.equal('v2');
    await settled(living);
    expect(await living.store.listPendingReads()).to.deep.equal([]);
  });
});
