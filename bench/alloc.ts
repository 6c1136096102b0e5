// Alloc: the bytes the hub allocates per ping, in this checkout and (with COMPARE_REF) in an
// earlier commit, and where they differ. Unlike a rate or a CPU time, which move ±30 % from one
// run to the next on a shared machine, this count repeats within ~1 % (V8's sampling heap
// profiler, a sample every 4 KB, objects collected since included), so a change of a few KB per
// ping shows in one run. Garbage collection is about an eighth of a ping's CPU, and grows with it.
//   [COMPARE_REF=<commit>] npx tsx bench/alloc.ts   (ALLOC_PINGS=10000 COMPARE_KINDS=static,changing ALLOC_TOP=0)
// BENCH_PROFILE=survivors counts only what outlives a scavenge: the share that makes garbage
// collection cost more than its bytes say (against a commit since 2026-12-05, whose children
// know that mode).
// Both hubs run as in compare.ts (the commit likewise any since 2026-12-02), side by side beside
// one feed sink, each sampled in turn through its child's profileStart/profileStop
// (BENCH_PROFILE=alloc); autocannon runs here, not in them.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type HubProcess, type PingKind, ROOT, checkoutCommit, fmt, line, machineLine, pingKinds, pingLoad, primePings, startHubProcess, startSink, type Sink } from './common.js';

const PINGS = Number(process.env.ALLOC_PINGS ?? 10_000);
const KINDS = pingKinds();

interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

/** Bytes per ping by function ("file:function"). */
type Allocations = Record<string, number>;

/** Pings `hub` PINGS times while its allocations are sampled; what it allocated, per ping. */
async function measure(hub: HubProcess, root: string, sink: Sink, kind: PingKind, dir: string): Promise<Allocations> {
  const file = path.join(dir, `${path.basename(hub.dataDir)}-${kind}.cpuprofile`);
  await hub.child.call('profileStart');
  await pingLoad(hub.url, sink, kind, { connections: 50, amount: PINGS });
  await hub.child.call('profileStop', { file });
  const profile = JSON.parse(await readFile(file.replace(/\.cpuprofile$/, '.heapprofile'), 'utf8')) as { head: ProfileNode };
  const bytes: Allocations = {};
  const walk = (n: ProfileNode): void => {
    const { url, functionName } = n.callFrame;
    const where = url === '' ? '(native)' : url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/node_modules/') + 14) : url.startsWith('file://') ? path.relative(root, new URL(url).pathname) : url;
    const key = `${where}:${functionName || '(anonymous)'}`;
    bytes[key] = (bytes[key] ?? 0) + n.selfSize / PINGS;
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  return bytes;
}

const total = (a: Allocations): number => Object.values(a).reduce((s, n) => s + n, 0);

async function main(): Promise<void> {
  const ref = process.env.COMPARE_REF;
  // The children read the mode from the environment: anything else there (a CPU profile's) would
  // leave no heap profile to read.
  const mode = process.env.BENCH_PROFILE ?? 'alloc';
  if (mode !== 'alloc' && mode !== 'survivors') throw new Error(`BENCH_PROFILE=${mode}: alloc.ts counts 'alloc' or 'survivors'`);
  process.env.BENCH_PROFILE = mode;
  console.log(`Alloc (${machineLine()})`);
  const what = mode === 'alloc' ? 'bytes allocated' : 'bytes allocated and still there after a scavenge';
  console.log(`  ${what} per ping over ${fmt.int(PINGS)} pings, 50 connections${ref ? `, against ${ref}` : ''}`);
  const profiles = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-alloc-'));
  let checkout: Awaited<ReturnType<typeof checkoutCommit>> | undefined;
  const hubs: { label: string; root: string; hub: HubProcess }[] = [];
  try {
    if (ref) checkout = await checkoutCommit(ref);
    const sink = await startSink(8);
    hubs.push({ label: 'this checkout', root: ROOT, hub: await startHubProcess('alloc-here') });
    if (ref && checkout) hubs.push({ label: ref, root: checkout.tree, hub: await startHubProcess('alloc-then', {}, checkout.tree) });
    for (const { hub } of hubs) await primePings(hub.url, sink, KINDS);
    for (const kind of KINDS) {
      const label = kind === 'static' ? 'unchanged feed' : 'changed feed';
      const counts: Allocations[] = [];
      for (const h of hubs) {
        counts.push(await measure(h.hub, h.root, sink, kind, profiles));
        line(`${label}, ${h.label}`, fmt.bytes(total(counts.at(-1)!)));
      }
      const [here, then] = counts as [Allocations, Allocations | undefined];
      // ALLOC_TOP=n: this checkout's n largest, where to look next.
      const top = Number(process.env.ALLOC_TOP ?? 0);
      for (const [k, n] of Object.entries(here).sort((a, b) => b[1] - a[1]).slice(0, top)) line(`    ${fmt.bytes(n).padStart(9)}`, k);
      if (!then) continue;
      // Where they differ most, either way (a function renamed shows as one gone, one new).
      const keys = [...new Set([...Object.keys(here), ...Object.keys(then)])];
      const moved = keys.map((k) => [k, (here[k] ?? 0) - (then[k] ?? 0)] as const).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
      for (const [k, d] of moved.slice(0, 12)) line(`    ${d > 0 ? '+' : '-'}${fmt.bytes(Math.abs(d)).padStart(8)}`, k);
    }
    await sink.child.stop();
  } finally {
    for (const { hub } of hubs) await hub.stop();
    await checkout?.remove();
    await rm(profiles, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
