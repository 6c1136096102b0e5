// Helpers for the rssCloud end-to-end suites: the reference server's exact words, clients for
// the REST face, the XML-RPC face (through the independent `xmlrpc` package) and the test API,
// and fake feeds and subscribers that record what reached them over the wire.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import xmlrpc from 'xmlrpc';
import { Recorder, type Handler, type Recorded } from './recorder.js';

// ---- the words -----------------------------------------------------------------------------

// Copied from the protocol digest (../shared/protocols/rsscloud.md §1.6), never imported from
// lib/messages.ts: real clients compare these byte for byte, so a drift in the hub must fail here.
export const MSG = {
  subscribed:
    "Thanks for the registration. It worked. When the resource updates we'll notify you. Don't forget to re-register after 24 hours, your subscription will expire in 25. Keep on truckin!",
  subscribeReadError: (url: string): string =>
    `The subscription was cancelled because there was an error reading the resource at URL ${url}.`,
  handlerFailed: 'The subscription was cancelled because the call failed when we tested the handler.',
  unsupported: (protocol: string): string => `Can't accept the subscription because the protocol, <i>${protocol}</i>, is unsupported.`,
  noResources: 'No resources specified.',
  missing: (names: string): string => `The following parameters were missing from the request body: ${names}.`,
  pinged: 'Thanks for the ping.',
  pingReadError: (url: string): string => `The ping was cancelled because there was an error reading the resource at URL ${url}.`,
  pingTooSoon: (secs: number): string => `A ping for this resource was received less than ${secs} seconds ago.`,
  notEnoughParams: (method: string): string => `Can't call "${method}" because there aren't enough parameters.`,
  tooManyParams: (method: string): string => `Can't call "${method}" because there are too many parameters.`,
  notDefined: (method: string): string => `Can't make the call because "${method}" is not defined.`,
} as const;

/** The lease the hub grants rssCloud subscriptions by default: 25 hours. */
export const LEASE_MS = 90_000 * 1000;

/** XML attribute escaping, written independently of the hub's. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

// ---- the REST face -------------------------------------------------------------------------

export interface RssReply {
  status: number;
  contentType: string;
  headers: Headers;
  /** The raw body, exactly as received. */
  body: string;
  /** 'notifyResult' or 'result' for XML replies, 'json' for JSON ones. */
  root: string;
  success: boolean;
  msg: string;
}

const XML_REPLY = /^<\?xml version="1\.0"[^?]*\?>\n?<(\w+) success="(true|false)" msg="([^"]*)"\/>\n?$/;

/** Reads an rssCloud REST reply, insisting on one of the two exact shapes. */
export async function readReply(res: Response): Promise<RssReply> {
  const body = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  const base = { status: res.status, contentType, headers: res.headers, body };
  if (contentType.startsWith('application/json')) {
    const json = JSON.parse(body) as { success: boolean; msg: string };
    return { ...base, root: 'json', success: json.success, msg: json.msg };
  }
  const m = XML_REPLY.exec(body);
  if (!m) throw new Error(`not an rssCloud XML reply (${res.status} ${contentType}): ${body}`);
  return { ...base, root: m[1]!, success: m[2] === 'true', msg: xmlUnescape(m[3]!) };
}

/** The exact XML element a reply must carry. */
export function xmlElement(root: string, success: boolean, msg: string): string {
  return `<${root} success="${success}" msg="${xmlEscape(msg)}"/>`;
}

export type Form = Record<string, string> | [string, string][];

export interface PostOptions {
  accept?: string;
  /** Defaults to /pleaseNotify or /ping. */
  path?: string;
  headers?: Record<string, string>;
  /** To give up on an answer that does not come (AbortSignal.timeout). */
  signal?: AbortSignal;
}

export async function postForm(hubUrl: string, path: string, form: Form, opts: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers };
  if (opts.accept !== undefined) headers['accept'] = opts.accept;
  return fetch(`${hubUrl}${opts.path ?? path}`, {
    method: 'POST',
    headers,
    body: new URLSearchParams(form).toString(),
    ...(opts.signal && { signal: opts.signal }),
  });
}

/** REST pleaseNotify. */
export async function pleaseNotify(hub: { url: string }, form: Form, opts: PostOptions = {}): Promise<RssReply> {
  return readReply(await postForm(hub.url, '/pleaseNotify', form, opts));
}

