// Compare: the ping intake of this checkout against an earlier commit, measured in one run.
// Both hubs are built and started side by side beside one feed server, and short autocannon runs
// alternate between them (the order reversed every other round), so that the machine's drift,
// which moves a single run by ±30 % here, moves both alike. This is how a slowdown spread over
// many commits is seen at all: intake.ts compares each ping with express, not with the hub of
// an earlier day. Prints every run, then the medians: pings a second, the CPU of the hub's
// process per ping, and that of its main thread (the one JavaScript thread, the bound).
// The rounds come in sets, each with both hubs started afresh: one hub process can run faster or
// slower than another of the same code for its whole life (an A/A run, this commit against
// itself, gave 88 % and 93 % in two runs of five rounds with one process each, 2026-12-05), so
// the ratio of each set is printed, and a difference within their spread is none.
//   COMPARE_REF=<commit> npx tsx bench/compare.ts   (COMPARE_SETS=3 COMPARE_ROUNDS=3 COMPARE_SECONDS=4 COMPARE_KINDS=static,changing)
// The commit is checked out into a temporary git worktree (removed at the end), with this
// checkout's node_modules; it must have bench/hub-child.ts (any commit since 2026-12-02).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type HubProcess, type PingKind, ROOT, checkoutCommit, fmt, line, machineLine, pingKinds, pingLoad, primePings, startHubProcess, startSink } from './common.js';

const REF = process.env.COMPARE_REF;
const SETS = Number(process.env.COMPARE_SETS ?? 3);
const ROUNDS = Number(process.env.COMPARE_ROUNDS ?? 3);
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
  console.log(`  this checkout (${here}${dirty ? ' with changes' : ''}) against ${commit}: ${SETS} sets of ${ROUNDS} rounds of ${SECONDS} s per kind, ${CONNECTIONS} connections`);
  const { tree, remove } = await checkoutCommit(commit);
  // Each hub keeps its own runs: COMPARE_REF=HEAD on a clean checkout (an A/A check of the
  // noise) gives both the same label.
  const labels = [dirty ? `${here}+changes` : here, commit] as const;
  /** Per set, per kind: each hub's runs, this checkout's first. */
  const sets: Map<PingKind, [Run[], Run[]]>[] = [];
  let running: HubProcess[] = [];
  try {
    const sink = await startSink(8);
    const run = async (hub: HubProcess, kind: PingKind, seconds: number): Promise<Run> => {
      const pid = hub.child.proc.pid!;
      const cpu0 = await hub.child.call<number>('cpu');
      const main0 = mainThreadCpu(pid);
      const r = await pingLoad(hub.url, sink, kind, { connections: CONNECTIONS, duration: seconds });
      const n = r['2xx'];
      if (r.non2xx + r.errors > 0) console.log(`  (${r.non2xx + r.errors} pings failed)`);
      const main1 = mainThreadCpu(pid);
      return { rate: n / r.duration, cpu: ((await hub.child.call<number>('cpu')) - cpu0) / n, main: main0 === undefined || main1 === undefined ? undefined : (main1 - main0) / n };
    };
    for (let set = 0; set < SETS; set++) {
      // Started in turn, the other first every other set.
      const order = set % 2 === 0 ? [0, 1] : [1, 0];
      const started: HubProcess[] = [];
      for (const i of order) {
        started[i] = i === 0 ? await startHubProcess('compare-here') : await startHubProcess('compare-then', {}, tree);
        running.push(started[i]!);
      }
      const hubs = [started[0]!, started[1]!];
      for (const hub of hubs) await primePings(hub.url, sink, KINDS);
      for (const hub of hubs) for (const kind of KINDS) await run(hub, kind, 1);
      const runs = new Map<PingKind, [Run[], Run[]]>(KINDS.map((k) => [k, [[], []]]));
      sets.push(runs);
      for (let k = 0; k < ROUNDS; k++) {
        for (const kind of KINDS) {
          for (const i of k % 2 === 0 ? [0, 1] : [1, 0]) {
            const r = await run(hubs[i]!, kind, SECONDS);
            runs.get(kind)![i]!.push(r);
            line(`  set ${set + 1}, round ${k + 1}: ${labels[i]} ${kind}`, `${fmt.rate(r.rate)}, ${fmt.int(r.cpu)} µs CPU${r.main === undefined ? '' : `, main thread ${fmt.int(r.main)} µs`}`);
          }
        }
      }
      for (const hub of hubs) await hub.stop();
      running = [];
    }
    console.log(`  medians of ${SETS} × ${ROUNDS} rounds`);
    const rateOf = (rs: Run[]): number => median(rs.map((r) => r.rate));
    for (const kind of KINDS) {
      const name = kind === 'static' ? 'unchanged' : 'changed';
      const all = [0, 1].map((i) => sets.flatMap((s) => s.get(kind)![i]!));
      const mains = (rs: Run[]): string => (rs.every((r) => r.main !== undefined) ? `, main thread ${fmt.int(median(rs.map((r) => r.main!)))} µs` : '');
      for (const i of [0, 1]) line(`  ${name} feed, ${labels[i]}`, `${fmt.rate(rateOf(all[i]!))}, ${fmt.int(median(all[i]!.map((r) => r.cpu)))} µs CPU${mains(all[i]!)}`);
      const perSet = sets.map((s) => rateOf(s.get(kind)![0]!) / rateOf(s.get(kind)![1]!));
      line(`  ${name} feed, ${labels[0]} / ${labels[1]}`, `${fmt.pct(median(perSet))} (sets ${perSet.map((r) => fmt.pct(r)).join(', ')})`);
    }
    await sink.child.stop();
  } finally {
    for (const hub of running) await hub.stop();
    await remove();
  }
}

await main();
process.exit(0);
