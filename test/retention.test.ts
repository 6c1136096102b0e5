// What the hub keeps once it is no longer needed: a subscription that ended (unsubscribed,
// answered 410, lease run out) must leave DATA_DIR's files with its callback URL (which may carry
// a token) and its WebSub secret within COMPACT_INTERVAL_MS, not whenever the journal next grows
// to 16 MB. On PostgreSQL, no row of any table names them, nor the ended subscriber's host (an
// rssCloud subscriber's is its IP address). Everything over real HTTP; the files are read as an operator (or a thief of a backup)
// would read them.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { FeedServer, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { embeddedOnly } from './helpers/store-under-test.js';
import { Subscriber, TopicServer, publish, settled, subscribe, subscriptionsOf, testApi, unsubscribe } from './helpers/websub.js';
import { until } from './helpers/until.js';

/** Every file under `dir`, with its text. */
async function filesOf(dir: string): Promise<{ name: string; text: string }[]> {
  const out: { name: string; text: string }[] = [];
  for (const name of await readdir(dir, { recursive: true })) {
    const file = path.join(dir, name);
    // A compaction running meanwhile (every COMPACT_INTERVAL_MS here) renames and deletes
    // files between the listing and the read: one gone no longer holds anything.
    try {
      if (!(await stat(file)).isFile()) continue;
      out.push({ name, text: await readFile(file, 'latin1') });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return out;
}

/** The files under `dir` holding any of `needles`, once none does or `withinMs` has passed. */
async function holdersAfter(dir: string, needles: string[], withinMs: number): Promise<string[]> {
  const holders = async (): Promise<string[]> => (await filesOf(dir)).filter((f) => needles.some((n) => f.text.includes(n))).map((f) => f.name);
  await until(async () => (await holders()).length === 0, { timeoutMs: withinMs, everyMs: 50 });
  return holders();
}

embeddedOnly('DATA_DIR holds the embedded store', () => {
  describe('What the embedded store keeps of what ended', function () {
    let hub: TestHub;
    let topics: TopicServer;
    let sub: Subscriber;

    beforeEach(async () => {
      topics = await TopicServer.start();
      sub = await Subscriber.start();
    });
    afterEach(async () => {
      await hub.destroy();
      await topics.close();
      await sub.close();
    });

    async function subscribed(form: Record<string, string>): Promise<void> {
      const before = sub.verifications('subscribe').length;
      const res = await subscribe(hub, form);
      expect(res.status, await res.text()).to.equal(202);
      await sub.waitVerifications(before + 1, 'subscribe');
      await settled(hub);
    }

    it('removes the callback token and the secret of unsubscribed, 410-ended and expired subscriptions from DATA_DIR within COMPACT_INTERVAL_MS', async () => {
      hub = await startTestHub({ COMPACT_INTERVAL_MS: '300', WEBSUB_LEASE_MIN_SECONDS: '1' });
      const topic = topics.set('/feed', { body: 'v1\n', contentType: 'text/plain' });
      const ended = [
        { path: '/cb?token=TOKEN-UNSUBSCRIBED', secret: 'SECRET-UNSUBSCRIBED' },
        { path: '/cb?token=TOKEN-GONE', secret: 'SECRET-GONE' },
        { path: '/cb?token=TOKEN-EXPIRED', secret: 'SECRET-EXPIRED' },
      ] as const;
      await subscribed({ 'hub.topic': topic, 'hub.callback': sub.callback(ended[0].path), 'hub.secret': ended[0].secret });
      await subscribed({ 'hub.topic': topic, 'hub.callback': sub.callback(ended[1].path), 'hub.secret': ended[1].secret });
      await subscribed({ 'hub.topic': topic, 'hub.callback': sub.callback(ended[2].path), 'hub.secret': ended[2].secret, 'hub.lease_seconds': '1' });
      await subscribed({ 'hub.topic': topic, 'hub.callback': sub.callback('/cb?token=TOKEN-LIVE'), 'hub.secret': 'SECRET-LIVE' });

      // Unsubscribed.
      const res = await unsubscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback(ended[0].path) });
      expect(res.status).to.equal(202);
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(hub);
      // The 1 s lease runs out; then a change, which the subscriber of TOKEN-GONE answers 410.
      await sleep(1100);
      topics.set('/feed', { body: 'v2\n', contentType: 'text/plain' });
      sub.rec.handler = (req, res) => {
        if (req.method === 'POST') res.writeHead(req.query.get('token') === 'TOKEN-GONE' ? 410 : 200).end();
        else res.writeHead(200).end(req.query.get('hub.challenge') ?? 'ok');
      };
      await publish(hub, topic);
      await sub.waitDeliveries(2);
      await settled(hub);
      const swept = await testApi<{ result: { subscriptionsRemoved: number } }>(hub, 'removeExpired');
      expect(swept.result.subscriptionsRemoved).to.equal(1);
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([sub.callback('/cb?token=TOKEN-LIVE')]);

      const secrets = ended.flatMap((e) => [new URL(sub.callback(e.path)).searchParams.get('token')!, e.secret]);
      expect(await holdersAfter(hub.dataDir, secrets, 10_000), 'files still holding an ended subscription').to.deep.equal([]);
      // The live subscription is still on disk: the files were rewritten, not emptied.
      expect((await filesOf(hub.dataDir)).some((f) => f.text.includes('SECRET-LIVE'))).to.equal(true);
    });

    it('leaves nothing of a topic nobody follows any more once FEEDS_RETENTION_DAYS has passed: no topic record, outbox entry or content file', async () => {
      hub = await startTestHub({ COMPACT_INTERVAL_MS: '300', FEEDS_RETENTION_DAYS: '0' });
      const big = (n: number): string => `version ${n} `.repeat(4000); // over 16 KB: its body is a file in content/
      const topic = topics.set('/TOPIC-UNFOLLOWED', { body: big(1), contentType: 'text/plain' });
      await subscribed({ 'hub.topic': topic, 'hub.callback': sub.callback('/cb') });
      topics.set('/TOPIC-UNFOLLOWED', { body: big(2), contentType: 'text/plain' });
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      await settled(hub);
      expect((await unsubscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback('/cb') })).status).to.equal(202);
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(hub);
      await sleep(5); // its last change is now before the sweep's "now": FEEDS_RETENTION_DAYS=0 has passed
      const swept = await testApi<{ result: { topicsRemoved: number } }>(hub, 'removeExpired');
      expect(swept.result.topicsRemoved).to.equal(1);
      expect(await hub.store.listOutbox()).to.deep.equal([]);
      expect(await holdersAfter(hub.dataDir, ['TOPIC-UNFOLLOWED', 'version 2'], 10_000)).to.deep.equal([]);
      expect(await readdir(path.join(hub.dataDir, 'content'))).to.deep.equal([]);
    });
  });
});

