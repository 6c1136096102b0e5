// Benchmark of the embedded store at the scale it promises (docs/adr/0002): 100,000
// subscriptions over 10,000 topics. Prints, never asserts. Run: npx tsx bench/store.ts
//   1. write everything through the Store API (group commit, compactions as they come);
//   2. open() the data dir in a fresh child process: time, RSS and heap after load;
//   3. churn at a steady rate (mixed put/delete) with monitorEventLoopDelay on, so that the
//      longest event-loop stall while the journal rotates and shards are rewritten shows.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { newTopic, type Protocol, type Subscription, type Topic } from '../lib/model.js';
import { LowdbStore, type LowdbStoreStats } from '../lib/store/lowdb-store.js';
import { record } from './common.js';

const SUBSCRIPTIONS = 100_000;
const TOPICS = 10_000;
const WRITE_CONCURRENCY = 1_000;
const CHURN_RATE = 2_000; // ops/s
const CHURN_SECONDS = Number(process.env.CHURN_SECONDS ?? 25);
/** monitorEventLoopDelay records the whole timer interval: a stall is roughly max minus this. */
const LOOP_RESOLUTION_MS = 1;
const IDLE_SECONDS = 3;
/** Smaller than the 16 MiB default, so that the churn phase goes through several compactions. */
const COMPACT_AFTER_BYTES = 4 * 1024 * 1024;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const storeModule = path.join(root, 'lib/store/lowdb-store.ts');
const MB = 1024 * 1024;
const mb = (n: number): string => `${(n / MB).toFixed(1)} MB`;
const ms = (n: number): string => `${n.toFixed(n < 10 ? 2 : 0)} ms`;
const line = (label: string, value: string): void => console.log(`  ${label.padEnd(48)} ${value}`);

// --- realistic records ----------------------------------------------------------------------

const WORDS = ['news', 'tech', 'daily', 'weekly', 'podcast', 'journal', 'notes', 'garden', 'review', 'digest'];
let seed = 12345;
const rnd = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const hex = (n: number): string => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

function topicUrl(i: number): string {
  // 60-90 characters
  return `https://${pick(WORDS)}-${pick(WORDS)}-${i}.example-blogs.com/${pick(WORDS)}/feeds/${hex(8 + Math.floor(rnd() * 20))}/rss.xml`;
}

function subscription(topic: Topic, j: number, now: number): Subscription {
  const r = rnd();
  const protocol: Protocol = r < 0.4 ? 'websub' : r < 0.6 ? 'xml-rpc' : r < 0.8 ? 'https-post' : 'http-post';
  const s: Subscription = {
    topic: topic.url,
    // 70-95 characters
    callback: `https://hooks.${pick(WORDS)}-reader-${j % 5000}.example.net/pushbutton/callback/${hex(12 + Math.floor(rnd() * 12))}?client=${j}`,
    protocol,
    ctUpdates: Math.floor(rnd() * 500),
    ctErrors: Math.floor(rnd() * 5),
    ctConsecutiveErrors: 0,
    whenCreated: now - Math.floor(rnd() * 86_400_000),
    whenLastUpdate: rnd() < 0.7 ? now - Math.floor(rnd() * 3_600_000) : null,
    whenLastError: rnd() < 0.1 ? now - Math.floor(rnd() * 3_600_000) : null,
    whenExpires: now + 86_400_000,
    deliveredVersion: topic.version,
  };
  if (protocol === 'websub') {
    s.secret = hex(32 + Math.floor(rnd() * 32));
    s.leaseSeconds = 864_000;
  }
  if (protocol === 'xml-rpc') s.notifyProcedure = 'river.feedUpdated';
  return s;
}

// --- the child that opens the data dir --------------------------------------------------------

const CHILD = `
const [storeModule, dir] = process.argv.slice(2);
const { LowdbStore } = await import(new URL('file://' + storeModule).href);
const { performance } = await import('node:perf_hooks');
globalThis.gc();
const before = process.memoryUsage();
const t0 = performance.now();
const store = new LowdbStore({ dir });
await store.open();
const openMs = performance.now() - t0;
const counts = await store.counts();
globalThis.gc();
const after = process.memoryUsage();
process.stdout.write(JSON.stringify({ openMs, before, after, counts, open: store.stats().open }));
await store.close();
`;

