// The PostgreSQL store: the Store interface on a pg connection pool, chosen by DATABASE_URL.
// Every write is one statement (autocommit), so it is committed, and durable, when its promise
// resolves; reads build fresh objects from rows, so callers always get copies. The schema and
// its migrations are in pg-schema.ts; docs/adr/0004-postgresql-store.md explains the choices.
//
// Several hub processes may share one database: outbox entries are claimed by one process at a
// time (FOR UPDATE SKIP LOCKED, with a lease that others take over when it expires), and
// refreshes of one topic hold an advisory lock (withTopicLock) on a connection of their own.
// A new subscription is counted and inserted in one transaction under advisory locks on its
// topic and callback host (putSubscriptionWithinLimits), so the limits hold across processes,
// and one process at a time runs the expiry sweep (withSweepLock).
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { SignatureAlgorithm } from '../config.js';
import { callbackHost, hostKey, type DeliveryTally, type OutboxEntry, type OutboxKey, type PendingRead, type PendingVerification, type Protocol, type Site, type Subscription, type Topic } from '../model.js';
import { migrate, type MigrationReport } from './pg-schema.js';
import type { ExpiryFilter, Store, StoreCounts, SubscriptionLimit, SubscriptionLimits, TopicSubscriptions } from './store.js';

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database, or ?host=/socket/dir for a unix socket. */
  connectionString: string;
  /** Most connections this store opens at once (DATABASE_POOL_SIZE). */
  poolSize?: number;
  /** Longest wait for a topic lock, connection included (DATABASE_LOCK_WAIT_MS; default 30 s). */
  lockWaitMs?: number;
  /** Longest a statement may go unanswered (DATABASE_QUERY_TIMEOUT_MS; default 30 s). */
  queryTimeoutMs?: number;
  /** Called with errors of idle pooled connections (the server went away); they are replaced. */
  onError?: (e: Error) => void;
}

/**
 * A connection URL with its password hidden, for logs and messages: the one after the user
 * name, and any given as a parameter (pg reads ?password=…, and ?sslpassword=… for the key).
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const name of [...u.searchParams.keys()]) if (/password/i.test(name)) u.searchParams.set(name, '***');
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * DATABASE_URL as the driver is to read it: its `sslmode` as libpq (psql, every other client of
 * the URL) reads it. pg took `require` and `prefer` for `verify-full`, so the URL a managed
 * service hands out (`?sslmode=require`, its certificate signed by its own CA) stopped the hub at
 * start-up with "self-signed certificate" while psql connected with it, and printed a multi-line
 * SECURITY WARNING into the JSON log. Verifying the server is `verify-full` (with `sslrootcert`
 * naming the CA), as in libpq. A URL that says `uselibpqcompat` itself, or pg's own
 * `sslmode=no-verify`, is left as it is.
 */
export function driverUrl(url: string): string {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return url;
  }
  // no-verify is pg's own word (Heroku's documented URL): libpq has none such, and read as libpq
  // reads the rest, it verified the certificate it was written to skip.
  if (!params.has('sslmode') || params.get('sslmode') === 'no-verify' || params.has('uselibpqcompat')) return url;
  return `${url}${url.includes('?') ? '&' : '?'}uselibpqcompat=true`;
}

/** URLs with sslmode=prefer, as connections are to use them: TLS, or plain on a server without it. */
const preferred = new Map<string, string>();

/**
 * driverUrl, with `sslmode=prefer` (libpq's default, so in many a copied URL) settled as libpq
 * settles it: TLS where the server offers it, plain where it refuses. pg has no such fallback:
 * it failed every connection with "The server does not support SSL connections", so a hub
 * given the URL psql connects with did not start. Asked once per URL and process with a
 * connection of its own (a server's TLS does not come and go while it runs); any other failure
 * is left to the real connections, whose errors say more.
 */
export async function connectionUrl(url: string): Promise<string> {
  const driver = driverUrl(url);
  if (!/[?&]sslmode=prefer(&|$)/.test(url)) return driver;
  const known = preferred.get(url);
  if (known !== undefined) return known;
  let probe: pg.Client | undefined;
  try {
    probe = new pg.Client({ connectionString: driver, connectionTimeoutMillis: 30_000 });
    probe.on('error', () => undefined);
    await probe.connect();
    preferred.set(url, driver);
  } catch (e) {
    if (!(e instanceof Error) || e.message !== 'The server does not support SSL connections') return driver;
    preferred.set(url, driver.replace(/([?&])sslmode=prefer(?=&|$)/, '$1sslmode=disable'));
  } finally {
    await probe?.end().catch(() => undefined);
  }
  return preferred.get(url)!;
}

/** What an upsert did: `unchanged` when the row already held exactly these values. */
export type UpsertResult = 'inserted' | 'updated' | 'unchanged';

/** The key of a URL (or a pair): SHA-256 of its UTF-8 bytes. */
export function urlKey(url: string): Buffer {
  return createHash('sha256').update(url, 'utf8').digest();
}

/** Keys of the URLs seen lately: a fan-out asks for its topic's key and each callback's twice per delivery. */
const recentKeys = new Map<string, Buffer>();

// Subscription counts are kept by a trigger (migration 5): counting a big topic's rows took
// milliseconds per subscribe. `key` is a topic's URL key, or a callback host as text.
const topicCount = (key: string): string => `COALESCE((SELECT n FROM subscription_counts WHERE kind = 't' AND key = ${key}), 0)`;
/** True for a row of `topics` (by its alias) that nobody subscribes to. */
const unfollowed = (topics: string): string => `NOT EXISTS (SELECT 1 FROM subscriptions u WHERE u.topic_key = ${topics}.topic_key)`;
const hostCount = (host: string): string => `COALESCE((SELECT n FROM subscription_counts WHERE kind = 'h' AND key = convert_to(${host}, 'UTF8')), 0)`;

/** The limit the database named, if any ('topic' or 'callbackHost'). */
function asLimit(refused: string | null | undefined): SubscriptionLimit | null {
  return refused === 'topic' || refused === 'callbackHost' ? refused : null;
}

/** The limit put_subscription_within_limits named in its answer, if any. */
function refusedBy(result: pg.QueryResult): SubscriptionLimit | null {
  return asLimit((result.rows[0] as { refused: string | null } | undefined)?.refused);
}

function keyOf(url: string): Buffer {
  let key = recentKeys.get(url);
  if (key === undefined) {
    if (recentKeys.size >= 50_000) recentKeys.clear();
    key = urlKey(url);
    recentKeys.set(url, key);
  }
  return key;
}

/** Rows of a long read or claim fetched, and made into records, at once (see PgStore.readInPages). */
const PAGE_ROWS = 1000;

/** Statements of batched subscription reads at once (see PgStore.readTogether). */
const READS_IN_FLIGHT = 2;

// ---- rows ↔ records -------------------------------------------------------------------------

interface TopicRow {
  url: string;
  last_hash: string;
  last_size: number;
  ct_checks: number;
  when_last_check: number;
  ct_updates: number;
  when_last_update: number;
  etag: string | null;
  last_modified: string | null;
  content_type: string | null;
  fingerprints: string[] | null;
  version: number;
}

interface SubscriptionRow {
  topic: string;
  callback: string;
  protocol: string;
  notify_procedure: string | null;
  secret: string | null;
  lease_seconds: number | null;
  ct_updates: number;
  ct_errors: number;
  ct_consecutive_errors: number;
  when_created: number;
  when_last_update: number | null;
  when_last_error: number | null;
  when_expires: number;
  delivered_version: number | null;
  signature_algorithm: string | null;
  hub_path: string | null;
}

interface OutboxRow {
  topic: string;
  version: number;
  content_type: string;
  created_at: number;
  claimed_by?: string | null;
  claimed_until?: number | null;
}

interface VerificationRow {
  claimed_by?: string | null;
  claimed_until?: number | null;
  id: string;
  mode: string;
  topic: string;
  callback: string;
  secret: string | null;
  lease_seconds: number | null;
  verify_token: string | null;
  signature_algorithm: string | null;
  hub_path: string | null;
  created_at: number;
}

