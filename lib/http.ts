// Every outbound HTTP request of the hub goes through here, and this is the only module that
// imports undici. URLs come from strangers (feed URLs, subscriber callbacks), so each request is
// bounded in time and size and may only reach addresses the AddressGuard allows.
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, buildConnector } from 'undici';
import { AddressGuard, OutboundError, type OutboundErrorCode } from './address-guard.js';

export { OutboundError, type OutboundErrorCode };

/** Feed/topic fetches and subscriber callbacks have separate allow-lists. */
export type TargetKind = 'fetch' | 'callback';

export interface HttpClientOptions {
  /** Whole-request timeout: connect + headers + body (and all redirect hops). */
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
}

export interface HttpRequest {
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Default 0: a 3xx is returned as-is. Redirects re-send the same method and body. */
  maxRedirects?: number;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; multiple values joined by ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** Final URL after redirects. */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function noop(): void {}

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
    }, (err: NodeJS.ErrnoException) => callback(err, '', 0));
  };
}

/** Resolves a host name to its addresses; the system resolver unless a test supplies a stub. */
export type Resolver = (hostname: string, family?: number) => Promise<dns.LookupAddress[]>;

const systemResolver: Resolver = (hostname, family) =>
  dns.promises.lookup(hostname, { all: true, ...(family === 4 || family === 6 ? { family } : {}) });

/**
 * Connector that checks the address the socket actually reached. The lookup check alone is
 * not enough: a name can resolve differently between checks (DNS rebinding), and literal IPs
 * skip lookup entirely.
 */
function guardedConnector(guard: AddressGuard, timeoutMs: number, resolve: Resolver): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs, lookup: guardedLookup(guard, resolve) });
  return (opts, callback) => {
    connect(opts, (...args) => {
      const [err, socket] = args;
      if (err !== null) return callback(err, null);
      const ip = socket.remoteAddress;
      if (ip === undefined || !guard.isAllowed(ip)) {
        socket.destroy();
        return callback(new OutboundError('blocked_address', `connected to ${ip ?? 'an unknown address'}, which is not allowed`), null);
      }
      callback(null, socket);
    });
  };
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

/**
 * The whole-request deadline, handed to undici as its abort signal. undici accepts any object
 * with `aborted`, `reason` and add/removeEventListener; Node's AbortController is an EventTarget
 * that costs several microseconds to create and to listen to, on every delivery of a fan-out.
 */
class Deadline {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i !== -1) this.listeners.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    for (const l of this.listeners.splice(0)) l();
  }
}

export class HttpClient {
  private readonly guards: Record<TargetKind, AddressGuard>;
  private readonly agents: Record<TargetKind, Agent>;
  private readonly resolve: Resolver;

  constructor(private readonly opts: HttpClientOptions) {
    this.resolve = opts.resolver ?? systemResolver;
    const agent = (guard: AddressGuard): Agent =>
      new Agent({
        connections: opts.connections ?? 64,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connect: guardedConnector(guard, opts.timeoutMs, this.resolve),
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
    let addresses: dns.LookupAddress[];
    try {
      addresses = await this.resolve(host);
    } catch (e) {
      throw new OutboundError('network', `cannot resolve ${host}: ${(e as Error).message}`);
    }
    for (const a of addresses) this.guards[kind].check(a.address);
  }

  async request(kind: TargetKind, url: string, req: HttpRequest = {}): Promise<HttpResponse> {
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    // One deadline for the whole call, redirects included, so a slow chain cannot stretch it.
    const deadline = new Deadline();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort(new OutboundError('timeout', `request timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      return await this.follow(kind, parseUrl(url), req, timeoutMs, deadline as unknown as AbortSignal);
    } catch (err) {
      throw toOutboundError(err, timedOut);
    } finally {
      clearTimeout(timer);
    }
  }

  private async follow(kind: TargetKind, first: URL, req: HttpRequest, timeoutMs: number, signal: AbortSignal): Promise<HttpResponse> {
    const method = req.method ?? 'GET';
    const maxRedirects = req.maxRedirects ?? 0;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
    if (req.headers) for (const k in req.headers) headers[k.toLowerCase()] = req.headers[k]!;

    let url = first;
    for (let hop = 0; ; hop++) {
      // Literal IPs never go through lookup, so judge them before connecting at all.
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      if (isIP(host) !== 0) this.guards[kind].check(host);

      const res = await this.agents[kind].request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: req.body ?? null,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const location = res.headers.location;
      if (maxRedirects > 0 && REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        // Drop the redirect's own body; undici reads a little to keep the connection reusable.
        await res.body.dump({ limit: 64 * 1024, signal }).catch(() => {});
        if (hop >= maxRedirects) throw new OutboundError('too_many_redirects', `more than ${maxRedirects} redirects from ${first.href}`);
        url = parseUrl(location, url.href);
        continue;
      }
      // HEAD, 204 and 304 carry no body, though their content-length may describe one.
      const body =
        method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304
          ? (await res.body.dump({ limit: 0, signal }), Buffer.alloc(0))
          : await this.readBody(res.body, res.headers['content-length']);
      return { status: res.statusCode, headers: flattenHeaders(res.headers), body, url: url.href };
    }
  }

  private async readBody(stream: Readable & { bytes(): Promise<Uint8Array> }, contentLength: unknown): Promise<Buffer> {
    const max = this.opts.maxResponseBytes;
    if (typeof contentLength === 'string' && Number(contentLength) > max) {
      stream.destroy(); // closes the socket instead of draining a body we will not keep
      throw new OutboundError('too_large', `response declares ${contentLength} bytes, cap is ${max}`);
    }
    // A declared length within the cap is all the parser will let through: read it in one go,
    // without the async iterator's per-chunk promises (most replies are a few bytes).
    if (typeof contentLength === 'string' && /^\d+$/.test(contentLength)) {
      const bytes = await stream.bytes();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    // No length (chunked): counted as it comes, with plain listeners rather than an async
    // iterator (a promise per chunk, and a good share of a delivery's cost).
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const done = (err: unknown, body?: Buffer): void => {
        stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
        stream.on('error', noop); // a destroy after this reports an abort nobody waits for
        if (body) resolve(body);
        else reject(err);
      };
      const onData = (chunk: Buffer): void => {
        total += chunk.length;
        if (total <= max) {
          chunks.push(chunk);
          return;
        }
        done(new OutboundError('too_large', `response exceeds ${max} bytes`));
        stream.destroy();
      };
      const onEnd = (): void => done(undefined, Buffer.concat(chunks, total));
      const onError = (e: unknown): void => done(e);
      // Closed without an end or an error: what arrived is not the whole body.
      const onClose = (): void => done(new OutboundError('network', 'the connection closed before the body ended'));
      stream.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.agents.fetch.close(), this.agents.callback.close()]);
  }
}
