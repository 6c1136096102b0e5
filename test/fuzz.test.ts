// Property-based fuzzing of every public endpoint with random and malformed requests: bodies
// (arbitrary bytes, near-valid forms, near-valid XML-RPC, JSON, multipart, gzip that is not),
// content types, Accept, X-Forwarded-For, X-Hub-Signature and Content-Encoding. The property:
// no 5xx, no crash, no hang (every request has a client deadline), and every reply well-formed
// for its face. One in-process hub takes 6,400 cases per run (FUZZ_RUNS), 16 at a time over
// keep-alive connections; URLs point at a closed port or at a local Recorder, and a stub DNS
// keeps every name off the real network. At the end the hub still answers a normal ping.
//
// The seed is Date.now() unless FUZZ_SEED is set; a failure prints the seed and the fast-check
// path, and `FUZZ_SEED=<seed> FUZZ_PATH=<path> npx mocha test/fuzz.test.ts` replays it.
import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { XMLValidator } from 'fast-xml-parser';
import type { Resolver } from '../lib/http.js';
import { bodyWork, startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, type Recorded } from './helpers/recorder.js';
import { MSG, readReply } from './helpers/rsscloud.js';

const BATCH = 16;
// 400 batches of 16 = 6,400 cases (10,240 until the suite neared its 5 minutes on a loaded
// machine); each run has its own seed, so the cases add up over runs. FUZZ_RUNS for more.
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const CLIENT_TIMEOUT_MS = 10_000;
const PUBLISHER_SECRET = 'fuzz-publisher-secret';

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

// ---- the world the hub sees ----------------------------------------------------------------

/** Names resolve to loopback when they end in .test; every other name does not exist. */
const resolver: Resolver = async (hostname) => {
  if (hostname === 'localhost' || hostname.endsWith('.test')) return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

let reads = 0;
/** Feeds that change on every read, verification that succeeds on /echo paths, 200 to POSTs. */
const world = (req: Recorded, res: http.ServerResponse): void => {
  const challenge = req.query.get('hub.challenge');
  if (req.method === 'GET' && challenge !== null) {
    if (req.path.includes('echo')) res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
    else res.writeHead(404).end('no');
    return;
  }
  if (req.method === 'GET' && req.path.startsWith('/page')) {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head><link rel="alternate" type="application/rss+xml" href="/feed/from-page"></head></html>`);
    return;
  }
  if (req.method === 'GET' && req.path.startsWith('/feed')) {
    res
      .writeHead(200, { 'content-type': 'application/rss+xml' })
      .end(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><guid>${++reads % 3}</guid><title>i</title></item></channel></rss>`);
    return;
  }
  if (req.method === 'POST') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  res.writeHead(404).end('not found');
};

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- arbitraries ---------------------------------------------------------------------------

/** encodeURIComponent that takes any string: lone surrogates become U+FFFD first. */
const enc = (s: string): string => encodeURIComponent(Buffer.from(s, 'utf8').toString('utf8'));

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const latin1 = fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 10 });
const headerValue = fc.oneof(printable, fc.tuple(printable, latin1).map(([a, b]) => a + b));
const letters = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-.'), minLength: 1, maxLength: 20 });
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  printable,
  fc.constantFrom('', ' ', '\u0000', '\u0001', '\uFFFE', '\uD800', '💥', 'é', '\r\n', '%', '%zz', '&', '=', '<', '"', "'"),
);