const TOPIC_COLUMNS = [
  'topic_key',
  'url',
  'last_hash',
  'last_size',
  'ct_checks',
  'when_last_check',
  'ct_updates',
  'when_last_update',
  'etag',
  'last_modified',
  'content_type',
  'fingerprints',
  'version',
] as const;

function topicValues(t: Topic): unknown[] {
  return [
    urlKey(t.url),
    t.url,
    t.lastHash,
    t.lastSize,
    t.ctChecks,
    t.whenLastCheck,
    t.ctUpdates,
    t.whenLastUpdate,
    t.etag ?? null,
    t.lastModified ?? null,
    t.contentType ?? null,
    t.fingerprints ?? null,
    t.version,
  ];
}

function topicFromRow(r: TopicRow): Topic {
  const t: Topic = {
    url: r.url,
    lastHash: r.last_hash,
    lastSize: r.last_size,
    ctChecks: r.ct_checks,
    whenLastCheck: r.when_last_check,
    ctUpdates: r.ct_updates,
    whenLastUpdate: r.when_last_update,
    version: r.version,
  };
  if (r.etag !== null) t.etag = r.etag;
  if (r.last_modified !== null) t.lastModified = r.last_modified;
  if (r.content_type !== null) t.contentType = r.content_type;
  if (r.fingerprints !== null) t.fingerprints = r.fingerprints;
  return t;
}

const SUBSCRIPTION_COLUMNS = [
  'topic_key',
  'callback_key',
  'topic',
  'callback',
  'callback_host',
  'protocol',
  'notify_procedure',
  'secret',
  'lease_seconds',
  'ct_updates',
  'ct_errors',
  'ct_consecutive_errors',
  'when_created',
  'when_last_update',
  'when_last_error',
  'when_expires',
  'delivered_version',
  'signature_algorithm',
  'hub_path',
] as const;

function subscriptionValues(s: Subscription): unknown[] {
  return [
    urlKey(s.topic),
    urlKey(s.callback),
    s.topic,
    s.callback,
    callbackHost(s.callback),
    s.protocol,
    s.notifyProcedure ?? null,
    s.secret ?? null,
    s.leaseSeconds ?? null,
    s.ctUpdates,
    s.ctErrors,
    s.ctConsecutiveErrors,
    s.whenCreated,
    s.whenLastUpdate,
    s.whenLastError,
    s.whenExpires,
    s.deliveredVersion ?? null,
    s.signatureAlgorithm ?? null,
    s.hubPath ?? null,
  ];
}

const SUBSCRIPTION_SELECT = SUBSCRIPTION_COLUMNS.filter((c) => !c.endsWith('_key') && c !== 'callback_host').join(', ');

function subscriptionFromRow(r: SubscriptionRow): Subscription {
  const s: Subscription = {
    topic: r.topic,
    callback: r.callback,
    protocol: r.protocol as Protocol,
    ctUpdates: r.ct_updates,
    ctErrors: r.ct_errors,
    ctConsecutiveErrors: r.ct_consecutive_errors,
    whenCreated: r.when_created,
    whenLastUpdate: r.when_last_update,
    whenLastError: r.when_last_error,
    whenExpires: r.when_expires,
  };
  if (r.notify_procedure !== null) s.notifyProcedure = r.notify_procedure;
  if (r.secret !== null) s.secret = r.secret;
  if (r.lease_seconds !== null) s.leaseSeconds = r.lease_seconds;
  if (r.delivered_version !== null) s.deliveredVersion = r.delivered_version;
  if (r.signature_algorithm !== null) s.signatureAlgorithm = r.signature_algorithm as SignatureAlgorithm;
  if (r.hub_path !== null) s.hubPath = r.hub_path;
  return s;
}

const OUTBOX_COLUMNS = ['topic_key', 'version', 'topic', 'content_type', 'created_at', 'body', 'claimed_by', 'claimed_until'] as const;
const OUTBOX_ENTRY = 'topic, version, content_type, created_at, claimed_by, claimed_until';

function outboxFromRow(r: OutboxRow): OutboxEntry {
  const e: OutboxEntry = { topic: r.topic, version: r.version, contentType: r.content_type, createdAt: r.created_at };
  if (r.claimed_by != null && r.claimed_until != null) {
    e.claimedBy = r.claimed_by;
    e.claimedUntil = r.claimed_until;
  }
  return e;
}

const VERIFICATION_COLUMNS = ['id', 'mode', 'topic', 'callback', 'secret', 'lease_seconds', 'verify_token', 'signature_algorithm', 'hub_path', 'created_at', 'claimed_by', 'claimed_until'] as const;

function verificationValues(v: PendingVerification): unknown[] {
  const claimed = v.claimedBy !== undefined && v.claimedUntil !== undefined;
  return [
    v.id,
    v.mode,
    v.topic,
    v.callback,
    v.secret ?? null,
    v.leaseSeconds ?? null,
    v.verifyToken ?? null,
    v.signatureAlgorithm ?? null,
    v.hubPath ?? null,
    v.createdAt,
    claimed ? v.claimedBy : null,
    claimed ? v.claimedUntil : null,
  ];
}

function verificationFromRow(r: VerificationRow): PendingVerification {
  const v: PendingVerification = { id: r.id, mode: r.mode as PendingVerification['mode'], topic: r.topic, callback: r.callback, createdAt: r.created_at };
  if (r.secret !== null) v.secret = r.secret;
  if (r.lease_seconds !== null) v.leaseSeconds = r.lease_seconds;
  if (r.verify_token !== null) v.verifyToken = r.verify_token;
  if (r.signature_algorithm !== null) v.signatureAlgorithm = r.signature_algorithm as SignatureAlgorithm;
  if (r.hub_path !== null) v.hubPath = r.hub_path;
  if (r.claimed_by != null && r.claimed_until != null) {
    v.claimedBy = r.claimed_by;
    v.claimedUntil = r.claimed_until;
  }
  return v;
}

interface SiteRow {
  url: string;
  feeds: string[];
  hubs: string[];
  self: string | null;
  when_checked: number;
  when_created: number;
}

const SITE_COLUMNS = ['site_key', 'url', 'feeds', 'hubs', 'self', 'when_checked', 'when_created'] as const;

function siteFromRow(r: SiteRow): Site {
  const s: Site = { url: r.url, feeds: r.feeds, hubs: r.hubs, whenChecked: r.when_checked, whenCreated: r.when_created };
  if (r.self !== null) s.self = r.self;
  return s;
}

/**
 * INSERT … ON CONFLICT DO UPDATE that touches the row only when a value differs, and says
 * which of the three happened (xmax = 0 on a freshly inserted row). Columns not named in
 * `columns` (subscriptions.seq) keep their value on update.
 *
 * `kept`: columns whose stored value stays when the new one equals it, rather than being set to
 * that copy. PostgreSQL writes a large value (over ~2 KB) out of line, and writes it again when
 * an update sets it, equal or not: a feed topic's fingerprints, written by every read that found
 * no change (Store.recordCheck), made ~5.5 KB of WAL per check of a feed remembering 300 entries;
 * kept, ~0.2 KB.
 */
function upsertSql(table: string, columns: readonly string[], conflict: readonly string[], kept: readonly string[] = []): string {
  const updated = columns.filter((c) => !conflict.includes(c));
  const set = (c: string): string => (kept.includes(c) ? `${c} = CASE WHEN t.${c} IS DISTINCT FROM EXCLUDED.${c} THEN EXCLUDED.${c} ELSE t.${c} END` : `${c} = EXCLUDED.${c}`);
  return (
    `INSERT INTO ${table} AS t (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ` +
    `ON CONFLICT (${conflict.join(', ')}) DO UPDATE SET ${updated.map(set).join(', ')} ` +
    `WHERE (${updated.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (${updated.map((c) => `EXCLUDED.${c}`).join(', ')}) ` +
    `RETURNING (xmax = 0) AS inserted`
  );
}

