// Shared by the benchmarks: the machine line, percentiles, child processes that are always
// cleaned up (on success, error, Ctrl-C and SIGTERM), a small request/response protocol over
// the IPC channel, and the hand-off of each benchmark's figures to bench/run.ts.
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { newSubscription, type Protocol, type Subscription } from '../lib/model.js';

// A benchmark started by bench/run.ts has an IPC channel to it; the channel must not keep the
// benchmark alive once its work is done (the 'disconnect' listener below still fires).
process.channel?.unref();

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BENCH_DIR = path.join(ROOT, 'bench');

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// --- the machine ---------------------------------------------------------------------------------

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  os: string;
  date: string;
}

export function machine(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

export function machineLine(m: MachineInfo = machine()): string {
  return `${m.cpu} × ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, ${m.os}, ${m.date}`;
}

// --- subscriptions --------------------------------------------------------------------------------

/** A subscriber as a benchmark describes one: where, by which protocol, and what that protocol adds. */
export interface SeedSub {
  /** The topic, when it is not the one the `seed` command names. */
  topic?: string;
  callback: string;
  protocol: Protocol;
  secret?: string;
  notifyProcedure?: string;
}

/** The stored subscription a seeded subscriber becomes: active for a day, past `deliveredVersion` already. */
export function seededSubscription(topic: string, s: SeedSub, now: number, deliveredVersion: number): Subscription {
  return {
    ...newSubscription(topic, s.callback, s.protocol, now, now + 86_400_000),
    deliveredVersion,
    ...(s.secret !== undefined && { secret: s.secret, leaseSeconds: 864_000 }),
    ...(s.notifyProcedure !== undefined && { notifyProcedure: s.notifyProcedure }),
  };
}

// --- numbers -------------------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmt = {
  ms: (n: number): string => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en')} ms` : 'n/a'),
  s: (ms: number): string => `${(ms / 1000).toFixed(2)} s`,
  rate: (n: number): string => `${Math.round(n).toLocaleString('en')}/s`,
  int: (n: number): string => Math.round(n).toLocaleString('en'),
  pct: (r: number): string => `${(r * 100).toFixed(0)}%`,
  bytes: (n: number): string => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${Math.round(n)} B`),
};

export function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(52)} ${value}`);
}

// --- figures for bench/run.ts --------------------------------------------------------------------

/** A figure the aggregate runner prints in its summary (one JSON line per figure in BENCH_RESULTS). */
export interface Figure {
  bench: string;
  name: string;
  value: string;
  /** For figures with a target: the target in words, and whether this run met it. */
  target?: string;
  met?: boolean;
}

export function record(fig: Figure): void {
  const file = process.env.BENCH_RESULTS;
  if (file) appendFileSync(file, JSON.stringify(fig) + '\n');
}

// --- child processes -----------------------------------------------------------------------------

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cleaned = false;

