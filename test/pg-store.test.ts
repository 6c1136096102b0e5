// The PostgreSQL store's own promises, beside the store contract (store.test.ts): versioned
// migrations that several processes may run at once, a schema refused when it is newer than
// the build, indexes on the hot paths, the pool size, and the configuration that picks it.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConfigError, loadConfig } from '../lib/config.js';
import { createStore } from '../lib/store/create-store.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { hostKey, newSubscription, newTopic } from '../lib/model.js';
import { MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION, migrate, type Migration } from '../lib/store/pg-schema.js';
import { PgStore, urlKey } from '../lib/store/pg-store.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { sub } from './helpers/store-contract.js';
import { countTurns } from './helpers/turns.js';
import { until } from './helpers/until.js';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Resolves once another session holds an advisory lock whose first key is `key` (10 s at most). */
async function heldByAnother(c: pg.Client, key: number): Promise<void> {
  const held = async (): Promise<boolean> =>
    Boolean((await c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND pid <> pg_backend_pid()", [key])).rowCount);
  if (!(await until(held, { everyMs: 10 }))) throw new Error(`no other session took advisory lock ${key} in 10 s`);
}

/** The host a callback with backslashes was counted under before 78a16fe read them as the URL standard does. */
const OLD_HOST = 'reader.example\\tok\\cb';

/**
 * A database at schema 6 run by a build that already read backslashes as the end of the host
 * (78a16fe on): a row inserted under the old host, then moved to today's by its next write, and
 * its count left with the old host.
 */
async function driftHostCount(c: pg.Client): Promise<void> {
  await migrate(c, MIGRATIONS.filter((m) => m.version <= 6));
  await c.query(
    `INSERT INTO subscriptions (topic_key, callback_key, topic, callback, callback_host, protocol, lease_seconds, ct_updates, ct_errors, ct_consecutive_errors, when_created, when_last_update, when_last_error, when_expires)
     VALUES ('\\x01', '\\x02', 'http://a/feed', $1, $2, 'websub', 0, 0, 0, 0, 0, 0, 0, 99999999999999)`,
    ['http://reader.example\\tok\\cb', OLD_HOST],
  );
  await c.query(`UPDATE subscriptions SET callback_host = 'reader.example'`);
}

/** Migration 7 as 9c48898 released it: the trigger, without the recount added to it later. */
const MIGRATION_7_OF_9C48898: Migration = {
  version: 7,
  name: 'the per-host count follows a callback_host changed by an update',
  sql: `
    CREATE FUNCTION subscription_counts_follow_host() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE subscription_counts SET n = n - 1 WHERE kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8');
      INSERT INTO subscription_counts AS c (kind, key, n) VALUES ('h', convert_to(NEW.callback_host, 'UTF8'), 1)
        ON CONFLICT (kind, key) DO UPDATE SET n = c.n + 1;
      RETURN NULL;
    END
    $$;
    CREATE TRIGGER subscription_counts_follow_host AFTER UPDATE OF callback_host ON subscriptions
      FOR EACH ROW WHEN (OLD.callback_host IS DISTINCT FROM NEW.callback_host) EXECUTE FUNCTION subscription_counts_follow_host();
  `,
};

describe('PostgreSQL store', function () {
  let url: string;
  let stores: PgStore[] = [];

  async function opened(poolSize = 2): Promise<PgStore> {
    const s = new PgStore({ connectionString: url, poolSize });
    stores.push(s);
    await s.open();
    return s;
  }

  beforeEach(async () => {
    url = await freshDatabaseUrl('pgstore');
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    stores = [];
    await dropDatabaseSchema(url);
  });

  describe('migrations', () => {
    it('creates the schema on first open and records every version in schema_migrations', async () => {
      const store = await opened();
      expect(store.schema).to.deep.equal({ from: 0, to: SCHEMA_VERSION, applied: MIGRATIONS.map((m) => m.version) });
      const rows = await withClient(url, async (c) => (await c.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows);
      expect(rows).to.deep.equal(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      await store.close();
      const again = await opened();
      expect(again.schema).to.deep.equal({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
    });

    it('is safe when several processes start at once: each migration runs exactly once', async () => {
      const many = Array.from({ length: 6 }, () => new PgStore({ connectionString: url, poolSize: 1 }));
      stores.push(...many);
      await Promise.all(many.map((s) => s.open()));
      const applied = many.map((s) => s.schema!.applied);
      expect(applied.filter((a) => a.length > 0)).to.deep.equal([MIGRATIONS.map((m) => m.version)]);
      expect(applied.filter((a) => a.length === 0)).to.have.length(5);
      const versions = await withClient(url, async (c) => (await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows);
      expect(versions).to.have.length(MIGRATIONS.length);
      // And they all work on the one schema.
      await Promise.all(many.map((s, i) => s.putSubscription(sub('http://a/feed', `http://s/${i}`))));
      expect(await many[0]!.countSubscriptions({ topic: 'http://a/feed' })).to.equal(6);
    });

    it('applies a new migration to an existing database, and rolls a failing one back entirely', async () => {
      await (await opened()).putSubscription(sub('http://a/feed', 'http://s/1'));
      const next = SCHEMA_VERSION + 1;
      const good = [...MIGRATIONS, { version: next, name: 'a test column', sql: 'ALTER TABLE topics ADD COLUMN test_note text' }];
      const bad = [...good, { version: next + 1, name: 'broken', sql: 'CREATE TABLE half_done (x int); SELECT no_such_column FROM topics' }];
      await withClient(url, async (c) => {
        let failed: unknown;
        await migrate(c, bad).catch((e: unknown) => (failed = e));
        expect(String(failed)).to.match(/no_such_column/);
        const tables = await c.query("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'half_done'");
        expect(tables.rowCount).to.equal(0);
        const columns = await c.query("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'test_note'");
        expect(columns.rowCount, 'the good migration in the failed run is rolled back too').to.equal(0);
        expect(await migrate(c, good)).to.deep.equal({ from: SCHEMA_VERSION, to: next, applied: [next] });
      });
      expect(await stores[0]!.getSubscription('http://a/feed', 'http://s/1')).to.deep.equal(sub('http://a/feed', 'http://s/1'));
    });

    it("runs a migration longer than the role's or database's statement_timeout to its end", async () => {
      await (await opened()).close();
      const slow = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, name: 'a slow one', sql: 'SELECT pg_sleep(0.3)' }];
      await withClient(url, async (c) => {
        await c.query('SET statement_timeout = 100'); // as ALTER ROLE … SET statement_timeout gives it
        expect((await migrate(c, slow)).applied).to.deep.equal([SCHEMA_VERSION + 1]);
      });
    });

    it("waits for another process's migration longer than the role's or database's lock_timeout, then finds it done", async () => {
      await (await opened()).close();
      const slow = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, name: 'a slow one', sql: 'SELECT pg_sleep(0.3)' }];
      const results = await Promise.all(
        [0, 1].map((i) =>
          withClient(url, async (c) => {
            await c.query('SET lock_timeout = 100'); // as ALTER ROLE … SET lock_timeout gives it
            // The second starts once the first holds the migrations' lock: waited for, not
            // guessed (50 ms was not always enough on a loaded machine, and the second took the
            // lock first).
            if (i === 1) await heldByAnother(c, MIGRATION_LOCK);
            return migrate(c, slow).then(
              (r) => r.applied,
              (e: unknown) => String(e),
            );
          }),
        ),
      );
      expect(results).to.deep.equal([[SCHEMA_VERSION + 1], []]);
    });

    it('migrates while a process of the older build writes a verified subscription (its locks in the other order): the start-up does not fail on the deadlock', async () => {
      const topic = 'http://a/feed';
      const callback = 'http://reader.example/cb';
      await withClient(url, async (c) => {
        await migrate(c, MIGRATIONS.filter((m) => m.version <= 8));
        await c.query("INSERT INTO pending_verifications (id, mode, topic, callback, created_at) VALUES ('r1', 'subscribe', $1, $2, 1)", [topic, callback]);
      });
      const older = new pg.Client({ connectionString: url });
      const starting = new pg.Client({ connectionString: url });
      await Promise.all([older.connect(), starting.connect()]);
      try {
        // The older build's putVerifiedSubscription: the request's row held, then migration 5's function.
        await older.query('BEGIN');
        await older.query("SELECT 1 FROM pending_verifications WHERE id = 'r1' FOR SHARE");
        const pid = (await starting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const migrating = migrate(starting, MIGRATIONS.filter((m) => m.version <= 9)).then(
          (report) => report,
          (e: unknown) => e,
        );
        // The new process has altered subscriptions and waits for the held row's table.
        for (;;) {
          const { rows } = await older.query<{ w: string | null }>('SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1', [pid]);
          if (rows[0]?.w === 'Lock') break;
          await new Promise((r) => setTimeout(r, 10));
        }
        const put = older
          .query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) AS refused', [
            100, 100, urlKey(topic), urlKey(callback), topic, callback, 'reader.example', 'websub', null, 'k', 3600, 0, 0, 0, 1, null, null, 2, 0,
          ])
          .then(
            () => older.query('COMMIT'),
            // The older build retries a deadlock victim's transaction (pg-store's retrying).
            (e: unknown) => older.query('ROLLBACK').then(() => e),
          );
        const [outcome] = await Promise.all([migrating, put]);
        expect(outcome).to.deep.equal({ from: 8, to: 9, applied: [9] });
      } finally {
        await Promise.all([older.end(), starting.end()]);
      }
    });

    it('refuses a database migrated by a newer build', async () => {
      await (await opened()).close();
      await withClient(url, (c) => c.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')"));
      let failed: unknown;
      await new PgStore({ connectionString: url }).open().catch((e: unknown) => (failed = e));
      expect(String(failed)).to.contain(`schema is at version 999, newer than this build knows (${SCHEMA_VERSION})`);
    });
  });

  describe('writes', () => {
    it('runs again a write the database chose as a deadlock victim: the subscription is stored, not refused with the deadlock', async () => {
      const store = await opened();
      const s = sub('http://a/feed', 'http://reader.example/cb');
      const other = new pg.Client({ connectionString: url });
      await other.connect();
      try {
        // Another transaction takes the callback host's lock, then the topic's: the reverse of
        // the order put_subscription_within_limits takes them in. This session waits longest
        // before looking for a deadlock, so the store's statement is the one PostgreSQL cancels.
        await other.query("SET deadlock_timeout = '10s'");
        await other.query('BEGIN');
        const lock = (key: string): Promise<unknown> => other.query('SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || $1, 0))', [key]);
        await lock(' host reader.example');
        const writing = store.putSubscriptionWithinLimits(s, { perTopic: 100, perCallbackHost: 100 }).then(
          (refused) => ({ refused }),
          (e: unknown) => ({ error: String(e) }),
        );
        // The store's statement holds the topic's lock and waits for the host's.
        const waiting = async (): Promise<boolean> =>
          Boolean((await other.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid <> pg_backend_pid()")).rowCount);
        if (!(await until(waiting, { everyMs: 10 }))) throw new Error('the store never waited for the lock');
        await lock(' topic http://a/feed');
        await other.query('COMMIT');
        expect(await writing).to.deep.equal({ refused: null });
      } finally {
        await other.end();
      }
      expect(await store.getSubscription(s.topic, s.callback)).to.include({ topic: s.topic, callback: s.callback });
    });
  });

  describe('a read that found no change', () => {
    it("writes the topic again without writing its fingerprints again when they are the same (WAL per check)", async () => {
      const store = await opened();
      // A busy feed's topic: the hashes of the 300 entries it remembers, as random as real ones.
      const fingerprints = Array.from({ length: 300 }, () => randomBytes(6).toString('hex'));
      const t = { ...newTopic('http://a/big-feed'), lastHash: 'h', version: 1, fingerprints };
      await store.putTopic(t);
      const walPerCheck = async (checks: (i: number) => Promise<void>): Promise<number> =>
        withClient(url, async (c) => {
          const lsn = async (): Promise<string> => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn() AS l')).rows[0]!.l;
          const before = await lsn();
          for (let i = 1; i <= 50; i++) await checks(i);
          const after = await lsn();
          return Number((await c.query<{ d: string }>('SELECT pg_wal_lsn_diff($1, $2) AS d', [after, before])).rows[0]!.d) / 50;
        });
      // Their list alone is ~4 KB (out of line, written whole each time it is set).
      const same = await walPerCheck((i) => store.recordCheck({ ...t, ctChecks: i, whenLastCheck: i }));
      expect(same, 'bytes of WAL per check with the same fingerprints').to.be.below(2000);
      expect(await store.getTopic(t.url)).to.deep.equal({ ...t, ctChecks: 50, whenLastCheck: 50 });
      // A check that brings other fingerprints stores them.
      const moved = [...fingerprints.slice(1), 'feedbeef0001'];
      await store.recordCheck({ ...t, ctChecks: 51, whenLastCheck: 51, fingerprints: moved });
      expect(await store.getTopic(t.url)).to.deep.equal({ ...t, ctChecks: 51, whenLastCheck: 51, fingerprints: moved });
    });
  });

  describe('hot paths', () => {
    /** The plan of `sql` when the planner may not scan whole tables: an index must serve it. */
    async function plan(sql: string, values: unknown[]): Promise<string> {
      await opened();
      return withClient(url, async (c) => {
        await c.query('SET enable_seqscan = off');
        const rows = (await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values)).rows;
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    }

    it('finds the subscribers of a topic by index', async () => {
      expect(await plan('SELECT callback FROM subscriptions WHERE topic_key = $1', [urlKey('http://a/feed')])).to.match(/Index.*subscriptions_pkey/);
    });
    it('reads the count of a topic or callback host by index (the limits)', async () => {
      expect(await plan("SELECT n FROM subscription_counts WHERE kind = 'h' AND key = convert_to($1, 'UTF8')", ['hooks.example'])).to.match(/subscription_counts_pkey/);
    });
    it('reads a batch of one topic\'s subscriptions by index (a fan-out\'s reads)', async () => {
      const sql = 'SELECT callback FROM subscriptions WHERE topic_key = $1 AND callback_key = ANY($2::bytea[])';
      expect(await plan(sql, [urlKey('http://a/feed'), [urlKey('http://s/1'), urlKey('http://s/2')]])).to.match(/Index.*subscriptions_pkey/);
    });
    it('finds expiring leases by index', async () => {
      expect(await plan('SELECT callback FROM subscriptions WHERE when_expires < $1', [Date.now()])).to.match(/subscriptions_when_expires/);
    });
    it('finds rssCloud subscriptions exhausted by failed deliveries by index (the sweep)', async () => {
      const sql = "SELECT ctid FROM subscriptions WHERE protocol <> 'websub' AND ct_consecutive_errors > 0 AND ct_consecutive_errors >= $1";
      expect(await plan(sql, [3])).to.match(/subscriptions_failing/);
    });
    it('asks whether a topic has a live subscription by its topic (each poll), not by lease', async () => {
      const sql = "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE topic_key = $1 AND when_expires > $2 AND (protocol = 'websub' OR ct_consecutive_errors < $3))";
      expect(await plan(sql, [urlKey('http://a/feed'), Date.now(), 3])).to.match(/Index.*subscriptions_pkey/);
    });
    it('finds an outbox body by topic and version by index', async () => {
      expect(await plan('SELECT body FROM outbox WHERE topic_key = $1 AND version = $2', [urlKey('http://a/feed'), 3])).to.match(/Index.*outbox_pkey/);
    });
  });

  describe('long reads yield to the event loop', () => {
    const topic = 'http://t.example/feed';
    const rows = 12_000;
    const page = 1000; // PAGE_ROWS in lib/store/pg-store.ts

    /** `rows` subscriptions of one topic (or of a topic each), written by one statement, as a big hub holds them. */
    async function seed(oneTopic: boolean): Promise<void> {
      await withClient(url, async (c) => {
        // Counted once after, as migration 5 counts: the trigger, counting each row on one
        // topic's count row, took seconds for a topic this size in one statement.
        await c.query('ALTER TABLE subscriptions DISABLE TRIGGER subscription_counts_follow');
        await c.query(
          `INSERT INTO subscriptions (topic_key, callback_key, topic, callback, callback_host, protocol, secret, lease_seconds, ct_updates, ct_errors, ct_consecutive_errors, when_created, when_last_update, when_last_error, when_expires, delivered_version)
           SELECT sha256(convert_to(t, 'UTF8')), sha256(convert_to(cb, 'UTF8')), t, cb, 'cb' || i || '.example', 'websub', 's' || i, 3600, i, 0, 0, i, NULL, NULL, 99999999999999, 1
           FROM (SELECT i, CASE WHEN $2 THEN $1 ELSE 'http://t' || i || '.example/feed' END AS t, 'http://cb' || i || '.example/s' AS cb FROM generate_series(1, $3::int) i) x`,
          [topic, oneTopic, rows],
        );
        await c.query('ALTER TABLE subscriptions ENABLE TRIGGER subscription_counts_follow');
        await c.query("INSERT INTO subscription_counts (kind, key, n) SELECT 't', topic_key, count(*) FROM subscriptions GROUP BY topic_key");
        await c.query("INSERT INTO subscription_counts (kind, key, n) SELECT 'h', convert_to(callback_host, 'UTF8'), count(*) FROM subscriptions GROUP BY callback_host");
      });
    }

    interface Answer {
      client: pg.Client;
      rows: number;
      turn: number;
    }

    /**
     * The results of every statement the store sends while `read` runs, each with the turn of the
     * event loop it came back in. Rows are made into records as their statement answers, in
     * that turn: a statement of every row made them all in one.
     */
    async function answers<T>(read: () => Promise<T>, atFirstRows: () => void = () => undefined, rowsAnswersBefore = 1): Promise<{ result: T; answers: Answer[] }> {
      const seen: Answer[] = [];
      const counter = countTurns();
      const query = pg.Client.prototype.query;
      const answered = (client: pg.Client, r: { rows?: unknown[] } | undefined): void => {
        const rows = r?.rows?.length ?? 0;
        if (rows > 0 && seen.filter((a) => a.rows > 0).length === rowsAnswersBefore - 1) setImmediate(atFirstRows);
        seen.push({ client, rows, turn: counter.turns });
      };
      // Answered by promise, or by callback (as the pool's own query is).
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        const last = args.at(-1);
        if (typeof last === 'function') {
          args[args.length - 1] = (e: unknown, r: { rows?: unknown[] } | undefined) => {
            if (!e) answered(this, r);
            return (last as (e: unknown, r: unknown) => unknown)(e, r);
          };
        }
        const sent = (query as (...a: unknown[]) => unknown).apply(this, args);
        if (sent instanceof Promise) sent.then((r: { rows?: unknown[] } | undefined) => answered(this, r), () => undefined);
        return sent;
      } as typeof query;
      try {
        return { result: await read(), answers: seen };
      } finally {
        pg.Client.prototype.query = query;
        counter.stop();
      }
    }

    /** The answers on the connection that read the most rows (others: writes made meanwhile). */
    function expectPaged(seen: Answer[]): void {
      const total = (client: pg.Client): number => seen.filter((a) => a.client === client).reduce((n, a) => n + a.rows, 0);
      const reader = seen.map((a) => a.client).reduce((a, b) => (total(b) > total(a) ? b : a));
      expect(total(reader), 'rows read').to.be.at.least(rows);
      const pages = seen.filter((a) => a.client === reader && a.rows > 0);
      expect(Math.max(...pages.map((a) => a.rows)), 'most rows in one answer').to.be.at.most(page);
      expect(pages.length, 'answers with rows').to.be.at.least(rows / page);
      for (let i = 1; i < pages.length; i++) expect(pages[i]!.turn, `turn of page ${i + 1}`).to.be.greaterThan(pages[i - 1]!.turn);
    }

    it("reads a topic's subscribers a page at a time, a turn of the event loop apart, in the order they subscribed, as they were when the read began", async () => {
      const store = await opened();
      await seed(true);
      // What one statement reads, the records made at once, as before the pages.
      const expected = await withClient(url, async (c) => (await c.query<{ callback: string }>('SELECT callback FROM subscriptions ORDER BY seq')).rows.map((r) => r.callback));
      const first = await store.getSubscription(topic, 'http://cb1.example/s');
      expect(first).to.include({ topic, callback: 'http://cb1.example/s', secret: 's1', leaseSeconds: 3600, ctUpdates: 1, deliveredVersion: 1, whenLastUpdate: null });
      // Written again once the first page is read, so last in the order: the read began before,
      // and keeps its place. (The answer before it is the one statement that found the topic
      // larger than a page.)
      let written: Promise<void> | undefined;
      const { result, answers: seen } = await answers(
        () => store.subscriptionsOf(topic),
        () => (written = store.deleteSubscription(topic, first!.callback).then(() => store.putSubscription(first!))),
        2,
      );
      await written;
      const [probe, ...rest] = seen.filter((a) => a.rows > 0);
      expect(probe!.rows, 'the first statement: one page and one row more').to.equal(page + 1);
      expectPaged(seen.filter((a) => a !== probe));
      expect(rest.length).to.be.at.least(rows / page);
      expect(result.map((s) => s.callback)).to.deep.equal(expected);
      expect(result[0]).to.deep.equal(first);
      expect((await store.subscriptionsOf(topic)).at(-1)).to.deep.equal(first);
    });

    it("reads a topic of at most a page of subscribers with one statement, as every publish asks", async () => {
      const store = await opened();
      const small = 'http://small.example/feed';
      for (let i = 0; i < 3; i++) await store.putSubscription(newSubscription(small, `http://cb${i}.example/s`, 'websub', 1, Date.now() + 3600_000));
      const { result, answers: seen } = await answers(() => store.subscriptionsOf(small));
      expect(result.map((s) => s.callback)).to.deep.equal(['http://cb0.example/s', 'http://cb1.example/s', 'http://cb2.example/s']);
      expect(seen.map((a) => a.rows), 'statements answered').to.deep.equal([3]);
    });

    it('lists every subscription, and the topics followed, a page at a time, a turn of the event loop apart', async () => {
      const store = await opened();
      await seed(false);
      const subs = await answers(() => store.listSubscriptions());
      expectPaged(subs.answers);
      expect(new Set(subs.result.map((s) => s.callback)).size).to.equal(rows);
      const followed = await answers(() => store.subscribedTopics());
      expectPaged(followed.answers);
      expect(followed.result).to.have.length(rows);
      expect(followed.result.every((t) => t.subscriptions === 1 && /^http:\/\/t\d+\.example\/feed$/.test(t.topic))).to.equal(true);
    });

    it('claims every pending verification at a start a page at a time, a turn of the event loop apart, each once, oldest first', async () => {
      const store = await opened();
      await withClient(url, (c) =>
        c.query(
          `INSERT INTO pending_verifications (id, mode, topic, callback, created_at)
           SELECT 'v' || i, 'subscribe', 'http://t' || i || '.example/feed', 'http://cb' || i || '.example/s', $1::int - i FROM generate_series(1, $1::int) i`,
          [rows],
        ),
      );
      const { result, answers: seen } = await answers(() => store.claimVerifications('me', 60_000, 1_000_000_000));
      expectPaged(seen);
      expect(result.map((v) => v.id)).to.deep.equal(Array.from({ length: rows }, (_, i) => `v${rows - i}`));
      expect(result.every((v) => v.claimedBy === 'me')).to.equal(true);
      expect(await store.claimVerifications('other', 60_000, 1_000_000_000), 'claimed by another process after').to.deep.equal([]);
    });

    it('hands back the pages it claimed when the database fails on a later page, instead of leaving them claimed by nobody working on them until the lease ends', async () => {
      const store = await opened();
      const n = 2 * page + 500;
      await withClient(url, (c) =>
        c.query(
          `INSERT INTO pending_verifications (id, mode, topic, callback, created_at)
           SELECT 'v' || i, 'subscribe', 'http://t' || i || '.example/feed', 'http://cb' || i || '.example/s', i FROM generate_series(1, $1::int) i`,
          [n],
        ),
      );
      // The second page's statement fails as a database going away fails it.
      const internals = store as unknown as { query: (name: string, values: unknown[]) => Promise<unknown> };
      const query = internals.query;
      let claims = 0;
      internals.query = function (this: unknown, name: string, values: unknown[]) {
        if (name === 'claimVerifications' && ++claims === 2) return Promise.reject(new Error('Connection terminated unexpectedly'));
        return query.call(this, name, values);
      };
      let claimed;
      try {
        claimed = await store.claimVerifications('me', 60_000, 1_000_000_000);
      } finally {
        internals.query = query;
      }
      const held = await withClient(url, async (c) => (await c.query<{ id: string }>("SELECT id FROM pending_verifications WHERE claimed_by = 'me' ORDER BY created_at")).rows.map((r) => r.id));
      expect(held, 'claimed in the database').to.have.length(page);
      expect(claimed.map((v) => v.id), 'handed back').to.deep.equal(held);
      // The rest is left for the next claim.
      expect(await store.claimVerifications('other', 60_000, 1_000_000_000)).to.have.length(n - page);
    });
  });

  it('keeps the counts of topics and callback hosts right through every way a subscription comes and goes', async () => {
    const store = await opened();
    const hosts = ['http://h1.example/cb', 'http://h2.example:81/cb', 'http://H1.example/other'];
    for (let i = 0; i < 30; i++) await store.putSubscription(sub(`http://a/feed/${i % 3}`, `${hosts[i % 3]}/${i}`, { whenExpires: i < 10 ? 1 : 9e15 }));
    await store.putSubscription(sub('http://a/feed/0', `${hosts[0]}/0`, { ctUpdates: 9 })); // a renewal
    await store.deleteSubscription('http://a/feed/1', `${hosts[1]}/1`);
    await store.deleteSubscription('http://a/feed/1', 'http://nobody.example/x');
    await store.putSubscriptionWithinLimits(sub('http://a/feed/9', `${hosts[2]}/99`), { perTopic: 100, perCallbackHost: 100 });
    await store.deleteExpiredSubscriptions({ now: 2, maxConsecutiveErrors: 3, limit: 4 });
    await store.deleteTopic('http://a/feed/2');
    const actual = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const s of await store.listSubscriptions()) {
        out[`topic ${s.topic}`] = (out[`topic ${s.topic}`] ?? 0) + 1;
        const host = new URL(s.callback).host.toLowerCase();
        out[`host ${host}`] = (out[`host ${host}`] ?? 0) + 1;
      }
      return out;
    };
    const counted = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const t of ['http://a/feed/0', 'http://a/feed/1', 'http://a/feed/2', 'http://a/feed/9']) {
        const n = await store.countSubscriptions({ topic: t });
        if (n > 0) out[`topic ${t}`] = n;
      }
      for (const h of ['h1.example', 'h2.example:81']) {
        const n = await store.countSubscriptions({ callbackHost: h });
        if (n > 0) out[`host ${h}`] = n;
      }
      return out;
    };
    expect(await counted()).to.deep.equal(await actual());
    await store.clear();
    expect(await counted()).to.deep.equal({});
  });

  it('stores the callback host in its own column, as the per-host limit counts it', async () => {
    const store = await opened();
    await store.putSubscription(sub('http://a/feed', 'https://User:pw@Hooks.Example:8443/cb?x=1'));
    const rows = await withClient(url, async (c) => (await c.query<{ callback_host: string }>('SELECT callback_host FROM subscriptions')).rows);
    expect(rows).to.deep.equal([{ callback_host: 'hooks.example:8443' }]);
  });

  it('keeps the per-host counts right when a row written with another callback host (an older build) is written again', async () => {
    // Before 78a16fe a callback with backslashes was counted under a host made of its path
    // ("reader.example\\tok\\cb"); rows written then still hold it. The next write of such a
    // row (a renewal, a delivery's outcome) stores today's host: its count must move with it,
    // or the delete that ends it takes one from a host that never had it.
    const store = await opened();
    const callback = 'http://reader.example\\tok\\cb';
    const old = 'reader.example\\tok\\cb';
    await store.putSubscription(sub('http://a/feed', callback));
    // Written again as the older build wrote it (an insert, counted under its host).
    await withClient(url, async (c) => {
      await c.query('CREATE TEMP TABLE older AS SELECT * FROM subscriptions');
      await c.query('DELETE FROM subscriptions');
      await c.query('UPDATE older SET callback_host = $1', [old]);
      await c.query('INSERT INTO subscriptions OVERRIDING SYSTEM VALUE SELECT * FROM older');
    });
    expect(await store.countSubscriptions({ callbackHost: 'reader.example' })).to.equal(0);
    expect(await store.countSubscriptions({ callbackHost: old })).to.equal(1);
    await store.putSubscription(sub('http://a/feed', callback, { whenExpires: 3 }));
    expect(await store.countSubscriptions({ callbackHost: 'reader.example' })).to.equal(1);
    expect(await store.countSubscriptions({ callbackHost: old })).to.equal(0);
    await store.deleteSubscription('http://a/feed', callback);
    expect(await store.countSubscriptions({ callbackHost: 'reader.example' })).to.equal(0);
    expect(await store.countSubscriptions({ callbackHost: old })).to.equal(0);
  });

  it('counts the hosts again at schema 7: a row moved to another host by a build without its trigger', async () => {
    await withClient(url, async (c) => driftHostCount(c));
    const store = await opened();
    expect(await store.countSubscriptions({ callbackHost: 'reader.example' })).to.equal(1);
    expect(await store.countSubscriptions({ callbackHost: OLD_HOST })).to.equal(0);
  });

  it('counts the hosts again on a database that 9c48898 took to schema 7 (its migration 7 had no recount)', async () => {
    await withClient(url, async (c) => {
      await driftHostCount(c);
      await migrate(c, [...MIGRATIONS.filter((m) => m.version <= 6), MIGRATION_7_OF_9C48898]);
    });
    const store = await opened();
    expect(await store.countSubscriptions({ callbackHost: 'reader.example' })).to.equal(1);
    expect(await store.countSubscriptions({ callbackHost: OLD_HOST })).to.equal(0);
  });

  it('takes a database at schema 8 to 9: its subscriptions keep no algorithm of their own, a new write keeps sha1, and an older build still subscribing leaves it', async () => {
    const topic = 'http://a/feed';
    const callback = 'http://reader.example/cb';
    // migration 5's function, as a process of the build before 9 calls it
    const oldPut = (c: pg.Client): Promise<unknown> =>
      c.query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) AS refused', [
        100, 100, urlKey(topic), urlKey(callback), topic, callback, 'reader.example', 'websub', null, 'k', 3600, 0, 0, 0, 1, null, null, 2, 0,
      ]);
    await withClient(url, async (c) => {
      await migrate(c, MIGRATIONS.filter((m) => m.version <= 8));
      await oldPut(c);
    });
    const store = await opened();
    expect(store.schema).to.deep.include({ from: 8, applied: MIGRATIONS.filter((m) => m.version > 8).map((m) => m.version) });
    const before = sub(topic, callback, { protocol: 'websub', secret: 'k', leaseSeconds: 3600, deliveredVersion: 0 });
    expect(await store.getSubscription(topic, callback)).to.deep.equal(before);
    await store.putSubscription({ ...before, signatureAlgorithm: 'sha1' });
    await withClient(url, oldPut);
    expect(await store.getSubscription(topic, callback)).to.deep.equal({ ...before, signatureAlgorithm: 'sha1' });
  });

  it('takes a database at schema 13 to 14: its subscriptions and pending verifications name no hub path, a new write keeps one, and an older build still subscribing leaves it', async () => {
    const topic = 'http://a/feed';
    const callback = 'http://reader.example/cb';
    // migration 9's function, as a process of the build before 14 calls it
    const oldPut = (c: pg.Client): Promise<unknown> =>
      c.query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) AS refused', [
        100, 100, urlKey(topic), urlKey(callback), topic, callback, 'reader.example', 'websub', null, 'k', 3600, 0, 0, 0, 1, null, null, 2, 0, null,
      ]);
    await withClient(url, async (c) => {
      await migrate(c, MIGRATIONS.filter((m) => m.version <= 13));
      await oldPut(c);
    });
    const store = await opened();
    expect(store.schema).to.deep.include({ from: 13, applied: MIGRATIONS.filter((m) => m.version > 13).map((m) => m.version) });
    const before = sub(topic, callback, { protocol: 'websub', secret: 'k', leaseSeconds: 3600, deliveredVersion: 0 });
    expect(await store.getSubscription(topic, callback)).to.deep.equal(before);
    // Through the function a verified subscribe writes with (the limits' check), then a plain put.
    expect(await store.putSubscriptionWithinLimits({ ...before, hubPath: '/' }, { perTopic: 100, perCallbackHost: 100 })).to.equal(null);
    expect(await store.getSubscription(topic, callback)).to.deep.equal({ ...before, hubPath: '/' });
    await store.putSubscription({ ...before, hubPath: '/websub/' });
    await withClient(url, oldPut);
    expect(await store.getSubscription(topic, callback)).to.deep.equal({ ...before, hubPath: '/websub/' });
    const v = { id: 'v14', mode: 'subscribe' as const, topic, callback, createdAt: 5, hubPath: '/' };
    await store.putVerification(v);
    expect(await store.listVerifications()).to.deep.equal([v]);
  });

  it('takes a database at schema 9 to 10: a callback host stored with its root dot, or as IPv4-mapped IPv6, is counted with the host it names; an older build still writing one is stored so too', async () => {
    const topic = 'http://a/feed';
    // migration 9's function, as a process of the build before 10 calls it, with the host as that build read it
    const oldPut = (c: pg.Client, callback: string, host: string): Promise<unknown> =>
      c.query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) AS refused', [
        100, 100, urlKey(topic), urlKey(callback), topic, callback, host, 'websub', null, null, 3600, 0, 0, 0, 1, null, null, 2, 0, null,
      ]);
    const stored = (c: pg.Client): Promise<[string, string][]> =>
      c.query<{ callback: string; callback_host: string }>('SELECT callback, callback_host FROM subscriptions ORDER BY callback').then((r) => r.rows.map((x) => [x.callback, x.callback_host]));
    const counted = (c: pg.Client): Promise<[string, number][]> =>
      c.query<{ host: string; n: string }>("SELECT convert_from(key, 'UTF8') AS host, n FROM subscription_counts WHERE kind = 'h' AND n <> 0 ORDER BY 1").then((r) => r.rows.map((x) => [x.host, Number(x.n)]));
    await withClient(url, async (c) => {
      await migrate(c, MIGRATIONS.filter((m) => m.version <= 9));
      await oldPut(c, 'http://cb.example/a', 'cb.example');
      await oldPut(c, 'http://cb.example./b', 'cb.example.');
      await oldPut(c, 'http://cb.example.:8080/c', 'cb.example.:8080');
      await oldPut(c, 'http://[::ffff:127.0.0.1]:81/d', '[::ffff:7f00:1]:81');
      await oldPut(c, 'http://reader.example/e', 'reader.example');
    });
    const store = await opened();
    expect(store.schema).to.deep.include({ from: 9, applied: MIGRATIONS.filter((m) => m.version > 9).map((m) => m.version) });
    await withClient(url, async (c) => {
      expect(await stored(c)).to.deep.equal([
        ['http://[::ffff:127.0.0.1]:81/d', '127.0.0.1:81'],
        ['http://cb.example./b', 'cb.example'],
        ['http://cb.example.:8080/c', 'cb.example:8080'],
        ['http://cb.example/a', 'cb.example'],
        ['http://reader.example/e', 'reader.example'],
      ]);
      expect(await counted(c)).to.deep.equal([['127.0.0.1:81', 1], ['cb.example', 2], ['cb.example:8080', 1], ['reader.example', 1]]);
      // An older process still running writes a new subscription, and an old one again, as it reads them.
      await oldPut(c, 'http://cb.example./f', 'cb.example.');
      await oldPut(c, 'http://cb.example.:8080/c', 'cb.example.:8080');
      expect(await counted(c)).to.deep.equal([['127.0.0.1:81', 1], ['cb.example', 3], ['cb.example:8080', 1], ['reader.example', 1]]);
    });
    expect(await store.countSubscriptions({ callbackHost: 'cb.example.' })).to.equal(3);
    expect(await store.subscriptionLimitReached(topic, 'http://CB.EXAMPLE.:80/g', { perTopic: 100, perCallbackHost: 3 })).to.equal('callbackHost');
    expect(await store.putSubscriptionWithinLimits(sub(topic, 'http://cb.example./g'), { perTopic: 100, perCallbackHost: 3 })).to.equal('callbackHost');
    expect(await store.putSubscriptionWithinLimits(sub(topic, 'http://[::ffff:127.0.0.1]:81/h'), { perTopic: 100, perCallbackHost: 2 })).to.equal(null);
    expect(await store.putSubscriptionWithinLimits(sub(topic, 'http://127.0.0.1:81/i'), { perTopic: 100, perCallbackHost: 2 })).to.equal('callbackHost');
  });

  it('migration 10 waits for an older process writing a dotted callback host, then rewrites that row too and moves its count', async () => {
    const topic = 'http://a/feed';
    const callback = 'http://cb.example./w';
    await withClient(url, (c) => migrate(c, MIGRATIONS.filter((m) => m.version <= 9)));
    const older = new pg.Client({ connectionString: url });
    const starting = new pg.Client({ connectionString: url });
    await Promise.all([older.connect(), starting.connect()]);
    try {
      await older.query('BEGIN');
      await older.query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) AS refused', [
        100, 100, urlKey(topic), urlKey(callback), topic, callback, 'cb.example.', 'websub', null, null, 3600, 0, 0, 0, 1, null, null, 2, 0, null,
      ]);
      const pid = (await starting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const migrating = migrate(starting);
      // The migration waits for the older process's write to end.
      for (;;) {
        const { rows } = await older.query<{ w: string | null }>('SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1', [pid]);
        if (rows[0]?.w === 'Lock') break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await older.query('COMMIT');
      expect((await migrating).applied).to.deep.equal(MIGRATIONS.filter((m) => m.version > 9).map((m) => m.version));
      const { rows } = await starting.query<{ callback_host: string }>('SELECT callback_host FROM subscriptions');
      expect(rows).to.deep.equal([{ callback_host: 'cb.example' }]);
      const counts = await starting.query<{ host: string; n: string }>("SELECT convert_from(key, 'UTF8') AS host, n FROM subscription_counts WHERE kind = 'h' AND n <> 0");
      expect(counts.rows.map((r) => [r.host, Number(r.n)])).to.deep.equal([['cb.example', 1]]);
    } finally {
      await Promise.all([older.end(), starting.end()]);
    }
  });

  it("migration 10's callback_host_key() keys a host as lib/model.ts hostKey does", async () => {
    await (await opened()).close();
    const hosts = ['cb.example', 'cb.example.', 'cb.example..', 'cb.example.:8080', 'cb.example:8080', '[::ffff:7f00:1]', '[::ffff:a0b:c0d]:81', '[::ffff:0:1]', '[::1]:80', '[2001:db8::1]', '127.0.0.1', 'xn--bcher-kva.example.', '.', ''];
    const keyed = await withClient(url, async (c) => (await c.query<{ k: string }>('SELECT callback_host_key(h) AS k FROM unnest($1::text[]) WITH ORDINALITY AS t(h, i) ORDER BY i', [hosts])).rows.map((r) => r.k));
    expect(keyed).to.deep.equal(hosts.map(hostKey));
    expect(hosts.map(hostKey).map(hostKey), 'a key keyed again is the same key').to.deep.equal(hosts.map(hostKey));
  });

  it('migration 11: a count leaves subscription_counts with the last subscription it counts, and the zeros an older build left are deleted', async () => {
    const topic = 'http://a/feed';
    const rows = (c: pg.Client): Promise<[string, string, number][]> =>
      c
        .query<{ kind: string; key: string; n: string }>("SELECT kind, CASE kind WHEN 'h' THEN convert_from(key, 'UTF8') ELSE 'topic' END AS key, n FROM subscription_counts ORDER BY 1, 2")
        .then((r) => r.rows.map((x) => [x.kind, x.key, Number(x.n)]));
    await withClient(url, async (c) => {
      await migrate(c, MIGRATIONS.filter((m) => m.version <= 10));
      const put = (callback: string, host: string): Promise<unknown> =>
        c.query('SELECT put_subscription_within_limits($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) AS refused', [
          100, 100, urlKey(topic), urlKey(callback), topic, callback, host, 'http-post', null, null, null, 0, 0, 0, 1, null, null, 2, 0, null,
        ]);
      await put('http://192.0.2.7:5337/gone', '192.0.2.7:5337');
      await put('http://reader.example/stays', 'reader.example');
      await c.query('DELETE FROM subscriptions WHERE callback_host = $1', ['192.0.2.7:5337']);
      expect(await rows(c), 'schema 10 keeps a count of 0').to.deep.equal([['h', '192.0.2.7:5337', 0], ['h', 'reader.example', 1], ['t', 'topic', 1]]);
    });
    const store = await opened();
    expect(store.schema).to.deep.include({ from: 10, applied: MIGRATIONS.filter((m) => m.version > 10).map((m) => m.version) });
    await withClient(url, async (c) => {
      expect(await rows(c)).to.deep.equal([['h', 'reader.example', 1], ['t', 'topic', 1]]);
      // A host changed by an update (migration 7's trigger) leaves no count behind either.
      await c.query("UPDATE subscriptions SET callback_host = 'reader2.example'");
      expect(await rows(c)).to.deep.equal([['h', 'reader2.example', 1], ['t', 'topic', 1]]);
    });
    expect(await store.deleteSubscription(topic, 'http://reader.example/stays')).to.equal(true);
    expect(await withClient(url, rows)).to.deep.equal([]);
    expect(await store.putSubscriptionWithinLimits(sub(topic, 'http://reader.example/again'), { perTopic: 1, perCallbackHost: 1 })).to.equal(null);
    expect(await withClient(url, rows), 'counted afresh').to.deep.equal([['h', 'reader.example', 1], ['t', 'topic', 1]]);
  });

  it('migration 11: a subscribe on a host whose last subscription another process is deleting counts 1 once both commit (or 2 if the delete rolls back)', async () => {
    const topic = 'http://a/feed';
    const store = await opened();
    const counts = (): Promise<[string, number][]> =>
      withClient(url, (c) => c.query<{ kind: string; n: string }>('SELECT kind, n FROM subscription_counts ORDER BY 1').then((r) => r.rows.map((x) => [x.kind, Number(x.n)])));
    for (const end of ['COMMIT', 'ROLLBACK'] as const) {
      await store.clear();
      expect(await store.putSubscriptionWithinLimits(sub(topic, 'http://reader.example/old'), { perTopic: 10, perCallbackHost: 10 })).to.equal(null);
      await withClient(url, async (c) => {
        await c.query('BEGIN');
        // The count's row is gone in this transaction (n fell to 0), not yet committed.
        await c.query('DELETE FROM subscriptions WHERE callback = $1', ['http://reader.example/old']);
        const put = store.putSubscriptionWithinLimits(sub(topic, 'http://reader.example/new'), { perTopic: 10, perCallbackHost: 10 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        await c.query(end);
        expect(await put).to.equal(null);
      });
      const n = end === 'COMMIT' ? 1 : 2;
      expect(await counts(), end).to.deep.equal([['h', n], ['t', n]]);
    }
  });

  it('withTopicLock: two processes never run fn for one topic at once; other topics do not wait', async () => {
    const [a, b] = [await opened(), await opened()];
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const first = a.withTopicLock('http://a/feed', async () => {
      order.push('a in');
      entered();
      await held;
      order.push('a out');
    });
    await inside;
    const second = b.withTopicLock('http://a/feed', async () => void order.push('b in'));
    expect(await b.withTopicLock('http://other/feed', async () => 'other topic')).to.equal('other topic');
    await new Promise((r) => setTimeout(r, 100));
    expect(order).to.deep.equal(['a in']);
    release();
    await Promise.all([first, second]);
    expect(order).to.deep.equal(['a in', 'a out', 'b in']);
  });

  it('withSweepLock: one process sweeps at a time; the others skip the round without waiting', async () => {
    const [a, b] = [await opened(), await opened()];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const first = a.withSweepLock(async () => {
      entered();
      await held;
      return 'a swept';
    });
    await inside;
    let ran = false;
    expect(await b.withSweepLock(async () => (ran = true))).to.equal(undefined);
    expect(ran).to.equal(false);
    release();
    expect(await first).to.equal('a swept');
    expect(await b.withSweepLock(async () => 'b swept')).to.equal('b swept');
  });

  it('putSubscriptionWithinLimits: stores on one database never exceed a limit together', async () => {
    const many = [await opened(3), await opened(3), await opened(3)];
    const limits = { perTopic: 10, perCallbackHost: 15 };
    const topic = await Promise.all(
      Array.from({ length: 60 }, (_, i) => many[i % 3]!.putSubscriptionWithinLimits(sub('http://a/feed', `http://s${i}.example/cb`), limits)),
    );
    expect(topic.filter((r) => r === null)).to.have.length(10);
    expect(await many[0]!.countSubscriptions({ topic: 'http://a/feed' })).to.equal(10);
    const host = await Promise.all(
      Array.from({ length: 60 }, (_, i) => many[i % 3]!.putSubscriptionWithinLimits(sub(`http://t${i}.example/feed`, `http://hooks.example/${i}`), limits)),
    );
    expect(host.filter((r) => r === null)).to.have.length(15);
    expect(host.filter((r) => r === 'callbackHost')).to.have.length(45);
    expect(await many[0]!.countSubscriptions({ callbackHost: 'hooks.example' })).to.equal(15);
  });

  it('keeps outbox claims across a reopen (another process may hold them)', async () => {
    const store = await opened();
    const until = Date.now() + 60_000;
    await store.putOutbox({ topic: 'http://a/feed', version: 1, contentType: 'text/plain', createdAt: 1, claimedBy: 'A', claimedUntil: until }, Buffer.from('x'));
    await store.close();
    const again = await opened();
    expect(await again.claimOutbox('B', 1000, 10)).to.deep.equal([]);
    expect(await again.outboxOf('http://a/feed')).to.deep.equal([{ topic: 'http://a/feed', version: 1, contentType: 'text/plain', createdAt: 1, claimedBy: 'A', claimedUntil: until }]);
  });

  it('opens at most DATABASE_POOL_SIZE connections however many requests wait', async () => {
    const store = await opened(3);
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? store.counts() : store.putSubscription(sub('http://a/feed', `http://s/${i}`)))));
    const n = await withClient(url, async (c) => {
      const r = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pushbutton' AND datname = current_database() AND pid <> pg_backend_pid()",
      );
      return Number(r.rows[0]!.n);
    });
    expect(n).to.be.within(1, 3);
    expect(store.poolSize).to.equal(3);
  });

  describe('configuration', () => {
    it('uses the embedded store unless DATABASE_URL is set; the pool holds 10 connections by default', async () => {
      const embedded = loadConfig({ DATA_DIR: '/tmp/pb-nowhere' });
      expect(embedded.databaseUrl).to.equal(undefined);
      expect(embedded.databasePoolSize).to.equal(10);
      expect(createStore(embedded)).to.be.instanceOf(LowdbStore);
      const onPg = loadConfig({ DATABASE_URL: url, DATABASE_POOL_SIZE: '25' });
      expect(onPg.databasePoolSize).to.equal(25);
      const store = createStore(onPg);
      expect(store).to.be.instanceOf(PgStore);
      expect((store as PgStore).poolSize).to.equal(25);
    });

    it('refuses a DATABASE_URL that is not postgres:// and a pool size of 0, without echoing the URL', () => {
      expect(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@db/x' }))
        .to.throw(ConfigError, /DATABASE_URL/)
        .with.property('message')
        .that.does.not.contain('hunter2');
      expect(() => loadConfig({ DATABASE_URL: 'not a url' })).to.throw(ConfigError, /DATABASE_URL/);
    });

    it("refuses libpq's list of hosts to fail over along, saying the hub connects to one, without echoing the URL", () => {
      for (const url of [
        'postgres://pushbutton:hunter2@db1.internal:5432,db2.internal:5432/pushbutton?target_session_attrs=read-write',
        'postgresql://pushbutton:hunter2@db1,db2/pushbutton',
        'postgres://pushbutton:hunter2@/pushbutton?host=db1.internal,db2.internal',
      ]) {
        expect(() => loadConfig({ DATABASE_URL: url }), url)
          .to.throw(ConfigError, /DATABASE_URL: names several hosts .* the hub connects to one/)
          .with.property('message')
          .that.does.not.include('hunter2');
      }
      // One host, a comma elsewhere: accepted, in the user name and password too (URLs may carry it unencoded).
      expect(loadConfig({ DATABASE_URL: 'postgres://app:pa,ss@db1.internal:5432/pushbutton' }).databaseUrl).to.include('db1.internal');
      expect(loadConfig({ DATABASE_URL: 'postgres://a,pp:x@db1.internal/pushbutton?sslmode=require' }).databaseUrl).to.include('db1.internal');
      expect(loadConfig({ DATABASE_URL: 'postgres://pushbutton@db1.internal/pushbutton?options=-c%20search_path%3Da,b' }).databaseUrl).to.include('db1.internal');
      expect(() => loadConfig({ DATABASE_POOL_SIZE: '0' })).to.throw(ConfigError, /DATABASE_POOL_SIZE/);
    });
  });
});
