// Intake: how many requests a second the hub takes in, with latency percentiles (autocannon),
// beside a bare express route that answers a form POST, measured in the same run:
//   - rssCloud pings of an unchanged feed (the hub reads it: a conditional GET answered 304),
//   - rssCloud pings of a changed feed (a new entry on every read: diffed, a new version),
//   - WebSub subscribe requests (each answered 202, then verified in the background);
// and, as a reference for the changed-feed ping, express that GETs the feed before answering.
// Pings go round-robin over 1,000 feeds, so each is a real read of its own feed rather than
// one read shared by every ping in flight, on the sink's 8 ports (8 hosts; see pingFeed). The
// hub, the baseline, the feeds and autocannon are four processes; each pair of ping runs has a
// hub process of its own (the WebSub run, the last pair's).
// Run: npx tsx bench/intake.ts   (INTAKE_SECONDS=5 INTAKE_CONNECTIONS=50 INTAKE_PAIRS=3)
import autocannon, { type Result } from 'autocannon';
import { type Child, fmt, line, machineLine, pingFeed, primePings, profiled, record, sinkOrigin, sleep, spawnChild, startHubProcess, startSink } from './common.js';

const SECONDS = Number(process.env.INTAKE_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.INTAKE_CONNECTIONS ?? 50);
const PAIRS = Number(process.env.INTAKE_PAIRS ?? 3);
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

interface Load {
  /** CPU time of the server process per answered request, µs. */
  cpu?: number;
  rate: number;
  p50: number;
  p99: number;
  total: number;
  bad: number;
}

/** Runs autocannon for `seconds` against `url` + `path`, with a body made per request. */
async function load(url: string, path: string, body: (i: number) => string, seconds = SECONDS): Promise<Load> {
  let i = 0;
  const result: Result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path,
        headers: FORM,
        setupRequest: (req) => ({ ...req, body: body(i++) }),
      },
    ],
  });
  const total = result['2xx'];
  return { rate: total / result.duration, p50: result.latency.p50, p99: result.latency.p99, total, bad: result.non2xx + result.errors + result.timeouts };
}

/** A hub run and the baseline around it (the mean of the express runs just before and after). */
interface Paired {
  load: Load;
  base: Load;
}

function ratio(p: Paired): number {
  return p.load.rate / p.base.rate;
}

/** The pair whose ratio is the median (the lower middle one of an even number). */
function median(runs: Paired[]): Paired {
  return [...runs].sort((a, b) => ratio(a) - ratio(b))[Math.floor((runs.length - 1) / 2)]!;
}

function show(label: string, l: Load, base?: Load): void {
  const ratio = base ? ` = ${fmt.pct(l.rate / base.rate)} of express around it` : '';
  const cpu = l.cpu === undefined ? '' : `, ${fmt.int(l.cpu)} µs CPU each`;
  line(label, `${fmt.rate(l.rate)}, p50 ${fmt.ms(l.p50)}, p99 ${fmt.ms(l.p99)}${cpu}${l.bad > 0 ? `, ${l.bad} failed` : ''}${ratio}`);
}