/**
 * The key of an advisory lock of the subscription limits or the sweep: one bigint, a hash of
 * the name with the schema's, so hubs in other schemas of the database do not wait for these.
 * PostgreSQL keeps one-key locks apart from the two-key ones of topic locks and migrations.
 */
function lockKey(nameSql: string): string {
  return `hashtextextended(current_schema() || ' ' || ${nameSql}, 0)`;
}

const SQL = {
  getTopic: `SELECT ${TOPIC_COLUMNS.slice(1).join(', ')} FROM topics WHERE topic_key = $1`,
  putTopic: upsertSql('topics', TOPIC_COLUMNS, ['topic_key'], ['fingerprints']),
  // One statement, so atomic; the topic's outbox stays until the notifier finds nobody due.
  deleteTopic: 'WITH s AS (DELETE FROM subscriptions WHERE topic_key = $1) DELETE FROM topics WHERE topic_key = $1',
  listTopics: `SELECT ${TOPIC_COLUMNS.slice(1).join(', ')} FROM topics`,
  // Nothing is read into the process: at a million topics the sweep listed them all once a day.
  deleteStaleTopics: `DELETE FROM topics t
      WHERE t.topic_key IN (
          SELECT topic_key FROM topics s
          WHERE s.when_last_update < $1 AND ${unfollowed('s')}
          LIMIT $2)
        AND ${unfollowed('t')}`,
  // The first condition, counting no further than the bound, spares the rest when there are
  // no more topics in all than that (most hubs): it is evaluated once, before any row is read.
  trimUnfollowedTopics: `DELETE FROM topics t
      WHERE (SELECT count(*) FROM (SELECT 1 FROM topics LIMIT $1 + 1) c) > $1
        AND t.topic_key IN (
          SELECT topic_key FROM topics s
          WHERE ${unfollowed('s')}
          ORDER BY s.when_last_check DESC, s.topic_key OFFSET $1)
        AND ${unfollowed('t')}`,
  getSubscription: `SELECT ${SUBSCRIPTION_SELECT} FROM subscriptions WHERE topic_key = $1 AND callback_key = $2`,
  // Reads that arrived together (see getSubscription); the key columns say which row answers which.
  getSubscriptionsOfTopic: `SELECT ${SUBSCRIPTION_SELECT} FROM subscriptions WHERE topic_key = $1 AND callback_key = ANY($2::bytea[])`,
  putSubscription: upsertSql('subscriptions', SUBSCRIPTION_COLUMNS, ['topic_key', 'callback_key']),
  // Increments, as withTally (model.ts) applies them: a renewal committed meanwhile keeps its fields.
  recordDeliveries: `UPDATE subscriptions s SET
      ct_updates = s.ct_updates + t.delivered,
      ct_errors = s.ct_errors + t.failed,
      ct_consecutive_errors = CASE WHEN t.delivered > 0 THEN t.failed_since ELSE s.ct_consecutive_errors + t.failed - t.limited END,
      when_last_update = COALESCE(t.last_delivered_at, s.when_last_update),
      when_last_error = COALESCE(t.last_failed_at, s.when_last_error),
      delivered_version = GREATEST(COALESCE(s.delivered_version, 0), t.handled)
    FROM unnest($2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
      AS t(callback_key, delivered, failed, failed_since, last_delivered_at, last_failed_at, handled, limited)
    WHERE s.topic_key = $1 AND s.callback_key = t.callback_key`,
  deleteSubscription: 'DELETE FROM subscriptions WHERE topic_key = $1 AND callback_key = $2',
  // In the order they first subscribed, as the embedded store gives them.
  subscriptionsOf: `SELECT ${SUBSCRIPTION_SELECT} FROM subscriptions WHERE topic_key = $1 ORDER BY seq`,
  // At most one page and one row more: whether the topic needs readInPages (see subscriptionsOf).
  subscriptionsOfFirstPage: `SELECT ${SUBSCRIPTION_SELECT} FROM subscriptions WHERE topic_key = $1 ORDER BY seq LIMIT ${PAGE_ROWS + 1}`,
  listSubscriptions: `SELECT ${SUBSCRIPTION_SELECT} FROM subscriptions`,
  // From the counts migration 5's trigger keeps: one row per topic, its URL read from one of its
  // subscriptions by the primary key, instead of every subscription row.
  subscribedTopics: `SELECT (SELECT s.topic FROM subscriptions s WHERE s.topic_key = c.key LIMIT 1) AS topic, c.n::int AS n
    FROM subscription_counts c WHERE c.kind = 't' AND c.n > 0`,
  // The rows are found by index (subscriptions_when_expires, subscriptions_failing: the query
  // repeats its predicate) and deleted by ctid. The condition is checked again on the row it
  // deletes, so one renewed or delivered to meanwhile is left for the next sweep.
  deleteExpiredSubscriptions: `DELETE FROM subscriptions
      WHERE ctid = ANY(ARRAY(
          SELECT ctid FROM (
            (SELECT ctid FROM subscriptions WHERE when_expires <= $1 LIMIT $3)
            UNION ALL
            (SELECT ctid FROM subscriptions WHERE protocol <> 'websub' AND ct_consecutive_errors > 0 AND ct_consecutive_errors >= $2 LIMIT $3)
          ) due LIMIT $3))
        AND (when_expires <= $1 OR (protocol <> 'websub' AND ct_consecutive_errors >= $2))`,
  putOutbox: upsertSql('outbox', OUTBOX_COLUMNS, ['topic_key', 'version']),
  getOutboxBody: 'SELECT body FROM outbox WHERE topic_key = $1 AND version = $2',
  outboxBodySize: 'SELECT octet_length(body) AS size FROM outbox WHERE topic_key = $1 AND version = $2',
  deleteOutbox: 'DELETE FROM outbox WHERE topic_key = $1 AND version = $2',
  listOutbox: 'SELECT topic, version, content_type, created_at FROM outbox ORDER BY created_at, topic COLLATE "C", version',
  outboxOf: `SELECT ${OUTBOX_ENTRY} FROM outbox WHERE topic_key = $1 ORDER BY version`,
  // SKIP LOCKED: processes claiming at once take different entries instead of waiting.
  claimOutbox: `UPDATE outbox SET claimed_by = $1, claimed_until = $2
                WHERE (topic_key, version) IN (
                  SELECT topic_key, version FROM outbox
                  WHERE claimed_until IS NULL OR claimed_until < $3
                  ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED)
                RETURNING ${OUTBOX_ENTRY}`,
  renewOutboxClaims: `UPDATE outbox SET claimed_until = $2
                      WHERE claimed_by = $1 AND (topic_key, version) IN (SELECT * FROM unnest($3::bytea[], $4::bigint[]))
                      RETURNING topic, version`,
  putVerification: upsertSql('pending_verifications', VERIFICATION_COLUMNS, ['id']),
  // One statement: the removal happens only if the request is still pending. By migration 6's
  // index; the URLs compared too, as md5 may collide. Ids compare as the listing orders them.
  supersedeOlderVerifications: `WITH me AS (SELECT created_at FROM pending_verifications WHERE id = $1),
      gone AS (
        DELETE FROM pending_verifications p USING me
        WHERE md5(p.topic) = md5($2) AND md5(p.callback) = md5($3) AND p.topic = $2 AND p.callback = $3
          AND (p.created_at < me.created_at OR (p.created_at = me.created_at AND p.id COLLATE "C" < $1 COLLATE "C")))
    SELECT EXISTS (SELECT 1 FROM me) AS pending`,
  hasVerification: 'SELECT EXISTS (SELECT 1 FROM pending_verifications WHERE id = $1) AS pending',
  holdVerification: 'SELECT 1 FROM pending_verifications WHERE id = $1 FOR SHARE',
  deleteVerification: 'DELETE FROM pending_verifications WHERE id = $1',
  // Without the claims: what was accepted, as on the embedded store.
  listVerifications: `SELECT ${VERIFICATION_COLUMNS.slice(0, -2).join(', ')} FROM pending_verifications ORDER BY created_at, id COLLATE "C"`,
  claimVerifications: `UPDATE pending_verifications SET claimed_by = $1, claimed_until = $2
                       WHERE id IN (
                         SELECT id FROM pending_verifications
                         WHERE claimed_until IS NULL OR claimed_until < $3
                         ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED)
                       RETURNING ${VERIFICATION_COLUMNS.join(', ')}`,
  renewVerificationClaims: 'UPDATE pending_verifications SET claimed_until = $2 WHERE claimed_by = $1 AND id = ANY($3::text[])',
  releaseOutboxClaims: 'UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1',
  releaseVerificationClaims: 'UPDATE pending_verifications SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1',
  // One statement: one snapshot, so the numbers agree with each other.
  counts: `SELECT (SELECT count(*) FROM topics) AS topics,
                  COALESCE((SELECT json_object_agg(protocol, n) FROM (SELECT protocol, count(*) AS n FROM subscriptions GROUP BY protocol) p), '{}') AS by_protocol`,
  countOfTopic: `SELECT ${topicCount('$1')}::int AS n`,
  countOfHost: `SELECT ${hostCount('$1')}::int AS n`,
  // The condition of the expiry sweep's, negated (see subscriptionEnded); by the primary key's topic prefix.
  liveOfTopic: `SELECT EXISTS (SELECT 1 FROM subscriptions
      WHERE topic_key = $1 AND when_expires > $2 AND (protocol = 'websub' OR ct_consecutive_errors < $3)) AS live`,
  // The early answer to a subscribe: whether the pair exists and both counts, in one round trip.
  subscriptionLimitReached: `SELECT CASE
      WHEN EXISTS (SELECT 1 FROM subscriptions WHERE topic_key = $1 AND callback_key = $2) THEN NULL
      WHEN ${topicCount('$1')} >= $3 THEN 'topic'
      WHEN ${hostCount('$4')} >= $5 THEN 'callbackHost'
    END AS refused`,
  // Migration 5's function: the check and the write in one round trip, under the limits' locks.
  putSubscriptionWithinLimits: `SELECT put_subscription_within_limits(${Array.from({ length: 2 + SUBSCRIPTION_COLUMNS.length }, (_, i) => `$${i + 1}`).join(', ')}) AS refused`,
  trySweepLock: `SELECT pg_try_advisory_lock(${lockKey("'sweep'")}) AS locked`,
  sweepUnlock: `SELECT pg_advisory_unlock(${lockKey("'sweep'")})`,
  // One statement: only topics somebody follows (by migration 5's counts) are recorded, and a
  // record already there keeps the later since. The URLs come deduplicated (see putPendingReads).
  putPendingReads: `INSERT INTO pending_reads AS p (topic_key, topic, since)
      SELECT t.key, t.topic, $3::bigint FROM unnest($1::bytea[], $2::text[]) AS t(key, topic)
      WHERE ${topicCount('t.key')} > 0
      ON CONFLICT (topic_key) DO UPDATE SET since = GREATEST(p.since, EXCLUDED.since)
      RETURNING topic`,
  // `npm run migrate`: a record copied as it is, whoever follows its topic now (read once at the
  // next start, then deleted); one already here keeps the later since.
  upsertPendingRead: `INSERT INTO pending_reads AS p (topic_key, topic, since) VALUES ($1, $2, $3)
      ON CONFLICT (topic_key) DO UPDATE SET since = EXCLUDED.since WHERE p.since < EXCLUDED.since
      RETURNING (xmax = 0) AS inserted`,
  deletePendingRead: 'DELETE FROM pending_reads WHERE topic_key = $1 AND since <= $2',
  listPendingReads: 'SELECT topic, since FROM pending_reads ORDER BY since, topic COLLATE "C"',
  getSite: `SELECT ${SITE_COLUMNS.slice(1).join(', ')} FROM sites WHERE site_key = $1`,
  putSite: upsertSql('sites', SITE_COLUMNS, ['site_key']),
  deleteStaleSites: 'DELETE FROM sites WHERE site_key IN (SELECT site_key FROM sites WHERE when_checked < $1 LIMIT $2)',
  trimSites: 'DELETE FROM sites WHERE site_key IN (SELECT site_key FROM sites ORDER BY when_checked DESC, site_key OFFSET $1)',
} as const;