/** Kills every child this process started and removes its temp dirs. Safe to call more than once. */
function cleanupNow(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
  // At exit only synchronous work runs to completion.
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Stops every child at exit, on Ctrl-C / SIGTERM, and after BENCH_TIMEOUT_MS. Called by the
 * first spawnChild or tempDir; call it yourself before starting anything else that must not
 * outlive the benchmark (an 'exit' listener runs only if a signal handler is installed).
 */
export function installCleanup(): void {
  if (cleaned) return;
  cleaned = true;
  process.on('exit', cleanupNow);
  // A benchmark that hangs (a child that stopped answering) must not hold the run forever.
  const limit = Number(process.env.BENCH_TIMEOUT_MS ?? 240_000);
  setTimeout(() => {
    console.error(`\n${path.basename(process.argv[1] ?? 'bench')}: still running after ${limit / 1000} s; stopping`);
    process.exit(124);
  }, limit).unref();
  // `on`, not `once`: Ctrl-C reaches a benchmark twice (from the terminal, and relayed by tsx),
  // and a second signal with no listener left would kill the process in the middle of its
  // exit listeners (e.g. before a throwaway PostgreSQL's directory is removed).
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      cleanupNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  // The parent runner died without a signal reaching us: stop too, taking the children along.
  if (process.send) process.once('disconnect', () => process.exit(1));
}

export async function tempDir(prefix: string): Promise<string> {
  installCleanup();
  const dir = await mkdtemp(path.join(os.tmpdir(), `pushbutton-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** A child running a TypeScript file under tsx, with an IPC channel for requests. */
export class Child {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  readonly exited: Promise<number | null>;
  private readonly listeners: ((msg: Record<string, unknown>) => void)[] = [];

  constructor(readonly proc: ChildProcess, readonly name: string) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.on('message', (msg: Record<string, unknown>) => {
      if (typeof msg.reply === 'number') {
        const p = this.pending.get(msg.reply);
        if (!p) return;
        this.pending.delete(msg.reply);
        if (typeof msg.error === 'string') p.reject(new Error(`${name}: ${msg.error}`));
        else p.resolve(msg.value);
        return;
      }
      for (const l of this.listeners) l(msg);
    });
    void this.exited.then((code) => {
      children.delete(proc);
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (code ${code}) before answering`));
      this.pending.clear();
    });
  }

  /** Sends a command and resolves with the child's answer; rejects if none comes within `timeoutMs`. */
  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 180_000): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          (resolve as (v: unknown) => void)(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, ...args });
    });
  }

  onMessage(l: (msg: Record<string, unknown>) => void): void {
    this.listeners.push(l);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Extra node flags (e.g. --expose-gc, --cpu-prof). */
  nodeArgs?: string[];
  args?: string[];
  /** Inherit stdout (the child prints its own report). */
  stdout?: 'inherit' | 'ignore';
  /** How long the child may take to send `{ ready }`; default 30 s. */
  readyTimeoutMs?: number;
}

/**
 * Starts `bench/<file>` under tsx with IPC and waits for its first message `{ ready: value }`.
 * The child is killed when this process exits, however it exits.
 */
export async function spawnChild<T = unknown>(file: string, opts: SpawnOptions = {}): Promise<{ child: Child; ready: T }> {
  installCleanup();
  const prof = process.env.BENCH_CPU_PROF;
  const profArgs = prof && path.basename(file).startsWith('hub-child') ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...profArgs, '--import', 'tsx', path.join(BENCH_DIR, file), ...(opts.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.stdout ?? 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  const child = new Child(proc, file);
  const ready = await new Promise<T>((resolve, reject) => {
    const limit = opts.readyTimeoutMs ?? 30_000;
    const timer = setTimeout(() => reject(new Error(`${file} did not get ready within ${limit / 1000} s`)), limit);
    child.onMessage((msg) => {
      if ('ready' in msg) {
        clearTimeout(timer);
        resolve(msg.ready as T);
      }
    });
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (code ${code}) before it was ready`));
    });
  });
  return { child, ready };
}

/**
 * The child side: answers `{ id, cmd, ... }` with `{ reply: id, value }` or `{ reply: id, error }`,
 * and exits when the parent goes away (IPC disconnect), so no child outlives its parent.
 */
export function serveCommands(handlers: Record<string, (msg: Record<string, unknown>) => unknown>, onExit: () => Promise<void> | void = () => {}): void {
  let exiting = false;
  const exit = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    try {
      await onExit();
    } finally {
      process.exit(code);
    }
  };
  process.on('message', (msg: Record<string, unknown>) => {
    const id = msg.id as number;
    const handler = handlers[msg.cmd as string];
    if (!handler) {
      process.send?.({ reply: id, error: `unknown command ${String(msg.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (value) => process.send?.({ reply: id, value: value ?? null }),
        (e: unknown) => process.send?.({ reply: id, error: e instanceof Error ? e.stack ?? e.message : String(e) }),
      );
  });
  process.once('disconnect', () => void exit(0));
  process.once('SIGTERM', () => void exit(0));
  process.once('SIGINT', () => void exit(0));
}

/** Runs a limited number of async tasks at once over `count` items; resolves when all are done. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

// --- the hub and the sinks -----------------------------------------------------------------------

/**
 * The hub's environment for benchmarks: loopback allowed for feeds and callbacks (the sinks live
 * there), the limits meant for strangers on a public hub off (rate limits, the per-topic fetch
 * interval, subscriptions per callback host), no polling, warnings only in the log.
 */
function hubEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    FETCH_ALLOW_CIDRS: '127.0.0.0/8',
    CALLBACK_ALLOW_CIDRS: '127.0.0.0/8',
    RATE_LIMIT_PER_MINUTE: '0',
    FETCH_MIN_INTERVAL_MS: '0',
    MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST: '1000000',
    POLL_ENABLED: 'false',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    ...extra,
  };
}

