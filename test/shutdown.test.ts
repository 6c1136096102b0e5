// Stopping a hub process (SIGTERM) while clients hold connections to it: what they are answered,
// and where their next request goes.
import { expect } from 'chai';
import http from 'node:http';
import { rm } from 'node:fs/promises';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { tempDataDir } from './helpers/hub.js';
import { MSG, readReply } from './helpers/rsscloud.js';
import { TopicServer } from './helpers/websub.js';

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
});
