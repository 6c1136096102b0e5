// The narrowest crash window of a change: the new version is in the outbox but the topic has
// not recorded it yet. A hub stopped there must deliver the version after a restart, and must
// not give that version number to different content. The stop is simulated by making the
// topic write fail, then reopening the same data directory.
import { expect } from 'chai';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, tempDataDir } from './helpers/hub.js';
import { testApi } from './helpers/websub.js';
import type { Topic } from '../lib/model.js';
import { until } from './helpers/until.js';

describe('durable delivery: a version in the outbox but not yet on its topic', () => {
  let feed: Recorder;
  let sub: Recorder;
  let body = 'first version';
  before(async () => {
    feed = await Recorder.start((_r, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(body));
    sub = await Recorder.start();
  });
  after(async () => {
    await feed.close();
    await sub.close();
  });

  it('is delivered after a restart, and the topic catches up to that version', async () => {
    const dir = await tempDataDir();
    const topic = `${feed.url}/crash.txt`;
    const first = await startTestHub({}, dir);
    await testApi(first, 'setSubscriptions', {
      feedUrl: topic,
      subscriptions: [{ url: `${sub.url}/cb`, protocol: 'websub', whenExpires: '2099-01-01T00:00:00.000Z' }],
    });
    const putTopic = first.store.putTopic.bind(first.store);
    first.store.putTopic = async (t: Topic) => {
      if (t.version > 0) throw new Error('stopped between the outbox and the topic');
      return putTopic(t);
    };
    await first.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': topic });
    // The version is in the outbox; the failed topic write would have the publish read again
    // (a failure on the hub's side) for as long as the hub ran: the stop below ends that.
    await until(async () => (await first.store.listOutbox()).length > 0);
    expect(sub.requests, 'nothing was delivered before the stop').to.have.length(0);
    await first.close();

    const second = await startTestHub({}, dir);
    try {
      const [delivery] = await sub.waitFor(1);
      expect(delivery!.body.toString()).to.equal('first version');
      // The publish's read never finished (its topic write failed until the stop), so its pending
      // read is still stored and the restart reads the topic again, after the outbox's version 1
      // caught the topic up: the bytes look new to a topic that never recorded them, and go out
      // again as version 2 (at least once, never lost), never as a different content's 1.
      await sub.waitFor(2);
      await second.hub.idle();
      expect(sub.requests.map((r) => r.body.toString())).to.deep.equal(['first version', 'first version']);
      expect((await second.store.getTopic(topic))?.version).to.equal(2);
      expect(await second.store.listPendingReads()).to.deep.equal([]);
      body = 'second version';
      await second.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': topic });
      const all = await sub.waitFor(3);
      expect(all[2]!.body.toString()).to.equal('second version');
      expect((await second.store.getTopic(topic))?.version).to.be.greaterThan(2);
    } finally {
      await second.destroy();
    }
  });
});
