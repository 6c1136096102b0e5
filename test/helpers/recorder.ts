// A real HTTP server on 127.0.0.1 that records every request it receives and answers through a
// replaceable handler: it plays subscribers, feeds and publishers in the tests.
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  /** Path and query, exactly as received. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export type Handler = (req: Recorded, res: http.ServerResponse) => void | Promise<void>;

export const ok: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
};

/** Answers every path with one unchanging text (304 to its ETag): a feed whose publisher never pings. */
export const steadyFeed: Handler = (req, res) => {
  if (req.headers['if-none-match'] === '"same"') return void res.writeHead(304, { etag: '"same"' }).end();
  res.writeHead(200, { 'content-type': 'text/plain', etag: '"same"' }).end(`${req.path}\n`);
};

/** A subscriber that confirms every WebSub verification of intent (echoes hub.challenge) and takes every notification. */
export const confirmingSubscriber: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'GET' ? (req.query.get('hub.challenge') ?? 'ok') : 'ok');
};

export class Recorder {
  readonly requests: Recorded[] = [];
  handler: Handler;
  private waiters: { count: number; filter: (r: Recorded) => boolean; resolve: () => void }[] = [];

  private constructor(
    /** Its own server, for a test that changes what it shows (an https one's certificate). */
    readonly server: http.Server | https.Server,
    handler: Handler,
    private readonly scheme: 'http' | 'https',
  ) {
    this.handler = handler;
  }

  /** With `tls` (an identity from test/helpers/tls.ts, at least), an HTTPS server on the same terms. */
  static async start(handler: Handler = ok, host = '127.0.0.1', tls?: https.ServerOptions, port = 0): Promise<Recorder> {
    const server = tls ? https.createServer(tls) : http.createServer();
    const rec = new Recorder(server, handler, tls ? 'https' : 'http');
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        const r: Recorded = {
          method: req.method ?? 'GET',
          url,
          path: q === -1 ? url : url.slice(0, q),
          query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
          headers: req.headers,
          body: Buffer.concat(chunks),
          at: Date.now(),
        };
        rec.requests.push(r);
        rec.wake();
        Promise.resolve(rec.handler(r, res)).catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    return rec;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const { address } = this.server.address() as AddressInfo;
    return `${this.scheme}://${address.includes(':') ? `[${address}]` : address}:${this.port}`;
  }

  matching(filter: (r: Recorded) => boolean): Recorded[] {
    return this.requests.filter(filter);
  }

  /** Resolves once `count` requests matching `filter` have arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, filter: (r: Recorded) => boolean = () => true, timeoutMs = 8000): Promise<Recorded[]> {
    if (this.matching(filter).length >= count) return this.matching(filter);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${count} request(s); got ${this.matching(filter).length}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ count, filter, resolve: done });
    });
    return this.matching(filter);
  }

  reset(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.matching(w.filter).length < w.count) return true;
      w.resolve();
      return false;
    });
  }
}

/**
 * Recorders a suite starts as its tests need them (`start`), closed together by `closeAll`
 * (an afterEach), so that no test's subscriber outlives it.
 */
export function recorderPool(): { start: (handler: (req: Recorded, res: http.ServerResponse) => void) => Promise<Recorder>; closeAll: () => Promise<void> } {
  let open: Recorder[] = [];
  return {
    async start(handler) {
      const rec = await Recorder.start(handler);
      open.push(rec);
      return rec;
    },
    async closeAll() {
      const closing = open;
      open = [];
      for (const rec of closing) await rec.close();
    },
  };
}

/** Waits `ms` milliseconds; used only to prove that something does NOT happen. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * An address of its own in 127.0.0.0/8 (all of it loopback on Linux): a port freed on it is not
 * handed to the many servers listening on 127.0.0.1, in this process or another test run's.
 */
export function loopbackAddress(): string {
  const byte = (): number => Math.floor(Math.random() * 256);
  return `127.${byte()}.${byte()}.${1 + (byte() % 254)}`;
}

/** A port nobody listens on at `host` now, for a server that must be reached before it says its port. */
export async function freePort(host: string): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, host, resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
