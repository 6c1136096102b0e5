// Memory against scale: the embedded store (what a hub process holds for its subscriptions)
// filled in steps through the Store API, with the heap measured after a full GC at each step.
//   - subscriptions: 10 per topic, up to 100,000 (so topics grow with them), realistic URLs and
//     a secret on the WebSub ones, as in bench/store.ts;
//   - topics alone: up to 50,000 feeds, no subscriptions, each with the fingerprints the hub keeps
//     after reading the feed twice, its 20 entries new each time: those of its 20 entries and of
//     the 20 read before them, remembered so that an entry coming back is no news (the most a
//     feed of 20 entries keeps; what most of a feed topic's memory is).
// Growth is linear when the cost of each step (bytes per record added) stays the same; the
// printed spread is the largest step cost over the smallest. Runs itself in a child with
// --expose-gc. Run: npx tsx bench/memory.ts
import { performance } from 'node:perf_hooks';
import { fmt, line, machineLine, record, removeTempDir, spawnChild, tempDir } from './common.js';
import { newTopic, type Protocol, type Subscription, type Topic } from '../lib/model.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { diffFeed } from '../lib/feeds/entries.js';

const SUB_STEPS = [0, 12_500, 25_000, 50_000, 100_000];
const TOPIC_STEPS = [0, 12_500, 25_000, 50_000];
const SUBS_PER_TOPIC = 10;
const ENTRIES_PER_FEED = 20;

interface Step {
  records: number;
  heapUsed: number;
  rss: number;
}

interface Result {
  subs: Step[];
  topics: Step[];
  ms: number;
}

// --- the child: fills a store and measures ---------------------------------------------------

