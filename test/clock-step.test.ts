// The wall clock stepped back an hour (NTP correcting a drifted clock, a VM restored from a
// snapshot) while the hub runs: the limits and caches it keeps in memory measure durations, and
// none may stall for the length of the step. Over real HTTP on 127.0.0.1.
import { expect } from 'chai';
import { steppableClock } from './helpers/clock.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { FeedServer, MSG, ping, postForm, setSubscriptions } from './helpers/rsscloud.js';

const HOUR = 3600_000;

describe('the wall clock stepping back an hour', function () {
  this.timeout(20_000);
  let clock: ReturnType<typeof steppableClock>;
  let hub: TestHub | undefined;
  let feeds: FeedServer;
  let subscriber: Recorder;
  /** Whether the subscriber refuses notifications (a 500), else takes them. */
  let refusing = false;

  before(async () => {
    feeds = await FeedServer.start();
    subscriber = await Recorder.start((_req, res) => void res.writeHead(refusing ? 500 : 200, { 'content-type': 'text/plain' }).end(refusing ? 'down' : 'ok'));
  });
  after(async () => {
    await subscriber?.close();
    await feeds?.rec.close();
  });
  // Each test's hub is started on the steppable clock, as the hub reads Date.now when it starts.
  beforeEach(() => {
    clock = steppableClock();
  });
  afterEach(async () => {
    clock.restore();
    await hub?.destroy();
    hub = undefined;
  });

  it('does not rate-limit an address that sent a request before it (its bucket was drained by the step)', async () => {
    hub = await startTestHub({ RATE_LIMIT_PER_MINUTE: '60', RATE_LIMIT_BURST: '5' });
    const feed = feeds.fixed('rate');
    expect((await postForm(hub.url, '/ping', { url: feed })).status).to.equal(200);
    clock.step(-HOUR);
    const res = await postForm(hub.url, '/ping', { url: feed });
    expect(res.status, await res.text()).to.equal(200);
  });

  it('/metrics shows the counts as they are, not as they were before it', async () => {
    hub = await startTestHub();
    const scrape = async (): Promise<string | undefined> => /^pushbutton_subscriptions\{protocol="http-post"\} (\d+)$/m.exec(await (await fetch(`${hub!.url}/metrics`)).text())?.[1];
    expect(await scrape()).to.equal('0');
    clock.step(-HOUR);
    await setSubscriptions(hub, feeds.fixed('counted'), [{ url: `${subscriber.url}/counted`, protocol: 'http-post' }]);
    expect(await scrape()).to.equal('1');
  });

  it('/stats.json reads the counts again after 2 seconds, not after the hour', async () => {
    hub = await startTestHub();
    const count = async (): Promise<number> => ((await (await fetch(`${hub!.url}/stats.json`)).json()) as { subscriptions: number }).subscriptions;
    expect(await count()).to.equal(0);
    clock.step(-HOUR);
    await setSubscriptions(hub, feeds.fixed('stats'), [{ url: `${subscriber.url}/stats`, protocol: 'http-post' }]);
    await sleep(2100);
    expect(await count()).to.equal(1);
  });

  it('a subscriber host paused before it is paused for its cooldown, not for the hour: the next change reaches it', async () => {
    hub = await startTestHub({ BREAKER_FAILURES: '1', BREAKER_COOLDOWN_MS: '500' });
    const feed = feeds.changing('paused');
    await setSubscriptions(hub, feed, [{ url: `${subscriber.url}/paused`, protocol: 'http-post' }]);
    refusing = true;
    try {
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      await subscriber.waitFor(1, (r) => r.path === '/paused');
    } finally {
      refusing = false;
    }
    clock.step(-HOUR);
    expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
    await subscriber.waitFor(2, (r) => r.path === '/paused', 5000);
  });
});