interface ChildResult {
  openMs: number;
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  counts: { topics: number; subscriptions: number };
  open: LowdbStoreStats['open'];
}

const children = new Set<ReturnType<typeof spawn>>();

function openInChild(script: string, dir: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', script, storeModule, dir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      if (code === 0) resolve(JSON.parse(out) as ChildResult);
      else reject(new Error(`child exited with ${code}`));
    });
  });
}

async function dirSize(dir: string): Promise<{ shards: number; journal: number; files: number }> {
  const r = { shards: 0, journal: 0, files: 0 };
  for (const f of await readdir(dir)) {
    const st = await stat(path.join(dir, f));
    if (!st.isFile()) continue;
    r.files++;
    if (f.startsWith('snapshot-')) r.shards += st.size;
    if (f.startsWith('journal-')) r.journal += st.size;
  }
  return r;
}

// --- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const cpus = os.cpus();
  console.log('Machine');
  line('cpu', `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`);
  line('memory', `${(os.totalmem() / 1024 ** 3).toFixed(1)} GB`);
  line('node', `${process.version} on ${os.platform()} ${os.release()}`);
  line('data dir', os.tmpdir());

  const dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-bench-'));
  const script = path.join(dir, '..', `${path.basename(dir)}-open.mjs`);
  const cleanup = (): void => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(script, { force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    await writeFile(script, CHILD);

    // 1. write --------------------------------------------------------------------------------
    console.log(`\nWrite ${SUBSCRIPTIONS.toLocaleString('en')} subscriptions over ${TOPICS.toLocaleString('en')} topics (${WRITE_CONCURRENCY} writes in flight, compaction after ${mb(COMPACT_AFTER_BYTES)} of journal)`);
    let store = new LowdbStore({ dir, compactAfterBytes: COMPACT_AFTER_BYTES });
    await store.open();
    const now = Date.now();
    const topics: Topic[] = Array.from({ length: TOPICS }, (_, i) => ({ ...newTopic(topicUrl(i)), version: 1 + Math.floor(rnd() * 50), lastHash: hex(32), lastSize: 20_000, etag: `"${hex(16)}"` }));
    const subs: Subscription[] = Array.from({ length: SUBSCRIPTIONS }, (_, j) => subscription(topics[j % TOPICS]!, j, now));
    const avg = (xs: string[]): string => (xs.reduce((n, x) => n + x.length, 0) / xs.length).toFixed(0);
    line('average topic URL / callback URL length', `${avg(topics.map((t) => t.url))} / ${avg(subs.map((s) => s.callback))} chars`);
    line('with a secret (websub)', `${subs.filter((s) => s.secret).length.toLocaleString('en')}`);

    let t0 = performance.now();
    for (let i = 0; i < topics.length; i += WRITE_CONCURRENCY) await Promise.all(topics.slice(i, i + WRITE_CONCURRENCY).map((t) => store.putTopic(t)));
    for (let i = 0; i < subs.length; i += WRITE_CONCURRENCY) await Promise.all(subs.slice(i, i + WRITE_CONCURRENCY).map((s) => store.putSubscription(s)));
    const writeMs = performance.now() - t0;
    const writes = topics.length + subs.length;
    line('all writes acknowledged (durable)', `${(writeMs / 1000).toFixed(2)} s, ${Math.round(writes / (writeMs / 1000)).toLocaleString('en')} writes/s`);
    await store.settle();
    line('… and the compaction in flight finished', `${((performance.now() - t0) / 1000).toFixed(2)} s`);
    let s = store.stats();
    line('journal batches (group commits)', `${s.journal.batches} for ${s.journal.lines.toLocaleString('en')} writes since open`);
    line('compactions / shard files written', `${s.compactions} / ${s.shardWrites} (longest compaction ${ms(s.longestCompactionMs)})`);
    // A few sequential writes: what one lone request waits for (append + fdatasync).
    t0 = performance.now();
    for (let i = 0; i < 200; i++) await store.putSubscription({ ...subs[i]!, ctUpdates: 1 });
    line('lone write latency (200 sequential)', `${ms((performance.now() - t0) / 200)} each`);
    await store.close();
    const size = await dirSize(dir);
    line('on disk', `shards ${mb(size.shards)}, journal ${mb(size.journal)}, ${size.files} files`);

    // 2. open in a fresh process ----------------------------------------------------------------
    console.log('\nopen() in a fresh child process (node --import tsx, gc before each reading)');
    let reopened: ChildResult | undefined;
    for (const label of ['with the journal left by phase 1', 'again, nothing to replay']) {
      const r = await openInChild(script, dir);
      reopened = r;
      console.log(`  ${label}:`);
      line('  open()', `${ms(r.openMs)} (${r.open.shardsLoaded} shards loaded, ${r.open.opsReplayed.toLocaleString('en')} journal ops replayed)`);
      line('  loaded', `${r.counts.subscriptions.toLocaleString('en')} subscriptions, ${r.counts.topics.toLocaleString('en')} topics`);
      line('  RSS before → after load', `${mb(r.before.rss)} → ${mb(r.after.rss)}`);
      line('  heap used before → after load', `${mb(r.before.heapUsed)} → ${mb(r.after.heapUsed)}`);
      line('  per subscription (RSS Δ / heap Δ)', `${((r.after.rss - r.before.rss) / r.counts.subscriptions).toFixed(0)} B / ${((r.after.heapUsed - r.before.heapUsed) / r.counts.subscriptions).toFixed(0)} B`);
    }

    // 3. churn ------------------------------------------------------------------------------------
    console.log(`\nChurn: ${CHURN_RATE} ops/s for ${CHURN_SECONDS} s (50% update, 25% delete, 25% new), event-loop delay monitored`);
    store = new LowdbStore({ dir, compactAfterBytes: COMPACT_AFTER_BYTES });
    t0 = performance.now();
    await store.open();
    line('open() in this process', ms(performance.now() - t0));
    // Keys only (their strings are the store's own), so that this process holds about what a hub would.
    subs.length = 0;
    const live: [string, string][] = (await store.listSubscriptions()).map((x) => [x.topic, x.callback]);
    const before = store.stats();
    const ack = createHistogram();
    let issued = 0;
    let failed = 0;
    let nextNew = SUBSCRIPTIONS;
    const inflight = new Set<Promise<unknown>>();
    const op = async (): Promise<unknown> => {
      const r = rnd();
      const i = Math.floor(rnd() * live.length);
      const [topic, callback] = live[i]!;
      if (r < 0.5) {
        // What a delivery does: read, update, write back.
        const cur = await store.getSubscription(topic, callback);
        if (!cur) return;
        return store.putSubscription({ ...cur, ctUpdates: cur.ctUpdates + 1, whenLastUpdate: Date.now(), deliveredVersion: (cur.deliveredVersion ?? 0) + 1 });
      }
      if (r < 0.75) {
        live[i] = live[live.length - 1]!;
        live.pop();
        return store.deleteSubscription(topic, callback);
      }
      const fresh = subscription(topics[Math.floor(rnd() * TOPICS)]!, nextNew++, Date.now());
      live.push([fresh.topic, fresh.callback]);
      return store.putSubscription(fresh);
    };
    // The noise floor: the same process, idle, for a few seconds.
    const idle = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    idle.enable();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    idle.disable();
    line(`idle baseline: event-loop delay max / p99 (${IDLE_SECONDS} s)`, `${ms(idle.max / 1e6)} / ${ms(idle.percentile(99) / 1e6)}`);

    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    // Which gaps fell while a compaction ran (rotation, shard rewrites, segment deletion)?
    const gap = { compacting: 0, other: 0 };
    let lastTick = performance.now();
    const gapTimer = setInterval(() => {
      const t = performance.now();
      const key = store.stats().compacting ? 'compacting' : 'other';
      gap[key] = Math.max(gap[key], t - lastTick);
      lastTick = t;
    }, LOOP_RESOLUTION_MS);
    const churnStart = performance.now();
    await new Promise<void>((resolve) => {
      const total = CHURN_RATE * CHURN_SECONDS;
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - churnStart) / 1000) * CHURN_RATE));
        while (issued < due) {
          issued++;
          const t = performance.now();
          const p = op().then(
            () => ack.record(Math.max(1, Math.round((performance.now() - t) * 1000))),
            () => failed++,
          );
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        if (issued >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
    });
    await Promise.all(inflight);
    const churnMs = performance.now() - churnStart;
    await store.settle();
    loop.disable();
    clearInterval(gapTimer);
    s = store.stats();
    line('operations', `${issued.toLocaleString('en')} in ${(churnMs / 1000).toFixed(1)} s (${Math.round(issued / (churnMs / 1000))} ops/s), ${failed} failed`);
    line(`event-loop delay max / p99 / p50 (${LOOP_RESOLUTION_MS} ms timer)`, `${ms(loop.max / 1e6)} / ${ms(loop.percentile(99) / 1e6)} / ${ms(loop.percentile(50) / 1e6)}`);
    line('longest timer gap: compacting / not', `${ms(gap.compacting)} / ${ms(gap.other)}`);
    line('write acknowledgement p50 / p99 / max', `${ms(ack.percentile(50) / 1000)} / ${ms(ack.percentile(99) / 1000)} / ${ms(ack.max / 1000)}`);
    line('journal batches (group commits)', `${s.journal.batches - before.journal.batches}`);
    line('compactions (failed) / shard files written', `${s.compactions - before.compactions} (${s.compactionsFailed}) / ${s.shardWrites - before.shardWrites}`);
    line('last / longest compaction (wall clock)', `${ms(s.lastCompactionMs)} / ${ms(s.longestCompactionMs)}`);
    line('subscriptions at the end', `${(await store.counts()).subscriptions.toLocaleString('en')}`);

    // What the operator's pages (/stats.json, /feeds.opml) read on every load: the topics with
    // their subscription counts; for comparison, every subscription, which they once read instead.
    t0 = performance.now();
    const subscribed = await store.subscribedTopics();
    const countsMs = performance.now() - t0;
    t0 = performance.now();
    const everyOne = await store.listSubscriptions();
    line('topics with their counts (the pages read this)', `${ms(countsMs)} (${subscribed.length.toLocaleString('en')} topics)`);
    line('for comparison: every subscription', `${ms(performance.now() - t0)} (${everyOne.length.toLocaleString('en')})`);

    // For comparison: what one JSON.stringify of the whole state (the unsharded snapshot) costs.
    const all = { topics: await store.listTopics(), subscriptions: await store.listSubscriptions() };
    t0 = performance.now();
    const text = JSON.stringify(all);
    line('for comparison: one JSON.stringify of all', `${ms(performance.now() - t0)} blocking (${mb(text.length)})`);
    await store.close();

    // For bench/run.ts's summary.
    if (reopened) {
      const perSub = (reopened.after.heapUsed - reopened.before.heapUsed) / reopened.counts.subscriptions;
      record({ bench: 'store', name: '100,000 subscriptions: open() in a fresh process', value: ms(reopened.openMs) });
      record({ bench: 'store', name: '100,000 subscriptions: RSS / heap after open()', value: `${mb(reopened.after.rss)} / ${mb(reopened.after.heapUsed)} (${perSub.toFixed(0)} B heap per subscription)` });
    }
    record({ bench: 'store', name: `churn at ${CHURN_RATE} ops/s: longest event-loop stall`, value: `${ms(Math.max(gap.compacting, gap.other))} (idle baseline max ${ms(idle.max / 1e6)})` });
    record({ bench: 'store', name: `churn at ${CHURN_RATE} ops/s: write acknowledgement p99`, value: ms(ack.percentile(99) / 1000) });
  } finally {
    cleanup();
  }
  console.log(`\nTotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
