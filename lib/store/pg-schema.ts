// The PostgreSQL store's schema, as numbered migrations, and the migrator that applies them at
// start-up. Migrations run in one transaction that first takes a transaction-scoped advisory
// lock, so hub processes starting at once on one database apply each migration exactly once:
// the first to get the lock migrates, the others wait for its commit and then find nothing
// left to do. A migration, once released, is never edited: a change is a new migration.
//
// Conventions (docs/adr/0004-postgresql-store.md):
//   - times are bigint epoch milliseconds, as in lib/model.ts; counters and versions bigint;
//   - a URL is kept as text and keyed by its SHA-256 (`*_key bytea`, computed by the store from
//     the UTF-8 bytes, i.e. sha256(convert_to(url, 'UTF8'))): a B-tree entry is limited to about
//     2.7 kB, and a (topic, callback) pair of two long URLs would exceed it;
//   - a nullable column is an optional field of the model: NULL reads back as "absent".
import type pg from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The per-host counts counted again from the rows, with their writers held off (SHARE conflicts
 * with every row write) until the migration commits: migrations 7 and 8 run it, as text.
 */
const RECOUNT_HOSTS = `      LOCK TABLE subscriptions IN SHARE MODE;
      DELETE FROM subscription_counts WHERE kind = 'h';
      INSERT INTO subscription_counts (kind, key, n) SELECT 'h', convert_to(callback_host, 'UTF8'), count(*) FROM subscriptions GROUP BY callback_host;
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'topics, subscriptions, outbox, pending verifications',
    sql: `
      CREATE TABLE topics (
        topic_key        bytea PRIMARY KEY,
        url              text NOT NULL,
        last_hash        text NOT NULL,
        last_size        bigint NOT NULL,
        ct_checks        bigint NOT NULL,
        when_last_check  bigint NOT NULL,
        ct_updates       bigint NOT NULL,
        when_last_update bigint NOT NULL,
        etag             text,
        last_modified    text,
        content_type     text,
        fingerprints     text[],
        version          bigint NOT NULL
      );

      -- No foreign key to topics: a subscription may exist before its topic was ever read.
      CREATE TABLE subscriptions (
        topic_key             bytea NOT NULL,
        callback_key          bytea NOT NULL,
        seq                   bigint GENERATED ALWAYS AS IDENTITY,
        topic                 text NOT NULL,
        callback              text NOT NULL,
        callback_host         text NOT NULL,
        protocol              text NOT NULL,
        notify_procedure      text,
        secret                text,
        lease_seconds         bigint,
        ct_updates            bigint NOT NULL,
        ct_errors             bigint NOT NULL,
        ct_consecutive_errors bigint NOT NULL,
        when_created          bigint NOT NULL,
        when_last_update      bigint,
        when_last_error       bigint,
        when_expires          bigint NOT NULL,
        delivered_version     bigint,
        -- The subscribers of a topic are a prefix scan of this key.
        PRIMARY KEY (topic_key, callback_key)
      );
      -- Subscriptions per callback host (the per-host limit); equality only, any length.
      CREATE INDEX subscriptions_callback_host ON subscriptions USING hash (callback_host);
      -- Expiring leases.
      CREATE INDEX subscriptions_when_expires ON subscriptions (when_expires);

      CREATE TABLE outbox (
        topic_key    bytea NOT NULL,
        version      bigint NOT NULL,
        topic        text NOT NULL,
        content_type text NOT NULL,
        created_at   bigint NOT NULL,
        body         bytea NOT NULL,
        PRIMARY KEY (topic_key, version)
      );
      CREATE INDEX outbox_created_at ON outbox (created_at);

      CREATE TABLE pending_verifications (
        id            text PRIMARY KEY,
        mode          text NOT NULL,
        topic         text NOT NULL,
        callback      text NOT NULL,
        secret        text,
        lease_seconds bigint,
        verify_token  text,
        created_at    bigint NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'sites (the feeds a site page links to)',
    sql: `
      CREATE TABLE sites (
        site_key      bytea PRIMARY KEY,
        url           text NOT NULL,
        feeds         text[] NOT NULL,
        hubs          text[] NOT NULL,
        self          text,
        when_checked  bigint NOT NULL,
        when_created  bigint NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'outbox and verification claims (several hub processes on one database)',
    sql: `
      -- Which process delivers a version, and until when (epoch ms): expired claims are taken over.
      ALTER TABLE outbox ADD COLUMN claimed_by text, ADD COLUMN claimed_until bigint;
      CREATE INDEX outbox_claimed_until ON outbox (claimed_until);
      -- The same for WebSub verifications accepted (202) but not yet run to the end.
      ALTER TABLE pending_verifications ADD COLUMN claimed_by text, ADD COLUMN claimed_until bigint;
    `,
  },
  {
    version: 4,
    name: 'failing rssCloud subscriptions (the expiry sweep)',
    sql: `
      -- rssCloud subscriptions whose last deliveries failed, for the sweep that removes those past
      -- MAX_CONSECUTIVE_ERRORS without reading every row. Few rows fail, so the index stays small,
      -- and a delivery that leaves the count at 0 does not touch it.
      CREATE INDEX subscriptions_failing ON subscriptions (ct_consecutive_errors) WHERE protocol <> 'websub' AND ct_consecutive_errors > 0;
    `,
  },
  {
    version: 5,
    name: 'subscription counts per topic and per callback host (the limits)',
    sql: `
      -- Every subscribe checks the limits by counting its topic's and its callback host's
      -- subscriptions; count(*) over a topic of 100,000 subscribers took milliseconds, inside the
      -- limits' locks. The counts are kept here instead, by a trigger, whichever statement
      -- inserts or deletes a subscription. kind 't': key is the topic_key; 'h': the host's text.
      CREATE TABLE subscription_counts (
        kind char(1) NOT NULL,
        key  bytea NOT NULL,
        n    bigint NOT NULL,
        PRIMARY KEY (kind, key)
      );
      INSERT INTO subscription_counts (kind, key, n) SELECT 't', topic_key, count(*) FROM subscriptions GROUP BY topic_key;
      INSERT INTO subscription_counts (kind, key, n) SELECT 'h', convert_to(callback_host, 'UTF8'), count(*) FROM subscriptions GROUP BY callback_host;
      -- topic_key and callback_host never change on an update (they are the key and part of it).
      CREATE FUNCTION subscription_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          INSERT INTO subscription_counts AS c (kind, key, n)
            VALUES ('t', NEW.topic_key, 1), ('h', convert_to(NEW.callback_host, 'UTF8'), 1)
            ON CONFLICT (kind, key) DO UPDATE SET n = c.n + 1;
        ELSE
          UPDATE subscription_counts SET n = n - 1
            WHERE (kind = 't' AND key = OLD.topic_key) OR (kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8'));
        END IF;
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER subscription_counts_follow AFTER INSERT OR DELETE ON subscriptions
        FOR EACH ROW EXECUTE FUNCTION subscription_counts_follow();
      -- It served only the per-host count.
      DROP INDEX subscriptions_callback_host;
      -- The limits' check and the write in one call (one round trip instead of five): advisory
      -- locks on the topic, then the callback host (always in that order, so two subscribes
      -- never wait for each other in a cycle), held to the end of the call's transaction. Each
      -- statement of a function takes a new snapshot, so the counts read after the locks
      -- include every subscription committed before them. A renewal is never refused.
      CREATE FUNCTION put_subscription_within_limits(
        per_topic bigint,
        per_host bigint,
        p_topic_key bytea,
        p_callback_key bytea,
        p_topic text,
        p_callback text,
        p_callback_host text,
        p_protocol text,
        p_notify_procedure text,
        p_secret text,
        p_lease_seconds bigint,
        p_ct_updates bigint,
        p_ct_errors bigint,
        p_ct_consecutive_errors bigint,
        p_when_created bigint,
        p_when_last_update bigint,
        p_when_last_error bigint,
        p_when_expires bigint,
        p_delivered_version bigint
      ) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ' topic ' || p_topic, 0)),
                pg_advisory_xact_lock(hashtextextended(current_schema() || ' host ' || p_callback_host, 0));
        IF NOT EXISTS (SELECT 1 FROM subscriptions WHERE topic_key = p_topic_key AND callback_key = p_callback_key) THEN
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 't' AND key = p_topic_key), 0) >= per_topic THEN
            RETURN 'topic';
          END IF;
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 'h' AND key = convert_to(p_callback_host, 'UTF8')), 0) >= per_host THEN
            RETURN 'callbackHost';
          END IF;
        END IF;
        INSERT INTO subscriptions AS t (topic_key, callback_key, topic, callback, callback_host, protocol, notify_procedure, secret, lease_seconds, ct_updates, ct_errors, ct_consecutive_errors, when_created, when_last_update, when_last_error, when_expires, delivered_version)
          VALUES (p_topic_key, p_callback_key, p_topic, p_callback, p_callback_host, p_protocol, p_notify_procedure, p_secret, p_lease_seconds, p_ct_updates, p_ct_errors, p_ct_consecutive_errors, p_when_created, p_when_last_update, p_when_last_error, p_when_expires, p_delivered_version)
          ON CONFLICT (topic_key, callback_key) DO UPDATE SET topic = EXCLUDED.topic, callback = EXCLUDED.callback, callback_host = EXCLUDED.callback_host, protocol = EXCLUDED.protocol, notify_procedure = EXCLUDED.notify_procedure, secret = EXCLUDED.secret, lease_seconds = EXCLUDED.lease_seconds, ct_updates = EXCLUDED.ct_updates, ct_errors = EXCLUDED.ct_errors, ct_consecutive_errors = EXCLUDED.ct_consecutive_errors, when_created = EXCLUDED.when_created, when_last_update = EXCLUDED.when_last_update, when_last_error = EXCLUDED.when_last_error, when_expires = EXCLUDED.when_expires, delivered_version = EXCLUDED.delivered_version;
        RETURN NULL;
      END
      $$;
    `,
  },
  {
    version: 6,
    name: 'pending verifications by (topic, callback) (a verified request supersedes older ones)',
    sql: `
      -- Store.supersedeOlderVerifications removes the older pending verifications of a pair.
      -- Indexed by the md5 of each URL: the URLs themselves can be too long for a B-tree entry,
      -- and key columns would need every writer to fill them, a process of an older build still
      -- running included. The statements compare the URLs themselves too.
      CREATE INDEX pending_verifications_pair ON pending_verifications (md5(topic), md5(callback));
    `,
  },
  {
    version: 7,
    name: 'the per-host count follows a callback_host changed by an update',
    sql: `
      -- callback_host is not part of the key: it is read from the callback, and the reading
      -- changed (a backslash ends the host, as the URL standard says). A row written before holds
      -- the host it was written with until its next write stores today's; the count moves with
      -- it, or the delete that ends the row takes one from a host that never had it.
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
      -- A database run by a build between the two (78a16fe before this migration) moved rows to
      -- today's host with no trigger to move their counts: counted again from the rows, with
      -- their writers held off (SHARE conflicts with every row write) until this commits.
