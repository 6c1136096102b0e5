// Several hub processes on one PostgreSQL database, beside the embedded store.
//
//   A. For each configuration (embedded store, one process; PostgreSQL with 1, 2 and 3
//      processes), requests spread round-robin over the processes as a load balancer would:
//        - rssCloud pleaseNotify (REST, http-post), each answered after the feed read and the
//          synchronous test notification: time for all of them;
//        - WebSub subscribe, each answered 202 and verified in the background by a GET the sink
//          answers: time until every subscription is in the store;
//        - fan-out: one topic with N subscribers (⅓ each rssCloud http-post, XML-RPC, WebSub with
//          a secret; seeded through the Store API of process 1), one publish through process 1:
//          time to the last delivery, deliveries/s, latency from the publish, exactly one
//          delivery per callback, and which process made the attempts (each one's /metrics).
//   B. CLUSTER_SUBS subscriptions (1,000,000) on PostgreSQL with 3 processes, through rssCloud
//      pleaseNotify spread over the processes: CLUSTER_BIG_TOPIC (100,000) of them on one topic,
//      the rest over CLUSTER_TOPICS topics. HTTP stops after CLUSTER_HTTP_BUDGET_S; whatever is
//      left is written through the Store API (bulk) and the output says so. Then memory of each
//      process, the database's size, and the fan-out of the big topic.
//
// PostgreSQL is a throwaway server (test/helpers/pg-server.ts: initdb in a temporary directory,
// unix socket) with fsync ON, as a deployment runs it (CLUSTER_FSYNC=off to compare); each
// configuration gets a database of its own. Subscribers and feeds are one sink process
// (bench/sink.ts) with CLUSTER_SINK_PORTS ports, so that callbacks spread over that many hosts
// (host:port) as real subscribers spread over hosts. Everything runs on this one machine: the
// hubs, PostgreSQL, the sink and the load generator share its cores, and the output says how
// much CPU each used.
//
//   npm run bench:cluster                                  A and B (B at 1,000,000: long)
//   CLUSTER_PART=A npm run bench:cluster                   only A (a few minutes)
//   CLUSTER_PART=B CLUSTER_SUBS=20000 CLUSTER_BIG_TOPIC=2000 npm run bench:cluster
// More: CLUSTER_A_SUBS=5000 CLUSTER_A_FANOUT=10000 CLUSTER_A_REPEAT=2 CLUSTER_A_CONFIGS=lowdb,pg1,pg2,pg3
//       CLUSTER_A_CONCURRENCY=64 CLUSTER_TOPICS=10000 CLUSTER_B_PROCESSES=3 CLUSTER_B_CONCURRENCY=192
//       CLUSTER_HTTP_BUDGET_S=600 CLUSTER_SINK_PORTS=100 CLUSTER_FSYNC=on CLUSTER_PG_SHARED_BUFFERS=256MB
//       CLUSTER_TIMEOUT_MS=14400000 (the whole run stops after this)
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { Agent } from 'undici';
import type { StoreCounts } from '../lib/store/store.js';
import { postmasterPid, startPgServer, type PgServer } from '../test/helpers/pg-server.js';
import path from 'node:path';
import { fmt, installCleanup, line, machineLine, mixedSubscribers, percentile, postForm, profiled, record, sleep, startHubProcess, startSink, wallNow, type HubProcess, type SeedSub, type Sink } from './common.js';

