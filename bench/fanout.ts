// Fan-out: N subscribers (a third each rssCloud http-post, rssCloud XML-RPC and WebSub with a
// secret) on sink servers in another process; one publish; time until the last delivery
// arrives, deliveries per second, and each delivery's latency from the publish. In the same
// run, the ceiling: a bare undici POST loop from one process (the hub's process, idle by then)
// with the hub's global concurrency, to the same callbacks with the same bodies. Prints the
// ratio hub / ceiling. Run: npx tsx bench/fanout.ts   (FANOUT_N=1000,10000 FANOUT_REPEAT=5)
// At each size a first pair of runs is made and shown, not counted: both sides ran it at up to
// half their later rates (the JIT at that volume, in the hub, the ceiling and the sink alike),
// as bench/notifier.ts leaves its first fan-outs out.
import path from 'node:path';
import { fmt, line, machineLine, mixedSubscribers, percentile, postForm, record, sleep, startHubProcess, startSink, wallNow, type HubProcess, type SeedSub, type Sink } from './common.js';
import type { CeilingTarget } from './hub-child.js';

/** Numbers the CPU profiles of the hub runs (BENCH_PROFILE_DIR). */
let profiles = 0;

const SIZES = (process.env.FANOUT_N ?? '1000,10000').split(',').map(Number);
const REPEAT = Number(process.env.FANOUT_REPEAT ?? 5);
const SINK_PORTS = 8;
/** The hub's defaults: DELIVERY_CONCURRENCY=64 overall, DELIVERY_PER_HOST=8 (8 sink ports × 8 = 64). */
const CONCURRENCY = 64;

type Kind = 'rss' | 'rpc' | 'ws';
interface Sample {
  contentType: string;
  body: string;
  bytes: number;
}
interface SinkStats {
  count: number;
  byKind: Record<Kind, number>;
  bytes: Record<Kind, number>;
  samples: Partial<Record<Kind, Sample>>;
  times?: number[];
  first?: number;
  last?: number;
}

interface RunFigures {
  deliveries: number;
  lastMs: number;
  firstMs: number;
  rate: number;
  p50: number;
  p99: number;
  /** CPU time of the sending process per delivery, µs. */
  cpuPerDelivery?: number;
}

