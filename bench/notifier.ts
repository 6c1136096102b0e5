// The notifier's own cost: CPU time per delivery of a fan-out to 10,000 subscriptions (a third
// each rssCloud http-post, XML-RPC and WebSub with a secret) on the embedded store, with the
// network taken out. The HTTP client is a stand-in that answers every request 200 on the next
// turn of the event loop, so what is measured is the hub's work around a request: lanes, slots,
// the subscription read, signing, outcome records and their journal writes. The fan-out
// benchmark measures the same work with the network in, against a ceiling that has none of it;
// this one gives the work alone a figure steady enough to compare two versions of the code.
// Run: npx tsx bench/notifier.ts   (NOTIFIER_N=10000 NOTIFIER_ROUNDS=10)
import { loadConfig } from '../lib/config.js';
import type { HttpClient, HttpResponse } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import type { Subscription } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { fmt, line, machineLine, record, removeTempDir, seededSubscription, tempDir, type SeedSub } from './common.js';

const N = Number(process.env.NOTIFIER_N ?? 10_000);
const ROUNDS = Number(process.env.NOTIFIER_ROUNDS ?? 10);
/** Rounds left out of the figure while the JIT warms up. */
const WARM_UP = 2;

const REPLY: HttpResponse = {
  status: 200,
  headers: {},
  body: Buffer.from('<?xml version="1.0"?>\n<methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>\n'),
  url: '',
};

/** Only `request` is used by the senders. */
const http = { request: () => new Promise<HttpResponse>((resolve) => setImmediate(resolve, REPLY)) } as unknown as HttpClient;

console.log(`Notifier, network taken out (${machineLine()})`);
const dir = await tempDir('notifier');
const config = loadConfig({ DATA_DIR: dir });
const store = new LowdbStore({ dir });
await store.open();
const notifier = new Notifier({ config, http, store, log: silentLogger });
// The delivery event is emitted to a listener, as in the hub; lib/server.ts's (metrics, the
// activity log) is not part of this figure.
notifier.on('delivery', () => {});

const topic = 'http://127.0.0.1:8080/feed.xml';
const now = Date.now();
const subs = Array.from({ length: N }, (_, i): Subscription => {
  const base = `http://127.0.0.1:${40000 + (i % 8)}`;
  const seed: SeedSub =
    i % 3 === 0
      ? { callback: `${base}/rss/${i}`, protocol: 'http-post' }
      : i % 3 === 1
        ? { callback: `${base}/rpc/${i}`, protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated' }
        : { callback: `${base}/ws/${i}?user=${i}`, protocol: 'websub', secret: `secret-${i}` };
  return seededSubscription(topic, seed, now, 0);
});
for (let i = 0; i < subs.length; i += 1000) await Promise.all(subs.slice(i, i + 1000).map((s) => store.putSubscription(s)));

const body = Buffer.from(`<?xml version="1.0"?>\n<rss version="2.0"><channel><title>T</title>${'<item><title>An entry</title><guid>x</guid></item>'.repeat(10)}</channel></rss>\n`);
const perDelivery: number[] = [];
for (let version = 1; version <= ROUNDS; version++) {
  const cpu = process.cpuUsage();
  const start = await notifier.stage({ topic, version, body, contentType: 'application/rss+xml' }, async () => {});
  const report = await start();
  // The report comes with the last first attempt; its outcome record and the outbox entry's
  // removal follow. Counted until the store has them.
  while ((await store.outboxOf(topic)).length > 0) await new Promise((r) => setImmediate(r));
  const used = process.cpuUsage(cpu);
  if (report.delivered !== N) throw new Error(`round ${version}: ${report.delivered} of ${N} delivered`);
  perDelivery.push((used.user + used.system) / N);
}
notifier.close();
await store.close();
await removeTempDir(dir);

const measured = perDelivery.slice(WARM_UP).sort((a, b) => a - b);
const median = measured[Math.floor(measured.length / 2)]!;
console.log(`\n${fmt.int(N)} subscriptions, ${ROUNDS} fan-outs (the first ${WARM_UP} left out: JIT warm-up)`);
line('CPU per delivery, each fan-out', perDelivery.map((v) => `${v.toFixed(1)}`).join(', ') + ' µs');
line('CPU per delivery, median', `${median.toFixed(1)} µs`);
record({ bench: 'notifier', name: `notifier's own CPU per delivery, ${fmt.int(N)} subscriptions, no network`, value: `${median.toFixed(1)} µs (median of ${measured.length})` });
