// The hub talking to HTTPS peers: feeds, topics and subscriber callbacks served over real TLS
// (node:https on loopback, with the certificates of test/fixtures/tls). The hub trusts the test
// CA only; names are pinned to loopback by a stub resolver, so a certificate is checked against
// the URL's host name while the connection goes to an address the guard chose.
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { HttpClient } from '../lib/http.js';
import { createLogger } from '../lib/log.js';
import type { Resolver } from '../lib/lookups.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, loopbackAddress, type Handler, type Recorded } from './helpers/recorder.js';
import { MSG, ping, pleaseNotify, subscriberOk, notifyBody } from './helpers/rsscloud.js';
import { TEST_CA, identity, type IdentityName } from './helpers/tls.js';
import { openStream } from './helpers/sse.js';
import { publish, settled, subscribe, subscriptionsOf, validSignature } from './helpers/websub.js';

const RSS = (title: string): string => `<?xml version="1.0"?>\n<rss version="2.0"><channel><title>${title}</title><link>http://example.com/</link></channel></rss>\n`;

/** Names the tests use, all pinned to loopback: feed.test is in the test certificates, wrong.test is not. */
const pinned = new Map<string, string>([
  ['localhost', '127.0.0.1'],
  ['feed.test', '127.0.0.1'],
  ['wrong.test', '127.0.0.1'],
  ['feed.test.', '127.0.0.1'],
]);
const resolver: Resolver = async (hostname) => {
  const address = pinned.get(hostname);
  if (address === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
};

describe('HTTPS peers', function () {
  let hub: TestHub;
  let lines: string[];
  const servers: { close(): Promise<void> }[] = [];

  before(async () => {
    lines = [];
    hub = await startTestHub({ REQUEST_TIMEOUT_MS: '1500', WEBSUB_TIMEOUT_MS: '1500', WEBSUB_VERIFY_ATTEMPTS: '1' }, undefined, {
      ca: [TEST_CA],
      resolver,
      log: createLogger('info', (l) => lines.push(l)),
    });
  });
  after(async () => {
    await hub.destroy();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function https(handler: Handler, who: IdentityName = 'localhost', host = '127.0.0.1', port = 0, tls: ServerOptions = {}): Promise<Recorder> {
    const rec = await Recorder.start(handler, host, { ...identity(who), ...tls }, port);
    servers.push(rec);
    return rec;
  }
  async function plain(handler: Handler): Promise<Recorder> {
    const rec = await Recorder.start(handler);
    servers.push(rec);
    return rec;
  }
  /** A feed that changes on every read. */
  let reads = 0;
  const feed: Handler = (req, res) => void res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(RSS(`${req.path} ${++reads}`));
  /** The log lines whose message is `msg`, parsed. */
  const logged = (msg: string): Record<string, unknown>[] =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === msg);

  describe('rssCloud', () => {
    it('pleaseNotify of an https feed with an https-post callback and a domain: challenge GET and notification over TLS, checked against the name', async () => {
      const feeds = await https(feed);
      const sub = await https(subscriberOk);
      const topic = `https://feed.test:${feeds.port}/rss`;
      const reply = await pleaseNotify(hub, { domain: 'localhost', port: String(sub.port), path: '/notify', protocol: 'https-post', url1: topic });
      expect(reply).to.include({ success: true, msg: MSG.subscribed });
      const [challenge] = sub.matching((r) => r.method === 'GET');
      expect(challenge!.path).to.equal('/notify');
      expect(challenge!.query.get('url')).to.equal(topic);
      expect(challenge!.headers.host).to.equal(`localhost:${sub.port}`);
      expect(feeds.requests.map((r) => `${r.method} ${r.path} ${r.headers.host}`)).to.deep.equal([`GET /rss feed.test:${feeds.port}`]);

      expect(await ping(hub, topic)).to.include({ success: true, msg: MSG.pinged });
      const [note] = await sub.waitFor(1, (r) => r.method === 'POST');
      expect(note!.body.toString()).to.equal(notifyBody(topic));
      expect(note!.headers['content-type']).to.equal('application/x-www-form-urlencoded');
    });

    it('https-post without a domain: the test POST goes to https://<caller IP>:port/path', async () => {
      const feeds = await https(feed);
      const sub = await https(subscriberOk);
      const topic = `https://localhost:${feeds.port}/nodomain`;
      const reply = await pleaseNotify(hub, { port: String(sub.port), path: 'cb', protocol: 'https-post', url1: topic });
      expect(reply).to.include({ success: true, msg: MSG.subscribed });
      expect(sub.requests.map((r) => `${r.method} ${r.path} ${r.headers.host} ${r.body.toString()}`)).to.deep.equal([
        `POST /cb 127.0.0.1:${sub.port} ${notifyBody(topic)}`,
      ]);
    });

    it('xml-rpc on port 443 is called over https (the spec: https iff https-post or port 443)', async () => {
      const address = loopbackAddress();
      const calls: Recorded[] = [];
      const answer: Handler = (req, res) => {
        calls.push(req);
        res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>');
      };
      // Port 443 needs root, as the slow-DNS and full-disk tests do (CI runs as root): without
      // it this test fails, never skips.
      const sub = await https(answer, 'localhost', address, 443);
      pinned.set('feed.test', address);
      try {
        const feeds = await https(feed);
        const topic = `https://localhost:${feeds.port}/rpc`;
        const reply = await pleaseNotify(hub, { domain: 'feed.test', port: '443', path: '/RPC2', protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', url1: topic });
        expect(reply).to.include({ success: true, msg: MSG.subscribed });
        expect(calls).to.have.length(1);
        expect(calls[0]!.headers.host).to.equal('feed.test');
        expect(calls[0]!.body.toString()).to.include('<methodName>river.feedUpdated</methodName>').and.include(topic);
        expect(sub.requests).to.have.length(1);
      } finally {
        pinned.set('feed.test', '127.0.0.1');
      }
    });

    for (const [what, who, host] of [
      ['an expired certificate', 'expired', 'localhost'],
      ['a self-signed certificate', 'self-signed', 'localhost'],
      ['a certificate from a CA the hub does not trust', 'unknown-ca', 'localhost'],
      ['a certificate for other names (the connection pinned to an address the certificate does name)', 'localhost', 'wrong.test'],
    ] as const) {
      it(`a feed with ${what}: the read-error words for ping and pleaseNotify, classified as a refused certificate`, async () => {
        const feeds = await https(feed, who);
        const sub = await plain(subscriberOk);
        const topic = `https://${host}:${feeds.port}/bad-${who}`;
        lines.length = 0;
        expect(await pleaseNotify(hub, { port: String(sub.port), path: '/cb', protocol: 'http-post', url1: topic })).to.include({
          success: false,
          msg: MSG.subscribeReadError(topic),
        });
        expect(await ping(hub, topic)).to.include({ success: false, msg: MSG.pingReadError(topic) });
        expect(sub.requests).to.deep.equal([]);
        expect(feeds.requests, 'no request got through the failed handshake').to.deep.equal([]);
        const errors = [...logged('pleaseNotify: topic unreadable'), ...logged('ping: topic unreadable')].map((l) => String(l['error']));
        expect(errors).to.have.length(2);
        for (const e of errors) expect(e).to.match(/^certificate: .*(certificate|altnames)/);
      });

      it(`an https-post callback with ${what}: the handler-test words, nothing sent over the failed handshake`, async () => {
        const feeds = await https(feed);
        const sub = await https(subscriberOk, who);
        const topic = `https://localhost:${feeds.port}/cb-${who}`;
        const form = { port: String(sub.port), path: '/cb', protocol: 'https-post', url1: topic };
        expect(await pleaseNotify(hub, { ...form, domain: host })).to.include({ success: false, msg: MSG.handlerFailed });
        if (host === 'localhost') expect(await pleaseNotify(hub, form)).to.include({ success: false, msg: MSG.handlerFailed });
        expect(sub.requests).to.deep.equal([]);
      });
    }

    it('a feed URL with a fully qualified name ("feed.test."): SNI without the dot, which Go\'s TLS servers insist on; the certificate checked against the name', async () => {
      // As Go's crypto/tls (Caddy, Traefik) does: a ClientHello whose SNI ends with a dot is refused.
      const sni: string[] = [];
      const SNICallback: ServerOptions['SNICallback'] = (name, done) => {
        sni.push(name);
        done(name.endsWith('.') ? new Error('SNI with a trailing dot') : null);
      };
      const feeds = await https(feed, 'localhost', '127.0.0.1', 0, { SNICallback });
      const sub = await plain(subscriberOk);
      const topic = `https://feed.test.:${feeds.port}/fqdn`;
      expect(await pleaseNotify(hub, { port: String(sub.port), path: '/cb', protocol: 'http-post', url1: topic })).to.include({ success: true, msg: MSG.subscribed });
      expect(await ping(hub, topic)).to.include({ success: true, msg: MSG.pinged });
      expect(sni).to.not.deep.equal([]);
      expect([...new Set(sni)]).to.deep.equal(['feed.test']);
      expect(feeds.requests.map((r) => r.headers.host)).to.deep.equal([`feed.test.:${feeds.port}`, `feed.test.:${feeds.port}`]);
      const [note] = await sub.waitFor(1, (r) => r.method === 'POST' && r.body.toString() === notifyBody(topic));
      expect(note!.path).to.equal('/cb');
    });

    it('follows a feed redirect http→https and https→http', async () => {
      const feeds = await https(feed);
      const downgraded = await plain(feed);
      const upgrading = await plain((_req, res) => void res.writeHead(301, { location: `https://localhost:${feeds.port}/up` }).end());
      const downgrading = await https((_req, res) => void res.writeHead(302, { location: `${downgraded.url}/down` }).end());
      expect(await ping(hub, `${upgrading.url}/feed`)).to.include({ success: true });
      expect(await ping(hub, `${downgrading.url}/feed`)).to.include({ success: true });
      expect(feeds.requests.map((r) => r.path)).to.deep.equal(['/up']);
      expect(downgraded.requests.map((r) => r.path)).to.deep.equal(['/down']);
    });

    it('follows an rssCloud challenge redirect http→https to the subscriber', async () => {
      const feeds = await https(feed);
      const sub = await https(subscriberOk);
      const front = await plain((req, res) => void res.writeHead(301, { location: `https://localhost:${sub.port}${req.url}` }).end());
      const topic = `https://localhost:${feeds.port}/redirected-challenge`;
      expect(await pleaseNotify(hub, { domain: '127.0.0.1', port: String(front.port), path: '/cb', protocol: 'http-post', url1: topic })).to.include({
        success: true,
      });
      expect(sub.requests.map((r) => `${r.method} ${r.path} ${r.query.get('url')}`)).to.deep.equal([`GET /cb ${topic}`]);
    });
  });

  describe('WebSub', () => {
    /** A subscriber that echoes the challenge and takes deliveries. */
    const echo: Handler = (req, res) => {
      const challenge = req.query.get('hub.challenge');
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'GET' && challenge !== null ? challenge : 'ok');
    };

    it('verifies an https callback and delivers an https topic to it, signed', async () => {
      const topics = await https(feed);
      const sub = await https(echo);
      const topic = `https://feed.test:${topics.port}/topic`;
      const callback = `https://localhost:${sub.port}/cb`;
      expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback, 'hub.secret': 'tls-secret' })).status).to.equal(202);
      await settled(hub);
      const [verification] = sub.matching((r) => r.method === 'GET');
      expect(verification!.query.get('hub.mode')).to.equal('subscribe');
      expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);

      expect((await publish(hub, topic)).status).to.equal(204);
      const [delivery] = await sub.waitFor(1, (r) => r.method === 'POST');
      expect(delivery!.body.toString()).to.match(/^<\?xml version="1.0"\?>\n<rss version="2.0"><channel><title>\/topic \d+<\/title>/);
      expect(validSignature(delivery!.headers['x-hub-signature'], 'tls-secret', delivery!.body)).to.equal(true);
    });

    it('a callback whose certificate fails verification is not subscribed, nothing crosses the handshake, and the log says the certificate was refused', async () => {
      const topics = await https(feed);
      for (const [who, name, reason] of [
        ['expired', 'localhost', /^certificate: certificate has expired/],
        ['self-signed', 'localhost', /^certificate: self[- ]signed certificate/],
        ['unknown-ca', 'localhost', /^certificate: unable to verify the first certificate/],
        ['localhost', 'wrong.test', /^certificate: .*altnames/],
      ] as const) {
        const sub = await https(echo, who);
        const topic = `https://localhost:${topics.port}/refused-${who}`;
        const callback = `https://${name}:${sub.port}/cb`;
        lines.length = 0;
        expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback })).status).to.equal(202);
        await settled(hub);
        expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
        expect(sub.requests).to.deep.equal([]);
        const failures = logged('WebSub verification failed: certificate refused').map((l) => String(l['error']));
        expect(failures, `${who} for ${name}`).to.have.length(1);
        expect(failures[0]).to.match(reason);
      }
    });

    it('a callback whose certificate is refused is asked again, the activity saying why; renewed meanwhile, it is verified', async () => {
      const retrying = await startTestHub({ REQUEST_TIMEOUT_MS: '1500', WEBSUB_TIMEOUT_MS: '1500', WEBSUB_VERIFY_ATTEMPTS: '2', WEBSUB_RETRY_BASE_MS: '200' }, undefined, { ca: [TEST_CA], resolver });
      const events = await openStream(`${retrying.url}/events`);
      try {
        const topics = await https(feed);
        const sub = await https(echo, 'expired');
        // Its operator renews the certificate once the first handshake was refused: the next attempt finds it.
        sub.server.once('tlsClientError', () => (sub.server as HttpsServer).setSecureContext(identity('localhost')));
        const topic = `https://localhost:${topics.port}/renewed`;
        const callback = `https://localhost:${sub.port}/cb`;
        expect((await subscribe(retrying, { 'hub.topic': topic, 'hub.callback': callback })).status).to.equal(202);
        await settled(retrying);
        expect(sub.requests.map((r) => `${r.method} ${r.path} ${r.query.get('hub.mode')}`)).to.deep.equal(['GET /cb subscribe']);
        expect(await subscriptionsOf(retrying, topic)).to.have.length(1);
        const verifies = (await events.waitFor(2, (e) => e.event === 'activity' && e.data.includes('"kind":"verify"'))).map(
          (e) => JSON.parse(e.data) as { ok: boolean; detail?: string },
        );
        expect(verifies.map((a) => [a.ok, a.detail])).to.deep.equal([
          [false, `subscribe localhost:${sub.port}: its certificate was refused, will ask again`],
          [true, `subscribe localhost:${sub.port}`],
        ]);
      } finally {
        events.close();
        await retrying.destroy();
      }
    });

    it('a publish of an https topic whose certificate fails: 204 to the publisher, logged as unreadable naming the certificate, nothing delivered', async () => {
      const good = await https(feed);
      const sub = await https(echo);
      const topic = `https://localhost:${good.port}/publish-expired`;
      expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `https://localhost:${sub.port}/cb` })).status).to.equal(202);
      await settled(hub);
      expect(await subscriptionsOf(hub, topic)).to.have.length(1);
      // The topic's server now shows an expired certificate on the same port.
      const port = good.port;
      await good.close();
      servers.splice(servers.indexOf(good), 1);
      const expired = await https(feed, 'expired', '127.0.0.1', port);
      lines.length = 0;
      expect((await publish(hub, topic)).status).to.equal(204);
      await settled(hub);
      expect(expired.requests).to.deep.equal([]);
      expect(sub.matching((r) => r.method === 'POST')).to.deep.equal([]);
      const unreadable = logged('publish: topic unreadable').map((l) => String(l['error']));
      expect(unreadable).to.have.length(1);
      expect(unreadable[0]).to.match(/^certificate: certificate has expired/);
    });

    it('does not follow a verification GET redirect (REC §5.3), http→https or otherwise', async () => {
      const topics = await https(feed);
      const sub = await https(echo);
      const front = await plain((req, res) => void res.writeHead(307, { location: `https://localhost:${sub.port}${req.url}` }).end());
      const topic = `https://localhost:${topics.port}/no-follow`;
      expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${front.url}/cb` })).status).to.equal(202);
      await settled(hub);
      expect(front.requests).to.have.length(1);
      expect(sub.requests).to.deep.equal([]);
      expect(await subscriptionsOf(hub, topic)).to.deep.equal([]);
    });
  });

  describe('the poller', () => {
    it('polls an https topic with a conditional GET and delivers its change to an https subscriber', async () => {
      const h = await startTestHub({ REQUEST_TIMEOUT_MS: '1500', POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' }, undefined, { ca: [TEST_CA], resolver });
      servers.push({ close: () => h.destroy() });
      let version = 'one';
      const topics = await https((req, res) => {
        if (req.headers['if-none-match'] === `"${version}"`) return void res.writeHead(304).end();
        res.writeHead(200, { 'content-type': 'text/plain', etag: `"${version}"` }).end(`state ${version}\n`);
      });
      const sub = await https((req, res) => {
        const challenge = req.query.get('hub.challenge');
        res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'GET' && challenge !== null ? challenge : 'ok');
      });
      const topic = `https://feed.test:${topics.port}/polled`;
      expect((await subscribe(h, { 'hub.topic': topic, 'hub.callback': `https://localhost:${sub.port}/cb` })).status).to.equal(202);
      await settled(h);
      await topics.waitFor(1, (r) => r.method === 'GET', 5000);
      version = 'two';
      await sub.waitFor(1, (r) => r.method === 'POST' && r.body.toString() === 'state two\n', 5000);
      expect(topics.requests.slice(1).map((r) => r.headers['if-none-match']), 'the poll that found the change was conditional').to.include('"one"');
    });
  });

  describe('the connection', () => {
    function client(timeoutMs = 400): HttpClient {
      return new HttpClient({ timeoutMs, maxResponseBytes: 1 << 16, userAgent: 't', fetchAllowCidrs: ['127.0.0.0/8'], callbackAllowCidrs: ['127.0.0.0/8'], ca: [TEST_CA], resolver });
    }

    it('a server that accepts TCP and never completes the handshake is cut at the request timeout, as a timeout', async () => {
      const held: net.Socket[] = [];
      const silent = net.createServer((socket) => void held.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      servers.push({ close: () => new Promise<void>((resolve) => (held.forEach((s) => s.destroy()), silent.close(() => resolve()))) });
      const c = client(300);
      try {
        const err = await c.request('callback', `https://localhost:${(silent.address() as AddressInfo).port}/`, { method: 'POST', body: 'x' }).then(
          () => undefined,
          (e: unknown) => e as { code?: string },
        );
        expect(err?.code).to.equal('timeout');
      } finally {
        await c.close();
      }
    });

    it('sends again, once, on a new TLS connection when a kept-alive one closes unanswered; not when a new one does', async () => {
      const answered = new WeakSet<object>();
      const sockets: Recorded[] = [];
      const rec = await https((req, res) => {
        sockets.push(req);
        const socket = res.socket!;
        if (answered.has(socket) || req.path === '/closing') return void socket.destroy();
        answered.add(socket);
        res.end(req.path);
      });
      const c = client(2000);
      try {
        expect((await c.request('callback', `${rec.url}/first`, { method: 'POST', body: 'a' })).body.toString()).to.equal('/first');
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect((await c.request('callback', `${rec.url}/second`, { method: 'POST', body: 'b' })).body.toString()).to.equal('/second');
        const err = await c.request('callback', `${rec.url}/closing`, { method: 'POST', body: 'c' }).then(
          () => undefined,
          (e: unknown) => e as { code?: string },
        );
        expect(err?.code).to.equal('network');
      } finally {
        await c.close();
      }
      expect(rec.requests.map((r) => `${r.path} ${r.body.toString()}`)).to.deep.equal(['/first a', '/second b', '/second b', '/closing c']);
    });
  });
});