function figures(t0: number, s: SinkStats): RunFigures {
  const lat = (s.times ?? []).map((t) => t - t0).sort((a, b) => a - b);
  const lastMs = lat.at(-1) ?? NaN;
  return { deliveries: s.count, lastMs, firstMs: lat[0] ?? NaN, rate: s.count / (lastMs / 1000), p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

function kindOf(sub: SeedSub): Kind {
  return sub.protocol === 'websub' ? 'ws' : sub.protocol === 'xml-rpc' ? 'rpc' : 'rss';
}

interface Prepared {
  topic: string;
  subs: SeedSub[];
  seedMs: number;
  heapPerSub: number;
}

async function prepare(hub: HubProcess, sink: Sink, tag: string, n: number): Promise<Prepared> {
  const topic = `${sink.base}/feed/changing/${tag}`;
  // A first read, so the topic has a version and known entries; the subscribers start there.
  const first = await postForm(`${hub.url}/ping`, { url: topic });
  if (first.status !== 200) throw new Error(`first ping answered ${first.status}: ${first.text}`);
  const before = await hub.child.call<NodeJS.MemoryUsage>('memory');
  const subs = mixedSubscribers(sink, tag, n);
  const seeded = await hub.child.call<{ ms: number }>('seed', { topic, subs });
  const after = await hub.child.call<NodeJS.MemoryUsage>('memory');
  return { topic, subs, seedMs: seeded.ms, heapPerSub: (after.heapUsed - before.heapUsed) / n };
}

async function hubRun(hub: HubProcess, sink: Sink, p: Prepared): Promise<{ fig: RunFigures; stats: SinkStats }> {
  await sink.child.call('reset');
  const profile = process.env.BENCH_PROFILE_DIR;
  if (profile) await hub.child.call('profileStart');
  const cpu0 = await hub.child.call<number>('cpu');
  const t0 = wallNow();
  const res = await postForm(`${hub.url}/websub`, { 'hub.mode': 'publish', 'hub.url': p.topic });
  if (res.status !== 204) throw new Error(`publish answered ${res.status}: ${res.text}`);
  await sink.child.call('waitFor', { n: p.subs.length, timeoutMs: 120_000 });
  const cpu1 = await hub.child.call<number>('cpu');
  if (profile) await hub.child.call('profileStop', { file: path.join(profile, `fanout-${p.subs.length}-${++profiles}.cpuprofile`) });
  const stats = await sink.child.call<SinkStats>('stats', { times: true });
  // Let the hub record the last outcomes before anything else runs.
  await sleep(300);
  return { fig: { ...figures(t0, stats), cpuPerDelivery: (cpu1 - cpu0) / p.subs.length }, stats };
}

async function ceilingRun(hub: HubProcess, sink: Sink, p: Prepared, samples: SinkStats['samples']): Promise<RunFigures> {
  const targets: CeilingTarget[] = p.subs.map((s) => {
    const sample = samples[kindOf(s)];
    if (!sample) throw new Error(`no ${kindOf(s)} delivery was seen to copy`);
    return { url: s.callback, contentType: sample.contentType, body: sample.body };
  });
  await sink.child.call('reset');
  const cpu0 = await hub.child.call<number>('cpu');
  const r = await hub.child.call<{ started: number; ended: number; failed: number }>('ceiling', { targets, concurrency: CONCURRENCY });
  const cpu1 = await hub.child.call<number>('cpu');
  if (r.failed > 0) throw new Error(`${r.failed} ceiling requests failed`);
  const stats = await sink.child.call<SinkStats>('stats', { times: true });
  return { ...figures(r.started, stats), cpuPerDelivery: (cpu1 - cpu0) / targets.length };
}

function best(runs: RunFigures[]): RunFigures {
  return runs.reduce((a, b) => (b.rate > a.rate ? b : a));
}

async function main(): Promise<void> {
  console.log(`Fan-out (${machineLine()})`);
  const sink = await startSink(SINK_PORTS);
  const hub = await startHubProcess('fanout');
  try {
    // Warm-up: JIT for both paths, connections to every sink port.
    const warm = await prepare(hub, sink, 'warm', 1500);
    const w = await hubRun(hub, sink, warm);
    await ceilingRun(hub, sink, warm, w.stats.samples);
    await hubRun(hub, sink, warm);

    for (const n of SIZES) {
      const p = await prepare(hub, sink, `n${n}`, n);
      const hubRuns: RunFigures[] = [];
      const ceilRuns: RunFigures[] = [];
      let samples: SinkStats['samples'] = {};
      let bytes: SinkStats['bytes'] | undefined;
      const coldHub = await hubRun(hub, sink, p);
      const coldCeiling = await ceilingRun(hub, sink, p, coldHub.stats.samples);
      for (let r = 0; r < REPEAT; r++) {
        const h = await hubRun(hub, sink, p);
        if (h.fig.deliveries !== n) throw new Error(`expected ${n} deliveries, got ${h.fig.deliveries}`);
        hubRuns.push(h.fig);
        samples = h.stats.samples;
        bytes ??= h.stats.bytes;
        ceilRuns.push(await ceilingRun(hub, sink, p, samples));
      }
      const h = best(hubRuns);
      const c = best(ceilRuns);
      // Each hub run is compared with the ceiling run right after it; the median of those
      // pairs is the ratio, so a machine that gets busier or quieter moves both sides alike.
      const pairs = hubRuns.map((x, i) => x.rate / ceilRuns[i]!.rate).sort((a, b) => a - b);
      const ratio = pairs[Math.floor(pairs.length / 2)]!;
      const size = (k: Kind): string => fmt.bytes(samples[k]?.bytes ?? 0);
      console.log(`\n${n.toLocaleString('en')} subscribers (${n / 3 | 0} each http-post / xml-rpc / websub+secret, ${SINK_PORTS} sink ports, best of ${REPEAT})`);
      line('seeded through the Store API', `${fmt.s(p.seedMs)}; hub heap +${fmt.bytes(p.heapPerSub)} per subscription`);
      line('bodies: http-post / xml-rpc / websub', `${size('rss')} / ${size('rpc')} / ${size('ws')}`);
      line('hub: publish → last delivery', `${fmt.ms(h.lastMs)} (first after ${fmt.ms(h.firstMs)})`);
      line('hub: deliveries/s', fmt.rate(h.rate));
      line('hub: latency from publish p50 / p99', `${fmt.ms(h.p50)} / ${fmt.ms(h.p99)}`);
      line(`ceiling (bare undici, ${CONCURRENCY} in flight): last`, `${fmt.ms(c.lastMs)}`);
      line('ceiling: deliveries/s', fmt.rate(c.rate));
      line('ceiling: latency from start p50 / p99', `${fmt.ms(c.p50)} / ${fmt.ms(c.p99)}`);
      line('hub / ceiling (median of the run pairs)', `${fmt.pct(ratio)}${n >= 10_000 ? ` (target ≥ 60%: ${ratio >= 0.6 ? 'met' : 'MISSED'})` : ''}; pairs ${pairs.map(fmt.pct).join(', ')}`);
      line('CPU per delivery: hub / ceiling process', `${fmt.int(h.cpuPerDelivery ?? NaN)} µs / ${fmt.int(c.cpuPerDelivery ?? NaN)} µs`);
      line('first pair, not counted: deliveries/s', `${fmt.int(coldHub.fig.rate)} / ${fmt.int(coldCeiling.rate)}, CPU ${fmt.int(coldHub.fig.cpuPerDelivery ?? NaN)} / ${fmt.int(coldCeiling.cpuPerDelivery ?? NaN)} µs per delivery`);
      line('all runs, hub / ceiling deliveries/s', `${hubRuns.map((x) => fmt.int(x.rate)).join(', ')} / ${ceilRuns.map((x) => fmt.int(x.rate)).join(', ')}`);
      line('all runs, hub / ceiling CPU µs per delivery', `${hubRuns.map((x) => fmt.int(x.cpuPerDelivery ?? NaN)).join(', ')} / ${ceilRuns.map((x) => fmt.int(x.cpuPerDelivery ?? NaN)).join(', ')}`);
      const b = 'fan-out';
      record({ bench: b, name: `${n} subscribers: publish → last delivery`, value: fmt.ms(h.lastMs) });
      record({ bench: b, name: `${n} subscribers: hub deliveries/s (best run)`, value: fmt.rate(h.rate) });
      record({ bench: b, name: `${n} subscribers: latency from publish p50 / p99`, value: `${fmt.ms(h.p50)} / ${fmt.ms(h.p99)}` });
      record({ bench: b, name: `${n} subscribers: undici ceiling deliveries/s (best run)`, value: fmt.rate(c.rate) });
      record({
        bench: b,
        name: `${n} subscribers: hub / ceiling (median of run pairs)`,
        value: fmt.pct(ratio),
        ...(n >= 10_000 && { target: '≥ 60%', met: ratio >= 0.6 }),
      });
      record({ bench: b, name: `${n} subscribers: CPU per delivery, hub / ceiling`, value: `${fmt.int(h.cpuPerDelivery ?? NaN)} µs / ${fmt.int(c.cpuPerDelivery ?? NaN)} µs` });
      record({ bench: b, name: `${n} subscribers: hub heap per subscription`, value: fmt.bytes(p.heapPerSub) });
    }
  } finally {
    await hub.stop();
    await sink.child.stop();
  }
}

await main();