function envInt(name: string, dflt: number): number {
  const v = process.env[name]?.trim();
  if (v === undefined || v === '') return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: expected a whole number, got "${v}"`);
  return n;
}

const PART = (process.env.CLUSTER_PART ?? 'AB').toUpperCase();
const A_SUBS = envInt('CLUSTER_A_SUBS', 5_000);
const A_FANOUT = envInt('CLUSTER_A_FANOUT', 10_000);
const A_REPEAT = Math.max(1, envInt('CLUSTER_A_REPEAT', 2));
const A_CONCURRENCY = envInt('CLUSTER_A_CONCURRENCY', 64);
const A_CONFIGS = (process.env.CLUSTER_A_CONFIGS ?? 'lowdb,pg1,pg2,pg3').split(',').map((s) => s.trim());
const SUBS = envInt('CLUSTER_SUBS', 1_000_000);
const BIG = Math.min(SUBS, envInt('CLUSTER_BIG_TOPIC', 100_000));
const B_TOPICS = Math.max(1, envInt('CLUSTER_TOPICS', 10_000));
const B_PROCESSES = Math.max(1, envInt('CLUSTER_B_PROCESSES', 3));
const B_CONCURRENCY = envInt('CLUSTER_B_CONCURRENCY', 192);
const HTTP_BUDGET_MS = envInt('CLUSTER_HTTP_BUDGET_S', 600) * 1000;
const SINK_PORTS = Math.max(1, envInt('CLUSTER_SINK_PORTS', 100));
const DURABLE = !/^(0|off|false|no)$/i.test(process.env.CLUSTER_FSYNC ?? 'on');
const SHARED_BUFFERS = process.env.CLUSTER_PG_SHARED_BUFFERS ?? '256MB';
/** A-part topics for the subscribe phases (as bench/subscribe.ts). */
const A_TOPICS = 100;
/** Requests not measured, before each configuration's subscribe phases: JIT, connections. */
const WARMUP = 300;
/** After the last expected delivery: how long to keep counting, so that late duplicates show. */
const SETTLE_MS = 1500;
/** Subscriptions per Store API call in B's bulk path (one call in flight per process). */
const BULK_CHUNK = 10_000;
const PROGRESS_MS = 30_000;

// B at 1,000,000 runs for a long while; the 4-minute stop in bench/common.ts (BENCH_TIMEOUT_MS,
// perhaps set for the other benchmarks) is meant for the short ones.
process.env.BENCH_TIMEOUT_MS = process.env.CLUSTER_TIMEOUT_MS ?? String(4 * 3600_000);

// --- CPU of every process involved ------------------------------------------------------------

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
})();

/** The parent and CPU time (µs, with reaped children's) of a process, from /proc/<pid>/stat. */
function procStat(pid: number): { ppid: number; cpuUs: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields from its end.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { ppid: Number(f[1]), cpuUs: (ticks / CLK_TCK) * 1e6 };
}

/**
 * PostgreSQL's CPU time: the postmaster with the backends it reaped (its cutime), plus every
 * live child (backends, the WAL writer, the checkpointer, autovacuum). NaN without /proc.
 */
function pgCpuUs(server: PgServer | undefined): number {
  if (!server) return 0;
  const pm = postmasterPid(server.dataDir);
  if (pm === undefined) return NaN;
  let total = procStat(pm)?.cpuUs ?? NaN;
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return NaN;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s?.ppid === pm) total += s.cpuUs;
  }
  return total;
}

/**
 * The whole machine's busy CPU time (µs; every core, every process, ours or not) and the time
 * the hypervisor gave to other guests (steal), from /proc/stat: on a shared machine, what the
 * benchmark did not use may still not have been free.
 */
function machineCpuUs(): { busy: number; steal: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    const us = (ticks: number): number => (ticks / CLK_TCK) * 1e6;
    return { busy: us(user + nice + system + irq + softirq), steal: us(steal) };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

interface Cpu {
  hubs: number[];
  pg: number;
  sink: number;
  load: number;
  machine: number;
  steal: number;
  at: number;
}

async function cpuNow(hubs: HubProcess[], sink: Sink, server: PgServer | undefined): Promise<Cpu> {
  const [h, s] = await Promise.all([Promise.all(hubs.map((x) => x.child.call<number>('cpu'))), sink.child.call<number>('cpu')]);
  const u = process.cpuUsage();
  const m = machineCpuUs();
  return { hubs: h, pg: pgCpuUs(server), sink: s, load: u.user + u.system, machine: m.busy, steal: m.steal, at: wallNow() };
}

function cpuSpent(a: Cpu, b: Cpu): Cpu {
  return {
    hubs: b.hubs.map((x, i) => x - a.hubs[i]!),
    pg: b.pg - a.pg,
    sink: b.sink - a.sink,
    load: b.load - a.load,
    machine: b.machine - a.machine,
    steal: b.steal - a.steal,
    at: b.at - a.at,
  };
}

const sec = (us: number): string => (Number.isFinite(us) ? `${(us / 1e6).toFixed(1)} s` : 'n/a');

function describeCpu(c: Cpu, withPg: boolean): string {
  const total = c.hubs.reduce((n, x) => n + x, 0) + (withPg && Number.isFinite(c.pg) ? c.pg : 0) + c.sink + c.load;
  const cores = os.cpus().length;
  const hubs = c.hubs.length === 1 ? `hub ${sec(c.hubs[0]!)}` : `hubs ${c.hubs.map(sec).join(' + ')}`;
  // The rest of the machine's busy time: the kernel's loopback network work, and anyone else's.
  const others = Number.isFinite(c.machine) ? `; machine busy ${sec(c.machine)} (${sec(Math.max(0, c.machine - total))} outside these processes${c.steal > 0 ? `, steal ${sec(c.steal)}` : ''})` : '';
  return `${hubs}${withPg ? `, PostgreSQL ${sec(c.pg)}` : ''}, sink ${sec(c.sink)}, load ${sec(c.load)}: ${sec(total)} of ${sec(cores * c.at * 1000)}${others}`;
}

/** Delivery attempts a process has made (its own /metrics; each process counts only its own). */
async function attemptsOf(hub: HubProcess): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^pushbutton_deliveries_total\{[^}]*\} ([\d.e+]+)$/gm)) n += Number(m[1]);
  return n;
}

// --- the load: form POSTs spread round-robin over the processes --------------------------------

interface DriveOptions {
  hubs: HubProcess[];
  count: number;
  concurrency: number;
  path: string;
  /** The status every answer must have; 200 also needs rssCloud's success="true". */
  expect: 200 | 202;
  form: (i: number) => string;
  /** No new request after this wall time; those in flight finish. */
  deadline?: number;
  progress?: boolean;
}

interface Drive {
  /** Requests sent: all `count`, unless the deadline came first. */
  issued: number;
  failed: number;
  firstFailure?: string;
  /** From the first request to the last answer. */
  ms: number;
  lastAnswerAt: number;
  p50: number;
  p99: number;
}

async function drive(o: DriveOptions): Promise<Drive> {
  // Twice the even share: a round-robin over workers that are not tied to a process leaves
  // a process with more than its share now and then, and that must not queue in the client.
  const perHub = Math.ceil((2 * o.concurrency) / o.hubs.length);
  const agents = o.hubs.map(() => new Agent({ connections: perHub, keepAliveTimeout: 60_000 }));
  const lat = new Float64Array(o.count);
  let next = 0;
  let answered = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  let lastAnswerAt = 0;
  const started = wallNow();
  let mark = { at: started, answered: 0 };
  const timer = o.progress
    ? setInterval(() => {
        const now = wallNow();
        const rate = (answered - mark.answered) / ((now - mark.at) / 1000);
        mark = { at: now, answered };
        console.log(`    … ${fmt.s(now - started)}: ${fmt.int(answered)} of ${fmt.int(o.count)} answered, ${fmt.rate(rate)} over the last ${fmt.s(PROGRESS_MS)}${failed ? `, ${fmt.int(failed)} failed` : ''}`);
      }, PROGRESS_MS)
    : undefined;
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  try {
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency, o.count) }, async () => {
        while (next < o.count && (o.deadline === undefined || wallNow() < o.deadline)) {
          const i = next++;
          const h = i % o.hubs.length;
          const t = wallNow();
          let problem: string | undefined;
          try {
            const res = await agents[h]!.request({ origin: o.hubs[h]!.url, path: o.path, method: 'POST', headers, body: o.form(i) });
            const text = await res.body.text();
            if (res.statusCode !== o.expect || (o.expect === 200 && !text.includes('success="true"'))) problem = `${res.statusCode} ${text.slice(0, 200)}`;
          } catch (e) {
            problem = e instanceof Error ? e.message : String(e);
          }
          lastAnswerAt = wallNow();
          lat[answered++] = lastAnswerAt - t;
          if (problem !== undefined) {
            failed++;
            firstFailure ??= problem;
          }
        }
      }),
    );
  } finally {
    clearInterval(timer);
    await Promise.all(agents.map((a) => a.close()));
  }
  const sorted = lat.slice(0, answered).sort();
  return {
    issued: next,
    failed,
    ...(firstFailure !== undefined && { firstFailure }),
    ms: lastAnswerAt - started,
    lastAnswerAt,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

// --- the hubs and their database ---------------------------------------------------------------

interface Counts extends StoreCounts {
  pendingVerifications: number;
}

async function createDatabase(server: PgServer, name: string): Promise<string> {
  await server.admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await server.admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(server.url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Vacuums and analyses a database just loaded, then checkpoints, so that autovacuum and the
 * checkpointer do not run inside the measurement that follows: in runs without this, the same
 * fan-out cost PostgreSQL 1 to 6 s of CPU.
 */
async function settle(server: PgServer, dbUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query('VACUUM (ANALYZE)');
  } finally {
    await client.end();
  }
  await server.admin.query('CHECKPOINT');
}

async function dropDatabase(server: PgServer, name: string): Promise<void> {
  await server.admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** The processes of one configuration, started at once (migrations queue on their lock). */
function startHubs(n: number, tag: string, env: Record<string, string>): Promise<HubProcess[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startHubProcess(`cluster-${tag}-${i + 1}`, env)));
}

async function stopAll(hubs: HubProcess[]): Promise<void> {
  await Promise.all(hubs.map((h) => h.stop()));
}

// --- the sink ----------------------------------------------------------------------------------

interface SinkStats {
  count: number;
  byKind: Record<'rss' | 'rpc' | 'ws', number>;
  times?: number[];
}

interface Callbacks {
  distinct: number;
  duplicated: number;
  extra: number;
}

const portOf = (sink: Sink, j: number): number => sink.ports[j % sink.ports.length]!;

// --- fan-out -----------------------------------------------------------------------------------

interface FanOut {
  n: number;
  deliveries: number;
  lastMs: number;
  firstMs: number;
  rate: number;
  p50: number;
  p99: number;
  callbacks: Callbacks;
  /** Delivery attempts per process during the fan-out. */
  attempts: number[];
  cpu: Cpu;
}

/** One publish through `via`; resolves when all `n` deliveries arrived and late duplicates had time to show. */
/** Numbers the CPU profiles of fan-outs (BENCH_PROFILE_DIR). */
let profiles = 0;

async function fanOut(hubs: HubProcess[], via: HubProcess, sink: Sink, server: PgServer | undefined, topic: string, n: number, timeoutMs: number): Promise<FanOut> {
  await sink.child.call('reset', { trackCallbacks: true });
  const before = await Promise.all(hubs.map(attemptsOf));
  const cpu0 = await cpuNow(hubs, sink, server);
  // BENCH_PROFILE_DIR: a CPU profile of the publishing process while it fans out, as bench/fanout.ts does.
  const profile = process.env.BENCH_PROFILE_DIR;
  if (profile) await via.child.call('profileStart');
  const t0 = wallNow();
  const res = await postForm(`${via.url}/websub`, { 'hub.mode': 'publish', 'hub.url': topic });
  if (res.status !== 204) throw new Error(`publish answered ${res.status}: ${res.text}`);
  await sink.child.call('waitFor', { n, timeoutMs }, timeoutMs + 10_000);
  if (profile) await via.child.call('profileStop', { file: path.join(profile, `cluster-fanout-${n}-${++profiles}.cpuprofile`) });
  const cpu1 = await cpuNow(hubs, sink, server);
  const stats = await sink.child.call<SinkStats>('stats', { times: true });
  await sleep(SETTLE_MS);
  const settled = await sink.child.call<SinkStats>('stats');
  const callbacks = await sink.child.call<Callbacks>('callbacks');
  const after = await Promise.all(hubs.map(attemptsOf));
  const lat = (stats.times ?? []).map((t) => t - t0).sort((a, b) => a - b);
  const lastMs = lat[n - 1] ?? NaN;
  return {
    n,
    deliveries: settled.count,
    lastMs,
    firstMs: lat[0] ?? NaN,
    rate: n / (lastMs / 1000),
    p50: percentile(lat.slice(0, n), 50),
    p99: percentile(lat.slice(0, n), 99),
    callbacks,
    attempts: after.map((x, i) => x - before[i]!),
    cpu: cpuSpent(cpu0, cpu1),
  };
}

function fanOutExact(f: FanOut): boolean {
  return f.deliveries === f.n && f.callbacks.distinct === f.n && f.callbacks.extra === 0;
}

function printFanOut(f: FanOut, withPg: boolean): void {
  line('  publish → last delivery', `${fmt.ms(f.lastMs)} (first after ${fmt.ms(f.firstMs)})`);
  line('  deliveries/s', fmt.rate(f.rate));
  line('  latency from the publish p50 / p99', `${fmt.ms(f.p50)} / ${fmt.ms(f.p99)}`);
  const exact = fanOutExact(f);
  line(
    '  deliveries / callbacks reached / duplicates',
    `${fmt.int(f.deliveries)} / ${fmt.int(f.callbacks.distinct)} of ${fmt.int(f.n)} / ${fmt.int(f.callbacks.extra)}${exact ? ' (exactly one each)' : ' — NOT EXACTLY ONE EACH'}`,
  );
  line('  delivery attempts per process (/metrics)', f.attempts.map(fmt.int).join(' / '));
  line('  CPU while it ran', describeCpu(f.cpu, withPg));
}

// --- A: throughput per configuration ---------------------------------------------------------

interface AConfig {
  key: string;
  label: string;
  pg: boolean;
  processes: number;
}

function aConfig(key: string): AConfig {
  if (key === 'lowdb') return { key, label: 'embedded store, 1 process', pg: false, processes: 1 };
  const m = /^pg(\d+)$/.exec(key);
  if (!m) throw new Error(`CLUSTER_A_CONFIGS: "${key}" is neither lowdb nor pg<processes>`);
  const processes = Number(m[1]);
  return { key, label: `PostgreSQL, ${processes} process${processes === 1 ? '' : 'es'}`, pg: true, processes };
}

interface AResult {
  config: AConfig;
  rss: Drive;
  rssCpu: Cpu;
  tests: number;
  rssStored: number;
  ws: Drive;
  wsVerifiedMs: number;
  wsVerified: number;
  wsCpu: Cpu;
  fan: FanOut[];
  seedMs: number;
}

/** A topic with `n` subscribers seeded through `hub`'s Store API, read once so it has a version. */
async function fanTopic(hub: HubProcess, sink: Sink, tag: string, n: number): Promise<{ topic: string; seedMs: number }> {
  const topic = `${sink.base}/feed/changing/${tag}`;
  const first = await postForm(`${hub.url}/ping`, { url: topic });
  if (first.status !== 200) throw new Error(`first ping answered ${first.status}: ${first.text}`);
  const seeded = await hub.child.call<{ ms: number }>('seed', { topic, subs: mixedSubscribers(sink, tag, n) }, 600_000);
  return { topic, seedMs: seeded.ms };
}

async function partAOne(config: AConfig, sink: Sink, server: PgServer | undefined): Promise<AResult> {
  const db = `cluster_a_${config.key}`;
  const dbUrl = config.pg && server ? await createDatabase(server, db) : '';
  const hubs = await startHubs(config.processes, config.key, {
    DATABASE_URL: dbUrl,
    MAX_SUBSCRIPTIONS_PER_TOPIC: String(Math.max(100_000, A_FANOUT + 10_000)),
  });
  const pgServer = config.pg ? server : undefined;
  try {
    console.log(`\n${config.label}`);
    const feed = (i: number): string => `${sink.base}/feed/static/a${i % A_TOPICS}`;
    const pleaseNotify = (tag: string) => (i: number) =>
      new URLSearchParams({ port: String(portOf(sink, i)), path: `/rss/${tag}/${i}`, protocol: 'http-post', url1: feed(i) }).toString();
    const subscribe = (tag: string) => (i: number) =>
      new URLSearchParams({
        'hub.mode': 'subscribe',
        'hub.topic': feed(i),
        'hub.callback': `http://127.0.0.1:${portOf(sink, i)}/ws/${tag}/${i}?user=${i}`,
        'hub.secret': `secret-${i}`,
      }).toString();

    // Warm-up, on every process: JIT, connections to the sink and the database.
    const wr = await drive({ hubs, count: WARMUP, concurrency: A_CONCURRENCY, path: '/pleaseNotify', expect: 200, form: pleaseNotify(`warm-${config.key}`) });
    const ww = await drive({ hubs, count: WARMUP, concurrency: A_CONCURRENCY, path: '/websub', expect: 202, form: subscribe(`warm-${config.key}`) });
    if (wr.failed || ww.failed) throw new Error(`warm-up failed: ${wr.firstFailure ?? ww.firstFailure}`);
    for (const until = wallNow() + 60_000; ; ) {
      const c = await hubs[0]!.child.call<Counts>('counts');
      if ((c.byProtocol.websub ?? 0) >= WARMUP) break;
      if (wallNow() > until) throw new Error(`warm-up: ${c.byProtocol.websub ?? 0} of ${WARMUP} WebSub subscriptions verified after 60 s`);
      await sleep(50);
    }

    // rssCloud pleaseNotify: the answer waits for the feed read and the test notification.
    await sink.child.call('reset');
    let cpu0 = await cpuNow(hubs, sink, pgServer);
    // BENCH_PROFILE_DIR: process 1's CPU profile while it takes its share of the subscribes.
    const rss = await profiled(hubs[0]!.child, `cluster-pleasenotify-${config.key}`, () =>
      drive({ hubs, count: A_SUBS, concurrency: A_CONCURRENCY, path: '/pleaseNotify', expect: 200, form: pleaseNotify(`a-${config.key}`) }),
    );
    const rssCpu = cpuSpent(cpu0, await cpuNow(hubs, sink, pgServer));
    const tests = (await sink.child.call<SinkStats>('stats')).byKind.rss;
    const afterRss = await hubs[0]!.child.call<Counts>('counts');
    const rssStored = (afterRss.byProtocol['http-post'] ?? 0) - WARMUP;
    line('rssCloud pleaseNotify (with its test notification)', `${fmt.int(A_SUBS)} in ${fmt.s(rss.ms)}: ${fmt.rate(A_SUBS / (rss.ms / 1000))}, p50 ${fmt.ms(rss.p50)}, p99 ${fmt.ms(rss.p99)}`);
    line('  test notifications received / stored', `${fmt.int(tests)} / ${fmt.int(rssStored)}${rss.failed ? `; ${rss.failed} FAILED: ${rss.firstFailure}` : ''}`);
    line('  CPU', describeCpu(rssCpu, config.pg));

    // WebSub subscribe: 202 at once, verified in the background by the process that accepted it.
    const wsBefore = afterRss.byProtocol.websub ?? 0;
    cpu0 = await cpuNow(hubs, sink, pgServer);
    const started = wallNow();
    const ws = await drive({ hubs, count: A_SUBS, concurrency: A_CONCURRENCY, path: '/websub', expect: 202, form: subscribe(`a-${config.key}`) });
    let verified = 0;
    for (;;) {
      const c = await hubs[0]!.child.call<Counts>('counts');
      verified = (c.byProtocol.websub ?? 0) - wsBefore;
      if (verified >= A_SUBS || (c.pendingVerifications === 0 && wallNow() - ws.lastAnswerAt > 1000)) break;
      if (wallNow() - ws.lastAnswerAt > 120_000) break;
      await sleep(25);
    }
    const wsVerifiedMs = wallNow() - started;
    const wsCpu = cpuSpent(cpu0, await cpuNow(hubs, sink, pgServer));
    line('WebSub subscribe → all verified', `${fmt.int(verified)} of ${fmt.int(A_SUBS)} in ${fmt.s(wsVerifiedMs)}: ${fmt.rate(verified / (wsVerifiedMs / 1000))}`);
    line('  all answered 202', `${fmt.s(ws.ms)}, p50 ${fmt.ms(ws.p50)}, p99 ${fmt.ms(ws.p99)}${ws.failed ? `; ${ws.failed} FAILED: ${ws.firstFailure}` : ''}`);
    line('  CPU', describeCpu(wsCpu, config.pg));

    // Fan-out: one publish through process 1, which stages the version and claims it.
    const warm = await fanTopic(hubs[0]!, sink, `fanwarm-${config.key}`, Math.min(1000, A_FANOUT));
    await fanOut(hubs, hubs[0]!, sink, pgServer, warm.topic, Math.min(1000, A_FANOUT), 120_000);
    const target = await fanTopic(hubs[0]!, sink, `fan-${config.key}`, A_FANOUT);
    if (pgServer) await settle(pgServer, dbUrl);
    const fan: FanOut[] = [];
    for (let r = 0; r < A_REPEAT; r++) fan.push(await fanOut(hubs, hubs[0]!, sink, pgServer, target.topic, A_FANOUT, 120_000 + A_FANOUT * 20));
    const best = fan.reduce((a, b) => (b.rate > a.rate ? b : a));
    console.log(`  fan-out to ${fmt.int(A_FANOUT)} subscribers, published through process 1 (seeded in ${fmt.s(target.seedMs)}; best of ${A_REPEAT}, all: ${fan.map((f) => fmt.rate(f.rate)).join(', ')})`);
    printFanOut(best, config.pg);
    const inexact = fan.filter((f) => !fanOutExact(f));
    if (inexact.length) line('  runs not exactly one delivery per callback', `${inexact.length} of ${fan.length}`);
    return { config, rss, rssCpu, tests, rssStored, ws, wsVerifiedMs, wsVerified: verified, wsCpu, fan, seedMs: target.seedMs };
  } finally {
    await stopAll(hubs);
    if (config.pg && server) await dropDatabase(server, db);
  }
}

