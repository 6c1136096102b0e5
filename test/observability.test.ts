// What the hub tells its operator, over real HTTP: log lines name a subscriber by its callback's
// host (never the callback URL, whose query often holds the subscriber's token, nor a challenge),
// every request is logged and counted under the path it was sent to, and /metrics is exposition
// text a Prometheus scrape accepts, with label values from a fixed set whatever strangers send.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { createLogger } from '../lib/log.js';
import { Recorder, freePort } from './helpers/recorder.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { FeedServer } from './helpers/rsscloud.js';

const ADMIN_TOKEN = 'observability-admin-token-0123';
type Line = Record<string, unknown>;

describe('what the hub tells its operator', function () {
  this.timeout(20_000);
  let hub: TestHub;
  let feeds: FeedServer;
  let sub: Recorder;
  const lines: string[] = [];
  const parsed = (): Line[] => lines.map((l) => JSON.parse(l) as Line);

  before(async () => {
    feeds = await FeedServer.start();
    sub = await Recorder.start((req, res) => {
      // A callback that redirects to itself, query (token, challenge) and all.
      if (req.path === '/loop') return void res.writeHead(302, { location: req.url }).end();
      if (req.path === '/refuse') return void res.writeHead(404).end('no');
      const challenge = req.query.get('hub.challenge') ?? req.query.get('challenge');
      res.writeHead(200).end(challenge ?? 'ok');
    });
    hub = await startTestHub({ ADMIN_TOKEN, WEBSUB_VERIFY_ATTEMPTS: '1' }, undefined, { log: createLogger('debug', (l) => lines.push(l)) });
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
    await sub?.close();
  });

  describe('subscribers whose callbacks carry a token in their query', () => {
    let topic: string;
    const tokens = ['token-verified', 'token-refused', 'token-redirected', 'token-challenged', 'token-notified'];
    before(async () => {
      topic = feeds.changing('observed');
      const websub = (path: string): Promise<Response> =>
        hub.postForm('/websub', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${sub.url}${path}`, 'hub.secret': 'websub-secret-observed' });
      expect((await websub('/ok?token=token-verified')).status).to.equal(202);
      expect((await websub('/refuse?token=token-refused')).status).to.equal(202);
      expect((await websub('/loop?token=token-redirected')).status).to.equal(202);
      // rssCloud with a domain: a challenge GET that follows redirects, here round a loop.
      await hub.postForm('/pleaseNotify', { domain: '127.0.0.1', port: String(sub.port), path: '/loop?token=token-challenged', protocol: 'http-post', url1: topic });
      // Without one: a test notification, which follows redirects too.
      await hub.postForm('/pleaseNotify', { port: String(sub.port), path: '/loop?token=token-notified', protocol: 'http-post', url1: topic });
      await hub.hub.idle();
    });

    it('no log line carries a token from a callback URL or a challenge: a redirect loop is named by its host', () => {
      const challenges = sub.requests.map((r) => r.query.get('hub.challenge') ?? r.query.get('challenge')).filter((c): c is string => c !== null);
      expect(challenges.length, 'challenges were sent').to.be.at.least(3);
      for (const t of tokens) expect(sub.requests.some((r) => r.url.includes(t)), `${t} reached the subscriber`).to.equal(true);
      for (const line of lines) for (const s of [...tokens, ...challenges, 'websub-secret-observed']) expect(line).to.not.include(s);
      const loops = parsed().filter((e) => typeof e.error === 'string' && e.error.startsWith('too_many_redirects'));
      expect(loops.map((e) => e.error)).to.include(`too_many_redirects: more than 5 redirects from 127.0.0.1:${sub.port}`);
    });

    it('each verification and handler test says which callback host, for which topic, and why', () => {
      const host = `127.0.0.1:${sub.port}`;
      const entries = parsed();
      const one = (msg: string): Line => {
        const found = entries.filter((e) => e.msg === msg);
        expect(found, `${msg} in:\n${lines.join('')}`).to.not.be.empty;
        return found[0]!;
      };
      expect(one('websub: subscribed')).to.include({ topic, host });
      expect(one('WebSub verification refused')).to.include({ topic, host, status: 404 });
      expect(entries.filter((e) => e.msg === 'WebSub verification refused').map((e) => e.status)).to.include(302);
      expect(one('rssCloud verification failed')).to.include({ topic, host });
      expect(one('pleaseNotify: handler test failed')).to.include({ topic, host });
    });
  });

  it('logs and counts a request answered inside a router mounted at a path under the path it was sent to', async () => {
    const from = lines.length;
    const before = await scrape(hub);
    const wrongToken = await fetch(`${hub.url}/admin/hosts/retry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-the-token' },
      body: '{}',
    });
    expect(wrongToken.status).to.equal(401);
    const badBody = await hub.postForm('/pleaseNotify', { url1: 'x' }, { 'content-encoding': 'gzip' });
    expect(badBody.status).to.equal(400);
    const tooLarge = await fetch(`${hub.url}/RPC2`, { method: 'POST', headers: { 'content-type': 'text/xml', 'content-encoding': 'gzip' }, body: gzipSync('<'.repeat(2_000_000)) });
    expect(tooLarge.status).to.equal(413);

    const requests = lines.slice(from).map((l) => JSON.parse(l) as Line).filter((e) => e.msg === 'request');
    expect(requests.map((e) => [e.path, e.status])).to.deep.include.members([
      ['/admin/hosts/retry', 401],
      ['/pleaseNotify', 400],
      ['/RPC2', 413],
    ]);
    const after = await scrape(hub);
    const delta = (route: string, status: string): number => (after.get(series(route, status)) ?? 0) - (before.get(series(route, status)) ?? 0);
    expect(delta('/admin', '401')).to.equal(1);
    expect(delta('/pleaseNotify', '400')).to.equal(1);
    expect(delta('/RPC2', '413')).to.equal(1);
    expect(delta('other', '401') + delta('/', '400') + delta('/', '413')).to.equal(0);
  });

  it('serves /metrics as valid exposition text whose labels stay a fixed set, whatever strangers send', async () => {
    // Paths, topics and callbacks of strangers' choosing, with characters a label value must escape.
    const odd = ['/"quoted"', '/back\\slash', '/new%0Aline', `/x${'y'.repeat(500)}`, '/%ZZ', '/admin/../x'];
    for (let i = 0; i < 20; i++) await fetch(`${hub.url}/stranger-${i}${odd[i % odd.length]}`);
    for (const u of ['http://a.example/"q"\\', 'http://b.example/\nx', 'not a url']) {
      await hub.postForm('/ping', { url: u });
      await hub.postForm('/websub', { 'hub.mode': 'subscribe', 'hub.topic': u, 'hub.callback': `${sub.url}/"cb"?t=\\` });
      await fetch(`${hub.url}/stream?topic=${encodeURIComponent(u)}`);
    }
    const res = await fetch(`${hub.url}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const families = parseExposition(await res.text());
    const requests = families.get('pushbutton_http_requests_total');
    expect(requests?.type).to.equal('counter');
    const routes = new Set(requests!.samples.map((s) => s.labels.route));
    const allowed = ['/pleaseNotify', '/ping', '/rsscloud/pleaseNotify', '/rsscloud/ping', '/RPC2', '/websub', '/stream', '/events', '/stats.json', '/feeds.opml', '/subscription', '/metrics', '/healthz', '/test', '/admin', '/', 'other'];
    expect([...routes].filter((r) => !allowed.includes(r!))).to.deep.equal([]);
    for (const s of requests!.samples) expect(s.labels.status).to.match(/^[1-5]\d\d$/);
    for (const name of ['pushbutton_deliveries_total', 'pushbutton_delivery_latency_seconds', 'pushbutton_subscriptions', 'pushbutton_store_up', 'process_cpu_seconds_total']) {
      expect(families.has(name), name).to.equal(true);
    }
  });

  it('names its metrics as `promtool check metrics` asks, but for the three of prom-client that dashboards know', async () => {
    // A delivery, so the latency histogram has buckets to check.
    const topic = feeds.changing('linted');
    await hub.postForm('/pleaseNotify', { domain: '127.0.0.1', port: String(sub.port), path: '/linted', protocol: 'http-post', url1: topic });
    await hub.postForm('/ping', { url: topic });
    await hub.hub.idle();
    const families = parseExposition(await (await fetch(`${hub.url}/metrics`)).text());
    // promtool (client_golang's promlint) rules, as `promtool check metrics` reports them:
    // exit status 3 for any. prom-client's own gauges named *_total are reported by it too;
    // renaming them would break the Node.js dashboards made for their names (README: process_*,
    // nodejs_*), so they are the known exceptions, and no metric of the hub's may join them.
    const promClientGaugesNamedTotal = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
    const faults: string[] = [];
    for (const [name, f] of families) {
      if (f.type === 'counter' && !name.endsWith('_total')) faults.push(`${name}: counter metrics should have "_total" suffix`);
      if (f.type !== 'counter' && name.endsWith('_total') && !promClientGaugesNamedTotal.includes(name)) faults.push(`${name}: non-counter metrics should not have "_total" suffix`);
      if (/_(count|sum|bucket)$/.test(name) && f.type !== 'counter') faults.push(`${name}: reserved suffix`);
      if (/[A-Z]/.test(name) || f.samples.some((s) => Object.keys(s.labels).some((l) => /[A-Z]/.test(l)))) faults.push(`${name}: not snake_case`);
      if (name.includes(':')) faults.push(`${name}: colons are for recording rules`);
      if (/(^|_)(counter|gauge|histogram|summary)(_|$)/.test(name)) faults.push(`${name}: metric type in the name`);
      if (/(^|_)(milliseconds|microseconds|nanoseconds|minutes|hours|days|kilobytes|megabytes|gigabytes|ms|us|ns|sec|secs|kb|mb|gb|percent)(_|$)/.test(name)) faults.push(`${name}: not a base unit`);
      if (f.type !== 'histogram') continue;
      // Per series: buckets by ascending le, cumulative, the last +Inf and equal to _count.
      const bySeries = new Map<string, { le: number; value: number }[]>();
      const counts = new Map<string, number>();
      for (const s of f.samples) {
        const { le, ...rest } = s.labels;
        const key = JSON.stringify(Object.entries(rest).sort());
        if (s.name === `${name}_bucket`) bySeries.set(key, [...(bySeries.get(key) ?? []), { le: le === '+Inf' ? Infinity : Number(le), value: s.value }]);
        if (s.name === `${name}_count`) counts.set(key, s.value);
      }
      // Node's GC histogram may have none yet; the hub's has this test's delivery.
      if (name.startsWith('pushbutton_')) expect(bySeries.size, `${name} has samples`).to.be.above(0);
      for (const [key, buckets] of bySeries) {
        const ordered = buckets.every((b, i) => i === 0 || (b.le > buckets[i - 1]!.le && b.value >= buckets[i - 1]!.value));
        if (!ordered || buckets.at(-1)?.le !== Infinity || buckets.at(-1)?.value !== counts.get(key)) faults.push(`${name}${key}: buckets`);
      }
    }
    expect(faults).to.deep.equal([]);
    // The exceptions are still served (were prom-client to rename them, this list would shrink).
    for (const name of promClientGaugesNamedTotal) expect(families.get(name)?.type, name).to.equal('gauge');
  });
});

const series = (route: string, status: string): string => `pushbutton_http_requests_total{route="${route}",status="${status}"}`;

/** Prometheus text → `name{label="v",…}` as served → value. */
async function scrape(hub: TestHub): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [name, family] of parseExposition(await (await fetch(`${hub.url}/metrics`)).text())) {
    if (name !== 'pushbutton_http_requests_total') continue;
    for (const s of family.samples) out.set(series(s.labels.route ?? '', s.labels.status ?? ''), s.value);
  }
  return out;
}

interface Family {
  help: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * The text format (version 0.0.4) read as strictly as a Prometheus scrape reads it: every sample
 * after its family's one HELP and one TYPE line, valid names, label values with only the three
 * escapes, no series twice, values that are floats. Throws on the first fault.
 */
function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n'), 'ends with a newline').to.equal(true);
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const familyOf = (sample: string): Family | undefined => {
    for (const suffix of ['', '_bucket', '_sum', '_count']) {
      if (!sample.endsWith(suffix)) continue;
      const f = families.get(sample.slice(0, sample.length - suffix.length));
      if (f && (suffix === '' || f.type === 'histogram' || f.type === 'summary')) return f;
    }
    return undefined;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    // Blank lines are allowed between families (prom-client writes one after each).
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      expect(name, line).to.match(NAME);
      const f = families.get(name) ?? { help: '', type: '', samples: [] };
      families.set(name, f);
      if (kind === 'HELP') {
        expect(f.help, `second HELP: ${line}`).to.equal('');
        expect(rest, `HELP escapes: ${line}`).to.not.match(/\\[^\\n]/);
        f.help = rest;
      } else {
        expect(f.type, `second TYPE: ${line}`).to.equal('');
        expect(f.samples, `TYPE after samples: ${line}`).to.deep.equal([]);
        expect(TYPES.has(rest), line).to.equal(true);
        f.type = rest;
      }
      continue;
    }
    expect(line.startsWith('#'), `unknown comment: ${line}`).to.equal(false);
    const m = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    expect(m, `sample line: ${line}`).to.not.equal(null);
    const [, name, labelText = '', value] = m as unknown as [string, string, string | undefined, string];
    expect(name, line).to.match(NAME);
    const family = familyOf(name);
    expect(family, `no HELP/TYPE before ${line}`).to.not.equal(undefined);
    expect(family!.help, `HELP for ${line}`).to.not.equal('');
    const labels: Record<string, string> = {};
    let rest = labelText;
    while (rest !== '') {
      const l = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      expect(l, `labels of ${line}`).to.not.equal(null);
      const [whole, label, raw] = l as unknown as [string, string, string];
      expect(label, line).to.match(LABEL);
      expect(labels, `label twice: ${line}`).to.not.have.property(label);
      labels[label] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(whole.length);
    }
    expect(value, line).to.match(/^(?:[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)|[+-]Inf|NaN)$/i);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    expect(seen.has(key), `series twice: ${line}`).to.equal(false);
    seen.add(key);
    family!.samples.push({ name, labels, value: Number(value.replace(/^\+/, '')) });
  }
  for (const [name, f] of families) expect(f.type, `TYPE of ${name}`).to.not.equal('');
  return families;
}

describe('a hub whose database cannot be opened', () => {
  it('names the database in its error without any password, the one in ?password= too', async () => {
    const port = await freePort('127.0.0.1');
    const url = `postgresql://pushbutton:userinfo-secret@127.0.0.1:${port}/hub?password=query-secret&sslpassword=key-secret&application_name=observed`;
    const dir = await tempDataDir();
    try {
      const message = await startTestHub({ DATABASE_URL: url, POLL_ENABLED: 'false' }, dir).then(
        async (h) => {
          await h.destroy();
          return 'started';
        },
        (e: Error) => e.message,
      );
      expect(message).to.include(`PostgreSQL (DATABASE_URL postgresql://pushbutton:***@127.0.0.1:${port}/hub?`);
      expect(message).to.include('application_name=observed');
      for (const secret of ['userinfo-secret', 'query-secret', 'key-secret']) expect(message).to.not.include(secret);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an XML-RPC subscriber that faults with 60 KB of words', function () {
  this.timeout(20_000);
  it('has each failure logged with the first 200 characters of them', async () => {
    const lines: string[] = [];
    const feeds = await FeedServer.start();
    const words = `${'why '.repeat(15_000)}end`;
    let calls = 0;
    const sub = await Recorder.start((_req, res) => {
      // The handler test is answered true; the deliveries after it, a fault.
      const reply =
        ++calls === 1
          ? '<methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>'
          : `<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>7</int></value></member><member><name>faultString</name><value><string>${words}</string></value></member></struct></value></fault></methodResponse>`;
      res.writeHead(200, { 'content-type': 'text/xml' }).end(reply);
    });
    const hub = await startTestHub({}, undefined, { log: createLogger('info', (l) => lines.push(l)) });
    try {
      const topic = feeds.changing('faulted');
      await hub.postForm('/pleaseNotify', { port: String(sub.port), path: '/RPC2', protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', url1: topic });
      expect((await hub.postForm('/ping', { url: topic })).status).to.equal(200);
      await hub.hub.idle();
      expect(calls, 'the handler test and a delivery reached the subscriber').to.equal(2);
      const failed = lines.map((l) => JSON.parse(l) as Line).filter((e) => e.msg === 'delivery' && e.ok === false);
      expect(failed.map((e) => e.error)).to.deep.equal([`fault 7: ${words.slice(0, 200)}…`]);
      for (const l of lines) expect(l.length).to.be.below(2000);
    } finally {
      await hub.destroy();
      await feeds.close();
      await sub.close();
    }
  });
});

describe('a request the hub fails on its own side', function () {
  this.timeout(20_000);
  it('is logged as an error with its path and the cause, and answered without either', async () => {
    const lines: string[] = [];
    const feeds = await FeedServer.start();
    const sub = await Recorder.start();
    const hub = await startTestHub({}, undefined, { log: createLogger('info', (l) => lines.push(l)) });
    try {
      const getSubscription = hub.store.getSubscription.bind(hub.store);
      hub.store.getSubscription = () => Promise.reject(new Error('the store is on fire'));
      const res = await hub.postForm('/pleaseNotify', { port: String(sub.port), path: '/cb', protocol: 'http-post', url1: feeds.changing('failing') });
      hub.store.getSubscription = getSubscription;
      const body = await res.text();
      expect(res.status).to.equal(500);
      expect(body).to.include('problem on its side').and.not.include('on fire');
      expect(body).to.not.match(/\.ts:\d+|at /);
      const failed = lines.map((l) => JSON.parse(l) as Line).filter((e) => e.level === 'error');
      expect(failed.map((e) => [e.msg, e.path, e.error])).to.deep.equal([['request failed', '/pleaseNotify', 'the store is on fire']]);
    } finally {
      await hub.destroy();
      await feeds.close();
      await sub.close();
    }
  });
});
