// The poller's schedule over real HTTP on 127.0.0.1: which topics it reads, and when, as a
// feed server sees the GETs. polling.test.ts covers one topic's interval rules; these cover many
// topics at once, restarts and what resets or ends a topic's polls.
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { confirmingSubscriber, Recorder, sleep, steadyFeed, type Recorded } from './helpers/recorder.js';
import { createLogger } from '../lib/log.js';
import { steppableClock } from './helpers/clock.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { postForm, setSubscriptions, subscribeAllForm } from './helpers/rsscloud.js';
import { settled, subscribe, unsubscribe } from './helpers/websub.js';

const steadyFeeds = (): Promise<Recorder> => Recorder.start(steadyFeed);
const subscriberServer = (): Promise<Recorder> => Recorder.start(confirmingSubscriber);

const isGet =
  (path: string) =>
  (r: Recorded): boolean =>
    r.method === 'GET' && r.path === path;

describe('polling schedule: many topics, restarts, what resets it', function () {
  this.timeout(30_000);
  let feeds: Recorder;
  let subs: Recorder;
  const hubs: TestHub[] = [];

  before(async () => {
    feeds = await steadyFeeds();
    subs = await subscriberServer();
  });
  after(async () => {
    for (const h of hubs) await h.destroy().catch(() => undefined);
    await subs?.close();
    await feeds?.close();
  });

  async function hubWith(env: Record<string, string>, dataDir?: string, log?: (line: string) => void): Promise<TestHub> {
    const h = await startTestHub(env, dataDir, log ? { log: createLogger('info', log) } : {});
    hubs.push(h);
    return h;
  }

  it('24 topics due every second are all polled, not only the first few (4 polls a tick starved the rest for good)', async () => {
    // A tick every 500 ms; 24 topics a second is three times what 4 polls a tick could read.
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' });
    const paths = Array.from({ length: 24 }, (_, i) => `/many/${i}`);
    const form = subscribeAllForm(subs, '/many-cb', paths.map((p) => `${feeds.url}${p}`));
    const res = await postForm(hub.url, '/pleaseNotify', form);
    expect(await res.text()).to.contain('success="true"');
    // The subscription read each once; every one must then be polled, twice.
    await Promise.all(paths.map((p) => feeds.waitFor(3, isGet(p), 10_000)));
    for (const p of paths) {
      const polls = feeds.matching(isGet(p)).slice(1);
      expect(polls.every((r) => r.headers['if-none-match'] === '"same"'), `${p}: conditional polls`).to.equal(true);
    }
    const stats = (await (await fetch(`${hub.url}/stats.json`)).json()) as { polledTopics: number };
    expect(stats.polledTopics, '/stats.json').to.equal(24);
  });

  it('a topic subscribed over WebSub and never read yet is polled after a restart', async () => {
    // Long intervals before the restart: nothing reads the topic, so the hub has no record of it.
    const before = await hubWith({ POLL_MIN_SECONDS: '60', POLL_DEFAULT_SECONDS: '60' });
    const topic = `${feeds.url}/never-read`;
    const res = await subscribe(before, { 'hub.topic': topic, 'hub.callback': `${subs.url}/never-read-cb` });
    expect(res.status).to.equal(202);
    await subs.waitFor(1, isGet('/never-read-cb'));
    await settled(before);
    expect(feeds.matching(isGet('/never-read')), 'not read before the restart').to.have.length(0);
    await before.close();

    await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '2' }, before.dataDir);
    await feeds.waitFor(1, isGet('/never-read'), 6000);
  });

  it('an authenticated fat ping pushes the next poll back, as a ping or publish does: no poll while the publisher pushes every 250 ms', async () => {
    const secret = 'fat-secret';
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '4', PUBLISHER_SECRETS: `${feeds.url}=${secret}` });
    const topic = `${feeds.url}/pushed`;
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${subs.url}/pushed-cb` })).status).to.equal(202);
    await subs.waitFor(1, isGet('/pushed-cb'));
    await settled(hub);
    // One poll (1 s after the subscription; the interval is then 1.5 s).
    await feeds.waitFor(1, isGet('/pushed'), 6000);
    const polled = feeds.matching(isGet('/pushed')).length;
    for (let i = 0; i < 10; i++) {
      const body = `pushed ${i}\n`;
      const res = await fetch(`${hub.url}/websub?hub.mode=publish&hub.topic=${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'x-hub-signature': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
        body,
      });
      expect(res.status, await res.text()).to.equal(202);
      await sleep(250);
    }
    await subs.waitFor(10, (r) => r.method === 'POST' && r.path === '/pushed-cb');
    expect(feeds.matching(isGet('/pushed')).length - polled, 'polls while the publisher pushed').to.equal(0);
  });

  it('a Retry-After longer than POLL_MAX_SECONDS waits POLL_MAX_SECONDS: a 503 asking for an hour (or a year) does not end the polls', async () => {
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '2' });
    let refusals = 1;
    const busy = await Recorder.start((_req, res) => {
      if (refusals-- > 0) return void res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '3600' }).end('busy\n');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('back\n');
    });
    try {
      const topic = `${busy.url}/busy`;
      expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${subs.url}/busy-cb` })).status).to.equal(202);
      await subs.waitFor(1, isGet('/busy-cb'));
      // The 503, then the poll POLL_MAX_SECONDS later that finds the feed back.
      await busy.waitFor(2, isGet('/busy'), 8000);
      await subs.waitFor(1, (r) => r.method === 'POST' && r.path === '/busy-cb');
    } finally {
      await busy.close();
    }
  });

  it('polls go on when the wall clock steps back an hour (the schedule was on it: no poll for the hour)', async () => {
    const clock = steppableClock();
    try {
      const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' });
      const path = '/stepped-poll';
      expect((await subscribe(hub, { 'hub.topic': `${feeds.url}${path}`, 'hub.callback': `${subs.url}/stepped-poll-cb` })).status).to.equal(202);
      await feeds.waitFor(1, isGet(path), 6000);
      await sleep(200); // the poll's read recorded
      clock.step(-3600_000);
      const before = feeds.matching(isGet(path)).length;
      await feeds.waitFor(before + 2, isGet(path), 8000);
    } finally {
      clock.restore();
    }
  });

  it('a ping is read and answered when the wall clock steps back an hour (FETCH_MIN_INTERVAL_MS waited for the hour)', async () => {
    const clock = steppableClock();
    try {
      const hub = await hubWith({ POLL_ENABLED: 'false', FETCH_MIN_INTERVAL_MS: '1000' });
      const topic = `${feeds.url}/stepped-ping`;
      const res = await postForm(hub.url, '/pleaseNotify', { port: String(subs.port), path: '/stepped-ping-cb', protocol: 'http-post', url1: topic });
      expect(await res.text()).to.contain('success="true"');
      clock.step(-3600_000);
      const pinged = await postForm(hub.url, '/ping', { url: topic }, { signal: AbortSignal.timeout(8000) });
      expect(await pinged.text()).to.contain('success="true"');
      expect(feeds.matching(isGet('/stepped-ping')), 'the subscription read, then the ping read').to.have.length(2);
    } finally {
      clock.restore();
    }
  });

  it('a topic subscribed again while a poll asks for its subscribers (none yet) is still polled', async () => {
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' });
    const path = '/again';
    const topic = `${feeds.url}${path}`;
    const isVerification = (mode: string) => (r: Recorded) => isGet('/again-cb')(r) && r.query.get('hub.mode') === mode;
    const form = { 'hub.topic': topic, 'hub.callback': `${subs.url}/again-cb` };
    expect((await subscribe(hub, form)).status).to.equal(202);
    await subs.waitFor(1, isVerification('subscribe'));
    await feeds.waitFor(1, isGet(path), 6000);
    expect((await unsubscribe(hub, form)).status).to.equal(202);
    await subs.waitFor(1, isVerification('unsubscribe'));
    await settled(hub);
    // The next poll finds none, and is slow to hear it (a database round trip, drawn out): the
    // subscription comes meanwhile.
    const live = hub.store.hasLiveSubscription.bind(hub.store);
    let found: () => void = () => undefined;
    const foundNone = new Promise<void>((resolve) => (found = resolve));
    let resubscribed: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (resubscribed = resolve));
    hub.store.hasLiveSubscription = async (t, filter) => {
      hub.store.hasLiveSubscription = live;
      const any = await live(t, filter);
      found();
      await released;
      return any;
    };
    try {
      await foundNone;
      expect((await subscribe(hub, form)).status).to.equal(202);
      await subs.waitFor(2, isVerification('subscribe'));
      await settled(hub);
    } finally {
      resubscribed();
      hub.store.hasLiveSubscription = live;
    }
    const before = feeds.matching(isGet(path)).length;
    await feeds.waitFor(before + 1, isGet(path), 6000);
  });

  it('a topic whose only subscription has ended (its lease, not renewed) is polled no more, before any sweep', async () => {
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1' });
    const path = '/lapsed';
    const topic = `${feeds.url}${path}`;
    const res = await postForm(hub.url, '/pleaseNotify', { port: String(subs.port), path: '/lapsed-cb', protocol: 'http-post', url1: topic });
    expect(await res.text()).to.contain('success="true"');
    await feeds.waitFor(2, isGet(path), 6000); // the subscription read, then a poll
    await setSubscriptions(hub, topic, [{ url: `http://127.0.0.1:${subs.port}/lapsed-cb`, protocol: 'http-post', whenExpires: new Date(Date.now() - 1000).toISOString() }]);
    const before = feeds.matching(isGet(path)).length;
    // Three intervals: a polled topic would be read twice at least.
    await sleep(3000);
    expect(feeds.matching(isGet(path)).length - before, 'polls after the lease ended').to.be.at.most(1);
    expect(await hub.store.countSubscriptions({ topic }), 'not swept yet').to.equal(1);
  });

  it('POLL_CONCURRENCY=2 runs at most 2 polls at once however many are due, and pushbutton_poll_lag_seconds shows the polls falling behind', async () => {
    let inFlight = 0;
    let most = 0;
    // The subscription's read is answered at once; each poll (a conditional GET) takes 600 ms.
    const slow = await Recorder.start(async (req, res) => {
      if (req.headers['if-none-match'] !== '"slow"') return void res.writeHead(200, { 'content-type': 'text/plain', etag: '"slow"' }).end(`${req.path}\n`);
      most = Math.max(most, ++inFlight);
      await sleep(600);
      inFlight--;
      res.writeHead(304, { etag: '"slow"' }).end();
    });
    try {
      const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1', POLL_CONCURRENCY: '2' });
      const paths = Array.from({ length: 8 }, (_, i) => `/slow/${i}`);
      const form = subscribeAllForm(subs, '/slow-cb', paths.map((p) => `${slow.url}${p}`));
      expect(await (await postForm(hub.url, '/pleaseNotify', form)).text()).to.contain('success="true"');
      // 8 topics due every second, 2 reads of 600 ms at a time: the polls fall behind at once.
      await slow.waitFor(8, (r) => r.headers['if-none-match'] === '"slow"', 15_000);
      expect(most, 'polls at once').to.equal(2);
      const metrics = await (await fetch(`${hub.url}/metrics`)).text();
      const lag = /^pushbutton_poll_lag_seconds (\S+)$/m.exec(metrics);
      expect(lag, 'the lag gauge').to.not.equal(null);
      expect(Number(lag![1]), 'seconds behind').to.be.above(0);
    } finally {
      await slow.close();
    }
  });

  it('pushbutton_poll_lag_seconds is 0 while every due poll gets its turn at once', async () => {
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1', POLL_CONCURRENCY: '8' });
    const paths = ['/on-time/1', '/on-time/2'];
    const form = subscribeAllForm(subs, '/on-time-cb', paths.map((p) => `${feeds.url}${p}`));
    expect(await (await postForm(hub.url, '/pleaseNotify', form)).text()).to.contain('success="true"');
    // The subscription's reads, then two polls of each: the ticks found them due and started them.
    await Promise.all(paths.map((p) => feeds.waitFor(3, isGet(p), 10_000)));
    const metrics = await (await fetch(`${hub.url}/metrics`)).text();
    expect(/^pushbutton_poll_lag_seconds (\S+)$/m.exec(metrics)?.[1]).to.equal('0');
  });

  it('a poll the hub fails (its store) keeps the topic\'s interval: an outage doubled it at every poll, so topics went unread for hours after', async () => {
    const lines: string[] = [];
    const hub = await hubWith({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '60' }, undefined, (l) => void lines.push(l));
    const path = '/outage';
    const live = hub.store.hasLiveSubscription.bind(hub.store);
    let failures = 0;
    hub.store.hasLiveSubscription = (topic, filter) => {
      if (topic !== `${feeds.url}${path}` || failures >= 2) return live(topic, filter);
      failures++;
      return Promise.reject(new Error('connection lost (test)'));
    };
    try {
      const res = await postForm(hub.url, '/pleaseNotify', { port: String(subs.port), path: '/outage-cb', protocol: 'http-post', url1: `${feeds.url}${path}` });
      expect(await res.text()).to.contain('success="true"');
      // The subscription's read, then two polls the store fails (each doubled the interval before:
      // 2 s, then 4 s), then a poll that reads the feed.
      await feeds.waitFor(2, isGet(path), 10_000);
      expect(failures).to.equal(2);
      const failed = lines.map((l) => JSON.parse(l) as { msg: string; topic?: string; nextInSec?: number }).filter((l) => l.topic === `${feeds.url}${path}` && /poll/.test(l.msg));
      expect(failed.map((l) => [l.msg, l.nextInSec])).to.deep.equal(Array(2).fill(['poll not done: the hub failed', 1]));
      expect(feeds.matching(isGet(path))[1]!.headers['if-none-match'], 'a poll').to.equal('"same"');
    } finally {
      hub.store.hasLiveSubscription = live;
    }
  });
});
