// The PostgreSQL server itself going away and coming back (pg_ctl stop, then start), as a
// restart or a failover does: the hub answers in each protocol's own words meanwhile, loses
// nothing it acknowledged, and recovers by itself. A private server, not the run's shared one,
// since the tests stop it.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { startPgServer, type PgServer } from './helpers/pg-server.js';
import { withSearchPath } from './helpers/postgres.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { Subscriber, TopicServer, publish, settled, subscribe } from './helpers/websub.js';

describe('a hub on PostgreSQL while the database server restarts', function () {
  this.timeout(60_000);
  let server: PgServer;
  let url: string;
  let hub: TestHub;
  let topics: TopicServer;
  let webSub: Subscriber;

  before(async function () {
    this.timeout(60_000);
    server = await startPgServer();
    await server.admin.query('CREATE SCHEMA outage');
    url = withSearchPath(server.url, 'outage');
    hub = await startTestHub({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4', POLL_ENABLED: 'false' }, await tempDataDir());
    topics = await TopicServer.start();
    webSub = await Subscriber.start();
  });
  after(async function () {
    this.timeout(60_000);
    // Up again whatever a failed test left, so the hub closes without waiting on it.
    await server?.resume().catch(() => undefined);
    await hub?.destroy();
    for (const s of [topics, webSub]) await s?.close();
    await server?.stop();
  });

  it('WebSub: a publish answered 202 while the database is down is delivered once it is back', async () => {
    const topic = topics.set('/outage-topic', { body: 'before\n', contentType: 'text/plain' });
    expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': webSub.callback('/cb') })).status).to.equal(202);
    await webSub.waitVerifications(1, 'subscribe');
    await settled(hub);

    await server.halt('fast');
    topics.set('/outage-topic', { body: 'published while the database was down\n', contentType: 'text/plain' });
    expect((await publish(hub, topic)).status).to.equal(202);
    // The topic is read at once and its change cannot be stored; the database comes back after.
    await new Promise((r) => setTimeout(r, 300));
    await server.resume();

    // Dropped before: the publisher had its 202 and nothing was ever delivered.
    const [delivery] = await webSub.waitDeliveries(1, '/cb');
    expect(delivery!.body.toString()).to.equal('published while the database was down\n');
  });
});
