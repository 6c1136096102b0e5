// State kept in memory per key the outside world chooses (a topic URL, a host, an address) must
// go when it is no longer needed, or a hub that runs for months under ordinary churn grows
// until it dies. Each test drives a hub over real HTTP with many distinct keys, then checks the
// structure came back down once its entries should have gone.
import { expect } from 'chai';
import { confirmingSubscriber, Recorder, sleep, steadyFeed, type Recorded } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { publish, settled, subscribe, unsubscribe } from './helpers/websub.js';

const steadyFeeds = (): Promise<Recorder> => Recorder.start(steadyFeed);
const subscriberServer = (): Promise<Recorder> => Recorder.start(confirmingSubscriber);

async function polledTopics(hub: TestHub): Promise<number> {
  const stats = (await (await fetch(`${hub.url}/stats.json`)).json()) as { polledTopics: number };
  return stats.polledTopics;
}

describe('bounded state: what the outside world keys is forgotten when it is no longer needed', function () {
  this.timeout(30_000);
  let feeds: Recorder;
  let subs: Recorder;
  let hub: TestHub | undefined;

  before(async () => {
    feeds = await steadyFeeds();
    subs = await subscriberServer();
  });
  afterEach(async () => {
    await hub?.destroy();
    hub = undefined;
  });
  after(async () => {
    await subs?.close();
    await feeds?.close();
  });

  // The poller forgets a topic only when one of its polls finds nobody following it, and every
  // ping or publish put the next poll off by an interval: a topic whose publisher pings more
  // often than that (900 s by default) was never polled again once its subscribers left, and
  // stayed in the schedule until a restart, one entry per such topic ever subscribed.
  it('the poll schedule forgets unsubscribed topics whose publisher keeps pinging (within POLL_MAX_SECONDS)', async () => {
    hub = await startTestHub({ POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '2' });
    const running = hub;
    const N = 20;
    const topics = Array.from({ length: N }, (_, i) => `${feeds.url}/churn/${i}`);
    const isVerification = (mode: string) => (r: Recorded): boolean => r.method === 'GET' && r.path.startsWith('/churn-cb/') && r.query.get('hub.mode') === mode;

    // The publisher pings (publishes) every topic every 200 ms from before the subscriptions on.
    let pinging = true;
    const pinger = (async () => {
      while (pinging) {
        const res = await publish(running, ...topics);
        expect(res.status, await res.text()).to.equal(204);
        await sleep(200);
      }
    })();
    try {
      for (const [i, topic] of topics.entries()) {
        const res = await subscribe(running, { 'hub.topic': topic, 'hub.callback': `${subs.url}/churn-cb/${i}` });
        expect(res.status, await res.text()).to.equal(202);
      }
      await subs.waitFor(N, isVerification('subscribe'), 10_000);
      await settled(running);
      expect(await polledTopics(running), 'every subscribed topic is scheduled').to.equal(N);

      for (const [i, topic] of topics.entries()) {
        const res = await unsubscribe(running, { 'hub.topic': topic, 'hub.callback': `${subs.url}/churn-cb/${i}` });
        expect(res.status, await res.text()).to.equal(202);
      }
      await subs.waitFor(N, isVerification('unsubscribe'), 10_000);
      await settled(running);

      // POLL_MAX_SECONDS (2 s) after their last poll, plus a tick or two: gone, pings or not.
      const deadline = Date.now() + 8000;
      let left = await polledTopics(running);
      while (left > 0 && Date.now() < deadline) {
        await sleep(250);
        left = await polledTopics(running);
      }
      expect(left, 'topics still scheduled while their publisher pings, nobody following them').to.equal(0);
    } finally {
      pinging = false;
      await pinger;
    }
  });
});