function partASummary(results: AResult[]): void {
  console.log(`\nA. Side by side (${fmt.int(A_SUBS)} subscriptions per protocol, ${A_CONCURRENCY} requests in flight; fan-out to ${fmt.int(A_FANOUT)}, best of ${A_REPEAT})`);
  const cols = results.map((r) => (r.config.pg ? `pg × ${r.config.processes}` : 'embedded'));
  const row = (label: string, cells: string[]): void => console.log(`  ${label.padEnd(40)} ${cells.map((c) => c.padStart(14)).join('')}`);
  row('', cols);
  row('pleaseNotify/s', results.map((r) => fmt.rate(A_SUBS / (r.rss.ms / 1000))));
  row('WebSub subscribed and verified/s', results.map((r) => fmt.rate(r.wsVerified / (r.wsVerifiedMs / 1000))));
  const best = (r: AResult): FanOut => r.fan.reduce((a, b) => (b.rate > a.rate ? b : a));
  row('fan-out deliveries/s', results.map((r) => fmt.rate(best(r).rate)));
  row('fan-out: publish → last delivery', results.map((r) => fmt.ms(best(r).lastMs)));
  row('fan-out: latency p50', results.map((r) => fmt.ms(best(r).p50)));
  row('fan-out: latency p99', results.map((r) => fmt.ms(best(r).p99)));
  row('fan-out: exactly one per callback', results.map((r) => (r.fan.every(fanOutExact) ? 'yes' : 'NO')));
  row('fan-out: attempts by process 1', results.map((r) => fmt.pct(best(r).attempts[0]! / Math.max(1, best(r).attempts.reduce((a, b) => a + b, 0)))));
  console.log(
    [
      '',
      '  How the work is shared: subscribe requests go to every process (round-robin), and each',
      '  verifies what it accepted. A fan-out is delivered by the process that staged the version',
      '  (here process 1, which the publish reached): the others take an entry over only when its',
      '  claim expires, i.e. when its process died (OUTBOX_CLAIM_LEASE_MS), so one fan-out never',
      '  runs on more than one process. More processes help a fan-out only when several topics',
      `  change at once, and on this machine (${os.cpus().length} cores) every process shares the cores with`,
      '  PostgreSQL, the sink and the load generator: the CPU lines above say where the time went.',
    ].join('\n'),
  );
  const b = 'cluster';
  for (const r of results) {
    const k = r.config.pg ? `PostgreSQL × ${r.config.processes}` : 'embedded × 1';
    const f = best(r);
    record({ bench: b, name: `${k}: ${fmt.int(A_SUBS)} pleaseNotify`, value: `${fmt.rate(A_SUBS / (r.rss.ms / 1000))} (p99 ${fmt.ms(r.rss.p99)})` });
    record({ bench: b, name: `${k}: ${fmt.int(A_SUBS)} WebSub subscribe, verified`, value: fmt.rate(r.wsVerified / (r.wsVerifiedMs / 1000)) });
    record({ bench: b, name: `${k}: fan-out to ${fmt.int(A_FANOUT)}`, value: `${fmt.rate(f.rate)}, last ${fmt.ms(f.lastMs)}, p50 ${fmt.ms(f.p50)}, p99 ${fmt.ms(f.p99)}${r.fan.every(fanOutExact) ? '' : ', NOT exactly once'}` });
  }
}