describe('What PostgreSQL keeps of an ended subscription', function () {
  let url: string;
  let hub: TestHub;
  const closers: { close(): Promise<void> }[] = [];

  before(async () => {
    url = await freshDatabaseUrl('retention');
  });
  after(async () => {
    await hub?.destroy();
    for (const c of closers) await c.close();
    await dropDatabaseSchema(url);
  });

  /** Every row of every table in the hub's schema, as text (bytea as \\x hex). */
  async function rowsAsText(): Promise<{ table: string; row: string }[]> {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const tables = await db.query<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'");
      const out: { table: string; row: string }[] = [];
      for (const { name } of tables.rows) for (const r of (await db.query<{ row: string }>(`SELECT t::text AS row FROM "${name}" t`)).rows) out.push({ table: name, row: r.row });
      return out;
    } finally {
      await db.end();
    }
  }

  it('deletes every row naming an unsubscribed WebSub subscriber (token, secret, host) and an expired rssCloud subscriber (its host)', async () => {
    hub = await startTestHub({ DATABASE_URL: url, RSSCLOUD_LEASE_SECONDS: '1' });
    const topics = await TopicServer.start();
    const feeds = await FeedServer.start();
    const websub = await Subscriber.start();
    const rss = await Recorder.start(subscriberOk);
    closers.push(topics, feeds, websub, rss);

    const topic = topics.set('/feed', { body: 'v1\n', contentType: 'text/plain' });
    const callback = websub.callback('/cb?token=TOKEN-PG');
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback, 'hub.secret': 'SECRET-PG' })).status).to.equal(202);
    await websub.waitVerifications(1, 'subscribe');
    await settled(hub);
    const reply = await pleaseNotify(hub, subscribeForm(rss, '/notify', feeds.fixed('pg-retention')));
    expect(reply.success, reply.msg).to.equal(true);
    const hosts = [new URL(callback).host, `127.0.0.1:${rss.port}`];
    const needles = ['TOKEN-PG', 'SECRET-PG', ...hosts, ...hosts.map((h) => Buffer.from(h).toString('hex'))];
    // bus_events (events for other processes' streams and dashboards, kept five minutes) names
    // callback hosts in deliveries' activity, never a callback's path, token or secret: checked
    // apart, below.
    const holding = async (): Promise<string[]> =>
      (await rowsAsText()).filter((r) => r.table !== 'bus_events' && needles.some((n) => r.row.includes(n))).map((r) => r.table);
    const busRows = async (): Promise<string[]> => (await rowsAsText()).filter((r) => r.table === 'bus_events').map((r) => r.row);
    expect(new Set(await holding()), 'the subscriptions as stored').to.deep.equal(new Set(['subscriptions', 'subscription_counts']));

    expect((await unsubscribe(hub, { 'hub.topic': topic, 'hub.callback': callback })).status).to.equal(202);
    await websub.waitVerifications(1, 'unsubscribe');
    await settled(hub);
    await sleep(1100); // the rssCloud lease runs out
    const swept = await testApi<{ result: { subscriptionsRemoved: number } }>(hub, 'removeExpired');
    expect(swept.result.subscriptionsRemoved).to.equal(1);
    expect(await holding(), 'tables holding an ended subscriber').to.deep.equal([]);

    const events = await busRows();
    expect(events.some((row) => hosts.some((h) => row.includes(h))), 'deliveries\' hosts in bus_events').to.equal(true);
    expect(events.filter((row) => ['TOKEN-PG', 'SECRET-PG', '/cb?', '/notify'].some((n) => row.includes(n))), 'callbacks beyond their host in bus_events').to.deep.equal([]);
    // Five minutes on, the next process to send an event deletes them (a new one prunes at once).
    const sql = async (text: string): Promise<pg.QueryResult> => {
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        return await db.query(text);
      } finally {
        await db.end();
      }
    };
    const { rows } = await sql("UPDATE bus_events SET created_at = created_at - interval '6 minutes' RETURNING seq");
    expect(rows).to.not.be.empty;
    await hub.destroy();
    hub = await startTestHub({ DATABASE_URL: url });
    expect((await pleaseNotify(hub, subscribeForm(rss, '/notify', feeds.fixed('pg-retention-2')))).success).to.equal(true);
    await settled(hub);
    const old = rows.map((r: { seq: string }) => r.seq);
    const left = async (): Promise<string[]> => (await sql('SELECT seq FROM bus_events')).rows.map((r: { seq: string }) => r.seq).filter((seq) => old.includes(seq));
    // The prune follows the new process's first event on its own connection, after the answer
    // that settled() waits for: under load it came after this read (a fresh clone's run).
    await until(async () => (await left()).length === 0, { everyMs: 100 });
    expect(await left(), 'bus_events five minutes on').to.deep.equal([]);
  });
});
