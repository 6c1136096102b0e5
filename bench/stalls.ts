// Event-loop stalls at scale: the longest single block of the event loop (the longest gap between
// turns of a setImmediate ticker) while each piece of work that grows with the hub runs. One
// JavaScript thread serves every protocol, so a block is how long every ping, delivery, stream
// and /healthz waits. Each is measured REPEAT times and the shortest kept (another process on
// the machine only ever lengthens one). In process, sources under tsx. Prints, never asserts.
//   npx tsx bench/stalls.ts          (STALLS_REPEAT=3; STALLS_PARTS=1,2,3,4 the parts to run)
//   1. a hub on 100,000 topics of one WebSub subscription each: its start (from the store's
//      open to its sweep), GET /feeds.opml, /stats.json, /metrics, / and /subscription;
//   2. the embedded store with one topic of 100,000 subscribers: a compaction, open();
//   3. a fan-out of a 100 KB body to 10,000 WebSub subscribers with secrets (each delivery
//      signed), and of 5 MB to 100, subscribers answering at once through a stand-in HTTP client;
//   4. an rssCloud ping of a big feed that changed since the last read (a podcast's archive:
//      1 MB of 400 entries, 5 MB of 2,000), the feed served from this process.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { BodyThread } from '../lib/body-thread.js';
import { loadConfig } from '../lib/config.js';
import type { HttpClient, HttpResponse } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import { newSubscription, newTopic } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import { startHub } from '../lib/server.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { installCleanup, line, machineLine, postForm, record, removeTempDir, tempDir } from './common.js';

const REPEAT = Number(process.env.STALLS_REPEAT ?? 3);
const PARTS = (process.env.STALLS_PARTS ?? '1,2,3,4').split(',').map((p) => p.trim());
const N = 100_000;
const FANOUT = 10_000;
const BIG_FANOUT = 100;
const expires = Date.now() + 86_400_000;
const hex = (i: number): string => (Math.imul(i, 2654435761) >>> 0).toString(16);
const ms = (n: number): string => `${n.toFixed(n < 10 ? 1 : 0)} ms`;

/** The longest gap between turns of the event loop while `work` runs, and its result. */
async function longestBlock<T>(work: () => Promise<T>): Promise<{ blockMs: number; result: T }> {
  let max = 0;
  let last = performance.now();
  let done = false;
  const tick = (): void => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    const result = await work();
    return { blockMs: Math.max(max, performance.now() - last), result };
  } finally {
    done = true;
  }
}

/** The shortest of REPEAT measurements of `work`'s longest block. */
async function shortest(what: string, work: () => Promise<unknown>): Promise<void> {
  let best = Infinity;
  for (let i = 0; i < REPEAT; i++) best = Math.min(best, (await longestBlock(work)).blockMs);
  line(what, ms(best));
  record({ bench: 'stalls', name: what, value: ms(best) });
}

/** A GET whose body is counted and dropped: the client's own decoding is no part of the hub's block. */
function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${url}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

const HUB_ENV = {
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'silent',
  RATE_LIMIT_PER_MINUTE: '0',
  POLL_ENABLED: 'false',
  DATABASE_URL: '',
};

