// The only reader of the environment. Every variable is parsed and validated here, once,
// so that a bad value stops start-up with a message naming the variable instead of
// surfacing later as odd behaviour.
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { lookupSlots } from './lookups.js';
import { withoutTrailingSlashes } from './model.js';

export type SignatureAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /**
   * The embedded store compacts at most this long after a change, so a record removed (an ended
   * subscription's callback and secret) leaves DATA_DIR's files within it.
   */
  compactIntervalMs: number;
  /** PostgreSQL connection URL; unset = the embedded store in dataDir. */
  databaseUrl: string | undefined;
  /** Most PostgreSQL connections the hub opens at once. */
  databasePoolSize: number;
  /** Longest wait for another process's lock on a topic (several processes on one database). */
  databaseLockWaitMs: number;
  /** Longest a statement may go unanswered before it fails and its connection is closed. */
  databaseQueryTimeoutMs: number;
  /** How long a hub process's claim on an outbox entry holds without renewal (several processes on one database). */
  outboxClaimLeaseMs: number;
  /** Age past which a pending read is taken for orphaned and read by whichever process finds it (see Sweeper.orphanedReads). */
  pendingReadAdoptAfterMs: number;
  /** The hub's own base URL, without a trailing slash. */
  publicUrl: string;
  /** False when PUBLIC_URL was not set: the URL is then derived from where the hub listens. */
  publicUrlSet: boolean;
  requestTimeoutMs: number;
  /** WebSub verification GETs, denials and content deliveries: subscribers do their work before they answer. */
  websubTimeoutMs: number;
  /** Name lookups run at once: libuv's share of its thread pool (UV_THREADPOOL_SIZE, Node's own variable). */
  lookupSlots: number;
  rssCloudLeaseSeconds: number;
  maxConsecutiveErrors: number;
  feedsRetentionDays: number;
  /** The most topics nobody subscribes to (and, apart, sites) kept; 0 = no bound but retention. */
  maxUnfollowedTopics: number;
  /** Bytes of content versions one hub process holds for delivery before it gives up the oldest; 0 = no bound. */
  outboxMaxBytes: number;
  minSecsBetweenPings: number;
  /** Proxy addresses whose X-Forwarded-For is believed; empty = trust nobody. */
  trustProxy: string[];
  fetchAllowCidrs: string[];
  callbackAllowCidrs: string[];
  enableTestApi: boolean;
  maxResponseBytes: number;
  /** Bodies at least this big are compared (MD5, entry diff) and signed on a worker thread; 0 = all on the main thread. */
  bodyThreadMinBytes: number;
  deliveryConcurrency: number;
  /** How long a delivery may go unanswered before it waits on without its DELIVERY_CONCURRENCY slot. */
  deliveryLingerAfterMs: number;
  /** Deliveries waiting on at once without a DELIVERY_CONCURRENCY slot. */
  deliveryLingering: number;
  fetchConcurrency: number;
  /**
   * Reads of one feed host (host:port, as DELIVERY_PER_HOST keys hosts) in flight at once. 8, as
   * DELIVERY_PER_HOST and a little over a browser's 6 per host: polite to a slow server (a blog
   * host pinging 500 feeds answering in 300 ms gets 8 reads at a time, ~26 a second, where it got
   * 64 at once), fast enough for a fast one (at 50 ms a read, 160 a second), and with the default
   * FETCH_CONCURRENCY it takes 16 hosts bursting at once to fill every slot. A read waits in
   * its host's line as long as it takes (lib/fetch-slots.ts WAITING_PER_HOST bounds the line).
   */
  fetchPerHost: number;
  websubLeaseDefaultSeconds: number;
  websubLeaseMinSeconds: number;
  websubLeaseMaxSeconds: number;
  websubSignatureAlgorithm: SignatureAlgorithm;
  websubMaxAttempts: number;
  websubVerifyAttempts: number;
  /** How long after its 202 a WebSub request's first verification GET goes out. */
  websubVerifyDelayMs: number;
  websubMaxPendingVerifications: number;
  websubVerifyConcurrency: number;
  websubRetryBaseMs: number;
  websubRetryMaxMs: number;
  /** Origin (scheme://host[:port]) → shared secret for authenticated fat pings. */
  publisherSecrets: Map<string, string>;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  deliveryPerHost: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  breakerMaxCooldownMs: number;
  pollEnabled: boolean;
  pollMinSeconds: number;
  pollMaxSeconds: number;
  pollDefaultSeconds: number;
  pollConcurrency: number;
  restMaxBodyBytes: number;
  rpc2MaxBodyBytes: number;
  websubMaxBodyBytes: number;
  maxUrlLength: number;
  maxUrlsPerRequest: number;
  maxUrlsPerPublish: number;
  maxSubscriptionsPerTopic: number;
  maxSubscriptionsPerCallbackHost: number;
  xmlrpcMaxDepth: number;
  xmlrpcMaxElements: number;
  /** Requests per minute per client address on each endpoint; 0 = no limit. */
  rateLimitPerMinute: number;
  rateLimitBurst: number;
  /** The least time between two fetches of one topic, whatever asks for them. */
  fetchMinIntervalMs: number;
  /** How long a site's discovered feeds are trusted before its page is read again; 0 = every ping. */
  siteRecheckSeconds: number;
  serverHeadersTimeoutMs: number;
  serverRequestTimeoutMs: number;
  /** How long an idle kept-alive connection stays open (longer than a load balancer's idle timeout). */
  serverKeepAliveTimeoutMs: number;
  /** A response that makes no progress this long (its client stopped reading) is cut. */
  serverResponseTimeoutMs: number;
  /** Bearer token for operator actions that change state; unset = those actions are off. */
  adminToken: string | undefined;
  sseHeartbeatMs: number;
  sseBacklog: number;
  sseMaxPerClient: number;
  /** Open streams (/stream and /events) across all clients; past it a new one is refused (503). */
  sseMaxStreams: number;
  sseMaxTopicsPerStream: number;
  /** Bytes of events a stream's connection is handed before its client has read them; later events wait (see routes/stream.ts). */
  sseMaxBufferedBytes: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * The longest wait Node's timers take: setTimeout and setInterval run a longer one after 1 ms, so
 * a wait read from the environment beyond it became a tight loop (an SSE_HEARTBEAT_MS of ~35
 * days sent heartbeats every millisecond; a WEBSUB_RETRY_MAX_MS past ~25 days retried at once
 * a subscriber whose Retry-After asked for that long).
 */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The longest lease granted, 100 years. A lease of "9999999999999" (meant as "never expires")
 * put its expiry past the last date JavaScript can show, and /subscription, the subscriber's
 * own view, answered 500 for it.
 */