/** REST ping. */
export async function ping(hub: { url: string }, url: string, opts: PostOptions = {}): Promise<RssReply> {
  return readReply(await postForm(hub.url, '/ping', { url }, opts));
}

/** One no-domain http-post subscription of `callbackPath` on `sub` to every one of `feedUrls` (url1, url2, …). */
export function subscribeAllForm(sub: { port: number }, callbackPath: string, feedUrls: string[]): [string, string][] {
  return [['port', String(sub.port)], ['path', callbackPath], ['protocol', 'http-post'], ...feedUrls.map((u, i): [string, string] => [`url${i + 1}`, u])];
}

/** The usual no-domain http-post subscription of `callbackPath` on `sub` to `feedUrl`. */
export function subscribeForm(sub: { port: number }, callbackPath: string, feedUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { port: String(sub.port), path: callbackPath, protocol: 'http-post', url1: feedUrl, ...extra };
}

/** Sends a raw request (no Content-Type unless given) and returns status, headers and body. */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'POST', headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

// ---- the test API --------------------------------------------------------------------------

export interface SubscriptionJson {
  url: string;
  protocol: string;
  notifyProcedure?: string;
  ctUpdates: number;
  ctErrors: number;
  ctConsecutiveErrors: number;
  whenCreated: string;
  whenLastUpdate: string | null;
  whenLastError: string | null;
  whenExpires: string;
}

export interface ResourceJson {
  url: string;
  lastHash: string;
  lastSize: number;
  ctChecks: number;
  whenLastCheck: string;
  ctUpdates: number;
  whenLastUpdate: string;
}

/** POSTs JSON to /test/<route>. */
export async function testApi<T = Record<string, unknown>>(hub: { url: string }, route: string, body: unknown = {}): Promise<{ status: number; json: T }> {
  const res = await fetch(`${hub.url}/test/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: T;
  try {
    json = JSON.parse(text) as T;
  } catch {
    throw new Error(`/test/${route} answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json };
}

export async function getSubscriptions(hub: { url: string }, feedUrl: string): Promise<SubscriptionJson[]> {
  const { status, json } = await testApi<{ success: boolean; subscriptions: SubscriptionJson[] }>(hub, 'getSubscriptions', { feedUrl });
  if (status !== 200 || !json.success) throw new Error(`getSubscriptions failed: ${JSON.stringify(json)}`);
  return json.subscriptions;
}

export async function getSubscription(hub: { url: string }, feedUrl: string, callback: string): Promise<SubscriptionJson | undefined> {
  return (await getSubscriptions(hub, feedUrl)).find((s) => s.url === callback);
}

export async function setSubscriptions(hub: { url: string }, feedUrl: string, subscriptions: Partial<SubscriptionJson>[]): Promise<void> {
  const { status, json } = await testApi(hub, 'setSubscriptions', { feedUrl, subscriptions });
  if (status !== 200 || json.success !== true) throw new Error(`setSubscriptions failed: ${JSON.stringify(json)}`);
}

export const iso = (ms: number): string => new Date(ms).toISOString();

// ---- fake servers --------------------------------------------------------------------------

/** Dispatches on the request path; unknown paths go to `fallback`. */
export function routes(table: Record<string, Handler>, fallback: Handler = subscriberOk): Handler {
  return (req, res) => (table[req.path] ?? fallback)(req, res);
}

/**
 * A well-behaved rssCloud subscriber: echoes a challenge exactly, and accepts a notification
 * with 200 and the text Dave Winer's clients answer with.
 */
