// WEBSUB_TIMEOUT_MS: WebSub subscribers do their work before they answer (FreshRSS reads the
// pushed feed in; Flask-WebSub and websub-client end their pending request as they answer its
// GET), so WebSub's requests wait longer than REQUEST_TIMEOUT_MS, which rssCloud notifications
// and feed reads keep. Sub-second timeouts here: REQUEST_TIMEOUT_MS=1000, WEBSUB_TIMEOUT_MS=3000.
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, sleep, type Recorded } from './helpers/recorder.js';
import { ping, setSubscriptions, getSubscription, MSG } from './helpers/rsscloud.js';
import { TopicServer, publish, settled, subscribe, subscriptionsOf } from './helpers/websub.js';
import { until } from './helpers/until.js';

const DOC_TYPE = 'application/atom+xml';
const doc = (title: string): string => `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>${title}</title></feed>\n`;
/** Later than REQUEST_TIMEOUT_MS, within WEBSUB_TIMEOUT_MS. */
const LATE_MS = 1500;

describe('WEBSUB_TIMEOUT_MS (REQUEST_TIMEOUT_MS=1000, WEBSUB_TIMEOUT_MS=3000)', function () {
  this.timeout(15_000);
  let hub: TestHub;
  let topics: TopicServer;
  const recorders: Recorder[] = [];

  before(async () => {
    // Retries 100 ms after a failure, and verifications asked again as soon: one made after a
    // timeout shows at once.
    hub = await startTestHub({ REQUEST_TIMEOUT_MS: '1000', WEBSUB_TIMEOUT_MS: '3000', WEBSUB_RETRY_BASE_MS: '100' });
    topics = await TopicServer.start();
  });
  after(async () => {
    await hub?.destroy();
    await topics?.close();
    for (const r of recorders) await r.close();
  });

  async function recorder(handler: (req: Recorded, res: import('node:http').ServerResponse) => void | Promise<void>): Promise<Recorder> {
    const rec = await Recorder.start(handler);
    recorders.push(rec);
    return rec;
  }

  const isPost = (r: Recorded): boolean => r.method === 'POST';
  const isVerification = (r: Recorded): boolean => r.method === 'GET' && r.query.has('hub.challenge');
  /** The subscription once the hub has counted its delivery, one way or the other (10 s at most): it counts after the answer is in. */
  async function counted(topic: string, url: string): Promise<{ ctUpdates: number; ctErrors: number }> {
    let s: Awaited<ReturnType<typeof getSubscription>>;
    await until(async () => (s = await getSubscription(hub, topic, url)) !== undefined && s.ctUpdates + s.ctErrors > 0);
    return { ctUpdates: s?.ctUpdates ?? 0, ctErrors: s?.ctErrors ?? 0 };
  }

  it('a WebSub delivery answered after REQUEST_TIMEOUT_MS is waited for: delivered once, not retried', async () => {
    let answered!: () => void;
    const done = new Promise<void>((resolve) => (answered = resolve));
    const sub = await recorder(async (req, res) => {
      if (req.method === 'GET') return void res.writeHead(200).end(req.query.get('hub.challenge') ?? '');
      // Like a reader that handles the push before it answers, on a small host.
      await sleep(LATE_MS);
      res.writeHead(200).end('thanks');
      answered();
    });
    const topic = topics.set('/delivery', { body: doc('slow reader'), contentType: DOC_TYPE });
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${sub.url}/cb` })).status).to.equal(202);
    await settled(hub);
    expect(await subscriptionsOf(hub, topic)).to.have.length(1);

    topics.set('/delivery', { body: doc('slow reader v2'), contentType: DOC_TYPE });
    await publish(hub, topic);
    await done;
    // Waited for the count, not for a while: on a loaded machine it came later than 400 ms.
    const s = await counted(topic, `${sub.url}/cb`);
    expect([s.ctUpdates, s.ctErrors], 'counted as delivered, no failure').to.deep.equal([1, 0]);
    // A retry after a timeout would come 50–100 ms after it: well within this.
    await sleep(400);
    expect(sub.matching(isPost).map((r) => r.body.toString())).to.deep.equal([doc('slow reader v2')]);
  });

  it('a WebSub verification answered after REQUEST_TIMEOUT_MS is waited for: asked once, and subscribed', async () => {
    // Like Flask-WebSub: its pending request is used up by the first GET; asked again, it says 404.
    let asked = 0;
    const sub = await recorder(async (req, res) => {
      if (!isVerification(req)) return void res.writeHead(200).end('ok');
      if (++asked > 1) return void res.writeHead(404).end('no pending subscription');
      await sleep(LATE_MS);
      res.writeHead(200).end(req.query.get('hub.challenge'));
    });
    const topic = topics.set('/verify', { body: doc('slow verification'), contentType: DOC_TYPE });
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${sub.url}/cb` })).status).to.equal(202);
    await settled(hub);
    expect(sub.matching(isVerification), 'verification GETs').to.have.length(1);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([`${sub.url}/cb`]);
  });

  it('an rssCloud ping is answered without waiting for a slow WebSub subscriber of its topic, and its rssCloud subscriber is still cut at REQUEST_TIMEOUT_MS', async () => {
    let pinged!: () => void;
    const pingAnswered = new Promise<'ping'>((resolve) => (pinged = () => resolve('ping')));
    let released!: (by: string) => void;
    const releasedBy = new Promise<string>((resolve) => (released = resolve));
    const sub = await recorder(async (req, res) => {
      if (req.path === '/rss') return; // never answers
      // Answers after REQUEST_TIMEOUT_MS, once the ping has its reply; at 2.5 s (under
      // WEBSUB_TIMEOUT_MS) if it has none by then.
      await sleep(LATE_MS);
      const by = await Promise.race([pingAnswered, sleep(2500 - LATE_MS).then(() => 'the subscriber\'s own 2.5 s')]);
      res.writeHead(200).end('thanks');
      released(by);
    });
    const topic = topics.set('/ping', { body: doc('pinged'), contentType: DOC_TYPE });
    await setSubscriptions(hub, topic, [
      { url: `${sub.url}/rss`, protocol: 'http-post' },
      { url: `${sub.url}/websub`, protocol: 'websub' },
    ]);
    const reply = await ping(hub, topic);
    pinged();
    expect(reply.msg).to.equal(MSG.pinged);
    // The rssCloud notification was cut (by REQUEST_TIMEOUT_MS: the ping had its answer before 2.5 s).
    expect(await releasedBy, 'what let the WebSub subscriber answer').to.equal('ping');
    const rss = await getSubscription(hub, topic, `${sub.url}/rss`);
    expect([rss!.ctErrors, rss!.ctConsecutiveErrors]).to.deep.equal([1, 1]);
    // The WebSub delivery, answered after the ping's reply, still counts once, not retried.
    const websub = await counted(topic, `${sub.url}/websub`);
    expect([websub.ctUpdates, websub.ctErrors]).to.deep.equal([1, 0]);
    await sleep(400);
    expect(sub.matching((r) => isPost(r) && r.path === '/websub')).to.have.length(1);
  });

  // A lane sends a topic's versions one after another: the next ping's version waits for the
  // request in flight. Its first attempt counts once that request has gone REQUEST_TIMEOUT_MS
  // unanswered, as the request's own does, or the ping waits for it up to WEBSUB_TIMEOUT_MS.
  for (const when of ['its first attempt', 'a retry'] as const) {
    it(`a second ping of a topic is answered without waiting for ${when} of the previous version still unanswered at a slow WebSub subscriber`, async () => {
      let secondPinged!: () => void;
      const secondAnswered = new Promise<'ping'>((resolve) => (secondPinged = () => resolve('ping')));
      let released!: (by: string) => void;
      const releasedBy = new Promise<string>((resolve) => (released = resolve));
      let slowStarted!: () => void;
      const slowStart = new Promise<void>((resolve) => (slowStarted = resolve));
      let v1Posts = 0;
      const sub = await recorder(async (req, res) => {
        if (!isPost(req) || !req.body.toString().includes('first')) return void res.writeHead(200).end('thanks');
        // 'a retry': the first attempt fails at once, its retry is the slow one.
        if (++v1Posts === 1 && when === 'a retry') return void res.writeHead(500).end('try again');
        slowStarted();
        // Answers once the second ping has its reply; at 2.8 s (under WEBSUB_TIMEOUT_MS) if it has none by then.
        const by = await Promise.race([secondAnswered, sleep(2800).then(() => "the subscriber's own 2.8 s")]);
        res.writeHead(200).end('thanks');
        released(by);
      });
      const path = `/second-ping-${when === 'a retry' ? 'retry' : 'first'}`;
      const topic = topics.set(path, { body: doc('first'), contentType: DOC_TYPE });
      await setSubscriptions(hub, topic, [{ url: `${sub.url}/websub`, protocol: 'websub' }]);
      expect((await ping(hub, topic)).msg).to.equal(MSG.pinged);
      await slowStart;
      topics.set(path, { body: doc('second'), contentType: DOC_TYPE });
      expect((await ping(hub, topic)).msg).to.equal(MSG.pinged);
      secondPinged();
      expect(await releasedBy, 'what let the WebSub subscriber answer').to.equal('ping');
      // Both versions then reach it, each once.
      await sub.waitFor(1, (r) => isPost(r) && r.body.toString().includes('second'));
      await sleep(300);
      expect(sub.matching(isPost).map((r) => r.body.toString().includes('first') ? 'first' : 'second')).to.deep.equal(when === 'a retry' ? ['first', 'first', 'second'] : ['first', 'second']);
    });
  }

  it('a stop waits no longer for a WebSub delivery or verification in flight than for any request: REQUEST_TIMEOUT_MS from its start', async () => {
    const stopping = await startTestHub({ REQUEST_TIMEOUT_MS: '1000', WEBSUB_TIMEOUT_MS: '3000' });
    let stopped = false;
    try {
      // Never answers a delivery (/d) nor a verification (/v).
      const sub = await recorder(() => {});
      const topic = topics.set('/stop', { body: doc('stopping'), contentType: DOC_TYPE });
      await setSubscriptions(stopping, topic, [{ url: `${sub.url}/d`, protocol: 'websub' }]);
      expect((await subscribe(stopping, { 'hub.topic': topic, 'hub.callback': `${sub.url}/v` })).status).to.equal(202);
      await publish(stopping, topic);
      await sub.waitFor(1, (r) => isPost(r) && r.path === '/d');
      await sub.waitFor(1, (r) => isVerification(r) && r.path === '/v');
      // Both requests started just now: WEBSUB_TIMEOUT_MS would hold the stop until 3 s.
      const first = await Promise.race([stopping.close().then(() => 'stopped'), sleep(2500).then(() => 'still stopping at 2.5 s')]);
      stopped = first === 'stopped';
      expect(first).to.equal('stopped');
    } finally {
      if (!stopped) await stopping.close();
      await stopping.destroy();
    }
  });

  it('a WebSub delivery or verification that starts after a stop began is cut REQUEST_TIMEOUT_MS after its start too', async () => {
    // Verifications start 600 ms after their request's answer, so that one starts within the stop
    // (which must begin first: the ping sent and its read arrived, room for a loaded machine).
    const stopping = await startTestHub({ REQUEST_TIMEOUT_MS: '1000', WEBSUB_TIMEOUT_MS: '3000', WEBSUB_VERIFY_DELAY_MS: '600' });
    let stopped = false;
    try {
      // Never answers a delivery (/d) nor a verification (/v); notes when the hub gave up on each.
      const ended = new Map<string, number>();
      const sub = await recorder((req, res) => void res.on('close', () => ended.set(req.path, Date.now())));
      // The ping's read of its topic is answered 600 ms late: the ping holds the stop open (a stop
      // lets requests to the hub finish), and the delivery it makes starts after the stop began.
      // 0.4 s to spare against REQUEST_TIMEOUT_MS: answered 900 ms late, a loaded machine pausing
      // the process 0.1 s at the wrong moment made the read time out, and no delivery was made.
      const pinged = topics.set('/stop-later', { body: doc('pinged during the stop'), contentType: DOC_TYPE, delayMs: 600 });
      await setSubscriptions(stopping, pinged, [{ url: `${sub.url}/d`, protocol: 'websub' }]);
      const verified = topics.set('/stop-later-verify', { body: doc('subscribed during the stop'), contentType: DOC_TYPE });
      expect((await subscribe(stopping, { 'hub.topic': verified, 'hub.callback': `${sub.url}/v` })).status).to.equal(202);
      const pinging = ping(stopping, pinged);
      await topics.rec.waitFor(1, (r) => r.path === '/stop-later');
      const began = Date.now();
      const stop = stopping.close().then(() => (stopped = true));
      const [delivery] = await sub.waitFor(1, (r) => isPost(r) && r.path === '/d');
      const [verification] = await sub.waitFor(1, (r) => isVerification(r) && r.path === '/v');
      expect(delivery!.at, 'the delivery started after the stop began').to.be.above(began);
      expect(verification!.at, 'the verification started after the stop began').to.be.above(began);
      await pinging.catch(() => undefined);
      await stop;
      // Cut at REQUEST_TIMEOUT_MS (1 s) from their start, not held for WEBSUB_TIMEOUT_MS (3 s).
      const lasted = { delivery: ended.get('/d')! - delivery!.at, verification: ended.get('/v')! - verification!.at };
      expect(lasted.delivery < 2000 && lasted.verification < 2000, `lasted (ms): ${JSON.stringify(lasted)}`).to.equal(true);
    } finally {
      if (!stopped) await stopping.close();
      await stopping.destroy();
    }
  });
});
