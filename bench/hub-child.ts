// A hub in its own process, as `npm start` runs it (startHub with the environment's config),
// plus the few things a benchmark needs from inside that process: seeding subscriptions through
// the Store API, store counts, memory after a GC, and the undici ceiling loop (run from this same
// process, so the hub and its ceiling are measured under the same conditions).
// The hub itself is loaded from dist/ (see buildHub in common.ts): compiled, as `npm start` runs it.
//   node [--expose-gc] --import tsx bench/hub-child.ts      (configured by the environment)
import { Agent } from 'undici';
import { childCommands, seededSubscription, serveCommands, wallNow, type SeedSub } from './common.js';

// A path in a variable: dist/ exists only once built, and the type check must not need it.
const DIST = '../dist/lib/';
const { loadConfig } = (await import(`${DIST}config.js`)) as typeof import('../lib/config.js');
const { createLogger } = (await import(`${DIST}log.js`)) as typeof import('../lib/log.js');
const { startHub } = (await import(`${DIST}server.js`)) as typeof import('../lib/server.js');

export interface CeilingTarget {
  url: string;
  contentType: string;
  body: string;
}

const config = loadConfig();
const log = createLogger(config.logLevel);
const hub = await startHub(config, { log });
const { store } = hub;

function memory(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage();
}

let changes = 0;
// A ticker every millisecond while a benchmark watches turns; off otherwise, not to cost the others.
let longest = 0;
let lastTick = 0;
let ticker: NodeJS.Timeout | undefined;
const tick = (): void => {
  const now = performance.now();
  longest = Math.max(longest, now - lastTick);
  lastTick = now;
};

serveCommands(
  {
    ...childCommands(),
    /** Writes subscriptions through the Store API, 1,000 in flight (group commit). */
    seed: async (msg) => {
      const topic = msg.topic as string;
      const subs = msg.subs as SeedSub[];
      const now = Date.now();
      // Each subscriber starts at its topic's current version, as a real subscription would.
      const versions = new Map<string, number>();
      for (const t of new Set([topic, ...subs.map((s) => s.topic ?? topic)])) versions.set(t, (await store.getTopic(t))?.version ?? 0);
      const deliveredVersion = versions.get(topic)!;
      const started = wallNow();
      for (let i = 0; i < subs.length; i += 1000) {
        await Promise.all(
          subs.slice(i, i + 1000).map((s) => {
            const subTopic = s.topic ?? topic;
            return store.putSubscription(seededSubscription(subTopic, s, now, versions.get(subTopic)!));
          }),
        );
      }
      return { ms: wallNow() - started, deliveredVersion };
    },
    counts: async () => ({ ...(await store.counts()), pendingVerifications: (await store.listVerifications()).length }),
    topic: async (msg) => (await store.getTopic(msg.url as string)) ?? null,
    countSubscriptions: (msg) => store.countSubscriptions({ topic: msg.topic as string }),
    memory: () => memory(),
    /** A change of `size` bytes of text on `topic`, as a publish's read announces one (bench/streams.ts). */
    change: (msg) => {
      hub.hub.emit('change', { topic: msg.topic as string, version: ++changes, body: Buffer.from('x'.repeat(msg.size as number)), contentType: 'text/plain' });
    },
    /** Starts timing turns of the event loop (gaps between ticks of a 1 ms ticker). */
    watchTurns: () => {
      clearInterval(ticker);
      longest = 0;
      lastTick = performance.now();
      ticker = setInterval(tick, 1);
    },
    /** The longest turn since watchTurns (a 1 ms ticker's gap: a turn of up to 1 ms more); stops timing. */
    longestTurn: () => {
      clearInterval(ticker);
      tick();
      return longest;
    },
    /**
     * The ceiling: a bare undici POST loop (`concurrency` requests in flight, the same pool size
     * per origin as the hub's client) over the same targets and bodies. Returns when the last
     * response is read.
     */
    ceiling: async (msg) => {
      const targets = (msg.targets as CeilingTarget[]).map((t) => {
        const u = new URL(t.url);
        return { origin: u.origin, path: u.pathname + u.search, headers: { 'content-type': t.contentType }, body: t.body };
      });
      const agent = new Agent({ connections: 64 });
      let next = 0;
      let failed = 0;
      const started = wallNow();
      await Promise.all(
        Array.from({ length: msg.concurrency as number }, async () => {
          while (next < targets.length) {
            const t = targets[next++]!;
            const res = await agent.request({ origin: t.origin, path: t.path, method: 'POST', headers: t.headers, body: t.body });
            await res.body.text();
            if (res.statusCode !== 200) failed++;
          }
        }),
      );
      const ended = wallNow();
      await agent.close();
      return { started, ended, failed };
    },
  },
  () => hub.close(),
);

process.send?.({ ready: { url: hub.url, port: hub.port } });