export const subscriberOk: Handler = (req, res) => {
  const challenge = req.query.get('challenge');
  if (req.method === 'GET' && challenge !== null) {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end('Thanks for the update! ;-)');
};

export const status =
  (code: number): Handler =>
  (_req, res) => {
    res.writeHead(code, { 'content-type': 'text/plain' }).end(`HTTP ${code}`);
  };

/** A handler that never answers: the hub's request timeout must cut it. */
export const hang: Handler = () => {};

/** The form POSTs (notifications and handler tests) that reached a path. */
export function notificationsAt(rec: Recorder, path: string): Recorded[] {
  return rec.matching((r) => r.method === 'POST' && r.path === path);
}

/** The body a notification of `feedUrl` must carry. */
export function notifyBody(feedUrl: string): string {
  return new URLSearchParams({ url: feedUrl }).toString();
}

/**
 * Feeds: `/changing/<name>` answers a new body on every read, `/fixed/<name>` the same body
 * every time, `/etag/<name>` a versioned body with an ETag (304 when unchanged; `/etag-length/<name>`
 * the same, its 304 with a Content-Length), `/missing/<name>`
 * 404, `/loop/<name>` a redirect to itself forever, `/hang/<name>` no answer at all.
 */
export class FeedServer {
  private constructor(
    readonly rec: Recorder,
    /** Content versions of the etag() feeds, by path; bump() publishes a new one. */
    private readonly versions: Map<string, number>,
  ) {}

  static async start(): Promise<FeedServer> {
    const reads = new Map<string, number>();
    const versions = new Map<string, number>();
    const rec = await Recorder.start((req, res) => {
      const n = (reads.get(req.path) ?? 0) + 1;
      reads.set(req.path, n);
      const rss = (title: string): string =>
        `<?xml version="1.0"?>\n<rss version="2.0"><channel><title>${title}</title><link>http://example.com/</link></channel></rss>\n`;
      if (req.path.startsWith('/changing/')) {
        res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(rss(`${req.path} read ${n}`));
      } else if (req.path.startsWith('/fixed/')) {
        res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(rss(req.path));
      } else if (req.path.startsWith('/etag/') || req.path.startsWith('/etag-length/')) {
        // Like a static file server: a strong ETag per version, and 304 when it still matches.
        const etag = `"v${versions.get(req.path) ?? 1}"`;
        if (req.headers['if-none-match'] === etag) {
          // /etag-length/: the 304 gives the length of the 200 it stands for, as RFC 9110 §8.6 allows.
          const length = req.path.startsWith('/etag-length/') && { 'content-length': Buffer.byteLength(rss(`${req.path} ${etag}`)) };
          res.writeHead(304, { etag, ...length }).end();
        } else {
          res.writeHead(200, { 'content-type': 'application/rss+xml', etag }).end(rss(`${req.path} ${etag}`));
        }
      } else if (req.path.startsWith('/slow/')) {
        // /slow/<ms>/…: a changing() feed that answers after <ms>.
        const ms = Number(req.path.split('/')[2]);
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(rss(`${req.path} read ${n}`)), ms);
      } else if (req.path.startsWith('/hang/')) {
        // never answers
      } else if (req.path.startsWith('/loop/')) {
        res.writeHead(302, { location: req.path }).end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      }
    });
    return new FeedServer(rec, versions);
  }

  /** A feed that sends an ETag and answers 304 to a matching If-None-Match. */
  etag(name: string): string {
    return `${this.rec.url}/etag/${name}.xml`;
  }

  /** An etag() feed whose 304 carries a Content-Length (the length of its 200). */
  etagWithLength(name: string): string {
    return `${this.rec.url}/etag-length/${name}.xml`;
  }

  /** Publishes a new version of an etag() feed. */
  bump(feedUrl: string): void {
    const path = new URL(feedUrl).pathname;
    this.versions.set(path, (this.versions.get(path) ?? 1) + 1);
  }

  get url(): string {
    return this.rec.url;
  }

  /** A feed whose body is new on every read: every ping is a change. */
  changing(name: string): string {
    return `${this.rec.url}/changing/${name}.xml`;
  }

  /** A changing() feed that takes `ms` to answer each read. */
  slow(name: string, ms: number): string {
    return `${this.rec.url}/slow/${ms}/${name}.xml`;
  }

  /** A feed whose body never changes. */
  fixed(name: string): string {
    return `${this.rec.url}/fixed/${name}.xml`;
  }

  missing(name: string): string {
    return `${this.rec.url}/missing/${name}.xml`;
  }

  /** A feed that never answers. */
  hanging(name: string): string {
    return `${this.rec.url}/hang/${name}.xml`;
  }

  loop(name: string): string {
    return `${this.rec.url}/loop/${name}.xml`;
  }

  /** How many times the hub read a feed URL (redirect hops count separately). */
  reads(feedUrl: string): number {
    const path = new URL(feedUrl).pathname;
    return this.rec.matching((r) => r.method === 'GET' && r.path === path).length;
  }

  close(): Promise<void> {
    return this.rec.close();
  }
}

/**
 * A raw TCP listener that records the first bytes each connection sends and then hangs up:
 * it shows whether the hub spoke TLS (a handshake record starts with 0x16 0x03) or plain HTTP.
 */
