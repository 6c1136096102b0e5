// `Expect: 100-continue`, as curl sends it for every POST body over 1 KB and many HTTP libraries
// for large ones: the hub asks for the body only when it is going to read it. A request it
// refuses unread (declared over the face's limit, over the rate limit) gets its final answer at
// once, in its face's shape, with no 100 Continue before it, and the body never crosses the wire.
// Over raw sockets, so that what the hub sends before the body is visible.
import { expect } from 'chai';
import net from 'node:net';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer, MSG } from './helpers/rsscloud.js';

/** A declared body far over every face's limit (none of it is ever sent). */
const HUGE = 50 * 1024 * 1024;

interface Exchange {
  /** Everything the hub sent, in order. */
  received: string;
  /** Whether the hub closed the connection before the wait ran out. */
  closed: boolean;
}

/**
 * Sends `head` (a request's line and headers) and, once the hub says 100 Continue, `body` if
 * there is one. Resolves when the hub closes the connection or `waitMs` passes without that.
 */
function exchange(port: number, head: string, body?: string, waitMs = 3000): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let received = '';
    let sent = false;
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (!sent && body !== undefined && received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        sent = true;
        socket.write(body);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => done(true));
  });
}

function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: hub\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

const FORM = 'application/x-www-form-urlencoded';