// --- B: 1,000,000 subscriptions ------------------------------------------------------------------

/** Whether subscription i is one of the big topic's: exactly BIG of SUBS, spread evenly through the sequence. */
function isBig(i: number): boolean {
  return Math.floor(((i + 1) * BIG) / SUBS) > Math.floor((i * BIG) / SUBS);
}

interface BSub {
  topic: string;
  port: number;
  path: string;
  protocol: 'http-post' | 'xml-rpc';
}

/** Subscription i of B: the big topic or one of the others; ⅔ http-post, ⅓ XML-RPC; callbacks over every sink port. */
function bSub(sink: Sink, bigTopic: string, i: number): BSub {
  const big = isBig(i);
  // The index within its own group, so that both groups get the same mix of ports and protocols.
  const j = big ? Math.floor((i * BIG) / SUBS) : i - Math.floor(((i + 1) * BIG) / SUBS);
  const protocol = j % 3 === 2 ? 'xml-rpc' : 'http-post';
  const dir = protocol === 'xml-rpc' ? 'rpc' : 'rss';
  return {
    topic: big ? bigTopic : `${sink.base}/feed/static/b${j % B_TOPICS}`,
    port: portOf(sink, j),
    path: `/${dir}/b${big ? 'big' : ''}/${i}`,
    protocol,
  };
}