async function main(): Promise<void> {
  console.log(`Intake (${machineLine()})`);
  console.log(`  autocannon, ${CONNECTIONS} connections, ${SECONDS} s per run (1 s warm-up before each)`);
  const sink = await startSink(8);
  let hub = await startHubProcess('intake');
  const { child: bare, ready } = await spawnChild<{ url: string }>('express-child.ts');
  try {
    const staticFeed = (i: number): string => pingFeed(sink, 'static', i);
    const changingFeed = (i: number): string => pingFeed(sink, 'changing', i);
    const pingBody = (feed: (i: number) => string) => (i: number) => new URLSearchParams({ url: feed(i) }).toString();

    // Every feed read once, so that pings of the static feeds find them unchanged.
    await primePings(hub.url, sink, ['static', 'changing']);

    const run = async (server: Child, url: string, path: string, body: (i: number) => string, name?: string): Promise<Load> => {
      await load(url, path, body, 1);
      const cpu0 = await server.call<number>('cpu');
      const l = name ? await profiled(server, name, () => load(url, path, body)) : await load(url, path, body);
      return { ...l, cpu: ((await server.call<number>('cpu')) - cpu0) / l.total };
    };
    // The baseline runs before and after each hub run; each hub run is compared with the mean
    // of the two baseline runs around it, so a machine that gets busier or quieter during the
    // run moves both sides of a ratio alike.
    const express = (): Promise<Load> => run(bare, ready.url, '/ping', pingBody(staticFeed), 'intake-express');
    const waitForVerifications = async (): Promise<number> => {
      const t0 = Date.now();
      for (;;) {
        const c = await hub.child.call<{ pendingVerifications: number }>('counts');
        if (c.pendingVerifications === 0) return Date.now() - t0;
        if (Date.now() - t0 > 60_000) throw new Error(`${c.pendingVerifications} verifications still pending after 60 s`);
        await sleep(100);
      }
    };
    const around = (i: number): Load => {
      const [a, b] = [bases[i]!, bases[i + 1]!];
      return { rate: (a.rate + b.rate) / 2, p50: (a.p50 + b.p50) / 2, p99: (a.p99 + b.p99) / 2, total: a.total + b.total, bad: a.bad + b.bad, cpu: ((a.cpu ?? 0) + (b.cpu ?? 0)) / 2 };
    };
    // The ping runs are repeated PAIRS times between baseline runs, and the median pair's ratio
    // is the figure: one pair alone moves by ±5 points between runs.
    const bases: Load[] = [await express()];
    const lastAround = (): Load => around(bases.length - 2);
    const unchangedRuns: Paired[] = [];
    const changedRuns: Paired[] = [];
    for (let k = 0; k < PAIRS; k++) {
      // Each pair on a hub process of its own: one process can run 5-10 % faster or slower than
      // another of the same code for its whole life (see compare.ts), and the median pair should
      // not be one process's luck.
      if (k > 0) {
        await hub.stop();
        hub = await startHubProcess('intake');
        await primePings(hub.url, sink, ['static', 'changing']);
      }
      const u = await run(hub.child, hub.url, '/ping', pingBody(staticFeed), k === 0 ? 'intake-ping-unchanged' : undefined);
      bases.push(await express());
      unchangedRuns.push({ load: u, base: lastAround() });
      const c = await run(hub.child, hub.url, '/ping', pingBody(changingFeed), k === 0 ? 'intake-ping-changed' : undefined);
      bases.push(await express());
      changedRuns.push({ load: c, base: lastAround() });
    }
    // A reference, not the target's baseline: express that reads the same changed feed before
    // answering, as a ping must (the spec has the hub read the feed before it answers).
    const fetching = await run(bare, ready.url, '/fetch', pingBody(changingFeed), 'intake-express-fetch');
    bases.push(await express());
    const fetchingBase = lastAround();
    let n = 0;
    const subscribe = await run(
      hub.child,
      hub.url,
      '/websub',
      (): string => {
        const i = n++;
        return new URLSearchParams({
          'hub.mode': 'subscribe',
          'hub.topic': staticFeed(i),
          'hub.callback': `${sinkOrigin(sink, i)}/ws/intake/${i}`,
        }).toString();
      },
      'intake-websub-subscribe',
    );
    // The verifications of what was accepted finish before the baseline runs again.
    const verifiedAfter = await waitForVerifications();
    bases.push(await express());
    const subscribeBase = lastAround();
    const base: Load = {
      rate: bases.reduce((x, l) => x + l.rate, 0) / bases.length,
      p50: bases.reduce((x, l) => x + l.p50, 0) / bases.length,
      p99: bases.reduce((x, l) => x + l.p99, 0) / bases.length,
      total: bases.reduce((x, l) => x + l.total, 0),
      bad: bases.reduce((x, l) => x + l.bad, 0),
      cpu: bases.reduce((x, l) => x + (l.cpu ?? 0), 0) / bases.length,
    };

    const unchanged = median(unchangedRuns);
    const changed = median(changedRuns);
    const ratios = (runs: Paired[]): string => runs.map((r) => fmt.pct(ratio(r))).join(', ');
    const fetchRatio = fetching.rate / fetchingBase.rate;

    console.log('');
    line(`bare express form POST, each of ${bases.length} runs`, bases.map((l) => fmt.rate(l.rate)).join(', '));
    show('bare express form POST, mean', base);
    show('hub: rssCloud ping, unchanged feed (median pair)', unchanged.load, unchanged.base);
    line('  … every pair', ratios(unchangedRuns));
    show('hub: rssCloud ping, changed feed (median pair)', changed.load, changed.base);
    line('  … every pair', ratios(changedRuns));
    show('express that first GETs the changed feed (undici)', fetching, fetchingBase);
    line('hub: changed feed, against that reference', fmt.pct(ratio(changed) / fetchRatio));
    show('hub: WebSub subscribe (202; verified after)', subscribe, subscribeBase);
    line('WebSub subscriptions accepted and verified', `${fmt.int(subscribe.total)} (+ warm-up), verifications done ${fmt.s(verifiedAfter)} after the run`);
    const r1 = ratio(unchanged);
    const r2 = ratio(changed);
    const r3 = subscribe.rate / subscribeBase.rate;
    line(`ping intake / bare express, median of ${PAIRS} pairs (target ≥ 50%)`, `unchanged ${fmt.pct(r1)} ${r1 >= 0.5 ? 'met' : 'MISSED'}, changed ${fmt.pct(r2)} ${r2 >= 0.5 ? 'met' : 'MISSED'}`);
    const b = 'intake';
    const val = (l: Load): string => `${fmt.rate(l.rate)} (p50 ${fmt.ms(l.p50)}, p99 ${fmt.ms(l.p99)}, ${fmt.int(l.cpu ?? NaN)} µs CPU each)`;
    record({ bench: b, name: 'bare express form POST', value: val(base) });
    record({ bench: b, name: 'ping, unchanged feed (median pair)', value: val(unchanged.load) });
    record({ bench: b, name: 'ping, changed feed (median pair)', value: val(changed.load) });
    record({ bench: b, name: 'express + GET of the changed feed', value: `${val(fetching)}, ${fmt.pct(fetchRatio)} of express` });
    record({ bench: b, name: 'ping (changed) / express + GET of the feed', value: fmt.pct(r2 / fetchRatio) });
    record({ bench: b, name: 'WebSub subscribe requests', value: val(subscribe) });
    record({ bench: b, name: `ping (unchanged) / express, median of ${PAIRS} pairs`, value: `${fmt.pct(r1)} (pairs ${ratios(unchangedRuns)})`, target: '≥ 50%', met: r1 >= 0.5 });
    record({ bench: b, name: `ping (changed) / express, median of ${PAIRS} pairs`, value: `${fmt.pct(r2)} (pairs ${ratios(changedRuns)})`, target: '≥ 50%', met: r2 >= 0.5 });
    record({ bench: b, name: 'WebSub subscribe / express', value: fmt.pct(r3) });
  } finally {
    await bare.stop();
    await hub.stop();
    await sink.child.stop();
  }
}

await main();
