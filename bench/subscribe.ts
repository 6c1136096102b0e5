// Subscribe throughput, end to end:
//   - rssCloud: 10,000 pleaseNotify (REST form POST, http-post, no domain), each answered only
//     after the hub has read the feed and POSTed its synchronous test notification to the
//     subscriber; time for all of them.
//   - WebSub: 10,000 subscribe requests, each answered 202 and verified in the background by a
//     GET to the callback that must echo the challenge; time until all 10,000 are verified
//     (in the store), counted from the last request's answer.
// Callbacks are on sink servers in another process; the feeds (100 topics) too.
// Run: npx tsx bench/subscribe.ts   (SUBSCRIBE_N=10000 SUBSCRIBE_CONCURRENCY=64)
import { Agent } from 'undici';
import { fmt, line, machineLine, percentile, profiled, record, sleep, startHubProcess, startSink, wallNow } from './common.js';

const N = Number(process.env.SUBSCRIBE_N ?? 10_000);
const CONCURRENCY = Number(process.env.SUBSCRIBE_CONCURRENCY ?? 64);
const TOPICS = 100;

interface Counts {
  subscriptions: number;
  byProtocol: Record<string, number>;
  pendingVerifications: number;
}

interface Phase {
  ms: number;
  lastAnswerAt: number;
  p50: number;
  p99: number;
  failed: number;
  firstFailure?: string;
}

/** POSTs N forms, CONCURRENCY at a time, over one keep-alive pool; latency of each. */
async function postAll(agent: Agent, origin: string, path: string, expect: number, form: (i: number) => string): Promise<Phase> {
  const lat: number[] = [];
  let failed = 0;
  let firstFailure: string | undefined;
  let next = 0;
  let lastAnswerAt = 0;
  const started = wallNow();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        const t = wallNow();
        const res = await agent.request({ origin, path, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(i) });
        const text = await res.body.text();
        lastAnswerAt = wallNow();
        lat.push(lastAnswerAt - t);
        if (res.statusCode !== expect || (expect === 200 && !text.includes('success="true"'))) {
          failed++;
          firstFailure ??= `${res.statusCode} ${text.slice(0, 200)}`;
        }
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { ms: lastAnswerAt - started, lastAnswerAt, p50: percentile(lat, 50), p99: percentile(lat, 99), failed, ...(firstFailure !== undefined && { firstFailure }) };
}

async function main(): Promise<void> {
  console.log(`Subscribe (${machineLine()})`);
  console.log(`  ${fmt.int(N)} requests per protocol, ${CONCURRENCY} in flight, over ${TOPICS} feeds`);
  const sink = await startSink(8);
  const hub = await startHubProcess('subscribe');
  const agent = new Agent({ connections: CONCURRENCY });
  const origin = hub.url;
  try {
    const feed = (i: number): string => `${sink.base}/feed/static/s${i % TOPICS}`;
    const port = (i: number): number => sink.ports[i % sink.ports.length]!;

    // rssCloud pleaseNotify: the answer waits for the feed read and the test notification.
    await sink.child.call('reset');
    const rss = await profiled(hub.child, 'subscribe-pleasenotify', () =>
      postAll(agent, origin, '/pleaseNotify', 200, (i) =>
        new URLSearchParams({ port: String(port(i)), path: `/rss/sub/${i}`, protocol: 'http-post', url1: feed(i) }).toString(),
      ),
    );
    const tests = await sink.child.call<{ byKind: { rss: number } }>('stats');
    const afterRss = await hub.child.call<Counts>('counts');

    // WebSub subscribe: 202 at once, verification in the background.
    const started = wallNow();
    const ws = await profiled(hub.child, 'subscribe-websub', async () => {
      const phase = await postAll(agent, origin, '/websub', 202, (i) =>
        new URLSearchParams({
          'hub.mode': 'subscribe',
          'hub.topic': feed(i),
          'hub.callback': `http://127.0.0.1:${port(i)}/ws/sub/${i}?user=${i}`,
          'hub.secret': `secret-${i}`,
        }).toString(),
      );
      let c: Counts;
      for (;;) {
        c = await hub.child.call<Counts>('counts');
        if ((c.byProtocol.websub ?? 0) >= N || (c.pendingVerifications === 0 && wallNow() - phase.lastAnswerAt > 1000)) break;
        if (wallNow() - phase.lastAnswerAt > 120_000) break;
        await sleep(10);
      }
      return { ...phase, verifiedAt: wallNow(), verified: c.byProtocol.websub ?? 0 };
    });
    const verifiedAfterLast = ws.verifiedAt - ws.lastAnswerAt;

    console.log('');
    line('rssCloud pleaseNotify: all answered', `${fmt.s(rss.ms)} (${fmt.rate(N / (rss.ms / 1000))}), p50 ${fmt.ms(rss.p50)}, p99 ${fmt.ms(rss.p99)}`);
    line('  test notifications received / subscriptions stored', `${fmt.int(tests.byKind.rss)} / ${fmt.int(afterRss.byProtocol['http-post'] ?? 0)}${rss.failed ? `, ${rss.failed} failed: ${rss.firstFailure}` : ''}`);
    line('WebSub subscribe: all answered 202', `${fmt.s(ws.ms)} (${fmt.rate(N / (ws.ms / 1000))}), p50 ${fmt.ms(ws.p50)}, p99 ${fmt.ms(ws.p99)}${ws.failed ? `, ${ws.failed} failed: ${ws.firstFailure}` : ''}`);
    line('  all verified (in the store)', `${fmt.int(ws.verified)} of ${fmt.int(N)}, ${fmt.s(ws.verifiedAt - started)} after the first request, ${fmt.s(verifiedAfterLast)} after the last answer`);
    const rssOk = rss.ms < 10_000 && rss.failed === 0;
    const wsOk = verifiedAfterLast <= 10_000 && ws.verified >= N;
    line('targets', `pleaseNotify < 10 s ${rssOk ? 'met' : 'MISSED'}; verified ≤ 10 s after the last request ${wsOk ? 'met' : 'MISSED'}`);
    const b = 'subscribe';
    record({ bench: b, name: `${fmt.int(N)} rssCloud pleaseNotify (with test notification)`, value: `${fmt.s(rss.ms)} (p50 ${fmt.ms(rss.p50)}, p99 ${fmt.ms(rss.p99)})`, target: '< 10 s', met: rssOk });
    record({ bench: b, name: `${fmt.int(N)} WebSub subscribe requests answered`, value: `${fmt.s(ws.ms)} (p50 ${fmt.ms(ws.p50)}, p99 ${fmt.ms(ws.p99)})` });
    record({ bench: b, name: `${fmt.int(N)} WebSub verified, after the last request`, value: fmt.s(verifiedAfterLast), target: '≤ 10 s', met: wsOk });
  } finally {
    await agent.close();
    await hub.stop();
    await sink.child.stop();
  }
}

await main();
