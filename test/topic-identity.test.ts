// One topic, one spelling, across the faces: every face keeps a topic exactly as given (README,
// "A topic is its URL exactly as given"), so what one face accepts as a topic must be a URL
// another face can name and reach. Over real HTTP on 127.0.0.1.
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { MSG, getSubscriptions, pleaseNotify, ping, rpcCall } from './helpers/rsscloud.js';
import { openSse } from './helpers/sse.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';

describe('topic identity across faces', function () {
  let hub: TestHub;
  let topics: TopicServer;
  let sub: Subscriber;

  before(async () => {
    hub = await startTestHub();
    topics = await TopicServer.start();
    sub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    await topics?.close();
    await sub?.close();
  });

  // The URL standard drops a space at either end, so such a topic was read and polled as the URL
  // without it while kept with it: a WebSub publish of the very same spelling (publish trims the
  // URLs of its lists) or a ping of the URL never reached its subscribers. Refused instead, on
  // every face that names a topic, as a tab or a line break is.
  it('refuses a topic with a space at either end on every face, and reads nothing', async () => {
    const feed = topics.set('/spaced', { body: 'v1', contentType: 'text/plain' });
    for (const spelled of [`${feed} `, ` ${feed}`]) {
      const ws = await subscribe(hub, { 'hub.topic': spelled, 'hub.callback': sub.callback('/spaced') });
      expect(ws.status, 'WebSub subscribe').to.equal(400);
      expect(await ws.text()).to.equal('hub.topic must not begin or end with a space.\n');

      const rest = await pleaseNotify(hub, { port: String(sub.rec.port), path: '/spaced', protocol: 'http-post', url1: spelled });
      expect([rest.success, rest.msg], 'rssCloud pleaseNotify').to.deep.equal([false, MSG.subscribeReadError(spelled)]);
      const rpc = await rpcCall(hub.url, 'rssCloud.pleaseNotify', ['notify', sub.rec.port, '/spaced', 'xml-rpc', [spelled]]);
      expect(rpc, 'XML-RPC pleaseNotify').to.deep.equal({ ok: false, faultCode: 4, faultString: MSG.subscribeReadError(spelled) });
      expect((await ping(hub, spelled)).msg, 'rssCloud ping').to.equal(MSG.pingReadError(spelled));

      const stream = await openSse(`${hub.url}/stream?topic=${encodeURIComponent(spelled)}`);
      expect(stream.status, 'SSE').to.equal(400);
      if ('body' in stream) expect(stream.body).to.equal('topic must not begin or end with a space.\n');

      const status = await fetch(`${hub.url}/subscription?topic=${encodeURIComponent(spelled)}&callback=${encodeURIComponent(sub.callback('/spaced'))}`);
      expect(status.status, 'GET /subscription').to.equal(400);
      await status.body?.cancel();
      expect(await getSubscriptions(hub, spelled)).to.deep.equal([]);
    }
    await settled(hub);
    expect(topics.fetches('/spaced'), 'the URL without the space was read').to.have.length(0);
    expect(sub.rec.requests).to.deep.equal([]);
  });

  it('a publish naming a topic with spaces around it reaches the subscribers of the topic', async () => {
    const feed = topics.set('/trimmed', { body: 'v1', contentType: 'text/plain' });
    const res = await subscribe(hub, { 'hub.topic': feed, 'hub.callback': sub.callback('/trimmed') });
    expect(res.status).to.equal(202);
    await sub.waitVerifications(1, 'subscribe', '/trimmed');
    await settled(hub);
    topics.set('/trimmed', { body: 'v2', contentType: 'text/plain' });
    expect((await publish(hub, ` ${feed} `)).status).to.equal(204);
    const [delivery] = await sub.waitDeliveries(1, '/trimmed');
    expect(delivery!.body.toString()).to.equal('v2');
  });
});