/**
 * clear() takes every table at once, in this order, before deleting: writers take their row
 * locks after their table locks, subscriptions before topics (deleteTopic), so clearing cannot
 * deadlock with them, as deleting all rows while they write would.
 */
const CLEAR_TABLES = ['subscriptions', 'subscription_counts', 'outbox', 'pending_verifications', 'pending_reads', 'sites', 'topics'] as const;

/** deadlock_detected, serialization_failure: the statement had no effect and may run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

type SqlName = keyof typeof SQL;

/** A named statement, prepared once per connection, on the pool or on a transaction's connection. */
function statement(name: SqlName, values: unknown[]): pg.QueryConfig {
  return { name: `pushbutton_${name}`, text: SQL[name], values };
}

/** The parameters of putSubscriptionWithinLimits' statement. */
function withinLimits(sub: Subscription, limits: SubscriptionLimits): unknown[] {
  return [limits.perTopic, limits.perCallbackHost, ...subscriptionValues(sub)];
}

interface SubscriptionRead {
  topic: string;
  callback: string;
  resolve: (s: Subscription | undefined) => void;
  reject: (e: unknown) => void;
}

/**
 * A database host that goes silent (a network partition, a frozen VM, a paused container) closes
 * nothing: a statement sent before it waited for an answer that never came, holding its
 * connection, and once the pool's connections were all held every request that touched the store
 * waited with them, for as long as the silence lasted; nothing in TCP ends a wait on data already
 * acknowledged. Bounded here on the hub's side (query_timeout: the statement fails and the pool
 * closes its connection), and on the server's (statement_timeout: a slow statement is cancelled
 * rather than left running after the hub gave up on it). Keepalive probes find a connection
 * whose host vanished while it sat idle (the LISTEN connection, mostly), so it is replaced.
 */
export function silenceBounds(queryTimeoutMs: number): Pick<pg.ClientConfig, 'query_timeout' | 'keepAlive' | 'keepAliveInitialDelayMillis'> {
  return { query_timeout: queryTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: 10_000 };
}

/**
 * Exempts a session that must stay open while it idles from the server's idle_session_timeout
 * (PostgreSQL 14+; a no-op before): a lock connection holds its topic's advisory lock while the
 * feed is read, and the LISTEN connection waits for notifications. Cut by the server after a
 * short idle_session_timeout (a managed service's setting), the lock was gone while its refresh
 * went on, so another process read the topic at the same time, and the events other processes
 * published while the LISTEN connection was being replaced were never heard.
 */
export const KEEP_WHILE_IDLE = "SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000";

/** A statement that went unanswered for query_timeout; pg names it by its message only. */
export function isReadTimeout(e: unknown): e is Error {
  return e instanceof Error && e.message === 'Query read timeout';
}

/** bigint (int8) columns and count(*) come back as numbers: every value the model keeps is below 2^53. */
function pgTypes(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));
  return types;
}

/**
 * Stops the start-up behind a pooler in transaction or statement mode (PgBouncer's
 * `pool_mode = transaction`, a managed pooler's transaction mode), which hands a server session
 * to another client between transactions. The hub keeps named prepared statements, session
 * advisory locks, LISTEN and its SETs in its sessions: behind such a pooler one process started
 * and answered most requests with its protocol's error reply ("prepared statement … already
 * exists"), lost notifications, let refreshes of one topic run at once, and nothing said why.
 * Only such a pooler lets two connections open at once reach one session (a setting made on one
 * is seen on the other), or one connection reach two (its backend changes between statements);
 * either is certain, so the hub refuses rather than warns. An idle pooler gives the second
 * connection the session the first just released; a busy one moves it between statements.
 * Neither check sees a pooler that happened to do neither: it is not proof of session mode.
 */