export interface Sink {
  child: Child;
  ports: number[];
  /** http://127.0.0.1:<first port> */
  base: string;
}

/** The sink's `i`-th port, in turn, as an origin: the hub counts each port a host of its own. */
export function sinkOrigin(sink: Sink, i: number): string {
  return `http://127.0.0.1:${sink.ports[i % sink.ports.length]}`;
}

/** Feeds the ping benchmarks read in turn, so that each ping is a read of its own. */
export const PING_FEEDS = 1000;

/** A feed that never changes (its reads answered 304), or one with a new entry on every read. */
export type PingKind = 'static' | 'changing';

/**
 * The `i`-th of the PING_FEEDS feeds of `kind` (static, changing), on the sink's ports in turn:
 * pings come from many publishers, and on one host FETCH_PER_HOST (8) would hold 50 pings in
 * flight to 8 reads at once, a bound on one publisher's burst, not the intake's speed.
 */
export function pingFeed(sink: Sink, kind: PingKind, i: number): string {
  return `${sinkOrigin(sink, i)}/feed/${kind}/i${i % PING_FEEDS}`;
}

/** The kinds of ping a comparison runs (COMPARE_KINDS=static,changing by default). */
export function pingKinds(): PingKind[] {
  return (process.env.COMPARE_KINDS ?? 'static,changing').split(',').map((k) => {
    if (k !== 'static' && k !== 'changing') throw new Error(`COMPARE_KINDS: "${k}" is neither static nor changing`);
    return k;
  });
}

/** Pings every feed of `kinds` once, so that what is measured after is the ping of a feed the hub knows. */
export async function primePings(hubUrl: string, sink: Sink, kinds: PingKind[]): Promise<void> {
  await pool(PING_FEEDS, 32, async (i) => {
    for (const kind of kinds) {
      const r = await postForm(`${hubUrl}/ping`, { url: pingFeed(sink, kind, i) });
      if (r.status !== 200) throw new Error(`priming ping answered ${r.status}: ${r.text}`);
    }
  });
}

/** rssCloud pings of the feeds of `kind` in turn, from autocannon: for `duration` seconds, or `amount` of them. */
export function pingLoad(hubUrl: string, sink: Sink, kind: PingKind, run: { connections: number; duration?: number; amount?: number }): Promise<autocannon.Result> {
  let i = 0;
  return autocannon({
    url: hubUrl,
    ...run,
    requests: [
      {
        method: 'POST',
        path: '/ping',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        setupRequest: (req) => ({ ...req, body: new URLSearchParams({ url: pingFeed(sink, kind, i++) }).toString() }),
      },
    ],
  });
}

/**
 * Checks `ref` out into a temporary git worktree beside this one, with this checkout's
 * node_modules, for a benchmark that runs another commit's hub (startHubProcess's `root`).
 * `remove` takes it away again.
 */
