// URLs as real clients write them, on every face: a user name and password in a topic,
// internationalised host names, paths with a query or a fragment. Over real HTTP on 127.0.0.1,
// with a resolver that sends every name to the test's own servers.
import { expect } from 'chai';
import type { Resolver } from '../lib/http.js';
import { createLogger } from '../lib/log.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { MSG, ping, pleaseNotify, rpcCall } from './helpers/rsscloud.js';
import { Recorder, loopbackAddress } from './helpers/recorder.js';
import { openSse, openStream } from './helpers/sse.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';

describe('URL spellings on every face', function () {
  let hub: TestHub;
  let topics: TopicServer;
  let sub: Subscriber;
  const log: string[] = [];
  // Names under cb.test are the subscriber's (on 127.0.0.1); a name pinned by a test goes where it says; every other name is the topic server's.
  const pinned = new Map<string, string>();
  const resolver: Resolver = async (hostname) => [{ address: pinned.get(hostname) ?? (hostname.startsWith('cb.') ? '127.0.0.1' : new URL(topics.rec.url).hostname), family: 4 }];

  before(async () => {
    topics = await TopicServer.start();
    sub = await Subscriber.start();
    hub = await startTestHub({}, undefined, { resolver, log: createLogger('info', (line) => void log.push(line)) });
  });
  after(async () => {
    await hub?.destroy();
    await topics?.close();
    await sub?.close();
  });

  // The hub sends no credentials (lib/http.ts), so such a topic could never be read; yet a
  // WebSub subscribe or publish of it was accepted (202) and failed later, and every face
  // logged it and showed it on the public /stats.json with its password, as a failed read.
  it('refuses a topic with a user name and password on every face, up front, and shows the password nowhere', async () => {
    topics.set('/private.xml', { body: 'v1', contentType: 'text/plain' });
    const topic = `http://reader:hunter2pw@feeds.test:${topics.rec.port}/private.xml`;
    const callback = `http://cb.test:${sub.rec.port}/creds`;

    expect((await ping(hub, topic)).msg, 'rssCloud ping').to.equal(MSG.pingReadError(topic));
    const rest = await pleaseNotify(hub, { port: String(sub.rec.port), path: '/creds', protocol: 'http-post', url1: topic });
    expect(rest.msg, 'rssCloud pleaseNotify').to.equal(MSG.subscribeReadError(topic));
    const rpc = await rpcCall(hub.url, 'rssCloud.pleaseNotify', ['notify', sub.rec.port, '/creds', 'xml-rpc', [topic]]);
    expect(rpc, 'XML-RPC pleaseNotify').to.deep.equal({ ok: false, faultCode: 4, faultString: MSG.subscribeReadError(topic) });
    expect(await rpcCall(hub.url, 'rssCloud.ping', [topic]), 'XML-RPC ping').to.deep.equal({ ok: true, value: true });

    const ws = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': callback });
    expect([ws.status, await ws.text()], 'WebSub subscribe').to.deep.equal([400, 'hub.topic must not carry a user name or password.\n']);
    const pub = await publish(hub, topic);
    expect([pub.status, await pub.text()], 'WebSub publish').to.deep.equal([400, `Refused: ${topic} (must not carry a user name or password)\n`]);
    const stream = await openSse(`${hub.url}/stream?topic=${encodeURIComponent(topic)}`);
    expect(stream.status, 'SSE').to.equal(400);
    if ('body' in stream) expect(stream.body).to.equal('topic must not carry a user name or password.\n');
    else stream.close();

    await settled(hub);
    expect(topics.fetches('/private.xml'), 'read without its credentials').to.have.length(0);
    expect(sub.rec.requests, 'verified, denied or notified').to.deep.equal([]);
    const stats = await (await fetch(`${hub.url}/stats.json`)).text();
    expect(stats, '/stats.json').to.not.contain('hunter2pw');
    expect(log.filter((line) => line.includes('hunter2pw')), 'log').to.deep.equal([]);
  });

  // rssCloud's challenge (with `domain`) appends ?url=…&challenge=… to the callback. The query a
  // path already has is kept; a fragment at its end took the parameters into it, so they were
  // never sent, and a handler that answers every challenge failed its test.
  it('the rssCloud challenge reaches a callback whose path has a query and a fragment, with its query kept', async () => {
    const handler = await Recorder.start((req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('challenge') ?? 'thanks'));
    try {
      const feed = topics.set('/fragment.xml', { body: 'v1', contentType: 'text/plain' });
      const reply = await pleaseNotify(hub, { port: String(handler.port), path: '/rss?key=k1#top', domain: 'cb.test', protocol: 'http-post', url1: feed });
      expect(reply.msg).to.equal(MSG.subscribed);
      const [challenge] = handler.requests;
      expect(challenge!.path).to.equal('/rss');
      expect([...challenge!.query.keys()]).to.deep.equal(['key', 'url', 'challenge']);
      expect([challenge!.query.get('key'), challenge!.query.get('url')]).to.deep.equal(['k1', feed]);

      topics.set('/fragment.xml', { body: 'v2', contentType: 'text/plain' });
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      const notified = handler.requests.filter((r) => r.method === 'POST');
      const urlParam = new URLSearchParams({ url: feed }).toString();
      expect(notified.map((r) => [r.url, r.body.toString()])).to.deep.equal([[`/rss?key=k1&${urlParam}`, urlParam]]);
    } finally {
      await handler.close();
    }
  });

  // rssCloud builds the callback as http://domain:port/path. A domain with a path, query,
  // fragment or backslash in it ended the host early: `stray.test/x` with port 5999 was called
  // at http://stray.test/x:5999/rss, that is on port 80, a server the subscriber never named.
  it('an rssCloud domain that is not a host name gets the handler-test words, and nobody is called', async () => {
    const address = loopbackAddress();
    pinned.set('stray.test', address);
    // Port 80 needs root, as the slow-DNS, full-disk and HTTPS tests do (CI runs as root).
    const stray = await Recorder.start(undefined, address, undefined, 80);
    try {
      const feed = topics.set('/domain.xml', { body: 'v1', contentType: 'text/plain' });
      for (const domain of ['stray.test/x', 'stray.test?x=', 'stray.test#x', 'stray.test\\x', 'user@stray.test']) {
        for (const protocol of ['http-post', 'xml-rpc']) {
          const reply = await pleaseNotify(hub, { port: '5999', path: '/rss', domain, protocol, notifyProcedure: 'river.feedUpdated', url1: feed });
          expect(reply.msg, `${protocol} ${domain}`).to.equal(MSG.handlerFailed);
        }
      }
      expect(stray.requests.map((r) => `${r.method} ${r.url}`)).to.deep.equal([]);
    } finally {
      pinned.delete('stray.test');
      await stray.close();
    }
  });

  // Every face refuses a topic over MAX_URL_LENGTH, so no change of one could ever come; an SSE
  // stream of it was still opened, and its client waited for good.
  it('an SSE stream takes a topic as long as MAX_URL_LENGTH, and refuses a longer one as every face does', async () => {
    const base = topics.url('/long/');
    const atLimit = `${base}${'a'.repeat(2048 - base.length)}`;
    topics.set(new URL(atLimit).pathname, { body: 'long v1', contentType: 'text/plain' });
    const stream = await openStream(`${hub.url}/stream?topic=${encodeURIComponent(atLimit)}`);
    try {
      expect((await ping(hub, atLimit)).msg).to.equal(MSG.pinged);
      const [change] = await stream.waitFor(1, (e) => e.event === 'change');
      expect((JSON.parse(change!.data) as { topic: string }).topic).to.equal(atLimit);
    } finally {
      stream.close();
    }
    const over = `${atLimit}b`;
    const words = 'The URL is longer than 2048 characters.';
    expect((await ping(hub, over)).msg, 'rssCloud ping').to.equal(words);
    const refused = await openSse(`${hub.url}/stream?topic=${encodeURIComponent(over)}`);
    expect(refused.status, 'SSE').to.equal(400);
    if ('body' in refused) expect(refused.body).to.equal(`${words}\n`);
    else refused.close();
  });
});
