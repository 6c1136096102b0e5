import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { AddressGuard } from '../lib/address-guard.js';
import { HttpClient, OutboundError, type HttpClientOptions, type OutboundErrorCode } from '../lib/http.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface TestServer {
  base: string;
  port: number;
  seen: Seen[];
  server: http.Server;
  /** Connections open to it now. */
  connections(): number;
  close(): Promise<void>;
}

/** A real server; the handler runs after the request body has been read into `seen`. */
async function serve(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void,
  host = '127.0.0.1',
): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(s);
      handler(req, res, s);
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://${host}:${port}`,
    port,
    seen,
    server,
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections(); // hung test connections would keep close() waiting
        server.close(() => resolve());
      }),
  };
}

function client(overrides: Partial<HttpClientOptions> = {}): HttpClient {
  return new HttpClient({
    timeoutMs: 5000,
    maxResponseBytes: 1024,
    userAgent: 'Pushbutton-test/1',
    fetchAllowCidrs: ['127.0.0.0/8'],
    callbackAllowCidrs: ['127.0.0.0/8'],
    ...overrides,
  });
}

async function rejection(p: Promise<unknown>): Promise<OutboundError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(OutboundError);
    return err as OutboundError;
  }
  throw new Error('expected the request to fail');
}

async function expectCode(p: Promise<unknown>, code: OutboundErrorCode): Promise<OutboundError> {
  const err = await rejection(p);
  expect(err.code, err.message).to.equal(code);
  return err;
}

