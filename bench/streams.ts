// Browsers at scale: 5,000 Server-Sent Events streams open on one hub process (SSE_MAX_STREAMS'
// default), read by plain node:http clients in this process. Measured:
//   - memory per open stream (the hub's heap and rss after a GC, against before they opened);
//   - a 2 KB change on the topic they all follow: from the hub being told until the last stream
//     has it, and the longest turn of the hub's event loop meanwhile (how long a ping waits);
//   - 1,000 of them (which also follow a second topic) stop reading, then 100 changes of 60 KB
//     on that second topic: what the hub holds for them, and how soon the 4,000 that still read
//     get a change of the first topic after that.
// The hub runs in its own process (bench/hub-child.ts, from dist/). Prints, never asserts.
// Run: npx tsx bench/streams.ts   (STREAMS_N=5000, STREAMS_SLOW=1000)
import http from 'node:http';
import { fmt, line, machineLine, percentile, record, sleep, startHubProcess, wallNow, type HubProcess } from './common.js';

const N = Number(process.env.STREAMS_N ?? 5000);
const SLOW = Math.min(N - 1, Number(process.env.STREAMS_SLOW ?? 1000));
const ROUNDS = 5;
const TOPIC = 'https://blog.example/feed.xml';
/** Followed by the readers that stop: its changes go to them alone. */
const BIG = 'https://blog.example/big.xml';

interface Reader {
  changes: number;
  lastAt: number;
  res: http.IncomingMessage;
  req: http.ClientRequest;
}

function open(hub: HubProcess, agent: http.Agent, topics: string[]): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${hub.url}/stream?${topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&')}`, { agent }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
      const r: Reader = { changes: 0, lastAt: 0, res, req };
      res.setEncoding('latin1');
      // Each change is one write of the hub's; a chunk that holds several is counted for each.
      res.on('data', (d: string) => {
        const n = d.split('event: change').length - 1;
        if (n > 0) {
          r.changes += n;
          r.lastAt = wallNow();
        }
      });
      res.once('data', () => resolve(r));
    });
    req.on('error', reject);
  });
}

/** Time from telling the hub of a change until every reader in `readers` has it, and the hub's longest turn meanwhile. */
async function round(hub: HubProcess, readers: Reader[], size: number): Promise<{ allMs: number; turnMs: number }> {
  const before = readers.map((r) => r.changes);
  await hub.child.call('watchTurns');
  const t0 = wallNow();
  await hub.child.call('change', { topic: TOPIC, size });
  while (readers.some((r, i) => r.changes <= before[i]!)) await sleep(2);
  const allMs = Math.max(...readers.map((r) => r.lastAt)) - t0;
  return { allMs, turnMs: await hub.child.call<number>('longestTurn') };
}

async function main(): Promise<void> {
  console.log(`SSE streams at scale (${machineLine()})`);
  console.log(`  ${fmt.int(N)} streams on one topic, read in this process; the hub in its own`);
  const hub = await startHubProcess('streams', { SSE_MAX_PER_CLIENT: String(N + 100), SSE_MAX_STREAMS: String(N + 100) });
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const readers: Reader[] = [];
  try {
    const empty = await hub.child.call<NodeJS.MemoryUsage>('memory');
    for (let i = 0; i < N; i += 250) {
      readers.push(...(await Promise.all(Array.from({ length: Math.min(250, N - i) }, (_, k) => open(hub, agent, i + k < SLOW ? [TOPIC, BIG] : [TOPIC])))));
    }
    const full = await hub.child.call<NodeJS.MemoryUsage>('memory');
    const rounds: { allMs: number; turnMs: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round(hub, readers, 2000));
    const all = rounds.map((r) => r.allMs).sort((a, b) => a - b);
    const turns = rounds.map((r) => r.turnMs).sort((a, b) => a - b);

    // Readers that stop: their sockets are no longer read, so the kernel's buffers fill, then the hub's.
    const slow = readers.slice(0, SLOW);
    const reading = readers.slice(SLOW);
    for (const r of slow) r.res.pause();
    const held0 = await hub.child.call<NodeJS.MemoryUsage>('memory');
    for (let i = 0; i < 100; i++) await hub.child.call('change', { topic: BIG, size: 60_000 });
    // Until the kernel's buffers and the hub's have filled and the fan-outs are done.
    await sleep(2000);
    const held = await hub.child.call<NodeJS.MemoryUsage>('memory');
    const after = await round(hub, reading, 2000);

    const perStream = (full.rss - empty.rss) / N;
    const heapPerStream = (full.heapUsed - empty.heapUsed) / N;
    const heldPerSlow = (held.heapUsed + held.arrayBuffers - held0.heapUsed - held0.arrayBuffers) / SLOW;
    console.log('');
    line(`memory per open stream (rss / heap)`, `${fmt.bytes(perStream)} / ${fmt.bytes(heapPerStream)}`);
    line(`change → all ${fmt.int(N)} streams (median, worst of ${ROUNDS})`, `${fmt.ms(percentile(all, 50))}, ${fmt.ms(all.at(-1)!)}`);
    line(`longest event-loop turn then (median, worst)`, `${fmt.ms(percentile(turns, 50))}, ${fmt.ms(turns.at(-1)!)}`);
    line(`held per stopped reader (${fmt.int(SLOW)}, 100 × 60 KB)`, `${fmt.bytes(heldPerSlow)} (heap + buffers; rss ${fmt.bytes((held.rss - held0.rss) / SLOW)})`);
    line(`then change → the ${fmt.int(reading.length)} still reading`, `${fmt.ms(after.allMs)}, longest turn ${fmt.ms(after.turnMs)}`);
    const b = 'streams';
    record({ bench: b, name: 'memory per open SSE stream (rss)', value: fmt.bytes(perStream) });
    record({ bench: b, name: `change → all ${fmt.int(N)} streams, median`, value: fmt.ms(percentile(all, 50)) });
    record({ bench: b, name: `longest event-loop turn during that fan-out, worst`, value: fmt.ms(turns.at(-1)!) });
    record({ bench: b, name: `held per stream that stopped reading (${fmt.int(SLOW)}, 6 MB sent)`, value: fmt.bytes(heldPerSlow) });
  } finally {
    for (const r of readers) r.req.destroy();
    agent.destroy();
    await hub.stop();
  }
}

await main();
