// HTTP as real clients and intermediaries speak it at the hub's faces: conditional and range
// requests on the pages (download managers, caches resuming), forms in a charset other than
// UTF-8, and a method a face does not take.
import { expect } from 'chai';
import net from 'node:net';
import { startTestHub, type TestHub } from './helpers/hub.js';
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
});
