// A plain ping (a form of declared length, XML or anything wanted, nothing forwarded) is
// answered without express (routes/plain-ping.ts); the same ping in any other shape goes
// through the app. Both must put the same bytes on the wire, count in the same bucket and the
// same metric.
import { expect } from 'chai';
import type http from 'node:http';
import net from 'node:net';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer } from './helpers/rsscloud.js';

/** One request on a connection of its own; the whole answer as sent, its Date header taken out. */
function exchange(port: number, path: string, headers: Record<string, string>, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1').replace(/\r\nDate: [^\r]*/i, '')));
    const lines = Object.entries({ Host: `127.0.0.1:${port}`, Connection: 'close', ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
    // Written, not ended: a client that half-closes is one that has gone, to Node's server.
    socket.write(`POST ${path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
  });
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

/** Whether the app saw each request that `server` answers from now on (express gives its responses `locals`). */
function throughApp(server: http.Server): boolean[] {
  const seen: boolean[] = [];
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => void seen.push('locals' in res));
  return seen;
}

async function requestCount(hub: TestHub, route: string, status: number): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const m = new RegExp(`^pushbutton_http_requests_total\\{route="${route.replace(/\//g, '\\/')}",status="${status}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('plain pings, answered without express', () => {
  let hub: TestHub;
  let feeds: FeedServer;
  before(async () => {
    hub = await startTestHub();
    feeds = await FeedServer.start();
  });
  after(async () => {
    await hub.destroy();
    await feeds.close();
  });

  // Each case: the plain ping, then the same through the app (the Accept of a client that
  // names XML, or a charset in the form's type), which must answer it byte for byte alike.
  const cases: [string, (n: string) => string, string][] = [
    ['a feed read and found changed', (n) => `url=${encodeURIComponent(feeds.changing(n))}`, 'Thanks for the ping.'],
    ['a feed that cannot be read', () => `url=${encodeURIComponent('http://127.0.0.1:1/feed.xml')}`, 'success="false"'],
    ['no url', () => 'name=x', 'success="false"'],
    ['too many fields (413)', () => 'a=&'.repeat(1000), 'HTTP/1.1 413'],
  ];
  for (const [name, body, expected] of cases) {
    it(`${name}: the same answer both ways`, async () => {
      const seen = throughApp(hub.server);
      const plain = await exchange(hub.port, '/ping', FORM, body('p'));
      const viaAccept = await exchange(hub.port, '/ping', { ...FORM, Accept: 'text/xml' }, body('a'));
      const viaCharset = await exchange(hub.port, '/rsscloud/ping', { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' }, body('c'));
      const plainLegacy = await exchange(hub.port, '/rsscloud/ping', FORM, body('l'));
      expect(plain).to.include(expected);
      expect(viaAccept).to.equal(plain);
      expect(viaCharset).to.equal(plain);
      expect(plainLegacy).to.equal(plain);
      expect(seen).to.deep.equal([false, true, true, false]);
    });
  }

  it('is counted in the request metric and its CORS headers are the app’s', async () => {
    const before = await requestCount(hub, '/ping', 200);
    const answer = await exchange(hub.port, '/ping', FORM, `url=${encodeURIComponent(feeds.changing('m'))}`);
    expect(answer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(answer).to.include('\r\nAccess-Control-Allow-Origin: *\r\n');
    expect(answer).to.include('\r\nContent-Type: text/xml; charset=utf-8\r\n');
    expect(await requestCount(hub, '/ping', 200)).to.equal(before + 1);
  });

  it('any other shape goes to the app: JSON wanted, no type, forwarded, other case, a query', async () => {
    const seen = throughApp(hub.server);
    const url = `url=${encodeURIComponent(feeds.changing('o'))}`;
    const json = await exchange(hub.port, '/ping', { ...FORM, Accept: 'application/json' }, url);
    expect(json).to.include('{"success":true,"msg":"Thanks for the ping."}');
    await exchange(hub.port, '/ping', {}, url);
    await exchange(hub.port, '/ping', { ...FORM, 'X-Forwarded-For': '192.0.2.1' }, url);
    await exchange(hub.port, '/PING', FORM, url);
    await exchange(hub.port, '/ping?x=1', FORM, url);
    expect(seen).to.deep.equal([true, true, true, true, true]);
  });
});

describe('plain pings over the rate limit (RATE_LIMIT_PER_MINUTE=60, RATE_LIMIT_BURST=1)', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startTestHub({ RATE_LIMIT_PER_MINUTE: '60', RATE_LIMIT_BURST: '1' });
  });
  after(() => hub.destroy());

  it('share one bucket with the app’s pings and are refused in the same words', async () => {
    const seen = throughApp(hub.server);
    const first = await exchange(hub.port, '/ping', FORM, 'name=x');
    expect(first).to.match(/^HTTP\/1\.1 200 /);
    const plain = await exchange(hub.port, '/ping', FORM, 'name=x');
    const viaApp = await exchange(hub.port, '/ping', { ...FORM, Accept: 'text/xml' }, 'name=x');
    expect(plain).to.match(/^HTTP\/1\.1 429 /);
    expect(plain).to.match(/\r\nRetry-After: \d+\r\n/);
    // The seconds to wait may differ by one between the two answers.
    const seconds = (s: string): string => s.replace(/\d+/g, 'N');
    expect(seconds(viaApp)).to.equal(seconds(plain));
    expect(seen).to.deep.equal([false, false, true]);
  });
});