async function refuseSharedSessions(first: pg.ClientBase, pool: pg.Pool, queryTimeoutMs: number): Promise<void> {
  const token = randomBytes(12).toString('hex');
  await first.query("SELECT set_config('pushbutton.session_probe', $1, false)", [token]);
  // The first connection was answered a moment ago, so a second that is not is queued behind
  // it: a session-mode pooler out of server connections (PgBouncer's default_pool_size).
  // "Query read timeout" alone said nothing of that.
  const unanswered = (e: unknown): never => {
    if (!isReadTimeout(e) && !(e instanceof Error && /timeout/i.test(e.message))) throw e;
    throw new Error(
      `a second connection, opened while the first was held, got no answer within DATABASE_QUERY_TIMEOUT_MS (${queryTimeoutMs} ms): ` +
        'behind a pooler in session mode each connection holds a server connection, and a hub process needs 2 × DATABASE_POOL_SIZE + 1 of them (PgBouncer default_pool_size, per database and user, covering every process)',
      { cause: e },
    );
  };
  const second = await pool.connect().catch(unanswered);
  let broken: Error | undefined;
  try {
    const { rows } = await second
      .query<{ probe: string | null; pid: number }>("SELECT current_setting('pushbutton.session_probe', true) AS probe, pg_backend_pid() AS pid")
      .catch((e: unknown) => {
        // Its statement may be answered yet: closed, not handed back.
        broken = e instanceof Error ? e : new Error(String(e));
        return unanswered(e);
      });
    const { rows: again } = await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    if (rows[0]?.probe === token || rows[0]?.pid !== again[0]?.pid) {
      throw new Error(
        'DATABASE_URL leads through a connection pooler in transaction or statement mode (two connections ran in one server session): ' +
          'the hub keeps prepared statements, advisory locks and LISTEN in its sessions, so it needs session pooling (PgBouncer pool_mode = session) or a direct connection to PostgreSQL',
      );
    }
  } finally {
    second.release(broken);
  }
}

export class PgStore implements Store {
  /** Other processes on the database take over the claims a process stops renewing. */
  readonly sharedClaims = true;
  private pool: pg.Pool | undefined;
  /** getSubscription calls waiting for the next statement (see readTogether). */
  private reads: SubscriptionRead[] = [];
  private readsInFlight = 0;
  /** Connections that hold topic locks (withTopicLock), opened on first use. */
  private lockPool: pg.Pool | undefined;
  /** Ends each wait for another process's topic lock under way (see close). */
  private readonly lockWaits = new Set<(e: Error) => void>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private migration: MigrationReport | undefined;
  /** The URL connections are opened with (connectionUrl), once open. */
  private url = '';

  constructor(private readonly opts: PgStoreOptions) {}

  private get lockWaitMs(): number {
    return this.opts.lockWaitMs ?? 30_000;
  }

  private get queryTimeoutMs(): number {
    return this.opts.queryTimeoutMs ?? 30_000;
  }

  /** A slot refused to the store pool is waited for only while it holds a connection (see SlotWait). */
  private get storeSlotWait(): SlotWait {
    return { ms: this.queryTimeoutMs, whileHoldingNone: false };
  }

  private get lockSlotWait(): SlotWait {
    return { ms: this.lockWaitMs, whileHoldingNone: true };
  }

