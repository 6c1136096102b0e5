// What strangers send the rssCloud REST face: wrong encodings, garbage, oversized bodies and URLs
// aimed at the hub's own network. Every one gets an rssCloud reply, never a crash, and the hub
// keeps serving afterwards.
import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import {
  FeedServer,
  MSG,
  getSubscriptions,
  notificationsAt,
  notifyBody,
  ping,
  pleaseNotify,
  postForm,
  rawRequest,
  readReply,
  setSubscriptions,
  subscribeForm,
  subscriberOk,
  testApi,
  xmlElement,
  xmlEscape,
} from './helpers/rsscloud.js';

let seq = 0;
const unique = (prefix: string): string => `${prefix}-${++seq}`;

/** Deterministic bytes covering every value, '&' and '=' included. */
const GARBAGE = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256));

describe('rssCloud bad input', function () {
  let hub: TestHub;
  let feeds: FeedServer;
  let sub: Recorder;

  before(async () => {
    hub = await startTestHub();
    feeds = await FeedServer.start();
    sub = await Recorder.start(subscriberOk);
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
    await sub?.close();
  });
  beforeEach(async () => {
    await testApi(hub, 'clear');
    sub.reset();
    sub.handler = subscriberOk;
    feeds.rec.reset();
  });

  describe('bodies that are not forms', () => {
    it('a JSON body is not read as a form: the fields are missing', async () => {
      const feed = feeds.fixed(unique('json'));
      const res = await fetch(`${hub.url}/pleaseNotify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(subscribeForm(sub, '/json', feed)),
      });
      const reply = await readReply(res);
      expect([reply.status, reply.root, reply.success, reply.msg]).to.deep.equal([200, 'notifyResult', false, MSG.missing('port, path, protocol')]);
      const pinged = await readReply(
        await fetch(`${hub.url}/ping`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: feed }) }),
      );
      expect([pinged.root, pinged.success, pinged.msg]).to.deep.equal(['result', false, MSG.missing('url')]);
      expect(feeds.rec.requests).to.deep.equal([]);
      expect(sub.requests).to.deep.equal([]);
    });

    for (const contentType of ['application/x-www-form-urlencoded', 'application/octet-stream', undefined]) {
      it(`binary garbage (${contentType ?? 'no Content-Type'}) gets an rssCloud reply`, async () => {
        for (const path of ['/pleaseNotify', '/ping']) {
          const res = await rawRequest(`${hub.url}${path}`, { body: GARBAGE, headers: contentType ? { 'content-type': contentType } : {} });
          expect(res.status, path).to.equal(200);
          expect(res.headers['content-type']).to.equal('text/xml; charset=utf-8');
          const root = path === '/ping' ? 'result' : 'notifyResult';
          const msg = path === '/ping' ? MSG.missing('url') : MSG.missing('port, path, protocol');
          expect(res.body).to.contain(xmlElement(root, false, msg));
        }
      });
    }

    it('invalid percent-encoding is decoded leniently and answered, not a crash', async () => {
      const body = `port=%ZZ&path=%&protocol=http-post&url1=%E0%A4%A&url2=%`;
      const res = await rawRequest(`${hub.url}/pleaseNotify`, { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(res.status).to.equal(200);
      const url1 = new URLSearchParams(body).get('url1')!;
      expect(res.body).to.contain(xmlElement('notifyResult', false, MSG.subscribeReadError(url1)));

      const pinged = await rawRequest(`${hub.url}/ping`, { body: 'url=%G1%', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(pinged.status).to.equal(200);
      expect(pinged.body).to.contain(xmlElement('result', false, MSG.pingReadError('%G1%')));
    });

    it('a bad port or path never turns into a request', async () => {
      const feed = feeds.fixed(unique('badport'));
      for (const form of [
        { port: 'eighty', path: '/x' },
        { port: '99999', path: '/x' },
        { port: `${sub.port}@evil.example`, path: '/x' },
        // The URL standard would drop the tab and call /xy.
        { port: String(sub.port), path: '/x\ty' },
      ]) {
        const reply = await pleaseNotify(hub, { ...form, protocol: 'http-post', url1: feed });
        expect([reply.status, reply.success], JSON.stringify(form)).to.deep.equal([200, false]);
        expect(reply.msg).to.equal(MSG.handlerFailed);
      }
      expect(sub.requests).to.deep.equal([]);
      expect(await getSubscriptions(hub, feed)).to.deep.equal([]);
    });

    for (const encoding of ['gzip', 'deflate', 'br']) {
      it(`a body that claims Content-Encoding: ${encoding} but is not gets HTTP 400 in the rssCloud reply shape`, async () => {
        for (const path of ['/pleaseNotify', '/ping']) {
          const res = await rawRequest(`${hub.url}${path}`, {
            body: 'url=http%3A%2F%2F127.0.0.1%2F',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding },
          });
          expect(res.status, path).to.equal(400);
          expect(res.headers['content-type']).to.equal('text/xml; charset=utf-8');
          expect(res.body).to.match(new RegExp(`<${path === '/ping' ? 'result' : 'notifyResult'} success="false" msg="[^"]+"/>`));
        }
      });
    }

    it('an unknown Content-Encoding gets HTTP 415 in the rssCloud reply shape', async () => {
      const res = await rawRequest(`${hub.url}/ping`, {
        body: 'url=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'x-unheard-of' },
      });
      expect(res.status).to.equal(415);
      expect(res.body).to.match(/<result success="false" msg="[^"]+"\/>/);
      // RFC 9110 §15.5.16: a 415 for a content coding says which codings the server reads.
      expect(res.headers['accept-encoding']).to.equal('gzip, deflate, br');
    });

    it('a compressed form that is valid is read', async () => {
      const res = await rawRequest(`${hub.url}/ping`, {
        body: gzipSync(''),
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      });
      expect(res.status).to.equal(200);
      expect(res.body).to.contain(xmlElement('result', false, MSG.missing('url')));
      const url = feeds.changing(unique('gzip'));
      const pinged = await rawRequest(`${hub.url}/ping`, {
        body: gzipSync(`url=${encodeURIComponent(url)}`),
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      });
      expect(pinged.body).to.contain(xmlElement('result', true, MSG.pinged));
    });

    for (const path of ['/pleaseNotify', '/ping']) {
      it(`a 2 MB body to ${path} is 413 in the rssCloud reply shape`, async () => {
        const root = path === '/ping' ? 'result' : 'notifyResult';
        const body = `url=${'a'.repeat(2 * 1024 * 1024)}`;
        const xml = await readReply(await postForm(hub.url, path, [['url', body]]));
        expect([xml.status, xml.root, xml.success]).to.deep.equal([413, root, false]);
        expect(xml.contentType).to.equal('text/xml; charset=utf-8');
        expect(xml.msg).to.not.equal('');
        const json = await readReply(await postForm(hub.url, path, [['url', body]], { accept: 'application/json' }));
        expect([json.status, json.root, json.success]).to.deep.equal([413, 'json', false]);
        expect(json.headers.get('access-control-allow-origin')).to.equal('*');
      });
    }
  });

  describe('hostile URLs are read errors, never fetched', () => {
    const hostile = [
      'javascript:alert(document.cookie)',
      'file:///etc/passwd',
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'http://[::ffff:169.254.169.254]/latest/meta-data/',
      'http://user:pass@127.0.0.1:1/feed.xml',
      'gopher://127.0.0.1:25/_HELO',
      'http://169.254.169.254/?a=1&b=<2>"',
      'not a url at all',
    ];
    for (const url of hostile) {
      it(`${url}`, async () => {
        const subscribed = await pleaseNotify(hub, { port: String(sub.port), path: '/h', protocol: 'http-post', url1: url });
        expect(subscribed.status).to.equal(200);
        expect([subscribed.success, subscribed.msg]).to.deep.equal([false, MSG.subscribeReadError(url)]);
        // The URL is escaped inside the XML attribute.
        expect(subscribed.body).to.contain(`msg="${xmlEscape(MSG.subscribeReadError(url))}"`);

        const pinged = await ping(hub, url, { accept: 'application/json' });
        expect(pinged.body).to.equal(JSON.stringify({ success: false, msg: MSG.pingReadError(url) }));
        expect(sub.requests).to.deep.equal([]);
      });
    }
  });

  it('a feed URL with a tab or a line break is a read error: never read, subscribed to or kept', async () => {
    for (const char of ['\n', '\t', '\r']) {
      const name = unique('ctl');
      const url = feeds.fixed(name).replace(`/${name}`, `/${char}${name}`);
      const subscribed = await pleaseNotify(hub, { port: String(sub.port), path: '/ctl', protocol: 'http-post', url1: url });
      expect([subscribed.success, subscribed.msg]).to.deep.equal([false, MSG.subscribeReadError(url)]);
      const pinged = await ping(hub, url, { accept: 'application/json' });
      expect(pinged.body).to.equal(JSON.stringify({ success: false, msg: MSG.pingReadError(url) }));
      expect(feeds.rec.matching((r) => r.path.endsWith(name)), 'the URL without the character was read').to.have.length(0);
      expect(await getSubscriptions(hub, url)).to.deep.equal([]);
    }
    expect(sub.requests).to.deep.equal([]);
  });

  describe('redirects towards forbidden targets are refused at every hop', () => {
    const targets = ['http://169.254.169.254/latest/meta-data/', 'file:///etc/passwd', 'http://[::ffff:a9fe:a9fe]/'];
    for (const target of targets) {
      it(`a feed redirecting to ${target} is a read error`, async () => {
        const redirector = await Recorder.start((_req, res) => {
          res.writeHead(302, { location: target }).end();
        });
        try {
          const feed = `${redirector.url}/feed.xml`;
          expect((await ping(hub, feed)).msg).to.equal(MSG.pingReadError(feed));
          expect(redirector.requests).to.have.length(1);
        } finally {
          await redirector.close();
        }
      });

      it(`a subscriber redirecting to ${target} is a failed delivery`, async () => {
        sub.handler = (_req, res) => {
          res.writeHead(307, { location: target }).end();
        };
        const feed = feeds.changing(unique('redirect-out'));
        await setSubscriptions(hub, feed, [{ url: `http://127.0.0.1:${sub.port}/away`, protocol: 'http-post' }]);
        expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
        expect(sub.requests).to.have.length(1);
        const [s] = await getSubscriptions(hub, feed);
        expect([s!.ctUpdates, s!.ctConsecutiveErrors]).to.deep.equal([0, 1]);
      });
    }
  });

  it('X-Forwarded-For from an untrusted peer does not choose the callback host', async () => {
    const feed = feeds.fixed(unique('xff'));
    const reply = await pleaseNotify(hub, subscribeForm(sub, '/xff', feed), { headers: { 'x-forwarded-for': '10.9.8.7' } });
    expect(reply.msg).to.equal(MSG.subscribed);
    expect(notificationsAt(sub, '/xff')).to.have.length(1);
    expect((await getSubscriptions(hub, feed)).map((s) => s.url)).to.deep.equal([`http://127.0.0.1:${sub.port}/xff`]);
  });

  describe('with loopback feeds not allowed (FETCH_ALLOW_CIDRS unset)', () => {
    let guarded: TestHub;
    before(async () => {
      guarded = await startTestHub({ FETCH_ALLOW_CIDRS: '' });
    });
    after(async () => {
      await guarded?.destroy();
    });

    it('a feed on 127.0.0.1 is refused as a read error and never requested', async () => {
      const feed = feeds.changing(unique('blocked'));
      const subscribed = await pleaseNotify(guarded, subscribeForm(sub, '/blocked', feed));
      expect([subscribed.success, subscribed.msg]).to.deep.equal([false, MSG.subscribeReadError(feed)]);
      const pinged = await ping(guarded, feed);
      expect([pinged.success, pinged.msg]).to.deep.equal([false, MSG.pingReadError(feed)]);
      for (const host of ['localhost', '127.1', '0x7f.0.0.1', '[::1]', '[::ffff:127.0.0.1]']) {
        const url = feed.replace('127.0.0.1', host);
        expect((await ping(guarded, url)).msg, url).to.equal(MSG.pingReadError(url));
      }
      expect(feeds.rec.requests).to.deep.equal([]);
      expect(sub.requests).to.deep.equal([]);
    });
  });

  // Suites run in order, after the tests above them, so this one runs last.
  describe('afterwards', () => {
    it('after all of that, the hub still subscribes and notifies normally', async () => {
      const feed = feeds.changing(unique('still-alive'));
      expect((await pleaseNotify(hub, subscribeForm(sub, '/alive', feed))).msg).to.equal(MSG.subscribed);
      sub.reset();
      const reply = await ping(hub, feed);
      expect([reply.success, reply.msg]).to.deep.equal([true, MSG.pinged]);
      expect(notificationsAt(sub, '/alive').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    });
  });
});