${RECOUNT_HOSTS}    `,
  },
  {
    version: 8,
    name: 'the per-host counts counted again (databases taken to schema 7 without its recount)',
    sql: `
      -- Migration 7 was first released (9c48898) with its trigger alone; the recount was added to
      -- it after, so a database one of those builds took to 7 never ran it and kept the counts
      -- that a build from 78a16fe left with the old hosts. Counted again here, as in 7.
${RECOUNT_HOSTS}    `,
  },
  {
    version: 9,
    name: 'a WebSub subscription\'s own signature algorithm (sha1 for PubSubHubbub 0.3 subscribers)',
    sql: `
      -- NULL: WEBSUB_SIGNATURE_ALGORITHM applies, so changing the setting changes these rows too.
      ALTER TABLE subscriptions ADD COLUMN signature_algorithm text;
      ALTER TABLE pending_verifications ADD COLUMN signature_algorithm text;
      -- Migration 5's function with the new column. The old one stays for the processes of an
      -- older build still running during an upgrade; what they write leaves the column as it was.
      CREATE FUNCTION put_subscription_within_limits(
        per_topic bigint,
        per_host bigint,
        p_topic_key bytea,
        p_callback_key bytea,
        p_topic text,
        p_callback text,
        p_callback_host text,
        p_protocol text,
        p_notify_procedure text,
        p_secret text,
        p_lease_seconds bigint,
        p_ct_updates bigint,
        p_ct_errors bigint,
        p_ct_consecutive_errors bigint,
        p_when_created bigint,
        p_when_last_update bigint,
        p_when_last_error bigint,
        p_when_expires bigint,
        p_delivered_version bigint,
        p_signature_algorithm text
      ) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ' topic ' || p_topic, 0)),
                pg_advisory_xact_lock(hashtextextended(current_schema() || ' host ' || p_callback_host, 0));
        IF NOT EXISTS (SELECT 1 FROM subscriptions WHERE topic_key = p_topic_key AND callback_key = p_callback_key) THEN
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 't' AND key = p_topic_key), 0) >= per_topic THEN
            RETURN 'topic';
          END IF;
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 'h' AND key = convert_to(p_callback_host, 'UTF8')), 0) >= per_host THEN
            RETURN 'callbackHost';
          END IF;
        END IF;
        INSERT INTO subscriptions AS t (topic_key, callback_key, topic, callback, callback_host, protocol, notify_procedure, secret, lease_seconds, ct_updates, ct_errors, ct_consecutive_errors, when_created, when_last_update, when_last_error, when_expires, delivered_version, signature_algorithm)
          VALUES (p_topic_key, p_callback_key, p_topic, p_callback, p_callback_host, p_protocol, p_notify_procedure, p_secret, p_lease_seconds, p_ct_updates, p_ct_errors, p_ct_consecutive_errors, p_when_created, p_when_last_update, p_when_last_error, p_when_expires, p_delivered_version, p_signature_algorithm)
          ON CONFLICT (topic_key, callback_key) DO UPDATE SET topic = EXCLUDED.topic, callback = EXCLUDED.callback, callback_host = EXCLUDED.callback_host, protocol = EXCLUDED.protocol, notify_procedure = EXCLUDED.notify_procedure, secret = EXCLUDED.secret, lease_seconds = EXCLUDED.lease_seconds, ct_updates = EXCLUDED.ct_updates, ct_errors = EXCLUDED.ct_errors, ct_consecutive_errors = EXCLUDED.ct_consecutive_errors, when_created = EXCLUDED.when_created, when_last_update = EXCLUDED.when_last_update, when_last_error = EXCLUDED.when_last_error, when_expires = EXCLUDED.when_expires, delivered_version = EXCLUDED.delivered_version, signature_algorithm = EXCLUDED.signature_algorithm;
        RETURN NULL;
      END
      $$;
    `,
  },
  {
    version: 10,
    name: 'one callback_host per host: a fully qualified name without its root dot, an IPv4-mapped IPv6 address as IPv4',
    sql: `
      -- lib/model.ts hostKey, in SQL: callback_host as written by a build before it kept
      -- 'cb.example.' apart from 'cb.example' (and '[::ffff:7f00:1]' from '127.0.0.1'), each
      -- counted under MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST on its own. The two change together.
      CREATE FUNCTION callback_host_key(h text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
      DECLARE
        m text[] := regexp_match(h, '^\\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\\](:[0-9]+)?$');
        hi int;
        lo int;
      BEGIN
        IF m IS NULL THEN
          RETURN regexp_replace(h, '\\.+((:[0-9]*)?)$', '\\1');
        END IF;
        hi := ('x' || lpad(m[1], 8, '0'))::bit(32)::int;
        lo := ('x' || lpad(m[2], 8, '0'))::bit(32)::int;
        RETURN format('%s.%s.%s.%s%s', hi >> 8, hi & 255, lo >> 8, lo & 255, COALESCE(m[3], ''));
      END
      $$;
      -- A process of an older build still running during an upgrade writes the host as it reads
      -- it: stored as this build reads it, or its rows would be counted apart again (a delivery's
      -- outcome updates a row without rewriting its host). Only such a host calls the function.
      CREATE FUNCTION subscriptions_callback_host_key() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.callback_host := callback_host_key(NEW.callback_host);
        RETURN NEW;
      END
      $$;
      CREATE TRIGGER subscriptions_callback_host_key BEFORE INSERT OR UPDATE OF callback_host ON subscriptions
        FOR EACH ROW WHEN (NEW.callback_host ~ '\\.(:[0-9]*)?$' OR NEW.callback_host LIKE '[::ffff:%')
        EXECUTE FUNCTION subscriptions_callback_host_key();
      -- The rows stored before, each one's count moved with it by migration 7's trigger. Creating
      -- the trigger above waited for the writes in flight and holds new ones until this commits:
      -- one pass over the table. An older process's own limit check still counts under the host
      -- as it reads it ('cb.example.'), which now holds nothing, so it lets such a subscribe past
      -- the host's limit until it is replaced (README, upgrading); this build counts every row.
      UPDATE subscriptions SET callback_host = callback_host_key(callback_host)
        WHERE callback_host ~ '\\.(:[0-9]*)?$' OR callback_host LIKE '[::ffff:%';
    `,
  },
  {
    version: 11,
    name: 'a count goes with the last subscription it counts',
    sql: `
      -- A count that fell to 0 stayed: the host of every callback that ever subscribed (an
      -- rssCloud subscriber's own IP address) and a key per topic ever followed, for good. Each
      -- decrement now deletes the row it leaves at 0; a missing row reads as 0 everywhere
      -- (COALESCE), so processes of an older build still running read the same limits. The row
      -- is locked by the decrement until commit, so a concurrent subscribe's increment waits for
      -- the delete and then inserts it afresh.
      CREATE OR REPLACE FUNCTION subscription_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          INSERT INTO subscription_counts AS c (kind, key, n)
            VALUES ('t', NEW.topic_key, 1), ('h', convert_to(NEW.callback_host, 'UTF8'), 1)
            ON CONFLICT (kind, key) DO UPDATE SET n = c.n + 1;
        ELSE
          UPDATE subscription_counts SET n = n - 1
            WHERE (kind = 't' AND key = OLD.topic_key) OR (kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8'));
          DELETE FROM subscription_counts
            WHERE ((kind = 't' AND key = OLD.topic_key) OR (kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8'))) AND n <= 0;
        END IF;
        RETURN NULL;
      END
      $$;
      CREATE OR REPLACE FUNCTION subscription_counts_follow_host() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE subscription_counts SET n = n - 1 WHERE kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8');
        DELETE FROM subscription_counts WHERE kind = 'h' AND key = convert_to(OLD.callback_host, 'UTF8') AND n <= 0;
        INSERT INTO subscription_counts AS c (kind, key, n) VALUES ('h', convert_to(NEW.callback_host, 'UTF8'), 1)
          ON CONFLICT (kind, key) DO UPDATE SET n = c.n + 1;
        RETURN NULL;
      END
      $$;
      DELETE FROM subscription_counts WHERE n <= 0;
    `,
  },
  {
    version: 12,
    name: 'the events other processes heard by NOTIFY, kept a while (a LISTEN connection lost and back catches up)',
    sql: `
      -- A NOTIFY reaches only the connections listening when it commits: a process whose LISTEN
      -- connection was cut (a proxy's idle cut, a terminated backend, a server restart) missed
      -- every change another process published until it listened again, and its browsers never
      -- saw them. Each NOTIFY's events are kept here too, numbered, for a few minutes; a process
      -- listening again reads what came after the last number it heard (lib/event-bus.ts).
      CREATE TABLE bus_events (
        seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin     text NOT NULL,
        envelope   text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX bus_events_created_at ON bus_events (created_at);
    `,
  },
  {
    version: 13,
    name: 'reads owed to topics (a publish acknowledged before its read finished)',
    sql: `
      -- A publish is answered 204 before its topic is read: a process stopped meanwhile (a
      -- crash, an OOM kill) forgot the read, and the topic's subscribers never heard of that
      -- change. Each row is a read owed, written before the answer and deleted once a read that
      -- began after since has finished; every process reads the topics left here when it starts.
      CREATE TABLE pending_reads (
        topic_key bytea PRIMARY KEY,
        topic     text NOT NULL,
        since     bigint NOT NULL
      );
    `,
  },
  {
    version: 14,
    name: 'the hub URL a WebSub subscription was made through (its deliveries\' rel=hub)',
    sql: `
      -- The path of the hub URL the latest subscribe request was sent to ('/' for the bare root),
      -- NULL for /websub: deliveries name the hub PUBLIC_URL + it.
      ALTER TABLE subscriptions ADD COLUMN hub_path text;
      ALTER TABLE pending_verifications ADD COLUMN hub_path text;
      -- Migration 9's function with the new column. The old ones stay for the processes of an
      -- older build still running during an upgrade; what they write leaves the column as it was.
      CREATE FUNCTION put_subscription_within_limits(
        per_topic bigint,
        per_host bigint,
        p_topic_key bytea,
        p_callback_key bytea,
        p_topic text,
        p_callback text,
        p_callback_host text,
        p_protocol text,
        p_notify_procedure text,
        p_secret text,
        p_lease_seconds bigint,
        p_ct_updates bigint,
        p_ct_errors bigint,
        p_ct_consecutive_errors bigint,
        p_when_created bigint,
        p_when_last_update bigint,
        p_when_last_error bigint,
        p_when_expires bigint,
        p_delivered_version bigint,
        p_signature_algorithm text,
        p_hub_path text
      ) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ' topic ' || p_topic, 0)),
                pg_advisory_xact_lock(hashtextextended(current_schema() || ' host ' || p_callback_host, 0));
        IF NOT EXISTS (SELECT 1 FROM subscriptions WHERE topic_key = p_topic_key AND callback_key = p_callback_key) THEN
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 't' AND key = p_topic_key), 0) >= per_topic THEN
            RETURN 'topic';
          END IF;
          IF COALESCE((SELECT n FROM subscription_counts WHERE kind = 'h' AND key = convert_to(p_callback_host, 'UTF8')), 0) >= per_host THEN
            RETURN 'callbackHost';
          END IF;
        END IF;
        INSERT INTO subscriptions AS t (topic_key, callback_key, topic, callback, callback_host, protocol, notify_procedure, secret, lease_seconds, ct_updates, ct_errors, ct_consecutive_errors, when_created, when_last_update, when_last_error, when_expires, delivered_version, signature_algorithm, hub_path)
          VALUES (p_topic_key, p_callback_key, p_topic, p_callback, p_callback_host, p_protocol, p_notify_procedure, p_secret, p_lease_seconds, p_ct_updates, p_ct_errors, p_ct_consecutive_errors, p_when_created, p_when_last_update, p_when_last_error, p_when_expires, p_delivered_version, p_signature_algorithm, p_hub_path)
          ON CONFLICT (topic_key, callback_key) DO UPDATE SET topic = EXCLUDED.topic, callback = EXCLUDED.callback, callback_host = EXCLUDED.callback_host, protocol = EXCLUDED.protocol, notify_procedure = EXCLUDED.notify_procedure, secret = EXCLUDED.secret, lease_seconds = EXCLUDED.lease_seconds, ct_updates = EXCLUDED.ct_updates, ct_errors = EXCLUDED.ct_errors, ct_consecutive_errors = EXCLUDED.ct_consecutive_errors, when_created = EXCLUDED.when_created, when_last_update = EXCLUDED.when_last_update, when_last_error = EXCLUDED.when_last_error, when_expires = EXCLUDED.when_expires, delivered_version = EXCLUDED.delivered_version, signature_algorithm = EXCLUDED.signature_algorithm, hub_path = EXCLUDED.hub_path;
        RETURN NULL;
      END
      $$;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

/** First key of the advisory lock that serialises migrations; the second is the schema's name. */
export const MIGRATION_LOCK = 0x70627574; // "pbut"

export interface MigrationReport {
  /** The schema version found (0 = a database this hub never used). */
  from: number;
  to: number;
  applied: number[];
}

/**
 * Brings the schema in the connection's current schema (the first of its search_path) up to
 * SCHEMA_VERSION, in one transaction under an advisory lock. Refuses a database migrated by a
 * newer build, rather than run against columns it does not know.
 */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationReport> {
  // During a rolling upgrade the processes of the older build keep writing: one holding a
  // verification's row (FOR SHARE) and then writing its subscription takes the tables' locks in
  // the other order from a migration that alters both (9 does), and PostgreSQL ends one of the
  // two. It ended the migration, so a new process failed to start until its restart. Rolled
  // back whole, the run is simply tried again, behind the other's commit.
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(client, migrations);
    } catch (e) {
      if (attempt >= DEADLOCK_ATTEMPTS || !isDeadlock(e)) throw e;
    }
  }
}

const DEADLOCK_ATTEMPTS = 5;

/** PostgreSQL's SQLSTATE of an error, if it has one. */
function code(x: unknown): unknown {
  return typeof x === 'object' && x !== null ? (x as { code?: unknown }).code : undefined;
}

function isDeadlock(e: unknown): boolean {
  return code(e) === '40P01' || (e instanceof Error && code(e.cause) === '40P01');
}

async function migrateOnce(client: pg.ClientBase, migrations: readonly Migration[]): Promise<MigrationReport> {
  const target = migrations.reduce((v, m) => Math.max(v, m.version), 0);
  await client.query('BEGIN');
  try {
    // Unbounded, as documented: a statement_timeout the role or database carries (managed
    // services set one) cancelled a migration that rewrites a big table at every start, so the
    // hub could never start again.
    await client.query('SET LOCAL statement_timeout = 0');
    // And a lock_timeout likewise: a process starting while another migrated, or a migration
    // waiting behind the older build's writes during an upgrade, was cancelled by it ("canceling
    // statement due to lock timeout") and exited.
    await client.query('SET LOCAL lock_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [MIGRATION_LOCK]);
    const { rows: found } = await client.query<{ readOnly: boolean; recorded: boolean; role: string; schema: string | null; searchPath: string }>(
      `SELECT current_setting('transaction_read_only') = 'on' AS "readOnly",
              EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations') AS recorded,
              quote_ident(current_user) AS role, quote_ident(current_schema()) AS schema, current_setting('search_path') AS "searchPath"`,
    );
    const { role = 'the role', schema = null, searchPath = '' } = found[0] ?? {};
    // A standby, or a primary being failed over, answered every write 25006 ("cannot execute … in
    // a read-only transaction"): said once here, in words, instead of by the first CREATE.
    if (found[0]?.readOnly) {
      throw new Error('the database accepts no writes (transaction_read_only is on: a standby, a failover in progress, or default_transaction_read_only): point DATABASE_URL at the primary');
    }
    // Created only when missing: CREATE TABLE IF NOT EXISTS needs the right to create in the
    // schema even when the table is there, so a role given only its tables' rights (a DBA
    // migrated as the schema's owner) could not start on a schema already up to date.
    // PostgreSQL's own words named neither the schema meant nor what to do: "no schema has been
    // selected to create in" (a search_path naming a schema not created yet), "permission
    // denied for schema public" (a role that may not create tables there, as in every
    // database's public schema since PostgreSQL 15 unless the role owns the database).
    if (schema === null) {
      const first = searchPath.split(',')[0]?.trim() || 'pushbutton';
      throw new Error(
        `no schema the search_path (${searchPath}) names exists: create it (CREATE SCHEMA ${first === '"$user"' ? role : first} AUTHORIZATION ${role}), or name an existing one in DATABASE_URL (options=-c search_path=…)`,
      );
    }
    if (!found[0]?.recorded) {
      await client
        .query(
          `
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
        )
        .catch((e: unknown) => {
          if (code(e) !== '42501') throw e;
          throw new Error(
            `${e instanceof Error ? e.message : String(e)}: the role ${role} in DATABASE_URL may not create tables in schema ${schema}; as its owner, GRANT CREATE ON SCHEMA ${schema} TO ${role}, or give the hub a schema of its own (CREATE SCHEMA pushbutton AUTHORIZATION ${role}; options=-c search_path=pushbutton)`,
            { cause: e },
          );
        });
    }
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const have = new Set(rows.map((r) => r.version));
    const from = Math.max(0, ...have);
    if (from > target) {
      throw new Error(`the database schema is at version ${from}, newer than this build knows (${target}): run a newer Pushbutton`);
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (have.has(m.version)) continue;
      await client.query(m.sql).catch((e: unknown) => {
        throw migrationFailed(m, e);
      });
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return { from, to: target, applied };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** A migration's error, saying which one failed; a permission refused says what the role lacks. */
function migrationFailed(m: Migration, e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  const hint =
    code(e) === '42501'
      ? ': the role in DATABASE_URL may not change the schema; run this version once with its owner, which applies it'
      : // duplicate_table, duplicate_function: another application's tables share the schema.
        m.version === 1 && (code(e) === '42P07' || code(e) === '42723')
        ? ": another application's tables are in this schema; give the hub a schema of its own (CREATE SCHEMA pushbutton; options=-c search_path=pushbutton)"
        : '';
  return new Error(`migration ${m.version} (${m.name}) failed: ${message}${hint}`, { cause: e });
}