async function pages(): Promise<void> {
  const dir = await tempDir('stalls-pages');
  const topic = (i: number): string => `https://news-daily-${i}.example-blogs.com/tech/feeds/${hex(i)}/rss.xml`;
  const callback = (i: number): string => `https://hooks.reader-${i % 5000}.example.net/cb/${hex(i)}?client=${i}`;
  const store = new LowdbStore({ dir });
  await store.open();
  for (let from = 0; from < N; from += 1000) {
    for (let i = from; i < from + 1000; i++) {
      void store.putTopic({ ...newTopic(topic(i)), version: 1 });
      void store.putSubscription({ ...newSubscription(topic(i), callback(i), 'websub', 0, expires), secret: hex(i * 7), deliveredVersion: 1 });
    }
    await store.flush();
  }
  await store.compact();
  await store.close();
  console.log(`\n  1. a hub on ${N.toLocaleString('en')} topics, one WebSub subscription each`);
  await shortest('start (open, sweep, resume) and stop', async () => (await startHub(loadConfig({ ...HUB_ENV, DATA_DIR: dir }))).close());
  const hub = await startHub(loadConfig({ ...HUB_ENV, DATA_DIR: dir }));
  try {
    // Past the 2 s for which the pages share their store reads: each GET reads and builds anew.
    const fresh = (p: string) => async () => {
      await new Promise((resolve) => setTimeout(resolve, 2100));
      return (await longestBlock(() => get(`${hub.url}${p}`))).blockMs;
    };
    for (const p of ['/feeds.opml', '/stats.json', '/metrics', '/']) {
      let best = Infinity;
      for (let i = 0; i < REPEAT; i++) best = Math.min(best, await fresh(p)());
      line(`GET ${p}`, ms(best));
      record({ bench: 'stalls', name: `${N.toLocaleString('en')} topics: GET ${p}`, value: ms(best) });
    }
    const query = `topic=${encodeURIComponent(topic(5))}&callback=${encodeURIComponent(callback(5))}`;
    await shortest('GET /subscription', () => get(`${hub.url}/subscription?${query}`, { authorization: `Bearer ${hex(35)}` }));
  } finally {
    await hub.close();
    await removeTempDir(dir);
  }
}

async function compaction(): Promise<void> {
  const dir = await tempDir('stalls-compact');
  const topic = 'https://popular.example.com/feed.xml';
  const store = new LowdbStore({ dir });
  await store.open();
  void store.putTopic({ ...newTopic(topic), version: 1 });
  for (let i = 0; i < N; i++) void store.putSubscription({ ...newSubscription(topic, `https://hooks.reader-${i % 5000}.example.net/cb/${hex(i)}?client=${i}`, 'websub', 0, expires), secret: hex(i), deliveredVersion: 1 });
  await store.flush();
  console.log(`\n  2. the embedded store, one topic of ${N.toLocaleString('en')} subscribers (one shard holds them all)`);
  await shortest('a compaction (that shard rewritten)', async () => {
    await store.putSubscription(newSubscription(topic, 'https://x.example/cb', 'websub', 0, expires));
    await store.compact();
  });
  await shortest("subscriptionsOf (a fan-out's read)", () => store.subscriptionsOf(topic));
  await store.close();
  await shortest('open() (before the hub answers anything)', async () => {
    const again = new LowdbStore({ dir });
    await again.open();
    await again.close();
  });
  await removeTempDir(dir);
}

async function fanOut(): Promise<void> {
  const dir = await tempDir('stalls-fanout');
  const topic = 'https://popular.example.com/feed.xml';
  const store = new LowdbStore({ dir });
  await store.open();
  void store.putTopic({ ...newTopic(topic), version: 1 });
  for (let i = 0; i < FANOUT; i++) void store.putSubscription({ ...newSubscription(topic, `http://cb${i % 500}.example/s/${i}`, 'websub', 0, expires), secret: `secret-${i}`, deliveredVersion: 1 });
  const big = 'https://podcast.example.com/archive.xml';
  void store.putTopic({ ...newTopic(big), version: 1 });
  for (let i = 0; i < BIG_FANOUT; i++) void store.putSubscription({ ...newSubscription(big, `http://cb${i}.example/big/${i}`, 'websub', 0, expires), secret: `secret-${i}`, deliveredVersion: 1 });
  await store.flush();
  // Every subscriber answers 200 at the next turn.
  const client = {
    request: async (_kind: string, url: string | URL): Promise<HttpResponse> => {
      await new Promise((resolve) => setImmediate(resolve));
      return { status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) };
    },
  } as unknown as HttpClient;
  const config = loadConfig(HUB_ENV);
  const notifier = new Notifier({ config, http: client, store, log: silentLogger });
  console.log(`\n  3. fan-out, DELIVERY_CONCURRENCY=${config.deliveryConcurrency}`);
  let version = 1;
  await shortest(`100 KB to ${FANOUT.toLocaleString('en')} WebSub subscribers, each signed`, async () => {
    const start = await notifier.stage({ topic, version: ++version, contentType: 'application/rss+xml', body: Buffer.alloc(100 * 1024, 'x') }, async () => {});
    await start();
    await notifier.drained();
  });
  notifier.close();
  // A topic delivered whole (a first version, a feed too long to diff) of MAX_RESPONSE_BYTES,
  // signed on the main thread, then (the default) on the worker thread.
  const bodies = new BodyThread(config.bodyThreadMinBytes);
  for (const [where, deps] of [['main thread', {}], ['worker thread', { bodies }]] as const) {
    const signing = new Notifier({ config, http: client, store, log: silentLogger, ...deps });
    await shortest(`5 MB to ${BIG_FANOUT} WebSub subscribers, each signed on the ${where}`, async () => {
      const start = await signing.stage({ topic: big, version: ++version, contentType: 'application/rss+xml', body: Buffer.alloc(5 * 1024 * 1024, 'x') }, async () => {});
      await start();
      await signing.drained();
    });
    signing.close();
  }
  bodies.close();
  await store.close();
  await removeTempDir(dir);
}

