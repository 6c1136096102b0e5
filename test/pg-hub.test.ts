// The hub on the PostgreSQL store (DATABASE_URL): an rssCloud subscribe and ping, a WebSub
// subscribe and publish, each delivery seen on the wire; the rows are in PostgreSQL, and a hub
// restarted on the same database still has its subscribers.
import { expect } from 'chai';
import pg from 'pg';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { FeedServer, notificationsAt, notifyBody, ping, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { Subscriber, TopicServer, publish, settled, subscribe, validSignature } from './helpers/websub.js';

describe('hub on PostgreSQL (DATABASE_URL)', function () {
  let url: string;
  let hub: TestHub;
  let feeds: FeedServer;
  let rssSub: Recorder;
  let topics: TopicServer;
  let webSub: Subscriber;

  async function rows(sql: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  before(async () => {
    url = await freshDatabaseUrl('hub');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4' });
    feeds = await FeedServer.start();
    rssSub = await Recorder.start(subscriberOk);
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    for (const s of [feeds, rssSub, topics, webSub]) await s?.close();
    if (url) await dropDatabaseSchema(url);
  });

  it('rssCloud: pleaseNotify, then a ping notifies the subscriber with a form POST', async () => {
    const feed = feeds.changing('pg-rss');
    const reply = await pleaseNotify(hub, subscribeForm(rssSub, '/notify', feed));
    expect(reply.success, reply.msg).to.equal(true);
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    const seen = notificationsAt(rssSub, '/notify');
    expect(seen).to.have.length(1);
    expect(seen[0]!.body.toString()).to.equal(notifyBody(feed));
    expect(await rows('SELECT protocol, callback_host FROM subscriptions WHERE topic = $1', [feed])).to.deep.equal([
      { protocol: 'http-post', callback_host: `127.0.0.1:${rssSub.port}` },
    ]);
  });

  it('WebSub: subscribe (verified), then a publish delivers the new content, signed', async () => {
    const topic = topics.set('/pg-topic', { body: 'version one\n', contentType: 'text/plain' });
    const res = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb'), 'hub.secret': 'pg-secret' });
    expect(res.status, await res.text()).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe');
    await settled(hub);
    expect(await rows('SELECT protocol, secret, lease_seconds FROM subscriptions WHERE topic = $1', [topic])).to.deep.equal([
      { protocol: 'websub', secret: 'pg-secret', lease_seconds: String(hub.config.websubLeaseDefaultSeconds) },
    ]);

    topics.set('/pg-topic', { body: 'version two\n', contentType: 'text/plain' });
    expect((await publish(hub, topic)).status).to.equal(202);
    const [delivery] = await webSub.waitDeliveries(1, '/cb');
    expect(delivery!.body.toString()).to.equal('version two\n');
    expect(delivery!.headers['content-type']).to.equal('text/plain');
    expect(validSignature(delivery!.headers['x-hub-signature'], 'pg-secret', delivery!.body)).to.equal(true);
    // The fan-out finishes (the outcome is recorded just after the delivery's answer): the
    // subscription is marked up to date and the outbox entry goes.
    const deadline = Date.now() + 5000;
    while ((await rows('SELECT topic FROM outbox')).length > 0 && Date.now() < deadline) await sleep(20);
    expect(await rows('SELECT topic FROM outbox')).to.deep.equal([]);
    const [row] = await rows('SELECT delivered_version FROM subscriptions WHERE topic = $1', [topic]);
    expect(Number(row!.delivered_version)).to.be.greaterThan(0);
  });

  it('keeps its subscribers when restarted on the same database', async () => {
    await hub.destroy();
    hub = await startTestHub({ DATABASE_URL: url });
    const feed = feeds.changing('pg-rss');
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    expect(notificationsAt(rssSub, '/notify').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    expect((await hub.store.counts()).byProtocol).to.deep.equal({ 'http-post': 1, websub: 1 });
  });
});
