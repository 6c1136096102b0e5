// One callback host, however its URL spells it: a name written fully qualified
// (`http://cb.example./`) is the host `cb.example` for the per-host subscription limit
// (MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST), the per-host delivery limit (DELIVERY_PER_HOST) and the
// circuit breaker, on either store. Over real HTTP on 127.0.0.1, with a resolver that sends every
// cb.example name, dotted or not, to the test's subscribers.
import { expect } from 'chai';
import type { Resolver } from '../lib/http.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { MSG, pleaseNotify } from './helpers/rsscloud.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';
import { until } from './helpers/until.js';

const ADMIN_TOKEN = 'callback-host-admin';
const PER_HOST = 2;

describe('one callback host however it is spelt (a fully qualified name)', function () {
  let hub: TestHub;
  let topics: TopicServer;
  const servers: { close(): Promise<void> }[] = [];
  let seq = 0;
  const topic = (name: string): string => topics.set(`/${name}-${++seq}`, { body: `${name}\n`, contentType: 'text/plain' });
  const resolver: Resolver = async (hostname) => {
    if (!/^cb\.example\.?$/i.test(hostname)) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return [{ address: '127.0.0.1', family: 4 }];
  };

  before(async () => {
    topics = await TopicServer.start();
    hub = await startTestHub(
      {
        MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST: String(PER_HOST),
        DELIVERY_PER_HOST: '1',
        BREAKER_FAILURES: '1',
        BREAKER_COOLDOWN_MS: '600000',
        WEBSUB_RETRY_BASE_MS: '100',
        ADMIN_TOKEN,
      },
      undefined,
      { resolver },
    );
  });
  after(async () => {
    await hub?.destroy();
    await topics?.close();
    for (const s of servers) await s.close();
  });

  async function subscriber(): Promise<Subscriber> {
    const s = await Subscriber.start();
    servers.push(s);
    return s;
  }

  async function subscribed(t: string, callback: string): Promise<void> {
    const res = await subscribe(hub, { 'hub.topic': t, 'hub.callback': callback });
    expect(res.status, await res.text()).to.equal(202);
  }

  async function hostPausedUntil(t: string, callback: string): Promise<string | null> {
    const res = await fetch(`${hub.url}/subscription?${new URLSearchParams({ topic: t, callback })}`);
    expect(res.status).to.equal(200);
    return ((await res.json()) as { hostPausedUntil: string | null }).hostPausedUntil;
  }

  it(`counts cb.example. with cb.example under MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST (${PER_HOST})`, async () => {
    const sub = await subscriber();
    const port = sub.rec.port;
    await subscribed(topic('limit'), `http://cb.example:${port}/a`);
    await subscribed(topic('limit'), `http://cb.example.:${port}/b`);
    await settled(hub);
    expect(sub.verifications('subscribe').map((r) => r.path).sort(), 'both spellings reached and verified').to.deep.equal(['/a', '/b']);
    const third = await subscribe(hub, { 'hub.topic': topic('limit'), 'hub.callback': `http://CB.Example.:${port}/c` });
    expect([third.status, await third.text()]).to.deep.equal([400, `Can't accept the subscription because cb.example:${port} already has ${PER_HOST} subscriptions.\n`]);
    await settled(hub);
    expect(sub.verifications('subscribe', '/c')).to.deep.equal([]);
  });

  it('sends to cb.example. and cb.example one delivery at a time under DELIVERY_PER_HOST=1', async () => {
    let inFlight = 0;
    let most = 0;
    const slow = await Recorder.start(async (req, res) => {
      if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('hub.challenge') ?? '');
      inFlight++;
      most = Math.max(most, inFlight);
      // Long enough for a second delivery, were it let through, to arrive meanwhile.
      await sleep(150);
      inFlight--;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
    });
    servers.push(slow);
    const t = topic('slots');
    await subscribed(t, `http://cb.example:${slow.port}/x`);
    await subscribed(t, `http://cb.example.:${slow.port}/y`);
    await settled(hub);
    expect((await publish(hub, t)).status).to.equal(204);
    const posts = await slow.waitFor(2, (r) => r.method === 'POST');
    expect(posts.map((r) => r.path).sort()).to.deep.equal(['/x', '/y']);
    expect(most, 'deliveries in flight at once to the one host').to.equal(1);
  });

  // The rssCloud handler test of an xml-rpc callback named by its domain is a call sent as a delivery is.
  it('tests xml-rpc handlers at cb.example. and cb.example one at a time under DELIVERY_PER_HOST=1', async () => {
    let inFlight = 0;
    let most = 0;
    const slow = await Recorder.start(async (_req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Long enough for a second call, were it let through, to arrive meanwhile.
      await sleep(150);
      inFlight--;
      res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>');
    });
    servers.push(slow);
    const replies = await Promise.all(
      ['cb.example', 'cb.example.'].map((domain) =>
        pleaseNotify(hub, { domain, port: String(slow.port), path: '/RPC2', protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', url1: topic('rpc') }),
      ),
    );
    expect(replies.map((r) => [r.success, r.msg])).to.deep.equal([
      [true, MSG.subscribed],
      [true, MSG.subscribed],
    ]);
    expect(slow.requests).to.have.length(2);
    expect(most, 'handler tests in flight at once to the one host').to.equal(1);
  });

  it('pauses cb.example. with cb.example when one fails (the breaker), and an operator retry of either spelling resumes both', async () => {
    const sub = await subscriber();
    const port = sub.rec.port;
    const [failing, other] = [topic('breaker'), topic('breaker')];
    const [failingCb, otherCb] = [`http://cb.example:${port}/fail`, `http://cb.example.:${port}/ok`];
    await subscribed(failing, failingCb);
    await subscribed(other, otherCb);
    await settled(hub);
    // Unavailable for a minute: the failed version's next attempt waits that long, so the
    // operator's retry below always comes while it waits. With a 500 it came after the 100 ms
    // backoff whenever the retry was later than that (a loaded machine): the attempt then met the
    // paused host, the 10-minute pause was past the version's retry window, and the version was
    // given up at once, so the retry had nothing left to resume.
    sub.deliveryStatuses = [503];
    sub.refusalHeaders = { 'retry-after': '60' };
    expect((await publish(hub, failing)).status).to.equal(204);
    await sub.waitDeliveries(1, '/fail');
    let pausedUntil: string | null = null;
    await until(async () => (pausedUntil = await hostPausedUntil(failing, failingCb)) !== null);
    expect(pausedUntil, 'paused after its one failure (BREAKER_FAILURES=1)').to.not.equal(null);
    expect(await hostPausedUntil(other, otherCb), 'the same host, spelt with its root dot').to.equal(pausedUntil);

    const retry = async (): Promise<{ ok: boolean; woken: number }> => {
      const res = await fetch(`${hub.url}/admin/hosts/retry`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ host: `CB.Example.:${port}` }),
      });
      expect(res.status).to.equal(200);
      return (await res.json()) as { ok: boolean; woken: number };
    };
    // The pause is recorded as the failure comes back; the version's wait for its next attempt
    // begins a few steps later. A retry between the two clears the pause but has nothing to
    // wake yet (the version then waits out its minute): asked again until it wakes the version.
    let answer = await retry();
    expect(await hostPausedUntil(failing, failingCb), 'resumed by the retry of the dotted spelling').to.equal(null);
    await until(async () => answer.woken !== 0 || (answer = await retry()).woken !== 0);
    expect(answer.woken, 'the failed version, woken by the retry').to.be.at.least(1);
    // The failed version's next attempt goes now rather than after its minute or the 10-minute cooldown.
    await sub.waitDeliveries(2, '/fail');
  });
});
