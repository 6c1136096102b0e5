// The outside world of the benchmarks, in its own process: plain node:http servers that play
// subscribers (answer every delivery 200 at once, and every verification with its challenge)
// and publishers (serve feeds). Deliveries are counted with their arrival time; the parent
// asks for the figures over IPC.
//   node --import tsx bench/sink.ts [ports]
// Paths: POST /rss/…  rssCloud http-post subscriber      GET ?hub.challenge=…  WebSub verification
//        POST /rpc/…  rssCloud XML-RPC subscriber        GET ?challenge=…      rssCloud challenge
//        POST /ws/…   WebSub subscriber
//        GET /feed/changing/<key>  an RSS feed with a new entry on every read
//        GET /feed/static/<key>    an RSS feed that never changes (ETag; 304 when it matches)
//        GET /feed/bump/<key>      an RSS feed that changes only when the parent sends `bump`
//                                  (rssCloud pleaseNotify reads the feed: it must not change then)
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { childCommands, serveCommands, wallNow } from './common.js';

const PORTS = Number(process.argv[2] ?? 8);

type Kind = 'rss' | 'rpc' | 'ws';

interface Sample {
  contentType: string;
  body: string;
  bytes: number;
}

const state = {
  times: [] as number[],
  byKind: { rss: 0, rpc: 0, ws: 0 } as Record<Kind, number>,
  bytes: { rss: 0, rpc: 0, ws: 0 } as Record<Kind, number>,
  samples: {} as Partial<Record<Kind, Sample>>,
  verifications: 0,
  feedReads: 0,
  /** Deliveries per callback (path and query), when the parent asked for it at reset: duplicates show. */
  perCallback: undefined as Map<string, number> | undefined,
};
let waiters: { n: number; resolve: (v: unknown) => void; timer: NodeJS.Timeout }[] = [];

const RPC_TRUE = '<?xml version="1.0"?>\n<methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>\n';

// --- feeds -------------------------------------------------------------------------------------

const changing = new Map<string, number>();

function item(key: string, n: number): string {
  return `<item><title>Entry ${n} of ${key}: notes on pushing feeds</title><link>https://blog.example/${key}/${n}</link><guid>https://blog.example/${key}/${n}</guid><pubDate>${new Date(1_700_000_000_000 + n * 60_000).toUTCString()}</pubDate><description>Entry ${n}. A paragraph long enough to look like a real summary of a post: hubs fan a change out to every subscriber, and readers learn of it in seconds instead of polling every hour.</description></item>`;
}

function feed(key: string, newest: number): string {
  const items: string[] = [];
  for (let n = newest; n > Math.max(0, newest - 10); n--) items.push(item(key, n));
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Feed ${key}</title><link>https://blog.example/${key}</link><description>A benchmark feed</description>${items.join('')}</channel></rss>\n`;
}

const staticBodies = new Map<string, string>();
/** Bumpable feeds: key → its newest entry number. */
const bumped = new Map<string, number>();

function serveFeed(path: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  state.feedReads++;
  const [, , kind, key = 'x'] = path.split('/');
  if (kind === 'bump') {
    const n = bumped.get(key) ?? 10;
    const etag = `"b${n}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/rss+xml', etag }).end(feed(key, n));
    return;
  }
  if (kind === 'changing') {
    const n = (changing.get(key) ?? 10) + 1;
    changing.set(key, n);
    res.writeHead(200, { 'content-type': 'application/rss+xml', etag: `"c${n}"` }).end(feed(key, n));
    return;
  }
  const etag = '"s1"';
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { etag }).end();
    return;
  }
  let body = staticBodies.get(key);
  if (!body) staticBodies.set(key, (body = feed(key, 10)));
  res.writeHead(200, { 'content-type': 'application/rss+xml', etag }).end(body);
}

// --- subscribers -------------------------------------------------------------------------------

function delivered(kind: Kind, req: http.IncomingMessage, body: Buffer): void {
  state.times.push(wallNow());
  if (state.perCallback) {
    const key = req.url ?? '/';
    state.perCallback.set(key, (state.perCallback.get(key) ?? 0) + 1);
  }
  state.byKind[kind]++;
  state.bytes[kind] += body.length;
  state.samples[kind] ??= { contentType: req.headers['content-type'] ?? '', body: body.toString('utf8'), bytes: body.length };
  const count = state.times.length;
  if (waiters.length > 0) {
    waiters = waiters.filter((w) => {
      if (count < w.n) return true;
      clearTimeout(w.timer);
      w.resolve({ count, nth: state.times[w.n - 1] });
      return false;
    });
  }
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (req.method === 'GET') {
    if (path.startsWith('/feed/')) return serveFeed(path, req, res);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const challenge = query.get('hub.challenge') ?? query.get('challenge');
    if (challenge !== null) state.verifications++;
    const answer = challenge ?? 'ok';
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer) }).end(answer);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const kind: Kind = path.startsWith('/rpc/') ? 'rpc' : path.startsWith('/ws/') ? 'ws' : 'rss';
    delivered(kind, req, Buffer.concat(chunks));
    if (kind === 'rpc') res.writeHead(200, { 'content-type': 'text/xml', 'content-length': RPC_TRUE.length }).end(RPC_TRUE);
    else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
  });
}

const servers: http.Server[] = [];
const ports: number[] = [];
for (let i = 0; i < PORTS; i++) {
  const server = http.createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  ports.push((server.address() as AddressInfo).port);
}

serveCommands({
  ...childCommands(),
  /** `trackCallbacks: true` counts deliveries per callback from now on (see `callbacks`). */
  reset: (msg) => {
    state.times = [];
    state.byKind = { rss: 0, rpc: 0, ws: 0 };
    state.bytes = { rss: 0, rpc: 0, ws: 0 };
    state.samples = {};
    state.verifications = 0;
    state.feedReads = 0;
    state.perCallback = msg.trackCallbacks === true ? new Map() : undefined;
  },
  /** Callbacks that got a delivery since the reset, and those that got more than one. */
  callbacks: () => {
    let duplicated = 0;
    let extra = 0;
    for (const n of state.perCallback?.values() ?? []) {
      if (n > 1) {
        duplicated++;
        extra += n - 1;
      }
    }
    return { distinct: state.perCallback?.size ?? 0, duplicated, extra };
  },
  /** The next read of /feed/bump/<key> finds a new entry. */
  bump: (msg) => {
    const key = msg.key as string;
    bumped.set(key, (bumped.get(key) ?? 10) + 1);
  },
  /** Counts, samples, and arrival times (all of them with `times: true`). */
  stats: (msg) => ({
    count: state.times.length,
    byKind: state.byKind,
    bytes: state.bytes,
    samples: state.samples,
    verifications: state.verifications,
    feedReads: state.feedReads,
    first: state.times[0],
    last: state.times.at(-1),
    ...(msg.times === true && { times: state.times }),
  }),
  /** Resolves once `n` deliveries arrived since the last reset: the count, and the n-th arrival time. */
  waitFor: (msg) => {
    const n = msg.n as number;
    if (state.times.length >= n) return { count: state.times.length, nth: state.times[n - 1] };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.timer !== timer);
        reject(new Error(`timed out waiting for ${n} deliveries; ${state.times.length} arrived`));
      }, (msg.timeoutMs as number | undefined) ?? 60_000);
      waiters.push({ n, resolve, timer });
    });
  },
});

process.send?.({ ready: { ports } });