  /** Connects, and brings the schema up to date (several processes may do this at once). */
  async open(): Promise<void> {
    if (this.pool) throw new Error('PgStore: already open');
    this.url = await connectionUrl(this.opts.connectionString);
    const connection = { connectionString: this.url, types: pgTypes(), connectionTimeoutMillis: 30_000 };
    const pool = new pg.Pool({
      ...connection,
      max: this.opts.poolSize ?? 10,
      application_name: 'pushbutton',
      // A turn at a connection, or a new one, is waited for as long as an answer.
      connectionTimeoutMillis: this.queryTimeoutMs,
      ...silenceBounds(this.queryTimeoutMs),
      // Set by a statement before the connection's first use, not as a startup parameter (pg's
      // statement_timeout option): PgBouncer refuses a connection whose startup packet carries
      // a parameter it does not know ("unsupported startup parameter: statement_timeout"), so
      // behind it, in session mode as documented, every statement after the migration failed.
      onConnect: async (client) => {
        await client.query(`SET statement_timeout = ${this.queryTimeoutMs}`);
      },
    });
    pool.on('error', (e) => this.opts.onError?.(e));
    // Migrations on a connection of their own, unbounded: one may build an index on a big table,
    // or wait its turn behind another process's, for longer than any one statement should.
    const migrating = new pg.Pool({ ...connection, max: 1, application_name: 'pushbutton-migrate', keepAlive: true });
    migrating.on('error', () => undefined);
    try {
      this.migration = await checkedOut(migrating, async (client) => {
        await refuseSharedSessions(client, pool, this.queryTimeoutMs);
        return migrate(client);
      });
    } catch (e) {
      await pool.end().catch(() => undefined);
      // The driver's words alone ("connect ECONNREFUSED 10.0.0.5:5432", "getaddrinfo ENOTFOUND
      // db") were all a hub that could not start printed: nothing said it was the database.
      throw new Error(`PostgreSQL (DATABASE_URL ${redactUrl(this.opts.connectionString)}) could not be opened: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    } finally {
      await migrating.end().catch(() => undefined);
    }
    this.pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    if (!pool) return;
    await this.flush();
    this.pool = undefined;
    const locks = this.lockPool;
    this.lockPool = undefined;
    // The pool ends once every connection is back, and one waiting for a topic lock that
    // another process holds came back only after DATABASE_LOCK_WAIT_MS: a stopping hub whose
    // poll waited so was held that long past its grace. The refresh gives up instead.
    for (const end of [...this.lockWaits]) end(new Error('the store is closing'));
    await locks?.end();
    await pool.end();
  }

  /** Every write is committed when its promise resolves; this waits for the ones still running. */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** What open() found and did to the schema. */
  get schema(): MigrationReport | undefined {
    return this.migration && { ...this.migration, applied: [...this.migration.applied] };
  }

  /** The configured most connections at once. */
  get poolSize(): number {
    return this.opts.poolSize ?? 10;
  }

  // --- topics and subscriptions --------------------------------------------------------------

  async getTopic(url: string): Promise<Topic | undefined> {
    const row = (await this.read<TopicRow>('getTopic', [urlKey(url)]))[0];
    return row && topicFromRow(row);
  }

  async putTopic(topic: Topic): Promise<void> {
    await this.upsertTopic(topic);
  }

  /** Written at once: other processes read whenLastCheck for FETCH_MIN_INTERVAL_MS. */
  recordCheck(topic: Topic): Promise<void> {
    return this.putTopic(topic);
  }

  upsertTopic(topic: Topic): Promise<UpsertResult> {
    return this.upsert('putTopic', topicValues(topic));
  }

  async deleteTopic(url: string): Promise<void> {
    await this.write('deleteTopic', [urlKey(url)]);
  }

  async deleteStaleTopics(before: number, limit: number): Promise<number> {
    return (await this.write('deleteStaleTopics', [before, limit])).rowCount ?? 0;
  }

  async trimUnfollowedTopics(keep: number): Promise<number> {
    return (await this.write('trimUnfollowedTopics', [keep])).rowCount ?? 0;
  }

  async listTopics(): Promise<Topic[]> {
    return this.readInPages<TopicRow, Topic>('listTopics', [], topicFromRow);
  }

  /**
   * Reads issued in the same turn of the event loop go to the database as one statement: a
   * fan-out reads each subscription as its delivery takes a slot, DELIVERY_CONCURRENCY at a
   * time, and one round trip per delivery was most of a PostgreSQL fan-out's cost.
   */
  getSubscription(topic: string, callback: string): Promise<Subscription | undefined> {
    return new Promise((resolve, reject) => {
      this.reads.push({ topic, callback, resolve, reject });
      if (this.reads.length === 1 && this.readsInFlight < READS_IN_FLIGHT) setImmediate(() => this.readTogether());
    });
  }

  /**
   * Sends the reads waiting as one statement. While READS_IN_FLIGHT statements run, new reads
   * wait and go together when one returns (as a journal's group commit does): once a fan-out is
   * under way its deliveries take slots one at a time, and a statement per turn was still
   * nearly a statement per read.
   */
  private readTogether(): void {
    const reads = this.reads;
    this.reads = [];
    if (reads.length === 0) return;
    this.readsInFlight++;
    const done = (): void => {
      this.readsInFlight--;
      if (this.reads.length > 0) this.readTogether();
    };
    if (reads.length === 1) {
      const [r] = reads as [SubscriptionRead];
      this.read<SubscriptionRow>('getSubscription', [keyOf(r.topic), keyOf(r.callback)])
        .then((rows) => r.resolve(rows[0] && subscriptionFromRow(rows[0])), r.reject)
        .finally(done);
      return;
    }
    // One statement per topic (a fan-out's reads are all of one), answered by callback.
    const byTopic = new Map<string, SubscriptionRead[]>();
    for (const r of reads) {
      const group = byTopic.get(r.topic);
      if (group) group.push(r);
      else byTopic.set(r.topic, [r]);
    }
    Promise.all(
      [...byTopic].map(([topic, group]) =>
        this.read<SubscriptionRow>('getSubscriptionsOfTopic', [keyOf(topic), group.map((r) => keyOf(r.callback))]).then(
          (rows) => {
            const found = new Map<string, SubscriptionRow>();
            for (const row of rows) found.set(row.callback, row);
            for (const r of group) {
              const row = found.get(r.callback);
              r.resolve(row && subscriptionFromRow(row));
            }
          },
          (e: unknown) => {
            for (const r of group) r.reject(e);
          },
        ),
      ),
    ).finally(done);
  }

  async putSubscription(sub: Subscription): Promise<void> {
    await this.upsertSubscription(sub);
  }

  upsertSubscription(sub: Subscription): Promise<UpsertResult> {
    return this.upsert('putSubscription', subscriptionValues(sub));
  }

  async recordDeliveries(tallies: DeliveryTally[]): Promise<void> {
    // One statement per topic of the batch (a fan-out's batch is one topic); topics, and rows
    // within one, in key order, so two processes' batches take their row locks in one order.
    const byTopic = new Map<string, { t: DeliveryTally; callbackKey: Buffer }[]>();
    for (const t of tallies) {
      let rows = byTopic.get(t.topic);
      if (!rows) byTopic.set(t.topic, (rows = []));
      rows.push({ t, callbackKey: keyOf(t.callback) });
    }
    const topics = [...byTopic.keys()].map((topic) => ({ topic, topicKey: keyOf(topic) })).sort((a, b) => Buffer.compare(a.topicKey, b.topicKey));
    for (const { topic, topicKey } of topics) {
      const rows = byTopic.get(topic)!.sort((a, b) => Buffer.compare(a.callbackKey, b.callbackKey));
      await this.write('recordDeliveries', [
        topicKey,
        rows.map((r) => r.callbackKey),
        rows.map((r) => r.t.delivered),
        rows.map((r) => r.t.failed),
        rows.map((r) => r.t.failedSinceDelivered),
        rows.map((r) => r.t.lastDeliveredAt),
        rows.map((r) => r.t.lastFailedAt),
        rows.map((r) => r.t.handledVersion),
        rows.map((r) => r.t.limited),
      ]);
    }
  }

  async deleteSubscription(topic: string, callback: string): Promise<boolean> {
    return (await this.write('deleteSubscription', [urlKey(topic), urlKey(callback)])).rowCount! > 0;
  }

  async subscriptionsOf(topic: string): Promise<Subscription[]> {
    // Every publish asks: a topic of one page is one statement, as before paging; the cursor's
    // transaction (three more round trips) only for a topic with more subscribers than that.
    const first = await this.read<SubscriptionRow>('subscriptionsOfFirstPage', [urlKey(topic)]);
    if (first.length <= PAGE_ROWS) return first.map(subscriptionFromRow);
    return this.readInPages<SubscriptionRow, Subscription>('subscriptionsOf', [urlKey(topic)], subscriptionFromRow);
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return this.readInPages<SubscriptionRow, Subscription>('listSubscriptions', [], subscriptionFromRow);
  }

  async subscribedTopics(): Promise<TopicSubscriptions[]> {
    const rows = await this.readInPages<{ topic: string | null; n: number }, { topic: string | null; n: number }>('subscribedTopics', [], (r) => r);
    // A count and its rows are read in one snapshot; a null would mean they disagree, so it is skipped.
    return rows.flatMap((r) => (r.topic === null ? [] : [{ topic: r.topic, subscriptions: r.n }]));
  }

  async deleteExpiredSubscriptions({ now, maxConsecutiveErrors, limit }: ExpiryFilter): Promise<number> {
    return (await this.write('deleteExpiredSubscriptions', [now, maxConsecutiveErrors, limit])).rowCount ?? 0;
  }

  // --- outbox --------------------------------------------------------------------------------

  async putOutbox(entry: OutboxEntry, body: Buffer): Promise<void> {
    await this.upsertOutbox(entry, body);
  }

  /** The entry and its body are one row: both are durable, or neither. */
  upsertOutbox(entry: OutboxEntry, body: Buffer): Promise<UpsertResult> {
    const claimed = entry.claimedBy !== undefined && entry.claimedUntil !== undefined;
    return this.upsert('putOutbox', [
      urlKey(entry.topic),
      entry.version,
      entry.topic,
      entry.contentType,
      entry.createdAt,
      body,
      claimed ? entry.claimedBy : null,
      claimed ? entry.claimedUntil : null,
    ]);
  }

  async outboxOf(topic: string): Promise<OutboxEntry[]> {
    return (await this.read<OutboxRow>('outboxOf', [urlKey(topic)])).map(outboxFromRow);
  }

  async claimOutbox(owner: string, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const claimed = await this.claimInPages<OutboxRow, OutboxEntry>('claimOutbox', owner, leaseMs, limit, outboxFromRow);
    return claimed.sort((a, b) => a.createdAt - b.createdAt || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0) || a.version - b.version);
  }

  async renewOutboxClaims(owner: string, leaseMs: number, keys: OutboxKey[]): Promise<OutboxKey[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.write('renewOutboxClaims', [owner, Date.now() + leaseMs, keys.map((k) => urlKey(k.topic)), keys.map((k) => k.version)]);
    return (rows as Pick<OutboxRow, 'topic' | 'version'>[]).map((r) => ({ topic: r.topic, version: r.version }));
  }

  /**
   * Holds a session advisory lock on (schema, url) while fn runs, on a connection of a pool of
   * its own: fn uses the main pool, and taking both from one pool could exhaust it.
   */
  async withTopicLock<T>(url: string, fn: () => Promise<T>): Promise<T> {
    // A connection that may still hold the lock is closed (which releases it), not reused.
    return checkedOut(
      (this.lockPool ??= this.newLockPool()),
      async (client, broke) => {
        const locked = client.query('SELECT pg_advisory_lock(hashtext(current_schema()), hashtext($1))', [url]);
        let end!: (e: Error) => void;
        const ended = new Promise<never>((_, reject) => (end = reject));
        ended.catch((e: Error) => {
          // Still waiting, or granted later: closed, not reused (checkedOut).
          locked.catch(() => undefined);
          broke(e);
        });
        this.lockWaits.add(end);
        try {
          await Promise.race([locked, ended]);
        } finally {
          this.lockWaits.delete(end);
        }
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext(current_schema()), hashtext($1))', [url]).catch(broke);
        }
      },
      this.lockSlotWait,
    );
  }

  /**
   * Runs fn if no other process holds the sweep's session advisory lock, taken without waiting
   * on a connection of the lock pool (fn uses the main pool); one that dies releases it.
   */
  async withSweepLock<T>(fn: () => Promise<T>): Promise<T | undefined> {
    return checkedOut(
      (this.lockPool ??= this.newLockPool()),
      async (client, broke) => {
        const { rows } = await client.query<{ locked: boolean }>(SQL.trySweepLock);
        if (!rows[0]?.locked) return undefined;
        try {
          return await fn();
        } finally {
          await client.query(SQL.sweepUnlock).catch(broke);
        }
      },
      this.lockSlotWait,
    );
  }

  private newLockPool(): pg.Pool {
    this.requirePool();
    const pool = new pg.Pool({
      connectionString: this.url,
      max: this.opts.poolSize ?? 10,
      application_name: 'pushbutton-locks',
      types: pgTypes(),
      // Waiting for a connection is waiting for a turn at the lock. Both waits are bounded: a
      // process that holds a lock and stops (SIGSTOP, a machine that hangs; the database sees its
      // connection alive until TCP keepalive gives up, hours later) made every other process's
      // refresh of that topic wait for ever, and, once those waits held every lock connection,
      // of every topic. Past the bound the refresh fails (a ping answers as for a read error).
      connectionTimeoutMillis: this.lockWaitMs,
      // Its statements wait for the lock (lock_timeout), then for the answer.
      ...silenceBounds(this.lockWaitMs + this.queryTimeoutMs),
      // Before the connection's first use, as the main pool's statement_timeout: sent from the
      // 'connect' event it raced the lock statement of the caller given the connection.
      onConnect: async (client) => {
        await client.query(`SET lock_timeout = ${this.lockWaitMs}; ${KEEP_WHILE_IDLE}`);
      },
    });
    pool.on('error', (e) => this.opts.onError?.(e));
    return pool;
  }

  async getOutboxBody(topic: string, version: number): Promise<Buffer | undefined> {
    return (await this.read<{ body: Buffer }>('getOutboxBody', [urlKey(topic), version]))[0]?.body;
  }

  async outboxBodySize(topic: string, version: number): Promise<number | undefined> {
    return (await this.read<{ size: number }>('outboxBodySize', [urlKey(topic), version]))[0]?.size;
  }

  async deleteOutbox(topic: string, version: number): Promise<void> {
    await this.write('deleteOutbox', [urlKey(topic), version]);
  }

  async listOutbox(): Promise<OutboxEntry[]> {
    return (await this.read<OutboxRow>('listOutbox', [])).map(outboxFromRow);
  }

  // --- pending verifications ------------------------------------------------------------------

  async putVerification(v: PendingVerification): Promise<void> {
    await this.upsertVerification(v);
  }

  upsertVerification(v: PendingVerification): Promise<UpsertResult> {
    return this.upsert('putVerification', verificationValues(v));
  }

  async supersedeOlderVerifications(v: PendingVerification): Promise<boolean> {
    const row = (await this.write('supersedeOlderVerifications', [v.id, v.topic, v.callback])).rows[0] as { pending: boolean } | undefined;
    return row?.pending === true;
  }

  async hasVerification(id: string): Promise<boolean> {
    return (await this.read<{ pending: boolean }>('hasVerification', [id]))[0]?.pending === true;
  }

  async deleteVerification(id: string): Promise<void> {
    await this.write('deleteVerification', [id]);
  }

  async listVerifications(): Promise<PendingVerification[]> {
    return (await this.read<VerificationRow>('listVerifications', [])).map(verificationFromRow);
  }

  async claimVerifications(owner: string, leaseMs: number, limit: number): Promise<PendingVerification[]> {
    const claimed = await this.claimInPages<VerificationRow, PendingVerification>('claimVerifications', owner, leaseMs, limit, verificationFromRow);
    return claimed.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async renewVerificationClaims(owner: string, leaseMs: number, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.write('renewVerificationClaims', [owner, Date.now() + leaseMs, ids]);
  }

  async releaseClaims(owner: string): Promise<void> {
    await this.write('releaseOutboxClaims', [owner]);
    await this.write('releaseVerificationClaims', [owner]);
  }

  // --- pending reads -------------------------------------------------------------------------

  async putPendingReads(topics: string[], since: number): Promise<string[]> {
    const unique = [...new Set(topics)];
    if (unique.length === 0) return [];
    const { rows } = await this.write('putPendingReads', [unique.map(keyOf), unique, since]);
    return (rows as { topic: string }[]).map((r) => r.topic);
  }

  upsertPendingRead(read: PendingRead): Promise<UpsertResult> {
    return this.upsert('upsertPendingRead', [keyOf(read.topic), read.topic, read.since]);
  }

  async deletePendingRead(topic: string, readSince: number): Promise<void> {
    await this.write('deletePendingRead', [keyOf(topic), readSince]);
  }

  async listPendingReads(): Promise<PendingRead[]> {
    return this.read<PendingRead>('listPendingReads', []);
  }

  // --- sites ---------------------------------------------------------------------------------

  async getSite(url: string): Promise<Site | undefined> {
    const row = (await this.read<SiteRow>('getSite', [urlKey(url)]))[0];
    return row && siteFromRow(row);
  }

  async putSite(site: Site): Promise<void> {
    await this.upsert('putSite', [urlKey(site.url), site.url, site.feeds, site.hubs, site.self ?? null, site.whenChecked, site.whenCreated]);
  }

  async deleteStaleSites(before: number, limit: number): Promise<number> {
    return (await this.write('deleteStaleSites', [before, limit])).rowCount ?? 0;
  }

  async trimSites(keep: number): Promise<number> {
    return (await this.write('trimSites', [keep])).rowCount ?? 0;
  }

  // --- the rest ------------------------------------------------------------------------------

  async counts(): Promise<StoreCounts> {
    const row = (await this.read<{ topics: number; by_protocol: Record<string, number> }>('counts', []))[0]!;
    let subscriptions = 0;
    for (const n of Object.values(row.by_protocol)) subscriptions += n;
    return { topics: row.topics, subscriptions, byProtocol: row.by_protocol };
  }

  async countSubscriptions(filter: { topic: string } | { callbackHost: string }): Promise<number> {
    const rows =
      'topic' in filter
        ? await this.read<{ n: number }>('countOfTopic', [urlKey(filter.topic)])
        : await this.read<{ n: number }>('countOfHost', [hostKey(filter.callbackHost)]);
    return rows[0]!.n;
  }

  async hasLiveSubscription(topic: string, { now, maxConsecutiveErrors }: Omit<ExpiryFilter, 'limit'>): Promise<boolean> {
    const rows = await this.read<{ live: boolean }>('liveOfTopic', [urlKey(topic), now, maxConsecutiveErrors]);
    return rows[0]!.live;
  }

  async subscriptionLimitReached(topic: string, callback: string, limits: SubscriptionLimits): Promise<SubscriptionLimit | null> {
    const rows = await this.read<{ refused: string | null }>('subscriptionLimitReached', [
      keyOf(topic),
      keyOf(callback),
      limits.perTopic,
      callbackHost(callback),
      limits.perCallbackHost,
    ]);
    return asLimit(rows[0]?.refused);
  }

  /**
   * One call of migration 5's function, which takes transaction-scoped advisory locks on the
   * topic and on the callback host, reads the counts, and writes: a subscribe through another
   * process waits for this one's commit, and then counts this row too.
   */
  async putSubscriptionWithinLimits(sub: Subscription, limits: SubscriptionLimits): Promise<SubscriptionLimit | null> {
    return refusedBy(await this.write('putSubscriptionWithinLimits', withinLimits(sub, limits)));
  }

  putVerifiedSubscription(sub: Subscription, limits: SubscriptionLimits, requestId: string): Promise<SubscriptionLimit | 'superseded' | null> {
    // The request's row is held (FOR SHARE) until the subscription is written: a newer request
    // of the pair verified meanwhile, whose supersedeOlderVerifications deletes that row, waits
    // for this commit and applies after it. Checked without the hold, a subscribe waiting on the
    // limits' locks could be written after a newer unsubscribe had been applied.
    return this.track(
      this.retrying(() =>
        this.transaction(async (c) => {
          const held = await c.query(statement('holdVerification', [requestId]));
          if (held.rowCount === 0) return 'superseded' as const;
          return refusedBy(await c.query(statement('putSubscriptionWithinLimits', withinLimits(sub, limits))));
        }),
      ),
    );
  }

  async clear(): Promise<void> {
    await this.track(
      this.retrying(() =>
        this.transaction(async (c) => {
          await c.query(`LOCK TABLE ${CLEAR_TABLES.join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
          for (const table of CLEAR_TABLES) await c.query(`DELETE FROM ${table}`);
        }),
      ),
    );
  }

  // --- internals -------------------------------------------------------------------------------

  private requirePool(): pg.Pool {
    if (!this.pool) throw new Error('PgStore: open() first');
    return this.pool;
  }

  /** Runs a named statement (prepared once per connection). */
  private query<R extends pg.QueryResultRow>(name: SqlName, values: unknown[]): Promise<pg.QueryResult<R>> {
    return checkedOut(this.requirePool(), (client) => client.query<R>(statement(name, values)), this.storeSlotWait);
  }

  /** As query, on a connection that holds a transaction. */

  private async read<R extends pg.QueryResultRow>(name: SqlName, values: unknown[]): Promise<R[]> {
    return (await this.query<R>(name, values)).rows;
  }

  /**
   * A read of many rows, through a cursor PAGE_ROWS at a time, each page made into records as
   * it comes: read at once, a publish to a topic of 100,000 subscribers held the event loop
   * ~200 ms while its rows were made into records, and answered nothing else meanwhile. One
   * statement's cursor, so one snapshot: the same rows as the single read gave.
   */
  private async readInPages<R extends pg.QueryResultRow, T>(name: SqlName, values: unknown[], record: (row: R) => T): Promise<T[]> {
    return this.transaction(async (client) => {
      await client.query({ text: `DECLARE pushbutton_page NO SCROLL CURSOR FOR ${SQL[name]}`, values });
      const records: T[] = [];
      for (;;) {
        const { rows } = await client.query<R>(`FETCH ${PAGE_ROWS} FROM pushbutton_page`);
        for (const row of rows) records.push(record(row));
        if (rows.length < PAGE_ROWS) return records;
      }
    });
  }

  /**
   * Claims up to `limit` rows, PAGE_ROWS per statement, each page made into records as it comes:
   * a start claims every pending verification and outbox entry at once, and 20,000
   * verifications claimed by one UPDATE held the event loop ~150 ms. Each row is claimed on its
   * own terms anyway (SKIP LOCKED), so claiming them in several statements changes nothing.
   */
  private async claimInPages<R extends pg.QueryResultRow, T>(name: 'claimOutbox' | 'claimVerifications', owner: string, leaseMs: number, limit: number, record: (row: R) => T): Promise<T[]> {
    const records: T[] = [];
    // One `now` for every page: a row this call claimed has claimed_until = now + leaseMs, so a
    // later page, asking for claims that ended before `now`, never takes it again.
    const now = Date.now();
    while (records.length < limit) {
      const page = Math.min(PAGE_ROWS, limit - records.length);
      let rows: R[];
      try {
        ({ rows } = await this.track(this.retrying(() => this.query<R>(name, [owner, now + leaseMs, now, page]))));
      } catch (e) {
        // The pages before are committed claims of this owner: thrown away with the error, they
        // sat claimed by nobody who would work on them until their lease ran out. Handed back,
        // they are worked on; the rest is still unclaimed, for the next takeover (whose own
        // statement meets the failure again, if it lasts, and says so).
        if (records.length === 0) throw e;
        break;
      }
      for (const row of rows) records.push(record(row));
      if (rows.length < page) break;
    }
    return records;
  }

  /** A write (retried if the database chose it as a deadlock victim), tracked until it commits. */
  private write(name: SqlName, values: unknown[]): Promise<pg.QueryResult> {
    return this.track(this.retrying(() => this.query(name, values)));
  }

  /** Tracked until it settles, so that flush() and close() can wait for it. */
  private track<T>(run: Promise<T>): Promise<T> {
    this.inFlight.add(run);
    const untrack = (): void => void this.inFlight.delete(run);
    run.then(untrack, untrack);
    return run;
  }

  /** A failed statement was undone whole (recordDeliveries' increments too), so running it again is safe. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= ATTEMPTS || !RETRYABLE.has((e as { code?: string }).code ?? '')) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    // A connection that could not even roll back is closed, not handed to the next caller.
    return checkedOut(
      this.requirePool(),
      async (client, broke) => {
        try {
          await client.query('BEGIN');
          const result = await fn(client);
          await client.query('COMMIT');
          return result;
        } catch (e) {
          // Behind a statement left unanswered, a ROLLBACK would only wait out a second timeout
          // holding the connection; closing it (checkedOut does) ends the transaction on the server.
          if (isReadTimeout(e)) throw e;
          await client.query('ROLLBACK').catch(broke);
          throw e;
        }
      },
      this.storeSlotWait,
    );
  }

  private async upsert(name: SqlName, values: unknown[]): Promise<UpsertResult> {
    const result = await this.write(name, values);
    const row = result.rows[0] as { inserted: boolean } | undefined;
    return row === undefined ? 'unchanged' : row.inserted ? 'inserted' : 'updated';
  }
}

/** too_many_connections: the server's max_connections reached, or the role's or database's CONNECTION LIMIT. */
const NO_SLOT = '53300';