async function partB(sink: Sink, server: PgServer): Promise<void> {
  const db = 'cluster_b';
  const dbUrl = await createDatabase(server, db);
  console.log(
    `\nB. ${fmt.int(SUBS)} subscriptions on PostgreSQL, ${B_PROCESSES} processes: ${fmt.int(BIG)} on one topic, the rest over ${fmt.int(Math.min(B_TOPICS, SUBS - BIG))} topics; ` +
      `callbacks over ${sink.ports.length} sink ports (⅔ http-post, ⅓ XML-RPC)`,
  );
  const hubs = await startHubs(B_PROCESSES, 'b', {
    DATABASE_URL: dbUrl,
    MAX_SUBSCRIPTIONS_PER_TOPIC: String(Math.max(100_000, BIG + 10_000)),
    MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST: String(Math.max(1_000_000, SUBS)),
  });
  try {
    const bigTopic = `${sink.base}/feed/bump/big`;
    const mem0 = await Promise.all(hubs.map((h) => h.child.call<NodeJS.MemoryUsage>('memory')));
    line('memory per process at start (RSS / heap)', mem0.map((m) => `${fmt.bytes(m.rss)} / ${fmt.bytes(m.heapUsed)}`).join(', '));

    // Through HTTP: rssCloud pleaseNotify, the cheapest real way in (no verification round
    // trip after the answer), with its feed read and test notification.
    await sink.child.call('reset');
    const cpu0 = await cpuNow(hubs, sink, server);
    console.log(`  rssCloud pleaseNotify, ${B_CONCURRENCY} in flight, round-robin; HTTP for at most ${fmt.s(HTTP_BUDGET_MS)}:`);
    const http = await drive({
      hubs,
      count: SUBS,
      concurrency: B_CONCURRENCY,
      path: '/pleaseNotify',
      expect: 200,
      deadline: wallNow() + HTTP_BUDGET_MS,
      progress: true,
      form: (i) => {
        const s = bSub(sink, bigTopic, i);
        return new URLSearchParams({ port: String(s.port), path: s.path, protocol: s.protocol, url1: s.topic, ...(s.protocol === 'xml-rpc' && { notifyProcedure: 'river.feedUpdated' }) }).toString();
      },
    });
    const httpCpu = cpuSpent(cpu0, await cpuNow(hubs, sink, server));
    const httpRate = http.issued / (http.ms / 1000);
    line('through HTTP (pleaseNotify)', `${fmt.int(http.issued)} in ${fmt.s(http.ms)}: ${fmt.rate(httpRate)}, p50 ${fmt.ms(http.p50)}, p99 ${fmt.ms(http.p99)}`);
    if (http.failed) line('  FAILED', `${fmt.int(http.failed)}: ${http.firstFailure}`);
    line('  CPU', describeCpu(httpCpu, true));

    // The rest, if the budget ran out, through the Store API: the same PgStore.putSubscription
    // a verified subscription ends in (an upsert, each its own commit), without the HTTP face,
    // feed read and test notification.
    const rest = SUBS - http.issued;
    let bulkMs = 0;
    if (rest > 0) {
      const t = wallNow();
      let nextChunk = http.issued;
      await Promise.all(
        hubs.map(async (hub) => {
          while (nextChunk < SUBS) {
            const from = nextChunk;
            nextChunk = Math.min(SUBS, from + BULK_CHUNK);
            const subs: SeedSub[] = [];
            for (let i = from; i < nextChunk; i++) {
              const s = bSub(sink, bigTopic, i);
              subs.push({ topic: s.topic, callback: `http://127.0.0.1:${s.port}${s.path}`, protocol: s.protocol, ...(s.protocol === 'xml-rpc' && { notifyProcedure: 'river.feedUpdated' }) });
            }
            await hub.child.call('seed', { topic: bigTopic, subs }, 600_000);
          }
        }),
      );
      bulkMs = wallNow() - t;
      line('NOTE: the rest through the Store API, not HTTP', `${fmt.int(rest)} in ${fmt.s(bulkMs)}: ${fmt.rate(rest / (bulkMs / 1000))} (HTTP budget of ${fmt.s(HTTP_BUDGET_MS)} spent)`);
    }
    const counts = await hubs[0]!.child.call<Counts>('counts', {}, 600_000);
    const bigCount = await hubs[0]!.child.call<number>('countSubscriptions', { topic: bigTopic });
    const size = (await server.admin.query<{ n: string }>('SELECT pg_database_size($1)::text AS n', [db])).rows[0]?.n;
    line('stored', `${fmt.int(counts.subscriptions)} subscriptions (${fmt.int(bigCount)} on the big topic), ${fmt.int(counts.topics)} topics; database ${fmt.bytes(Number(size))}`);
    const mem1 = await Promise.all(hubs.map((h) => h.child.call<NodeJS.MemoryUsage>('memory')));
    line('memory per process after loading (RSS / heap)', mem1.map((m) => `${fmt.bytes(m.rss)} / ${fmt.bytes(m.heapUsed)}`).join(', '));
    // What one load of an operator's page costs at this size (both list the subscribed topics).
    for (const page of ['/stats.json', '/feeds.opml']) {
      const t = wallNow();
      const res = await fetch(`${hubs[0]!.url}${page}`);
      const text = await res.text();
      line(`GET ${page} from process 1`, `${fmt.ms(wallNow() - t)}, HTTP ${res.status}, ${fmt.bytes(Buffer.byteLength(text))}`);
    }

    await settle(server, dbUrl);
    // The big topic's fan-out: a new entry, one publish through process 1.
    await sink.child.call('bump', { key: 'big' });
    const timeoutMs = 120_000 + bigCount * 10;
    const f = await fanOut(hubs, hubs[0]!, sink, server, bigTopic, bigCount, timeoutMs);
    console.log(`  fan-out of the big topic to ${fmt.int(bigCount)} subscribers, published through process 1`);
    printFanOut(f, true);
    const memAfter = await Promise.all(hubs.map((h) => h.child.call<NodeJS.MemoryUsage>('memory')));
    line('memory per process after the fan-out (RSS / heap)', memAfter.map((m) => `${fmt.bytes(m.rss)} / ${fmt.bytes(m.heapUsed)}`).join(', '));

    const b = 'cluster';
    const how = rest > 0 ? `${fmt.int(http.issued)} through HTTP in ${fmt.s(http.ms)} (${fmt.rate(httpRate)}), ${fmt.int(rest)} through the Store API in ${fmt.s(bulkMs)}` : `all through HTTP in ${fmt.s(http.ms)} (${fmt.rate(httpRate)})`;
    record({ bench: b, name: `${fmt.int(SUBS)} subscriptions on PostgreSQL × ${B_PROCESSES}: loaded`, value: how });
    record({ bench: b, name: `${fmt.int(SUBS)} subscriptions: RSS / heap per process after loading`, value: mem1.map((m) => `${fmt.bytes(m.rss)} / ${fmt.bytes(m.heapUsed)}`).join(', ') });
    record({
      bench: b,
      name: `${fmt.int(SUBS)} subscriptions: fan-out to ${fmt.int(bigCount)}`,
      value: `last ${fmt.s(f.lastMs)}, ${fmt.rate(f.rate)}, p50 ${fmt.ms(f.p50)}, p99 ${fmt.ms(f.p99)}${fanOutExact(f) ? '' : ', NOT exactly once'}`,
    });
  } finally {
    await stopAll(hubs);
    await dropDatabase(server, db);
  }
}