describe('AddressGuard', () => {
  const table: Array<[string, boolean]> = [
    ['8.8.8.8', true],
    ['1.1.1.1', true],
    ['0.0.0.0', false],
    ['10.1.2.3', false],
    ['100.64.0.1', false],
    ['127.0.0.1', false],
    ['169.254.1.1', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['172.32.0.1', true],
    ['192.0.0.8', false],
    ['192.0.2.1', false],
    ['192.88.99.1', false],
    ['192.168.1.1', false],
    ['198.18.0.1', false],
    ['198.51.100.7', false],
    ['203.0.113.9', false],
    ['224.0.0.1', false],
    ['240.0.0.1', false],
    ['255.255.255.255', false],
    ['2606:4700:4700::1111', true],
    ['::', false],
    ['::1', false],
    ['fc00::1', false],
    ['fd12:3456::1', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['64:ff9b::8.8.8.8', true],
    ['64:ff9b::a00:1', false],
    ['64:ff9b::7f00:1', false],
    ['64:ff9b:1::a00:1', false],
    ['64:ff9b:1:ab::8.8.8.8', false],
    ['100::1', false],
    ['2001:0:1::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:8.8.8.8', true],
    ['not-an-ip', false],
    ['', false],
    ['example.com', false],
  ];
  const guard = new AddressGuard([]);
  for (const [ip, allowed] of table) {
    it(`${allowed ? 'allows' : 'refuses'} ${ip || '(empty)'} by default`, () => {
      expect(guard.isAllowed(ip)).to.equal(allowed);
    });
  }

  it('check() throws blocked_address', () => {
    expect(() => guard.check('127.0.0.1')).to.throw(OutboundError).with.property('code', 'blocked_address');
    expect(() => guard.check('8.8.8.8')).not.to.throw();
  });

  it('allow-list opens private ranges, judging mapped IPv6 as IPv4', () => {
    const g = new AddressGuard(['127.0.0.0/8', '10.0.0.5', 'fd00::/8', '::ffff:192.168.0.0/112']);
    expect(g.isAllowed('127.0.0.2')).to.equal(true);
    expect(g.isAllowed('::ffff:127.0.0.1')).to.equal(true);
    expect(g.isAllowed('10.0.0.5')).to.equal(true);
    expect(g.isAllowed('10.0.0.6')).to.equal(false);
    expect(g.isAllowed('fd00::1')).to.equal(true);
    expect(g.isAllowed('192.168.3.4')).to.equal(true);
    expect(g.isAllowed('::1')).to.equal(false);
  });

  it('judges a NAT64 well-known-prefix address (DNS64 on an IPv6-only host) as the IPv4 address it stands for', () => {
    // An allow-list opens it as that IPv4 address; the prefix itself, once the only way to
    // reach IPv4-only hosts, opens nothing: it was every IPv4 address.
    const g = new AddressGuard(['10.1.0.0/16', '64:ff9b::/96']);
    expect(g.isAllowed('64:ff9b::8.8.8.8')).to.equal(true);
    expect(g.isAllowed('64:ff9b::10.1.2.3')).to.equal(true);
    expect(g.isAllowed('64:ff9b::10.2.0.1')).to.equal(false);
    expect(g.isAllowed('10.2.0.1')).to.equal(false);
    expect(g.isAllowed('127.0.0.1')).to.equal(false);
    expect(g.isAllowed('64:ff9b::7f00:1')).to.equal(false);
  });

  it('refuses cloud metadata addresses even when everything is allowed', () => {
    const g = new AddressGuard(['0.0.0.0/0', '::/0']);
    expect(g.isAllowed('127.0.0.1')).to.equal(true);
    expect(g.isAllowed('::1')).to.equal(true);
    for (const ip of ['169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '64:ff9b:1::a9fe:a9fe']) {
      expect(g.isAllowed(ip), ip).to.equal(false);
    }
  });
});

describe('HttpClient', () => {
  const servers: TestServer[] = [];
  const clients: HttpClient[] = [];
  const track = (c: HttpClient): HttpClient => (clients.push(c), c);
  const start = async (...args: Parameters<typeof serve>): Promise<TestServer> => {
    const s = await serve(...args);
    servers.push(s);
    return s;
  };

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('GETs a response with lower-cased, joined headers', async () => {
    const s = await start((_req, res) => {
      res.setHeader('X-Multi', ['a', 'b']);
      res.setHeader('Content-Type', 'text/plain');
      res.end('hello');
    });
    const res = await track(client()).request('fetch', `${s.base}/feed?x=1`);
    expect(res.status).to.equal(200);
    expect(res.body.toString()).to.equal('hello');
    expect(res.headers['content-type']).to.equal('text/plain');
    expect(res.headers['x-multi']).to.equal('a, b');
    expect(res.url).to.equal(`${s.base}/feed?x=1`);
    expect(s.seen[0]!.url).to.equal('/feed?x=1');
  });

  it('sends the POST body, caller headers and the user-agent', async () => {
    const s = await start((_req, res) => res.end('ok'));
    await track(client()).request('callback', `${s.base}/notify`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Extra': 'yes' },
      body: 'url=http%3A%2F%2Fexample.com%2F',
    });
    const seen = s.seen[0]!;
    expect(seen.method).to.equal('POST');
    expect(seen.body).to.equal('url=http%3A%2F%2Fexample.com%2F');
    expect(seen.headers['content-type']).to.equal('application/x-www-form-urlencoded');
    expect(seen.headers['x-extra']).to.equal('yes');
    expect(seen.headers['user-agent']).to.equal('Pushbutton-test/1');
  });

  it('lets caller headers override the user-agent', async () => {
    const s = await start((_req, res) => res.end());
    await track(client()).request('fetch', s.base, { headers: { 'User-Agent': 'Other/2' } });
    expect(s.seen[0]!.headers['user-agent']).to.equal('Other/2');
  });

  it('follows a relative redirect re-POSTing the same body', async () => {
    const s = await start((req, res) => {
      if (req.url === '/start') {
        res.writeHead(302, { Location: '/next' });
        res.end('moved');
      } else res.end('arrived');
    });
    const res = await track(client()).request('callback', `${s.base}/start`, { method: 'POST', body: 'a=1', maxRedirects: 3 });
    expect(res.status).to.equal(200);
    expect(res.body.toString()).to.equal('arrived');
    expect(res.url).to.equal(`${s.base}/next`);
    expect(s.seen.map((r) => [r.method, r.url, r.body])).to.deep.equal([
      ['POST', '/start', 'a=1'],
      ['POST', '/next', 'a=1'],
    ]);
  });

  it('fails with too_many_redirects past maxRedirects', async () => {
    const s = await start((_req, res) => {
      res.writeHead(301, { Location: '/loop' });
      res.end();
    });
    await expectCode(track(client()).request('fetch', `${s.base}/loop`, { maxRedirects: 2 }), 'too_many_redirects');
    expect(s.seen).to.have.length(3); // the first request and two followed hops
  });

  it('returns a 3xx as-is when maxRedirects is 0', async () => {
    const s = await start((_req, res) => {
      res.writeHead(302, { Location: '/elsewhere' });
      res.end();
    });
    const res = await track(client()).request('fetch', `${s.base}/x`);
    expect(res.status).to.equal(302);
    expect(res.headers.location).to.equal('/elsewhere');
    expect(s.seen).to.have.length(1);
  });

  it('refuses loopback without an allow-list, before any request is sent', async () => {
    const s = await start((_req, res) => res.end());
    await expectCode(track(client({ fetchAllowCidrs: [] })).request('fetch', s.base), 'blocked_address');
    expect(s.seen).to.have.length(0);
  });

  it('keeps the fetch allow-list away from callbacks', async () => {
    const s = await start((_req, res) => res.end('ok'));
    const c = track(client({ fetchAllowCidrs: ['127.0.0.0/8'], callbackAllowCidrs: [] }));
    expect((await c.request('fetch', s.base)).status).to.equal(200);
    await expectCode(c.request('callback', s.base), 'blocked_address');
    expect(s.seen).to.have.length(1);
  });

  it('refuses a metadata address even with allow-list 0.0.0.0/0', async () => {
    const c = track(client({ fetchAllowCidrs: ['0.0.0.0/0'] }));
    await expectCode(c.request('fetch', 'http://169.254.169.254/latest/meta-data/'), 'blocked_address');
    await expectCode(c.request('fetch', 'http://[::ffff:169.254.169.254]/'), 'blocked_address');
  });

  it('refuses a local-use NAT64 address (64:ff9b:1::/48), which a translator turns into a private IPv4 one, before connecting', async () => {
    const c = track(client({ fetchAllowCidrs: [] }));
    await expectCode(c.request('fetch', 'http://[64:ff9b:1::a00:1]/'), 'blocked_address');
    await expectCode(c.request('fetch', 'http://[64:ff9b:1::7f00:1]:8080/'), 'blocked_address');
  });

  it('refuses a hostname that resolves to loopback (DNS check)', async () => {
    const s = await start((_req, res) => res.end());
    await expectCode(track(client({ fetchAllowCidrs: [] })).request('fetch', `http://localhost:${s.port}/`), 'blocked_address');
    expect(s.seen).to.have.length(0);
  });

  it('refuses a redirect from an allowed server to a blocked address', async () => {
    const target = await start((_req, res) => res.end('secret'), '127.0.0.2');
    const s = await start((_req, res) => {
      res.writeHead(307, { Location: `${target.base}/admin` });
      res.end();
    });
    const c = track(client({ fetchAllowCidrs: ['127.0.0.1/32'] }));
    await expectCode(c.request('fetch', s.base, { maxRedirects: 3 }), 'blocked_address');
    expect(s.seen).to.have.length(1);
    expect(target.seen).to.have.length(0);
  });

  it('rejects non-http, unparsable and credentialed URLs as bad_url', async () => {
    const c = track(client());
    for (const url of ['ftp://127.0.0.1/', 'file:///etc/passwd', 'not a url', 'http://user:pass@127.0.0.1/']) {
      await expectCode(c.request('fetch', url), 'bad_url');
    }
  });

  it('reports a refused connection as network', async () => {
    const s = await start((_req, res) => res.end());
    const port = s.port;
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    await expectCode(track(client()).request('fetch', `http://127.0.0.1:${port}/`), 'network');
  });

  it('sends a request again, once, when a kept-alive connection closes unanswered; not when a new one does', async () => {
    // Each connection answers its first request and closes as the next one arrives on it: what a
    // request meets when it crosses the server's close of an idle connection on the wire.
    const answered = new WeakSet<object>();
    const s = await start((req, res) => {
      if (answered.has(req.socket)) return void req.socket.destroy();
      answered.add(req.socket);
      res.end(req.url);
    });
    const c = track(client());
    expect((await c.request('callback', `${s.base}/first`, { method: 'POST', body: 'a' })).body.toString()).to.equal('/first');
    await new Promise((resolve) => setTimeout(resolve, 50)); // past undici's check of an idle connection
    const again = await c.request('callback', `${s.base}/second`, { method: 'POST', body: 'b' });
    expect(again.body.toString()).to.equal('/second');
    expect(s.seen.map((r) => `${r.url} ${r.body}`)).to.deep.equal(['/first a', '/second b', '/second b']);

    // A server that closes every new connection unanswered is failing, and is asked once.
    const closing = await start((req) => void req.socket.destroy());
    const err = await expectCode(c.request('callback', `${closing.base}/x`, { method: 'POST', body: 'c' }), 'network');
    expect(err.message).to.equal('other side closed');
    expect(closing.seen).to.have.length(1);
  });

  it('closes an idle connection after 4 s though its server offers to keep it for 10 minutes', async () => {
    // Origins are strangers' to choose: kept as long as each server offered, a burst of publishes
    // naming thousands of them held as many sockets for 10 minutes, until the hub ran out of them.
    const s = await start((_req, res) => void res.setHeader('Keep-Alive', 'timeout=600').end('ok'));
    s.server.keepAliveTimeout = 600_000;
    const c = track(client());
    await c.request('callback', `${s.base}/a`, { method: 'POST', body: 'a' });
    expect(s.connections()).to.equal(1);
    const deadline = Date.now() + 8000;
    while (s.connections() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(s.connections(), 'connections still open 8 s after the answer').to.equal(0);
  });

  it('does not send a request again when the answer to it is malformed (the server did take it)', async () => {
    // What the server writes is an answer llhttp refuses (a header name with a space): read on
    // a new connection, it counted as the close of a kept-alive one, and the POST went twice.
    const s = await start((req) => void req.socket.end('HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok'));
    const c = track(client());
    await expectCode(c.request('callback', `${s.base}/once`, { method: 'POST', body: 'a' }), 'network');
    expect(s.seen.map((r) => `${r.url} ${r.body}`)).to.deep.equal(['/once a']);
  });

  it('times out a server that never responds', async () => {
    const s = await start(() => {
      /* never answer */
    });
    const started = Date.now();
    await expectCode(track(client({ timeoutMs: 300 })).request('fetch', s.base), 'timeout');
    expect(Date.now() - started).to.be.below(300 + 1500);
  });

  it('times out a server that trickles bytes forever', async () => {
    const timers: NodeJS.Timeout[] = [];
    const s = await start((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      timers.push(setInterval(() => res.write('x'), 20));
    });
    const started = Date.now();
    try {
      await expectCode(track(client({ timeoutMs: 300, maxResponseBytes: 1_000_000 })).request('fetch', s.base), 'timeout');
    } finally {
      timers.forEach(clearInterval);
    }
    expect(Date.now() - started).to.be.below(300 + 1500);
  });

  it('honours a per-request timeout', async () => {
    const s = await start(() => {
      /* never answer */
    });
    await expectCode(track(client({ timeoutMs: 60_000 })).request('fetch', s.base, { timeoutMs: 200 }), 'timeout');
  });

  it('fails with too_large for a streamed body over the cap', async () => {
    const s = await start((_req, res) => {
      res.write(Buffer.alloc(600, 'a'));
      res.end(Buffer.alloc(600, 'b')); // chunked: no content-length to check up front
    });
    await expectCode(track(client({ maxResponseBytes: 1000 })).request('fetch', s.base), 'too_large');
  });

  it('fails with too_large from content-length alone', async () => {
    const s = await start((_req, res) => {
      res.writeHead(200, { 'Content-Length': '5000' });
      res.write('abc'); // never finishes: only the declared length can trip the cap
    });
    await expectCode(track(client({ maxResponseBytes: 1000 })).request('fetch', s.base), 'too_large');
  });

  it('readAtMost: a longer body is cut there and marked truncated, its status kept, declared length or not', async () => {
    for (const declared of [false, true]) {
      const s = await start((_req, res) => {
        res.writeHead(404, { 'content-type': 'text/html', ...(declared && { 'content-length': '3000' }) });
        res.write(Buffer.alloc(1500, 'a'));
        res.end(Buffer.alloc(1500, 'b'));
      });
      const res = await track(client({ maxResponseBytes: 100_000 })).request('callback', s.base, { method: 'POST', body: 'x', readAtMost: 1000 });
      expect([res.status, res.body.length, res.truncated], `content-length ${declared}`).to.deep.equal([404, 1000, true]);
      expect(res.body.toString()).to.equal('a'.repeat(1000));
      // A body within it is whole and not marked.
      const short = await track(client({ maxResponseBytes: 100_000 })).request('callback', s.base, { method: 'POST', body: 'x', readAtMost: 5000 });
      expect([short.body.length, short.truncated]).to.deep.equal([3000, undefined]);
    }
  });

  it('does not apply the content-length cap to HEAD', async () => {
    const s = await start((_req, res) => {
      res.writeHead(200, { 'Content-Length': '5000' });
      res.end();
    });
    const res = await track(client({ maxResponseBytes: 1000 })).request('fetch', s.base, { method: 'HEAD' });
    expect(res.status).to.equal(200);
    expect(res.headers['content-length']).to.equal('5000');
    expect(res.body.length).to.equal(0);
  });

  it('answers a 304 carrying the length of its 200, and a 204 with a Content-Length, as bodiless answers, not network errors', async () => {
    // RFC 9110 §8.6 lets a 304 say how long the 200 would be (ASP.NET Core, Tornado and ReactPHP
    // do); RFC 9112 §6.3 ends a 204 or 304 at its blank line whatever Content-Length says.
    const s = await start((req, res) => {
      res.writeHead(req.url === '/not-modified' ? 304 : 204, { 'Content-Length': '42', etag: '"v1"' });
      res.end();
    });
    const c = track(client());
    const notModified = await c.request('fetch', `${s.base}/not-modified`, { headers: { 'if-none-match': '"v1"' } });
    expect([notModified.status, notModified.headers['content-length'], notModified.body.length]).to.deep.equal([304, '42', 0]);
    const noContent = await c.request('callback', `${s.base}/no-content`, { method: 'POST', body: 'x' });
    expect([noContent.status, noContent.body.length]).to.deep.equal([204, 0]);
  });

  it('accepts a body exactly at the cap', async () => {
    const s = await start((_req, res) => res.end(Buffer.alloc(1000, 'a')));
    const res = await track(client({ maxResponseBytes: 1000 })).request('fetch', s.base);
    expect(res.body.length).to.equal(1000);
  });

  it('decodes a body compressed though no Accept-Encoding asked for it (gzip, x-gzip, deflate raw or wrapped, br, two codings)', async () => {
    const text = '<rss version="2.0"><channel><title>compressed</title></channel></rss>';
    const codings: [string, Buffer][] = [
      ['gzip', gzipSync(text)],
      ['x-gzip', gzipSync(text)],
      ['deflate', deflateSync(text)],
      ['deflate', deflateRawSync(text)],
      ['br', brotliCompressSync(text)],
      ['deflate, gzip', gzipSync(deflateSync(text))],
      ['identity', Buffer.from(text)],
    ];
    let i = 0;
    const s = await start((req, res) => {
      const [coding, body] = codings[Number(req.url!.slice(1))]!;
      res.writeHead(200, { 'content-type': 'application/rss+xml', 'content-encoding': coding, 'content-length': String(body.length), etag: '"v1"' }).end(body);
    });
    for (const [coding] of codings) {
      const res = await track(client()).request('fetch', `${s.base}/${i++}`);
      expect(res.body.toString(), coding).to.equal(text);
      expect([res.headers['content-encoding'], res.headers['content-length'], res.headers['etag']], coding).to.deep.equal(
        coding === 'identity' ? ['identity', String(text.length), '"v1"'] : [undefined, undefined, '"v1"'],
      );
    }
    expect(s.seen.map((r) => r.headers['accept-encoding'])).to.deep.equal(codings.map(() => undefined));
  });

  it('fails with too_large when a compressed body decodes to more than the cap, and with network when it does not decode', async () => {
    const bomb = gzipSync(Buffer.alloc(1_000_000, 'a')); // about 1 KB that says a megabyte
    const s = await start((req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(req.url === '/bomb' ? bomb : 'not gzip at all');
    });
    expect(bomb.length).to.be.below(2000);
    await expectCode(track(client({ maxResponseBytes: 2000 })).request('fetch', `${s.base}/bomb`), 'too_large');
    await expectCode(track(client({ maxResponseBytes: 2000 })).request('fetch', `${s.base}/junk`), 'network');
  });

  it('decodes only fetched content: an error page or a callback\'s answer labelled gzip but not gzip is answered by its status', async () => {
    const s = await start((req, res) => {
      res.writeHead(req.url === '/busy' ? 503 : 200, { 'content-encoding': 'gzip', 'retry-after': '120' }).end('not gzip at all');
    });
    const busy = await track(client()).request('fetch', `${s.base}/busy`);
    expect([busy.status, busy.headers['retry-after']]).to.deep.equal([503, '120']);
    const answered = await track(client()).request('callback', `${s.base}/cb`, { method: 'POST', body: 'x' });
    expect([answered.status, answered.body.toString()]).to.deep.equal([200, 'not gzip at all']);
  });

  it('leaves a coding it does not know, and a body cut at readAtMost, as they came', async () => {
    const gz = gzipSync(Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251))); // longer than readAtMost compressed
    const s = await start((req, res) => {
      res.writeHead(200, { 'content-encoding': req.url === '/zstd' ? 'zstd' : 'gzip' }).end(req.url === '/zstd' ? 'zstd bytes' : gz);
    });
    expect(gz.length).to.be.above(50);
    const unknown = await track(client()).request('fetch', `${s.base}/zstd`);
    expect([unknown.body.toString(), unknown.headers['content-encoding']]).to.deep.equal(['zstd bytes', 'zstd']);
    const cut = await track(client({ maxResponseBytes: 100_000 })).request('callback', `${s.base}/cut`, { method: 'POST', body: 'x', readAtMost: 50 });
    expect([cut.truncated, cut.body.equals(gz.subarray(0, 50)), cut.headers['content-encoding']]).to.deep.equal([true, true, 'gzip']);
  });
});