function arbitraries(base: string, closed: number) {
  const urls = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(`${base}/feed/a.xml`, `${base}/feed/b.xml`, `${base}/page/`, `${base}/echo/cb`, `${base}/cb`) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(`${base}/feed/`, `${base}/echo/`, `http://127.0.0.1:${closed}/`, `http://localhost:${closed}/`, `http://name.test:${closed}/`, `http://nowhere.invalid/`), letters).map(([b, s]) => b + s) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        `http://127.0.0.1:${closed}/feed.xml`,
        `https://127.0.0.1:${closed}/feed.xml`,
        'http://10.0.0.1/feed.xml',
        'http://169.254.169.254/latest/meta-data/',
        'http://[::1]:1/',
        'http://0/',
        'http://u:p@127.0.0.1/',
        'ftp://127.0.0.1/feed.xml',
        'file:///etc/passwd',
        'javascript:alert(1)',
        'http://',
        'http://ü.test/feed',
        `${base}/feed/with#fragment`,
        `${base}/feed/?a=1&b=%zz`,
        `${base}/feed/a.xml,${base}/feed/b.xml`,
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 4000 }).map((n) => `${base}/feed/${'a'.repeat(n)}`) },
    { weight: 1, arbitrary: anyText },
  );
  // A control character, a non-character or a stray surrogate somewhere in a value.
  const dirty = (arb: fc.Arbitrary<string>): fc.Arbitrary<string> =>
    fc.tuple(arb, fc.constantFrom('\u0000', '\u0001', '\u0008', '\u001f', '\u007f', '\u0085', '\uFFFE', '\uFFFF', '\uD800', '\uDC00', '\t', '\n', '\r'), fc.nat()).map(([v, ch, at]) => {
      const i = at % (v.length + 1);
      return v.slice(0, i) + ch + v.slice(i);
    });
  const value = fc.oneof(
    { weight: 4, arbitrary: urls },
    { weight: 2, arbitrary: dirty(urls) },
    { weight: 3, arbitrary: anyText },
    {
      weight: 3,
      arbitrary: fc.constantFrom('http-post', 'https-post', 'xml-rpc', 'soap', 'subscribe', 'unsubscribe', 'publish', 'discover', 'denied', '80', '0', '443', '65536', '-1', String(closed), '3600', '99999999999999', 'sha256'),
    },
    { weight: 1, arbitrary: fc.integer().map(String) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 30000 }).chain((n) => fc.constantFrom('x', 'é', '💥').map((c) => c.repeat(n))) },
  );
  const KEYS = ['url', 'url1', 'url2', 'urlx', 'port', 'path', 'protocol', 'domain', 'notifyProcedure', 'hub.mode', 'hub.topic', 'hub.callback', 'hub.secret', 'hub.lease_seconds', 'hub.verify_token', 'hub.url', 'hub.url[]', 'hub.topic[]'];
  const key = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: anyText });
  const pairs = fc.array(fc.tuple(key, value), { maxLength: 10 });
  // Forms: properly encoded, raw (unencoded, so '&', '=', '%' and bytes land as they are), or
  // a near-valid subscribe/ping with one field perturbed.
  const form = fc.oneof(
    pairs.map((p) => new URLSearchParams(p).toString()),
    pairs.map((p) => p.map(([k, v]) => `${k}=${v}`).join('&')),
    fc.tuple(fc.constantFrom('url', 'url1'), dirty(fc.oneof(urls, anyText))).map(([k, v]) => new URLSearchParams({ [k]: v, port: '80', path: '/', protocol: 'http-post' }).toString()),
    fc.record({ protocol: fc.oneof(fc.constantFrom('http-post', 'xml-rpc', 'https-post'), dirty(anyText)), port: fc.constantFrom(String(closed), new URL(base).port, '80'), path: fc.constantFrom('/cb', '/echo/cb', 'cb', ''), url1: urls, domain: fc.constantFrom('', 'name.test', 'localhost', '127.0.0.1', '10.0.0.1', '::1', 'x y') }).map((r) => new URLSearchParams(r).toString()),
    fc.record({ 'hub.mode': fc.constantFrom('subscribe', 'unsubscribe', 'publish'), 'hub.topic': urls, 'hub.callback': urls, 'hub.secret': fc.oneof(anyText, fc.constant('s'.repeat(250))), 'hub.lease_seconds': fc.constantFrom('', '0', '60', 'abc', '86400') }).map((r) => new URLSearchParams(r).toString()),
    fc.tuple(urls, fc.array(urls, { maxLength: 30 })).map(([u, more]) => new URLSearchParams([['url', u], ['hub.mode', 'publish'], ...more.map((m): [string, string] => ['hub.url', m])]).toString()),
  );

  // XML-RPC: near-valid calls with random element names, nesting, types and entities.
  const textBits = fc.oneof(
    { weight: 3, arbitrary: anyText.map((t) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;')) },
    { weight: 2, arbitrary: urls.map((u) => u.replace(/&/g, '&amp;').replace(/</g, '&lt;')) },
    { weight: 2, arbitrary: fc.constantFrom('&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#x41;', '&#65;', '&#x0;', '&#99999999;', '&#xD800;', '&foo;', '&', '&#;', '<![CDATA[<x>&]]>', '<!-- c -->', '<?pi x?>', '1', '-2147483649', '1e309', 'NaN', '20240101T00:00:00', 'AAAA', 'true') },
  );
  const text = fc.array(textBits, { maxLength: 4 }).map((a) => a.join(''));
  const typeName = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('string', 'int', 'i4', 'i8', 'boolean', 'double', 'base64', 'dateTime.iso8601', 'nil', 'ex:nil') },
    { weight: 1, arbitrary: fc.constantFrom('struct', 'array', 'value', 'data', 'member', 'x', 'a:b', 'params', 'methodCall') },
  );
  const scalar = fc.oneof(
    fc.tuple(typeName, text).map(([t, v]) => `<value><${t}>${v}</${t}></value>`),
    text.map((v) => `<value>${v}</value>`),
    typeName.map((t) => `<value><${t}/></value>`),
  );
  const { value: xmlValue } = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar,
      fc.array(tie('value'), { maxLength: 4 }).map((vs) => `<value><array><data>${vs.join('')}</data></array></value>`),
      fc.array(fc.tuple(text, tie('value')), { maxLength: 3 }).map((ms) => `<value><struct>${ms.map(([n, v]) => `<member><name>${n}</name>${v}</member>`).join('')}</struct></value>`),
      fc.tuple(fc.constantFrom('a', 'value', 'x:y', 'data'), tie('value')).map(([n, v]) => `<value><${n}>${v}</${n}></value>`),
    ),
  }));
  const methodName = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('rssCloud.ping', 'rssCloud.pleaseNotify', 'rssCloud.hello', 'weblogUpdates.ping', 'weblogUpdates.extendedPing', 'weblogUpdates.rssUpdate') },
    { weight: 1, arbitrary: text },
  );
  const str = (s: string): string => `<value><string>${s.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</string></value>`;
  const nearValidParams = fc.oneof(
    urls.map((u) => [str(u)]),
    fc.tuple(urls, fc.constantFrom(String(closed), new URL(base).port, 'x'), fc.constantFrom('xml-rpc', 'http-post', 'bogus'), fc.array(urls, { maxLength: 4 })).map(([u, port, proto, more]) => [
      str('notify'),
      `<value><int>${port}</int></value>`,
      str('/echo/rpc'),
      str(proto),
      `<value><array><data>${[u, ...more].map(str).join('')}</data></array></value>`,
    ]),
    fc.tuple(anyText, urls, urls).map(([n, site, feed]) => [str(n), str(site), str(feed)]),
  );
  const params = fc.oneof(nearValidParams, fc.array(xmlValue, { maxLength: 5 }));
  const call = fc.tuple(methodName, params).map(([m, ps]) => `<?xml version="1.0"?>\n<methodCall><methodName>${m}</methodName><params>${ps.map((p) => `<param>${p}</param>`).join('')}</params></methodCall>`);
  const snippet = fc.constantFrom('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', '<!ENTITY a "b">', '</value>', '<value>', '&', '\u0000', ']]>', '<![CDATA[', '<methodCall>', '<?xml version="1.0" encoding="UTF-16"?>', '\uFEFF', '<', '>', '"');
  const xmlrpc = fc.oneof(
    { weight: 3, arbitrary: call },
    { weight: 1, arbitrary: fc.tuple(call, fc.nat()).map(([c, i]) => c.slice(0, i % (c.length + 1))) },
    { weight: 2, arbitrary: fc.tuple(call, fc.nat(), snippet).map(([c, i, s]) => { const at = i % (c.length + 1); return c.slice(0, at) + s + c.slice(at); }) },
    { weight: 1, arbitrary: fc.tuple(call, call).map(([a, b]) => a + b) },
  );

  const multipart = pairs.map((p) => Buffer.from(`${p.map(([k, v]) => `--XyZ\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')}--XyZ--\r\n`));
  const body = fc.oneof(
    { weight: 4, arbitrary: form.map((s) => Buffer.from(s)) },
    { weight: 4, arbitrary: xmlrpc.map((s) => Buffer.from(s)) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 3000 }).map((u) => Buffer.from(u)) },
    { weight: 1, arbitrary: fc.json().map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: multipart },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 1, arbitrary: fc.tuple(form, fc.integer({ min: 2, max: 40 })).map(([s, n]) => Buffer.from(s.repeat(n))) },
  );

  const contentType = fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=utf-8',
        'application/x-www-form-urlencoded; charset=latin1',
        'text/xml',
        'text/xml; charset=utf-16',
        'application/xml',
        'application/json',
        'multipart/form-data; boundary=XyZ',
        'text/plain',
        'application/octet-stream',
        'application/rss+xml',
        'text/html',
        '',
        'garbage',
        ';;;',
        'text/xml; charset="unterminated',
        '*/*',
      ),
    },
    { weight: 1, arbitrary: headerValue },
  );
  const accept = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constantFrom('application/json', 'text/xml', '*/*', 'application/json;q=0, text/xml', 'text/html', 'application/xml;q=0.1, application/json;q=0.9', '', 'application/*', 'json') },
    { weight: 1, arbitrary: headerValue },
  );
  const forwarded = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constantFrom('10.0.0.1', '192.168.1.1, 10.0.0.2', '2001:db8::1', '2001:db8::1, 127.0.0.1', 'unknown', '', ',,,', '127.0.0.1', '::1', '::ffff:10.1.1.1', 'fe80::1%eth0', '300.1.1.1', '[::1]:80', '10.0.0.1:1234') },
    { weight: 1, arbitrary: letters },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('10.0.0.1', 'x', '', ' ', '::1'), { maxLength: 6 }).map((a) => a.join(',')) },
  );
  const signature = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constant('VALID') }, // replaced by a real signature of the body
    { weight: 2, arbitrary: fc.constantFrom('sha1=', 'md5=abc', '=', 'sha256', 'sha512=zz', 'sha256=00', 'SHA256=0123456789abcdef', 'sha384=' + 'a'.repeat(96)) },
    { weight: 1, arbitrary: headerValue },
  );
  const encoding = fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-gzip', 'gzip, deflate', 'bogus', '') },
    { weight: 1, arbitrary: fc.constant('REAL-GZIP') }, // the body really gzipped
  );

  const PATHS = {
    pleaseNotify: ['/pleaseNotify', '/pleasenotify', '/PLEASENOTIFY/', '/rsscloud/pleaseNotify', '/rssCloud/pleaseNotify/'],
    ping: ['/ping', '/ping/', '/PING', '/rsscloud/ping', '/rssCloud/Ping'],
    rpc2: ['/RPC2', '/rpc2', '/RPC2/'],
    websub: ['/websub', '/websub/', '/WebSub'],
    other: ['/', '/nope', '/test/getData', '/test/clear', '/pleaseNotify/extra', '/RPC2x', '/admin/hosts/retry', '/admin/subscriptions/delete', '/healthz', '/stats.json', '/feeds.opml', '/metrics', '/%', '/..%2f..%2fetc/passwd'],
  };
  const query = fc.oneof(
    { weight: 6, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('publish', 'discover', 'subscribe', ''), urls).map(([m, u]) => `?hub.mode=${m}&hub.topic=${enc(u)}`) },
    { weight: 1, arbitrary: fc.tuple(key, value).map(([k, v]) => `?${enc(k)}=${enc(v)}`) },
    { weight: 1, arbitrary: fc.constantFrom('?', '?&&', '?hub.mode', '?%zz=1', '?url=' + enc(`${base}/feed/a.xml`)) },
  );
  const path = fc.tuple(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...PATHS.pleaseNotify, ...PATHS.ping) },
      { weight: 2, arbitrary: fc.constantFrom(...PATHS.rpc2) },
      { weight: 3, arbitrary: fc.constantFrom(...PATHS.websub) },
      { weight: 1, arbitrary: fc.constantFrom(...PATHS.other) },
      { weight: 1, arbitrary: letters.map((l) => `/${l}`) },
    ),
    query,
  ).map(([p, q]) => p + q);
  const method = fc.oneof(
    { weight: 12, arbitrary: fc.constant('POST') },
    { weight: 3, arbitrary: fc.constant('GET') },
    { weight: 1, arbitrary: fc.constantFrom('OPTIONS', 'HEAD', 'PUT', 'DELETE', 'PATCH') },
  );

  return fc
    .record({ method, path, body, contentType, accept, forwarded, signature, encoding, extra: fc.option(fc.tuple(fc.constantFrom('x-fuzz', 'origin', 'authorization', 'cookie', 'last-event-id', 'expect-ct'), headerValue), { nil: undefined }) })
    .map((r): Case => {
      const headers: Record<string, string> = {};
      let payload = r.body;
      if (r.contentType !== undefined) headers['content-type'] = r.contentType;
      if (r.accept !== undefined) headers['accept'] = r.accept;
      if (r.forwarded !== undefined) headers['x-forwarded-for'] = r.forwarded;
      if (r.signature !== undefined) {
        headers['x-hub-signature'] = r.signature === 'VALID' ? `sha256=${createHmac('sha256', PUBLISHER_SECRET).update(payload).digest('hex')}` : r.signature;
      }
      if (r.encoding === 'REAL-GZIP') {
        payload = gzipSync(payload);
        headers['content-encoding'] = 'gzip';
      } else if (r.encoding !== undefined) {
        headers['content-encoding'] = r.encoding;
      }
      if (r.extra) headers[r.extra[0]] = r.extra[1];
      const withBody = r.method !== 'GET' && r.method !== 'HEAD' && r.method !== 'OPTIONS';
      const c: Case = { method: r.method, path: r.path, headers, ...(withBody && { body: payload }) };
      // Counterexamples print short: a case can carry tens of kilobytes.
      return Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) });
    });
}