describe('Expect: 100-continue', function () {
  this.timeout(20_000);
  let hub: TestHub;
  let feeds: FeedServer;
  before(async () => {
    feeds = await FeedServer.start();
    hub = await startTestHub();
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
  });

  const refusals: [string, string, RegExp][] = [
    ['/ping', FORM, /<result success="false" msg="The request body is too large."\/>/],
    ['/pleaseNotify', FORM, /<notifyResult success="false" msg="The request body is too large."\/>/],
    ['/RPC2', 'text/xml', /<fault>.*The request body is too large\./s],
    // A fat ping: the one body /websub takes up to WEBSUB_MAX_BODY_BYTES.
    ['/websub?hub.mode=publish&hub.topic=http%3A%2F%2Fexample.com%2Ffeed', 'application/rss+xml', /^The request body is too large\.\n$/m],
  ];
  for (const [path, type, shape] of refusals) {
    it(`${path}: a body declared over the limit is refused at once with 413 in the face's shape, never asked for`, async () => {
      const { received, closed } = await exchange(hub.port, head('POST', path, { 'Content-Type': type, 'Content-Length': HUGE, Expect: '100-continue' }));
      expect(received, 'the hub asked for the body it refuses').to.not.include('100 Continue');
      expect(received).to.match(/^HTTP\/1\.1 413 /);
      expect(received).to.match(shape);
      // The client was not told to send the body: the connection cannot carry a next request.
      expect(received).to.match(/\r\nConnection: close\r\n/i);
      expect(closed).to.equal(true);
    });
  }

  const websubRefusals: [string, string, number, number, string][] = [
    ['a body that is not a form and no fat ping', 'application/json', 4000, 415, 'The request body must be a form: application/x-www-form-urlencoded (or multipart/form-data).\n'],
    ['a form declared over 64 KB (within WEBSUB_MAX_BODY_BYTES)', FORM, 200_000, 413, 'A form must be at most 65536 bytes; only a fat ping may be larger.\n'],
  ];
  for (const [what, type, length, status, words] of websubRefusals) {
    it(`/websub: ${what} is refused at once (${status}), never asked for`, async () => {
      const { received, closed } = await exchange(hub.port, head('POST', '/websub', { 'Content-Type': type, 'Content-Length': length, Expect: '100-continue' }));
      expect(received, 'the hub asked for the body it refuses').to.not.include('100 Continue');
      expect(received).to.match(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(received.endsWith(`\r\n\r\n${words}`), received).to.equal(true);
      expect(closed).to.equal(true);
    });
  }

  // At the bare address, a form type (or none) leaves the face to the body: an XML-RPC call
  // sent as a form is XML-RPC's (routes/root.ts).
  it('/: a form declared over both faces\' limits is refused at once in WebSub\'s words, never asked for', async () => {
    const { received, closed } = await exchange(hub.port, head('POST', '/', { 'Content-Type': FORM, 'Content-Length': HUGE, Expect: '100-continue' }));
    expect(received, 'the hub asked for the body it refuses').to.not.include('100 Continue');
    expect(received).to.match(/^HTTP\/1\.1 413 /);
    expect(received.endsWith('\r\n\r\nA form must be at most 65536 bytes; only a fat ping may be larger.\n'), received).to.equal(true);
    expect(closed).to.equal(true);
  });

  it('/: an XML-RPC call sent as a form is asked for with 100 Continue, read once, and answered as at /RPC2', async () => {
    const body = '<?xml version="1.0"?>\n<methodCall><methodName>rssCloud.hello</methodName><params></params></methodCall>\n';
    const ask = (path: string): Promise<Exchange> =>
      exchange(hub.port, head('POST', path, { 'Content-Type': FORM, 'Content-Length': body.length, Expect: '100-continue', Connection: 'close' }), body);
    // Read twice, the second read would wait for an end already past, and no answer would come.
    const atRoot = await ask('/');
    expect(atRoot.received).to.match(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(atRoot.received).to.match(/<boolean>1<\/boolean>/);
    const withoutDate = (r: string): string => r.replace(/\r\nDate: [^\r]*/, '');
    expect(withoutDate(atRoot.received)).to.equal(withoutDate((await ask('/RPC2')).received));
  });

  for (const path of ['/ping', '/pleaseNotify', '/RPC2', '/websub']) {
    it(`${path}: a body in a Content-Encoding the hub cannot read is refused at once (415), never asked for`, async () => {
      const type = path === '/RPC2' ? 'text/xml' : FORM;
      const { received, closed } = await exchange(hub.port, head('POST', path, { 'Content-Type': type, 'Content-Encoding': 'compress', 'Content-Length': 4000, Expect: '100-continue' }));
      expect(received, 'the hub asked for the body it refuses').to.not.include('100 Continue');
      expect(received).to.match(/^HTTP\/1\.1 415 /);
      expect(received).to.match(/\r\nAccept-Encoding: gzip, deflate, br/i);
      expect(closed).to.equal(true);
    });
  }

  it('a body within the limit is asked for with 100 Continue and then read', async () => {
    const body = `url=${encodeURIComponent(feeds.fixed('expect-continue'))}&pad=${'x'.repeat(2000)}`;
    const { received } = await exchange(hub.port, head('POST', '/ping', { 'Content-Type': FORM, 'Content-Length': body.length, Expect: '100-continue', Connection: 'close' }), body);
    expect(received).to.match(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(received).to.include(`msg="${MSG.pinged}"`);
  });

  it('without Expect, a body declared over the limit is answered 413 before it is read, and the connection serves the next request', async () => {
    const socket = net.connect(hub.port, '127.0.0.1');
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const big = 'a'.repeat(200_000);
    socket.write(head('POST', '/ping', { 'Content-Type': FORM, 'Content-Length': big.length }));
    // The answer comes before any of the body is sent: nothing was waiting for it.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      socket.once('data', () => resolve(clearTimeout(timer)));
    });
    expect(received, 'no answer before the body').to.match(/^HTTP\/1\.1 413 /);
    // A client that sends its body anyway (it was on the wire already) keeps its connection.
    const next = `url=${encodeURIComponent(feeds.fixed('after-413'))}`;
    socket.write(big + head('POST', '/ping', { 'Content-Type': FORM, 'Content-Length': next.length, Connection: 'close' }) + next);
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    expect(received.match(/^HTTP\/1\.1 \d+/gm)).to.deep.equal(['HTTP/1.1 413', 'HTTP/1.1 200']);
    expect(received).to.include(`msg="${MSG.pinged}"`);
  });

  describe('over the rate limit (RATE_LIMIT_PER_MINUTE=60, RATE_LIMIT_BURST=1)', () => {
    let limited: TestHub;
    before(async () => {
      limited = await startTestHub({ RATE_LIMIT_PER_MINUTE: '60', RATE_LIMIT_BURST: '1' });
    });
    after(async () => {
      await limited?.destroy();
    });

    it('the refused request gets 429 at once, without 100 Continue, its body never sent', async () => {
      const ask = (): Promise<Exchange> =>
        exchange(limited.port, head('POST', '/RPC2', { 'Content-Type': 'text/xml', 'Content-Length': 4000, Expect: '100-continue', Connection: 'close' }), ' '.repeat(4000));
      const first = await ask();
      expect(first.received).to.match(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      const second = await ask();
      expect(second.received).to.not.include('100 Continue');
      expect(second.received).to.match(/^HTTP\/1\.1 429 /);
      expect(second.received).to.match(/<fault>/);
    });

    // Read to learn which face it is for, such a body was read whole (up to WEBSUB_MAX_BODY_BYTES)
    // before either face's rate limit was asked: a client over its rate had every body read.
    it('/: a body whose headers leave its face to its content gets 429 at once, never asked for', async () => {
      const body = 'hub.mode=nothing';
      const ask = (): Promise<Exchange> =>
        exchange(limited.port, head('POST', '/', { 'Content-Type': FORM, 'Content-Length': body.length, Expect: '100-continue', Connection: 'close' }), body);
      const first = await ask();
      expect(first.received).to.match(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 400 /);
      const second = await ask();
      expect(second.received, 'the hub asked for the body of a client over its rate').to.not.include('100 Continue');
      expect(second.received).to.match(/^HTTP\/1\.1 429 /);
      expect(second.received).to.match(/\r\nRetry-After: \d+\r\n/i);
      expect(second.received).to.match(/\r\nAccess-Control-Allow-Origin: \*\r\n/i);
      expect(second.received).to.match(/\r\n\r\nToo many requests from your address: try again in \d+ seconds?\.\n$/);
    });
  });
});
