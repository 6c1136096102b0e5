// rssCloud over time: leases running out, subscribers failing, the cleanup job, the test API the
// community's e2e suite drives, and surviving a kill -9.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import type { CleanupReport } from '../lib/hub.js';
import { newTopic, type Site } from '../lib/model.js';
import { Recorder, freePort, loopbackAddress, sleep } from './helpers/recorder.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import {
  FeedServer,
  MSG,
  getSubscriptions,
  iso,
  notificationsAt,
  notifyBody,
  ping,
  pleaseNotify,
  postForm,
  readReply,
  setSubscriptions,
  status,
  subscribeForm,
  subscriberOk,
  testApi,
  type ResourceJson,
  type SubscriptionJson,
} from './helpers/rsscloud.js';
import { until } from './helpers/until.js';

let seq = 0;
const unique = (prefix: string): string => `${prefix}-${++seq}`;
const DAY = 86400_000;

describe('rssCloud lifecycle', function () {
  let feeds: FeedServer;
  let sub: Recorder;
  before(async () => {
    feeds = await FeedServer.start();
    sub = await Recorder.start(subscriberOk);
  });
  after(async () => {
    await feeds?.close();
    await sub?.close();
  });
  beforeEach(() => {
    sub.reset();
    sub.handler = subscriberOk;
    feeds.rec.reset();
  });

  const callbackOf = (path: string): string => `http://127.0.0.1:${sub.port}${path}`;

  describe('the test API', () => {
    let hub: TestHub;
    before(async () => {
      hub = await startTestHub();
    });
    after(async () => {
      await hub?.destroy();
    });
    beforeEach(async () => {
      await testApi(hub, 'clear');
    });

    it('clear drops every resource and subscription', async () => {
      const feed = feeds.changing(unique('clear'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/c', feed))).success).to.equal(true);
      expect(Object.keys((await testApi<{ data: object }>(hub, 'getData')).json.data)).to.have.length(1);
      expect(await testApi(hub, 'clear')).to.deep.equal({ status: 200, json: { success: true } });
      expect((await testApi(hub, 'getData')).json).to.deep.equal({ success: true, data: {} });
    });

    it('getResource of an unknown feed: found false, resource null', async () => {
      expect((await testApi(hub, 'getResource', { feedUrl: 'http://127.0.0.1:1/nothing' })).json).to.deep.equal({
        success: true,
        found: false,
        resource: null,
      });
    });

    it('setResource fills defaults for a partial resource', async () => {
      const feedUrl = 'http://127.0.0.1:1/partial.xml';
      expect((await testApi(hub, 'setResource', { feedUrl, resource: { lastHash: 'abc' } })).json).to.deep.equal({ success: true });
      const { json } = await testApi<{ found: boolean; resource: ResourceJson }>(hub, 'getResource', { feedUrl });
      expect(json.found).to.equal(true);
      expect(json.resource).to.deep.equal({
        url: feedUrl,
        lastHash: 'abc',
        lastSize: 0,
        ctChecks: 0,
        whenLastCheck: '1970-01-01T00:00:00.000Z',
        ctUpdates: 0,
        whenLastUpdate: '1970-01-01T00:00:00.000Z',
      });
    });

    it('setResource and getResource round-trip every field', async () => {
      const feedUrl = 'http://127.0.0.1:1/full.xml';
      const resource = {
        url: feedUrl,
        lastHash: 'd41d8cd98f00b204e9800998ecf8427e',
        lastSize: 1234,
        ctChecks: 7,
        whenLastCheck: '2026-01-02T03:04:05.678Z',
        ctUpdates: 3,
        whenLastUpdate: '2026-01-01T00:00:00.000Z',
      };
      await testApi(hub, 'setResource', { feedUrl, resource });
      expect((await testApi(hub, 'getResource', { feedUrl })).json).to.deep.equal({ success: true, found: true, resource });
    });

    it('a resource whose hash was overwritten is read in full again: the stored ETag no longer describes it', async () => {
      // The community suite forces "changed" by seeding lastHash; a conditional GET with the
      // validators of the content read before would answer 304 and hide the change.
      const feed = feeds.etag(unique('reseed'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/reseed', feed))).success).to.equal(true);
      await testApi(hub, 'setResource', { feedUrl: feed, resource: { lastHash: 'seeded-by-the-suite', lastSize: 1 } });
      sub.reset();
      feeds.rec.reset();
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      expect(feeds.rec.requests.map((r) => r.headers['if-none-match'])).to.deep.equal([undefined]);
      expect(notificationsAt(sub, '/reseed').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    });

    it('a ping is visible in the resource: checks, hash, size, update time', async () => {
      const feed = feeds.fixed(unique('visible'));
      const before = Date.now();
      expect((await ping(hub, feed)).success).to.equal(true);
      expect((await ping(hub, feed)).success).to.equal(true);
      const { json } = await testApi<{ resource: ResourceJson }>(hub, 'getResource', { feedUrl: feed });
      expect(json.resource.ctChecks).to.equal(2);
      expect(json.resource.ctUpdates).to.equal(1);
      expect(json.resource.lastHash).to.match(/^[0-9a-f]{32}$/);
      expect(json.resource.lastSize).to.be.above(0);
      expect(Date.parse(json.resource.whenLastUpdate)).to.be.at.least(before);
    });

    it('setSubscriptions and getSubscriptions round-trip ISO dates and nulls, and replace the list', async () => {
      const feedUrl = feeds.changing(unique('subs'));
      const full: SubscriptionJson[] = [
        {
          url: callbackOf('/one'),
          protocol: 'http-post',
          ctUpdates: 3,
          ctErrors: 1,
          ctConsecutiveErrors: 1,
          whenCreated: '2026-01-01T00:00:00.000Z',
          whenLastUpdate: null,
          whenLastError: '2026-01-02T00:00:00.000Z',
          whenExpires: '2099-01-01T00:00:00.000Z',
        },
        {
          url: callbackOf('/two'),
          protocol: 'xml-rpc',
          notifyProcedure: 'river.feedUpdated',
          ctUpdates: 0,
          ctErrors: 0,
          ctConsecutiveErrors: 0,
          whenCreated: '2026-01-01T00:00:00.000Z',
          whenLastUpdate: '2026-01-03T00:00:00.000Z',
          whenLastError: null,
          whenExpires: '2099-01-01T00:00:00.000Z',
        },
      ];
      await setSubscriptions(hub, feedUrl, full);
      const got = await getSubscriptions(hub, feedUrl);
      expect([...got].sort((a, b) => a.url.localeCompare(b.url))).to.deep.equal(full);
      expect((await testApi(hub, 'getSubscriptions', { feedUrl })).json).to.include({ success: true, found: true });

      await setSubscriptions(hub, feedUrl, [{ url: callbackOf('/three'), protocol: 'https-post' }]);
      const replaced = await getSubscriptions(hub, feedUrl);
      expect(replaced.map((s) => s.url)).to.deep.equal([callbackOf('/three')]);
      // Defaults: counters zero, never updated or failed, a fresh 25-hour lease.
      expect(replaced[0]).to.include({ protocol: 'https-post', ctUpdates: 0, ctErrors: 0, ctConsecutiveErrors: 0, whenLastUpdate: null, whenLastError: null });
      expect(Date.parse(replaced[0]!.whenExpires)).to.be.above(Date.now() + 24 * 3600_000);

      expect((await testApi(hub, 'getSubscriptions', { feedUrl: 'http://127.0.0.1:1/none' })).json).to.deep.equal({
        success: true,
        found: false,
        subscriptions: [],
      });
    });

    it('getData maps every feed to its resource and subscriptions', async () => {
      const feed = feeds.fixed(unique('data'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/data', feed))).success).to.equal(true);
      const { json } = await testApi<{ success: boolean; data: Record<string, { resource: ResourceJson; subscriptions: SubscriptionJson[] }> }>(hub, 'getData');
      expect(json.success).to.equal(true);
      expect(Object.keys(json.data)).to.deep.equal([feed]);
      expect(json.data[feed]!.resource).to.include({ url: feed, ctChecks: 1, ctUpdates: 1 });
      expect(json.data[feed]!.subscriptions.map((s) => [s.url, s.protocol, s.ctUpdates])).to.deep.equal([[callbackOf('/data'), 'http-post', 1]]);
    });

    it('bad input is HTTP 500 {success:false, error}', async () => {
      for (const [route, body] of [
        ['setSubscriptions', { feedUrl: 'http://127.0.0.1:1/x', subscriptions: 'nope' }],
        ['setSubscriptions', { feedUrl: 'http://127.0.0.1:1/x', subscriptions: [{ url: 'http://127.0.0.1:1/cb', protocol: 'carrier-pigeon' }] }],
        ['setSubscriptions', { feedUrl: 'http://127.0.0.1:1/x', subscriptions: [{ url: 'http://127.0.0.1:1/cb', whenExpires: 'not a date' }] }],
        ['setResource', { resource: {} }],
        ['getResource', {}],
      ] as [string, unknown][]) {
        const { status: code, json } = await testApi<{ success: boolean; error: unknown }>(hub, route, body);
        expect(code, route).to.equal(500);
        expect(json.success).to.equal(false);
        expect(json.error).to.be.a('string').and.not.equal('');
      }
    });

    for (const body of ['not json', 'null', '"a string"', '[1, 2]']) {
      it(`a body of ${body} is HTTP 500 {success:false, error} too`, async () => {
        const res = await fetch(`${hub.url}/test/getSubscriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status).to.equal(500);
        expect(res.headers.get('content-type')).to.match(/^application\/json/);
        const json = (await res.json()) as { success: unknown; error: unknown };
        expect(json.success).to.equal(false);
        expect(json.error).to.be.a('string').and.not.equal('');
      });
    }

    it('removeExpired drops expired and exhausted subscriptions and stale resources nobody follows', async () => {
      const now = Date.now();
      const f = {
        mixed: feeds.changing(unique('mixed')),
        staleNoSubs: feeds.changing(unique('stale')),
        recentNoSubs: feeds.changing(unique('recent')),
        staleExpiredOnly: feeds.changing(unique('stale-expired')),
        staleActive: feeds.changing(unique('stale-active')),
      };
      await setSubscriptions(hub, f.mixed, [
        { url: callbackOf('/active'), protocol: 'http-post', ctConsecutiveErrors: 2 },
        { url: callbackOf('/expired'), protocol: 'http-post', whenExpires: iso(now - 1000) },
        { url: callbackOf('/exhausted'), protocol: 'http-post', ctErrors: 3, ctConsecutiveErrors: 3 },
      ]);
      await testApi(hub, 'setResource', { feedUrl: f.mixed, resource: { whenLastUpdate: iso(now - 30 * DAY) } });
      await testApi(hub, 'setResource', { feedUrl: f.staleNoSubs, resource: { lastHash: 'x', whenLastUpdate: iso(now - 8 * DAY) } });
      await testApi(hub, 'setResource', { feedUrl: f.recentNoSubs, resource: { lastHash: 'x', whenLastUpdate: iso(now - 6 * DAY) } });
      await testApi(hub, 'setResource', { feedUrl: f.staleExpiredOnly, resource: { whenLastUpdate: iso(now - 8 * DAY) } });
      await setSubscriptions(hub, f.staleExpiredOnly, [{ url: callbackOf('/gone'), protocol: 'xml-rpc', notifyProcedure: 'x', whenExpires: iso(now - DAY) }]);
      await testApi(hub, 'setResource', { feedUrl: f.staleActive, resource: { whenLastUpdate: iso(now - 8 * DAY) } });
      await setSubscriptions(hub, f.staleActive, [{ url: callbackOf('/kept'), protocol: 'http-post' }]);

      const { status: code, json } = await testApi<{ success: boolean; result: unknown }>(hub, 'removeExpired');
      expect(code).to.equal(200);
      expect(json.success).to.equal(true);
      expect(json).to.have.property('result');

      const { json: after } = await testApi<{ data: Record<string, { subscriptions: SubscriptionJson[] }> }>(hub, 'getData');
      expect(Object.keys(after.data).sort()).to.deep.equal([f.mixed, f.recentNoSubs, f.staleActive].sort());
      expect(after.data[f.mixed]!.subscriptions.map((s) => s.url)).to.deep.equal([callbackOf('/active')]);
      expect(after.data[f.staleActive]!.subscriptions.map((s) => s.url)).to.deep.equal([callbackOf('/kept')]);
      expect(after.data[f.recentNoSubs]!.subscriptions).to.deep.equal([]);
    });

    it('removeExpired goes on past its batch of 1,000 rows a store call, for subscriptions, topics and sites alike', async () => {
      const now = Date.now();
      const feed = feeds.changing(unique('many-expired'));
      await setSubscriptions(
        hub,
        feed,
        Array.from({ length: 2500 }, (_, i) => ({ url: callbackOf(`/expired/${i}`), protocol: 'http-post', whenExpires: iso(now - 1000) })),
      );
      await Promise.all(Array.from({ length: 2500 }, (_, i) => hub.store.putTopic({ ...newTopic(`http://stale.example/${i}`), whenLastUpdate: now - 8 * DAY })));
      // Sites whose page nobody has pinged for longer than the retention window go as well.
      const site = (url: string, whenChecked: number): Site => ({ url, feeds: [`${url}feed.xml`], hubs: [], whenChecked, whenCreated: whenChecked });
      await Promise.all(Array.from({ length: 2500 }, (_, i) => hub.store.putSite(site(`http://site${i}.example/`, now - 8 * DAY))));
      await hub.store.putSite(site('http://pinged.example/', now - DAY));
      const { json } = await testApi<{ result: CleanupReport }>(hub, 'removeExpired');
      // The feed's own row goes too: never updated, and nobody follows it once its subscriptions are gone.
      expect(json.result).to.deep.equal({ subscriptionsRemoved: 2500, topicsRemoved: 2501, sitesRemoved: 2500, topicsTrimmed: 0, sitesTrimmed: 0 });
      expect(await hub.store.getSite('http://site0.example/')).to.equal(undefined);
      expect((await hub.store.getSite('http://pinged.example/'))?.feeds).to.deep.equal(['http://pinged.example/feed.xml']);
      const { json: after } = await testApi<{ data: Record<string, unknown> }>(hub, 'getData');
      expect(after.data).to.deep.equal({});
    });
  });

  describe('without ENABLE_TEST_API', () => {
    let hub: TestHub;
    before(async () => {
      hub = await startTestHub({ ENABLE_TEST_API: 'false' });
    });
    after(async () => {
      await hub?.destroy();
    });

    for (const route of ['clear', 'setResource', 'getResource', 'setSubscriptions', 'getSubscriptions', 'getData', 'removeExpired']) {
      it(`/test/${route} is 404`, async () => {
        const res = await fetch(`${hub.url}/test/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        expect(res.status).to.equal(404);
        await res.arrayBuffer();
      });
    }

    it('and the hub itself still works', async () => {
      const feed = feeds.changing(unique('no-api'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/no-api', feed))).msg).to.equal(MSG.subscribed);
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      expect(notificationsAt(sub, '/no-api')).to.have.length(2);
    });
  });

  describe('MAX_UNFOLLOWED_TOPICS=3: what nobody follows is bounded', () => {
    let hub: TestHub;
    let pages: Recorder;
    before(async () => {
      hub = await startTestHub({ MAX_UNFOLLOWED_TOPICS: '3' });
      // Web pages that each link one feed: a ping of one is a ping of its site.
      pages = await Recorder.start((req, res) => {
        if (req.path.endsWith('/feed.xml')) {
          res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(`<rss version="2.0"><channel><title>t</title><item><guid>${req.path}</guid></item></channel></rss>`);
        } else {
          res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head><link rel="alternate" type="application/rss+xml" href="${req.path}feed.xml"></head></html>`);
        }
      });
    });
    after(async () => {
      await hub?.destroy();
      await pages?.close();
    });

    const topicUrls = async (): Promise<string[]> => (await hub.store.listTopics()).map((t) => t.url).sort();

    it('keeps the 3 topics nobody follows that were read last, and every followed one; pings are answered as ever', async () => {
      const followed = feeds.changing(unique('followed'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/bounded', followed))).success).to.equal(true);
      const unfollowed = Array.from({ length: 5 }, (_, i) => feeds.changing(unique(`unfollowed${i}`)));
      for (const url of unfollowed) {
        expect((await ping(hub, url)).msg).to.equal(MSG.pinged);
        await sleep(5); // distinct read times
      }
      await hub.hub.idle();
      expect(await topicUrls()).to.deep.equal([followed, ...unfollowed.slice(2)].sort());

      // A forgotten topic is read again like a new one; it is now the most recent.
      expect((await ping(hub, unfollowed[0]!)).msg).to.equal(MSG.pinged);
      await hub.hub.idle();
      expect(await topicUrls()).to.deep.equal([followed, unfollowed[0]!, ...unfollowed.slice(3)].sort());
      // The followed topic, read before all of them, is still delivered to.
      sub.reset();
      expect((await ping(hub, followed)).msg).to.equal(MSG.pinged);
      expect(sub.requests.map((r) => r.path)).to.deep.equal(['/bounded']);
    });

    it('keeps the 3 sites whose page was read last', async () => {
      const sites = Array.from({ length: 5 }, (_, i) => `${pages.url}/${unique(`site${i}`)}/`);
      for (const url of sites) {
        expect((await ping(hub, url)).msg).to.equal(MSG.pinged);
        await sleep(5);
      }
      await hub.hub.idle();
      const kept = await Promise.all(sites.map(async (url) => (await hub.store.getSite(url))?.feeds ?? null));
      expect(kept).to.deep.equal([null, null, ...sites.slice(2).map((url) => [`${url}feed.xml`])]);
      // The sweep holds to the bound as well: one more topic, written without a read, goes at the next sweep.
      await hub.store.putTopic({ ...newTopic('http://unread.example/feed.xml'), whenLastCheck: 1, whenLastUpdate: Date.now() });
      const { json } = await testApi<{ result: { topicsTrimmed: number; sitesTrimmed: number } }>(hub, 'removeExpired');
      expect(json.result).to.include({ topicsTrimmed: 1, sitesTrimmed: 0 });
      expect(await hub.store.getTopic('http://unread.example/feed.xml')).to.equal(undefined);
    });
  });

  describe('MAX_UNFOLLOWED_TOPICS=1 and a trim that is slow to finish', () => {
    it('topics created while a trim runs are trimmed when it ends, not left over the bound', async () => {
      const hub = await startTestHub({ MAX_UNFOLLOWED_TOPICS: '1' });
      try {
        // The trim reads what is there at once, then takes a while to finish (a busy database).
        const trim = hub.store.trimUnfollowedTopics.bind(hub.store);
        hub.store.trimUnfollowedTopics = async (keep) => {
          const n = await trim(keep);
          await sleep(300);
          return n;
        };
        const urls = Array.from({ length: 4 }, (_, i) => feeds.fixed(unique(`slow-trim${i}`)));
        // Each ping makes a topic; the first starts a trim, the others come while it runs.
        for (const url of urls) expect((await ping(hub, url)).msg).to.equal(MSG.pinged);
        await hub.hub.idle();
        const left = (await hub.store.listTopics()).map((t) => t.url);
        expect(left, 'topics nobody follows after the trims').to.deep.equal([urls[3]]);
      } finally {
        await hub.destroy();
      }
    });
  });

  describe('leases and errors', () => {
    let hub: TestHub;
    before(async () => {
      hub = await startTestHub({ RSSCLOUD_LEASE_SECONDS: '1' });
    });
    after(async () => {
      await hub?.destroy();
    });
    beforeEach(async () => {
      await testApi(hub, 'clear');
    });

    it('a subscription that was not renewed stops hearing, and the cleanup removes it; a renewal brings it back', async () => {
      const feed = feeds.changing(unique('lease'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/lease', feed))).success).to.equal(true);
      await sleep(1100);
      sub.reset();
      expect((await ping(hub, feed)).success).to.equal(true);
      expect(sub.requests).to.deep.equal([]);

      await testApi(hub, 'removeExpired');
      expect(await getSubscriptions(hub, feed)).to.deep.equal([]);

      expect((await pleaseNotify(hub, subscribeForm(sub, '/lease', feed))).success).to.equal(true);
      sub.reset();
      expect((await ping(hub, feed)).success).to.equal(true);
      expect(notificationsAt(sub, '/lease')).to.have.length(1);
    });
  });

  describe('a failing subscriber', () => {
    let hub: TestHub;
    before(async () => {
      hub = await startTestHub();
    });
    after(async () => {
      await hub?.destroy();
    });

    it('is tried until 3 failures in a row, then skipped, then removed by the cleanup', async () => {
      const feed = feeds.changing(unique('failing'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/flaky', feed))).success).to.equal(true);
      sub.handler = status(503);
      for (let i = 1; i <= 3; i++) {
        sub.reset();
        expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
        expect(notificationsAt(sub, '/flaky'), `ping ${i}`).to.have.length(1);
        const [s] = await getSubscriptions(hub, feed);
        expect([s!.ctErrors, s!.ctConsecutiveErrors], `ping ${i}`).to.deep.equal([i, i]);
      }
      sub.reset();
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      expect(sub.requests).to.deep.equal([]);

      await testApi(hub, 'removeExpired');
      expect(await getSubscriptions(hub, feed)).to.deep.equal([]);
    });
  });

  describe('restarts', function () {
    this.timeout(60_000);
    const children: ChildHub[] = [];
    const dirs: string[] = [];
    const inProcess: TestHub[] = [];
    const start = async (dir: string): Promise<ChildHub> => {
      const child = await spawnHub(dir);
      children.push(child);
      return child;
    };
    afterEach(async () => {
      for (const c of children.splice(0)) await c.stop('SIGKILL');
      for (const h of inProcess.splice(0)) await h.close();
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    });

    it('acknowledged subscriptions survive SIGKILL, and a ping after the restart reaches every one', async () => {
      const dir = await tempDataDir();
      dirs.push(dir);
      const first = await start(dir);
      const a = feeds.changing(unique('kill-a'));
      const b = feeds.changing(unique('kill-b'));
      const paths = ['/k1', '/k2', '/k3', '/k4', '/k5', '/k6'];
      const replies = await Promise.all(
        paths.map((p, i) => pleaseNotify(first, subscribeForm(sub, p, a, { url2: b, ...(i % 2 === 0 && { domain: '127.0.0.1' }) }))),
      );
      const killed = await first.stop('SIGKILL');
      expect(killed.signal).to.equal('SIGKILL');
      expect(replies.map((r) => r.msg)).to.deep.equal(paths.map(() => MSG.subscribed));

      const second = await start(dir);
      expect(second.url).to.not.equal('');
      for (const feed of [a, b]) {
        const subs = await getSubscriptions(second, feed);
        expect(subs.map((s) => s.url).sort(), feed).to.deep.equal(paths.map(callbackOf).sort());
      }
      sub.reset();
      expect((await ping(second, a)).msg).to.equal(MSG.pinged);
      for (const p of paths) {
        expect(notificationsAt(sub, p).map((r) => r.body.toString()), p).to.deep.equal([notifyBody(a)]);
      }
      const stopped = await second.stop('SIGTERM');
      expect(stopped).to.deep.equal({ code: 0, signal: null });
    });

    it('SIGTERM flushes the store and exits 0', async () => {
      const dir = await tempDataDir();
      dirs.push(dir);
      const child = await start(dir);
      const feed = feeds.changing(unique('term'));
      const replies = await Promise.all(['/t1', '/t2', '/t3'].map((p) => pleaseNotify(child, subscribeForm(sub, p, feed))));
      expect(replies.every((r) => r.success)).to.equal(true);
      expect((await ping(child, feed)).success).to.equal(true);

      expect(await child.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });
      expect(child.log.some((l) => l.includes('"shutting down"'))).to.equal(true);

      const reopened = await startTestHub({}, dir);
      inProcess.push(reopened);
      const subs = await getSubscriptions(reopened, feed);
      expect(subs.map((s) => s.url).sort()).to.deep.equal(['/t1', '/t2', '/t3'].map(callbackOf));
      // The ping's delivery was counted and kept too.
      for (const s of subs) expect(s.ctUpdates, s.url).to.be.at.least(2);
      const { json } = await testApi<{ resource: ResourceJson }>(reopened, 'getResource', { feedUrl: feed });
      expect(json.resource.lastHash).to.match(/^[0-9a-f]{32}$/);
    });

    it('a ping that comes while the hub starts waits for it and is answered, never left hanging', async () => {
      const dir = await tempDataDir();
      dirs.push(dir);
      // A restart: subscriptions to read back before the hub can answer.
      const before = await startTestHub({}, dir);
      const followed = feeds.changing(unique('early-followed'));
      await setSubscriptions(before, followed, Array.from({ length: 500 }, (_, i) => ({ url: callbackOf(`/early-${i}`), protocol: 'http-post' })));
      await before.close();

      // Pings from before the hub listens until it has started: some are refused (nothing
      // listens yet), and every other one must get its answer. Five seconds is "never" here.
      const host = loopbackAddress();
      const port = await freePort(host);
      const feed = feeds.changing(unique('early'));
      let up = false;
      const outcomes: string[] = [];
      const pinger = async (): Promise<void> => {
        while (!up) {
          const res = await postForm(`http://${host}:${port}`, '/ping', { url: feed }, { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => {
            if (!(e instanceof Error)) return String(e);
            if (e.name === 'TimeoutError') return 'no answer in 5 s';
            const code = (e.cause as { code?: unknown } | undefined)?.code;
            return code === 'ECONNREFUSED' ? 'refused' : `${e.message} (${String(code)})`;
          });
          if (typeof res === 'string') {
            if (res !== 'refused') outcomes.push(res);
          } else {
            const reply = await readReply(res);
            outcomes.push(`${reply.status} ${reply.msg}`);
          }
        }
      };
      const pingers = Array.from({ length: 4 }, pinger);
      const hub = await startTestHub({ HOST: host, PORT: String(port) }, dir);
      inProcess.push(hub);
      up = true;
      await Promise.all(pingers);
      expect(outcomes.length, 'pings answered').to.be.at.least(1);
      expect([...new Set(outcomes)]).to.deep.equal([`200 ${MSG.pinged}`]);
    });

    it('the cleanup runs again every 24 hours while the hub runs, not only at start-up', async () => {
      // The day is not waited for: the hub's timers are taken as it sets them, and each one set
      // for 24 hours is fired as the day's end would.
      const daily: (() => void)[] = [];
      const realSetInterval = globalThis.setInterval;
      globalThis.setInterval = ((fn: () => void, ms?: number) => {
        if (ms === DAY) daily.push(fn);
        return realSetInterval(fn, ms);
      }) as typeof setInterval;
      let hub: TestHub;
      try {
        hub = await startTestHub();
      } finally {
        globalThis.setInterval = realSetInterval;
      }
      inProcess.push(hub);
      dirs.push(hub.dataDir);
      expect(daily, 'timers set for 24 hours').to.have.length.at.least(1);
      const feed = feeds.changing(unique('daily'));
      await setSubscriptions(hub, feed, [
        { url: callbackOf('/live'), protocol: 'http-post' },
        { url: callbackOf('/dead'), protocol: 'http-post', whenExpires: iso(Date.now() - 1000) },
        { url: callbackOf('/broken'), protocol: 'http-post', ctConsecutiveErrors: 3 },
      ]);
      expect(await getSubscriptions(hub, feed)).to.have.length(3);
      for (const fire of daily) fire();
      let left = await getSubscriptions(hub, feed);
      await until(async () => (left = await getSubscriptions(hub, feed)).length <= 1, { everyMs: 100 });
      expect(left.map((s) => s.url)).to.deep.equal([callbackOf('/live')]);
    });

    it('the cleanup runs at start-up', async () => {
      const dir = await tempDataDir();
      dirs.push(dir);
      const hub = await startTestHub({}, dir);
      const feed = feeds.changing(unique('startup'));
      await setSubscriptions(hub, feed, [
        { url: callbackOf('/live'), protocol: 'http-post' },
        { url: callbackOf('/dead'), protocol: 'http-post', whenExpires: iso(Date.now() - 1000) },
        { url: callbackOf('/broken'), protocol: 'http-post', ctConsecutiveErrors: 3 },
      ]);
      await hub.close();

      const again = await startTestHub({}, dir);
      inProcess.push(again);
      expect((await getSubscriptions(again, feed)).map((s) => s.url)).to.deep.equal([callbackOf('/live')]);
    });
  });
});
