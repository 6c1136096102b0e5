// PostgreSQL as managed and pooled deployments give it: behind PgBouncer (its startup-parameter
// rules, reproduced by test/helpers/pooler-proxy.ts). On a private server.
import { expect } from 'chai';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { startPgServer, type PgServer } from './helpers/pg-server.js';
import { PGBOUNCER_STARTUP_PARAMETERS, serverAddress, startPoolerProxy, type PoolerProxy } from './helpers/pooler-proxy.js';
import { Recorder } from './helpers/recorder.js';
import { FeedServer, notificationsAt, notifyBody, ping, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';

describe('PostgreSQL as managed and pooled deployments run it', function () {
  this.timeout(30_000);
  let server: PgServer;
  let feeds: FeedServer;
  let rssSub: Recorder;
  const hubs: TestHub[] = [];

  /** The server's URL for `user` on `database`, over TCP through `proxy` or on its socket. */
  const urlOf = (user: string, database: string, proxy?: PoolerProxy): string => {
    const u = new URL(server.url);
    u.username = user;
    u.pathname = `/${database}`;
    if (proxy) return `postgresql://${user}@${proxy.host}:${proxy.port}/${database}`;
    return u.toString();
  };

  /** A pleaseNotify and a ping through `hub`, the notification seen at the subscriber. */
  const subscribeAndPing = async (hub: TestHub, name: string): Promise<void> => {
    const feed = feeds.changing(name);
    const reply = await pleaseNotify(hub, subscribeForm(rssSub, `/${name}`, feed));
    expect(reply.success, reply.msg).to.equal(true);
    rssSub.reset();
    expect((await ping(hub, feed)).success).to.equal(true);
    expect(notificationsAt(rssSub, `/${name}`).map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
  };

  before(async function () {
    this.timeout(60_000);
    server = await startPgServer();
    feeds = await FeedServer.start();
    rssSub = await Recorder.start(subscriberOk);
  });
  after(async function () {
    this.timeout(60_000);
    for (const h of hubs) await h.destroy();
    for (const s of [feeds, rssSub]) await s?.close();
    await server?.stop();
  });

  describe('behind PgBouncer (startup parameters it does not know are refused)', function () {
    let proxy: PoolerProxy;
    before(async () => {
      await server.admin.query('CREATE DATABASE pooled');
      proxy = await startPoolerProxy(serverAddress(server.url));
    });
    after(async () => {
      await proxy?.close();
    });

    it('starts and serves, and its statements are still bounded by the server (statement_timeout)', async () => {
      const hub = await startTestHub({ DATABASE_URL: urlOf('pushbutton', 'pooled', proxy), DATABASE_QUERY_TIMEOUT_MS: '7000', POLL_ENABLED: 'false' }, await tempDataDir());
      hubs.push(hub);
      await subscribeAndPing(hub, 'pooled');
      const refused = proxy.startups.filter((p) => Object.keys(p).some((k) => !PGBOUNCER_STARTUP_PARAMETERS.includes(k.toLowerCase())));
      expect(refused, 'startup parameters PgBouncer refuses').to.deep.equal([]);
      // Set on each store connection by a statement instead.
      expect(proxy.queries.filter((q) => q.applicationName === 'pushbutton' && /statement_timeout\s*=\s*7000/.test(q.text))).to.not.be.empty;
    });
  });

});