// --- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = wallNow();
  installCleanup();
  const runA = PART.includes('A');
  const runB = PART.includes('B');
  if (!runA && !runB) throw new Error(`CLUSTER_PART: expected A, B or AB, got "${PART}"`);
  const configs = runA ? A_CONFIGS.map(aConfig) : [];
  console.log(`Several processes on PostgreSQL (${machineLine()})`);
  const needPg = runB || configs.some((c) => c.pg);
  const server = needPg
    ? await startPgServer({ durable: DURABLE, settings: [`shared_buffers = ${SHARED_BUFFERS}`] })
    : undefined;
  if (server) {
    const v = (await server.admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v;
    line('PostgreSQL', `${v}, throwaway on this machine (unix socket), fsync ${DURABLE ? 'ON' : 'OFF'}, shared_buffers ${SHARED_BUFFERS}`);
  }
  const sink = await startSink(SINK_PORTS);
  line('sink', `${sink.ports.length} ports (callbacks spread over that many hosts)`);
  try {
    if (runA) {
      const results: AResult[] = [];
      for (const c of configs) results.push(await partAOne(c, sink, server));
      partASummary(results);
    }
    if (runB) await partB(sink, server!);
  } finally {
    await sink.child.stop();
    await server?.stop();
  }
  console.log(`\nTotal ${fmt.s(wallNow() - started)}`);
}

await main();
