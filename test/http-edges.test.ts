// HTTP as real clients and intermediaries speak it at the hub's faces: conditional and range
// requests on the pages (download managers, caches resuming), forms in a charset other than
// UTF-8, a method a face does not take, and a plain ping (routes/plain-ping.ts), answered
// without express as the app answers the same ping in any other shape.
import { expect } from 'chai';
import type http from 'node:http';
import net from 'node:net';
import { metricSample, startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer, rawRequest } from './helpers/rsscloud.js';

/** Writes `bytes` on a new connection and returns all that comes back until the hub closes it (or `ms` pass). */
function exchange(port: number, bytes: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', done);
    socket.on('error', () => undefined);
    socket.write(bytes, 'latin1');
  });
}

/** POSTs `body` on a connection of its own (Connection: close); the whole answer as sent, its Date header taken out. */
async function post(port: number, path: string, headers: Record<string, string>, body: string): Promise<string> {
  const lines = Object.entries({ Host: `127.0.0.1:${port}`, Connection: 'close', ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
  const answer = await exchange(port, `POST ${path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
  return answer.replace(/\r\nDate: [^\r]*/i, '');
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

/** Whether the app saw each request that `server` answers from now on (express gives its responses `locals`). */
function throughApp(server: http.Server): boolean[] {
  const seen: boolean[] = [];
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => void seen.push('locals' in res));
  return seen;
}

/** Requests answered on `route` with `status` (a counter has no series before its first). */
async function requestCount(hub: TestHub, route: string, status: number): Promise<number> {
  return (await metricSample(hub, `pushbutton_http_requests_total{route="${route}",status="${status}"}`)) ?? 0;
}

/** The status lines in `answer` (a body may end just before the next one, with no line break). */
const statusLines = (answer: string): string[] => answer.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe('HTTP edges at the faces', function () {
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

  describe('forms in a charset other than UTF-8', () => {
    /** A form as a page in ISO-8859-1 encodes it: each character one byte, escaped. */
    const latin1Form = (fields: Record<string, string>): Buffer =>
      Buffer.from(
        Object.entries(fields)
          .map(([k, v]) => `${k}=${[...Buffer.from(v, 'latin1')].map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('')}`)
          .join('&'),
      );

    it('an rssCloud ping from an ISO-8859-1 form names the feed it spelled (caf%E9 is café, not caf and a U+FFFD)', async () => {
      const feed = feeds.fixed('ping-caf\u00e9');
      const res = await rawRequest(`${hub.url}/ping`, {
        headers: { 'content-type': 'Application/X-WWW-Form-Urlencoded; Charset=ISO-8859-1' },
        body: latin1Form({ url: feed }),
      });
      expect(res.body).to.contain('success="true"');
      expect(feeds.reads(feed)).to.equal(1);
    });

    it('a WebSub publish from a windows-1252 form reads the topic it spelled', async () => {
      const topic = feeds.fixed('publish-na\u00efve');
      const res = await rawRequest(`${hub.url}/websub`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded;charset=windows-1252' },
        body: latin1Form({ 'hub.mode': 'publish', 'hub.url': topic }),
      });
      expect(res.status).to.equal(204);
      const path = new URL(topic).pathname;
      await feeds.rec.waitFor(1, (r) => r.path === path, 10_000);
    });
  });

  describe('request framing as clients and proxies send it', () => {
    it('Content-Length with Transfer-Encoding is refused (400) and the connection closed: the request hidden in the body is never answered', async () => {
      const hidden = `GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n`;
      const answer = await exchange(
        hub.port,
        `POST /ping HTTP/1.1\r\nHost: hub\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
      );
      expect(statusLines(answer)).to.deep.equal(['HTTP/1.1 400']);
    });

    it('an absolute-form target (as sent to a proxy) and an HTTP/1.0 keep-alive client without Host are served', async () => {
      const absolute = await exchange(hub.port, `POST http://hub.example/ping HTTP/1.1\r\nHost: hub.example\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\n\r\nurl=`);
      expect(absolute).to.match(/^HTTP\/1\.1 200[^]*<result success="false" msg="The following parameters were missing from the request body: url\."\/>/);
      const get = 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
      const twice = await exchange(hub.port, get + get, 1000);
      expect(statusLines(twice)).to.deep.equal(['HTTP/1.1 200', 'HTTP/1.1 200']);
    });
  });

  describe('pages and static files', () => {
    it('a Range past the end of a file is 416 with the file\'s length, not the hub failing (500)', async () => {
      for (const path of ['/static/style.css', '/', '/client.js']) {
        const whole = await rawRequest(`${hub.url}${path}`, { method: 'GET' });
        const res = await rawRequest(`${hub.url}${path}`, { method: 'GET', headers: { range: 'bytes=99999999-' } });
        expect([path, res.status, res.headers['content-range']]).to.deep.equal([path, 416, `bytes */${whole.headers['content-length']}`]);
      }
    });

    it('/static itself is the plain 404 page, not an HTML redirect to an absolute /static/ that is a 404 too', async () => {
      for (const path of ['/static', '/static/']) {
        const res = await rawRequest(`${hub.url}${path}`, { method: 'GET' });
        expect([path, res.status, res.headers['location'], res.body]).to.deep.equal([path, 404, undefined, 'Not found.\n']);
      }
    });

    it('an OPTIONS request for a page or probe is told the methods it takes (200, Allow: GET, HEAD; the bare address GET, HEAD, POST), not that it does not exist', async () => {
      for (const path of ['/demo', '/docs/', '/healthz', '/HEALTHZ?x=1', '/metrics']) {
        const res = await rawRequest(`${hub.url}${path}`, { method: 'OPTIONS' });
        expect([path, res.status, res.headers['allow']]).to.deep.equal([path, 200, 'GET, HEAD']);
      }
      // The bare address takes POSTs as well (XML-RPC, WebSub), and answers as the faces do.
      const root = await rawRequest(`${hub.url}/`, { method: 'OPTIONS' });
      expect([root.status, root.headers['allow'], root.headers['access-control-allow-origin']]).to.deep.equal([204, 'GET, HEAD, POST', '*']);
      // A path nothing serves is still the plain 404 (control).
      const none = await rawRequest(`${hub.url}/no-such-page`, { method: 'OPTIONS' });
      expect([none.status, none.headers['allow'], none.body]).to.deep.equal([404, undefined, 'Not found.\n']);
    });

    it('an If-Match that fails is 412, and a satisfiable Range still 206 (control)', async () => {
      const failed = await rawRequest(`${hub.url}/static/style.css`, { method: 'GET', headers: { 'if-match': '"not-this-one"' } });
      expect(failed.status).to.equal(412);
      const part = await rawRequest(`${hub.url}/static/style.css`, { method: 'GET', headers: { range: 'bytes=0-9' } });
      expect([part.status, part.body.length]).to.deep.equal([206, 10]);
    });
  });

  describe('a plain ping, answered without express', () => {
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
        const plain = await post(hub.port, '/ping', FORM, body('p'));
        const viaAccept = await post(hub.port, '/ping', { ...FORM, Accept: 'text/xml' }, body('a'));
        const viaCharset = await post(hub.port, '/rsscloud/ping', { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' }, body('c'));
        const plainLegacy = await post(hub.port, '/rsscloud/ping', FORM, body('l'));
        expect(plain).to.include(expected);
        expect(viaAccept).to.equal(plain);
        expect(viaCharset).to.equal(plain);
        expect(plainLegacy).to.equal(plain);
        expect(seen).to.deep.equal([false, true, true, false]);
      });
    }

    it('is counted in the request metric and its CORS headers are the app’s', async () => {
      const before = await requestCount(hub, '/ping', 200);
      const answer = await post(hub.port, '/ping', FORM, `url=${encodeURIComponent(feeds.changing('m'))}`);
      expect(answer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      expect(answer).to.include('\r\nAccess-Control-Allow-Origin: *\r\n');
      expect(answer).to.include('\r\nContent-Type: text/xml; charset=utf-8\r\n');
      expect(await requestCount(hub, '/ping', 200)).to.equal(before + 1);
    });

    it('any other shape goes to the app: JSON wanted, no type, forwarded, other case, a query', async () => {
      const seen = throughApp(hub.server);
      const url = `url=${encodeURIComponent(feeds.changing('o'))}`;
      const json = await post(hub.port, '/ping', { ...FORM, Accept: 'application/json' }, url);
      expect(json).to.include('{"success":true,"msg":"Thanks for the ping."}');
      await post(hub.port, '/ping', {}, url);
      await post(hub.port, '/ping', { ...FORM, 'X-Forwarded-For': '192.0.2.1' }, url);
      await post(hub.port, '/PING', FORM, url);
      await post(hub.port, '/ping?x=1', FORM, url);
      expect(seen).to.deep.equal([true, true, true, true, true]);
    });
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
    const first = await post(hub.port, '/ping', FORM, 'name=x');
    expect(first).to.match(/^HTTP\/1\.1 200 /);
    const plain = await post(hub.port, '/ping', FORM, 'name=x');
    const viaApp = await post(hub.port, '/ping', { ...FORM, Accept: 'text/xml' }, 'name=x');
    expect(plain).to.match(/^HTTP\/1\.1 429 /);
    expect(plain).to.match(/\r\nRetry-After: \d+\r\n/);
    // The seconds to wait may differ by one between the two answers.
    const seconds = (s: string): string => s.replace(/\d+/g, 'N');
    expect(seconds(viaApp)).to.equal(seconds(plain));
    expect(seen).to.deep.equal([false, false, true]);
  });
});
