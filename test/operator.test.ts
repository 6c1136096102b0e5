// The operator's and the browser's faces over plain HTTP: /metrics moving with real traffic,
// /stats.json (hosts, never callback URLs or secrets), /feeds.opml, /healthz, the token-guarded
// actions, and the Server-Sent Events streams (heartbeats, CORS, limits, resume, and a change
// reaching a stream whichever protocol announced it).
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import net from 'node:net';
import { Recorder, sleep } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer, MSG, pleaseNotify, rawRequest, subscriberOk } from './helpers/rsscloud.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';
import { openSse, openStream, type SseStream } from './helpers/sse.js';
import { STREAM_BODY_MAX } from '../lib/change-event.js';
import { busiestOf } from '../lib/operator.js';
import { until } from './helpers/until.js';

const ADMIN_TOKEN = 'operator-token-0123456789';
/** How long nothing must happen, after the hub is idle, to count as "nothing happened". */
const QUIET_MS = 300;

interface Entry {
  id: string;
  title: string | null;
  link: string | null;
  published: string | null;
  summary: string | null;
}
interface Change {
  topic: string;
  version: number;
  contentType: string;
  entries: Entry[] | null;
  body: string | null;
}

/** An RSS 2.0 feed with one item per slug, newest first. */
function rss(...slugs: string[]): string {
  const items = slugs
    .map(
      (s) =>
        `<item><title>Post ${s}</title><link>https://blog.example/${s}</link><guid>https://blog.example/${s}</guid>` +
        `<pubDate>Tue, 07 May 2024 09:30:00 GMT</pubDate><description>About ${s}.</description></item>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>\n${items}\n</channel></rss>\n`;
}
const RSS_TYPE = 'application/rss+xml';

/** Prometheus text → "name{label="v",…}" (labels sorted) → value. */
async function scrape(hub: TestHub): Promise<Map<string, number>> {
  const res = await fetch(`${hub.url}/metrics`);
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}
const metric = (m: Map<string, number>, name: string, labels: Record<string, string> = {}): number => {
  const key = `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',')}}`;
  return m.get(key) ?? 0;
};

const streamUrl = (hub: TestHub, ...topics: string[]): string =>
  `${hub.url}/stream?${topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&')}`;

interface StatsJson {
  subscriptions: number;
  pausedHosts: { host: string; failures: number; until: string }[];
  [k: string]: unknown;
}
async function stats(hub: TestHub): Promise<StatsJson> {
  const res = await fetch(`${hub.url}/stats.json`);
  expect(res.status).to.equal(200);
  return (await res.json()) as StatsJson;
}

function admin(hub: TestHub, path: string, body: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  return fetch(`${hub.url}/admin/${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** Subscribes over WebSub and waits until the hub has stored the verified subscription. */
async function webSubscribe(hub: TestHub, sub: Subscriber, topic: string, callbackPath: string, extra: Record<string, string> = {}): Promise<string> {
  const callback = sub.callback(callbackPath);
  const before = sub.verifications('subscribe').length;
  const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback, ...extra });
  expect(res.status, await res.text()).to.equal(202);
  await sub.waitVerifications(before + 1, 'subscribe');
  await settled(hub);
  return callback;
}

describe('Operators and browsers over HTTP', function () {
  const cleanup: { close?(): Promise<void> | void; destroy?(): Promise<void> }[] = [];
  async function hubWith(env: Record<string, string> = {}): Promise<TestHub> {
    const h = await startTestHub(env);
    cleanup.push(h);
    return h;
  }
  async function topicServer(): Promise<TopicServer> {
    const t = await TopicServer.start();
    cleanup.push(t);
    return t;
  }
  async function subscriber(): Promise<Subscriber> {
    const s = await Subscriber.start();
    cleanup.push(s);
    return s;
  }
  async function stream(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const s = await openStream(url, headers);
    cleanup.push(s);
    return s;
  }
  afterEach(async () => {
    // Streams first, so hubs close without waiting for them.
    for (const c of cleanup.splice(0).reverse()) {
      if (c.destroy) await c.destroy();
      else await c.close?.();
    }
  });

  describe('/metrics', () => {
    it("has the process's and Node's own metrics under their usual names, for the dashboards made for them", async () => {
      const hub = await hubWith();
      const names = new Set([...(await scrape(hub)).keys()].map((k) => k.slice(0, k.indexOf('{'))));
      for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
        expect(names.has(name), name).to.equal(true);
      }
      expect([...names].filter((n) => n.includes('process_process')), 'doubled names').to.deep.equal([]);
    });

    it('moves with real traffic: deliveries by protocol and outcome, latency, fetches, subscriptions, requests', async () => {
      const hub = await hubWith();
      const feeds = await FeedServer.start();
      cleanup.push(feeds);
      const good = await Recorder.start(subscriberOk);
      cleanup.push(good);
      const failing = await Recorder.start(subscriberOk);
      cleanup.push(failing);
      const ws = await subscriber();
      const before = await scrape(hub);

      const feed = feeds.changing('metrics');
      for (const r of [good, failing]) {
        const reply = await pleaseNotify(hub, { port: String(r.port), path: '/notify', protocol: 'http-post', url1: feed });
        expect(reply.msg).to.equal(MSG.subscribed);
      }
      await webSubscribe(hub, ws, feed, '/cb');
      failing.handler = (_req, res) => void res.writeHead(500).end('down');
      const pinged = await hub.postForm('/ping', { url: feed });
      expect(pinged.status).to.equal(200);
      await settled(hub);
      await ws.waitDeliveries(1);

      // A feed that stays the same, read twice; and one that cannot be read.
      const fixed = feeds.fixed('metrics');
      await hub.postForm('/ping', { url: fixed });
      await hub.postForm('/ping', { url: fixed });
      await hub.postForm('/ping', { url: feeds.missing('metrics') });
      await settled(hub);

      const after = await scrape(hub);
      const delta = (name: string, labels: Record<string, string> = {}): number => metric(after, name, labels) - metric(before, name, labels);
      // The second pleaseNotify read the feed, found it changed and notified the first subscriber
      // (as the reference server does); the ping then reached all three.
      expect(delta('pushbutton_deliveries_total', { protocol: 'http-post', outcome: 'delivered' })).to.equal(2);
      expect(delta('pushbutton_deliveries_total', { protocol: 'http-post', outcome: 'failed' })).to.equal(1);
      expect(delta('pushbutton_deliveries_total', { protocol: 'websub', outcome: 'delivered' })).to.equal(1);
      expect(delta('pushbutton_deliveries_total', { protocol: 'websub', outcome: 'failed' })).to.equal(0);
      expect(delta('pushbutton_delivery_latency_seconds_count', { protocol: 'http-post' })).to.equal(3);
      expect(delta('pushbutton_delivery_latency_seconds_count', { protocol: 'websub' })).to.equal(1);
      expect(metric(after, 'pushbutton_delivery_latency_seconds_bucket', { protocol: 'websub', le: '+Inf' })).to.equal(1);
      // The changing feed was read by each pleaseNotify and by the ping; the fixed one changed once, then not.
      expect(delta('pushbutton_topic_fetches_total', { outcome: 'changed' })).to.equal(4);
      expect(delta('pushbutton_topic_fetches_total', { outcome: 'unchanged' })).to.equal(1);
      expect(delta('pushbutton_topic_fetches_total', { outcome: 'failed' })).to.equal(1);
      expect(metric(after, 'pushbutton_subscriptions', { protocol: 'http-post' })).to.equal(2);
      expect(metric(after, 'pushbutton_subscriptions', { protocol: 'websub' })).to.equal(1);
      expect(metric(after, 'pushbutton_subscriptions', { protocol: 'xml-rpc' })).to.equal(0);
      // The missing feed was never read successfully, so it is no topic.
      expect(metric(after, 'pushbutton_topics')).to.equal(2);
      expect(delta('pushbutton_http_requests_total', { route: '/ping', status: '200' })).to.equal(4);
      expect(delta('pushbutton_http_requests_total', { route: '/pleaseNotify', status: '200' })).to.equal(2);
      expect(delta('pushbutton_http_requests_total', { route: '/websub', status: '202' })).to.equal(1);
      // The scrape before this one was itself a request.
      expect(delta('pushbutton_http_requests_total', { route: '/metrics', status: '200' })).to.equal(1);
      expect(metric(after, 'pushbutton_delivery_queue_depth')).to.equal(0);
    });
  });

  describe('/stats.json, /feeds.opml, /healthz', () => {
    it('the pages\' scripts and styles are revalidated on every load, as the pages are, so an upgrade never mixes versions', async () => {
      const hub = await hubWith();
      for (const file of ['dashboard.js', 'style.css']) {
        const res = await fetch(`${hub.url}/static/${file}`);
        expect(res.status, file).to.equal(200);
        expect(res.headers.get('cache-control'), file).to.equal('public, max-age=0');
        const validator = res.headers.get('last-modified');
        expect(validator, file).to.be.a('string');
        // Not fetch(): a conditional header makes it send Cache-Control: no-cache, as a browser's reload does.
        const again = await rawRequest(`${hub.url}/static/${file}`, { method: 'GET', headers: { 'if-modified-since': validator! } });
        expect(again.status, `${file} unchanged`).to.equal(304);
      }
    });

    // Express serves /demo/ as /demo, where the page's relative static/ URLs miss: unstyled, its script a 404.
    it('a page asked for with a trailing slash is sent to its one spelling, where its scripts and styles load, keeping the query', async () => {
      const hub = await hubWith();
      for (const [asked, to] of [
        ['/demo/', '/demo'],
        ['/docs/', '/docs'],
        ['/client.js/', '/client.js'],
        ['/demo/?topic=https%3A%2F%2Fblog.example%2Ffeed.xml', '/demo?topic=https%3A%2F%2Fblog.example%2Ffeed.xml'],
      ]) {
        const res = await fetch(`${hub.url}${asked}`, { redirect: 'manual' });
        expect(res.status, asked).to.equal(301);
        const target = new URL(res.headers.get('location')!, `${hub.url}${asked}`);
        expect(target.pathname + target.search, asked).to.equal(to);
      }
      const root = await fetch(`${hub.url}/`, { redirect: 'manual' });
      expect(root.status).to.equal(200);
      expect(await root.text()).to.include('static/dashboard.js');
    });

    it('pages on other origins may read /stats.json, /feeds.opml and /client.js: each answers the CORS preflight', async () => {
      const hub = await hubWith();
      for (const path of ['/stats.json', '/feeds.opml', '/client.js']) {
        const res = await fetch(`${hub.url}${path}`, {
          method: 'OPTIONS',
          headers: { origin: 'https://dashboard.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'accept' },
        });
        expect(res.status, path).to.equal(204);
        expect(res.headers.get('access-control-allow-origin'), path).to.equal('*');
        expect(res.headers.get('access-control-allow-headers') ?? '', path).to.match(/\baccept\b/i);
      }
    });

    it('/stats.json has its shape and shows callback hosts, never callback URLs, their queries or secrets', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const rc = await Recorder.start(subscriberOk);
      cleanup.push(rc);
      const ws = await subscriber();
      const events = await stream(`${hub.url}/events`);

      const feed = topics.set('/stats.xml', { body: rss('a'), contentType: RSS_TYPE });
      const reply = await pleaseNotify(hub, { port: String(rc.port), path: '/notify?key=SECRET-KEY-1', protocol: 'http-post', url1: feed });
      expect(reply.msg).to.equal(MSG.subscribed);
      await webSubscribe(hub, ws, feed, '/cb?token=SECRET-TOKEN-2', { 'hub.secret': 'SECRET-HMAC-3' });
      topics.set('/stats.xml', { body: rss('b', 'a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      // The rssCloud subscriber now redirects in a loop: the error names the URL it started from.
      rc.handler = (req, res) => void res.writeHead(302, { location: req.url }).end();
      topics.set('/stats.xml', { body: rss('c', 'b', 'a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      await settled(hub);
      await ws.waitDeliveries(2);

      const res = await fetch(`${hub.url}/stats.json`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      const text = await res.text();
      const stats = JSON.parse(text) as Record<string, unknown> & {
        busiestTopics: { url: string; subscriptions: number; version: number; lastUpdate: string | null }[];
        recentDeliveries: { id: number; at: number; kind: string; topic: string; ok: boolean; protocol?: string; detail?: string }[];
        recentFailures: { kind: string; ok: boolean; detail?: string }[];
      };
      expect(Object.keys(stats).sort()).to.deep.equal(
        [
          'busiestTopics',
          'deliveriesLingering',
          'deliveryQueueDepth',
          'pausedHosts',
          'polledTopics',
          'recentDeliveries',
          'recentFailures',
          'startedAt',
          'streams',
          'subscriptions',
          'subscriptionsByProtocol',
          'topics',
          'uptimeSeconds',
        ].sort(),
      );
      expect(Date.parse(stats['startedAt'] as string)).to.be.a('number').and.not.NaN;
      expect(stats['uptimeSeconds']).to.be.a('number');
      expect(stats['topics']).to.equal(1);
      expect(stats['subscriptions']).to.equal(2);
      expect(stats['subscriptionsByProtocol']).to.deep.equal({ 'http-post': 1, websub: 1 });
      expect(stats.busiestTopics).to.have.length(1);
      expect(stats.busiestTopics[0]).to.include({ url: feed, subscriptions: 2, version: 3 });
      expect(Date.parse(stats.busiestTopics[0]!.lastUpdate ?? '')).to.not.be.NaN;
      expect(stats['pausedHosts']).to.deep.equal([]);
      expect(stats['deliveryQueueDepth']).to.equal(0);
      expect(stats['deliveriesLingering']).to.equal(0);
      expect(stats['streams']).to.equal(1);
      expect(stats['polledTopics']).to.be.a('number');

      const deliveries = stats.recentDeliveries;
      expect(deliveries.length).to.equal(4);
      for (const d of deliveries) {
        expect(d).to.include.keys('id', 'at', 'kind', 'topic', 'ok', 'protocol', 'detail');
        expect(d.kind).to.equal('delivery');
        expect(d.topic).to.equal(feed);
      }
      const hosts = deliveries.map((d) => d.detail?.split(' ')[0]);
      expect(hosts).to.include(`127.0.0.1:${rc.port}`).and.to.include(`127.0.0.1:${ws.rec.port}`);
      const loop = stats.recentFailures.find((f) => f.kind === 'delivery');
      expect(loop?.detail, 'the redirect loop is reported').to.match(/too_many_redirects/);
      expect(loop?.detail).to.include(`127.0.0.1:${rc.port}`);

      // Nothing of a callback beyond its host, in stats or in the live activity stream.
      await events.waitFor(1, (e) => e.event === 'activity' && e.data.includes('too_many_redirects'));
      for (const [where, body] of [
        ['stats.json', text],
        ['/events', events.raw()],
      ] as const) {
        for (const secret of ['SECRET-KEY-1', 'SECRET-TOKEN-2', 'SECRET-HMAC-3', '/notify', '/cb', 'token=', 'key=']) {
          expect(body, `${where} must not contain ${secret}`).to.not.include(secret);
        }
      }
    });

    it('shows a callback written with backslashes (slashes, to the URL standard) by its host alone', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const ws = await subscriber();
      const events = await stream(`${hub.url}/events`);
      const feed = topics.set('/backslash.xml', { body: rss('a'), contentType: RSS_TYPE });
      // The hub verifies and delivers to /SECRET-PATH-4/cb; the pages must show 127.0.0.1:port.
      await webSubscribe(hub, ws, feed, '\\SECRET-PATH-4\\cb');
      expect(ws.verifications('subscribe', '/SECRET-PATH-4/cb')).to.have.length(1);
      await hub.postForm('/ping', { url: feed });
      await settled(hub);
      await ws.waitDeliveries(1);

      const activity = (await events.waitFor(3, (e) => e.event === 'activity' && /"kind":"(verify|subscribe|delivery)"/.test(e.data))).map(
        (e) => JSON.parse(e.data) as { kind: string; detail?: string },
      );
      const host = `127.0.0.1:${ws.rec.port}`;
      expect(activity.map((a) => [a.kind, a.detail])).to.deep.include.members([
        ['verify', `subscribe ${host}`],
        ['subscribe', host],
      ]);
      const stats = await (await fetch(`${hub.url}/stats.json`)).text();
      for (const [where, body] of [
        ['stats.json', stats],
        ['/events', events.raw()],
      ] as const) {
        expect(body.toLowerCase(), `${where} must not show the callback's path`).to.not.include('secret-path');
      }
    });

    it('/feeds.opml lists the topics with subscribers, and only those', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const ws = await subscriber();
      const followed = topics.set('/followed.xml?a=1&b=2', { body: rss('a'), contentType: RSS_TYPE });
      const lonely = topics.set('/lonely.xml', { body: rss('a'), contentType: RSS_TYPE });
      await webSubscribe(hub, ws, followed, '/cb');
      await hub.postForm('/ping', { url: lonely });

      const res = await fetch(`${hub.url}/feeds.opml`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/x-opml/);
      const opml = await res.text();
      expect(res.headers.get('content-length')).to.equal(String(Buffer.byteLength(opml)));
      expect(opml).to.match(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<opml version="2\.0">/);
      // Sent in parts (see Operator.opml): HEAD tells the same length, with no body.
      const head = await fetch(`${hub.url}/feeds.opml`, { method: 'HEAD' });
      expect([head.status, head.headers.get('content-length'), await head.text()]).to.deep.equal([200, String(Buffer.byteLength(opml)), '']);
      const outlines = opml.match(/<outline [^>]*\/>/g) ?? [];
      expect(outlines).to.have.length(1);
      const escaped = followed.replace(/&/g, '&amp;');
      expect(outlines[0]).to.equal(`<outline type="rss" text="${escaped}" xmlUrl="${escaped}"/>`);
      expect(opml).to.not.include(lonely);
      // The hub has not read the followed topic yet; it is still among the busiest.
      expect((await stats(hub))['busiestTopics']).to.deep.equal([{ url: followed, subscriptions: 1, version: 0, lastUpdate: null }]);
    });

    it('/stats.json loaded many times at once, or again within PAGE_READ_MAX_AGE_MS, reads the store counts once', async () => {
      const hub = await hubWith();
      let reads = 0;
      const counts = hub.store.counts.bind(hub.store);
      hub.store.counts = () => {
        reads++;
        return counts();
      };
      const loads = await Promise.all(Array.from({ length: 20 }, () => stats(hub)));
      expect(loads.every((l) => l.subscriptions === 0)).to.equal(true);
      await stats(hub);
      expect(reads).to.equal(1);
    });

    it('/stats.json loaded many times at once, or again within PAGE_READ_MAX_AGE_MS, reads its busiest topics from the store once', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const sub = await subscriber();
      const feed = topics.set('/busiest.xml', { body: rss('a'), contentType: RSS_TYPE });
      await webSubscribe(hub, sub, feed, '/busiest');
      let reads = 0;
      const getTopic = hub.store.getTopic.bind(hub.store);
      hub.store.getTopic = (url) => {
        if (url === feed) reads++;
        return getTopic(url);
      };
      const loads = await Promise.all(Array.from({ length: 20 }, () => stats(hub)));
      await stats(hub);
      for (const l of loads) expect(l['busiestTopics']).to.deep.equal([{ url: feed, subscriptions: 1, version: 0, lastUpdate: null }]);
      expect(reads).to.equal(1);
    });

    it('/stats.json whose read of a busiest topic failed reads it again at the next load, not the failure kept for PAGE_READ_MAX_AGE_MS', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const sub = await subscriber();
      const feed = topics.set('/busiest-failing.xml', { body: rss('a'), contentType: RSS_TYPE });
      await webSubscribe(hub, sub, feed, '/busiest-failing');
      let failing = true;
      const getTopic = hub.store.getTopic.bind(hub.store);
      hub.store.getTopic = (url) => (failing && url === feed ? Promise.reject(new Error('the store went away')) : getTopic(url));
      const failed = await fetch(`${hub.url}/stats.json`);
      expect(failed.status).to.equal(500);
      failing = false;
      // Within PAGE_READ_MAX_AGE_MS of the first, on the same read of the followed topics.
      expect((await stats(hub))['busiestTopics']).to.deep.equal([{ url: feed, subscriptions: 1, version: 0, lastUpdate: null }]);
    });

    it('/stats.json shows the ten busiest topics as a stable sort of every followed topic would: most first, equals in the order the store gave them', () => {
      // Few distinct counts, so that ties are everywhere, including across the tenth place.
      let seed = 42;
      const random = (below: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % below);
      for (let run = 0; run < 2000; run++) {
        const followed = Array.from({ length: random(40) }, (_, i) => ({ topic: `http://t${i}.example/`, subscriptions: random(run % 2 ? 5 : 1000) }));
        const n = run % 50 === 0 ? random(12) : 10;
        const sorted = [...followed].sort((a, b) => b.subscriptions - a.subscriptions).slice(0, n);
        expect(busiestOf(followed, n), JSON.stringify({ followed, n })).to.deep.equal(sorted);
      }
    });

    it('/healthz answers ok', async () => {
      const hub = await hubWith();
      const res = await fetch(`${hub.url}/healthz`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true });
    });
  });

  describe('/subscription: a subscriber\'s own view', () => {
    const status = (hub: TestHub, topic: string, callback: string, secret?: string): Promise<Response> =>
      fetch(`${hub.url}/subscription?${new URLSearchParams({ topic, callback })}`, secret === undefined ? {} : { headers: { authorization: `Bearer ${secret}` } });

    it('shows the lease, the deliveries and their failures, the versions and a paused host, for the exact topic and callback', async () => {
      const hub = await hubWith({ BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '60000', WEBSUB_MAX_ATTEMPTS: '1' });
      const topics = await topicServer();
      const ws = await subscriber();
      const topic = topics.set('/status.txt', { body: 'state 1\n', contentType: 'text/plain' });
      const before = Date.now();
      const callback = await webSubscribe(hub, ws, topic, '/cb?user=7', { 'hub.lease_seconds': '7200' });
      topics.set('/status.txt', { body: 'state 2\n', contentType: 'text/plain' });
      await publish(hub, topic);
      await ws.waitDeliveries(1);
      await settled(hub);
      ws.deliveryStatuses = [503];
      topics.set('/status.txt', { body: 'state 3\n', contentType: 'text/plain' });
      await publish(hub, topic);
      await ws.waitDeliveries(2);
      await settled(hub);

      const res = await status(hub, topic, callback);
      expect(res.status).to.equal(200);
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ subscribed: true, topic, callback, protocol: 'websub', leaseSeconds: 7200, signed: false, delivered: 1, failed: 1, failedInARow: 1, topicVersion: 2, handledVersion: 2 });
      expect(Date.parse(body['expires'] as string)).to.be.within(before + 7200_000, Date.now() + 7200_000);
      expect(Date.parse(body['lastDelivered'] as string)).to.be.within(before, Date.now());
      expect(Date.parse(body['lastFailed'] as string)).to.be.at.least(Date.parse(body['lastDelivered'] as string));
      expect(Date.parse(body['hostPausedUntil'] as string)).to.be.greaterThan(Date.now() + 30_000);
      expect(body).to.not.have.property('secret');

      // Another callback of the same host, or the same callback without its query: nothing.
      for (const other of [ws.callback('/cb?user=8'), ws.callback('/cb')]) {
        const none = await status(hub, topic, other);
        expect(none.status).to.equal(404);
        expect(await none.json()).to.deep.equal({ subscribed: false, topic, callback: other });
      }
    });

    it('answers for a subscription with a secret only to that secret, as a bearer token; otherwise as if there were none', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const ws = await subscriber();
      const topic = topics.set('/signed.txt', { body: 'state 1\n', contentType: 'text/plain' });
      const callback = await webSubscribe(hub, ws, topic, '/signed', { 'hub.secret': 'the-secret' });
      for (const given of [undefined, 'wrong', 'the-secre', 'the-secret2']) {
        const res = await status(hub, topic, callback, given);
        expect(res.status, String(given)).to.equal(404);
        expect(await res.json()).to.deep.equal({ subscribed: false, topic, callback });
      }
      const res = await status(hub, topic, callback, 'the-secret');
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ subscribed: true, signed: true });
      expect(JSON.stringify(body)).to.not.include('the-secret');
    });

    it('shows an rssCloud subscription too, with its protocol', async () => {
      const hub = await hubWith();
      const feeds = await FeedServer.start();
      cleanup.push(feeds);
      const rec = await Recorder.start(subscriberOk);
      cleanup.push(rec);
      const feed = feeds.fixed('cloud');
      const reply = await pleaseNotify(hub, { port: String(rec.port), path: '/notify', protocol: 'http-post', url1: feed });
      expect(reply.msg).to.equal(MSG.subscribed);
      const callback = `http://127.0.0.1:${rec.port}/notify`;
      const body = (await (await status(hub, feed, callback)).json()) as Record<string, unknown>;
      expect(body).to.include({ subscribed: true, topic: feed, callback, protocol: 'http-post', signed: false, failed: 0 });
    });

    it('refuses a missing or bad URL with 400 and says which', async () => {
      const hub = await hubWith();
      const res = await fetch(`${hub.url}/subscription?topic=${encodeURIComponent('https://blog.example/feed')}&callback=not-a-url`);
      expect(res.status).to.equal(400);
      expect(await res.json()).to.deep.equal({ error: 'callback is not an absolute URL.' });
      const none = await fetch(`${hub.url}/subscription`);
      expect(none.status).to.equal(400);
      expect(await none.json()).to.deep.equal({ error: 'topic is required.' });
    });
  });

  describe('operator actions', () => {
    it('are off (403) when ADMIN_TOKEN is not set, whatever token is sent', async () => {
      const hub = await hubWith();
      for (const [path, body] of [
        ['subscriptions/delete', { topic: 'http://127.0.0.1:1/t', callback: 'http://127.0.0.1:1/cb' }],
        ['hosts/retry', { host: '127.0.0.1:1' }],
      ] as const) {
        for (const token of [undefined, 'anything-at-all-long-enough']) {
          const res = await admin(hub, path, body, token);
          expect(res.status, `${path} with ${token ?? 'no token'}`).to.equal(403);
          expect(await res.text()).to.equal('Operator actions are off: set ADMIN_TOKEN to enable them.\n');
        }
      }
    });

    it('need the right bearer token: 401 without one or with a wrong one', async () => {
      const hub = await hubWith({ ADMIN_TOKEN });
      for (const token of [undefined, 'wrong-token-0123456789', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
        const res = await admin(hub, 'hosts/retry', { host: '127.0.0.1:1' }, token);
        expect(res.status, `token ${token}`).to.equal(401);
        expect(res.headers.get('www-authenticate')).to.equal('Bearer');
        expect(await res.text()).to.equal('A valid Authorization: Bearer token is required.\n');
      }
      const basic = await fetch(`${hub.url}/admin/hosts/retry`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(basic.status).to.equal(401);
      const ok = await admin(hub, 'hosts/retry', { host: '127.0.0.1:1' }, ADMIN_TOKEN);
      expect(ok.status).to.equal(200);
      expect(await ok.json()).to.deep.equal({ ok: true, woken: 0 });
      const bad = await admin(hub, 'subscriptions/delete', { topic: 'not a url' }, ADMIN_TOKEN);
      expect(bad.status).to.equal(400);
    });

    it('drop a subscription: it gets no more deliveries and leaves the OPML', async () => {
      const hub = await hubWith({ ADMIN_TOKEN });
      const topics = await topicServer();
      const ws = await subscriber();
      const topic = topics.set('/dropped.txt', { body: 'state 1\n', contentType: 'text/plain' });
      const callback = await webSubscribe(hub, ws, topic, '/cb?user=1');
      topics.set('/dropped.txt', { body: 'state 2\n', contentType: 'text/plain' });
      await publish(hub, topic);
      await ws.waitDeliveries(1);
      expect(await (await fetch(`${hub.url}/feeds.opml`)).text()).to.include(topic);
      expect((await stats(hub)).subscriptions).to.equal(1);

      // The pages' store reads are shared for a while, but not past the operator's own change.
      const res = await admin(hub, 'subscriptions/delete', { topic, callback }, ADMIN_TOKEN);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true, deleted: true });
      const again = await admin(hub, 'subscriptions/delete', { topic, callback }, ADMIN_TOKEN);
      expect(await again.json()).to.deep.equal({ ok: true, deleted: false });

      topics.set('/dropped.txt', { body: 'state 3\n', contentType: 'text/plain' });
      const pub = await publish(hub, topic);
      expect(pub.status).to.equal(204);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(ws.deliveries()).to.have.length(1);
      expect(await (await fetch(`${hub.url}/feeds.opml`)).text()).to.not.include(topic);
      expect((await stats(hub)).subscriptions).to.equal(0);
    });

    it('retry a paused host now: the delivery waiting on the breaker goes out at once', async () => {
      const hub = await hubWith({
        ADMIN_TOKEN,
        BREAKER_FAILURES: '1',
        BREAKER_COOLDOWN_MS: '60000',
        // The first retry at once, and a retry window (the waits of 19 attempts, ~4 minutes)
        // longer than the cooldown, so the version waits for the host instead of being given up.
        WEBSUB_RETRY_BASE_MS: '1',
        WEBSUB_RETRY_MAX_MS: '120000',
        WEBSUB_MAX_ATTEMPTS: '19',
      });
      const topics = await topicServer();
      const ws = await subscriber();
      const topic = topics.set('/paused.txt', { body: 'state 1\n', contentType: 'text/plain' });
      await webSubscribe(hub, ws, topic, '/cb');
      ws.deliveryStatuses = [500];
      topics.set('/paused.txt', { body: 'state 2\n', contentType: 'text/plain' });
      await publish(hub, topic);
      await ws.waitDeliveries(1);
      const host = `127.0.0.1:${ws.rec.port}`;

      // The retry finds the circuit open and waits for the cooldown (a minute).
      let paused: { host: string; failures: number; until: string }[] = [];
      await until(async () => (paused = (await stats(hub)).pausedHosts).length > 0);
      expect(paused).to.have.length(1);
      expect(paused[0]).to.include({ host, failures: 1 });
      expect(Date.parse(paused[0]!.until) - Date.now()).to.be.greaterThan(30_000);
      const metrics = await scrape(hub);
      expect(metric(metrics, 'pushbutton_paused_hosts')).to.equal(1);
      await sleep(100);
      expect(ws.deliveries()).to.have.length(1);

      // More than a host: read as a URL's authority, each of these woke the paused host (and
      // cleared its breaker) though none names it alone; refused, they wake nothing.
      for (const hostile of [`reader.example@${host}`, `${host}/feeds`, `${host}?x`, `${host}#x`, `${host}\\x`, `127.0.0.1 :${ws.rec.port}`, `[::1`]) {
        const refused = await admin(hub, 'hosts/retry', { host: hostile }, ADMIN_TOKEN);
        expect(refused.status, hostile).to.equal(400);
        expect(await refused.json(), hostile).to.deep.include({ ok: false });
      }
      await sleep(100);
      expect(ws.deliveries()).to.have.length(1);
      expect((await stats(hub)).pausedHosts.map((p) => p.host)).to.deep.equal([host]);

      // Spelt another way, the host as a URL reads it: the same host, which it wakes.
      const res = await admin(hub, 'hosts/retry', { host: `127.000.000.001:${ws.rec.port}` }, ADMIN_TOKEN);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.equal({ ok: true, woken: 1 });
      const [, second] = await ws.waitDeliveries(2, undefined);
      expect(second!.body.toString()).to.equal('state 2\n');
      expect((await stats(hub)).pausedHosts).to.deep.equal([]);
    });
  });

  describe('Server-Sent Events', () => {
    /** A raw client that asks for `topic`'s stream and reads none of it until it is told to. */
    const unreadStream = (hub: TestHub, topic: string): net.Socket => {
      const { hostname, port } = new URL(hub.url);
      const socket = net.connect(Number(port), hostname);
      cleanup.push({ close: () => void socket.destroy() });
      socket.write(`GET /stream?topic=${encodeURIComponent(topic)} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
      return socket;
    };
    const sseClients = async (hub: TestHub): Promise<number> => metric(await scrape(hub), 'pushbutton_sse_clients');

    it('sends heartbeats, the retry hint, and open CORS on /stream and /events', async () => {
      const hub = await hubWith({ SSE_HEARTBEAT_MS: '200' });
      const s = await stream(streamUrl(hub, 'http://127.0.0.1:1/feed.xml'));
      expect(s.headers['content-type']).to.equal('text/event-stream; charset=utf-8');
      expect(s.headers['cache-control']).to.equal('no-cache, no-transform');
      expect(s.headers['access-control-allow-origin']).to.equal('*');
      await s.waitForComments(3, 2000);
      expect(s.retry).to.equal(2000);
      expect(s.comments.every((c) => c.text === '')).to.equal(true);
      const e = await stream(`${hub.url}/events`);
      expect(e.headers['access-control-allow-origin']).to.equal('*');
      await e.waitForComments(1, 1000);
    });

    it('/subscription answers the CORS preflight of a page that sends a signed subscription\'s secret (Authorization)', async () => {
      const hub = await hubWith();
      const query = new URLSearchParams({ topic: 'http://127.0.0.1:1/feed.xml', callback: 'http://127.0.0.1:1/cb' });
      const res = await fetch(`${hub.url}/subscription?${query}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://reader.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      expect(res.status).to.equal(204);
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      expect((res.headers.get('access-control-allow-headers') ?? '').split(/\s*,\s*/).map((h) => h.toLowerCase())).to.include('authorization');
    });

    it('answers the CORS preflight of a stream opened with fetch() and a Last-Event-ID header (fetch-event-source)', async () => {
      const hub = await hubWith();
      for (const path of [`/stream?topic=${encodeURIComponent('http://127.0.0.1:1/feed.xml')}`, '/events']) {
        const res = await fetch(`${hub.url}${path}`, {
          method: 'OPTIONS',
          headers: { origin: 'https://reader.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id' },
        });
        expect(res.status, path).to.equal(204);
        expect(res.headers.get('access-control-allow-origin'), path).to.equal('*');
        expect(res.headers.get('access-control-allow-headers') ?? '', path).to.match(/\blast-event-id\b/i);
      }
    });

    it('refuses /stream without a topic or with a bad one (400)', async () => {
      const hub = await hubWith();
      for (const [url, words] of [
        [`${hub.url}/stream`, 'Give at least one topic: /stream?topic=URL\n'],
        [`${hub.url}/stream?topic=`, 'topic is required.\n'],
        [`${hub.url}/stream?topic=feed.xml`, 'topic is not an absolute URL.\n'],
        [`${hub.url}/stream?topic=${encodeURIComponent('ftp://x.example/f')}`, 'topic must be an http or https URL.\n'],
      ] as const) {
        const res = await openSse(url);
        expect(res.status, url).to.equal(400);
        expect('body' in res && res.body, url).to.equal(words);
      }
    });

    it('refuses a stream of more topics than SSE_MAX_TOPICS_PER_STREAM (400), and opens one of exactly that many', async () => {
      const hub = await hubWith({ SSE_MAX_TOPICS_PER_STREAM: '2' });
      const query = (n: number): string => Array.from({ length: n }, (_, i) => `topic=${encodeURIComponent(`http://127.0.0.1:1/feed-${i}.xml`)}`).join('&');
      const over = await openSse(`${hub.url}/stream?${query(3)}`);
      expect(over.status).to.equal(400);
      expect('body' in over && over.body).to.equal('At most 2 topics per stream.\n');
      const within = await openSse(`${hub.url}/stream?${query(2)}`);
      if ('close' in within) within.close();
      expect(within.status).to.equal(200);
    });

    it('limits streams per client address (SSE_MAX_PER_CLIENT=2): the third gets 429 until one closes', async () => {
      const hub = await hubWith({ SSE_MAX_PER_CLIENT: '2' });
      const url = streamUrl(hub, 'http://127.0.0.1:1/feed.xml');
      const first = await stream(url);
      await stream(`${hub.url}/events`);
      const third = await openSse(url);
      expect(third.status).to.equal(429);
      expect('body' in third && third.body).to.equal('Too many open streams from your address (at most 2).\n');
      first.close();
      let fourth!: Awaited<ReturnType<typeof openSse>>;
      await until(async () => (fourth = await openSse(url)).status !== 429);
      expect(fourth.status).to.equal(200);
      if ('close' in fourth) fourth.close();
      expect(metric(await scrape(hub), 'pushbutton_http_requests_total', { route: '/stream', status: '429' })).to.be.at.least(1);
    });

    // SSE_MAX_PER_CLIENT alone let enough addresses hold streams without end, each a descriptor.
    it('limits streams on the whole hub (SSE_MAX_STREAMS=3), /events included: from a new address the next gets 503 with Retry-After, HEAD too, until one closes', async () => {
      const hub = await hubWith({ SSE_MAX_STREAMS: '3', TRUST_PROXY: '127.0.0.1' });
      const url = streamUrl(hub, 'http://127.0.0.1:1/feed.xml');
      const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address });
      const first = await stream(url, from('198.51.100.1'));
      await stream(url, from('198.51.100.2'));
      await stream(`${hub.url}/events`, from('198.51.100.3'));
      const FULL = 'The hub holds as many streams as it can (3): try again in 30 seconds.\n';
      for (const path of [url, `${hub.url}/events`]) {
        const refused = await openSse(path, from('198.51.100.4'));
        if ('close' in refused) refused.close();
        expect([refused.status, refused.headers['retry-after'], refused.headers['content-type'], 'body' in refused && refused.body], path).to.deep.equal([
          503,
          '30',
          'text/plain; charset=utf-8',
          FULL,
        ]);
        const head = await fetch(path, { method: 'HEAD', headers: from('198.51.100.4') });
        expect([head.status, head.headers.get('retry-after')], `HEAD ${path}`).to.deep.equal([503, '30']);
      }
      first.close();
      let next!: Awaited<ReturnType<typeof openSse>>;
      await until(async () => (next = await openSse(url, from('198.51.100.4'))).status !== 503);
      expect(next.status).to.equal(200);
      if ('close' in next) next.close();
      expect(metric(await scrape(hub), 'pushbutton_http_requests_total', { route: '/stream', status: '503' })).to.be.at.least(1);
    });

    it('counts an IPv6 client\'s streams by its /64, as the rate limits do: another address in it gets 429, another /64 does not', async () => {
      const hub = await hubWith({ SSE_MAX_PER_CLIENT: '2', TRUST_PROXY: '127.0.0.1' });
      const url = streamUrl(hub, 'http://127.0.0.1:1/feed.xml');
      const from = (address: string): Record<string, string> => ({ 'x-forwarded-for': address });
      await stream(url, from('2001:db8:0:1::1'));
      await stream(url, from('2001:db8:0:1::2'));
      const third = await openSse(url, from('2001:db8:0:1::3'));
      if ('close' in third) third.close();
      expect(third.status).to.equal(429);
      const elsewhere = await openSse(url, from('2001:db8:0:2::1'));
      if ('close' in elsewhere) elsewhere.close();
      expect(elsewhere.status).to.equal(200);
    });

    it('carries a change announced by an rssCloud ping as entries JSON', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const feed = topics.set('/ping.xml', { body: rss('a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      const s = await stream(streamUrl(hub, feed));
      topics.set('/ping.xml', { body: rss('b', 'a'), contentType: RSS_TYPE });
      const res = await hub.postForm('/ping', { url: feed });
      expect(res.status).to.equal(200);
      const [event] = await s.waitFor(1, (e) => e.event === 'change');
      expect(event!.id).to.match(/^[0-9a-f]{8}-\d+$/);
      const change = JSON.parse(event!.data) as Change;
      expect(change).to.deep.equal({
        topic: feed,
        version: 2,
        contentType: RSS_TYPE,
        entries: [
          { id: 'https://blog.example/b', title: 'Post b', link: 'https://blog.example/b', published: 'Tue, 07 May 2024 09:30:00 GMT', summary: 'About b.' },
        ],
        body: null,
      });
    });

    it('carries the entries of a feed declared ISO-8859-1 with its Windows quotes and dashes as those characters', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      // Bytes 0x93 and 0x94 are windows-1252's curly quotes, 0x97 its em dash: what the WHATWG Encoding Standard reads ISO-8859-1 as.
      const latin1 = (body: string): Buffer => Buffer.from(body.replace('UTF-8', 'ISO-8859-1').replace('Post b', '\u0093Post\u0094 \u0097 b'), 'latin1');
      const feed = topics.set('/windows.xml', { body: latin1(rss('a')), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      const s = await stream(streamUrl(hub, feed));
      topics.set('/windows.xml', { body: latin1(rss('b', 'a')), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      const [event] = await s.waitFor(1, (e) => e.event === 'change');
      expect((JSON.parse(event!.data) as Change).entries?.map((e) => e.title)).to.deep.equal(['\u201CPost\u201D \u2014 b']);
    });

    it('carries a change announced by a WebSub publish, and only to streams of that topic', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const feed = topics.set('/pub.xml', { body: rss('a'), contentType: RSS_TYPE });
      const other = topics.set('/other.xml', { body: rss('z'), contentType: RSS_TYPE });
      const both = await stream(streamUrl(hub, other, feed));
      const otherOnly = await stream(streamUrl(hub, other));
      const res = await publish(hub, feed);
      expect(res.status).to.equal(204);
      const [event] = await both.waitFor(1, (e) => e.event === 'change');
      const change = JSON.parse(event!.data) as Change;
      expect(change.topic).to.equal(feed);
      expect(change.version).to.equal(1);
      expect(change.entries?.map((e) => e.title)).to.deep.equal(['Post a']);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(otherOnly.events.filter((e) => e.event === 'change')).to.deep.equal([]);
    });

    it('carries a change announced by an authenticated fat ping; an unsigned one reaches nobody', async () => {
      const hub = await hubWith({ PUBLISHER_SECRETS: 'http://fat.example=fat-secret' });
      const topic = 'http://fat.example/feed.atom';
      const s = await stream(streamUrl(hub, topic));
      const atom =
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>Fat</title><id>urn:fat</id>' +
        '<entry><id>urn:fat:1</id><title>Pushed</title><link href="https://fat.example/1"/><updated>2024-05-08T10:00:00Z</updated><summary>Not fetched.</summary></entry></feed>';
      const fatPing = (signature: string): Promise<Response> =>
        fetch(`${hub.url}/websub?hub.mode=publish&hub.topic=${encodeURIComponent(topic)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/atom+xml', 'x-hub-signature': signature },
          body: atom,
        });
      const unsigned = await fatPing('sha256=00');
      expect(unsigned.status).to.equal(403);
      const signed = await fatPing(`sha256=${createHmac('sha256', 'fat-secret').update(atom).digest('hex')}`);
      expect(signed.status, await signed.text()).to.equal(202);
      const events = await s.waitFor(1, (e) => e.event === 'change');
      const change = JSON.parse(events[0]!.data) as Change;
      expect(change).to.deep.include({ topic, version: 1, contentType: 'application/atom+xml', body: null });
      expect(change.entries).to.deep.equal([
        { id: 'urn:fat:1', title: 'Pushed', link: 'https://fat.example/1', published: '2024-05-08T10:00:00Z', summary: 'Not fetched.' },
      ]);
      await settled(hub);
      await sleep(QUIET_MS);
      expect(s.events.filter((e) => e.event === 'change')).to.have.length(1);
    });

    it('sends content that is not a feed as its body text', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const topic = topics.set('/status.txt', { body: 'All systems normal.\n', contentType: 'text/plain; charset=utf-8' });
      const s = await stream(streamUrl(hub, topic));
      await hub.postForm('/ping', { url: topic });
      const [event] = await s.waitFor(1, (e) => e.event === 'change');
      expect(JSON.parse(event!.data)).to.deep.equal({
        topic,
        version: 1,
        contentType: 'text/plain; charset=utf-8',
        entries: null,
        body: 'All systems normal.\n',
      });
    });

    it('sends that text decoded in its own charset: the Content-Type\'s, or for XML its declaration\'s', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const latin1 = topics.set('/menu.txt', { body: Buffer.from('Caf\u00e9 cr\u00e8me\n', 'latin1'), contentType: 'text/plain; charset=iso-8859-1' });
      // Not a feed (its root is no rss, RDF or feed), so it goes as text; its encoding is in its declaration only.
      const xml = topics.set('/status.xml', {
        body: Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?>\n<status>Tout va tr\u00e8s bien</status>\n', 'latin1'),
        contentType: 'application/xml',
      });
      const s = await stream(streamUrl(hub, latin1, xml));
      await hub.postForm('/ping', { url: latin1 });
      await hub.postForm('/ping', { url: xml });
      const events = await s.waitFor(2, (e) => e.event === 'change');
      const bodies = Object.fromEntries(events.map((e) => JSON.parse(e.data) as Change).map((c) => [c.topic, c.body]));
      expect(bodies).to.deep.equal({
        [latin1]: 'Caf\u00e9 cr\u00e8me\n',
        [xml]: '<?xml version="1.0" encoding="ISO-8859-1"?>\n<status>Tout va tr\u00e8s bien</status>\n',
      });
    });

    it(`announces a change over ${STREAM_BODY_MAX} bytes without its entries, then the next small one with them`, async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const long = rss('a').replace('<description>About a.</description>', `<description>${'long '.repeat(STREAM_BODY_MAX / 4)}</description>`);
      const topic = topics.set('/long.xml', { body: long, contentType: RSS_TYPE });
      const s = await stream(streamUrl(hub, topic));
      await hub.postForm('/ping', { url: topic });
      const [big] = await s.waitFor(1, (e) => e.event === 'change');
      expect(JSON.parse(big!.data)).to.deep.equal({ topic, version: 1, contentType: RSS_TYPE, entries: null, body: null });
      topics.set('/long.xml', { body: long.replace('<item>', `${rss('b').match(/<item>.*?<\/item>/)![0]}\n<item>`), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: topic });
      const events = await s.waitFor(2, (e) => e.event === 'change');
      const small = JSON.parse(events[1]!.data) as Change;
      expect(small.version).to.equal(2);
      expect(small.entries?.map((e) => e.title)).to.deep.equal(['Post b']);
    });

    it('resumes from a Last-Event-ID header without losing or repeating a change', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const feed = topics.set('/resume.xml', { body: rss('a'), contentType: RSS_TYPE });
      const first = await stream(streamUrl(hub, feed));
      await hub.postForm('/ping', { url: feed });
      const [a] = await first.waitFor(1, (e) => e.event === 'change');
      first.close();
      await first.ended;

      for (const slug of ['b', 'c']) {
        topics.set('/resume.xml', { body: rss(slug, 'a'), contentType: RSS_TYPE });
        expect((await hub.postForm('/ping', { url: feed })).status).to.equal(200);
      }
      const again = await stream(streamUrl(hub, feed), { 'last-event-id': a!.id! });
      const missed = await again.waitFor(2, (e) => e.event === 'change');
      expect(missed.map((e) => (JSON.parse(e.data) as Change).entries?.map((x) => x.title))).to.deep.equal([['Post b'], ['Post c']]);
      expect(missed.map((e) => (JSON.parse(e.data) as Change).version)).to.deep.equal([2, 3]);
      // Ids go on increasing from the one resumed after.
      const seq = (id: string | undefined): number => Number(id?.split('-')[1]);
      expect(seq(missed[0]!.id)).to.be.greaterThan(seq(a!.id));
      expect(seq(missed[1]!.id)).to.be.greaterThan(seq(missed[0]!.id));

      // And live events follow the replayed ones on the same stream.
      topics.set('/resume.xml', { body: rss('d', 'c', 'a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      const all = await again.waitFor(3, (e) => e.event === 'change');
      expect((JSON.parse(all[2]!.data) as Change).version).to.equal(4);
      expect(again.events.filter((e) => e.event === 'reset')).to.deep.equal([]);
    });

    it('cuts a stream whose client stops reading once it is a backlog behind (SSE_BACKLOG=20), past SSE_MAX_BUFFERED_BYTES unread; a stream that reads gets every event', async function () {
      this.timeout(60_000);
      const hub = await hubWith({ SSE_MAX_BUFFERED_BYTES: '65536', SSE_BACKLOG: '20' });
      const topics = await topicServer();
      let n = 0;
      // Bodies under the 64 KB a change event carries whole, so each event is ~60 KB.
      const next = (): string => `change ${++n}\n${'x'.repeat(60_000)}\n`;
      const topic = topics.set('/big.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
      const reader = await stream(streamUrl(hub, topic));
      // A client that asks for the stream and then never reads: the kernel's buffers fill first
      // (megabytes on loopback), then the hub's.
      unreadStream(hub, topic);
      const clients = (): Promise<number> => sseClients(hub);
      await until(async () => (await clients()) >= 2);
      expect(await clients(), 'both streams open').to.equal(2);
      let pings = 0;
      while (pings < 1000 && (pings % 10 !== 0 || (await clients()) > 1)) {
        topics.set('/big.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
        expect((await hub.postForm('/ping', { url: topic })).status).to.equal(200);
        pings++;
      }
      expect(await clients(), `the stalled stream is cut (after ${pings} changes)`).to.equal(1);
      const changes = await reader.waitFor(pings, (e) => e.event === 'change', 20_000).catch(() => reader.events.filter((e) => e.event === 'change'));
      expect(changes.map((e) => (JSON.parse(e.data) as Change).version)).to.deep.equal(Array.from({ length: pings }, (_, i) => i + 1));
    });

    it('holds the events a slow client has not room for and sends them, in order and all, once it reads again', async function () {
      this.timeout(60_000);
      const hub = await hubWith({ SSE_MAX_BUFFERED_BYTES: '65536' });
      const topics = await topicServer();
      let n = 0;
      const next = (): string => `change ${++n}\n${'z'.repeat(60_000)}\n`;
      const topic = topics.set('/slow.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
      const slow = unreadStream(hub, topic);
      const clients = (): Promise<number> => sseClients(hub);
      await until(async () => (await clients()) >= 1);
      // ~7 MB while it does not read: more than the kernel's buffers and the hub's bound.
      const CHANGES = 120;
      for (let i = 0; i < CHANGES; i++) {
        if (i > 0) topics.set('/slow.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
        expect((await hub.postForm('/ping', { url: topic })).status).to.equal(200);
      }
      expect(await clients(), 'not cut: it is within the backlog').to.equal(1);
      let text = '';
      const versions = (): number[] => [...text.matchAll(/^data: \{"topic":"[^"]*","version":(\d+)/gm)].map((m) => Number(m[1]));
      slow.setEncoding('latin1');
      slow.on('data', (chunk: string) => (text += chunk));
      for (let i = 0; i < 500 && versions().length < CHANGES; i++) await sleep(20);
      expect(versions()).to.deep.equal(Array.from({ length: CHANGES }, (_, i) => i + 1));
    });

    it('sends a reconnect all it missed, in order, though that is more than SSE_MAX_BUFFERED_BYTES: the rest waits until the client reads', async () => {
      const hub = await hubWith({ SSE_MAX_BUFFERED_BYTES: '65536' });
      const topics = await topicServer();
      let n = 0;
      const next = (): string => `change ${++n}\n${'y'.repeat(30_000)}\n`;
      const topic = topics.set('/replay.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
      const first = await stream(streamUrl(hub, topic));
      await hub.postForm('/ping', { url: topic });
      const [one] = await first.waitFor(1, (e) => e.event === 'change');
      for (let i = 0; i < 3; i++) {
        topics.set('/replay.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
        await hub.postForm('/ping', { url: topic });
      }
      await first.waitFor(4, (e) => e.event === 'change');
      // Three missed, ~90 KB.
      const far = await stream(streamUrl(hub, topic), { 'last-event-id': one!.id! });
      const missed = await far.waitFor(3, (e) => e.event === 'change');
      expect(missed.map((e) => (JSON.parse(e.data) as Change).version)).to.deep.equal([2, 3, 4]);
      // And live events after them.
      topics.set('/replay.txt', { body: next(), contentType: 'text/plain; charset=utf-8' });
      await hub.postForm('/ping', { url: topic });
      const all = await far.waitFor(4, (e) => e.event === 'change');
      expect((JSON.parse(all[3]!.data) as Change).version).to.equal(5);
      expect(far.events.filter((e) => e.event === 'reset')).to.deep.equal([]);
    });

    it('resets a stream it cannot resume, with an id the next reconnect resumes from', async () => {
      const hub = await hubWith({ SSE_BACKLOG: '3' });
      const topics = await topicServer();
      const feed = topics.set('/reset.xml', { body: rss('a'), contentType: RSS_TYPE });

      // An id from another boot.
      const foreign = await stream(streamUrl(hub, feed), { 'last-event-id': '00000000-5' });
      const [reset] = await foreign.waitFor(1, (e) => e.event === 'reset');
      expect(JSON.parse(reset!.data)).to.deep.equal({ reason: 'cannot resume from that event id' });
      expect(reset!.id).to.match(/^[0-9a-f]{8}-\d+$/);
      expect(foreign.lastEventId()).to.equal(reset!.id);
      foreign.close();
      const resumed = await stream(streamUrl(hub, feed), { 'last-event-id': reset!.id! });
      await hub.postForm('/ping', { url: feed });
      const [change] = await resumed.waitFor(1, (e) => e.event === 'change');
      expect(resumed.events.map((e) => e.event), 'no second reset for the id the reset gave').to.deep.equal(['ready', 'change']);

      // An id older than the backlog (3 events; each ping makes several, activity included).
      resumed.close();
      for (const slug of ['b', 'c']) {
        topics.set('/reset.xml', { body: rss(slug, 'a'), contentType: RSS_TYPE });
        await hub.postForm('/ping', { url: feed });
      }
      const stale = await stream(streamUrl(hub, feed), { 'last-event-id': change!.id! });
      await stale.waitFor(1, (e) => e.event === 'reset');
    });

    it('gives a stream the current id before any event, so one that drops on a quiet topic resumes the change it missed', async () => {
      const hub = await hubWith();
      const topics = await topicServer();
      const feed = topics.set('/quiet.xml', { body: rss('a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      const first = await stream(streamUrl(hub, feed));
      await until(() => first.lastEventId() !== undefined);
      const id = first.lastEventId();
      expect(id, 'an id with no event').to.match(/^[0-9a-f]{8}-\d+$/);
      expect(first.events.map((e) => [e.event, e.id, e.data]), 'no change, only the id').to.deep.equal([['ready', id, '{}']]);
      first.close();
      await first.ended;

      topics.set('/quiet.xml', { body: rss('b', 'a'), contentType: RSS_TYPE });
      expect((await hub.postForm('/ping', { url: feed })).status).to.equal(200);
      const again = await stream(streamUrl(hub, feed), { 'last-event-id': id! });
      const [missed] = await again.waitFor(1);
      expect(missed!.event).to.equal('change');
      expect((JSON.parse(missed!.data) as Change).entries?.map((e) => e.title)).to.deep.equal(['Post b']);
    });

    it("resets a stream only for what its own topics lost from the backlog, however much else went through it (SSE_BACKLOG=20)", async () => {
      const hub = await hubWith({ SSE_BACKLOG: '20' });
      const topics = await topicServer();
      const feed = topics.set('/mine.xml', { body: rss('a'), contentType: RSS_TYPE });
      let n = 0;
      const pingOther = async (): Promise<void> => {
        const other = topics.set('/busy.txt', { body: `change ${++n}\n`, contentType: 'text/plain; charset=utf-8' });
        expect((await hub.postForm('/ping', { url: other })).status).to.equal(200);
      };
      const first = await stream(streamUrl(hub, feed));
      await hub.postForm('/ping', { url: feed });
      await first.waitFor(1, (e) => e.event === 'change');
      first.close();
      await first.ended;

      // More than a backlog of events of another topic: the stream's own missed nothing.
      for (let i = 0; i < 30; i++) await pingOther();
      const resumed = await stream(streamUrl(hub, feed), { 'last-event-id': first.lastEventId()! });
      topics.set('/mine.xml', { body: rss('b', 'a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      await resumed.waitFor(1, (e) => e.event === 'change');
      expect(resumed.events.map((e) => e.event), 'a live change, no reset before it').to.deep.equal(['ready', 'change']);
      resumed.close();
      await resumed.ended;

      // A change of its own topic that fell out of the backlog while it was away.
      topics.set('/mine.xml', { body: rss('c', 'b', 'a'), contentType: RSS_TYPE });
      await hub.postForm('/ping', { url: feed });
      for (let i = 0; i < 30; i++) await pingOther();
      const late = await stream(streamUrl(hub, feed), { 'last-event-id': resumed.lastEventId()! });
      const [reset] = await late.waitFor(1);
      expect(reset!.event).to.equal('reset');
    });

    /** Sends `request` on a new connection and resolves with all the hub sends until it closes it. */
    const exchange = (hub: TestHub, request: string, timeoutMs = 3000): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(hub.port, '127.0.0.1');
        cleanup.push({ close: () => void socket.destroy() });
        let raw = '';
        const timer = setTimeout(() => reject(new Error(`the hub did not close the connection; it sent ${JSON.stringify(raw)}`)), timeoutMs);
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => (raw += d));
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(raw);
        });
        socket.write(request);
      });

    it('answers HEAD /stream and /events with the headers alone, taking no stream slot (of its address or of SSE_MAX_STREAMS), and goes on to the next request on the connection', async () => {
      const hub = await hubWith({ SSE_MAX_PER_CLIENT: '1', SSE_MAX_STREAMS: '1' });
      const host = `Host: 127.0.0.1:${hub.port}\r\n`;
      for (const path of [`/stream?topic=${encodeURIComponent('http://127.0.0.1:1/feed.xml')}`, '/events']) {
        const raw = await exchange(hub, `HEAD ${path} HTTP/1.1\r\n${host}\r\nGET /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
        const [head, next] = raw.split(/(?=HTTP\/1\.1 )/);
        expect(head, path).to.match(/^HTTP\/1\.1 200 OK\r\n/);
        expect(head, path).to.match(/\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i);
        expect(head, path).to.match(/\r\n\r\n$/);
        expect(next, path).to.match(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\{"ok":true\}$/);
      }
      // The one stream this address, and the hub, may hold is still free.
      const s = await openSse(`${hub.url}/events`);
      if ('close' in s) s.close();
      expect(s.status).to.equal(200);
    });

    it('ends each stream after its bye when the hub closes: the chunked body is terminated, not cut', async () => {
      const hub = await hubWith();
      const raw = exchange(hub, `GET /stream?topic=${encodeURIComponent('http://127.0.0.1:1/feed.xml')} HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\n\r\n`, 15_000);
      await until(async () => (await sseClients(hub)) >= 1);
      await hub.close();
      const text = await raw;
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      // Chunks: size in hex, CRLF, data, CRLF; the last one has size 0.
      const chunks: string[] = [];
      let rest = body;
      for (let m; (m = /^([0-9a-f]+)\r\n/i.exec(rest)); ) {
        const size = parseInt(m[1]!, 16);
        chunks.push(rest.slice(m[0].length, m[0].length + size));
        rest = rest.slice(m[0].length + size + 2);
        if (size === 0) break;
      }
      expect(chunks.at(-1), `the last chunk, in ${JSON.stringify(body)}`).to.equal('');
      expect(rest, 'nothing after the last chunk').to.equal('');
      expect(chunks.join('')).to.match(/event: bye\ndata: \{\}\n\n$/);
    });

    it('counts a stream in pushbutton_http_requests_total once its client closes it', async () => {
      const hub = await hubWith();
      const counted = async (route: string): Promise<number> => metric(await scrape(hub), 'pushbutton_http_requests_total', { route, status: '200' });
      const s = await stream(streamUrl(hub, 'http://127.0.0.1:1/feed.xml'));
      const e = await stream(`${hub.url}/events`);
      expect(await counted('/stream'), 'not while open').to.equal(0);
      s.close();
      e.close();
      await until(async () => (await counted('/stream')) >= 1 && (await counted('/events')) >= 1);
      expect(await counted('/stream')).to.equal(1);
      expect(await counted('/events')).to.equal(1);
    });
  });
});