const WORDS = ['news', 'tech', 'daily', 'weekly', 'podcast', 'journal', 'notes', 'garden', 'review', 'digest'];
const word = (i: number): string => WORDS[i % WORDS.length]!;
const hex = (i: number, n: number): string => ((i * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(4).slice(0, n);

function topic(i: number, prefix: string): Topic {
  return { ...newTopic(`https://${word(i)}-${word(i >> 3)}-${i}.example-blogs.com/${prefix}/feeds/${hex(i, 16)}/rss.xml`), version: 3, lastHash: hex(i + 7, 32), lastSize: 20_000, etag: `"${hex(i + 3, 16)}"` };
}

/** A feed topic as the hub keeps it after two reads of the feed, every entry new at the second. */
function feedTopic(i: number): Topic {
  const t = topic(i, 'only');
  const body = (from: number): Buffer => {
    const items: string[] = [];
    for (let n = from; n < from + ENTRIES_PER_FEED; n++) {
      items.push(`<item><title>Post ${n} of ${word(i)} ${i}</title><link>https://${word(i)}-${i}.example-blogs.com/${n}</link><description>Entry ${n}, a short summary.</description></item>`);
    }
    return Buffer.from(`<?xml version="1.0"?><rss version="2.0"><channel><title>${word(i)} ${i}</title>${items.join('')}</channel></rss>`);
  };
  const first = diffFeed(body(0), 'application/rss+xml', undefined)!.known;
  return { ...t, fingerprints: diffFeed(body(ENTRIES_PER_FEED), 'application/rss+xml', first)!.known };
}

function subscription(t: Topic, j: number, now: number): Subscription {
  const protocol: Protocol = j % 5 < 2 ? 'websub' : j % 5 === 2 ? 'xml-rpc' : j % 5 === 3 ? 'https-post' : 'http-post';
  const s: Subscription = {
    topic: t.url,
    callback: `https://hooks.${word(j)}-reader-${j % 5000}.example.net/pushbutton/callback/${hex(j, 20)}?client=${j}`,
    protocol,
    ctUpdates: j % 500,
    ctErrors: j % 5,
    ctConsecutiveErrors: 0,
    whenCreated: now - j,
    whenLastUpdate: now - 2 * j,
    whenLastError: null,
    whenExpires: now + 86_400_000,
    deliveredVersion: t.version,
  };
  if (protocol === 'websub') {
    s.secret = hex(j + 11, 40);
    s.leaseSeconds = 864_000;
  }
  if (protocol === 'xml-rpc') s.notifyProcedure = 'river.feedUpdated';
  return s;
}

function measure(records: number): Step {
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  const m = process.memoryUsage();
  return { records, heapUsed: m.heapUsed, rss: m.rss };
}

async function fill(dir: string, steps: number[], add: (store: LowdbStore, from: number, to: number) => Promise<void>): Promise<Step[]> {
  const store = new LowdbStore({ dir });
  await store.open();
  const out: Step[] = [];
  let have = 0;
  for (const n of steps) {
    await add(store, have, n);
    have = n;
    await store.settle();
    out.push(measure(n));
  }
  await store.close();
  return out;
}

async function inChild(): Promise<void> {
  const started = performance.now();
  const now = Date.now();
  const subsDir = await tempDir('memory-subs');
  const subs = await fill(subsDir, SUB_STEPS, async (store, from, to) => {
    for (let j = from; j < to; j += 1000) {
      const batch: Promise<void>[] = [];
      for (let k = j; k < Math.min(to, j + 1000); k++) {
        const t = topic(Math.floor(k / SUBS_PER_TOPIC), 'subs');
        if (k % SUBS_PER_TOPIC === 0) batch.push(store.putTopic(t));
        batch.push(store.putSubscription(subscription(t, k, now)));
      }
      await Promise.all(batch);
    }
  });
  await removeTempDir(subsDir);
  const topicsDir = await tempDir('memory-topics');
  const topics = await fill(topicsDir, TOPIC_STEPS, async (store, from, to) => {
    for (let i = from; i < to; i += 1000) {
      const batch: Promise<void>[] = [];
      for (let k = i; k < Math.min(to, i + 1000); k++) batch.push(store.putTopic(feedTopic(k)));
      await Promise.all(batch);
    }
  });
  await removeTempDir(topicsDir);
  const result: Result = { subs, topics, ms: performance.now() - started };
  process.send?.({ ready: result });
}

// --- the parent: prints ------------------------------------------------------------------------

function report(what: string, steps: Step[], extra: (records: number) => string): number[] {
  const costs: number[] = [];
  for (let i = 1; i < steps.length; i++) {
    const a = steps[i - 1]!;
    const b = steps[i]!;
    const per = (b.heapUsed - a.heapUsed) / (b.records - a.records);
    costs.push(per);
    line(
      `${fmt.int(a.records)} → ${fmt.int(b.records)} ${what}${extra(b.records)}`,
      `heap ${fmt.bytes(a.heapUsed)} → ${fmt.bytes(b.heapUsed)}: ${fmt.int(per)} B each (RSS ${fmt.bytes(b.rss)})`,
    );
  }
  return costs;
}

async function main(): Promise<void> {
  console.log(`Memory against scale (${machineLine()})`);
  console.log('  the embedded store filled through the Store API; heap after a full GC at each step');
  const { child, ready } = await spawnChild<Result>('memory.ts', { nodeArgs: ['--expose-gc'], env: { BENCH_MEMORY_CHILD: '1' }, readyTimeoutMs: 240_000 });
  await child.stop();
  const subCosts = report('subscriptions', ready.subs, (n) => ` (${fmt.int(n / SUBS_PER_TOPIC)} topics)`);
  const topicCosts = report(`feed topics alone (${ENTRIES_PER_FEED} entries each)`, ready.topics, () => '');
  const spread = (xs: number[]): number => Math.max(...xs) / Math.min(...xs);
  const last = ready.subs.at(-1)!;
  const perSub = (last.heapUsed - ready.subs[0]!.heapUsed) / last.records;
  const perTopic = (ready.topics.at(-1)!.heapUsed - ready.topics[0]!.heapUsed) / ready.topics.at(-1)!.records;
  line('per subscription, 0 → 100,000 (topic share incl.)', `${fmt.int(perSub)} B; step costs within ${spread(subCosts).toFixed(2)}×`);
  line(`per feed topic (${ENTRIES_PER_FEED} entries, ${ENTRIES_PER_FEED} remembered), 0 → 50,000`, `${fmt.int(perTopic)} B; step costs within ${spread(topicCosts).toFixed(2)}×`);
  const linear = spread(subCosts) < 1.5 && spread(topicCosts) < 1.5;
  line('linear (every step within 1.5× of the others)', linear ? 'yes' : 'NO');
  line('measured in', fmt.s(ready.ms));
  const b = 'memory';
  record({ bench: b, name: 'heap per subscription (100,000, 10 per topic)', value: `${fmt.int(perSub)} B (steps within ${spread(subCosts).toFixed(2)}×)`, target: 'linear', met: spread(subCosts) < 1.5 });
  record({ bench: b, name: `heap per feed topic (50,000 of ${ENTRIES_PER_FEED} entries and ${ENTRIES_PER_FEED} remembered, no subscriptions)`, value: `${fmt.int(perTopic)} B (steps within ${spread(topicCosts).toFixed(2)}×)`, target: 'linear', met: spread(topicCosts) < 1.5 });
}

if (process.env.BENCH_MEMORY_CHILD) await inChild();
else await main();
