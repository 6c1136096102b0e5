// The WebSub subscribers people run, each played by a real server on 127.0.0.1 that answers as
// that implementation does (read from its source for facts: what it sends, what it checks,
// what it answers), against one hub over real HTTP. websub.test.ts holds the REC's rules;
// here each test is one subscriber's habits, which the hub must meet for its users.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { expect } from 'chai';
import { recorderPool, sleep, type Recorder, type Recorded } from './helpers/recorder.js';
import { bodyWork, startTestHub, type TestHub } from './helpers/hub.js';
import { TopicServer, publish, settled, subscriptionsOf } from './helpers/websub.js';

const ATOM = 'application/atom+xml';
const feed = (title: string): string => `<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>${title}</title></feed>`;

/** How long nothing must happen, after the hub is idle, to count as "nothing happened". */
const QUIET_MS = 300;

describe('WebSub subscribers in the wild', function () {
  let hub: TestHub;
  let topics: TopicServer;
  const servers = recorderPool();
  const server = servers.start;

  before(async () => {
    // Short retries: NewsBlur's 429 below is waited out in a fraction of a second. Every
    // delivery signed on the worker thread (BodyThread): the signatures checked below are its.
    hub = await startTestHub({ WEBSUB_RETRY_BASE_MS: '50', WEBSUB_RETRY_MAX_MS: '200', BODY_THREAD_MIN_BYTES: '1' });
    topics = await TopicServer.start();
  });
  after(async () => {
    await hub.destroy();
    await topics.close();
  });
  afterEach(() => servers.closeAll());

  /** A form body sent as the subscriber builds it, byte for byte. */
  function postRaw(body: string): Promise<Response> {
    return fetch(`${hub.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  }
  const gets = (rec: Recorder, mode?: string): Recorded[] => rec.matching((r) => r.method === 'GET' && (mode === undefined || r.query.get('hub.mode') === mode));
  const posts = (rec: Recorder): Recorded[] => rec.matching((r) => r.method === 'POST');
  const text = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(body);
  };
  async function quiet(): Promise<void> {
    await settled(hub);
    await sleep(QUIET_MS);
  }

  // FreshRSS, p/api/pshb.php and FreshRSS_Feed::pubSubHubbubSubscribe (app/Models/Feed.php).
  // Subscribes with hub.verify=sync and no lease or secret, to a callback ?k=<key>; takes any
  // 2xx. Answers a subscribe verification with the bare challenge, Connection: close; declines
  // (422) an unsubscribe while its own lease runs, since it did not ask for it; parses the
  // delivered body as the feed (SimplePie; rel=self from the feed itself, its registered URL when
  // they differ), so the body must be the feed as served; answers a delivery "Done: n" and, once
  // no user reads the feed any more, 410 Gone, its way of ending the subscription. The Link
  // header is read here as the Recommendation's subscribers read it (`<url>; rel="x"`).
  it('FreshRSS: verified, the delivery is the feed with a Link naming the topic, a stranger\'s unsubscribe is declined, and its 410 ends the subscription', async () => {
    const topic = topics.set('/freshrss.xml', { body: feed('f1'), contentType: ATOM });
    const key = randomBytes(20).toString('hex');
    const state = { users: 1, leaseEnd: 0, selves: [] as string[], hubs: [] as string[], bodies: [] as string[] };
    const fresh = await server((req, res) => {
      if (req.path !== '/api/pshb.php' || req.query.get('k') !== key) return text(res, 404, 'Feed key not found!');
      if (state.users === 0) return text(res, 410, 'Nobody subscribes to this feed anymore!');
      const mode = req.query.get('hub.mode');
      if (mode === 'subscribe') {
        const lease = Number.parseInt(req.query.get('hub.lease_seconds') ?? '', 10);
        if (lease > 60) state.leaseEnd = Date.now() + lease * 1000;
        return text(res, 200, req.query.get('hub.challenge') ?? '', { connection: 'close' });
      }
      if (mode === 'unsubscribe') {
        if (state.leaseEnd === 0 || state.leaseEnd < Date.now()) return text(res, 200, req.query.get('hub.challenge') ?? '', { connection: 'close' });
        return text(res, 422, 'We did not ask to unsubscribe!');
      }
      if (req.body.length === 0) return text(res, 422, 'Missing XML payload!');
      state.bodies.push(req.body.toString());
      const links = new Map<string, string>();
      for (const m of String(req.headers['link'] ?? '').matchAll(/<([^>]+)>;\s*rel="([^"]+)"/g)) links.set(m[2]!, m[1]!);
      state.selves.push(links.get('self') ?? '');
      state.hubs.push(links.get('hub') ?? '');
      text(res, 200, 'Done: 1\n');
    });
    const callback = `${fresh.url}/api/pshb.php?k=${key}`;
    const form = new URLSearchParams({ 'hub.verify': 'sync', 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': callback });
    const res = await postRaw(form.toString());
    expect(res.status, await res.text()).to.be.within(200, 299);
    await fresh.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
    await settled(hub);
    expect(state.leaseEnd, 'FreshRSS keeps a lease only when told one over 60 s').to.be.greaterThan(Date.now());

    await publish(hub, topic);
    await fresh.waitFor(1, (r) => r.method === 'POST');
    expect(state.bodies).to.deep.equal([feed('f1')]);
    expect(state.selves).to.deep.equal([topic]);
    expect(state.hubs).to.deep.equal([`${hub.config.publicUrl}/websub`]);

    // Someone else asks to unsubscribe it: FreshRSS declines, and the subscription stays.
    const stranger = await postRaw(new URLSearchParams({ 'hub.mode': 'unsubscribe', 'hub.topic': topic, 'hub.callback': callback }).toString());
    expect(stranger.status).to.equal(202);
    await fresh.waitFor(1, (r) => r.query.get('hub.mode') === 'unsubscribe');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);

    // Its last reader drops the feed: the next delivery is answered 410, and nothing follows.
    state.users = 0;
    topics.set('/freshrss.xml', { body: feed('f2'), contentType: ATOM });
    await publish(hub, topic);
    await fresh.waitFor(2, (r) => r.method === 'POST');
    await settled(hub);
    expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    topics.set('/freshrss.xml', { body: feed('f3'), contentType: ATOM });
    await publish(hub, topic);
    await quiet();
    expect(posts(fresh)).to.have.length(2);
  });

  // Friendica, src/Module/OStatus/PubSub.php and subscribe_to_hub (include/items.php). Sends
  // hub.verify=async and its own hub.verify_token, the same one when it unsubscribes; answers a
  // verification only if the token it carries is its own, and refuses (404) an unsubscribe
  // verification without one, so that nobody else can unsubscribe it. Every delivery gets 200.
  it('Friendica: its hub.verify_token comes back on the subscribe and on the unsubscribe verification; an unsubscribe without it is declined', async () => {
    const topic = topics.set('/friendica.atom', { body: feed('fr1'), contentType: ATOM });
    const token = randomBytes(16).toString('hex');
    const friendica = await server((req, res) => {
      if (req.method === 'POST') return text(res, 200, '');
      const given = req.query.get('hub.verify_token') ?? '';
      if ((given !== '' && given !== token) || req.query.get('hub.topic') !== topic) return text(res, 404, '');
      if (req.query.get('hub.mode') === 'unsubscribe' && given === '') return text(res, 404, '');
      text(res, 200, (req.query.get('hub.challenge') ?? '').trim());
    });
    const callback = `${friendica.url}/pubsub/alice/42`;
    const body = (mode: string, withToken: boolean): string =>
      `hub.mode=${mode}&hub.callback=${encodeURIComponent(callback)}&hub.topic=${encodeURIComponent(topic)}&hub.verify=async` + (withToken ? `&hub.verify_token=${token}` : '');

    expect((await postRaw(body('subscribe', true))).status).to.equal(202);
    const [sub] = await friendica.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
    expect(sub!.query.get('hub.verify_token')).to.equal(token);
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);

    expect((await postRaw(body('unsubscribe', false))).status).to.equal(202);
    await friendica.waitFor(1, (r) => r.query.get('hub.mode') === 'unsubscribe');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url), 'an unsubscribe Friendica did not ask for').to.deep.equal([callback]);

    expect((await postRaw(body('unsubscribe', true))).status).to.equal(202);
    const unsubs = await friendica.waitFor(2, (r) => r.query.get('hub.mode') === 'unsubscribe');
    expect(unsubs[1]!.query.get('hub.verify_token')).to.equal(token);
    await settled(hub);
    expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    await publish(hub, topic);
    await quiet();
    expect(posts(friendica)).to.deep.equal([]);
  });

  // NewsBlur, apps/push/models.py and apps/push/views.py. Sends hub.verify twice (async and
  // sync), a hub.verify_token starting "subscribe", and a 10-day lease; takes 202 or 204. Its
  // verification reads hub.lease_seconds as an integer (a 500 without one) and wants its token
  // back. A delivery within a minute of the last one it took is answered 429 "Slow down",
  // without Retry-After (scaled down here to a fraction of a second).
  it('NewsBlur: repeated hub.verify and its token accepted, a 10-day lease granted, and a 429 without Retry-After retried until taken', async () => {
    const topic = topics.set('/newsblur.atom', { body: feed('n1'), contentType: ATOM });
    const token = `subscribe${createHash('sha1').update(randomBytes(8)).digest('hex')}`;
    // NewsBlur answers 429 to a push within a minute of the last; here, the second version's
    // first push (timed by a window, the test hung on how fast a loaded machine published).
    let refused = false;
    const taken: string[] = [];
    const newsblur = await server((req, res) => {
      if (req.method === 'GET') {
        const lease = req.query.get('hub.lease_seconds');
        if (req.query.get('hub.mode') === 'subscribe') {
          if (lease === null || !/^\d+$/.test(lease)) return text(res, 500, 'int() argument must be a string');
          if (req.query.get('hub.verify_token') !== token || req.query.get('hub.topic') !== topic) return text(res, 404, '');
        }
        return text(res, 200, req.query.get('hub.challenge') ?? '');
      }
      if (taken.length === 1 && !refused) {
        refused = true;
        return text(res, 429, 'Slow down, you just pushed 0 seconds ago...');
      }
      taken.push(req.body.toString());
      text(res, 200, 'OK');
    });
    const callback = `${newsblur.url}/push/1234`;
    const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.callback': callback, 'hub.topic': topic });
    form.append('hub.verify', 'async');
    form.append('hub.verify', 'sync');
    form.append('hub.verify_token', token);
    form.append('hub.lease_seconds', '864000');
    const res = await postRaw(form.toString());
    expect(res.status).to.be.oneOf([202, 204]);
    const [v] = await newsblur.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
    expect(v!.query.get('hub.lease_seconds')).to.equal('864000');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);

    await publish(hub, topic);
    await newsblur.waitFor(1, (r) => r.method === 'POST');
    topics.set('/newsblur.atom', { body: feed('n2'), contentType: ATOM });
    await publish(hub, topic);
    await newsblur.waitFor(3, (r) => r.method === 'POST');
    for (let t0 = Date.now(); taken.length < 2 && Date.now() - t0 < 5000; ) await sleep(20);
    expect(taken).to.deep.equal([feed('n1'), feed('n2')]);
    expect(posts(newsblur).length, 'the second version was refused at least once').to.be.greaterThan(2);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);
  });

  // Mastodon 1.x over OStatus: the ostatus2 gem (lib/ostatus2/subscription.rb) and
  // Api::SubscriptionsController. Sends hub.verify=async, an empty hub.lease_seconds and a
  // secret; answers a verification whose topic is its own with the challenge HTML-escaped;
  // takes a delivery only if the whole X-Hub-Signature, lowercased, is "sha1=<hex HMAC>", and
  // answers 200 either way, so any other algorithm silently loses every post.
  it('Mastodon 1.x (ostatus2): an empty hub.lease_seconds is no lease, its HTML-escaped echo verifies, and deliveries carry the sha1 signature it checks', async () => {
    const topic = topics.set('/users/bob.atom', { body: feed('m1'), contentType: ATOM });
    const secret = randomBytes(32).toString('hex');
    const accepted: string[] = [];
    const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const mastodon = await server((req, res) => {
      if (req.method === 'GET') {
        if (req.query.get('hub.topic') !== topic) return text(res, 404, '');
        return text(res, 200, escape(req.query.get('hub.challenge') ?? ''));
      }
      const expected = `sha1=${createHmac('sha1', secret).update(req.body).digest('hex')}`;
      if (String(req.headers['x-hub-signature'] ?? '').toLowerCase() === expected) accepted.push(req.body.toString());
      text(res, 200, '');
    });
    const callback = `${mastodon.url}/api/subscriptions/7`;
    const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.callback': callback, 'hub.verify': 'async', 'hub.lease_seconds': '', 'hub.secret': secret, 'hub.topic': topic });
    expect((await postRaw(form.toString())).status).to.equal(202);
    const [v] = await mastodon.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
    expect(v!.query.get('hub.lease_seconds')).to.equal('864000');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);
    const signedBefore = await bodyWork(hub, 'sign', 'worker');
    await publish(hub, topic);
    await mastodon.waitFor(1, (r) => r.method === 'POST');
    expect(accepted).to.deep.equal([feed('m1')]);
    expect(await bodyWork(hub, 'sign', 'worker'), 'signed on the worker thread').to.be.at.least(signedBefore + 1);
    expect(await bodyWork(hub, 'sign', 'main'), 'signed on the main thread').to.equal(0);
  });

  // tystuyfzand/websub-client (client.go, utils.go), Go. Encodes every field, so a subscription
  // without a secret sends `hub.secret=` (empty) and always a lease (86400 by default); counts
  // only 202 as success. Its verification wants an integer hub.lease_seconds and a pending
  // request for that topic and callback path (a 500 otherwise); a delivery to a callback with a
  // secret must carry a valid signature in any of the REC's algorithms (else 403).
  it('tystuyfzand/websub-client: exactly 202; an empty hub.secret gets unsigned deliveries, a real one signed ones it accepts', async () => {
    const topic = topics.set('/go.atom', { body: feed('g1'), contentType: ATOM });
    const secrets = new Map<string, string>([['/sub/plain', ''], ['/sub/signed', 'go-client-secret']]);
    const pending = new Set(secrets.keys());
    const answers: { path: string; status: number }[] = [];
    const goClient = await server((req, res) => {
      const mode = req.query.get('hub.mode');
      if (mode !== null) {
        const challenge = req.query.get('hub.challenge');
        if (mode !== 'subscribe' || !challenge || req.query.get('hub.topic') !== topic || !pending.delete(req.path)) return text(res, 500, '');
        if (!/^-?\d+$/.test(req.query.get('hub.lease_seconds') ?? '')) return text(res, 500, '');
        return res.writeHead(200).end(challenge);
      }
      const secret = secrets.get(req.path);
      let status = 200;
      if (secret === undefined) status = 404;
      else if (secret !== '') {
        const header = String(req.headers['x-hub-signature'] ?? '');
        const eq = header.indexOf('=');
        const algorithm = header.slice(0, eq);
        const ok = eq > 0 && ['sha1', 'sha256', 'sha384', 'sha512'].includes(algorithm) && header.slice(eq + 1) === createHmac(algorithm, secret).update(req.body).digest('hex');
        if (!ok) status = 403;
      }
      answers.push({ path: req.path, status });
      res.writeHead(status).end();
    });
    for (const [path, secret] of secrets) {
      const form = new URLSearchParams({ 'hub.callback': `${goClient.url}${path}`, 'hub.lease_seconds': '86400', 'hub.mode': 'subscribe', 'hub.secret': secret, 'hub.topic': topic });
      expect((await postRaw(form.toString())).status).to.equal(202);
    }
    await goClient.waitFor(2, (r) => r.query.get('hub.mode') === 'subscribe');
    await settled(hub);
    expect(pending.size).to.equal(0);
    await publish(hub, topic);
    const deliveries = await goClient.waitFor(2, (r) => r.method === 'POST');
    expect(deliveries.find((d) => d.path === '/sub/plain')!.headers['x-hub-signature']).to.equal(undefined);
    expect(answers.sort((a, b) => a.path.localeCompare(b.path))).to.deep.equal([
      { path: '/sub/plain', status: 200 },
      { path: '/sub/signed', status: 200 },
    ]);
  });

  // tesaguri/websub-sub (src/hub.rs, src/subscriber/service.rs), Rust. Tells a verification
  // from a delivery by whether the request has a query string at all; a subscribe verification
  // must carry hub.lease_seconds as an unsigned integer. It renews by subscribing a new callback
  // (a new id in the path) and, once that is verified, unsubscribing the old one, which it has
  // already forgotten: it confirms that unsubscribe, and answers 410 to anything sent there.
  it('tesaguri/websub-sub: renewal by a new callback, then the old one unsubscribed: one delivery per change, to the new one, with no query string', async () => {
    const topic = topics.set('/rust.atom', { body: feed('r1'), contentType: ATOM });
    const live = new Map<string, string>(); // callback path → secret
    const rust = await server((req, res) => {
      if (req.url.includes('?')) {
        const mode = req.query.get('hub.mode');
        const challenge = req.query.get('hub.challenge');
        if (challenge === null || req.query.get('hub.topic') !== topic) return text(res, 404, '');
        if (mode === 'subscribe' && live.has(req.path) && /^\d+$/.test(req.query.get('hub.lease_seconds') ?? '')) return res.writeHead(200).end(challenge);
        if (mode === 'unsubscribe' && !live.has(req.path)) return res.writeHead(200).end(challenge);
        return text(res, 404, '');
      }
      if (!live.has(req.path)) return res.writeHead(410).end();
      res.writeHead(200).end();
    });
    const subscribeAt = async (path: string): Promise<void> => {
      const secret = randomBytes(24).toString('base64url');
      live.set(path, secret);
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.callback': `${rust.url}${path}`, 'hub.topic': topic, 'hub.secret': secret });
      expect((await postRaw(form.toString())).status).to.equal(202);
    };
    await subscribeAt('/websub/AQAAAAAAAAA');
    await rust.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
    await settled(hub);

    await subscribeAt('/websub/AgAAAAAAAAA');
    await rust.waitFor(2, (r) => r.query.get('hub.mode') === 'subscribe');
    await settled(hub);
    live.delete('/websub/AQAAAAAAAAA');
    const unsub = new URLSearchParams({ 'hub.mode': 'unsubscribe', 'hub.callback': `${rust.url}/websub/AQAAAAAAAAA`, 'hub.topic': topic });
    expect((await postRaw(unsub.toString())).status).to.equal(202);
    await rust.waitFor(1, (r) => r.query.get('hub.mode') === 'unsubscribe');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([`${rust.url}/websub/AgAAAAAAAAA`]);

    await publish(hub, topic);
    await rust.waitFor(1, (r) => r.method === 'POST');
    await quiet();
    expect(posts(rust).map((p) => p.url)).to.deep.equal(['/websub/AgAAAAAAAAA']);
    expect(posts(rust)[0]!.headers['x-hub-signature']).to.match(/^sha(1|256|384|512)=[0-9a-f]+$/);
  });

  // Indiekit's Microsub plugin (websub/subscriber.js, websub/handler.js), Node. Keeps its new
  // secret only once the hub has answered 202, with one database write that replaces the whole
  // record; its verification handler writes the lease with the secret it finds then. A GET that
  // comes before that first write is done loses one or the other: here the lease, so it never
  // renews and the subscription lapses unnoticed. As under Google's hub, whose verification
  // came from a task queue, the GET must come well after the 202.
  it('Indiekit: the verification comes after the subscriber has stored what the 202 told it, so neither its lease nor its secret is lost', async () => {
    // The default WEBSUB_VERIFY_DELAY_MS, which the other tests set to 0.
    const h = await startTestHub({ WEBSUB_VERIFY_DELAY_MS: '' });
    try {
      const topic = topics.set('/indiekit.xml', { body: feed('i1'), contentType: ATOM });
      let record: { secret?: string; expiresAt?: number } = {};
      const indiekit = await server((req, res) => {
        const lease = Number.parseInt(req.query.get('hub.lease_seconds') ?? '', 10);
        if (lease > 0) record = { expiresAt: Date.now() + lease * 1000, ...(record.secret !== undefined && { secret: record.secret }) };
        text(res, 200, req.query.get('hub.challenge') ?? '');
      });
      const secret = randomBytes(32).toString('hex');
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${indiekit.url}/microsub/websub/65f0`, 'hub.secret': secret, 'hub.lease_seconds': String(86_400 * 7) });
      const res = await fetch(`${h.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      expect(res.status).to.equal(202);
      await sleep(50); // its database write
      record = { secret };
      await indiekit.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe');
      await settled(h);
      expect(record.secret).to.equal(secret);
      expect(record.expiresAt, 'the lease it renews by').to.be.a('number');
    } finally {
      await h.destroy();
    }
  });

  it('a request whose verification still waits out WEBSUB_VERIFY_DELAY_MS when the hub stops is verified at the next start, at once', async () => {
    const env = { WEBSUB_VERIFY_DELAY_MS: '60000', POLL_ENABLED: 'false' };
    const first = await startTestHub(env);
    const topic = topics.set('/delayed.xml', { body: feed('d1'), contentType: ATOM });
    const reader = await server((req, res) => text(res, 200, req.query.get('hub.challenge') ?? ''));
    try {
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${reader.url}/cb` });
      const res = await fetch(`${first.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      expect(res.status).to.equal(202);
    } finally {
      // Not a minute's wait: stopping wakes the delay, which leaves its request stored.
      await first.close();
    }
    expect(gets(reader)).to.deep.equal([]);
    const second = await startTestHub(env, first.dataDir);
    try {
      await reader.waitFor(1, (r) => r.query.get('hub.mode') === 'subscribe', 5000);
      await settled(second);
      expect((await subscriptionsOf(second, topic)).map((s) => s.url)).to.deep.equal([`${reader.url}/cb`]);
      expect(await second.store.listVerifications()).to.deep.equal([]);
    } finally {
      await second.destroy();
    }
  });

  it('a request waiting out WEBSUB_VERIFY_DELAY_MS counts among WEBSUB_MAX_PENDING_VERIFICATIONS, and an unsubscribe sent meanwhile still overrides it', async () => {
    const topic = topics.set('/delay-then-unsubscribe.xml', { body: feed('u1'), contentType: ATOM });
    let unsubscribeAnswered!: () => void;
    const afterUnsubscribe = new Promise<void>((resolve) => (unsubscribeAnswered = resolve));
    const reader = await server((req, res) => {
      // The subscribe, asked first, is answered only after the later unsubscribe: whichever the
      // hub hears last, the later request decides.
      if (req.query.get('hub.mode') === 'subscribe') return void afterUnsubscribe.then(() => text(res, 200, req.query.get('hub.challenge') ?? ''));
      text(res, 200, req.query.get('hub.challenge') ?? '');
      unsubscribeAnswered();
    });
    const request = (h: TestHub, mode: string, cb: string): Promise<Response> =>
      fetch(`${h.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ 'hub.mode': mode, 'hub.topic': topic, 'hub.callback': `${reader.url}${cb}` }).toString() });

    // A delay no run outlasts: the three requests come during it however slow the machine (with
    // 500 ms, a loaded machine's third request came after the first two were asked, and was accepted).
    const waiting = await startTestHub({ WEBSUB_VERIFY_DELAY_MS: '60000', WEBSUB_MAX_PENDING_VERIFICATIONS: '2', POLL_ENABLED: 'false' });
    try {
      expect((await request(waiting, 'subscribe', '/a')).status).to.equal(202);
      expect((await request(waiting, 'unsubscribe', '/a')).status).to.equal(202);
      // Two waiting out the delay, nothing asked yet: the third is one too many.
      expect((await request(waiting, 'subscribe', '/b')).status).to.equal(503);
      expect(gets(reader), 'asked during the delay').to.deep.equal([]);
    } finally {
      await waiting.destroy();
    }

    const h = await startTestHub({ WEBSUB_VERIFY_DELAY_MS: '500', WEBSUB_MAX_PENDING_VERIFICATIONS: '2' });
    try {
      expect((await request(h, 'subscribe', '/a')).status).to.equal(202);
      expect((await request(h, 'unsubscribe', '/a')).status).to.equal(202);
      await settled(h);
      // Each is asked (an unverified request withdraws nothing), and the later one decides.
      expect(gets(reader).map((r) => r.query.get('hub.mode')).sort()).to.deep.equal(['subscribe', 'unsubscribe']);
      expect(await subscriptionsOf(h, topic)).to.deep.equal([]);
      expect((await request(h, 'subscribe', '/b')).status, 'accepted once they ended').to.equal(202);
    } finally {
      await h.destroy();
    }
  });

  // Flask-WebSub (flask_websub/subscriber/blueprint.py), Python. Takes the pending request out
  // of its store at the first verification GET (a second one finds nothing: 404), and compares
  // a delivery's Content-Length with its size limit, which fails on a body sent chunked.
  it('Flask-WebSub: asked once per request, and a delivery declares its Content-Length', async () => {
    const topic = topics.set('/flask.atom', { body: feed('fl1'), contentType: ATOM });
    const pending = new Set(['/callbacks/abc']);
    const flask = await server((req, res) => {
      if (req.method === 'GET') {
        if (!pending.delete(req.path)) return text(res, 404, 'Could not found subscription');
        return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(req.query.get('hub.challenge') ?? '');
      }
      if (req.headers['content-length'] === undefined) return text(res, 500, 'TypeError');
      text(res, 200, 'Content received\n');
    });
    const form = new URLSearchParams({ 'hub.callback': `${flask.url}/callbacks/abc`, 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.lease_seconds': '3600' });
    expect((await postRaw(form.toString())).status).to.equal(202);
    await flask.waitFor(1, (r) => r.method === 'GET');
    await publish(hub, topic);
    const [d] = await flask.waitFor(1, (r) => r.method === 'POST');
    await quiet();
    expect(gets(flask)).to.have.length(1);
    expect(d!.headers['content-length']).to.equal(String(Buffer.byteLength(feed('fl1'))));
    expect(d!.headers['transfer-encoding']).to.equal(undefined);
    expect(posts(flask)).to.have.length(1);
  });
});
