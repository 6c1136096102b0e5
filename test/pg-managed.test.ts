// PostgreSQL as managed and pooled deployments give it: behind PgBouncer (its startup-parameter
// rules, reproduced by test/helpers/pooler-proxy.ts; and the real one, in transaction and in
// session mode), over TLS with the sslmode of a managed service's URL, as a role that may use
// the tables but not create any (a DBA ran the migrations as the schema's owner), on a database
// it may not set up, with fewer connection slots than its pool, on a database that accepts no
// writes at start-up (a standby, a failover in progress) or turns read-only while it runs, and
// on a server that closes sessions idle for long (idle_session_timeout). Each on a private server.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pg from 'pg';
import { spawnHub } from './helpers/child-hub.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { startPgServer, type PgServer } from './helpers/pg-server.js';
import { startPgBouncer, type PgBouncer } from './helpers/pgbouncer.js';
import { PGBOUNCER_STARTUP_PARAMETERS, serverAddress, startPoolerProxy, type PoolerProxy } from './helpers/pooler-proxy.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { until } from './helpers/until.js';
import { openStream } from './helpers/sse.js';
import { identity } from './helpers/tls.js';
import { FeedServer, notificationsAt, notifyBody, ping, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { createLogger } from '../lib/log.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate } from '../lib/store/pg-schema.js';
import { PgStore } from '../lib/store/pg-store.js';

describe('PostgreSQL as managed and pooled deployments run it', function () {
  this.timeout(30_000);
  let server: PgServer;
  let feeds: FeedServer;
  let rssSub: Recorder;
  const hubs: TestHub[] = [];
  /** Data directories of hubs that are meant not to start (so never destroyed): removed at the end. */
  const unstarted: string[] = [];
  const unstartedDir = async (): Promise<string> => {
    const dir = await tempDataDir();
    unstarted.push(dir);
    return dir;
  };

  /** The server's URL for `user` on `database`, over TCP through `proxy` or on its socket. */
  const urlOf = (user: string, database: string, proxy?: PoolerProxy): string => {
    const u = new URL(server.url);
    u.username = user;
    u.pathname = `/${database}`;
    if (proxy) return `postgresql://${user}@${proxy.host}:${proxy.port}/${database}`;
    return u.toString();
  };

  /** A pleaseNotify and a ping through `hub`, the notification seen at the subscriber. */
  const subscribeAndPing = async (hub: TestHub, name: string): Promise<void> => {
    const feed = feeds.changing(name);
    const reply = await pleaseNotify(hub, subscribeForm(rssSub, `/${name}`, feed));
    expect(reply.success, reply.msg).to.equal(true);
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    expect(notificationsAt(rssSub, `/${name}`).map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
  };

  before(async function () {
    this.timeout(60_000);
    // TCP too, with a certificate signed by itself, as a managed service's own CA signs one.
    server = await startPgServer({ tls: identity('self-signed') });
    feeds = await FeedServer.start();
    rssSub = await Recorder.start(subscriberOk);
  });
  after(async function () {
    this.timeout(60_000);
    for (const h of hubs) await h.destroy();
    for (const d of unstarted) await rm(d, { recursive: true, force: true });
    for (const s of [feeds, rssSub]) await s?.close();
    await server?.stop();
  });

  describe('behind PgBouncer (startup parameters it does not know are refused)', function () {
    let proxy: PoolerProxy;
    before(async () => {
      await server.admin.query('CREATE DATABASE pooled');
      proxy = await startPoolerProxy(serverAddress(server.url));
    });
    after(async () => {
      await proxy?.close();
    });

    it('starts and serves, and its statements are still bounded by the server (statement_timeout)', async () => {
      const hub = await startTestHub({ DATABASE_URL: urlOf('pushbutton', 'pooled', proxy), DATABASE_QUERY_TIMEOUT_MS: '7000', POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'pooled');
      const refused = proxy.startups.filter((p) => Object.keys(p).some((k) => !PGBOUNCER_STARTUP_PARAMETERS.includes(k.toLowerCase())));
      expect(refused, 'startup parameters PgBouncer refuses').to.deep.equal([]);
      // Set on each store connection by a statement instead.
      expect(proxy.queries.filter((q) => q.applicationName === 'pushbutton' && /statement_timeout\s*=\s*7000/.test(q.text))).to.not.be.empty;
    });
  });

  describe('behind a real PgBouncer', function () {
    const bouncers: PgBouncer[] = [];
    before(async () => {
      await server.admin.query('CREATE DATABASE bounced_tx');
      await server.admin.query('CREATE DATABASE bounced_session');
    });
    after(async () => {
      for (const b of bouncers) await b.stop();
    });
    const bouncer = async (mode: 'session' | 'transaction', poolSize?: number): Promise<PgBouncer> => {
      const b = await startPgBouncer(server.url, mode, ['pushbutton'], poolSize);
      bouncers.push(b);
      return b;
    };

    it('in transaction mode: exits at start-up, saying the pooler must run in session mode', async () => {
      const b = await bouncer('transaction');
      const failed = await spawnHub(await unstartedDir(), { DATABASE_URL: b.url('pushbutton', 'bounced_tx') }, 15_000).then(
        async (hub) => `started and listening at ${hub.url}: ${String(await hub.stop('SIGKILL'))}`,
        (e: unknown) => String(e),
      );
      expect(failed).to.match(/exited \(code 1,/);
      expect(failed).to.match(/"msg":"failed to start"/);
      expect(failed).to.match(/a connection pooler in transaction or statement mode .*session pooling \(PgBouncer pool_mode = session\)/);
    });

    it('in session mode with default_pool_size = 1: exits at start-up after DATABASE_QUERY_TIMEOUT_MS, saying how many server connections it needs', async () => {
      const b = await bouncer('session', 1);
      const failed = await spawnHub(await unstartedDir(), { DATABASE_URL: b.url('pushbutton', 'bounced_session'), DATABASE_QUERY_TIMEOUT_MS: '500' }, 15_000).then(
        async (hub) => `started and listening at ${hub.url}: ${String(await hub.stop('SIGKILL'))}`,
        (e: unknown) => String(e),
      );
      expect(failed).to.match(/exited \(code 1,/);
      expect(failed).to.match(/a second connection, opened while the first was held, got no answer within DATABASE_QUERY_TIMEOUT_MS \(500 ms\).*PgBouncer default_pool_size/);
    });

    it('in session mode: starts and serves', async () => {
      const b = await bouncer('session');
      const hub = await startTestHub({ DATABASE_URL: b.url('pushbutton', 'bounced_session'), POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'bounced-session');
    });
  });

  describe("over TLS, DATABASE_URL's sslmode read as libpq (psql) reads it", function () {
    const tlsUrl = (sslmode?: string): string => {
      const u = new URL(server.tcpUrl!);
      u.pathname = '/encrypted';
      return sslmode === undefined ? u.toString() : `${u.toString()}?sslmode=${sslmode}`;
    };
    /** Every connection of the hubs to the database over TLS, the event bus's among them. */
    async function expectEncrypted(): Promise<void> {
      const { rows } = await server.admin.query<{ ssl: boolean; app: string }>(
        "SELECT s.ssl, a.application_name AS app FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'encrypted' AND a.application_name LIKE 'pushbutton%'",
      );
      expect(rows.map((r) => r.app)).to.include('pushbutton-events');
      expect(rows.map((r) => r.ssl)).to.not.include(false);
    }
    before(async () => {
      await server.admin.query('CREATE DATABASE encrypted');
    });

    it('sslmode=require: encrypts without checking the certificate (a managed service’s own CA), starts and serves', async () => {
      const hub = await startTestHub({ DATABASE_URL: tlsUrl('require'), POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'encrypted');
      await expectEncrypted();
    });

    it("sslmode=no-verify (pg's own word, in Heroku's URLs): still encrypts without checking the certificate, starts and serves", async () => {
      const hub = await startTestHub({ DATABASE_URL: tlsUrl('no-verify'), POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'encrypted-no-verify');
    });

    it('sslmode=prefer (libpq’s default, in many a copied URL): encrypts where the server offers TLS', async () => {
      const hub = await startTestHub({ DATABASE_URL: tlsUrl('prefer'), POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'encrypted-prefer');
      await expectEncrypted();
    });

    it('sslmode=prefer on a server that offers no TLS (its unix socket): connects without, as libpq does, starts and serves', async () => {
      await server.admin.query('CREATE DATABASE plain');
      const hub = await startTestHub({ DATABASE_URL: `${urlOf('pushbutton', 'plain')}&sslmode=prefer`, POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'plain-prefer');
      const { rows } = await server.admin.query<{ app: string }>("SELECT application_name AS app FROM pg_stat_activity WHERE datname = 'plain'");
      expect(rows.map((r) => r.app)).to.include.members(['pushbutton', 'pushbutton-events']);
    });

    it("PGSSLMODE=require (libpq's variable) with a URL that names no sslmode: encrypts without checking the certificate, starts and serves", async () => {
      const hub = await startTestHub({ DATABASE_URL: tlsUrl(), PGSSLMODE: 'require', POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'encrypted-pgsslmode');
      await expectEncrypted();
    });

    it('sslmode=verify-full: refuses a certificate it cannot verify', async () => {
      const failed = await startTestHub({ DATABASE_URL: tlsUrl('verify-full'), POLL_ENABLED: 'false' }, await unstartedDir()).then(
        async (hub) => {
          hubs.push(hub);
          return 'started';
        },
        (e: unknown) => String(e),
      );
      expect(failed).to.match(/could not be opened: self-signed certificate/);
    });
  });

  /** A new database `name`, its schema brought up to date by the server's superuser. */
  async function migratedDatabase(name: string): Promise<void> {
    await server.admin.query(`CREATE DATABASE ${name}`);
    const owner = new PgStore({ connectionString: urlOf('pushbutton', name) });
    await owner.open();
    await owner.close();
  }

  describe('as a role that may use the tables but not create any', function () {
    before(async () => {
      // The schema's owner (the server's superuser here) migrates it, as a DBA would.
      await migratedDatabase('granted');
      const dba = new pg.Client({ connectionString: urlOf('pushbutton', 'granted') });
      await dba.connect();
      try {
        await dba.query('CREATE ROLE pushbutton_app LOGIN');
        await dba.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
        await dba.query('GRANT USAGE ON SCHEMA public TO pushbutton_app');
        await dba.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pushbutton_app');
        await dba.query('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO pushbutton_app');
      } finally {
        await dba.end();
      }
    });

    it('starts on a schema already up to date, and serves', async () => {
      const hub = await startTestHub({ DATABASE_URL: urlOf('pushbutton_app', 'granted'), POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'granted');
    });

    it('granted every table but bus_events (rights given before the version that added it): starts, and streams still hear the other processes', async () => {
      const dba = new pg.Client({ connectionString: urlOf('pushbutton', 'granted') });
      await dba.connect();
      try {
        await dba.query('CREATE ROLE pushbutton_older LOGIN');
        await dba.query('GRANT USAGE ON SCHEMA public TO pushbutton_older');
        await dba.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pushbutton_older');
        await dba.query('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO pushbutton_older');
        await dba.query('REVOKE ALL ON bus_events FROM pushbutton_older');
      } finally {
        await dba.end();
      }
      const env = { DATABASE_URL: urlOf('pushbutton_older', 'granted'), POLL_ENABLED: 'false' };
      const [a, b] = [await startTestHub(env, await tempDataDir()), await startTestHub(env, await tempDataDir())];
      hubs.push(a, b);
      const feed = feeds.changing('granted-older');
      const stream = await openStream(`${a.url}/stream?topic=${encodeURIComponent(feed)}`);
      try {
        expect((await ping(b, feed)).success).to.equal(true);
        await stream.waitFor(1, (e) => e.event === 'change', 5000);
      } finally {
        stream.close();
      }
    });

    it('stops at a migration it may not apply, naming it and what to do', async () => {
      const app = new pg.Client({ connectionString: urlOf('pushbutton_app', 'granted') });
      await app.connect();
      try {
        const next = { version: SCHEMA_VERSION + 1, name: 'a column', sql: 'ALTER TABLE topics ADD COLUMN note text' };
        const failed = await migrate(app, [...MIGRATIONS, next]).then(
          () => 'migrated',
          (e: unknown) => String(e),
        );
        expect(failed).to.match(/migration \d+ \(a column\) failed: must be owner of table topics: the role in DATABASE_URL may not change the schema; run this version once with its owner/);
      } finally {
        await app.end();
      }
    });
  });

  describe('on a database it may not set up', function () {
    /** Why a hub on `url` did not start ('started' if it did). */
    const refusal = (url: string): Promise<string> =>
      startTestHub({ DATABASE_URL: url, POLL_ENABLED: 'false' }, undefined).then(
        (hub) => {
          hubs.push(hub);
          return 'started';
        },
        (e: unknown) => String(e),
      );
    before(async () => {
      await server.admin.query('CREATE DATABASE unprepared');
      await server.admin.query('CREATE ROLE pushbutton_newcomer LOGIN');
    });

    it('as a role that may not create tables in the schema: names the role, the schema and the GRANT', async () => {
      // Since PostgreSQL 15 only the database's owner may create in public.
      expect(await refusal(urlOf('pushbutton_newcomer', 'unprepared'))).to.match(
        /could not be opened: permission denied for schema public: the role pushbutton_newcomer in DATABASE_URL may not create tables in schema public; as its owner, GRANT CREATE ON SCHEMA public TO pushbutton_newcomer/,
      );
    });

    it('with a search_path naming a schema not created: names it and the CREATE SCHEMA', async () => {
      const u = new URL(urlOf('pushbutton', 'unprepared'));
      u.searchParams.set('options', '-c search_path=hub_schema');
      expect(await refusal(u.toString())).to.match(
        /could not be opened: no schema the search_path \(hub_schema\) names exists: create it \(CREATE SCHEMA hub_schema AUTHORIZATION pushbutton\)/,
      );
    });

    it("where another application's tables bear its names: leaves them as they are and says to give the hub a schema of its own", async () => {
      await server.admin.query('CREATE DATABASE shared_app');
      const app = new pg.Client({ connectionString: urlOf('pushbutton', 'shared_app') });
      await app.connect();
      try {
        await app.query("CREATE TABLE topics (id serial PRIMARY KEY, title text); INSERT INTO topics (title) VALUES ('theirs')");
        expect(await refusal(urlOf('pushbutton', 'shared_app'))).to.match(
          /migration 1 \(.*\) failed: relation "topics" already exists: another application's tables are in this schema; give the hub a schema of its own/,
        );
        expect((await app.query('SELECT title FROM topics')).rows).to.deep.equal([{ title: 'theirs' }]);
      } finally {
        await app.end();
      }
    });
  });

  describe('with fewer connections left on the server than DATABASE_POOL_SIZE (a small plan)', function () {
    before(async () => {
      // The hub's fewest: a store connection, a topic-lock connection and its LISTEN.
      await server.admin.query('CREATE ROLE pushbutton_small LOGIN CONNECTION LIMIT 3');
      await server.admin.query('CREATE DATABASE small_plan OWNER pushbutton_small');
    });

    it('a burst of requests waits for the connections it has instead of failing with "too many connections"', async () => {
      const hub = await startTestHub({ DATABASE_URL: urlOf('pushbutton_small', 'small_plan'), DATABASE_POOL_SIZE: '10', POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => pleaseNotify(hub, subscribeForm(rssSub, `/small-${i}`, feeds.changing(`small-${i}`)))));
      expect(replies.filter((r) => !r.success).map((r) => `${r.status} ${r.msg}`)).to.deep.equal([]);
    });

    it('a burst of topic locks, and of transactions, waits for the connections the store holds', async () => {
      await server.admin.query('CREATE ROLE pushbutton_few LOGIN CONNECTION LIMIT 2');
      await server.admin.query('CREATE DATABASE few_slots OWNER pushbutton_few');
      const store = new PgStore({ connectionString: urlOf('pushbutton_few', 'few_slots'), poolSize: 6 });
      await store.open();
      try {
        // The store pool holds one slot (since it opened), the lock pool gets the other: each refresh takes its turn at the one lock connection.
        const refreshes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.withTopicLock(`http://few.example/${i}`, () => store.getTopic(`http://few.example/${i}`))));
        expect(refreshes.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).to.deep.equal([]);
        // Reads in pages run in a transaction: the lock connection holds the other slot, so the store pool's one connection serve them in turn.
        const pages = await Promise.allSettled(Array.from({ length: 12 }, () => store.listTopics()));
        expect(pages.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).to.deep.equal([]);
      } finally {
        await store.close();
      }
    });

    it('a connection refused for anything but a slot (a role that may no longer log in) fails at once, not asked again', async function () {
      this.timeout(45_000);
      await server.admin.query('CREATE ROLE pushbutton_gate LOGIN');
      await server.admin.query('CREATE DATABASE gate OWNER pushbutton_gate');
      const store = new PgStore({ connectionString: urlOf('pushbutton_gate', 'gate'), poolSize: 4, queryTimeoutMs: 20_000 });
      await store.open();
      const dba = new pg.Client({ connectionString: urlOf('pushbutton', 'gate') });
      await dba.connect();
      try {
        // A read held behind a lock keeps one store connection busy, so the next read opens another.
        await store.getTopic('http://gate.example/');
        await dba.query('BEGIN');
        await dba.query('LOCK TABLE topics IN ACCESS EXCLUSIVE MODE');
        const held = store.getTopic('http://gate.example/').then(() => 'read');
        await server.admin.query('ALTER ROLE pushbutton_gate NOLOGIN');
        const refused = store.getTopic('http://gate.example/').then(
          () => 'read',
          (e: unknown) => String(e),
        );
        const outcome = await Promise.race([refused, sleep(10_000).then(() => 'still asking after 10 s, half DATABASE_QUERY_TIMEOUT_MS')]);
        expect(outcome).to.equal('error: role "pushbutton_gate" is not permitted to log in');
        await dba.query('COMMIT');
        expect(await held).to.equal('read');
      } finally {
        await dba.end();
        await server.admin.query('ALTER ROLE pushbutton_gate LOGIN');
        await store.close();
      }
    });

    it('refreshes whose topic locks took the last slots fail at once, not after DATABASE_QUERY_TIMEOUT_MS waiting for a store connection none will give back', async function () {
      this.timeout(45_000);
      await server.admin.query('CREATE ROLE pushbutton_tiny LOGIN CONNECTION LIMIT 2');
      await server.admin.query('CREATE DATABASE tiny_plan OWNER pushbutton_tiny');
      let cut!: () => void;
      const lost = new Promise<void>((resolve) => (cut = resolve));
      const store = new PgStore({ connectionString: urlOf('pushbutton_tiny', 'tiny_plan'), poolSize: 4, queryTimeoutMs: 20_000, lockWaitMs: 20_000, onError: () => cut() });
      await store.open();
      try {
        // The store pool's one connection ends (its idle timeout, a restart of the sessions);
        // two refreshes then take both slots with their lock connections. Each reads only once
        // both hold their locks: left to the scheduler, one refresh could take a lock and a
        // store connection before the other asked for its lock, read, and give the slots back
        // to the other's retried connection (seen once on a loaded machine): two reads.
        await server.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'tiny_plan'");
        await lost;
        let locked = 0;
        const bothLocked = until(() => locked === 2);
        const refreshes = Promise.allSettled(
          ['a', 'b'].map((t) =>
            store.withTopicLock(`http://${t}.example/feed`, async () => {
              locked++;
              await bothLocked;
              return store.getTopic(`http://${t}.example/feed`);
            }),
          ),
        );
        const outcome = await Promise.race([refreshes, sleep(10_000).then(() => 'still waiting after 10 s, half DATABASE_QUERY_TIMEOUT_MS')]);
        expect(typeof outcome === 'string' ? outcome : outcome.map((r) => (r.status === 'rejected' ? String(r.reason) : 'read'))).to.deep.equal([
          'error: too many connections for role "pushbutton_tiny"',
          'error: too many connections for role "pushbutton_tiny"',
        ]);
      } finally {
        await store.close();
      }
    });
  });

  describe('on a database that turns read-only while the hub runs (a failover to a standby, and back)', function () {
    before(async () => {
      await server.admin.query('CREATE DATABASE failing_over');
    });
    /** Sets default_transaction_read_only and cuts the hub's sessions, as a failover does. */
    const readOnly = async (on: boolean): Promise<void> => {
      await server.admin.query(`ALTER DATABASE failing_over ${on ? 'SET default_transaction_read_only = on' : 'RESET default_transaction_read_only'}`);
      await server.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'failing_over' AND pid <> pg_backend_pid()");
    };

    it('answers with the protocol error replies, stays up, keeps its subscribers, and delivers again once writes are accepted', async () => {
      const log: string[] = [];
      const hub = await startTestHub({ DATABASE_URL: urlOf('pushbutton', 'failing_over'), POLL_ENABLED: 'false' }, await tempDataDir(), {
        log: createLogger('warn', (line) => void log.push(line)),
      });
      hubs.push(hub);
      const feed = feeds.changing('failing-over');
      expect((await pleaseNotify(hub, subscribeForm(rssSub, '/failing-over', feed))).success).to.equal(true);
      rssSub.reset();
      await readOnly(true);
      try {
        // Those after the cut may meet connections it lost (as many as the pool held), then
        // the read-only server: each refused.
        const readOnlyError = /cannot execute \w+ in a read-only transaction/;
        for (let i = 0; i < 12 && !readOnlyError.test(log.join('\n')); i++) {
          const refused = await ping(hub, feed);
          expect([refused.status, refused.success]).to.deep.equal([500, false]);
        }
        expect(log.join('\n')).to.match(readOnlyError);
        const stats = await fetch(`${hub.url}/stats.json`);
        expect(stats.status, 'a read still answers').to.equal(200);
        expect((await stats.json()) as { subscriptions: number }).to.include({ subscriptions: 1 });
      } finally {
        await readOnly(false);
      }
      // Writable again: the connections cut a second time may each fail one request first.
      let pinged = await ping(hub, feed);
      for (let i = 0; i < 12 && !pinged.success; i++) pinged = await ping(hub, feed);
      expect(pinged.success, pinged.msg).to.equal(true);
      await rssSub.waitFor(1, (r) => r.path === '/failing-over');
      expect(notificationsAt(rssSub, '/failing-over').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    });
  });

  describe('on a server that closes idle sessions (idle_session_timeout 300 ms)', function () {
    const IDLE_MS = 300;
    const stores: PgStore[] = [];
    before(async () => {
      await server.admin.query('CREATE DATABASE idling');
      await server.admin.query(`ALTER DATABASE idling SET idle_session_timeout = ${IDLE_MS}`);
    });
    after(async () => {
      for (const s of stores) await s.close();
    });
    const opened = async (): Promise<PgStore> => {
      const store = new PgStore({ connectionString: urlOf('pushbutton', 'idling'), lockWaitMs: 5000 });
      await store.open();
      stores.push(store);
      return store;
    };

    it('a topic lock held while its feed is read for longer still keeps other processes out', async () => {
      const [a, b] = [await opened(), await opened()];
      const order: string[] = [];
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const first = a.withTopicLock('http://idle.example/feed', async () => {
        order.push('a in');
        entered();
        await sleep(4 * IDLE_MS); // a slow feed: the lock connection idles meanwhile
        order.push('a out');
      });
      await inside;
      await sleep(2 * IDLE_MS);
      await b.withTopicLock('http://idle.example/feed', async () => void order.push('b in'));
      await first;
      expect(order).to.deep.equal(['a in', 'a out', 'b in']);
    });

    it("keeps its LISTEN connection while no event comes, and a stream hears another process's change", async () => {
      const env = { DATABASE_URL: urlOf('pushbutton', 'idling'), POLL_ENABLED: 'false' };
      const [a, b] = [await startTestHub(env, await tempDataDir()), await startTestHub(env, await tempDataDir())];
      hubs.push(a, b);
      const listeners = (): Promise<number[]> =>
        server.admin
          .query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = 'idling' AND application_name = 'pushbutton-events' ORDER BY pid")
          .then((r) => r.rows.map((row) => row.pid));
      const before = await listeners();
      expect(before).to.have.length(2);
      const feed = feeds.changing('idle-stream');
      const stream = await openStream(`${a.url}/stream?topic=${encodeURIComponent(feed)}`);
      try {
        await sleep(4 * IDLE_MS);
        expect(await listeners(), 'the LISTEN connections, not closed and replaced').to.deep.equal(before);
        expect((await ping(b, feed)).success).to.equal(true);
        await stream.waitFor(1, (e) => e.event === 'change', 5000);
      } finally {
        stream.close();
      }
    });
  });

  describe("two hubs on one database, one's LISTEN connection cut (a proxy's idle cut, pg_terminate_backend)", function () {
    before(async () => {
      await server.admin.query('CREATE DATABASE relay');
      // A role each, so the first hub alone can be kept from connecting again for a while.
      await server.admin.query('CREATE ROLE listener_hub LOGIN SUPERUSER');
      await server.admin.query('CREATE ROLE pinged_hub LOGIN SUPERUSER');
    });

    it("a stream on the cut hub still hears the change the other hub learned while it was not listening", async () => {
      const env = { POLL_ENABLED: 'false' };
      const a = await startTestHub({ ...env, DATABASE_URL: urlOf('listener_hub', 'relay') }, await tempDataDir());
      hubs.push(a);
      const b = await startTestHub({ ...env, DATABASE_URL: urlOf('pinged_hub', 'relay') }, await tempDataDir());
      hubs.push(b);
      const feed = feeds.changing('cut-listener');
      const stream = await openStream(`${a.url}/stream?topic=${encodeURIComponent(feed)}`);
      // The hubs' channel, heard here too: b's NOTIFY has gone out once this hears it.
      const watcher = new pg.Client({ connectionString: urlOf('pushbutton', 'relay') });
      await watcher.connect();
      try {
        const channel = `pushbutton_${createHash('sha256').update('public').digest('hex').slice(0, 16)}`;
        await watcher.query(`LISTEN ${channel}`);
        const notified = new Promise<void>((resolve) => watcher.once('notification', () => resolve()));
        await server.admin.query('ALTER ROLE listener_hub NOLOGIN');
        const cut = await server.admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'listener_hub' AND application_name = 'pushbutton-events'",
        );
        expect(cut.rowCount, 'the LISTEN connection of the first hub').to.equal(1);
        expect((await ping(b, feed)).success).to.equal(true);
        await notified;
        await server.admin.query('ALTER ROLE listener_hub LOGIN');
        const [change] = await stream.waitFor(1, (e) => e.event === 'change', 5000);
        expect(JSON.parse(change!.data).topic).to.equal(feed);
      } finally {
        await server.admin.query('ALTER ROLE listener_hub LOGIN');
        stream.close();
        await watcher.end();
      }
    });
  });

  describe('on a database that accepts no writes at start-up', function () {
    before(async () => {
      await migratedDatabase('readonly');
      await server.admin.query('ALTER DATABASE readonly SET default_transaction_read_only = on');
    });

    it('exits at once, saying the database accepts no writes', async () => {
      const started = spawnHub(await unstartedDir(), { DATABASE_URL: urlOf('pushbutton', 'readonly') }, 15_000);
      const failed = await started.then(
        () => undefined,
        (e: unknown) => String(e),
      );
      expect(failed).to.match(/the database accepts no writes \(transaction_read_only is on/);
    });
  });
});