/** An RSS feed of `n` entries of about `size` bytes each, the first `fresh` of them new. */
function bigFeed(n: number, size: number, fresh: string): Buffer {
  const text = 'Show notes, chapter by chapter. '.repeat(Math.ceil(size / 32)).slice(0, size);
  const items = Array.from({ length: n }, (_, i) => {
    const id = i === 0 ? fresh : `episode-${n - i}`;
    return `<item><title>Episode ${id}</title><guid isPermaLink="false">${id}</guid><description>${text}</description><enclosure url="https://cdn.example.com/${id}.mp3" length="31415926" type="audio/mpeg"/></item>`;
  });
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>A long-running show</title><link>https://show.example.com/</link>${items.join('\n')}</channel></rss>\n`);
}

async function bigFeeds(): Promise<void> {
  const dir = await tempDir('stalls-bigfeed');
  const sizes = [
    { label: '1 MB, 400 entries', n: 400, size: 2500 },
    { label: '5 MB, 2,000 entries', n: 2000, size: 2300 },
  ];
  // Each read gets the other of two versions, so every read finds its bytes changed and is diffed.
  const versions = sizes.map((s) => [bigFeed(s.n, s.size, 'new-a'), bigFeed(s.n, s.size, 'new-b')]);
  let served = 0;
  const feeds = http.createServer((req, res) => {
    const pair = versions[Number(req.url?.slice(1))]!;
    res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8' }).end(pair[served++ % 2]);
  });
  await new Promise<void>((resolve) => feeds.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(feeds.address() as { port: number }).port}`;
  console.log('\n  4. an rssCloud ping of a big feed that changed since its last read');
  try {
    // The comparison on the main thread, then (the default) on the worker thread.
    for (const [where, minBytes] of [['main thread', '0'], ['worker thread', undefined]] as const) {
      const hub = await startHub(loadConfig({ ...HUB_ENV, DATA_DIR: dir, FETCH_ALLOW_CIDRS: '127.0.0.0/8', FETCH_MIN_INTERVAL_MS: '0', ...(minBytes !== undefined && { BODY_THREAD_MIN_BYTES: minBytes }) }));
      const ping = async (url: string): Promise<void> => {
        const { text } = await postForm(`${hub.url}/ping`, { url });
        if (!text.includes('success="true"')) throw new Error(`ping of ${url}: ${text}`);
      };
      try {
        for (const [i, s] of sizes.entries()) {
          const url = `${origin}/${i}`;
          // Read five times first: the first has nothing to diff against, the worker starts at the
          // second, and a hub that has run a while has its comparison's code optimised.
          for (let k = 0; k < 5; k++) await ping(url);
          await shortest(`${s.label} (${(versions[i]![0]!.length / 1e6).toFixed(2)} MB), compared on the ${where}`, () => ping(url));
        }
      } finally {
        await hub.close();
      }
    }
  } finally {
    feeds.close();
    await removeTempDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  console.log(`stalls: the longest single event-loop block of each (shortest of ${REPEAT})\n  ${machineLine()}`);
  const parts = [pages, compaction, fanOut, bigFeeds];
  for (const [i, part] of parts.entries()) if (PARTS.includes(String(i + 1))) await part();
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
