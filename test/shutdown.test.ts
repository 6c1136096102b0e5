// Stopping a hub process (SIGTERM) while clients hold connections to it: what they are answered,
// and where their next request goes.
import { expect } from 'chai';
import http from 'node:http';
import { rm } from 'node:fs/promises';
import pg from 'pg';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { startTestHub, tempDataDir } from './helpers/hub.js';
import { freshDatabaseUrl } from './helpers/postgres.js';
import { Recorder } from './helpers/recorder.js';
import { MSG, pleaseNotify, readReply, subscribeForm } from './helpers/rsscloud.js';
import { TopicServer } from './helpers/websub.js';
import { createLogger } from '../lib/log.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request on `agent`, so that consecutive ones share its kept-alive connection as a client pool's do. */
function send(agent: http.Agent, url: string, method: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' };
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a hub process stopped with SIGTERM', function () {
  this.timeout(30_000);
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('answers the request in flight with Connection: close, so a kept-alive client sends its next request elsewhere rather than to the stopping process', async () => {
    const dir = await tempDataDir();
    const topics = await TopicServer.start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const hub: ChildHub = await spawnHub(dir, { POLL_ENABLED: 'false' });
    closers.push(async () => {
      agent.destroy();
      await hub.stop('SIGKILL');
      await topics.close();
      await rm(dir, { recursive: true, force: true });
    });
    // Read slowly, so that the ping is in flight when the signal comes.
    const topic = topics.set('/slow', { body: 'version 1\n', contentType: 'text/plain', delayMs: 1000 });

    const warm = await send(agent, `${hub.url}/healthz`, 'GET');
    expect(warm.headers.connection, 'a kept-alive connection before the stop').to.equal('keep-alive');
    const pinged = send(agent, `${hub.url}/ping`, 'POST', new URLSearchParams({ url: topic }).toString());
    await topics.rec.waitFor(1, (r) => r.path === '/slow');
    const exited = hub.stop('SIGTERM');

    const answer = await pinged;
    expect(answer.status).to.equal(200);
    expect((await readReply(new Response(answer.body, { headers: { 'content-type': String(answer.headers['content-type']) } }))).msg).to.equal(MSG.pinged);
    expect(answer.headers.connection, 'the last answer on its connection').to.equal('close');
    // The next request opens a new connection, which the stopping process no longer accepts: a
    // refusal the client can retry anywhere, not an answer from a process about to cut it off.
    const next = await send(agent, `${hub.url}/healthz`, 'GET').then(
      (a) => `answered ${a.status} (connection: ${a.headers.connection})`,
      (e: unknown) => (e as NodeJS.ErrnoException).code,
    );
    expect(next).to.equal('ECONNREFUSED');
    expect(await exited).to.deep.equal({ code: 0, signal: null });
  });

  it('on PostgreSQL, waits for a poll under way before giving its claims back, so the next process delivers what it found at once', async () => {
    const dir = await tempDataDir();
    const topics = await TopicServer.start();
    const reader = await Recorder.start();
    // A lease far longer than the test: a version claimed by the stopped process would wait it out.
    const env = { DATABASE_URL: await freshDatabaseUrl('shutdown'), POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1', OUTBOX_CLAIM_LEASE_MS: '600000' };
    const first = await spawnHub(dir, env);
    let second: ChildHub | undefined;
    closers.push(async () => {
      await first.stop('SIGKILL');
      await second?.stop('SIGKILL');
      await topics.close();
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    });
    const topic = topics.set('/polled', { body: 'version 1\n', contentType: 'text/plain' });
    expect(await pleaseNotify(first, subscribeForm(reader, '/notify', topic))).to.include({ success: true }); // read: version 1
    const handlerTest = reader.requests.length;

    // The next poll reads version 2 slowly: the stop comes while it reads.
    topics.set('/polled', { body: 'version 2\n', contentType: 'text/plain', delayMs: 1500 });
    const reads = topics.fetches('/polled').length;
    await topics.rec.waitFor(reads + 1, (r) => r.path === '/polled');
    expect(await first.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });

    second = await spawnHub(dir, { ...env, POLL_ENABLED: 'false' });
    const [notified] = (await reader.waitFor(handlerTest + 1, (r) => r.path === '/notify', 15_000)).slice(handlerTest);
    expect(notified!.body.toString()).to.equal(new URLSearchParams({ url: topic }).toString());
  });
});

