// Compare: the ping intake of this checkout against an earlier commit, measured in one run.
// Both hubs are built and started side by side beside one feed server, and short autocannon runs
// alternate between them (the order reversed every other round), so that the machine's drift,
// which moves a single run by ±30 % here, moves both alike. This is how a slowdown spread over
// many commits is seen at all: intake.ts compares each ping with express, not with the hub of
// an earlier day. Prints every run, then the medians: pings a second, the CPU of the hub's
// process per ping, and that of its main thread (the one JavaScript thread, the bound).
//   COMPARE_REF=<commit> npx tsx bench/compare.ts   (COMPARE_ROUNDS=5 COMPARE_SECONDS=4 COMPARE_KINDS=static,changing)
// The commit is checked out into a temporary git worktree (removed at the end), with this
// checkout's node_modules; it must have bench/hub-child.ts (any commit since 2026-12-02).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type HubProcess, type PingKind, ROOT, checkoutCommit, fmt, line, machineLine, pingKinds, pingLoad, primePings, startHubProcess, startSink } from './common.js';

const REF = process.env.COMPARE_REF;
const ROUNDS = Number(process.env.COMPARE_ROUNDS ?? 5);
const SECONDS = Number(process.env.COMPARE_SECONDS ?? 4);
const KINDS = pingKinds();
const CONNECTIONS = 50;

interface Run {
  rate: number;
  /** µs of CPU per answered ping: the whole process, and its main thread alone. */
  cpu: number;
  main: number | undefined;
}

/** CPU time of a process's main thread, µs (Linux); undefined elsewhere. */
function mainThreadCpu(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1e6 / 100);
  } catch {
    return undefined;
  }
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  if (!REF) throw new Error('set COMPARE_REF to the commit to compare with (e.g. COMPARE_REF=HEAD~20)');
  const commit = execFileSync('git', ['rev-parse', '--short', REF], { cwd: ROOT, encoding: 'utf8' }).trim();
  const here = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  console.log(`Compare (${machineLine()})`);
  console.log(`  this checkout (${here}${dirty ? ' with changes' : ''}) against ${commit}: ${ROUNDS} rounds of ${SECONDS} s per kind, ${CONNECTIONS} connections`);
  const { tree, remove } = await checkoutCommit(commit);
  // Each hub keeps its own runs: COMPARE_REF=HEAD on a clean checkout (an A/A check of the
  // noise) gives both the same label.
  const hubs: { label: string; hub: HubProcess; runs: Map<string, Run[]> }[] = [];
  try {
    const sink = await startSink(8);
    hubs.push({ label: dirty ? `${here}+changes` : here, hub: await startHubProcess('compare-here'), runs: new Map() });
    hubs.push({ label: commit, hub: await startHubProcess('compare-then', {}, tree), runs: new Map() });
    for (const { hub } of hubs) await primePings(hub.url, sink, KINDS);
    const run = async ({ hub }: { hub: HubProcess }, kind: PingKind, seconds: number): Promise<Run> => {
      const pid = hub.child.proc.pid!;
      const cpu0 = await hub.child.call<number>('cpu');
      const main0 = mainThreadCpu(pid);
      const r = await pingLoad(hub.url, sink, kind, { connections: CONNECTIONS, duration: seconds });
      const n = r['2xx'];
      if (r.non2xx + r.errors > 0) console.log(`  (${r.non2xx + r.errors} pings failed)`);
      const main1 = mainThreadCpu(pid);
      return { rate: n / r.duration, cpu: ((await hub.child.call<number>('cpu')) - cpu0) / n, main: main0 === undefined || main1 === undefined ? undefined : (main1 - main0) / n };
    };
    for (const h of hubs) for (const kind of KINDS) await run(h, kind, 1);
    for (let k = 0; k < ROUNDS; k++) {
      for (const kind of KINDS) {
        for (const h of k % 2 === 0 ? hubs : [...hubs].reverse()) {
          const r = await run(h, kind, SECONDS);
          const own = h.runs.get(kind) ?? [];
          h.runs.set(kind, own);
          own.push(r);
          line(`  round ${k + 1}: ${h.label} ${kind}`, `${fmt.rate(r.rate)}, ${fmt.int(r.cpu)} µs CPU${r.main === undefined ? '' : `, main thread ${fmt.int(r.main)} µs`}`);
        }
      }
    }
    console.log(`  medians of ${ROUNDS} rounds`);
    for (const kind of KINDS) {
      const [a, b] = hubs.map((h) => h.runs.get(kind)!);
      const mains = (rs: Run[]): string => (rs.every((r) => r.main !== undefined) ? `, main thread ${fmt.int(median(rs.map((r) => r.main!)))} µs` : '');
      for (const [label, rs] of [[hubs[0]!.label, a!], [hubs[1]!.label, b!]] as const) {
        line(`  ${kind === 'static' ? 'unchanged' : 'changed'} feed, ${label}`, `${fmt.rate(median(rs.map((r) => r.rate)))}, ${fmt.int(median(rs.map((r) => r.cpu)))} µs CPU${mains(rs)}`);
      }
      line(`  ${kind === 'static' ? 'unchanged' : 'changed'} feed, ${hubs[0]!.label} / ${hubs[1]!.label}`, fmt.pct(median(a!.map((r) => r.rate)) / median(b!.map((r) => r.rate))));
    }
    await sink.child.stop();
  } finally {
    for (const { hub } of hubs) await hub.stop();
    await remove();
  }
}

await main();
process.exit(0);