export class FirstBytes {
  readonly seen: Buffer[] = [];
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(port = 0, host = '127.0.0.1'): Promise<FirstBytes> {
    const server = net.createServer();
    const fb = new FirstBytes(server);
    server.on('connection', (socket) => {
      fb.sockets.add(socket);
      socket.once('data', (chunk: Buffer) => {
        fb.seen.push(chunk);
        socket.destroy();
      });
      socket.on('error', () => {});
      socket.on('close', () => fb.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return fb;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** True when `chunk` starts a TLS handshake record (a ClientHello), not an HTTP request line. */
export function isTlsHandshake(chunk: Buffer | undefined): boolean {
  return chunk !== undefined && chunk[0] === 0x16 && chunk[1] === 0x03;
}

// ---- XML-RPC through the independent `xmlrpc` package -------------------------------------------

export type RpcResult = { ok: true; value: unknown } | { ok: false; faultCode: number; faultString: string };

/** Calls a method on the hub's /RPC2 with the `xmlrpc` package's client. */
export function rpcCall(hubUrl: string, method: string, params: unknown[]): Promise<RpcResult> {
  const { hostname, port } = new URL(hubUrl);
  const client = xmlrpc.createClient({ host: hostname, port: Number(port), path: '/RPC2' });
  return new Promise((resolve, reject) => {
    client.methodCall(method, params, (error: unknown, value: unknown) => {
      if (error === null || error === undefined) return resolve({ ok: true, value });
      const fault = error as { faultCode?: unknown; faultString?: unknown };
      if (typeof fault.faultCode === 'number' && typeof fault.faultString === 'string') {
        return resolve({ ok: false, faultCode: fault.faultCode, faultString: fault.faultString });
      }
      reject(error instanceof Error ? error : new Error(String(error)));
    });
  });
}

export interface RpcCallSeen {
  method: string;
  params: unknown[];
}

export type RpcAnswer = (params: unknown[]) => unknown | { faultCode: number; faultString: string };

/**
 * An XML-RPC subscriber served by the `xmlrpc` package: it answers the procedures it is told
 * to, records every call it decoded and every HTTP request it received.
 */
export class XmlRpcSubscriber {
  readonly calls: RpcCallSeen[] = [];
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  private constructor(private readonly server: xmlrpc.Server) {
    server.httpServer.on('request', (req: http.IncomingMessage) => {
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    });
  }

  static async start(): Promise<XmlRpcSubscriber> {
    let server: xmlrpc.Server | undefined;
    // The package hands the port straight to http.Server#listen, so 0 picks a free one.
    await new Promise<void>((resolve) => {
      server = xmlrpc.createServer({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    return new XmlRpcSubscriber(server!);
  }

  get port(): number {
    return (this.server.httpServer.address() as AddressInfo).port;
  }

  /** Makes `method` answer with what `answer` returns; an object with faultCode, or an Error, is sent as a fault. */
  answer(method: string, answer: RpcAnswer): void {
    this.server.removeAllListeners(method);
    this.server.on(method, (_err: unknown, params: unknown[], callback: (error: unknown, value: unknown) => void) => {
      this.calls.push({ method, params });
      for (const w of this.waiters.filter((x) => this.calls.length >= x.count)) w.resolve();
      this.waiters = this.waiters.filter((x) => this.calls.length < x.count);
      const result = answer(params);
      // The package sends a thrown Error as a fault too, as a struct of the Error's own fields.
      const isFault = result instanceof Error || (typeof result === 'object' && result !== null && 'faultCode' in result);
      if (isFault) callback(result, null);
      else callback(null, result);
    });
  }

  waitForCalls(count: number, timeoutMs = 8000): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} call(s); got ${this.calls.length}`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  reset(): void {
    this.calls.length = 0;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.httpServer.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.httpServer.close(() => resolve()));
  }
}

/** Reads an XML-RPC fault from a raw body, independently of any codec. */
export function rawFault(body: string): { faultCode: number; faultString: string } | undefined {
  if (!/<methodResponse>\s*<fault>/.test(body)) return undefined;
  const code = /<name>faultCode<\/name>\s*<value>\s*<(?:int|i4)>(-?\d+)<\/(?:int|i4)>/.exec(body);
  const text = /<name>faultString<\/name>\s*<value>\s*(?:<string>([^<]*)<\/string>|([^<]*))\s*<\/value>/.exec(body);
  if (!code || !text) return undefined;
  return { faultCode: Number(code[1]), faultString: xmlUnescape(text[1] ?? text[2] ?? '') };
}