/** How long checkedOut asks again for a connection the server refused for want of a slot. */
interface SlotWait {
  ms: number;
  /**
   * Also while the pool holds no connection. Not for the store pool: topic-lock connections may
   * hold the last slots while their refreshes wait for it, and two refreshes holding them each
   * waited the whole DATABASE_QUERY_TIMEOUT_MS, every request of the hub stalled behind them,
   * then failed anyway. The lock pool may: a slot the store pool holds comes back once idle.
   */
  whileHoldingNone: boolean;
}

const NO_SLOT_WAIT: SlotWait = { ms: 0, whileHoldingNone: false };

/**
 * A connection of `pool`. One the server refuses for want of a slot is asked for again, 10 ms
 * later and doubling up to 250 ms, for at most `waitMs`: the pool opens a connection whenever
 * none is idle and it holds fewer than DATABASE_POOL_SIZE, so on a server with fewer slots left
 * (a small plan's 20 connections, several processes) every request of a burst beyond them
 * failed at once with "too many connections", while the connections the pool held would have
 * served it a moment later. Asked again, the pool hands it one of those as soon as one is back.
 */
async function connectWaiting(pool: pg.Pool, wait: SlotWait): Promise<pg.PoolClient> {
  const until = performance.now() + wait.ms;
  for (let delay = 10; ; delay = Math.min(2 * delay, 250)) {
    try {
      return await pool.connect();
    } catch (e) {
      if ((e as { code?: unknown }).code !== NO_SLOT || (pool.totalCount === 0 && !wait.whileHoldingNone) || performance.now() + delay > until) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Runs fn on a connection checked out of `pool`, then gives it back, or closes it if it broke
 * (fn calls `broke`, a statement timed out, or the connection failed meanwhile). pg-pool listens for a connection's
 * errors only while it sits idle: one lost while checked out (the server restarted, the session
 * was terminated) emitted 'error' with no listener, which ends the process. Listened to here, the
 * loss fails the query running on it instead, and the connection is not reused.
 */
async function checkedOut<T>(pool: pg.Pool, fn: (client: pg.PoolClient, broke: (e: Error) => void) => Promise<T>, slotWait = NO_SLOT_WAIT): Promise<T> {
  const client = await connectWaiting(pool, slotWait);
  let broken: Error | undefined;
  const broke = (e: Error): void => {
    broken ??= e;
  };
  client.on('error', broke);
  try {
    return await fn(client, broke);
  } catch (e) {
    // A statement that timed out unanswered is still the connection's, and its answer may come
    // yet: a pg_advisory_lock granted then, on a connection back in the pool, held the topic's
    // lock for good.
    if (isReadTimeout(e)) broke(e);
    throw e;
  } finally {
    client.off('error', broke);
    client.release(broken);
  }
}