describe('a hub on PostgreSQL stopped while a poll waits for another process\'s lock on its topic', function () {
  this.timeout(40_000);

  it('stops within its grace, not after DATABASE_LOCK_WAIT_MS', async () => {
    const url = await freshDatabaseUrl('stoplock');
    const topics = await TopicServer.start();
    const reader = await Recorder.start();
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    const hub = await startTestHub({ DATABASE_URL: url, POLL_MIN_SECONDS: '1', POLL_DEFAULT_SECONDS: '1', POLL_MAX_SECONDS: '1', DATABASE_LOCK_WAIT_MS: '600000' });
    let stopped = false;
    try {
      const topic = topics.set('/locked', { body: 'version 1\n', contentType: 'text/plain' });
      expect(await pleaseNotify(hub, subscribeForm(reader, '/notify', topic))).to.include({ success: true });
      // Another process refreshes the topic and holds its lock for longer than this test.
      await other.query('SELECT pg_advisory_lock(hashtext(current_schema()), hashtext($1))', [topic]);
      const waiting = async (): Promise<boolean> =>
        (await other.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'pushbutton-locks' AND wait_event_type = 'Lock'")).rowCount! > 0;
      while (!(await waiting())) await new Promise((r) => setTimeout(r, 100));
      const closed = hub.close().then(() => 'stopped');
      const outcome = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still stopping while the lock is held'), 20_000))]);
      stopped = outcome === 'stopped';
      expect(outcome).to.equal('stopped');
    } finally {
      await other.end();
      if (!stopped) await hub.close();
      await rm(hub.dataDir, { recursive: true, force: true });
      await topics.close();
      await reader.close();
    }
  });
});

describe('a hub stopped during its sweep (SIGTERM during the daily cleanup)', function () {
  // Stopped in its first pass, and in its last but one (the trim of topics nobody follows, whose
  // sites' trim comes after it).
  const cases = [
    { during: 'deleteExpiredSubscriptions', before: [], report: { subscriptionsRemoved: 0, stopped: true } },
    { during: 'trimUnfollowedTopics', before: ['deleteExpiredSubscriptions', 'deleteStaleTopics', 'deleteStaleSites'], report: { topicsTrimmed: 0, sitesTrimmed: 0, stopped: true } },
  ] as const;
  for (const { during, before, report: expected } of cases) {
    it(`stopped during ${during}: stops the sweep between passes, quietly: no pass after the stop begins, none on the closed store, no error logged`, async () => {
      const lines: string[] = [];
      const hub = await startTestHub({ LOG_LEVEL: 'info' }, undefined, { log: createLogger('info', (l) => void lines.push(l)) });
      const { store } = hub;
      // What reached the store and the hub, in order.
      const seen: string[] = [];
      let hubClosed!: () => void;
      const closing = new Promise<void>((r) => (hubClosed = r));
      let passStarted!: () => void;
      const underWay = new Promise<void>((r) => (passStarted = r));
      const close = hub.hub.close.bind(hub.hub);
      hub.hub.close = () => {
        seen.push('hub.close');
        close();
        hubClosed();
      };
      const closeStore = store.close.bind(store);
      store.close = () => (seen.push('store.close'), closeStore());
      for (const name of ['deleteExpiredSubscriptions', 'deleteStaleTopics', 'deleteStaleSites', 'trimUnfollowedTopics', 'trimSites'] as const) {
        const pass = (store[name] as (...args: unknown[]) => Promise<number>).bind(store);
        store[name] = (async (...args: unknown[]) => {
          seen.push(name);
          // This pass is under way when the stop comes.
          if (name === during) {
            passStarted();
            await closing;
            // Still under way as the stop goes on: the store must wait for it to end.
            await new Promise((r) => setTimeout(r, 100));
            const removed = await pass(...args);
            seen.push(`${name} done`);
            return removed;
          }
          return pass(...args);
        }) as never;
      }
      const sweep = hub.hub.removeExpired();
      await underWay;
      const errors = (): unknown[] => lines.map((l) => JSON.parse(l) as { level: string }).filter((l) => l.level === 'error');
      try {
        await hub.close();
        const report = await sweep.catch((e: unknown) => e);
        expect(seen).to.deep.equal([...before, during, 'hub.close', `${during} done`, 'store.close']);
        expect(report).to.include(expected);
        expect(errors()).to.deep.equal([]);
      } finally {
        await rm(hub.dataDir, { recursive: true, force: true });
      }
    });
  }
});
