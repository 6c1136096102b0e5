// Runs every benchmark, one after another, each in its own process, then prints the machine
// and every figure with its target. Nothing is asserted: the exit code is 0 unless a benchmark
// itself failed. Every process started here (and by the benchmarks) is stopped at the end, on
// an error, and on Ctrl-C / SIGTERM.
//   npm run bench                 all of them (about 4 minutes)
//   npm run bench -- fanout       only the ones named (fanout notifier intake subscribe store memory latency stalls streams)
//   npm run bench -- cluster      several processes on PostgreSQL: only when named (see bench/cluster.ts)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_DIR, ROOT, buildHub, machine, machineLine, type Figure } from './common.js';

interface Bench {
  name: string;
  file: string;
  what: string;
  env?: Record<string, string>;
  /** Only when named: too long for the default run. */
  optIn?: boolean;
}

const ALL: Bench[] = [
  { name: 'fanout', file: 'fanout.ts', what: '1. fan-out to 1,000 and 10,000 subscribers, against the undici ceiling' },
  { name: 'notifier', file: 'notifier.ts', what: "1. the notifier's own CPU per delivery, the network taken out" },
  { name: 'intake', file: 'intake.ts', what: '2. intake: pings and WebSub subscribe requests, against bare express' },
  { name: 'subscribe', file: 'subscribe.ts', what: '3. subscribe throughput end to end' },
  // The churn phase is shortened from its 25 s default to keep the whole run under 5 minutes.
  { name: 'store', file: 'store.ts', what: '4. the store at scale (100,000 subscriptions)', env: { CHURN_SECONDS: process.env.CHURN_SECONDS ?? '15' } },
  { name: 'memory', file: 'memory.ts', what: '4. memory against the number of subscriptions and topics' },
  { name: 'latency', file: 'latency.ts', what: '5. publish → first delivery at idle' },
  { name: 'stalls', file: 'stalls.ts', what: 'event-loop stalls: the longest block of each piece of work that grows with the hub' },
  { name: 'streams', file: 'streams.ts', what: 'browsers at scale: 5,000 SSE streams, a change to all, readers that stop' },
  // Part B loads 1,000,000 subscriptions: it needs far more than the 4 minutes the others get.
  {
    name: 'cluster',
    file: 'cluster.ts',
    what: '6. several hub processes on PostgreSQL beside the embedded store; 1,000,000 subscriptions',
    env: { BENCH_TIMEOUT_MS: process.env.CLUSTER_TIMEOUT_MS ?? String(4 * 3600_000) },
    optIn: true,
  },
];

const wanted = process.argv.slice(2);
const benches = wanted.length === 0 ? ALL.filter((b) => !b.optIn) : ALL.filter((b) => wanted.includes(b.name));
if (benches.length === 0) {
  console.error(`unknown benchmark; choose from: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(2);
}

const results = path.join(os.tmpdir(), `pushbutton-bench-results-${process.pid}.ndjson`);
let current: ChildProcess | undefined;
let stopping = false;

function stopCurrent(): void {
  // SIGINT: every benchmark cleans up after it (its own children, its temp dirs) and exits.
  if (current && current.exitCode === null && current.signalCode === null) current.kill('SIGINT');
}

function cleanup(): void {
  stopCurrent();
  rmSync(results, { force: true });
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    stopping = true;
    console.error(`\n${sig}: stopping the benchmarks`);
    cleanup();
    // Give the benchmark a moment to stop its children, then go.
    setTimeout(() => process.exit(130), 2000).unref();
  });
}
process.on('exit', cleanup);

function runOne(b: Bench): Promise<number | null> {
  return new Promise((resolve) => {
    // An IPC channel, so a benchmark (and its children, in turn) stops by itself if this
    // process dies without a chance to tell it.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, b.file)], {
      cwd: ROOT,
      env: { ...process.env, ...b.env, BENCH_RESULTS: results },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    current = child;
    // Each benchmark stops itself after BENCH_TIMEOUT_MS (bench/common.ts); this is the backstop.
    const limit = Number(b.env?.BENCH_TIMEOUT_MS ?? process.env.BENCH_TIMEOUT_MS ?? 240_000) + 30_000;
    const timer = setTimeout(() => {
      console.error(`\n${b.name}: no end after ${limit / 1000} s; stopping it`);
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, limit);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve(signal ? null : code);
    });
  });
}

function summary(): void {
  const figures: Figure[] = existsSync(results)
    ? readFileSync(results, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Figure)
    : [];
  console.log(`\n${'='.repeat(100)}\nSummary (${machineLine()})\n`);
  let bench = '';
  for (const f of figures) {
    if (f.bench !== bench) {
      bench = f.bench;
      console.log(`  ${bench}`);
    }
    const target = f.target === undefined ? '' : `  [target ${f.target}: ${f.met ? 'met' : 'MISSED'}]`;
    console.log(`    ${f.name.padEnd(58)} ${f.value}${target}`);
  }
  const withTargets = figures.filter((f) => f.target !== undefined);
  const met = withTargets.filter((f) => f.met).length;
  console.log(`\n  targets met: ${met} of ${withTargets.length}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const m = machine();
  console.log(`Pushbutton benchmarks\n  cpu     ${m.cpu} × ${m.cores} cores\n  memory  ${m.memoryGb} GB\n  node    ${m.node} on ${m.os}\n  date    ${m.date}`);
  buildHub(); // once, for every benchmark below (they inherit BENCH_BUILT)
  const failed: string[] = [];
  for (const b of benches) {
    if (stopping) break;
    console.log(`\n${'-'.repeat(100)}\n${b.what}  (bench/${b.file})\n`);
    const t = performance.now();
    const code = await runOne(b);
    console.log(`  [${b.name}: ${((performance.now() - t) / 1000).toFixed(1)} s${code === 0 ? '' : `, FAILED (exit ${code})`}]`);
    if (code !== 0) failed.push(b.name);
  }
  summary();
  console.log(`  total ${((performance.now() - started) / 1000).toFixed(1)} s${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  process.exitCode = failed.length > 0 ? 1 : 0;
}

await main();