const MAX_LEASE_SECONDS = 100 * 365 * 86400;

function int(env: Env, name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = raw(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new ConfigError(name, `expected a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return dflt;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(name, `expected true or false, got "${v}"`);
}

function cidrList(env: Env, name: string): string[] {
  const v = raw(env, name);
  if (v === undefined) return [];
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  const probe = new BlockList();
  for (const item of items) {
    const [addr, bits, extra] = item.split('/');
    const family = addr ? isIP(addr) : 0;
    // Digits only: Number('') is 0, so "10.0.0.0/" (a prefix left off) was read as /0 and
    // allowed (or trusted) every address.
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    const maxBits = family === 6 ? 128 : 32;
    if (!addr || family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > maxBits) {
      throw new ConfigError(name, `"${item}" is not an address or CIDR block`);
    }
    probe.addSubnet(addr, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return items;
}

function trustProxy(env: Env, name: string): string[] {
  const v = raw(env, name);
  if (v === undefined || /^(0|false|no|off)$/i.test(v)) return [];
  if (/^(1|true|yes|on)$/i.test(v)) {
    throw new ConfigError(name, 'name the proxy addresses or CIDR blocks to trust, not "true": trusting every hop lets anyone forge their address');
  }
  return cidrList(env, name);
}

function url(env: Env, name: string, dflt: string): string {
  const v = raw(env, name) ?? dflt;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, `"${v}" is not an absolute URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(name, 'must be an http or https URL');
  // The raw text, not parsed.search/hash: those are empty for a bare "?" or "#", which then
  // came before every path appended to the URL ("https://hub.example/?/websub").
  if (/[?#]/.test(v)) throw new ConfigError(name, 'must not have a query or fragment');
  return withoutTrailingSlashes(v);
}

function algorithm(env: Env, name: string): SignatureAlgorithm {
  const v = raw(env, name) ?? 'sha256';
  if (v === 'sha1' || v === 'sha256' || v === 'sha384' || v === 'sha512') return v;
  throw new ConfigError(name, `must be one of sha1, sha256, sha384, sha512, got "${v}"`);
}

function publisherSecrets(env: Env, name: string): Map<string, string> {
  const v = raw(env, name);
  const map = new Map<string, string>();
  if (v === undefined) return map;
  // "https://a.example=secret1,https://b.example=secret2"; the secret is after the first "=".
  for (const item of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) throw new ConfigError(name, 'expected origin=secret pairs separated by commas');
    let parsed: URL | undefined;
    try {
      parsed = new URL(item.slice(0, eq).trim());
    } catch {
      // reported below
    }
    // Topics are http(s): "blog.example:8080=…" (no scheme) parses, with the origin "null",
    // and its secret matched no topic.
    if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') throw new ConfigError(name, `"${item.slice(0, eq).trim()}" is not an http or https origin`);
    // "origin = secret" is how people write pairs; a secret taken with its space refused every fat ping.
    const secret = item.slice(eq + 1).trim();
    if (secret === '') throw new ConfigError(name, 'expected origin=secret pairs separated by commas');
    map.set(parsed.origin, secret);
  }
  return map;
}

function logLevel(env: Env, name: string): Config['logLevel'] {
  const v = raw(env, name) ?? 'info';
  if (v === 'debug' || v === 'info' || v === 'warn' || v === 'error' || v === 'silent') return v;
  throw new ConfigError(name, `must be one of debug, info, warn, error, silent, got "${v}"`);
}

function pollBounds(env: Env): Pick<Config, 'pollEnabled' | 'pollMinSeconds' | 'pollMaxSeconds' | 'pollDefaultSeconds' | 'pollConcurrency'> {
  const pollMinSeconds = int(env, 'POLL_MIN_SECONDS', 60, 1);
  const pollMaxSeconds = int(env, 'POLL_MAX_SECONDS', 86400, 1);
  if (pollMinSeconds > pollMaxSeconds) throw new ConfigError('POLL_MIN_SECONDS', 'must not exceed POLL_MAX_SECONDS');
  const pollDefaultSeconds = Math.min(pollMaxSeconds, Math.max(pollMinSeconds, int(env, 'POLL_DEFAULT_SECONDS', 900, 1)));
  // Polls are mostly waiting on publishers: 10,000 topics at the default interval are 11 reads a
  // second, which 8 at once keep up with while reads average under ~700 ms.
  const pollConcurrency = int(env, 'POLL_CONCURRENCY', 8, 1, 1000);
  return { pollEnabled: bool(env, 'POLL_ENABLED', true), pollMinSeconds, pollMaxSeconds, pollDefaultSeconds, pollConcurrency };
}

function limits(env: Env): Pick<Config, LimitKeys> {
  const body = int(env, 'MAX_BODY_BYTES', 1024 * 1024, 1024);
  return {
    restMaxBodyBytes: int(env, 'REST_MAX_BODY_BYTES', Math.min(body, 64 * 1024), 1024),
    // The largest call the hub accepts, a pleaseNotify of 25 URLs of 2,048 characters, is ~53 KB
    // (a real one ~5 KB, a weblogUpdates ping under 1 KB). At 256 KB, one call within every other
    // limit cost up to ~70 ms of the hub's one thread to parse; at 64 KB, under ~10 ms.
    rpc2MaxBodyBytes: int(env, 'RPC2_MAX_BODY_BYTES', Math.min(body, 64 * 1024), 1024),
    websubMaxBodyBytes: int(env, 'WEBSUB_MAX_BODY_BYTES', body, 1024),
    maxUrlLength: int(env, 'MAX_URL_LENGTH', 2048, 64),
    maxUrlsPerRequest: int(env, 'MAX_URLS_PER_REQUEST', 25, 1),
    // Publishers name every feed a change is in, in one request: Google's Python publisher up to
    // 100, the WordPress WebSub plugin 2 × (site + tags + categories + author). Each is one read,
    // as for a publish of 25, and no subscription is made.
    maxUrlsPerPublish: int(env, 'MAX_URLS_PER_PUBLISH', 100, 1),
    maxSubscriptionsPerTopic: int(env, 'MAX_SUBSCRIPTIONS_PER_TOPIC', 100_000, 1),
    maxSubscriptionsPerCallbackHost: int(env, 'MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST', 10_000, 1),
    xmlrpcMaxDepth: int(env, 'XMLRPC_MAX_DEPTH', 32, 2, 1000),
    xmlrpcMaxElements: int(env, 'XMLRPC_MAX_ELEMENTS', 1000, 10),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 600, 0),
    rateLimitBurst: int(env, 'RATE_LIMIT_BURST', 60, 1),
    fetchMinIntervalMs: int(env, 'FETCH_MIN_INTERVAL_MS', 1000, 0, MAX_TIMER_MS),
    serverHeadersTimeoutMs: int(env, 'SERVER_HEADERS_TIMEOUT_MS', 10_000, 100),
    serverRequestTimeoutMs: int(env, 'SERVER_REQUEST_TIMEOUT_MS', 30_000, 100),
    serverKeepAliveTimeoutMs: int(env, 'SERVER_KEEPALIVE_TIMEOUT_MS', 65_000, 100),
    serverResponseTimeoutMs: int(env, 'SERVER_RESPONSE_TIMEOUT_MS', 60_000, 100),
  };
}

type LimitKeys =
  | 'restMaxBodyBytes'
  | 'rpc2MaxBodyBytes'
  | 'websubMaxBodyBytes'
  | 'maxUrlLength'
  | 'maxUrlsPerRequest'
  | 'maxUrlsPerPublish'
  | 'maxSubscriptionsPerTopic'
  | 'maxSubscriptionsPerCallbackHost'
  | 'xmlrpcMaxDepth'
  | 'xmlrpcMaxElements'
  | 'rateLimitPerMinute'
  | 'rateLimitBurst'
  | 'fetchMinIntervalMs'
  | 'serverHeadersTimeoutMs'
  | 'serverRequestTimeoutMs'
  | 'serverKeepAliveTimeoutMs'
  | 'serverResponseTimeoutMs';

/**
 * True for libpq's list of hosts, in the authority or in ?host= / ?hostaddr=. The host is what
 * follows the authority's last "@": a comma before it is the user's or the password's (URLs may
 * carry one unencoded), and a generated password holding one was refused as a list of hosts.
 */
function namesSeveralHosts(v: string): boolean {
  const authority = /^postgres(?:ql)?:\/\/([^/?#]*)/i.exec(v)?.[1];
  if (authority !== undefined && authority.slice(authority.lastIndexOf('@') + 1).includes(',')) return true;
  return /[?&]host(addr)?=[^&#]*(,|%2C)/i.test(v);
}

function databaseUrl(env: Env, name: string): string | undefined {
  const v = raw(env, name);
  if (v === undefined) return undefined;
  // libpq's list of hosts to try in turn (postgres://db1,db2/pushbutton?target_session_attrs=
  // read-write, as Patroni documents) was refused as "not a URL", or in ?host= looked up as one
  // name ("getaddrinfo ENOTFOUND db1,db2"): the driver connects to one host only.
  if (namesSeveralHosts(v)) {
    throw new ConfigError(
      name,
      'names several hosts (libpq\'s list to fail over along), and the hub connects to one: name the address that always leads to the writable server (a managed service\'s writer endpoint, a Patroni or HAProxy address)',
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, 'is not a URL (expected postgres://user:password@host:port/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(name, `must be a postgres:// or postgresql:// URL, got "${parsed.protocol}"`);
  }
  // PGSSLMODE, libpq's (psql's) variable, for a URL that names no sslmode: read by the driver
  // itself, it meant what the URL's sslmode once did there (`require` checked the certificate
  // and refused a managed service's own CA; `prefer` failed on a server without TLS), so a hub
  // given the environment psql connects with did not start. In the URL it is read as libpq reads
  // it (see driverUrl in store/pg-store.ts).
  const own = parsed.searchParams.get('sslmode');
  // libpq refuses a mode it does not know; node-postgres took any (and `allow`) for verify-full.
  if (own !== null && !PG_SSL_MODES.includes(own)) throw new ConfigError(name, `names sslmode "${own}": use one of ${PG_SSL_MODES.join(', ')}`);
  const sslmode = raw(env, 'PGSSLMODE');
  if (sslmode === undefined || own !== null) return v;
  if (!PG_SSL_MODES.includes(sslmode)) throw new ConfigError('PGSSLMODE', `must be one of ${PG_SSL_MODES.join(', ')}, got "${sslmode}"`);
  const joint = !v.includes('?') ? '?' : /[?&]$/.test(v) ? '' : '&';
  return `${v}${joint}sslmode=${sslmode}`;
}

/** The sslmodes the hub reads as libpq does, and node-postgres's own `no-verify` (libpq's `allow` is none of them). */
const PG_SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

function dataDir(env: Env, name: string): string {
  const v = raw(env, name) ?? './data';
  // Nothing expands "~" in a value from a systemd unit, a container's environment or an .env
  // file: "~/pushbutton" was a directory named "~" under the working directory, and the hub
  // started on an empty store wherever it was run from.
  if (v.startsWith('~')) throw new ConfigError(name, `"~" is not expanded here: write the full path, not "${v}"`);
  return path.resolve(v);
}

function listenHost(env: Env, name: string): string {
  const v = raw(env, name) ?? '0.0.0.0';
  // Checked here: "0.0.0.0:5337" (a port written in) or "http://0.0.0.0" otherwise stopped
  // start-up blaming PUBLIC_URL, built from it, or failing to resolve it, naming no variable.
  if (isIP(v) === 0 && !/^[\w-]+(\.[\w-]+)*\.?$/.test(v)) throw new ConfigError(name, `expected an address or a host name (the port is PORT), got "${v}"`);
  return v;
}

/**
 * A first wait and the longest it doubles to. Both given, a first above the longest is refused:
 * each wait was the longest then, and WEBSUB_RETRY_MAX_MS=3600 with a base of 5000 (seconds
 * written for ms) retried a failing subscriber every 3.6 s unnoticed. The longest given alone
 * is a bound on every wait (BREAKER_MAX_COOLDOWN_MS=10000: never pause a host longer than 10 s),
 * so the default first wait comes down to it, as it always did.
 */
function firstAndLongest(env: Env, [firstName, firstDefault]: [string, number], [longestName, longestDefault]: [string, number]): [number, number] {
  const longest = int(env, longestName, longestDefault, 1, MAX_TIMER_MS);
  const first = int(env, firstName, firstDefault, 1, MAX_TIMER_MS);
  if (raw(env, firstName) === undefined) return [Math.min(first, longest), longest];
  if (first > longest) throw new ConfigError(firstName, `must not exceed ${longestName}`);
  return [first, longest];
}

function adminToken(env: Env, name: string): string | undefined {
  const v = raw(env, name);
  if (v !== undefined && v.length < 16) throw new ConfigError(name, 'must be at least 16 characters long');
  return v;
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'PORT', 5337, 0, 65535);
  const host = listenHost(env, 'HOST');
  const publicHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const leaseMin = int(env, 'WEBSUB_LEASE_MIN_SECONDS', 3600, 1, MAX_LEASE_SECONDS);
  const leaseMax = int(env, 'WEBSUB_LEASE_MAX_SECONDS', 30 * 86400, 1, MAX_LEASE_SECONDS);
  if (leaseMin > leaseMax) throw new ConfigError('WEBSUB_LEASE_MIN_SECONDS', 'must not exceed WEBSUB_LEASE_MAX_SECONDS');
  const leaseDefault = int(env, 'WEBSUB_LEASE_SECONDS', 10 * 86400, 1);
  const [retryBaseMs, retryMaxMs] = firstAndLongest(env, ['WEBSUB_RETRY_BASE_MS', 5000], ['WEBSUB_RETRY_MAX_MS', 3600_000]);
  const [breakerCooldownMs, breakerMaxCooldownMs] = firstAndLongest(env, ['BREAKER_COOLDOWN_MS', 30_000], ['BREAKER_MAX_COOLDOWN_MS', 600_000]);
  return {
    port,
    host,
    dataDir: dataDir(env, 'DATA_DIR'),
    compactIntervalMs: int(env, 'COMPACT_INTERVAL_MS', 3600_000, 100, MAX_TIMER_MS),
    databaseUrl: databaseUrl(env, 'DATABASE_URL'),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    databaseLockWaitMs: int(env, 'DATABASE_LOCK_WAIT_MS', 30_000, 100, 3600_000),
    databaseQueryTimeoutMs: int(env, 'DATABASE_QUERY_TIMEOUT_MS', 30_000, 100, 3600_000),
    outboxClaimLeaseMs: int(env, 'OUTBOX_CLAIM_LEASE_MS', 30_000, 300, 3600_000),
    pendingReadAdoptAfterMs: int(env, 'PENDING_READ_ADOPT_AFTER_MS', 600_000, 100, 24 * 3600_000),
    publicUrl: url(env, 'PUBLIC_URL', `http://${publicHost}:${port}`),
    publicUrlSet: raw(env, 'PUBLIC_URL') !== undefined,
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 4000, 1, 600_000),
    websubTimeoutMs: int(env, 'WEBSUB_TIMEOUT_MS', 15_000, 1, 600_000),
    lookupSlots: lookupSlots(raw(env, 'UV_THREADPOOL_SIZE')),
    rssCloudLeaseSeconds: int(env, 'RSSCLOUD_LEASE_SECONDS', 90000, 1, MAX_LEASE_SECONDS),
    maxConsecutiveErrors: int(env, 'MAX_CONSECUTIVE_ERRORS', 3, 1),
    feedsRetentionDays: int(env, 'FEEDS_RETENTION_DAYS', 7, 0),
    maxUnfollowedTopics: int(env, 'MAX_UNFOLLOWED_TOPICS', 10_000, 0),
    outboxMaxBytes: int(env, 'OUTBOX_MAX_BYTES', 256 * 1024 * 1024, 0),
    minSecsBetweenPings: int(env, 'MIN_SECS_BETWEEN_PINGS', 0, 0),
    siteRecheckSeconds: int(env, 'SITE_RECHECK_SECONDS', 86400, 0),
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    fetchAllowCidrs: cidrList(env, 'FETCH_ALLOW_CIDRS'),
    callbackAllowCidrs: cidrList(env, 'CALLBACK_ALLOW_CIDRS'),
    enableTestApi: bool(env, 'ENABLE_TEST_API', false),
    maxResponseBytes: int(env, 'MAX_RESPONSE_BYTES', 5 * 1024 * 1024, 1024),
    bodyThreadMinBytes: int(env, 'BODY_THREAD_MIN_BYTES', 128 * 1024, 0),
    deliveryConcurrency: int(env, 'DELIVERY_CONCURRENCY', 64, 1, 10_000),
    deliveryLingerAfterMs: int(env, 'DELIVERY_LINGER_AFTER_MS', 1000, 1, 600_000),
    deliveryLingering: int(env, 'DELIVERY_LINGERING', 256, 0, 100_000),
    fetchConcurrency: int(env, 'FETCH_CONCURRENCY', 128, 1, 10_000),
    fetchPerHost: int(env, 'FETCH_PER_HOST', 8, 1, 10_000),
    websubLeaseDefaultSeconds: Math.min(leaseMax, Math.max(leaseMin, leaseDefault)),
    websubLeaseMinSeconds: leaseMin,
    websubLeaseMaxSeconds: leaseMax,
    websubSignatureAlgorithm: algorithm(env, 'WEBSUB_SIGNATURE_ALGORITHM'),
    websubMaxAttempts: int(env, 'WEBSUB_MAX_ATTEMPTS', 8, 1, 100),
    websubVerifyAttempts: int(env, 'WEBSUB_VERIFY_ATTEMPTS', 6, 1, 20),
    websubVerifyDelayMs: int(env, 'WEBSUB_VERIFY_DELAY_MS', 1000, 0, 60_000),
    websubMaxPendingVerifications: int(env, 'WEBSUB_MAX_PENDING_VERIFICATIONS', 20_000, 1),
    websubVerifyConcurrency: int(env, 'WEBSUB_VERIFY_CONCURRENCY', 256, 1, 10_000),
    websubRetryBaseMs: retryBaseMs,
    websubRetryMaxMs: retryMaxMs,
    publisherSecrets: publisherSecrets(env, 'PUBLISHER_SECRETS'),
    logLevel: logLevel(env, 'LOG_LEVEL'),
    deliveryPerHost: int(env, 'DELIVERY_PER_HOST', 8, 1, 10_000),
    breakerFailures: int(env, 'BREAKER_FAILURES', 5, 1),
    breakerCooldownMs,
    breakerMaxCooldownMs,
    ...pollBounds(env),
    ...limits(env),
    adminToken: adminToken(env, 'ADMIN_TOKEN'),
    sseHeartbeatMs: int(env, 'SSE_HEARTBEAT_MS', 15_000, 100, MAX_TIMER_MS),
    sseBacklog: int(env, 'SSE_BACKLOG', 1000, 0),
    sseMaxPerClient: int(env, 'SSE_MAX_PER_CLIENT', 16, 1),
    sseMaxStreams: int(env, 'SSE_MAX_STREAMS', 5000, 1),
    sseMaxTopicsPerStream: int(env, 'SSE_MAX_TOPICS_PER_STREAM', 50, 1),
    sseMaxBufferedBytes: int(env, 'SSE_MAX_BUFFERED_BYTES', 1024 * 1024, 65_536),
  };
}