/** A case in one readable line, long parts cut. */
function describeCase(c: Case): string {
  const cut = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…(${s.length} chars)` : s);
  const body = c.body === undefined ? '' : ` body=${JSON.stringify(cut(c.body.toString('latin1')))}`;
  return `${c.method} ${cut(c.path)} ${JSON.stringify(c.headers)}${body}`;
}

// ---- sending -------------------------------------------------------------------------------

const quiet = new WeakSet<object>();

function send(agent: http.Agent, port: number, c: Case, retried = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    // Sent again, on a connection of its own: the pool may hold more sockets the server closed
    // while this process was held up (a loaded machine), and a second stale one failed the run.
    const req = http.request({ host: '127.0.0.1', port, agent: retried ? false : agent, method: c.method, path: c.path, headers: c.headers });
    // The hub may answer (a 404, a 413) and close before it has read a body we are still
    // writing; the write then fails on a socket the request has already given back.
    req.on('socket', (socket) => {
      if (quiet.has(socket)) return;
      quiet.add(socket);
      socket.on('error', () => {}); // the request's own listener reports errors while it is in flight
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${CLIENT_TIMEOUT_MS} ms (hang)`)), CLIENT_TIMEOUT_MS);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - t0 });
      });
      res.on('error', (e) => {
        clearTimeout(deadline);
        reject(e);
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      // A kept-alive socket the server closed just as it was reused: Node's documented race.
      if (req.reusedSocket && !retried && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return resolve(send(agent, port, c, true));
      reject(e);
    });
    req.end(c.body);
  });
}

