// Publish → first delivery at idle: one subscriber, 1,000 publishes one after another, each a
// real change (the feed has a new entry on every read), timed from just before the publish
// request is sent to the delivery's arrival at the subscriber (another process; one clock).
//   - WebSub: POST hub.mode=publish (answered 204 at once), a WebSub subscriber with a secret;
//   - rssCloud: POST /ping (answered after the fan-out), an http-post subscriber.
// Run: npx tsx bench/latency.ts   (LATENCY_N=1000)
import { fmt, line, machineLine, percentile, postForm, profiled, record, sleep, startHubProcess, startSink, wallNow, type HubProcess, type SeedSub, type Sink } from './common.js';

const N = Number(process.env.LATENCY_N ?? 1000);
const WARM_UP = 50;

interface Series {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

async function series(hub: HubProcess, sink: Sink, tag: string, sub: SeedSub, publish: (topic: string) => Promise<void>): Promise<Series> {
  const topic = `${sink.base}/feed/changing/${tag}`;
  // The first read, a version to start from. A WebSub publish is answered before the read, so
  // wait for it: a subscriber seeded before it would be sent that first version as well.
  await publish(topic);
  while (((await hub.child.call<{ version: number } | null>('topic', { url: topic }))?.version ?? 0) === 0) await sleep(5);
  await hub.child.call('seed', { topic, subs: [sub] });
  await sink.child.call('reset');
  let arrived = 0;
  const one = async (): Promise<number> => {
    const t0 = wallNow();
    await publish(topic);
    const r = await sink.child.call<{ nth: number }>('waitFor', { n: ++arrived, timeoutMs: 10_000 });
    return r.nth - t0;
  };
  for (let i = 0; i < WARM_UP; i++) await one();
  const lat: number[] = [];
  await profiled(hub.child, `latency-${tag}`, async () => {
    for (let i = 0; i < N; i++) lat.push(await one());
  });
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  lat.sort((a, b) => a - b);
  if ((lat[0] ?? 0) <= 0) throw new Error(`a delivery arrived before its publish (${fmt.ms(lat[0] ?? NaN)}): deliveries and publishes are miscounted`);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? NaN, mean };
}

async function main(): Promise<void> {
  console.log(`Publish → first delivery at idle (${machineLine()})`);
  console.log(`  ${fmt.int(N)} publishes one after another (after ${WARM_UP} to warm up), one subscriber`);
  const sink = await startSink(1);
  const hub = await startHubProcess('latency');
  try {
    const base = `http://127.0.0.1:${sink.ports[0]}`;
    const websub = await series(hub, sink, 'websub', { callback: `${base}/ws/latency`, protocol: 'websub', secret: 's3cret' }, async (topic) => {
      const r = await postForm(`${hub.url}/websub`, { 'hub.mode': 'publish', 'hub.url': topic });
      if (r.status !== 204) throw new Error(`publish answered ${r.status}: ${r.text}`);
    });
    const rss = await series(hub, sink, 'rsscloud', { callback: `${base}/rss/latency`, protocol: 'http-post' }, async (topic) => {
      const r = await postForm(`${hub.url}/ping`, { url: topic });
      if (r.status !== 200) throw new Error(`ping answered ${r.status}: ${r.text}`);
    });
    console.log('');
    const show = (s: Series): string => `p50 ${fmt.ms(s.p50)}, p99 ${fmt.ms(s.p99)}, mean ${fmt.ms(s.mean)}, max ${fmt.ms(s.max)}`;
    line('WebSub publish → delivery', show(websub));
    line('rssCloud ping → delivery', show(rss));
    const ok = (s: Series): boolean => s.p50 < 10 && s.p99 < 50;
    line('targets p50 < 10 ms, p99 < 50 ms', `WebSub ${ok(websub) ? 'met' : 'MISSED'}, rssCloud ${ok(rss) ? 'met' : 'MISSED'}`);
    const b = 'latency';
    record({ bench: b, name: 'WebSub publish → first delivery p50 / p99', value: `${fmt.ms(websub.p50)} / ${fmt.ms(websub.p99)}`, target: '< 10 ms / < 50 ms', met: ok(websub) });
    record({ bench: b, name: 'rssCloud ping → first delivery p50 / p99', value: `${fmt.ms(rss.p50)} / ${fmt.ms(rss.p99)}`, target: '< 10 ms / < 50 ms', met: ok(rss) });
  } finally {
    await hub.stop();
    await sink.child.stop();
  }
}

await main();
