// WebSub beyond websub.rocks: query-string callbacks, re-verification that fails, denial,
// leases and expiry, retries, 410, redirects, secrets, every signature algorithm, the publish
// API's URL forms, conditional fetches, authenticated fat pings, both directions across
// protocols, discovery and the test API. Everything over real HTTP on 127.0.0.1.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { Recorder, sleep, type Recorded } from './helpers/recorder.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { MSG, getSubscriptions, notificationsAt, notifyBody, ping, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import {
  Subscriber,
  TopicServer,
  outboxWhen,
  parseLinks,
  publish,
  settled,
  subscribe,
  subscriptionsOf,
  testApi,
  unsubscribe,
  validSignature,
} from './helpers/websub.js';
import { until } from './helpers/until.js';

// Topics here are opaque text, so every assertion on a delivered body is about whole-body
// delivery; feeds (which the hub may diff, REC §7) and the REC's other formats are covered by
// websub-rocks.test.ts.
const DOC = (state: string): string => `topic state: ${state}\n`;
const DOC_TYPE = 'text/plain; charset=utf-8';

/** How long nothing must happen, after the hub is idle, to count as "nothing happened". */
const QUIET_MS = 300;

describe('WebSub hub', function () {
  let hub: TestHub;
  let hubs: TestHub[] = [];
  let servers: { close(): Promise<void> }[] = [];

  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    await hub.destroy();
  });
  afterEach(async () => {
    for (const h of hubs) await h.destroy();
    for (const s of servers) await s.close();
    hubs = [];
    servers = [];
  });

  async function otherHub(env: Record<string, string>): Promise<TestHub> {
    const h = await startTestHub(env);
    hubs.push(h);
    return h;
  }
  async function topicServer(): Promise<TopicServer> {
    const t = await TopicServer.start();
    servers.push(t);
    return t;
  }
  async function subscriber(): Promise<Subscriber> {
    const s = await Subscriber.start();
    servers.push(s);
    return s;
  }
  async function quiet(h: TestHub): Promise<void> {
    await settled(h);
    await sleep(QUIET_MS);
  }
  /** Subscribes, expects 202, waits for the verification and for the hub to store the result. */
  async function subscribed(h: TestHub, sub: Subscriber, form: Record<string, string>): Promise<void> {
    const before = sub.verifications('subscribe').length;
    const res = await subscribe(h, form);
    expect(res.status, await res.text()).to.equal(202);
    await sub.waitVerifications(before + 1, 'subscribe');
    await settled(h);
  }
  /** Publishes a topic and waits for the fetch that publish causes. */
  async function publishAndFetch(h: TestHub, topics: TopicServer, topic: string): Promise<Recorded> {
    const path = new URL(topic).pathname;
    const before = topics.fetches(path).length;
    const res = await publish(h, topic);
    expect(res.status).to.equal(204);
    const fetches = await topics.rec.waitFor(before + 1, (r) => r.method === 'GET' && r.path === path);
    return fetches[before]!;
  }
  async function expectRefused(res: Response, status = 400): Promise<string> {
    const text = await res.text();
    expect(res.status, text).to.equal(status);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(text.trim()).to.not.equal('');
    return text;
  }

  // ---- subscription requests ----------------------------------------------------------

  describe('subscription requests', () => {
    it("keeps the callback's query string in verification (hub.* appended with &) and in deliveries", async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('q'), contentType: DOC_TYPE });
      const callback = sub.callback('/cb?a=1&b=2');
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': callback });
      const [v] = sub.verifications('subscribe');
      expect(v!.url.startsWith('/cb?a=1&b=2&hub.')).to.equal(true, v!.url);
      expect(v!.query.get('a')).to.equal('1');
      expect(v!.query.get('b')).to.equal('2');
      expect(v!.query.get('hub.topic')).to.equal(topic);
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.url).to.equal('/cb?a=1&b=2');
      expect(d!.body.toString()).to.equal(DOC('q'));
    });

    it("a callback whose own query names hub.topic and hub.lease_seconds keeps them as they were, first, with the hub's appended after (REC §5.1.1: not overwritten)", async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('overlap'), contentType: DOC_TYPE });
      const callback = sub.callback('/cb?hub.topic=mine&hub.lease_seconds=1');
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': callback });
      const [v] = sub.verifications('subscribe');
      expect(v!.url.startsWith('/cb?hub.topic=mine&hub.lease_seconds=1&hub.')).to.equal(true, v!.url);
      expect(v!.query.getAll('hub.topic')).to.deep.equal(['mine', topic]);
      expect(v!.query.getAll('hub.lease_seconds')).to.deep.equal(['1', '864000']);
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.url).to.equal('/cb?hub.topic=mine&hub.lease_seconds=1');
    });

    it('an unsubscribe is never validated: for a topic the hub may not fetch it is verified with hub.mode=unsubscribe, not denied (REC §5)', async () => {
      const h = await otherHub({ FETCH_ALLOW_CIDRS: '127.0.0.1/32' });
      const sub = await subscriber();
      const topic = 'http://127.0.0.2:1/x';
      const res = await unsubscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect(res.status, await res.text()).to.equal(202);
      const [v] = await sub.waitVerifications(1, 'unsubscribe');
      expect(v!.query.get('hub.topic')).to.equal(topic);
      expect(v!.query.get('hub.challenge')).to.be.a('string').and.not.equal('');
      await settled(h);
      expect(sub.rec.matching((r) => r.query.get('hub.mode') === 'denied')).to.deep.equal([]);
    });

    it('ignores hub.verify and echoes hub.verify_token in the verification', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('v'), contentType: DOC_TYPE });
      const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.verify': 'sync', 'hub.verify_token': 'tok-123' });
      expect(res.status).to.equal(202);
      const [v] = await sub.waitVerifications(1, 'subscribe');
      expect(v!.query.get('hub.verify_token')).to.equal('tok-123');
      expect(v!.query.has('hub.verify')).to.equal(false);
    });

    it('answers 202 before verification finishes: the answer does not wait for the subscriber', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('slow'), contentType: DOC_TYPE });
      const answer = sub.rec.handler;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      sub.rec.handler = async (req, res) => {
        await gate;
        await answer(req, res);
      };
      const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect(res.status).to.equal(202);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
      release();
      await sub.waitVerifications(1, 'subscribe');
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.have.length(1);
    });

    it('accepts a form Content-Type with a charset parameter', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('cs'), contentType: DOC_TYPE });
      const res = await hub.postForm('/websub', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback() }, {
        'content-type': 'application/x-www-form-urlencoded; charset=UTF-8',
      });
      expect(res.status, await res.text()).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
    });

    it('ignores unknown parameters', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('u'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), foo: 'bar', 'hub.foo': 'hub.bar' });
      const [v] = sub.verifications('subscribe');
      expect(v!.query.has('foo')).to.equal(false);
      expect(v!.query.has('hub.foo')).to.equal(false);
      expect(await subscriptionsOf(hub, topic)).to.have.length(1);
    });

    it('never makes a second subscription when the same callback re-subscribes', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('r'), contentType: DOC_TYPE });
      for (let i = 0; i < 3; i++) await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect(sub.verifications('subscribe')).to.have.length(3);
      const subs = await subscriptionsOf(hub, topic);
      expect(subs).to.have.length(1);
      expect(subs[0]!.protocol).to.equal('websub');
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      await quiet(hub);
      expect(sub.deliveries()).to.have.length(1);
    });

    it('keeps the old subscription and its secret when a re-subscription fails verification', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('old'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'old-secret' });
      sub.verify = 'wrong';
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'new-secret' });
      sub.verify = 'decline';
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect(await subscriptionsOf(hub, topic)).to.have.length(1);
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(validSignature(d!.headers['x-hub-signature'], 'old-secret', d!.body)).to.equal(true);
    });

    it('denies a topic the hub may not fetch: 202, then hub.mode=denied with topic and reason, and no subscription', async () => {
      const h = await otherHub({ FETCH_ALLOW_CIDRS: '127.0.0.1/32' });
      const sub = await subscriber();
      const topic = 'http://127.0.0.2:1/x';
      const res = await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/cb?k=v') });
      expect(res.status, await res.text()).to.equal(202);
      const [denied] = await sub.rec.waitFor(1, (r) => r.method === 'GET' && r.query.get('hub.mode') === 'denied');
      expect(denied!.path).to.equal('/cb');
      expect(denied!.query.get('k')).to.equal('v');
      expect(denied!.query.get('hub.topic')).to.equal(topic);
      expect(denied!.query.get('hub.reason')).to.be.a('string').and.not.equal('');
      await settled(h);
      expect(sub.verifications('subscribe')).to.have.length(0);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
    });

    it('a denial the callback cuts off (the connection closed unanswered) is sent once and given up: no retries, no subscription, the hub goes on', async () => {
      const h = await otherHub({ FETCH_ALLOW_CIDRS: '127.0.0.1/32' });
      const sub = await subscriber();
      const answer = sub.rec.handler;
      sub.rec.handler = (req, res) => {
        if (req.query.get('hub.mode') === 'denied') return void res.destroy();
        return answer(req, res);
      };
      const topic = 'http://127.0.0.2:1/cut';
      const res = await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/cut') });
      expect(res.status, await res.text()).to.equal(202);
      await sub.rec.waitFor(1, (r) => r.method === 'GET' && r.query.get('hub.mode') === 'denied');
      await settled(h);
      // Best effort, as REC §5.2 makes it: one attempt.
      expect(sub.rec.requests.filter((r) => r.query.get('hub.mode') === 'denied')).to.have.length(1);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
      expect((await fetch(`${h.url}/healthz`)).status).to.equal(200);
    });

    it('refuses a callback at an address the hub may not call: 400 and no GET', async () => {
      const h = await otherHub({ CALLBACK_ALLOW_CIDRS: '' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('c'), contentType: DOC_TYPE });
      await expectRefused(await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback() }));
      await quiet(h);
      expect(sub.rec.requests).to.have.length(0);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
    });

    it('an empty hub.secret is no secret: deliveries are unsigned; an unsubscribe\'s secret is ignored, however long', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/empty-secret', { body: DOC('e'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/empty'), 'hub.secret': '' });
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1, '/empty');
      expect(d!.headers['x-hub-signature'], 'signed with an empty key').to.equal(undefined);
      const res = await unsubscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback('/empty'), 'hub.secret': 'x'.repeat(300) });
      expect(res.status, await res.text()).to.equal(202);
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.have.length(0);
    });

    it('accepts a secret of 199 bytes and refuses one of 200 bytes (counted in UTF-8)', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('s'), contentType: DOC_TYPE });
      const tooLong = 'é'.repeat(100); // 100 characters, 200 bytes
      expect(tooLong.length).to.be.below(200);
      await expectRefused(await subscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback('/long'), 'hub.secret': tooLong }));
      const justRight = `${'é'.repeat(99)}a`; // 199 bytes
      expect(Buffer.byteLength(justRight)).to.equal(199);
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/ok'), 'hub.secret': justRight });
      expect(sub.verifications(undefined, '/long')).to.have.length(0);
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.path).to.equal('/ok');
      expect(validSignature(d!.headers['x-hub-signature'], justRight, d!.body)).to.equal(true);
    });

    it('refuses bad requests with 4xx and a plain-text reason, and verifies nothing', async () => {
      const sub = await subscriber();
      const cb = sub.callback();
      const topic = 'http://127.0.0.1:1/feed';
      const cases: [string, Record<string, string>][] = [
        ['missing callback', { 'hub.mode': 'subscribe', 'hub.topic': topic }],
        ['empty callback', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': '' }],
        ['relative callback', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': '/cb' }],
        ['non-http callback', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': cb.replace('http:', 'ftp:') }],
        ['callback with a fragment', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${cb}#frag` }],
        ['missing topic', { 'hub.mode': 'subscribe', 'hub.callback': cb }],
        ['non-http topic', { 'hub.mode': 'subscribe', 'hub.topic': 'mailto:someone@example.com', 'hub.callback': cb }],
        ['topic with a fragment', { 'hub.mode': 'subscribe', 'hub.topic': `${topic}#x`, 'hub.callback': cb }],
        // The URL standard would drop these: the hub would fetch or call another URL than it keeps.
        ['topic with a line break', { 'hub.mode': 'subscribe', 'hub.topic': 'http://127.0.0.1:1/fe\ned', 'hub.callback': cb }],
        ['callback with a tab', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': cb.replace('/cb', '/c\tb') }],
        ['unsubscribe without a topic', { 'hub.mode': 'unsubscribe', 'hub.callback': cb }],
        ['unknown hub.mode', { 'hub.mode': 'subscribed', 'hub.topic': topic, 'hub.callback': cb }],
        ['missing hub.mode', { 'hub.topic': topic, 'hub.callback': cb }],
      ];
      for (const [name, form] of cases) {
        const res = await hub.postForm('/websub', form);
        expect(res.status, name).to.be.within(400, 499);
        await expectRefused(res, res.status);
      }
      for (const type of ['application/json', 'text/plain']) {
        const res = await fetch(`${hub.url}/websub`, {
          method: 'POST',
          headers: { 'content-type': type },
          body: new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': cb }).toString(),
        });
        await expectRefused(res, 415);
      }
      await quiet(hub);
      expect(sub.rec.requests).to.have.length(0);
    });

    it('shows websub subscriptions in the test API with protocol "websub", never with the secret', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('t'), contentType: DOC_TYPE });
      const secret = 'please-never-show-this-secret';
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': secret });
      const one = await testApi<{ found: boolean; subscriptions: Record<string, unknown>[] }>(hub, 'getSubscriptions', { feedUrl: topic });
      expect(one.found).to.equal(true);
      expect(one.subscriptions).to.have.length(1);
      expect(one.subscriptions[0]).to.include({ protocol: 'websub', url: sub.callback() });
      expect(one.subscriptions[0]).to.not.have.property('secret');
      expect(JSON.stringify(one)).to.not.include(secret);
      expect(JSON.stringify(await testApi(hub, 'getData'))).to.not.include(secret);
    });
  });

  describe('requests for the same topic and callback (REC §5.1: the newer request decides)', () => {
    /** The subscriber answers the first GET that `slow` picks `ms` late, those `decline` picks with a 404, the others at once. */
    function answerLate(sub: Subscriber, slow: (r: Recorded) => boolean, ms: number, decline: (r: Recorded) => boolean = () => false): void {
      const answer = sub.rec.handler;
      let delayed = false;
      sub.rec.handler = async (req, res) => {
        if (decline(req)) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('no');
          return;
        }
        if (!delayed && slow(req)) {
          delayed = true;
          await sleep(ms);
        }
        await answer(req, res);
      };
    }
    const mode = (m: string) => (r: Recorded) => r.query.get('hub.mode') === m;

    it('an unsubscribe right after a subscribe wins, though the subscriber answers the subscribe last: no subscription, nothing delivered', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('sub-then-unsub'), contentType: DOC_TYPE });
      answerLate(sub, mode('subscribe'), 1000);
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback() };
      expect((await subscribe(hub, form)).status).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
      expect((await unsubscribe(hub, form)).status).to.equal(202);
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
      await publishAndFetch(hub, topics, topic);
      await quiet(hub);
      expect(sub.deliveries()).to.deep.equal([]);
    });

    it('a re-subscribe without a secret, verified first, is what stays: not the older request with a secret and a longer lease verified after it', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('resubscribed'), contentType: DOC_TYPE });
      answerLate(sub, (r) => r.query.get('hub.lease_seconds') === '7200', 1000);
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback() };
      const before = Date.now();
      expect((await subscribe(hub, { ...form, 'hub.secret': 'old-secret', 'hub.lease_seconds': '7200' })).status).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
      expect((await subscribe(hub, { ...form, 'hub.lease_seconds': '3600' })).status).to.equal(202);
      await sub.waitVerifications(2, 'subscribe');
      await settled(hub);
      const subs = await subscriptionsOf(hub, topic);
      expect(subs).to.have.length(1);
      expect(Date.parse(subs[0]!.whenExpires)).to.be.within(before + 3600_000, Date.now() + 3600_000);
      await publishAndFetch(hub, topics, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(DOC('resubscribed'));
      expect(d!.headers).to.not.have.property('x-hub-signature');
    });

    it('a newer request that fails verification withdraws nothing: a stranger\'s unsubscribe, declined by the callback, does not cancel the subscribe its owner confirms', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('kept'), contentType: DOC_TYPE });
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback() };
      // The owner's subscribe is confirmed 300 ms late; the unsubscribe it never asked for is declined.
      answerLate(sub, mode('subscribe'), 300, mode('unsubscribe'));
      expect((await subscribe(hub, { ...form, 'hub.secret': 'owner-secret' })).status).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
      expect((await unsubscribe(hub, form)).status).to.equal(202); // anyone can send this
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(hub);
      expect(await subscriptionsOf(hub, topic), 'the owner confirmed its subscribe').to.have.length(1);
      await publishAndFetch(hub, topics, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(validSignature(d!.headers['x-hub-signature'], 'owner-secret', d!.body)).to.equal(true);
    });

    it('a subscribe and an unsubscribe both still waiting out WEBSUB_VERIFY_DELAY_MS when the hub stops: the next start asks both, and the declined unsubscribe withdraws nothing', async () => {
      const env = { WEBSUB_VERIFY_DELAY_MS: '60000', POLL_ENABLED: 'false' };
      const first = await startTestHub(env);
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('kept across the restart'), contentType: DOC_TYPE });
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback() };
      answerLate(sub, () => false, 0, mode('unsubscribe'));
      try {
        expect((await subscribe(first, { ...form, 'hub.secret': 'owner-secret' })).status).to.equal(202);
        expect((await unsubscribe(first, form)).status).to.equal(202);
      } finally {
        // A graceful stop: both requests stay stored, their claims released.
        await first.close();
      }
      expect(sub.rec.requests, 'nothing asked before the delay ran out').to.have.length(0);
      const second = await startTestHub(env, first.dataDir);
      hubs.push(second);
      await sub.waitVerifications(1, 'unsubscribe');
      await settled(second);
      expect(sub.verifications('subscribe'), 'the subscribe is asked too').to.have.length(1);
      expect(await subscriptionsOf(second, topic), 'the owner confirmed its subscribe').to.have.length(1);
      expect(await second.store.listVerifications()).to.deep.equal([]);
    });
  });

  describe('a callback that does not answer its verification (WEBSUB_VERIFY_ATTEMPTS)', () => {
    const RETRY = { WEBSUB_RETRY_BASE_MS: '50', WEBSUB_VERIFY_ATTEMPTS: '4' };

    it('is asked again after a closed connection, no answer in REQUEST_TIMEOUT_MS, a 503 and a 429: verified on the attempt it answers, and delivered to', async () => {
      const h = await otherHub({ ...RETRY, WEBSUB_VERIFY_ATTEMPTS: '5', REQUEST_TIMEOUT_MS: '500', WEBSUB_TIMEOUT_MS: '500' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('asked again'), contentType: DOC_TYPE });
      sub.verifyStatuses = [0, -1, 503, 429];
      expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback() })).status).to.equal(202);
      await settled(h);
      const asked = sub.verifications('subscribe');
      expect(asked).to.have.length(5);
      // Each attempt is a fresh verification: a new challenge, the same lease.
      expect(new Set(asked.map((r) => r.query.get('hub.challenge'))).size).to.equal(5);
      expect(new Set(asked.map((r) => r.query.get('hub.lease_seconds'))).size).to.equal(1);
      expect(await subscriptionsOf(h, topic)).to.have.length(1);
      await publish(h, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(DOC('asked again'));
    });

    it('beyond WEBSUB_MAX_PENDING_VERIFICATIONS waiting, a request is answered 503 with Retry-After and nothing kept; accepted again once they end', async () => {
      const h = await otherHub({ ...RETRY, WEBSUB_VERIFY_ATTEMPTS: '2', REQUEST_TIMEOUT_MS: '1000', WEBSUB_TIMEOUT_MS: '1000', WEBSUB_MAX_PENDING_VERIFICATIONS: '2' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('busy'), contentType: DOC_TYPE });
      // The first two verifications get no answer, and wait to ask again.
      sub.verifyStatuses = [-1, -1];
      for (const path of ['/one', '/two']) expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback(path) })).status).to.equal(202);
      const refused = await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/three') });
      expect(refused.status).to.equal(503);
      expect(refused.headers.get('retry-after')).to.equal('60');
      expect(await refused.text()).to.equal('The hub is busy verifying other requests: try again in 60 seconds.\n');
      expect((await h.store.listVerifications()).map((v) => new URL(v.callback).pathname).sort()).to.deep.equal(['/one', '/two']);
      await settled(h);
      expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/three') })).status).to.equal(202);
      await settled(h);
      expect((await subscriptionsOf(h, topic)).map((s) => new URL(s.url).pathname).sort()).to.deep.equal(['/one', '/three', '/two']);
    });

    it('gives up after WEBSUB_VERIFY_ATTEMPTS without an answer: no subscription, nothing left pending', async () => {
      const h = await otherHub(RETRY);
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('never answered'), contentType: DOC_TYPE });
      sub.verifyStatuses = [503, 503, 503, 503, 503, 503];
      expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback() })).status).to.equal(202);
      await settled(h);
      expect(sub.verifications('subscribe')).to.have.length(4);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
      expect(await h.store.listVerifications()).to.deep.equal([]);
    });

    it('an answer other than the challenge is final: a 404, a redirect, a wrong body or one over MAX_RESPONSE_BYTES is asked once', async () => {
      const h = await otherHub({ ...RETRY, MAX_RESPONSE_BYTES: '1024' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('refused'), contentType: DOC_TYPE });
      sub.verify = 'decline';
      await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/declines') });
      // Each verification asked before the next subscriber's behaviour is set: two asked at once
      // came in either order (seen on PostgreSQL under load), and the 302 went to whichever came first.
      await settled(h);
      sub.verifyStatuses = [302];
      await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/redirects') });
      await settled(h);
      sub.verify = 'wrong';
      await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/wrong') });
      await settled(h);
      sub.verify = 'huge';
      await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback('/huge') });
      await settled(h);
      expect(sub.verifications('subscribe').map((r) => r.path)).to.deep.equal(['/declines', '/redirects', '/wrong', '/huge']);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
    });

    it('a newer request verified while it waits to ask again ends it: no more GETs, and the newer one stands', async () => {
      const h = await otherHub({ ...RETRY, WEBSUB_RETRY_BASE_MS: '1000' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('unsubscribed'), contentType: DOC_TYPE });
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback() };
      sub.verifyStatuses = [503];
      expect((await subscribe(h, form)).status).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
      expect((await unsubscribe(h, form)).status).to.equal(202);
      await settled(h);
      expect(sub.verifications('subscribe')).to.have.length(1);
      expect(sub.verifications('unsubscribe')).to.have.length(1);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
    });

    it("the hub's own failure once the subscriber confirmed (its store refused the write) is tried again, not dropped: confirmed again and subscribed", async () => {
      const h = await otherHub(RETRY);
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('stored at last'), contentType: DOC_TYPE });
      const store = h.store;
      const put = store.putVerifiedSubscription.bind(store);
      let refused = 0;
      store.putVerifiedSubscription = (...args) => (refused++ === 0 ? Promise.reject(new Error('ENOSPC: no space left on device, write')) : put(...args));
      expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': sub.callback() })).status).to.equal(202);
      await settled(h);
      expect(refused).to.equal(2);
      expect(sub.verifications('subscribe')).to.have.length(2);
      expect(await subscriptionsOf(h, topic)).to.have.length(1);
      expect(await h.store.listVerifications()).to.deep.equal([]);
    });

    it('a hub stopped while it waits to ask again keeps the request: the next start verifies it', async () => {
      const env = { WEBSUB_RETRY_BASE_MS: '600000', WEBSUB_VERIFY_ATTEMPTS: '4', POLL_ENABLED: 'false' };
      const first = await startTestHub(env);
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('after the restart'), contentType: DOC_TYPE });
      sub.verifyStatuses = [503];
      try {
        expect((await subscribe(first, { 'hub.topic': topic, 'hub.callback': sub.callback() })).status).to.equal(202);
        await sub.waitVerifications(1, 'subscribe');
      } finally {
        // Not a ten-minute wait: stopping wakes the verification, which leaves its request stored.
        await first.close();
      }
      const second = await startTestHub(env, first.dataDir);
      hubs.push(second);
      await sub.waitVerifications(2, 'subscribe');
      await settled(second);
      expect(await subscriptionsOf(second, topic)).to.have.length(1);
      expect(await second.store.listVerifications()).to.deep.equal([]);
    });
  });

  // ---- leases and expiry --------------------------------------------------------------

  describe('leases', () => {
    it('grants the 10-day default (864000 s) when none is asked for, counted from the verification', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('l'), contentType: DOC_TYPE });
      const before = Date.now();
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect(sub.verifications('subscribe')[0]!.query.get('hub.lease_seconds')).to.equal('864000');
      const expires = Date.parse((await subscriptionsOf(hub, topic))[0]!.whenExpires);
      expect(expires).to.be.within(before + 864000_000, Date.now() + 864000_000);
    });

    it('takes hub.lease_seconds=0 (older clients\' "no expiry") and a negative whole number (NewsBlur\'s lease run out) as no lease asked for: the default, and refuses other non-integers', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('l0'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/zero'), 'hub.lease_seconds': '0' });
      expect(sub.verifications('subscribe', '/zero')[0]!.query.get('hub.lease_seconds')).to.equal('864000');
      // NewsBlur re-subscribes for what is left of its lease: days * 86400 + seconds in Python,
      // negative once the old lease has run out.
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/spent'), 'hub.lease_seconds': '-3600' });
      expect(sub.verifications('subscribe', '/spent')[0]!.query.get('hub.lease_seconds')).to.equal('864000');
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url).sort()).to.deep.equal([sub.callback('/spent'), sub.callback('/zero')].sort());
      for (const lease of ['-1.5', '1.5', '--1', '- 1', 'forever']) {
        // The refusal names what is taken: a negative whole number is, so "positive" was untrue.
        const words = await expectRefused(await subscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback('/bad'), 'hub.lease_seconds': lease }));
        expect(words.trim()).to.equal('hub.lease_seconds must be a whole number of seconds (0 or less for the default lease).');
      }
    });

    it('clamps the requested lease to WEBSUB_LEASE_MIN_SECONDS..WEBSUB_LEASE_MAX_SECONDS', async () => {
      const h = await otherHub({ WEBSUB_LEASE_MIN_SECONDS: '100', WEBSUB_LEASE_MAX_SECONDS: '1000' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('c'), contentType: DOC_TYPE });
      const asked: [string, string][] = [
        ['5', '100'],
        ['500', '500'],
        ['5000', '1000'],
        // A valid positive integer, however large: granted the longest lease, not refused.
        ['1234567890123456789012345', '1000'],
      ];
      for (const [lease, granted] of asked) {
        const path = `/lease-${lease}`;
        const before = Date.now();
        await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(path), 'hub.lease_seconds': lease });
        expect(sub.verifications('subscribe', path)[0]!.query.get('hub.lease_seconds'), `asked ${lease}`).to.equal(granted);
        const stored = (await subscriptionsOf(h, topic)).find((s) => s.url === sub.callback(path));
        expect(Date.parse(stored!.whenExpires)).to.be.within(before + Number(granted) * 1000, Date.now() + Number(granted) * 1000);
      }
    });

    it("ignores an unsubscribe's hub.lease_seconds, even a malformed one", async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('x'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      for (const lease of ['50', 'forever']) {
        const res = await unsubscribe(hub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.lease_seconds': lease });
        expect(res.status, await res.text()).to.equal(202);
      }
      const gets = await sub.waitVerifications(2, 'unsubscribe');
      for (const g of gets) expect(g.query.get('hub.lease_seconds')).to.not.be.oneOf(['50', 'forever']);
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    });

    describe('expiry', () => {
      let h: TestHub;
      before(async () => {
        h = await startTestHub({ WEBSUB_LEASE_MIN_SECONDS: '1' });
      });
      after(async () => {
        await h.destroy();
      });

      it('delivers nothing to a subscription whose lease has passed, and the sweep removes it (seeded)', async () => {
        const topics = await topicServer();
        const sub = await subscriber();
        const topic = topics.set('/feed', { body: DOC('e'), contentType: DOC_TYPE });
        await testApi(h, 'setSubscriptions', {
          feedUrl: topic,
          subscriptions: [
            { url: sub.callback('/expired'), protocol: 'websub', whenExpires: new Date(Date.now() - 60_000).toISOString() },
            { url: sub.callback('/live'), protocol: 'websub', whenExpires: new Date(Date.now() + 3600_000).toISOString() },
          ],
        });
        await publish(h, topic);
        await sub.waitDeliveries(1, '/live');
        await quiet(h);
        expect(sub.deliveries('/expired')).to.have.length(0);
        const swept = await testApi<{ result: { subscriptionsRemoved: number } }>(h, 'removeExpired');
        expect(swept.result.subscriptionsRemoved).to.equal(1);
        expect((await subscriptionsOf(h, topic)).map((s) => s.url)).to.deep.equal([sub.callback('/live')]);
      });

      it('lets a 1-second lease run out: no delivery after it, and the sweep removes it', async () => {
        const topics = await topicServer();
        const sub = await subscriber();
        const topic = topics.set('/feed', { body: DOC('e1'), contentType: DOC_TYPE });
        await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/short'), 'hub.lease_seconds': '1' });
        expect(sub.verifications('subscribe', '/short')[0]!.query.get('hub.lease_seconds')).to.equal('1');
        await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback('/long'), 'hub.lease_seconds': '3600' });
        await sleep(1100); // let the 1 s lease run out
        await publish(h, topic);
        await sub.waitDeliveries(1, '/long');
        await quiet(h);
        expect(sub.deliveries('/short')).to.have.length(0);
        const swept = await testApi<{ result: { subscriptionsRemoved: number } }>(h, 'removeExpired');
        expect(swept.result.subscriptionsRemoved).to.equal(1);
        expect((await subscriptionsOf(h, topic)).map((s) => s.url)).to.deep.equal([sub.callback('/long')]);
      });
    });
  });

  // ---- publishing ---------------------------------------------------------------------

  describe('publishing', () => {
    it('takes repeated hub.url, hub.url[], comma lists and hub.topic together: each topic fetched once and delivered', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const paths = ['/t1', '/t2', '/t3', '/t4'];
      const urls = paths.map((p) => topics.set(p, { body: DOC(p), contentType: DOC_TYPE }));
      for (const [i, url] of urls.entries()) await subscribed(hub, sub, { 'hub.topic': url, 'hub.callback': sub.callback(`/cb${i + 1}`) });
      const fetchedBefore = paths.map((p) => topics.fetches(p).length);
      const form = new URLSearchParams();
      form.append('hub.mode', 'publish');
      form.append('hub.url', urls[0]!);
      form.append('hub.url', urls[0]!);
      form.append('hub.url[]', urls[1]!);
      form.append('hub.url', `${urls[2]!},${urls[3]!}`);
      form.append('hub.topic', urls[0]!);
      form.append('hub.topic', urls[3]!);
      const res = await hub.postForm('/websub', form);
      expect([res.status, await res.text()]).to.deep.equal([204, '']);
      await sub.waitDeliveries(4);
      await quiet(hub);
      for (const [i, p] of paths.entries()) {
        expect(topics.fetches(p).length - fetchedBefore[i]!, p).to.equal(1);
        const got = sub.deliveries(`/cb${i + 1}`);
        expect(got, p).to.have.length(1);
        expect(got[0]!.body.toString()).to.equal(DOC(p));
      }
    });

    it('refuses a publish that names no URL with 400', async () => {
      await expectRefused(await hub.postForm('/websub', { 'hub.mode': 'publish' }));
      await expectRefused(await hub.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': '' }));
      await expectRefused(await hub.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': 'not a url' }));
    });

    it('follows a topic that moved (301 to its new address): its content is delivered, its rel=self still the topic subscribed to', async () => {
      const moved = await Recorder.start((req, res) => {
        if (req.path === '/old') res.writeHead(301, { location: '/new' }).end();
        else res.writeHead(200, { 'content-type': DOC_TYPE }).end(DOC('moved'));
      });
      servers.push(moved);
      const sub = await subscriber();
      const topic = `${moved.url}/old`;
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect((await publish(hub, topic)).status).to.equal(204);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(DOC('moved'));
      expect(moved.requests.map((r) => `${r.method} ${r.path}`)).to.deep.equal(['GET /old', 'GET /new']);
      expect(parseLinks(d!.headers['link']).filter((l) => l.rel === 'self').map((l) => l.url)).to.deep.equal([topic]);
    });

    it('delivers nothing when the topic has not changed since the last publish', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('same'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      await publishAndFetch(hub, topics, topic);
      await quiet(hub);
      expect(sub.deliveries()).to.have.length(1);
      topics.set('/feed', { body: DOC('changed'), contentType: DOC_TYPE });
      await publish(hub, topic);
      const got = await sub.waitDeliveries(2);
      expect(got[1]!.body.toString()).to.equal(DOC('changed'));
    });

    it('fetches conditionally: If-None-Match on the next publish, and a 304 delivers nothing', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('etag'), contentType: DOC_TYPE, etag: '"v1"' });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      const refetch = await publishAndFetch(hub, topics, topic);
      expect(refetch.headers['if-none-match']).to.equal('"v1"');
      await quiet(hub);
      expect(sub.deliveries()).to.have.length(1);
    });
  });

  describe('a publish answered before its read finished (a pending read, stored first)', function () {
    this.timeout(60_000);
    const children: ChildHub[] = [];
    const dirs: string[] = [];
    afterEach(async () => {
      for (const c of children.splice(0)) await c.stop('SIGKILL');
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    });
    async function child(dir: string): Promise<ChildHub> {
      const c = await spawnHub(dir, { POLL_ENABLED: 'false' });
      children.push(c);
      return c;
    }
    function post(h: { url: string }, form: Record<string, string>): Promise<Response> {
      return fetch(`${h.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
    }
    async function until(what: string, done: () => Promise<boolean>): Promise<void> {
      for (const t0 = Date.now(); !(await done()); await sleep(50)) if (Date.now() - t0 > 10_000) throw new Error(`timed out waiting for ${what}`);
    }

    /** Holds every read of `topics` until the test releases it, each in turn: `release()` lets the oldest held one answer. */
    function holdReads(topics: TopicServer): { release: () => void } {
      const serve = topics.rec.handler;
      const waiting: (() => void)[] = [];
      const released: number[] = [];
      topics.rec.handler = async (req, res) => {
        if (released.length === 0) await new Promise<void>((r) => waiting.push(r));
        else released.pop();
        await serve(req, res);
      };
      return {
        release: () => {
          const next = waiting.shift();
          if (next) next();
          else released.push(1);
        },
      };
    }

    it('is recorded for a topic somebody follows, not for one nobody does, and deleted once the read ends', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const followed = topics.set('/followed', { body: DOC('f'), contentType: DOC_TYPE });
      const nobodys = topics.set('/nobodys', { body: DOC('n'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': followed, 'hub.callback': sub.callback() });
      const held = holdReads(topics);
      const reads = topics.rec.requests.length;
      expect((await publish(hub, followed, nobodys)).status).to.equal(204);
      await topics.rec.waitFor(reads + 2);
      expect((await hub.store.listPendingReads()).map((r) => r.topic)).to.deep.equal([followed]);
      held.release();
      held.release();
      await sub.waitDeliveries(1);
      await settled(hub);
      expect(await hub.store.listPendingReads()).to.deep.equal([]);
    });

    it('of a publish that arrives during a read is kept until the read queued after it ends', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/busy', { body: DOC('1'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const held = holdReads(topics);
      const reads = topics.fetches('/busy').length;
      expect((await publish(hub, topic)).status).to.equal(204);
      await topics.rec.waitFor(reads + 1, (r) => r.path === '/busy');
      const [first] = await hub.store.listPendingReads();
      // Published while that read runs: it may have read the document before this change.
      topics.set('/busy', { body: DOC('2'), contentType: DOC_TYPE });
      await sleep(5);
      expect((await publish(hub, topic)).status).to.equal(204);
      const [second] = await hub.store.listPendingReads();
      expect(second!.since).to.be.greaterThan(first!.since);
      held.release();
      // The first read has ended (and its publish deleted what it could): the next one is asked for.
      await topics.rec.waitFor(reads + 2, (r) => r.path === '/busy');
      await hub.store.flush();
      expect(await hub.store.listPendingReads()).to.deep.equal([second]);
      held.release();
      await sub.waitDeliveries(1);
      await settled(hub);
      expect(await hub.store.listPendingReads()).to.deep.equal([]);
    });

    it('is kept by a graceful stop that drops its read before it started (its host busy), and read at the next start', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const busy = topics.set('/busy', { body: DOC('b'), contentType: DOC_TYPE });
      const waiting = topics.set('/waiting', { body: DOC('w'), contentType: DOC_TYPE });
      const dir = await tempDataDir();
      dirs.push(dir);
      // One read at a time per host: the second publish's read waits for the first one's turn.
      const env = { POLL_ENABLED: 'false', FETCH_PER_HOST: '1' };
      const first = await startTestHub(env, dir);
      let serve = topics.rec.handler;
      let firstClosed = false;
      try {
        await subscribed(first, sub, { 'hub.topic': waiting, 'hub.callback': sub.callback() });
        serve = topics.rec.handler;
        const held = holdReads(topics);
        const reads = topics.rec.requests.length;
        expect((await publish(first, busy)).status).to.equal(204);
        await topics.rec.waitFor(reads + 1);
        expect((await publish(first, waiting)).status).to.equal(204);
        expect((await first.store.listPendingReads()).map((r) => r.topic)).to.deep.equal([waiting]);
        // SIGTERM (a deploy): the read not started is dropped, "the hub is stopping", which is no
        // answer of the topic's. Taken for one, its record was deleted and the change never read.
        // close() drops the reads waiting for a turn at once (HttpClient.hurry), before the held one ends.
        const closing = first.close();
        held.release();
        await closing;
        firstClosed = true;
        expect(topics.fetches('/waiting')).to.have.length(0);
      } finally {
        if (!firstClosed) await first.close();
      }
      topics.rec.handler = serve;
      const second = await startTestHub(env, dir);
      try {
        const [delivered] = await sub.waitDeliveries(1);
        expect(delivered!.body.toString()).to.equal(DOC('w'));
        await settled(second);
        expect(await second.store.listPendingReads()).to.deep.equal([]);
      } finally {
        await second.close();
      }
    });

    it('is read after the hub is SIGKILLed mid-read and restarted (polling off): its WebSub and rssCloud subscribers hear of the change', async () => {
      const topics = await topicServer();
      const topic = topics.set('/held', { body: DOC('v1'), contentType: DOC_TYPE });
      const websub = await subscriber();
      const rss = await Recorder.start(subscriberOk);
      servers.push(rss);
      const dir = await tempDataDir();
      dirs.push(dir);
      const first = await child(dir);
      // rssCloud (REST) first: its subscribe reads the topic (v1), so the WebSub subscriber,
      // verified next, is owed only what comes after.
      expect((await pleaseNotify(first, subscribeForm(rss, '/notify', topic))).msg).to.equal(MSG.subscribed);
      expect((await post(first, { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': websub.callback('/cb') })).status).to.equal(202);
      await until('the WebSub subscription', async () => (await getSubscriptions(first, topic)).length === 2);

      // The next read of the topic is held until the hub has been killed.
      const serve = topics.rec.handler;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      topics.rec.handler = async (req, res) => {
        await held;
        await serve(req, res);
      };
      topics.set('/held', { body: DOC('v2'), contentType: DOC_TYPE });
      const reads = topics.fetches('/held').length;
      const res = await post(first, { 'hub.mode': 'publish', 'hub.url': topic });
      expect(res.status).to.equal(204);
      await topics.rec.waitFor(reads + 1, (r) => r.method === 'GET' && r.path === '/held');
      expect((await first.stop('SIGKILL')).signal).to.equal('SIGKILL');
      release();
      const rssBefore = notificationsAt(rss, '/notify').length;
      expect(websub.deliveries('/cb')).to.have.length(0);

      const second = await child(dir);
      const [delivered] = await websub.waitDeliveries(1, '/cb');
      expect(delivered!.body.toString()).to.equal(DOC('v2'));
      const notified = await rss.waitFor(rssBefore + 1, (r) => r.method === 'POST' && r.path === '/notify');
      expect(notified[rssBefore]!.body.toString()).to.equal(notifyBody(topic));
      expect(await second.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });
    });

    it('left unread is read by the running hub once older than PENDING_READ_ADOPT_AFTER_MS, not only at its next start', async () => {
      const h = await otherHub({ POLL_ENABLED: 'false', PENDING_READ_ADOPT_AFTER_MS: '200' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/orphan', { body: DOC('o1'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      topics.set('/orphan', { body: DOC('o2'), contentType: DOC_TYPE });
      expect(topics.fetches('/orphan')).to.have.length(0);
      // The record a read that never ended leaves (its process killed, its retries on the hub's
      // failure spent), made after this hub started: read at starts only, it waited for a restart.
      expect(await h.store.putPendingReads([topic], Date.now() - 1000)).to.deep.equal([topic]);
      const [delivered] = await sub.waitDeliveries(1);
      expect(delivered!.body.toString()).to.equal(DOC('o2'));
      await settled(h);
      expect(await h.store.listPendingReads()).to.deep.equal([]);
    });
  });

  describe("the hub named by its bare address (a feed's rel=hub of https://hub.example/)", () => {
    it('subscribes, publishes and delivers at POST /, as at /websub', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/at-root', { body: DOC('root 1'), contentType: DOC_TYPE });
      const res = await hub.postForm('/', { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect([res.status, await res.text()]).to.deep.equal([202, 'Accepted: the hub will verify this subscribe request with a GET to the callback.\n']);
      await sub.waitVerifications(1, 'subscribe');
      await settled(hub);
      topics.set('/at-root', { body: DOC('root 2'), contentType: DOC_TYPE });
      const pub = await hub.postForm('/', { 'hub.mode': 'publish', 'hub.url': topic });
      expect([pub.status, await pub.text()]).to.deep.equal([204, '']);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(DOC('root 2'));
    });

    it('names the hub in each delivery by the URL its subscribe request used, the latest one winning', async () => {
      // websub.rocks (and any subscriber that checks the hub it subscribed to) wants rel=hub to be
      // that URL exactly: subscribed through the root, deliveries named PUBLIC_URL/websub failed it.
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/named-hub', { body: DOC('named 1'), contentType: DOC_TYPE });
      const through = async (path: string, cb: string): Promise<void> => {
        const before = sub.verifications('subscribe').length;
        const res = await hub.postForm(path, { 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback(cb) });
        expect(res.status, await res.text()).to.equal(202);
        await sub.waitVerifications(before + 1, 'subscribe');
        await settled(hub);
      };
      const hubsNamed = async (count: number): Promise<string[][]> =>
        Promise.all(['/root', '/path', '/slash'].map(async (cb) => {
          const ds = await sub.waitDeliveries(count, cb);
          return parseLinks(ds[count - 1]!.headers['link']).filter((l) => l.rel === 'hub').map((l) => l.url);
        }));
      await through('/', '/root');
      await through('/websub', '/path');
      await through('/websub/', '/slash');
      topics.set('/named-hub', { body: DOC('named 2'), contentType: DOC_TYPE });
      expect((await publish(hub, topic)).status).to.equal(204);
      expect(await hubsNamed(1)).to.deep.equal([[`${hub.url}/`], [`${hub.url}/websub`], [`${hub.url}/websub/`]]);
      // A re-subscribe through another URL names that one from then on.
      await through('/websub', '/root');
      await through('/', '/path');
      topics.set('/named-hub', { body: DOC('named 3'), contentType: DOC_TYPE });
      expect((await hub.postForm('/', { 'hub.mode': 'publish', 'hub.url': topic })).status).to.equal(204);
      expect(await hubsNamed(2)).to.deep.equal([[`${hub.url}/websub`], [`${hub.url}/`], [`${hub.url}/websub/`]]);
    });

    it('a subscribe request sent in absolute form (as to a proxy) names the hub by the path of its target', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/absolute-hub', { body: DOC('absolute 1'), contentType: DOC_TYPE });
      const { port } = new URL(hub.url);
      for (const [target, cb] of [['http://hub.example/', '/abs-root'], ['http://hub.example/websub?x=1', '/abs-path']] as const) {
        const before = sub.verifications('subscribe').length;
        const body = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback(cb) }).toString();
        // node:http sends `path` as the request target as it is: here the absolute form.
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: target, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(body);
        });
        expect(status, target).to.equal(202);
        await sub.waitVerifications(before + 1, 'subscribe');
      }
      await settled(hub);
      topics.set('/absolute-hub', { body: DOC('absolute 2'), contentType: DOC_TYPE });
      expect((await publish(hub, topic)).status).to.equal(204);
      const named = await Promise.all(['/abs-root', '/abs-path'].map(async (cb) => parseLinks((await sub.waitDeliveries(1, cb))[0]!.headers['link']).filter((l) => l.rel === 'hub').map((l) => l.url)));
      expect(named).to.deep.equal([[`${hub.url}/`], [`${hub.url}/websub`]]);
    });

    it('a form at the root without hub.mode gets the WebSub refusal, not a 404', async () => {
      const text = await expectRefused(await hub.postForm('/', { 'hub.topic': 'http://blog.example/feed' }));
      expect(text).to.equal(await (await hub.postForm('/websub', { 'hub.topic': 'http://blog.example/feed' })).text());
    });

    // A POST to the root of a form type, or none, is read before it is routed, since only its
    // body tells a WebSub form from an XML-RPC call sent as a form (routes/root.ts).
    it('a subscribe form at the root, sent chunked or with no Content-Type, is still WebSub\'s: 202, then verified', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/read-at-root', { body: DOC('read 1'), contentType: DOC_TYPE });
      const { port } = new URL(hub.url);
      for (const [cb, headers] of [['/chunked', { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' }], ['/untyped', {}]] as const) {
        const before = sub.verifications('subscribe').length;
        const body = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback(cb) }).toString();
        const [status, text] = await new Promise<[number, string]>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
            let got = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (got += d));
            res.on('end', () => resolve([res.statusCode ?? 0, got]));
          });
          req.on('error', reject);
          // In two writes, so that a chunked body comes in two chunks.
          req.write(body.slice(0, 10));
          req.end(body.slice(10));
        });
        expect([status, text], cb).to.deep.equal([202, 'Accepted: the hub will verify this subscribe request with a GET to the callback.\n']);
        const verified = await sub.waitVerifications(before + 1, 'subscribe');
        expect(verified[before]!.query.get('hub.topic'), cb).to.equal(topic);
      }
    });

    it('a feed posted to the root without hub.mode gets WebSub\'s refusal (415, or 400 as a form), not an XML-RPC fault under 200: only a methodCall is an XML-RPC call', async () => {
      const feed = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>\n';
      for (const type of ['application/atom+xml', 'application/x-www-form-urlencoded']) {
        const post = (path: string): Promise<Response> => fetch(`${hub.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body: feed });
        const [atRoot, atPath] = [await post('/'), await post('/websub')];
        const text = await atRoot.text();
        expect(text, type).to.not.contain('<fault>');
        expect(atRoot.status, type).to.be.oneOf([400, 415]);
        expect([atRoot.status, text], type).to.deep.equal([atPath.status, await atPath.text()]);
      }
    });
  });

  // ---- PubSubHubbub 0.3 / 0.4 clients ---------------------------------------------------

  describe('PubSubHubbub 0.3 / 0.4 clients', () => {
    /** A form as PHP's curl sends an array of fields: multipart/form-data. */
    function multipart(fields: [string, string][]): Promise<Response> {
      const body = new FormData();
      for (const [k, v] of fields) body.append(k, v);
      return fetch(`${hub.url}/websub`, { method: 'POST', body });
    }

    it('takes a multipart/form-data subscribe (hub.verify=sync, hub.verify_token) and publish, and delivers', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('mp'), contentType: DOC_TYPE });
      const other = topics.set('/other', { body: DOC('mp2'), contentType: DOC_TYPE });
      const callback = sub.callback('/php');
      const fields: [string, string][] = [['hub.mode', 'subscribe'], ['hub.topic', topic], ['hub.callback', callback], ['hub.verify', 'sync'], ['hub.verify_token', 'tok-9'], ['hub.secret', 's3cret']];
      const res = await multipart(fields);
      expect(res.status, await res.text()).to.equal(202);
      const [v] = await sub.waitVerifications(1, 'subscribe', '/php');
      expect(v!.query.get('hub.verify_token')).to.equal('tok-9');
      await settled(hub);
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);
      const pub = await multipart([['hub.mode', 'publish'], ['hub.url', topic], ['hub.url', other]]);
      expect(pub.status, await pub.text()).to.equal(204);
      const [d] = await sub.waitDeliveries(1, '/php');
      expect(d!.body.toString()).to.equal(DOC('mp'));
      expect(validSignature(d!.headers['x-hub-signature'], 's3cret', d!.body)).to.equal(true);
      await topics.rec.waitFor(1, (r) => r.method === 'GET' && r.path === '/other');
    });

    /** X-Hub-Signature as a subscriber that checks `algorithm` expects it. */
    const signature = (algorithm: string, secret: string, body: Buffer): string => `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;

    it('signs with sha1 for a subscriber that sent hub.verify and hub.verify_token, which checks nothing else; with the setting (sha256) for a REC subscriber of the same topic', async () => {
      const topics = await topicServer();
      const old = await subscriber();
      const rec = await subscriber();
      const topic = topics.set('/feed', { body: DOC('both'), contentType: DOC_TYPE });
      await subscribed(hub, old, { 'hub.topic': topic, 'hub.callback': old.callback(), 'hub.verify': 'async', 'hub.verify_token': 'tok-7', 'hub.secret': 'old secret' });
      await subscribed(hub, rec, { 'hub.topic': topic, 'hub.callback': rec.callback(), 'hub.secret': 'rec secret' });
      await publish(hub, topic);
      const [[o], [r]] = await Promise.all([old.waitDeliveries(1), rec.waitDeliveries(1)]);
      expect(o!.headers['x-hub-signature']).to.equal(signature('sha1', 'old secret', o!.body));
      expect(r!.headers['x-hub-signature']).to.equal(signature('sha256', 'rec secret', r!.body));
      // Its subscriber can see why (GET /subscription, with its secret).
      const view = async (callback: string, secret: string): Promise<unknown> => {
        const q = new URLSearchParams({ topic, callback });
        const res = await fetch(`${hub.url}/subscription?${q}`, { headers: { authorization: `Bearer ${secret}` } });
        expect(res.status).to.equal(200);
        return ((await res.json()) as { signature?: unknown }).signature;
      };
      expect([await view(old.callback(), 'old secret'), await view(rec.callback(), 'rec secret')]).to.deep.equal(['sha1', 'sha256']);
    });

    it('a re-subscribe decides: hub.verify alone makes it sha1, a later subscribe without it returns to the setting', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('one'), contentType: DOC_TYPE });
      const form = { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'k' };
      await subscribed(hub, sub, form);
      await subscribed(hub, sub, { ...form, 'hub.verify': 'sync' });
      await publish(hub, topic);
      const [first] = await sub.waitDeliveries(1);
      expect(first!.headers['x-hub-signature']).to.equal(signature('sha1', 'k', first!.body));
      await subscribed(hub, sub, form);
      topics.set('/feed', { body: DOC('two'), contentType: DOC_TYPE });
      await publish(hub, topic);
      const [, second] = await sub.waitDeliveries(2);
      expect(second!.body.toString()).to.equal(DOC('two'));
      expect(second!.headers['x-hub-signature']).to.equal(signature('sha256', 'k', second!.body));
    });

    it('keeps the algorithm across a restart, for a subscription and for a request still being verified; the others follow a changed setting', async () => {
      const env = { WEBSUB_RETRY_BASE_MS: '600000', WEBSUB_VERIFY_ATTEMPTS: '4', POLL_ENABLED: 'false' };
      const first = await startTestHub(env);
      const topics = await topicServer();
      const [old, waiting, rec] = [await subscriber(), await subscriber(), await subscriber()];
      const topic = topics.set('/feed', { body: DOC('after the restart'), contentType: DOC_TYPE });
      const legacy = { 'hub.topic': topic, 'hub.verify': 'async', 'hub.verify_token': 'tok', 'hub.secret': 'k' };
      try {
        await subscribed(first, old, { ...legacy, 'hub.callback': old.callback() });
        await subscribed(first, rec, { 'hub.topic': topic, 'hub.callback': rec.callback(), 'hub.secret': 'k' });
        // Its callback busy: the request is still stored, unverified, when the hub stops.
        waiting.verifyStatuses = [503];
        expect((await subscribe(first, { ...legacy, 'hub.callback': waiting.callback() })).status).to.equal(202);
        await waiting.waitVerifications(1, 'subscribe');
      } finally {
        await first.close();
      }
      const second = await startTestHub({ ...env, WEBSUB_SIGNATURE_ALGORITHM: 'sha512' }, first.dataDir);
      hubs.push(second);
      await waiting.waitVerifications(2, 'subscribe');
      await settled(second);
      expect(await subscriptionsOf(second, topic)).to.have.length(3);
      await publish(second, topic);
      const got = await Promise.all([old, waiting, rec].map(async (s) => (await s.waitDeliveries(1))[0]!));
      expect(got.map((d) => d.headers['x-hub-signature'])).to.deep.equal([
        signature('sha1', 'k', got[0]!.body),
        signature('sha1', 'k', got[1]!.body),
        signature('sha512', 'k', got[2]!.body),
      ]);
    });

    it('refuses a multipart body it cannot read with 400, and a body that is no form with 415', async () => {
      const cb = 'http://127.0.0.1:1/cb';
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': 'http://127.0.0.1:1/feed', 'hub.callback': cb }).toString();
      const post = (type: string): Promise<Response> => fetch(`${hub.url}/websub`, { method: 'POST', headers: { 'content-type': type }, body: form });
      await expectRefused(await post('multipart/form-data; boundary=x'), 400);
      await expectRefused(await post('multipart/form-data'), 400);
      for (const type of ['application/json', 'text/plain']) await expectRefused(await post(type), 415);
    });

    it('publishes from parameters in the query string, with an empty body or none (as the reference hub read them)', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const paths = ['/q1', '/q2', '/q3'];
      const urls = paths.map((p) => topics.set(p, { body: DOC(p), contentType: DOC_TYPE }));
      for (const [i, url] of urls.entries()) await subscribed(hub, sub, { 'hub.topic': url, 'hub.callback': sub.callback(`/cb${i + 1}`) });
      const q = (url: string): string => `${hub.url}/websub?hub.mode=publish&hub.url=${encodeURIComponent(url)}`;
      const answers = [
        // curl -X POST 'hub?hub.mode=publish&hub.url=…': no body, no Content-Type
        await fetch(q(urls[0]!), { method: 'POST' }),
        await fetch(q(urls[1]!), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }),
        // the mode in the query, the URL in the body
        await fetch(`${hub.url}/websub?hub.mode=publish`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `hub.url=${encodeURIComponent(urls[2]!)}` }),
      ];
      for (const res of answers) expect([res.status, await res.text()]).to.deep.equal([204, '']);
      await sub.waitDeliveries(3);
      for (const [i, p] of paths.entries()) expect(sub.deliveries(`/cb${i + 1}`)[0]!.body.toString()).to.equal(DOC(p));
    });

    it("answers the PHP publisher library's ping 204, its only success, and a ping with a refused URL 202 naming it", async () => {
      // pubsubhubbub/php-publisher 2.x publish_update(): one curl POST, the body built by hand,
      // and `return $info['http_code'] == 204`.
      const topics = await topicServer();
      const sub = await subscriber();
      const urls = ['/p1', '/p2'].map((p) => topics.set(p, { body: DOC(p), contentType: DOC_TYPE }));
      for (const [i, url] of urls.entries()) await subscribed(hub, sub, { 'hub.topic': url, 'hub.callback': sub.callback(`/cb${i + 1}`) });
      const php = (topicUrls: string[]): Promise<Response> =>
        fetch(`${hub.url}/websub`, {
          method: 'POST',
          headers: { 'user-agent': 'PubSubHubbub-Publisher-PHP/1.0', accept: '*/*', 'content-type': 'application/x-www-form-urlencoded' },
          body: 'hub.mode=publish' + topicUrls.map((u) => `&hub.url=${encodeURIComponent(u)}`).join(''),
        });
      const ok = await php(urls);
      expect([ok.status, await ok.text()]).to.deep.equal([204, '']);
      await sub.waitDeliveries(2);
      expect(sub.deliveries('/cb1')[0]!.body.toString()).to.equal(DOC('/p1'));
      expect(sub.deliveries('/cb2')[0]!.body.toString()).to.equal(DOC('/p2'));
      const bad = 'http://user:pw@127.0.0.1/feed';
      const partly = await php([urls[0]!, bad]);
      expect([partly.status, await partly.text()]).to.deep.equal([202, `Accepted: ${urls[0]!}\nRefused: ${bad} (must not carry a user name or password)\n`]);
    });

    it('takes a subscribe whose parameters are in the query string; the body wins where both name one', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('qs'), contentType: DOC_TYPE });
      const query = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback('/from-query') });
      const res = await fetch(`${hub.url}/websub?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ 'hub.callback': sub.callback('/from-body') }).toString(),
      });
      expect(res.status, await res.text()).to.equal(202);
      await sub.waitVerifications(1, 'subscribe');
      await quiet(hub);
      expect(sub.verifications('subscribe').map((r) => r.path)).to.deep.equal(['/from-body']);
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([sub.callback('/from-body')]);
    });

    it('refuses hub.secret in the query string (400), with the rest of the form in the body or not, and asks the callback nothing', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('secret'), contentType: DOC_TYPE });
      const all = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback('/all'), 'hub.secret': 'in the logs' });
      const text = await expectRefused(await fetch(`${hub.url}/websub?${all}`, { method: 'POST' }), 400);
      expect(text).to.include('hub.secret');
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': sub.callback('/body') }).toString();
      const res = await fetch(`${hub.url}/websub?hub.secret=in+the+logs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
      await expectRefused(res, 400);
      await quiet(hub);
      expect(sub.verifications('subscribe')).to.deep.equal([]);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    });
  });

  // ---- delivery -----------------------------------------------------------------------

  describe('delivery', () => {
    it("sends the topic's body and Content-Type verbatim with one combined Link header, unsigned without a secret", async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      const type = 'application/atom+xml;charset=ISO-8859-1';
      const body = Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><feed><title>caf\xe9</title></feed>', 'latin1');
      topics.set('/atom', { body, contentType: type });
      const topic = topics.url('/atom?x=1'); // served whatever the query; the self URL keeps it
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      await publish(hub, topic);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.equals(body)).to.equal(true);
      expect(d!.headers['content-type']).to.equal(type);
      expect(d!.headers['link']).to.be.a('string');
      const links = parseLinks(d!.headers['link']);
      expect(links.filter((l) => l.rel === 'hub').map((l) => l.url)).to.deep.equal([`${hub.config.publicUrl}/websub`]);
      expect(links.filter((l) => l.rel === 'self').map((l) => l.url)).to.deep.equal([topic]);
      // Self first: a subscriber library still in use (npm `pubsubhubbub`) reads the first link as the topic.
      expect(links.map((l) => l.rel)).to.deep.equal(['self', 'hub']);
      expect(d!.headers['x-hub-signature']).to.equal(undefined);
    });

    it('a topic accepted as typed, with a space and ">", is a valid Link target: percent-encoded, so the header still parses', async () => {
      const topics = await topicServer();
      const sub = await subscriber();
      // Requested as the URL standard encodes it, which is what the hub fetches.
      topics.set('/odd%20name%3E.txt', { body: DOC('odd'), contentType: DOC_TYPE });
      const typed = topics.url('/odd name>.txt');
      await subscribed(hub, sub, { 'hub.topic': typed, 'hub.callback': sub.callback('/odd') });
      await publish(hub, typed);
      const [d] = await sub.waitDeliveries(1, '/odd');
      expect(d!.body.toString()).to.equal(DOC('odd'));
      const links = parseLinks(d!.headers['link']);
      expect(links.filter((l) => l.rel === 'hub').map((l) => l.url)).to.deep.equal([`${hub.config.publicUrl}/websub`]);
      expect(links.filter((l) => l.rel === 'self').map((l) => l.url)).to.deep.equal([topics.url('/odd%20name%3E.txt')]);
    });

    for (const [algorithm, hexLength] of [
      ['sha1', 40],
      ['sha256', 64],
      ['sha384', 96],
      ['sha512', 128],
    ] as const) {
      it(`signs with WEBSUB_SIGNATURE_ALGORITHM=${algorithm}`, async () => {
        const h = await otherHub({ WEBSUB_SIGNATURE_ALGORITHM: algorithm });
        const topics = await topicServer();
        const sub = await subscriber();
        const topic = topics.set('/feed', { body: DOC(algorithm), contentType: DOC_TYPE });
        await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'the shared secret' });
        await publish(h, topic);
        const [d] = await sub.waitDeliveries(1);
        const header = d!.headers['x-hub-signature'];
        expect(header).to.be.a('string');
        const expected = createHmac(algorithm, 'the shared secret').update(d!.body).digest('hex');
        expect(expected).to.have.length(hexLength);
        expect(header).to.equal(`${algorithm}=${expected}`);
      });
    }

    it('retries a 5xx with backoff and the identical body until it succeeds', async () => {
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '100' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('retry'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'retry-secret' });
      sub.deliveryStatuses = [500, 503];
      const fetched = topics.fetches('/feed').length;
      await publish(h, topic);
      const got = await sub.waitDeliveries(3);
      await quiet(h);
      expect(sub.deliveries()).to.have.length(3);
      for (const d of got) {
        expect(d.body.equals(got[0]!.body)).to.equal(true);
        expect(d.headers['content-type']).to.equal(DOC_TYPE);
        expect(d.headers['x-hub-signature']).to.equal(got[0]!.headers['x-hub-signature']);
      }
      expect(got[0]!.body.toString()).to.equal(DOC('retry'));
      expect(topics.fetches('/feed').length - fetched, 'a retry does not fetch again').to.equal(1);
      const [s] = await subscriptionsOf(h, topic);
      expect(s).to.include({ ctErrors: 2, ctConsecutiveErrors: 0, ctUpdates: 1 });
    });

    it('waits for a subscriber\'s Retry-After (429 or 503) before the next attempt, up to WEBSUB_RETRY_MAX_MS', async () => {
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_RETRY_MAX_MS: '10000' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('later'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.deliveryStatuses = [429, 503];
      sub.refusalHeaders = { 'retry-after': '2' };
      await publish(h, topic);
      const got = await sub.rec.waitFor(3, (r) => r.method === 'POST', 15_000);
      // A lower bound only: the backoff alone would have tried again within 100–400 ms.
      expect(got[1]!.at - got[0]!.at, 'ms from the 429 to the next attempt').to.be.at.least(1900);
      expect(got[2]!.at - got[1]!.at, 'ms from the 503 to the next attempt').to.be.at.least(1900);
      expect(got[2]!.body.toString()).to.equal(DOC('later'));
    });

    it('reads a Retry-After given as an HTTP date (RFC 9110 §10.2.3) as well as in seconds', async () => {
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_RETRY_MAX_MS: '10000' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('dated'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.deliveryStatuses = [503];
      // Whole seconds (an HTTP date has no finer ones), 3 to 4 s ahead of the publish.
      sub.refusalHeaders = { 'retry-after': new Date(Math.ceil(Date.now() / 1000) * 1000 + 3000).toUTCString() };
      await publish(h, topic);
      const got = await sub.rec.waitFor(2, (r) => r.method === 'POST', 15_000);
      // A lower bound only: read as unreadable, the backoff alone would have tried again within 100–200 ms.
      expect(got[1]!.at - got[0]!.at, 'ms from the 503 to the next attempt').to.be.at.least(1900);
      expect(got[1]!.body.toString()).to.equal(DOC('dated'));
    });

    it('a version that waited out a Retry-After still waits for its host\'s probe: not given up for having outlived the backoffs\' window', async () => {
      // Window of the backoffs: 100 + 200 + 400 + 800 ms. Each subscription's first attempt is
      // answered 503 with Retry-After: 2 (the pair in flight together, so the circuit opens on
      // both answers), every later one 200 after 300 ms. Two seconds on, one subscription's
      // attempt is the circuit's probe and the other's waits for it: counted against the window,
      // which the asked two seconds had already outrun, that one was given up, its version lost.
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '100', WEBSUB_MAX_ATTEMPTS: '5', BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '200' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('probed'), contentType: DOC_TYPE });
      for (const path of ['/a', '/b']) await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(path) });
      const verify = sub.rec.handler;
      let posts = 0;
      sub.rec.handler = async (req, res) => {
        if (req.method !== 'POST') return verify(req, res);
        const refuse = ++posts <= 2;
        await sleep(refuse ? 100 : 300);
        res.writeHead(refuse ? 503 : 200, { 'content-type': 'text/plain', ...(refuse && { 'retry-after': '2' }) }).end(refuse ? 'later' : 'thanks');
      };
      await publish(h, topic);
      // Delivered to both, as recorded (given up on, one would keep its failure).
      const tallies = async (): Promise<[string, number, number][]> =>
        (await subscriptionsOf(h, topic)).map((s): [string, number, number] => [new URL(s.url).pathname, s.ctUpdates, s.ctConsecutiveErrors]).sort();
      await until(async () => !(await tallies()).some(([, updates]) => updates === 0), { everyMs: 100 });
      expect(await tallies()).to.deep.equal([
        ['/a', 1, 0],
        ['/b', 1, 0],
      ]);
      expect(sub.deliveries().map((r) => r.path).sort()).to.deep.equal(['/a', '/a', '/b', '/b']);
    });

    it('an rssCloud ping waits for its first attempts, not for an earlier version\'s retries: answered while a WebSub subscriber of the topic waits a minute for one', async () => {
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '60000' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('v1'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.deliveryStatuses = [500, 500, 500];
      const pinged = async (): Promise<string> => (await ping(h, topic, { signal: AbortSignal.timeout(15_000) })).msg;
      // Version 1's first attempt fails: its retry is a minute away.
      expect(await pinged()).to.equal(MSG.pinged);
      expect(sub.deliveries()).to.have.length(1);
      topics.set('/feed', { body: DOC('v2'), contentType: DOC_TYPE });
      expect(await pinged()).to.equal(MSG.pinged);
      topics.set('/feed', { body: DOC('v3'), contentType: DOC_TYPE });
      expect(await pinged()).to.equal(MSG.pinged);
      // Answered without anything sent meanwhile: versions 2 and 3 wait behind 1, in order.
      expect(sub.deliveries().map((d) => d.body.toString())).to.deep.equal([DOC('v1')]);
    });

    it('never delivers an older version after a newer one: a change made during retries waits its turn', async () => {
      const h = await otherHub({ WEBSUB_RETRY_BASE_MS: '200' });
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('v1'), contentType: DOC_TYPE });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.deliveryStatuses = [500];
      await publish(h, topic);
      await sub.waitDeliveries(1);
      topics.set('/feed', { body: DOC('v2'), contentType: DOC_TYPE });
      await publishAndFetch(h, topics, topic);
      await sub.waitDeliveries(3);
      await quiet(h);
      expect(sub.deliveries().map((d) => d.body.toString())).to.deep.equal([DOC('v1'), DOC('v1'), DOC('v2')]);
    });

    describe('OUTBOX_MAX_BYTES', function () {
      this.timeout(40_000);
      // 40 KB each (over 16 KB: the embedded store keeps each in a file of its own).
      const big = (name: string): string => `${DOC(name)}${'x'.repeat(40_000)}\n`;
      it('keeps what waits for a subscriber that stays down within the bound: the older versions are given up, the newest reach it once it is back', async () => {
        // Retries 1 s apart and more: the retry window (~2 minutes) outlasts the test, so without
        // the bound every version would still be in the outbox. No circuit breaker in the way.
        const h = await otherHub({ OUTBOX_MAX_BYTES: '100000', WEBSUB_RETRY_BASE_MS: '1000', BREAKER_FAILURES: '1000' });
        const topics = await topicServer();
        const sub = await subscriber();
        const topic = topics.set('/big', { body: big('v0'), contentType: DOC_TYPE });
        await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
        sub.deliveryStatuses = Array<number>(1000).fill(500);
        for (let n = 1; n <= 10; n++) {
          topics.set('/big', { body: big(`v${n}`), contentType: DOC_TYPE });
          await publishAndFetch(h, topics, topic);
        }
        // Not settled(h): that waits for each version's first attempt, which waits behind the
        // retries of the version before it. Two fit within the bound, three do not.
        const kept = await outboxWhen(h, (bodies) => bodies.length <= 2 && bodies.includes(big('v10')));
        expect(kept, 'the two newest versions, and no other').to.deep.equal([big('v9'), big('v10')]);
        const metrics = await (await fetch(`${h.url}/metrics`)).text();
        const held = Number(/^pushbutton_outbox_bytes (\d+)$/m.exec(metrics)?.[1]);
        expect(held, 'the bytes this process holds for delivery').to.equal(Buffer.byteLength(big('v9')) + Buffer.byteLength(big('v10')));

        // Back up: the lane skips what was given up and delivers what is left, in order.
        const backAt = Date.now();
        sub.deliveryStatuses = [];
        await sub.rec.waitFor(1, (r) => r.method === 'POST' && r.body.toString() === big('v10'), 20_000);
        await quiet(h);
        const answered = sub.deliveries();
        const ok = answered.filter((d) => d.at >= backAt).map((d) => d.body.toString());
        expect(ok, 'what reached it once it was back').to.deep.equal([big('v9'), big('v10')]);
        expect(await h.store.listOutbox(), 'the outbox, once delivered').to.deep.equal([]);
        // A version given up is the hub's doing, not a failure of the subscriber's: only the
        // attempts it answered 500 count.
        const [s] = await subscriptionsOf(h, topic);
        expect(s).to.include({ ctUpdates: 2, ctErrors: answered.length - ok.length });
      });

      it("gives up from the topic holding the most bytes first: another topic's versions, though older, are kept", async () => {
        // Room for five: each time it is over, the busy topic's oldest versions go (down to nine
        // tenths of the bound), and the quiet topic's two stay, though they are the oldest.
        const h = await otherHub({ OUTBOX_MAX_BYTES: '210000', WEBSUB_RETRY_BASE_MS: '60000', BREAKER_FAILURES: '1000' });
        const topics = await topicServer();
        const sub = await subscriber();
        const quietTopic = topics.set('/quiet', { body: big('quiet 0'), contentType: DOC_TYPE });
        const busyTopic = topics.set('/busy', { body: big('busy 0'), contentType: DOC_TYPE });
        await subscribed(h, sub, { 'hub.topic': quietTopic, 'hub.callback': sub.callback('/quiet') });
        await subscribed(h, sub, { 'hub.topic': busyTopic, 'hub.callback': sub.callback('/busy') });
        sub.deliveryStatuses = Array<number>(1000).fill(500);
        for (const n of [1, 2]) {
          topics.set('/quiet', { body: big(`quiet ${n}`), contentType: DOC_TYPE });
          await publishAndFetch(h, topics, quietTopic);
        }
        await outboxWhen(h, (bodies) => bodies.includes(big('quiet 2')));
        for (let n = 1; n <= 10; n++) {
          topics.set('/busy', { body: big(`busy ${n}`), contentType: DOC_TYPE });
          await publishAndFetch(h, topics, busyTopic);
        }
        const kept = await outboxWhen(h, (bodies) => bodies.length <= 4 && bodies.includes(big('busy 10')));
        expect(kept).to.deep.equal([big('quiet 1'), big('quiet 2'), big('busy 9'), big('busy 10')]);
      });

      it("gives up a version that a later one of its topic follows before any topic's newest: their subscribers hear of the topic again", async () => {
        // 100 KB alone on one topic, two of 30 KB on another: over the bound with the second, the
        // first of those goes, not the larger topic's only (newest) version.
        const h = await otherHub({ OUTBOX_MAX_BYTES: '150000', WEBSUB_RETRY_BASE_MS: '60000', BREAKER_FAILURES: '1000' });
        const topics = await topicServer();
        const sub = await subscriber();
        const sized = (name: string, bytes: number): string => `${DOC(name)}${'x'.repeat(bytes)}\n`;
        const largeTopic = topics.set('/large', { body: sized('large 0', 100_000), contentType: DOC_TYPE });
        const smallTopic = topics.set('/small', { body: sized('small 0', 30_000), contentType: DOC_TYPE });
        await subscribed(h, sub, { 'hub.topic': largeTopic, 'hub.callback': sub.callback('/large') });
        await subscribed(h, sub, { 'hub.topic': smallTopic, 'hub.callback': sub.callback('/small') });
        sub.deliveryStatuses = Array<number>(1000).fill(500);
        topics.set('/large', { body: sized('large 1', 100_000), contentType: DOC_TYPE });
        await publishAndFetch(h, topics, largeTopic);
        await outboxWhen(h, (bodies) => bodies.includes(sized('large 1', 100_000)));
        for (const n of [1, 2]) {
          topics.set('/small', { body: sized(`small ${n}`, 30_000), contentType: DOC_TYPE });
          await publishAndFetch(h, topics, smallTopic);
          await outboxWhen(h, (bodies) => bodies.includes(sized(`small ${n}`, 30_000)));
        }
        const kept = await outboxWhen(h, (bodies) => bodies.length <= 2);
        expect(kept).to.deep.equal([sized('large 1', 100_000), sized('small 2', 30_000)]);
      });

      it("then gives up topics' newest versions, ranked again by what each still holds: a larger one before a smaller", async () => {
        // x: two versions (10 KB superseded by 5 KB), y: 12 KB, then z: 100 KB (the one just
        // added). Over the bound, x's superseded version goes first and leaves 8 KB too many:
        // y's 12 KB goes next, x's 5 KB newest stays (ranked as before, x held more than y).
        const sized = (name: string, bytes: number): string => `${DOC(name)}${'x'.repeat(bytes)}\n`;
        const [x1, x2, y1, z1] = [sized('x 1', 10_000), sized('x 2', 5_000), sized('y 1', 12_000), sized('z 1', 100_000)];
        const size = (b: string): number => Buffer.byteLength(b);
        const target = size(x2) + size(y1) + size(z1) - 8_000;
        const bound = Math.ceil(target / 0.9);
        expect(size(x1) + size(x2) + size(y1) + size(z1)).to.be.above(bound);
        const h = await otherHub({ OUTBOX_MAX_BYTES: String(bound), WEBSUB_RETRY_BASE_MS: '60000', BREAKER_FAILURES: '1000' });
        const topics = await topicServer();
        const sub = await subscriber();
        const urls = { x: topics.set('/x', { body: DOC('x 0'), contentType: DOC_TYPE }), y: topics.set('/y', { body: DOC('y 0'), contentType: DOC_TYPE }), z: topics.set('/z', { body: DOC('z 0'), contentType: DOC_TYPE }) };
        for (const [name, url] of Object.entries(urls)) await subscribed(h, sub, { 'hub.topic': url, 'hub.callback': sub.callback(`/${name}`) });
        sub.deliveryStatuses = Array<number>(1000).fill(500);
        for (const [name, body] of [['x', x1], ['x', x2], ['y', y1], ['z', z1]] as const) {
          topics.set(`/${name}`, { body, contentType: DOC_TYPE });
          await publishAndFetch(h, topics, urls[name]);
          await outboxWhen(h, (bodies) => bodies.includes(body));
        }
        const kept = await outboxWhen(h, (bodies) => bodies.length <= 2);
        expect(kept).to.deep.equal([x2, z1]);
      });
    });

    it('ends the subscription on 410 Gone: no retry and no later deliveries', async () => {
      const hub = await otherHub({});
      const topics = await topicServer();
      const sub = await subscriber();
      const topic = topics.set('/feed', { body: DOC('gone'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.deliveryStatuses = [410];
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
      topics.set('/feed', { body: DOC('gone again'), contentType: DOC_TYPE });
      await publishAndFetch(hub, topics, topic);
      await quiet(hub);
      expect(sub.deliveries()).to.have.length(1);
    });

    it('counts a 3xx from the subscriber as a failure and does not follow it', async () => {
      const hub = await otherHub({});
      const topics = await topicServer();
      const sub = await subscriber();
      const elsewhere = await subscriber();
      const topic = topics.set('/feed', { body: DOC('moved'), contentType: DOC_TYPE });
      await subscribed(hub, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      sub.redirectTo = elsewhere.callback('/moved');
      await publish(hub, topic);
      await sub.waitDeliveries(1);
      await quiet(hub);
      expect(elsewhere.rec.requests).to.have.length(0);
      const [s] = await subscriptionsOf(hub, topic);
      expect(s, 'a redirect does not end the subscription').to.not.equal(undefined);
      expect(s!.ctErrors).to.equal(1);
      expect(s!.ctUpdates).to.equal(0);
    });
  });

  // ---- authenticated fat pings --------------------------------------------------------

  describe('fat pings (PUBLISHER_SECRETS)', () => {
    let h: TestHub;
    let topics: TopicServer;
    const SECRET = 's3cret';
    const ATOM = (t: string): string => `<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>${t}</title></feed>\n`;

    before(async () => {
      topics = await TopicServer.start();
      h = await startTestHub({ PUBLISHER_SECRETS: `${topics.rec.url}=${SECRET}` });
    });
    after(async () => {
      await h.destroy();
      await topics.close();
    });

    function fatPing(topic: string, body: string, signature?: string): Promise<Response> {
      const headers: Record<string, string> = { 'content-type': 'application/atom+xml' };
      if (signature !== undefined) headers['x-hub-signature'] = signature;
      return fetch(`${h.url}/websub?hub.mode=publish&hub.topic=${encodeURIComponent(topic)}`, { method: 'POST', headers, body });
    }
    const signed = (body: string, secret = SECRET): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    /**
     * A topic served 300 ms late (so that requests queue behind a read of it), subscribed to and
     * read once; `serve` sets its next state. `before` is how many deliveries its subscriber had then.
     */
    async function slowTopic(path: string): Promise<{ topic: string; sub: Subscriber; before: number; serve: (state: string) => void }> {
      const sub = await subscriber();
      const serve = (state: string): void => void topics.set(path, { body: DOC(state), contentType: 'text/plain', delayMs: 300 });
      serve('read 1');
      const topic = topics.url(path);
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      expect((await ping(h, topic)).success).to.equal(true);
      await quiet(h);
      return { topic, sub, before: sub.deliveries().length, serve };
    }
    /**
     * Waits until the topic server has the next read of `path`, which it answers 300 ms later:
     * what is sent from now on queues behind it. (50 ms after the ping was not always enough on
     * a loaded machine with the PostgreSQL store: the read had not started, and the order changed.)
     */
    async function readUnderWay(path: string): Promise<void> {
      const reads = topics.fetches(path).length;
      await topics.rec.waitFor(reads + 1, (r) => r.method === 'GET' && r.path === path);
    }

    it('delivers exactly the pushed body and Content-Type without fetching the topic', async () => {
      const sub = await subscriber();
      const topic = topics.url('/pushed');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback(), 'hub.secret': 'sub-secret' });
      const body = ATOM('pushed');
      const res = await fatPing(topic, body, signed(body));
      expect(res.status, await res.text()).to.equal(202);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(body);
      expect(d!.headers['content-type']).to.equal('application/atom+xml');
      expect(validSignature(d!.headers['x-hub-signature'], 'sub-secret', d!.body)).to.equal(true);
      expect(parseLinks(d!.headers['link'])).to.deep.include({ url: topic, rel: 'self' });
      await quiet(h);
      expect(topics.fetches('/pushed')).to.have.length(0);
      expect(sub.deliveries()).to.have.length(1);
    });

    it('a fat ping of application/xml posted to the root is a fat ping, not an XML-RPC call', async () => {
      const sub = await subscriber();
      const topic = topics.url('/pushed-at-root');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM('pushed at the root');
      const res = await fetch(`${h.url}/?hub.mode=publish&hub.topic=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/xml', 'x-hub-signature': signed(body) },
        body,
      });
      expect([res.status, await res.text()]).to.deep.equal([202, `Accepted: ${topic}\n`]);
      const [d] = await sub.waitDeliveries(1);
      expect([d!.body.toString(), d!.headers['content-type']]).to.deep.equal([body, 'application/xml']);
    });

    it("a fat ping posted to the root with its feed's own type, which is no XML-RPC type, is a fat ping: hub.mode in its query says so", async () => {
      const sub = await subscriber();
      const topic = topics.url('/pushed-at-root-as-atom');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM('pushed at the root as Atom');
      const res = await fetch(`${h.url}/?hub.mode=publish&hub.topic=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/atom+xml', 'x-hub-signature': signed(body) },
        body,
      });
      expect([res.status, await res.text()]).to.deep.equal([202, `Accepted: ${topic}\n`]);
      const [d] = await sub.waitDeliveries(1);
      expect([d!.body.toString(), d!.headers['content-type']]).to.deep.equal([body, 'application/atom+xml']);
    });

    it('a fat ping may name its topic hub.url, as a publish does: delivered the same', async () => {
      const sub = await subscriber();
      const topic = topics.url('/pushed-as-url');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM('pushed as hub.url');
      const res = await fetch(`${h.url}/websub?hub.mode=publish&hub.url=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/atom+xml', 'x-hub-signature': signed(body) },
        body,
      });
      expect([res.status, await res.text()]).to.deep.equal([202, `Accepted: ${topic}\n`]);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(body);
      expect(topics.fetches('/pushed-as-url')).to.have.length(0);
    });

    it("a body with no signature at all (GitHub's webhook set to JSON) is a publish: the hub reads the topic, the body goes nowhere", async () => {
      // People point a GitHub Pages webhook at hub?hub.mode=publish&hub.url=<feed> (Superfeedr's
      // instructions); set to JSON, GitHub posts its push event as application/json, unsigned
      // when the hook has no secret. Refused as an unsigned fat ping, nothing was delivered.
      const sub = await subscriber();
      const topic = topics.set('/github-pages.atom', { body: ATOM('before the build'), contentType: 'application/atom+xml' });
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      await quiet(h);
      topics.set('/github-pages.atom', { body: ATOM('built by Pages'), contentType: 'application/atom+xml' });
      const reads = topics.fetches('/github-pages.atom').length;
      const res = await fetch(`${h.url}/websub?hub.mode=publish&hub.url=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'user-agent': 'GitHub-Hookshot/abc1234' },
        body: JSON.stringify({ ref: 'refs/heads/gh-pages', commits: [{ message: 'new post' }] }),
      });
      expect([res.status, await res.text()]).to.deep.equal([204, '']);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(ATOM('built by Pages'));
      expect(topics.fetches('/github-pages.atom')).to.have.length(reads + 1);
      // Signed wrongly, a body is still refused: its sender meant to push content.
      const bad = await fetch(`${h.url}/websub?hub.mode=publish&hub.url=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature': 'sha1=0000' },
        body: '{}',
      });
      expect(bad.status).to.equal(403);
      await quiet(h);
      expect(sub.deliveries()).to.have.length(1);
    });

    it('a fat ping larger than a form may be (200 KB; forms stop at 64 KB) is delivered whole', async () => {
      const sub = await subscriber();
      const topic = topics.url('/large-push');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM(`large ${'x'.repeat(200 * 1024)}`);
      const res = await fatPing(topic, body, signed(body));
      expect(res.status, await res.text()).to.equal(202);
      const [d] = await sub.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(body);
    });

    it('a fat ping that comes while a read runs and another is queued gets its own turn: its content is delivered', async () => {
      const { topic, sub, before, serve } = await slowTopic('/queued-fat');
      serve('read 2');
      const reading = ping(h, topic);
      await readUnderWay('/queued-fat');
      expect((await publish(h, topic)).status).to.equal(204);
      await sleep(50);
      const body = ATOM('pushed while reads were queued');
      expect((await fatPing(topic, body, signed(body))).status).to.equal(202);
      await reading;
      await sub.waitDeliveries(before + 2);
      await quiet(h);
      expect(sub.deliveries().slice(before).map((d) => d.body.toString())).to.deep.equal([DOC('read 2'), body]);
    });

    it('a ping that comes while a fat ping is queued reads the topic after it: the change it announces is delivered', async () => {
      const { topic, sub, before, serve } = await slowTopic('/fat-then-ping');
      serve('read 2');
      const reading = ping(h, topic);
      await readUnderWay('/fat-then-ping');
      const body = ATOM('pushed between two reads');
      // The hub says 'published' as it puts a fat ping in the topic's line, in the same turn.
      const queued = new Promise<void>((resolve) => {
        const seen = (url: string): void => {
          if (url !== topic) return;
          h.hub.off('published', seen);
          resolve();
        };
        h.hub.on('published', seen);
      });
      const pushing = fatPing(topic, body, signed(body));
      await queued;
      serve('read 3');
      const fetched = topics.fetches('/fat-then-ping').length;
      expect((await ping(h, topic)).success).to.equal(true);
      expect(topics.fetches('/fat-then-ping').length, 'the topic was read for the last ping').to.be.greaterThan(fetched);
      expect((await pushing).status).to.equal(202);
      await reading;
      await sub.waitDeliveries(before + 3);
      await quiet(h);
      expect(sub.deliveries().slice(before).map((d) => d.body.toString())).to.deep.equal([DOC('read 2'), body, DOC('read 3')]);
    });

    it('a page on another origin may send one: OPTIONS /websub allows X-Hub-Signature and a feed\'s Content-Type', async () => {
      const res = await fetch(`${h.url}/websub?hub.mode=publish&hub.topic=${encodeURIComponent(topics.url('/from-a-page'))}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://blog.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-hub-signature' },
      });
      expect(res.status).to.equal(204);
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      expect(res.headers.get('access-control-allow-methods')).to.match(/\bPOST\b/);
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      expect(allowed).to.include.members(['content-type', 'x-hub-signature']);
    });

    it('never delivers unsigned content: a body without a signature is a publish, the topic read from its origin', async () => {
      const sub = await subscriber();
      const topic = topics.url('/unsigned');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const reads = topics.fetches('/unsigned').length;
      const res = await fatPing(topic, ATOM('unsigned'));
      expect(res.status, await res.text()).to.equal(204);
      // The topic has nothing to serve (404): the read fails and nothing goes out.
      await topics.rec.waitFor(reads + 1, (r) => r.method === 'GET' && r.path === '/unsigned');
      await quiet(h);
      expect(sub.deliveries()).to.have.length(0);
    });

    it('refuses a bad signature with 403 and delivers nothing', async () => {
      const sub = await subscriber();
      const topic = topics.url('/forged');
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM('forged');
      await expectRefused(await fatPing(topic, body, signed(body, 'not-the-secret')), 403);
      await expectRefused(await fatPing(topic, body, signed(`${body} `)), 403);
      await expectRefused(await fatPing(topic, body, 'sha256=zz'), 403);
      await quiet(h);
      expect(sub.deliveries()).to.have.length(0);
    });

    it('refuses a topic whose origin has no configured secret with 403', async () => {
      const sub = await subscriber();
      const topic = `http://127.0.0.1:${sub.rec.port}/feed`; // same host, another port: another origin
      await subscribed(h, sub, { 'hub.topic': topic, 'hub.callback': sub.callback() });
      const body = ATOM('elsewhere');
      await expectRefused(await fatPing(topic, body, signed(body)), 403);
      await quiet(h);
      expect(sub.deliveries()).to.have.length(0);
    });
  });

  // ---- across protocols ---------------------------------------------------------------

  describe('across protocols', () => {
    it('one change, one fetch, each subscriber once: rssCloud ping → WebSub full content, WebSub publish → rssCloud bare', async () => {
      const topics = await topicServer();
      const ws = await subscriber();
      const rss = await subscriber();
      const topic = topics.set('/feed', { body: DOC('v1'), contentType: DOC_TYPE });

      // An rssCloud subscriber without domain: the hub test-POSTs to 127.0.0.1:<port><path>.
      const pn = await hub.postForm('/pleaseNotify', { port: String(rss.rec.port), path: '/notify', protocol: 'http-post', url1: topic });
      expect(await pn.text()).to.contain('success="true"');
      expect(rss.deliveries('/notify')).to.have.length(1);
      await subscribed(hub, ws, { 'hub.topic': topic, 'hub.callback': ws.callback('/ws'), 'hub.secret': 'cross' });

      // rssCloud → WebSub
      topics.set('/feed', { body: DOC('v2'), contentType: DOC_TYPE });
      let fetched = topics.fetches('/feed').length;
      const ping = await hub.postForm('/ping', { url: topic });
      expect(await ping.text()).to.contain('Thanks for the ping.');
      const [d] = await ws.waitDeliveries(1);
      expect(d!.body.toString()).to.equal(DOC('v2'));
      expect(d!.headers['content-type']).to.equal(DOC_TYPE);
      const links = parseLinks(d!.headers['link']);
      expect(links).to.deep.include({ url: `${hub.config.publicUrl}/websub`, rel: 'hub' });
      expect(links).to.deep.include({ url: topic, rel: 'self' });
      expect(validSignature(d!.headers['x-hub-signature'], 'cross', d!.body)).to.equal(true);
      await rss.waitDeliveries(2, '/notify');
      await quiet(hub);
      expect(topics.fetches('/feed').length - fetched).to.equal(1);
      expect(ws.deliveries()).to.have.length(1);
      expect(rss.deliveries('/notify')).to.have.length(2);

      // WebSub → rssCloud
      topics.set('/feed', { body: DOC('v3'), contentType: DOC_TYPE });
      fetched = topics.fetches('/feed').length;
      const pub = await publish(hub, topic);
      expect(pub.status).to.equal(204);
      const notes = await rss.waitDeliveries(3, '/notify');
      const note = notes[2]!;
      expect(note.headers['content-type']).to.match(/^application\/x-www-form-urlencoded/);
      expect(note.body.toString()).to.equal(new URLSearchParams({ url: topic }).toString());
      const [, d3] = await ws.waitDeliveries(2);
      expect(d3!.body.toString()).to.equal(DOC('v3'));
      await quiet(hub);
      expect(topics.fetches('/feed').length - fetched).to.equal(1);
      expect(ws.deliveries()).to.have.length(2);
      expect(rss.deliveries('/notify')).to.have.length(3);
    });
  });

  // ---- discovery ----------------------------------------------------------------------

  describe('discovery', () => {
    it('GET /websub?hub.mode=discover reports the hubs of the Link header and of the feed body', async () => {
      const topics = await topicServer();
      const url = topics.url('/feed');
      topics.set('/feed', {
        contentType: 'application/rss+xml',
        headers: { link: '<https://hub-a.example/>; rel="hub"' },
        body: `<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>d</title>
<atom:link rel="hub" href="https://hub-b.example/websub"/>
<atom:link rel="self" href="${url}"/>
</channel></rss>`,
      });
      const res = await fetch(`${hub.url}/websub?hub.mode=discover&hub.topic=${encodeURIComponent(url)}`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      const found = (await res.json()) as { hubs: string[]; self: string; format: string };
      expect(found.hubs).to.deep.equal(['https://hub-a.example/', 'https://hub-b.example/websub']);
      expect(found.self).to.equal(url);
      expect(found.format).to.equal('rss');
      await expectRefused(await fetch(`${hub.url}/websub?hub.mode=discover`));
    });
  });
});