// ---- the oracle: what a well-formed reply of each face looks like --------------------------

const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function wellFormedXml(body: string): string | null {
  if (NOT_XML_CHAR.test(body)) return 'a character XML cannot carry';
  const v = XMLValidator.validate(body);
  return v === true ? null : `not well-formed XML (${v.err.msg})`;
}

const RSS_XML = /^<\?xml version="1\.0" encoding="UTF-8" standalone="yes"\?>\n<(notifyResult|result) success="(true|false)" msg="[^"<]*"\/>\n$/;

type Face = 'pleaseNotify' | 'ping' | 'rpc2' | 'websub' | 'other';

function faceOf(path: string): Face {
  const p = path.split('?')[0]!.toLowerCase().replace(/\/+$/, '');
  if (p === '/pleasenotify' || p === '/rsscloud/pleasenotify') return 'pleaseNotify';
  if (p === '/ping' || p === '/rsscloud/ping') return 'ping';
  if (p === '/rpc2') return 'rpc2';
  if (p === '/websub') return 'websub';
  return 'other';
}

/** What is wrong with the answer to `c`, or null. */
function problem(c: Case, a: Answer): string | null {
  const type = String(a.headers['content-type'] ?? '');
  const text = a.body.toString('utf8');
  const face = faceOf(c.path);
  const notFound = (): string | null =>
    a.status === 404 && text === (c.method === 'HEAD' ? '' : 'Not found.\n') ? null : `expected the 404 page, got ${a.status} ${type}`;
  if (a.status >= 500) return `HTTP ${a.status}`;
  // Discovery reports a topic it could not read as 422 with {topic, error}.
  const discover = face === 'websub' && (c.method === 'GET' || c.method === 'HEAD') && new URLSearchParams(c.path.split('?')[1] ?? '').get('hub.mode') === 'discover';
  if (discover && a.status === 422) {
    if (!type.startsWith('application/json')) return `a 422 that is not JSON: ${type}`;
    if (c.method === 'HEAD') return null;
    const json = JSON.parse(text) as Record<string, unknown>;
    return Object.keys(json).sort().join() === 'error,topic' && typeof json.error === 'string' ? null : `a 422 that is not {topic, error}: ${text}`;
  }
  if (a.status < 200) return `HTTP ${a.status}`;
  // Node's own HTTP layer refuses what it cannot parse before the hub sees it (431 for a URL
  // or headers over 16 KB), with an empty body.
  if (a.status === 431 || (a.status === 400 && type === '' && a.body.length === 0)) return null;
  // Elsewhere (operator pages, unknown paths) anything below 500 will do.
  if (face === 'other') return a.status === 404 ? notFound() : null;
  // Express answers OPTIONS for its own routes (200 with Allow) unless a face answers it (204).
  if (c.method === 'OPTIONS') return [200, 204, 404].includes(a.status) ? null : `OPTIONS answered ${a.status}`;
  // HEAD runs a GET route without its body.
  if (c.method === 'HEAD') return a.body.length === 0 ? null : 'HEAD with a body';
  switch (face) {
    case 'pleaseNotify':
    case 'ping': {
      if (c.method !== 'POST') return notFound();
      if (type === 'application/json; charset=utf-8') {
        const json = JSON.parse(text) as Record<string, unknown>;
        if (Object.keys(json).join() !== 'success,msg' || typeof json.success !== 'boolean' || typeof json.msg !== 'string') return `bad JSON reply ${text}`;
        if (c.headers.accept === undefined) return 'JSON without asking for it';
        return null;
      }
      if (type !== 'text/xml; charset=utf-8') return `content-type ${type}`;
      const m = RSS_XML.exec(text);
      if (!m) return `not an rssCloud reply: ${JSON.stringify(text.slice(0, 300))}`;
      if (m[1] !== (face === 'ping' ? 'result' : 'notifyResult')) return `root <${m[1]}> on ${face}`;
      return wellFormedXml(text);
    }
    case 'rpc2': {
      if (c.method !== 'POST') return notFound();
      if (type !== 'text/xml; charset=utf-8') return `content-type ${type}`;
      if (!text.startsWith('<?xml version="1.0"?>\n<methodResponse>')) return `not a methodResponse: ${JSON.stringify(text.slice(0, 200))}`;
      const bad = wellFormedXml(text);
      if (bad) return bad;
      if (text.includes('<fault>')) {
        return /<member><name>faultCode<\/name><value><int>4<\/int><\/value><\/member><member><name>faultString<\/name><value><string>/.test(text) ? null : `odd fault ${text}`;
      }
      return /^<\?xml version="1\.0"\?>\n<methodResponse><params><param><value>.*<\/value><\/param><\/params><\/methodResponse>$/s.test(text) ? null : `odd response ${text}`;
    }
    case 'websub': {
      if (c.method === 'GET' && a.status === 200) return type.startsWith('application/json') ? (JSON.parse(text), null) : `discovery content-type ${type}`;
      if (c.method !== 'POST' && c.method !== 'GET') return notFound();
      // A publish accepted whole: 204 and nothing else (PubSubHubbub 0.3 §7.1).
      if (a.status === 204) return c.method === 'POST' && text === '' ? null : `204 to ${c.method} with ${JSON.stringify(text)}`;
      if (type !== 'text/plain; charset=utf-8') return `content-type ${type}`;
      if (!text.endsWith('\n') || text.length < 2) return `plain text reply without its line: ${JSON.stringify(text)}`;
      return null;
    }
  }
}