export async function checkoutCommit(ref: string): Promise<{ tree: string; remove: () => Promise<void> }> {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-ref-'));
  const tree = path.join(parent, 'ref');
  const remove = async (): Promise<void> => {
    try {
      execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      // Never added, or gone already: the directory goes below either way.
    }
    await rm(parent, { recursive: true, force: true });
  };
  try {
    execFileSync('git', ['worktree', 'add', '--detach', tree, ref], { cwd: ROOT, stdio: 'ignore' });
    await symlink(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
  } catch (e) {
    await remove();
    throw e;
  }
  return { tree, remove };
}

/**
 * `n` subscribers on the sink's ports in turn, a third of each protocol: rssCloud http-post at
 * /rss/, xml-rpc at /rpc/, WebSub with a secret at /ws/ (the sink counts each by that path).
 */
export function mixedSubscribers(sink: Sink, tag: string, n: number): SeedSub[] {
  return Array.from({ length: n }, (_, i): SeedSub => {
    const base = sinkOrigin(sink, i);
    switch (i % 3) {
      case 0:
        return { callback: `${base}/rss/${tag}/${i}`, protocol: 'http-post' };
      case 1:
        return { callback: `${base}/rpc/${tag}/${i}`, protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated' };
      default:
        return { callback: `${base}/ws/${tag}/${i}?user=${i}`, protocol: 'websub', secret: `secret-${tag}-${i}` };
    }
  });
}

export async function startSink(ports = 8): Promise<Sink> {
  const { child, ready } = await spawnChild<{ ports: number[] }>('sink.ts', { args: [String(ports)] });
  return { child, ports: ready.ports, base: `http://127.0.0.1:${ready.ports[0]}` };
}

export interface HubProcess {
  child: Child;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Checkouts built by this process: a hub started again (bench/compare.ts's sets) is not built again. */
const built = new Set<string>();
/**
 * Compiles the hub as `npm run build` does, once per benchmark run (bench/run.ts builds first and
 * its benchmarks inherit BENCH_BUILT): the hub's process loads dist/, the code `npm start` runs.
 * Under tsx every function the hub makes at run time also calls tsx's `__name` helper, about 1 %
 * of a ping's CPU that production does not pay.
 */
export function buildHub(root = ROOT): void {
  if (built.has(root) || (root === ROOT && process.env.BENCH_BUILT === '1')) return;
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  built.add(root);
  if (root === ROOT) process.env.BENCH_BUILT = '1';
}

/** `root`: another checkout of the hub (bench/compare.ts), built and run with its own hub-child. */
/** BENCH_HUB_NODE_ARGS as arguments: an empty one would be taken by Node for the script to run. */
function hubNodeArgs(): string[] {
  return (process.env.BENCH_HUB_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
}

export async function startHubProcess(name: string, extraEnv: Record<string, string> = {}, root = ROOT): Promise<HubProcess> {
  buildHub(root);
  const dataDir = await tempDir(name);
  const file = path.relative(BENCH_DIR, path.join(root, 'bench', 'hub-child.ts'));
  const { child, ready } = await spawnChild<{ url: string }>(file, { env: hubEnv(dataDir, extraEnv), nodeArgs: ['--expose-gc', ...hubNodeArgs()] });
  return {
    child,
    url: ready.url,
    dataDir,
    stop: async () => {
      await child.stop();
      await removeTempDir(dataDir);
    },
  };
}

/** POSTs a form and returns the status and body text. */
export async function postForm(url: string, form: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, text: await res.text() };
}

/**
 * With BENCH_PROFILE_DIR set, records a CPU profile of the hub process (bench/hub-child.ts)
 * while `fn` runs, as <dir>/<name>.cpuprofile (open it in Chrome DevTools or speedscope).
 */
export async function profiled<T>(hub: Child, name: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return fn();
  await hub.call('profileStart');
  try {
    return await fn();
  } finally {
    await hub.call('profileStop', { file: path.join(dir, `${name}.cpuprofile`) });
  }
}

/** Commands every benchmark child answers: its CPU time, and a CPU profile of a window (see profiled). */
export function childCommands(): Record<string, (msg: Record<string, unknown>) => unknown> {
  let session: Session | undefined;
  // The parent sets it before starting its children (bench/alloc.ts).
  const mode = process.env.BENCH_PROFILE;
  const heap = mode === 'alloc' || mode === 'survivors' ? mode : null;
  return {
    /** CPU time this process has used (user + system, µs; every thread, GC and libuv's pool included). */
    cpu: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    /**
     * BENCH_PROFILE=alloc samples allocations (a .heapprofile) instead of CPU time, and
     * BENCH_PROFILE=survivors only those still there after a scavenge.
     */
    profileStart: async () => {
      session = new Session();
      session.connect();
      if (heap !== null) {
        await session.post('HeapProfiler.enable');
        await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: heap === 'alloc' });
        return;
      }
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    },
    profileStop: async (msg) => {
      if (!session) throw new Error('profileStart first');
      await mkdir(path.dirname(String(msg.file)), { recursive: true });
      if (heap !== null) {
        // What died since the last scavenge is still sampled until one runs: without this, up to a
        // young generation's worth of garbage counted as surviving.
        if (heap === 'survivors') (globalThis.gc as ((o: { type: 'minor' }) => void) | undefined)?.({ type: 'minor' });
        const { profile } = await session.post('HeapProfiler.stopSampling');
        await writeFile(String(msg.file).replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(profile));
      } else {
        const { profile } = await session.post('Profiler.stop');
        await writeFile(msg.file as string, JSON.stringify(profile));
      }
      session.disconnect();
      session = undefined;
    },
  };
}
