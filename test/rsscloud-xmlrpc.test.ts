// rssCloud over XML-RPC, end to end: the independent `xmlrpc` package is both the client calling
// the hub's /RPC2 and the subscriber the hub calls back; raw fetch sends what no client would.
import { expect } from 'chai';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import {
  FeedServer,
  LEASE_MS,
  MSG,
  XmlRpcSubscriber,
  getSubscription,
  getSubscriptions,
  iso,
  notificationsAt,
  notifyBody,
  ping,
  rawFault,
  rpcCall,
  setSubscriptions,
  subscriberOk,
  testApi,
  type RpcResult,
} from './helpers/rsscloud.js';

let seq = 0;
const unique = (prefix: string): string => `${prefix}-${++seq}`;

function expectValue(result: RpcResult, value: unknown): void {
  expect(result, JSON.stringify(result)).to.deep.equal({ ok: true, value });
}

function expectFault(result: RpcResult, faultString: string): void {
  expect(result, JSON.stringify(result)).to.deep.equal({ ok: false, faultCode: 4, faultString });
}

/** POSTs a raw body to /RPC2 and reads the fault it must answer with. */
async function rawRpc(hubUrl: string, body: string | Buffer, contentType = 'text/xml'): Promise<{ status: number; contentType: string; body: string }> {
  const res = await fetch(`${hubUrl}/RPC2`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('rssCloud XML-RPC', function () {
  let hub: TestHub;
  let feeds: FeedServer;
  let rpcSub: XmlRpcSubscriber;
  let postSub: Recorder;

  before(async () => {
    hub = await startTestHub();
    feeds = await FeedServer.start();
    rpcSub = await XmlRpcSubscriber.start();
    postSub = await Recorder.start(subscriberOk);
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
    await rpcSub?.close();
    await postSub?.close();
  });
  beforeEach(async () => {
    await testApi(hub, 'clear');
    rpcSub.reset();
    rpcSub.answer('river.feedUpdated', () => true);
    postSub.reset();
    postSub.handler = subscriberOk;
    feeds.rec.reset();
  });

  const rpcCallback = (path = '/RPC2'): string => `http://127.0.0.1:${rpcSub.port}${path}`;
  const call = (method: string, params: unknown[]): Promise<RpcResult> => rpcCall(hub.url, method, params);

  it('rssCloud.hello answers true', async () => {
    expectValue(await call('rssCloud.hello', []), true);
  });

  it('a page on another origin may call it: OPTIONS /RPC2 answers the preflight an XML body needs, and the reply is readable', async () => {
    const preflight = await fetch(`${hub.url}/RPC2`, {
      method: 'OPTIONS',
      headers: { origin: 'https://reader.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers.get('access-control-allow-origin')).to.equal('*');
    expect(preflight.headers.get('access-control-allow-methods')).to.match(/\bPOST\b/);
    expect(preflight.headers.get('access-control-allow-headers') ?? '').to.match(/content-type/i);
    const res = await fetch(`${hub.url}/RPC2`, {
      method: 'POST',
      headers: { origin: 'https://reader.example', 'content-type': 'text/xml' },
      body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.hello</methodName><params></params></methodCall>',
    });
    expect(res.headers.get('access-control-allow-origin')).to.equal('*');
  });

  describe('rssCloud.pleaseNotify', () => {
    const shapes: { name: string; port: (p: number) => unknown; urls: (feed: string) => unknown }[] = [
      { name: 'port as int, urlList as an array', port: (p) => p, urls: (f) => [f] },
      { name: 'port as string, urlList as an array', port: (p) => String(p), urls: (f) => [f] },
      { name: 'port as int, urlList as a scalar string', port: (p) => p, urls: (f) => f },
      { name: 'port as string, urlList as a scalar string', port: (p) => String(p), urls: (f) => f },
    ];
    for (const shape of shapes) {
      it(`5 params (${shape.name}): calls notifyProcedure(url) at subscribe time and on ping`, async () => {
        const feed = feeds.changing(unique('rpc'));
        const before = Date.now();
        const result = await call('rssCloud.pleaseNotify', ['river.feedUpdated', shape.port(rpcSub.port), '/RPC2', 'xml-rpc', shape.urls(feed)]);
        expectValue(result, true);
        // The handler test is a real call, made before the reply.
        expect(rpcSub.calls).to.deep.equal([{ method: 'river.feedUpdated', params: [feed] }]);
        expect(rpcSub.requests.map((r) => [r.method, r.url, r.headers['content-type']])).to.deep.equal([['POST', '/RPC2', 'text/xml']]);

        const [s] = await getSubscriptions(hub, feed);
        expect(s).to.include({ url: rpcCallback(), protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated', ctConsecutiveErrors: 0 });
        expect(Date.parse(s!.whenExpires)).to.be.at.least(before + LEASE_MS);

        expectValue(await call('rssCloud.ping', [feed]), true);
        expect(rpcSub.calls).to.deep.equal([
          { method: 'river.feedUpdated', params: [feed] },
          { method: 'river.feedUpdated', params: [feed] },
        ]);
      });
    }

    it('a REST ping reaches an XML-RPC subscriber too', async () => {
      const feed = feeds.changing(unique('rpc-rest'));
      expectValue(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed]]), true);
      rpcSub.reset();
      expect((await ping(hub, feed)).success).to.equal(true);
      expect(rpcSub.calls).to.deep.equal([{ method: 'river.feedUpdated', params: [feed] }]);
    });

    it('several URLs register each one', async () => {
      const [a, b] = [feeds.changing(unique('rpc-a')), feeds.changing(unique('rpc-b'))];
      expectValue(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [a, b]]), true);
      expect(rpcSub.calls.map((c) => c.params[0]).sort()).to.deep.equal([a, b].sort());
      for (const feed of [a!, b!]) expect(await getSubscriptions(hub, feed)).to.have.length(1);
    });

    it('6 params: the domain is the callback host, and xml-rpc gets a real call, not a challenge', async () => {
      const feed = feeds.changing(unique('rpc-domain'));
      expectValue(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed], '127.0.0.1']), true);
      expect(rpcSub.requests.map((r) => r.method)).to.deep.equal(['POST']);
      expect(rpcSub.calls).to.deep.equal([{ method: 'river.feedUpdated', params: [feed] }]);
      expect((await getSubscriptions(hub, feed)).map((s) => s.url)).to.deep.equal([rpcCallback()]);
    });

    it('http-post registered over XML-RPC is tested with a form POST; with a domain, with a challenge', async () => {
      const plain = feeds.changing(unique('rpc-post'));
      expectValue(await call('rssCloud.pleaseNotify', ['', postSub.port, '/plain', 'http-post', [plain]]), true);
      expect(notificationsAt(postSub, '/plain').map((r) => r.body.toString())).to.deep.equal([notifyBody(plain)]);

      const challenged = feeds.changing(unique('rpc-challenge'));
      expectValue(await call('rssCloud.pleaseNotify', ['', String(postSub.port), '/challenged', 'http-post', [challenged], '127.0.0.1']), true);
      const gets = postSub.matching((r) => r.path === '/challenged');
      expect(gets.map((r) => [r.method, r.query.get('url')])).to.deep.equal([['GET', challenged]]);
      expect(gets[0]!.query.get('challenge')).to.be.a('string').and.not.equal('');
    });

    it('fewer than 5 params is fault 4 "aren\'t enough parameters"', async () => {
      const feed = feeds.changing(unique('few'));
      for (const params of [[], ['river.feedUpdated'], ['river.feedUpdated', rpcSub.port, '/RPC2', [feed]]]) {
        expectFault(await call('rssCloud.pleaseNotify', params), MSG.notEnoughParams('pleaseNotify'));
      }
      expect(feeds.reads(feed)).to.equal(0);
      expect(rpcSub.calls).to.deep.equal([]);
    });

    it('7 params is fault 4 "too many parameters"', async () => {
      const feed = feeds.changing(unique('many'));
      expectFault(
        await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed], '127.0.0.1', 'extra']),
        MSG.tooManyParams('pleaseNotify'),
      );
      expect(feeds.reads(feed)).to.equal(0);
      expect(rpcSub.calls).to.deep.equal([]);
    });

    for (const protocol of ['soap', 'XML-RPC', 'http-get']) {
      it(`protocol "${protocol}" is fault 4 with the unsupported message`, async () => {
        const feed = feeds.changing(unique('rpc-proto'));
        expectFault(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', protocol, [feed]]), MSG.unsupported(protocol));
        expect(rpcSub.calls).to.deep.equal([]);
      });
    }

    it('an empty urlList, as an array or as an empty string, is fault 4 "No resources specified."', async () => {
      expectFault(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', []]), MSG.noResources);
      // A client that sends its one URL as a scalar sends an empty string when it has none.
      expectFault(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', '']), MSG.noResources);
      expect(rpcSub.calls).to.deep.equal([]);
    });

    it('an unreadable feed is fault 4 with the subscribe read-error message', async () => {
      const feed = feeds.missing(unique('rpc-404'));
      expectFault(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed]]), MSG.subscribeReadError(feed));
      expect(rpcSub.calls).to.deep.equal([]);
    });

    it('wrongly typed params are a fault, not a crash', async () => {
      const feed = feeds.changing(unique('types'));
      for (const params of [
        ['river.feedUpdated', { port: 1 }, '/RPC2', 'xml-rpc', [feed]],
        ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed, 42]],
        // A struct is neither a list nor the one URL: nothing to subscribe to.
        ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', { url: feed }],
        [true, rpcSub.port, '/RPC2', 'xml-rpc', [feed]],
      ]) {
        const result = await call('rssCloud.pleaseNotify', params);
        expectFault(result, 'pleaseNotify takes (notifyProcedure, port, path, protocol, urlList[, domain]) as strings, an int port and a list of URLs.');
      }
      expect(rpcSub.calls).to.deep.equal([]);
      expect(await getSubscriptions(hub, feed)).to.deep.equal([]);
      expectValue(await call('rssCloud.hello', []), true);
    });

    for (const [name, answer] of [
      ['returns a fault', () => ({ faultCode: 7, faultString: 'not today' })],
      ['returns false', () => false],
      // What a handler that fails sends through the xmlrpc package: <fault><value><struct/></value></fault>.
      ['fails with an Error', () => new Error('database down')],
    ] as [string, () => unknown][]) {
      it(`a subscriber whose procedure ${name} fails the handler test`, async () => {
        rpcSub.answer('river.feedUpdated', answer);
        const feed = feeds.changing(unique('rpc-refuse'));
        expectFault(await call('rssCloud.pleaseNotify', ['river.feedUpdated', rpcSub.port, '/RPC2', 'xml-rpc', [feed]]), MSG.handlerFailed);
        expect(rpcSub.calls).to.have.length(1);
        expect(await getSubscriptions(hub, feed)).to.deep.equal([]);
      });
    }

    it('a subscriber without the procedure (HTTP 404) fails the handler test', async () => {
      const feed = feeds.changing(unique('rpc-unknown-proc'));
      expectFault(await call('rssCloud.pleaseNotify', ['no.such.procedure', rpcSub.port, '/RPC2', 'xml-rpc', [feed]]), MSG.handlerFailed);
    });
  });

  describe('notifications to XML-RPC subscribers', () => {
    it('a fault (even one without faultCode and faultString) or false counts as a failed delivery; true as a delivered one', async () => {
      rpcSub.answer('sub.ok', () => true);
      rpcSub.answer('sub.fault', () => ({ faultCode: 1, faultString: 'nope' }));
      rpcSub.answer('sub.false', () => false);
      rpcSub.answer('sub.error', () => new Error('database down'));
      const feed = feeds.changing(unique('rpc-outcomes'));
      await setSubscriptions(hub, feed, [
        { url: rpcCallback('/ok'), protocol: 'xml-rpc', notifyProcedure: 'sub.ok' },
        { url: rpcCallback('/fault'), protocol: 'xml-rpc', notifyProcedure: 'sub.fault' },
        { url: rpcCallback('/false'), protocol: 'xml-rpc', notifyProcedure: 'sub.false' },
        { url: rpcCallback('/error'), protocol: 'xml-rpc', notifyProcedure: 'sub.error' },
      ]);
      expectValue(await call('rssCloud.ping', [feed]), true);
      expect(rpcSub.calls.map((c) => [c.method, c.params]).sort()).to.deep.equal(
        [
          ['sub.error', [feed]],
          ['sub.false', [feed]],
          ['sub.fault', [feed]],
          ['sub.ok', [feed]],
        ].sort(),
      );
      const counters = async (path: string): Promise<number[]> => {
        const s = await getSubscription(hub, feed, rpcCallback(path));
        return [s!.ctUpdates, s!.ctErrors, s!.ctConsecutiveErrors];
      };
      expect(await counters('/ok')).to.deep.equal([1, 0, 0]);
      expect(await counters('/fault')).to.deep.equal([0, 1, 1]);
      expect(await counters('/false')).to.deep.equal([0, 1, 1]);
      expect(await counters('/error')).to.deep.equal([0, 1, 1]);
    });

    it('a 2xx reply that is no methodResponse (an old client answering anything) counts as delivered; a fault the hub cannot read, as failed', async () => {
      const replies: Record<string, string> = {
        '/html': '<html><body>Thanks!</body></html>',
        '/text': 'OK',
        // A fault whose value is a bare string, not the {faultCode, faultString} struct.
        '/odd-fault': '<?xml version="1.0"?><methodResponse><fault><value><string>no thanks</string></value></fault></methodResponse>',
      };
      const wire = await Recorder.start((req, res) => void res.writeHead(200, { 'content-type': 'text/xml' }).end(replies[req.path] ?? ''));
      try {
        const feed = feeds.changing(unique('rpc-replies'));
        await setSubscriptions(hub, feed, Object.keys(replies).map((path) => ({ url: `${wire.url}${path}`, protocol: 'xml-rpc', notifyProcedure: 'cloud.notify' })));
        expectValue(await call('rssCloud.ping', [feed]), true);
        const counters = async (path: string): Promise<number[]> => {
          const s = await getSubscription(hub, feed, `${wire.url}${path}`);
          return [s!.ctUpdates, s!.ctErrors, s!.ctConsecutiveErrors];
        };
        expect(await counters('/html')).to.deep.equal([1, 0, 0]);
        expect(await counters('/text')).to.deep.equal([1, 0, 0]);
        expect(await counters('/odd-fault')).to.deep.equal([0, 1, 1]);
      } finally {
        await wire.close();
      }
    });

    it('the notification is a methodCall with one untyped value holding the URL', async () => {
      const seen: string[] = [];
      const wire = await Recorder.start((req, res) => {
        seen.push(req.body.toString());
        res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>');
      });
      try {
        const feed = `${feeds.changing(unique('wire'))}?a=1&b=2`;
        await setSubscriptions(hub, feed, [{ url: `${wire.url}/rpc`, protocol: 'xml-rpc', notifyProcedure: 'cloud.notify' }]);
        expectValue(await call('rssCloud.ping', [feed]), true);
        expect(wire.requests.map((r) => r.headers['content-type'])).to.deep.equal(['text/xml']);
        const xml = seen[0]!.replace(/>\s+</g, '><');
        expect(xml).to.contain('<methodName>cloud.notify</methodName>');
        expect(xml).to.contain(`<params><param><value>${feed.replace(/&/g, '&amp;')}</value></param></params>`);
      } finally {
        await wire.close();
      }
    });
  });

  describe('rssCloud.ping', () => {
    it('answers true and notifies when the feed changed', async () => {
      const feed = feeds.changing(unique('rpcping'));
      await setSubscriptions(hub, feed, [{ url: `http://127.0.0.1:${postSub.port}/n`, protocol: 'http-post' }]);
      expectValue(await call('rssCloud.ping', [feed]), true);
      expect(notificationsAt(postSub, '/n').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
    });

    it('answers true even when the feed cannot be read', async () => {
      const feed = feeds.missing(unique('rpcping-404'));
      expectValue(await call('rssCloud.ping', [feed]), true);
      expect(feeds.reads(feed)).to.equal(1);
      expectValue(await call('rssCloud.ping', ['http://169.254.169.254/latest/meta-data/']), true);
    });

    it('0 or 2 params are arity faults', async () => {
      expectFault(await call('rssCloud.ping', []), MSG.notEnoughParams('ping'));
      expectFault(await call('rssCloud.ping', [feeds.changing('a'), feeds.changing('b')]), MSG.tooManyParams('ping'));
      expect(feeds.rec.requests).to.deep.equal([]);
    });
  });

  it('an unknown method is fault 4 "… is not defined."', async () => {
    expectFault(await call('foo.bar', []), MSG.notDefined('foo.bar'));
    expectFault(await call('xmlStorageSystem.rssPleaseNotify', ['a', 80, '/RPC2', 'xml-rpc', ['http://127.0.0.1/']]), MSG.notDefined('xmlStorageSystem.rssPleaseNotify'));
  });

  describe('malformed calls (raw HTTP)', () => {
    const cases: { name: string; body: string; contentType?: string; faultString?: string }[] = [
      { name: 'malformed XML', body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.hello</methodName>' },
      { name: 'not XML at all', body: 'hello there', contentType: 'text/plain' },
      { name: 'an empty body', body: '' },
      {
        name: 'no methodCall element',
        body: '<?xml version="1.0"?><methodResponse><params/></methodResponse>',
        faultString: 'Bad XML-RPC call, missing "methodCall" element.',
      },
      {
        name: 'no methodName element',
        body: '<?xml version="1.0"?><methodCall><params><param><value>x</value></param></params></methodCall>',
        faultString: 'Bad XML-RPC call, missing "methodName" element.',
      },
      // A hand-built call that puts two values in one <param>, or a bare <value> straight in
      // <params>: which value was meant cannot be known, so the call is refused, never guessed at.
      {
        name: 'a <param> holding two values',
        body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><param><value>http://127.0.0.1/a</value><value>http://127.0.0.1/b</value></param></params></methodCall>',
        faultString: 'Bad XML-RPC call, each <param> must hold one <value>.',
      },
      {
        name: 'a <param> holding no value',
        body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><param></param></params></methodCall>',
        faultString: 'Bad XML-RPC call, each <param> must hold one <value>.',
      },
      {
        name: 'a <value> straight in <params>, without its <param>',
        body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><value>http://127.0.0.1/a</value></params></methodCall>',
        faultString: 'Bad XML-RPC call, each <param> must hold one <value>.',
      },
      {
        name: 'an entity bomb in a DOCTYPE',
        body:
          '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>' +
          '<methodCall><methodName>rssCloud.ping</methodName><params><param><value>&lol4;</value></param></params></methodCall>',
      },
      {
        name: 'an external entity',
        body:
          '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
          '<methodCall><methodName>rssCloud.ping</methodName><params><param><value>&xxe;</value></param></params></methodCall>',
      },
      { name: 'deep nesting', body: `<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><param>${'<value><array><data>'.repeat(200)}${'</data></array></value>'.repeat(200)}</param></params></methodCall>` },
      { name: 'binary garbage', body: Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)).toString('latin1'), contentType: 'application/octet-stream' },
    ];
    for (const c of cases) {
      it(`${c.name} → a fault with HTTP 200, and the hub keeps working`, async () => {
        const res = await rawRpc(hub.url, c.body, c.contentType);
        expect(res.status).to.equal(200);
        expect(res.contentType).to.match(/^text\/xml/);
        const fault = rawFault(res.body);
        expect(fault, res.body).to.not.equal(undefined);
        expect(fault!.faultCode).to.equal(4);
        if (c.faultString !== undefined) expect(fault!.faultString).to.equal(c.faultString);
        else expect(fault!.faultString).to.not.equal('');
        expect(fault!.faultString, 'no stack trace on the wire').to.not.match(/\n\s+at /);
        expectValue(await call('rssCloud.hello', []), true);
      });
    }

    it('a body that claims gzip but is not → a fault with HTTP 400', async () => {
      const res = await fetch(`${hub.url}/RPC2`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml', 'content-encoding': 'gzip' },
        body: '<?xml version="1.0"?><methodCall><methodName>rssCloud.hello</methodName></methodCall>',
      });
      expect(res.status).to.equal(400);
      const fault = rawFault(await res.text());
      expect(fault?.faultCode).to.equal(4);
      expectValue(await call('rssCloud.hello', []), true);
    });

    it('a hand-written call with an untyped port and a single-URL array works', async () => {
      const feed = feeds.changing(unique('raw'));
      const body =
        '<?xml version="1.0"?>\n<methodCall>\n  <methodName>rssCloud.pleaseNotify</methodName>\n  <params>\n' +
        `    <param><value>river.feedUpdated</value></param>\n    <param><value>${rpcSub.port}</value></param>\n` +
        '    <param><value><string>/RPC2</string></value></param>\n    <param><value>xml-rpc</value></param>\n' +
        `    <param><value><array><data><value>${feed}</value></data></array></value></param>\n  </params>\n</methodCall>\n`;
      const res = await rawRpc(hub.url, body);
      expect(res.status).to.equal(200);
      expect(res.body.replace(/\s+/g, '')).to.contain('<params><param><value><boolean>1</boolean></value></param></params>');
      expect(rpcSub.calls).to.deep.equal([{ method: 'river.feedUpdated', params: [feed] }]);
    });

    it('a call sent as application/xml (and text/xml with a charset) is read like text/xml: pleaseNotify subscribes, ping notifies', async () => {
      const feed = feeds.changing(unique('appxml'));
      const call = (method: string, params: string): string =>
        `<?xml version="1.0"?>\n<methodCall><methodName>${method}</methodName><params>${params}</params></methodCall>\n`;
      const p = (v: string): string => `<param><value>${v}</value></param>`;
      const subscribe = await rawRpc(
        hub.url,
        call('rssCloud.pleaseNotify', p('river.feedUpdated') + p(`<i4>${rpcSub.port}</i4>`) + p('/RPC2') + p('xml-rpc') + p(`<array><data><value>${feed}</value></data></array>`)),
        'application/xml',
      );
      expect(subscribe.status).to.equal(200);
      expect(subscribe.body.replace(/\s+/g, '')).to.contain('<params><param><value><boolean>1</boolean></value></param></params>');
      expect(rpcSub.calls).to.deep.equal([{ method: 'river.feedUpdated', params: [feed] }]);
      expect(await getSubscriptions(hub, feed)).to.have.length(1);

      const pinged = await rawRpc(hub.url, call('rssCloud.ping', p(feed)), 'text/xml; charset=utf-8');
      expect(pinged.body.replace(/\s+/g, '')).to.contain('<boolean>1</boolean>');
      expect(rpcSub.calls).to.have.length(2);
    });

    it('a call in ISO-8859-1, as its XML declaration says (Python\'s ServerProxy with encoding=), is read in it, not as UTF-8', async () => {
      const feed = `${feeds.url}/fixed/café-${unique('latin1')}.xml`;
      const body = `<?xml version='1.0' encoding='iso-8859-1'?>\n<methodCall>\n<methodName>rssCloud.ping</methodName>\n<params>\n<param>\n<value><string>${feed}</string></value>\n</param>\n</params>\n</methodCall>\n`;
      const res = await rawRpc(hub.url, Buffer.from(body, 'latin1'));
      expect(res.body.replace(/\s+/g, '')).to.contain('<boolean>1</boolean>');
      expect(feeds.rec.requests.map((r) => r.path)).to.include(new URL(feed).pathname);
    });
  });

  describe('with MAX_BODY_BYTES=2048', () => {
    let small: TestHub;
    before(async () => {
      small = await startTestHub({ MAX_BODY_BYTES: '2048' });
    });
    after(async () => {
      await small?.destroy();
    });

    it('a larger body is 413 with a fault body, and the hub keeps working', async () => {
      const body = `<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><param><value>${'x'.repeat(4096)}</value></param></params></methodCall>`;
      const res = await rawRpc(small.url, body);
      expect(res.status).to.equal(413);
      expect(res.contentType).to.match(/^text\/xml/);
      const fault = rawFault(res.body);
      expect(fault, res.body).to.not.equal(undefined);
      expect(fault!.faultCode).to.equal(4);
      expectValue(await rpcCall(small.url, 'rssCloud.hello', []), true);
    });
  });

  it('the test API reports xml-rpc subscriptions with their procedure and ISO dates', async () => {
    const feed = feeds.changing(unique('rpc-api'));
    const expires = iso(Date.now() + 3600_000);
    await setSubscriptions(hub, feed, [{ url: rpcCallback('/x'), protocol: 'xml-rpc', notifyProcedure: 'a.b', whenExpires: expires }]);
    const [s] = await getSubscriptions(hub, feed);
    expect(s).to.include({ url: rpcCallback('/x'), protocol: 'xml-rpc', notifyProcedure: 'a.b', whenExpires: expires });
  });
});