// ---- the property --------------------------------------------------------------------------

describe('fuzzing every endpoint (fast-check)', function () {
  this.timeout(240_000);
  let hub: TestHub;
  let rec: Recorder;
  let agent: http.Agent;
  let closed: number;

  before(async () => {
    rec = await Recorder.start(world);
    closed = await closedPort();
    hub = await startTestHub(
      {
        ENABLE_TEST_API: 'false',
        TRUST_PROXY: '127.0.0.1',
        REQUEST_TIMEOUT_MS: '2000',
        WEBSUB_TIMEOUT_MS: '2000',
        REST_MAX_BODY_BYTES: '8192',
        RPC2_MAX_BODY_BYTES: '16384',
        WEBSUB_MAX_BODY_BYTES: '16384',
        MAX_URL_LENGTH: '1024',
        PUBLISHER_SECRETS: `${rec.url}=${PUBLISHER_SECRET}`,
        WEBSUB_RETRY_BASE_MS: '50',
        WEBSUB_MAX_ATTEMPTS: '2',
        // Every body read or pushed, whatever its bytes, diffed on the worker thread, every
        // delivery signed there: what crosses to it and back must hold for any of them.
        BODY_THREAD_MIN_BYTES: '1',
      },
      undefined,
      { resolver },
    );
    agent = new http.Agent({ keepAlive: true, maxSockets: BATCH });
  });
  after(async () => {
    agent?.destroy();
    await hub?.destroy();
    await rec?.close();
  });

  it(`answers ${RUNS * BATCH} random requests without a 5xx, a crash or a hang, each in its face's shape`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now());
    const replayPath = process.env.FUZZ_PATH;
    let sent = 0;
    let slowest = 0;
    const started = Date.now();
    const property = fc.asyncProperty(fc.array(arbitraries(rec.url, closed), { minLength: BATCH, maxLength: BATCH }), async (cases) => {
      const answers = await Promise.allSettled(cases.map((c) => send(agent, hub.port, c)));
      sent += cases.length;
      if (rec.requests.length > 2000) rec.reset();
      const failures: string[] = [];
      answers.forEach((settled, i) => {
        const c = cases[i]!;
        const what = describeCase(c);
        if (settled.status === 'rejected') {
          failures.push(`${what}\n  → no answer: ${(settled.reason as Error).message}`);
          return;
        }
        slowest = Math.max(slowest, settled.value.ms);
        let wrong: string | null;
        try {
          wrong = problem(c, settled.value);
        } catch (e) {
          wrong = `unreadable reply (${(e as Error).message}): ${settled.value.body.toString('utf8').slice(0, 200)}`;
        }
        if (wrong) failures.push(`${what}\n  → ${settled.value.status}: ${wrong}`);
      });
      if (failures.length > 0) throw new Error(`${failures.length} bad answer(s):\n${failures.join('\n')}`);
    });
    try {
      await fc.assert(property, { numRuns: RUNS, seed, ...(replayPath !== undefined && { path: replayPath }), interruptAfterTimeLimit: 200_000 });
    } catch (e) {
      console.error(`\nfuzz failed: replay with FUZZ_SEED=${seed}${replayPath ? ` FUZZ_PATH=${replayPath}` : ''} (the fast-check path is in the message)\n`);
      throw e;
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`      fuzz: ${sent} requests in ${seconds.toFixed(1)} s (seed ${seed}, slowest answer ${slowest} ms)`);
    expect(sent).to.be.at.least(replayPath === undefined ? RUNS * BATCH : 1);

    // Everything the requests started settles, and the hub is still itself: a normal ping is
    // answered as always.
    const settled = await Promise.race([hub.hub.idle().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 60_000))]);
    expect(settled, 'the background work the fuzz started never settled').to.equal(true);
    const reply = await readReply(
      await fetch(`${hub.url}/ping`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ url: `${rec.url}/feed/final.xml` }).toString() }),
    );
    expect([reply.status, reply.root, reply.success, reply.msg]).to.deep.equal([200, 'result', true, MSG.pinged]);
    expect(await bodyWork(hub, 'diff', 'worker'), 'bodies diffed on the worker thread').to.be.greaterThan(0);
  });
});
