// Every outbound HTTP request of the hub goes through here, and this is the only module that
// imports undici. URLs come from strangers (feed URLs, subscriber callbacks), so each request is
// bounded in time and size and may only reach addresses the AddressGuard allows.
import type { LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { AddressGuard, OutboundError, type OutboundErrorCode } from './address-guard.js';
import { decodeBody } from './content-coding.js';
import { LookupTimeout, sharedLookups, systemResolver, type Resolver } from './lookups.js';
import { FetchSlots } from './fetch-slots.js';
import { callbackHost, hostsOnly } from './model.js';

export { OutboundError, type OutboundErrorCode, type Resolver };

/** Feed/topic fetches and subscriber callbacks have separate allow-lists. */
export type TargetKind = 'fetch' | 'callback';

export interface HttpClientOptions {
  /**
   * Whole-request timeout: connect + headers + body (and all redirect hops). A request may be
   * given longer (HttpRequest.timeoutMs: WebSub's), but never its connection, nor its lookup.
   */
  timeoutMs: number;
  /** Most body bytes read; beyond → 'too_large'. */
  maxResponseBytes: number;
  userAgent: string;
  fetchAllowCidrs: string[];
  callbackAllowCidrs: string[];
  /** Per-origin connection pool size, default 64. */
  connections?: number;
  /** Replaces the system resolver (tests: a stub that maps names to chosen addresses). */
  resolver?: Resolver;
  /** Lookups running at once (see lib/lookups.ts); default 2, libuv's share of its default pool. */
  lookupSlots?: number;
  /** Topic and page reads ('fetch') in flight at once across all hosts (FETCH_CONCURRENCY); unset = no bound. */
  fetchConcurrency?: number;
  /** Topic and page reads in flight at once to one host (FETCH_PER_HOST); only with fetchConcurrency. */
  fetchPerHost?: number;
  /** Reads waiting at once in one host's line (tests); default WAITING_PER_HOST (lib/fetch-slots.ts). */
  fetchWaitingPerHost?: number;
  /**
   * Certificates trusted for https instead of Node's roots (tests: their own CA). An operator
   * with an internal CA adds it to the roots with NODE_EXTRA_CA_CERTS instead (see README).
   */
  ca?: string[];
}

export interface HttpRequest {
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Default 0: a 3xx is returned as-is. Redirects re-send the same method and body. */
  maxRedirects?: number;
  timeoutMs?: number;
  /**
   * Read no more of the body than this (nor than MAX_RESPONSE_BYTES, if that is less): beyond,
   * the response is what was read, marked `truncated`, and the connection is closed, instead of
   * 'too_large'.
   */
  readAtMost?: number;
  /**
   * A read ('fetch') whose caller holds its turn already (fetchTurn): it does not queue again.
   * A topic's read takes its turn before its topic lock, which on PostgreSQL holds a connection.
   */
  turnHeld?: boolean;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; multiple values joined by ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** Final URL after redirects. */
  url: string;
  /** The body is only the first `readAtMost` bytes of a longer one. */
  truncated?: true;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A Retry-After header (seconds, or an HTTP date) as seconds from `now`; undefined when absent or unreadable. */
export function retryAfterSeconds(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d{1,10}\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.round((at - now) / 1000)) : undefined;
}


/** DNS lookup that refuses a name if ANY of its addresses is blocked, so a name cannot mix a public and a private answer. */
function guardedLookup(guard: AddressGuard, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    resolve(hostname, family).then((addresses) => {
      const bad = addresses.find((a) => !guard.isAllowed(a.address));
      if (bad) {
        return callback(new OutboundError('blocked_address', `${hostname} resolves to ${bad.address}, which is not allowed`), '', 0);
      }
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no addresses`), '', 0);
      // net.connect asks for all addresses when it races IPv4/IPv6 (autoSelectFamily), one otherwise.
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    }, (err: unknown) => callback(lookupFailure(hostname, err), '', 0));
  };
}

/**
 * A failed lookup as the hub reports it: 'timeout' when it failed for now, which says nothing
 * about the name (no answer, or no turn, within REQUEST_TIMEOUT_MS; or the resolver's
 * EAI_AGAIN, "temporary failure in name resolution", as a name server's SERVFAIL comes back);
 * else 'network' (no such name).
 */
function lookupFailure(host: string, e: unknown): OutboundError {
  const temporary = e instanceof LookupTimeout || (e as NodeJS.ErrnoException | null)?.code === 'EAI_AGAIN';
  return new OutboundError(temporary ? 'timeout' : 'network', `cannot resolve ${host}: ${(e as Error).message}`);
}


/**
 * Connector that checks the address the socket actually reached. The lookup check alone is
 * not enough: a name can resolve differently between checks (DNS rebinding), and literal IPs
 * skip lookup entirely.
 */
function guardedConnector(guard: AddressGuard, timeoutMs: number, resolve: Resolver, ca: string[] | undefined): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs, lookup: guardedLookup(guard, resolve), ...(ca && { ca }) });
  return (opts, callback) => {
    // A name written fully qualified ("feed.example.") is sent without its dot in SNI (RFC 6066
    // §3), as browsers, curl and Go do. Node sends it as written, and Go's TLS servers (Caddy,
    // Traefik, most Go-written sites) end the handshake at it: every read of such a feed, and
    // every delivery to such a callback, failed. The certificate is checked against the same name.
    const fqdn = opts.protocol === 'https:' && opts.hostname.endsWith('.');
    connect(fqdn ? { ...opts, servername: opts.hostname.slice(0, -1) } : opts, (...args) => {
      const [err, socket] = args;
      if (err !== null) return callback(err, null);
      const ip = socket.remoteAddress;
      if (ip === undefined || !guard.isAllowed(ip)) {
        socket.destroy();
        return callback(new OutboundError('blocked_address', `connected to ${ip ?? 'an unknown address'}, which is not allowed`), null);
      }
      // undici ends a request whose connection closes with the socket's own error (a reset) or
      // one it destroys the socket with ("other side closed"): either is seen here first. It
      // destroys it too for an answer it cannot parse, whose bytes count as read: that is no
      // close, and a malformed answer on a new connection had its request sent twice.
      const handshake = socket.bytesRead;
      socket.prependListener('error', (e: Error) => {
        if (socket.bytesRead > handshake && CLOSE_CODES.has((e as { code?: unknown }).code)) closedAfterAnswers.add(e);
      });
      callback(null, socket);
    });
  };
}

/**
 * Errors that closed a connection which had already carried an answer: a kept-alive one. A
 * server closes an idle connection when its own keep-alive timeout ends, for many servers and
 * load balancers after a second or two and without a Keep-Alive header saying so; a request
 * written as that close crosses it on the wire finds the connection closed or reset with no
 * answer. Such a request is sent once more, on a new connection, as browsers, curl and Go's
 * client do. Counted as a failure instead, an rssCloud notification (which has no retry) was
 * lost and counted as its subscriber's error, and a WebSub one waited out a backoff. A server
 * that read the request and then died without a word may get it twice, which every delivery
 * here tolerates: an rssCloud one says only "this changed", and WebSub's retries resend anyway.
 */
const closedAfterAnswers = new WeakSet<Error>();
/** A connection closed (undici's "other side closed") or reset under a request, as against an answer refused. */
const CLOSE_CODES = new Set<unknown>(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

function staleConnection(e: unknown): boolean {
  return e instanceof Error && closedAfterAnswers.has(e);
}

/**
 * Node's codes for a peer certificate its TLS refused: OpenSSL's verify results (CERT_HAS_EXPIRED,
 * DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …) and its own for a certificate
 * of other names.
 */
function refusedCertificate(code: unknown): boolean {
  return (
    typeof code === 'string' &&
    (code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
      code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
      code === 'INVALID_CA' ||
      code === 'HOSTNAME_MISMATCH' ||
      code.startsWith('CERT_') ||
      code.startsWith('UNABLE_TO_'))
  );
}

/** Finds an OutboundError raised inside undici (lookup/connector), else classifies the failure. */
function toOutboundError(err: unknown, timedOut: boolean): OutboundError {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === undefined || e === null || seen.has(e)) continue;
    seen.add(e);
    if (e instanceof OutboundError) return e;
    if (e instanceof Error && refusedCertificate((e as NodeJS.ErrnoException).code)) return new OutboundError('certificate', e.message);
    if (e instanceof Error) {
      queue.push(e.cause);
      // net.connect's address racing reports an AggregateError of per-address failures.
      if (e instanceof AggregateError) queue.push(...e.errors);
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  const name = err instanceof Error ? err.name : '';
  const message = err instanceof Error ? err.message : String(err);
  if (
    timedOut ||
    name === 'TimeoutError' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'ETIMEDOUT'
  ) {
    return new OutboundError('timeout', `request timed out: ${message}`);
  }
  return new OutboundError('network', message);
}

function parseUrl(raw: string, base?: string): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new OutboundError('bad_url', `not a valid URL: ${raw}`);
  }
  return checkUrl(url, raw);
}

function checkUrl(url: URL, raw: string = url.href): URL {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundError('bad_url', `not an http(s) URL: ${raw}`);
  // Credentials in a URL would be sent to whoever the URL names; nobody has a reason to give us any.
  if (url.username !== '' || url.password !== '') throw new OutboundError('bad_url', `URL carries credentials: ${url.host}`);
  return url;
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in raw) {
    const v = raw[k];
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** One response as read off the wire, before redirects are judged. */
interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  truncated?: true;
}

/**
 * One request on undici's dispatch API: the response is gathered by plain callbacks, without
 * the body stream, abort signal and promise that `request()` builds around every call (a third
 * of a delivery's cost in a fan-out). The body is bounded as it arrives; `abort` ends the
 * request at any point, before it reached a socket or after.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private failure: Error | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private chunks: Buffer[] = [];
  private bytes = 0;
  private settled = false;

  /** Whether the answer's head arrived: a failure after it is not a stale connection's. */
  get answered(): boolean {
    return this.status !== 0;
  }

  constructor(
    /** Most body bytes kept; beyond, the request fails with 'too_large' (or, with `discardBody`, the rest is dropped). */
    private readonly maxBytes: number,
    /** Beyond maxBytes, answer with what was read (marked truncated) instead of failing. */
    private readonly truncate: boolean,
    /** HEAD: no body is kept. */
    private discardBody: boolean,
    /** Whether a redirect will be followed: then its body is dropped, whatever its size. */
    private readonly following: boolean,
    private readonly resolve: (r: RawResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  abort(reason: Error): void {
    if (this.settled) return;
    this.failure = reason;
    if (this.controller) this.controller.abort(reason);
    else this.fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.failure) controller.abort(this.failure);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.status = statusCode;
    this.headers = headers;
    if (this.following && REDIRECTS.has(statusCode) && typeof headers.location === 'string') this.discardBody = true;
    const declared = headers['content-length'];
    if (!this.discardBody && !this.truncate && typeof declared === 'string' && Number(declared) > this.maxBytes) {
      controller.abort(new OutboundError('too_large', `response declares ${declared} bytes, cap is ${this.maxBytes}`));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discardBody || this.settled) return;
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      if (this.truncate) {
        const kept = chunk.length - (this.bytes - this.maxBytes);
        this.chunks.push(chunk.subarray(0, kept));
        this.bytes = this.maxBytes;
        this.succeed(true);
      }
      controller.abort(new OutboundError('too_large', `response exceeds ${this.maxBytes} bytes`));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.succeed(false);
  }

  /** Answers with the body gathered so far (all of it, or the first maxBytes of a longer one). */
  private succeed(truncated: boolean): void {
    if (this.settled) return;
    this.settled = true;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    this.resolve({ status: this.status, headers: this.headers, body, ...(truncated && { truncated: true as const }) });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // A 204 or 304 ends at its blank line whatever its Content-Length says (RFC 9112 §6.3), and
    // a 304 may give the length of the 200 it stands for (RFC 9110 §8.6; ASP.NET Core, Tornado
    // and ReactPHP do). undici counts those bytes as missing: every conditional read of such a
    // feed failed as a network error, its pings answered with a read error.
    const bodiless = this.status === 204 || this.status === 304;
    if (this.failure === undefined && bodiless && (error as { code?: unknown }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      return this.succeed(false);
    }
    this.fail(this.failure ?? error);
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}

/**
 * Longest an idle connection is kept for the next request to its origin, whatever the server's
 * Keep-Alive header offers. undici keeps one as long as that header says, up to 10 minutes, and
 * the origins are strangers' to choose (a publish names 25 topic URLs, a subscribe a callback):
 * answered with `Keep-Alive: timeout=600`, each held a socket and ~30 KB of heap for 10 minutes,
 * so one client within the default rate limit had the hub hold 15,000 more a minute, until it ran
 * out of file descriptors (every fetch and delivery failing with EMFILE) or of heap. A server
 * that says nothing is given undici's default, the same 4 s; a shorter offer is still honoured.
 */
const IDLE_CONNECTION_MS = 4_000;

export class HttpClient {
  private readonly guards: Record<TargetKind, AddressGuard>;
  private readonly agents: Record<TargetKind, Agent>;
  private readonly resolve: Resolver;
  /**
   * The pool bounds connections per origin only: a flood of pings or publishes naming thousands
   * of slow feeds on as many hosts opened a socket to each at once (3,000 measured), starved the
   * event loop until reads that would have succeeded timed out, and could reach the descriptor limit.
   * Per host as well (FETCH_PER_HOST): one publisher's burst of pings took the slots, its slow
   * server got 64 reads at once, and other publishers' reads waited behind the burst.
   */
  private readonly fetches: FetchSlots | undefined;
  /** Requests in flight given longer than `timeoutMs`, each with the means to cut it short (see hurry). */
  private readonly lingering = new Set<() => void>();
  private hurried = false;

  constructor(private readonly opts: HttpClientOptions) {
    this.resolve = sharedLookups(opts.resolver ?? systemResolver, { slots: opts.lookupSlots ?? 2, maxWaitMs: opts.timeoutMs });
    this.fetches = opts.fetchConcurrency === undefined ? undefined : new FetchSlots(opts.fetchConcurrency, opts.fetchPerHost ?? opts.fetchConcurrency, opts.fetchWaitingPerHost);
    const agent = (guard: AddressGuard): Agent =>
      new Agent({
        connections: opts.connections ?? 64,
        keepAliveTimeout: IDLE_CONNECTION_MS,
        keepAliveMaxTimeout: IDLE_CONNECTION_MS,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connect: guardedConnector(guard, opts.timeoutMs, this.resolve, opts.ca),
      });
    this.guards = { fetch: new AddressGuard(opts.fetchAllowCidrs), callback: new AddressGuard(opts.callbackAllowCidrs) };
    this.agents = { fetch: agent(this.guards.fetch), callback: agent(this.guards.callback) };
  }

  /**
   * Checks, without connecting, that a URL is one the guard would let us reach: its scheme,
   * and every address its host resolves to. Faces use it to refuse a request up front with a
   * clear reason; the connection-time checks still run on every real request.
   */
  async checkTarget(kind: TargetKind, url: string): Promise<void> {
    const parsed = parseUrl(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) return this.guards[kind].check(host);
    let addresses: LookupAddress[];
    // Within the request timeout, as every connection's lookup is: a name server that never
    // answers would otherwise hold the WebSub subscribe request that asked, for as long as the
    // system resolver's own retries last.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LookupTimeout(`no answer in ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    });
    try {
      addresses = await Promise.race([this.resolve(host), deadline]);
    } catch (e) {
      throw lookupFailure(host, e);
    } finally {
      clearTimeout(timer);
    }
    for (const a of addresses) this.guards[kind].check(a.address);
  }

  /** `url` may be given parsed, when the caller sends to it many times (a subscriber's callback). */
  async request(kind: TargetKind, url: string | URL, req: HttpRequest = {}): Promise<HttpResponse> {
    if (kind !== 'fetch' || req.turnHeld) return this.send(kind, url, req);
    const release = await this.fetchTurn(url, req.timeoutMs);
    try {
      return await this.send(kind, url, req);
    } finally {
      release();
    }
  }

  /**
   * Takes a read's turn (FETCH_PER_HOST, then FETCH_CONCURRENCY; see lib/fetch-slots.ts) for a
   * caller that must hold it before something else (a topic lock), and then reads with
   * `turnHeld`. Resolves to the function that gives it back. Rejects as a read that timed out.
   */
  async fetchTurn(url: string | URL, timeoutMs = this.opts.timeoutMs): Promise<() => void> {
    if (!this.fetches) return noop;
    // The host the read starts at, keyed as deliveries key theirs (host:port, one spelling per
    // host); a redirect elsewhere keeps the turn it started with.
    return this.fetches.take(callbackHost(typeof url === 'string' ? url : url.href), timeoutMs);
  }

  private async send(kind: TargetKind, url: string | URL, req: HttpRequest): Promise<HttpResponse> {
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    const method = req.method ?? 'GET';
    const maxRedirects = req.maxRedirects ?? 0;
    const maxBytes = Math.min(req.readAtMost ?? Infinity, this.opts.maxResponseBytes);
    const truncate = req.readAtMost !== undefined;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
    if (req.headers) for (const k in req.headers) headers[k.toLowerCase()] = req.headers[k]!;
    // One deadline for the whole call, redirects included, so a slow chain cannot stretch it.
    let current: Exchange | undefined;
    let timedOut = false;
    const expire = (message: string): void => {
      timedOut = true;
      current?.abort(new OutboundError('timeout', message));
    };
    let timer = setTimeout(() => expire(`request timed out after ${timeoutMs} ms`), timeoutMs);
    // Past hurry(), a request given longer than `timeoutMs` ends when one given that would have.
    const started = Date.now();
    const cut = (): void => {
      clearTimeout(timer);
      const left = Math.max(0, started + this.opts.timeoutMs - Date.now());
      timer = setTimeout(() => expire(`request cut after ${this.opts.timeoutMs} ms: the hub is stopping`), left);
    };
    const long = timeoutMs > this.opts.timeoutMs;
    if (long && this.hurried) cut();
    else if (long) this.lingering.add(cut);
    try {
      const first = typeof url === 'string' ? parseUrl(url) : checkUrl(url);
      for (let hop = 0, target = first; ; hop++) {
        // Literal IPs never go through lookup, so judge them before connecting at all.
        const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
        if (isIP(host) !== 0) this.guards[kind].check(host);
        const send = (): Promise<RawResponse> =>
          new Promise<RawResponse>((resolve, reject) => {
            const exchange = new Exchange(maxBytes, truncate, method === 'HEAD', maxRedirects > 0, resolve, reject);
            current = exchange;
            if (timedOut) return exchange.abort(new OutboundError('timeout', `request timed out after ${timeoutMs} ms`));
            this.agents[kind].dispatch(
              {
                origin: target.origin,
                path: target.pathname + target.search,
                method,
                headers,
                body: req.body ?? null,
                headersTimeout: timeoutMs,
                bodyTimeout: timeoutMs,
              },
              exchange,
            );
          });
        let res: RawResponse;
        try {
          res = await send();
        } catch (e) {
          // Once: a second close is the server's answer, not a race with its idle timeout.
          if (timedOut || current?.answered !== false || !staleConnection(e)) throw e;
          res = await send();
        }
        const location = res.headers.location;
        if (maxRedirects > 0 && REDIRECTS.has(res.status) && typeof location === 'string') {
          if (hop >= maxRedirects) throw new OutboundError('too_many_redirects', `more than ${maxRedirects} redirects from ${first.href}`);
          target = parseUrl(location, target.href);
          continue;
        }
        // HEAD, 204 and 304 carry no body, though their content-length may describe one.
        const body = method === 'HEAD' || res.status === 204 || res.status === 304 ? Buffer.alloc(0) : res.body;
        // A topic's or page's content (a 2xx fetched) compressed though nobody asked is decoded.
        // Any other answer is judged by its status (a delivery's, an error page's with its
        // Retry-After) or a short echo, and is left as it came, as is a prefix cut at readAtMost:
        // decoded, a wrong Content-Encoding on a subscriber's 200 or 410 failed the delivery.
        const content = kind === 'fetch' && res.status >= 200 && res.status < 300 && !res.truncated;
        const read = content ? await decodeBody(flattenHeaders(res.headers), body, maxBytes) : { headers: flattenHeaders(res.headers), body };
        return { status: res.status, headers: read.headers, body: read.body, url: target.href, ...(res.truncated && { truncated: true as const }) };
      }
    } catch (err) {
      const e = toOutboundError(err, timedOut);
      if (kind === 'fetch') throw e;
      // A callback's path and query are its subscriber's, often with a token in them (and a
      // verification's carry the challenge), and this message reaches the log: any URL in it
      // (the one a redirect loop started from, a Location refused) is named by its host.
      const message = hostsOnly(e.message);
      throw message === e.message ? e : new OutboundError(e.code, message);
    } finally {
      clearTimeout(timer);
      this.lingering.delete(cut);
    }
  }

  /** Past hurry(): the hub is stopping, and reads not started yet are dropped (see FetchSlots.stop). */
  get stopping(): boolean {
    return this.hurried;
  }

  /**
   * The hub is stopping: from now on no request lasts longer than `timeoutMs` (REQUEST_TIMEOUT_MS)
   * from its start, those given longer (WEBSUB_TIMEOUT_MS) included, and any already past it
   * ends now. A stop waits for the deliveries and verifications in flight, so that their
   * outcomes are durable: it waits no longer for them than when every request had `timeoutMs`.
   * Waiting out WEBSUB_TIMEOUT_MS, a stop would outlast a supervisor's stop timeout (Docker's
   * 10 s) and be killed, the deliveries whose outcomes were not yet durable sent again at the
   * next start.
   */
  hurry(): void {
    this.hurried = true;
    // Reads not started are dropped rather than waited for (see FetchSlots.stop).
    this.fetches?.stop();
    for (const cut of this.lingering) cut();
    this.lingering.clear();
  }

  async close(): Promise<void> {
    await Promise.all([this.agents.fetch.close(), this.agents.callback.close()]);
  }
}

function noop(): void {}
