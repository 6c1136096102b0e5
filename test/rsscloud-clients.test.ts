// rssCloud as the clients in the wild speak it. Each test plays one real subscriber or pinger over
// real HTTP: the request it sends the hub (fields, their order and case, headers), how its callback
// answers the hub (challenge, test notification, notification) and how it reads the hub's reply.
// The facts come from reading each client's source (named in the comments; read for facts only);
// the point is that a change to the hub that would break one of them fails here, by its name.
import querystring from 'node:querystring';
import { expect } from 'chai';
import { XMLParser } from 'fast-xml-parser';
import { Recorder, type Handler } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer, XmlRpcSubscriber, getSubscription, getSubscriptions, rawRequest, testApi } from './helpers/rsscloud.js';

let seq = 0;
const unique = (prefix: string): string => `${prefix}-${++seq}`;

/** What a client's callback saw: the resource URL of each notification, as the client decoded it. */
interface ClientLog {
  updates: string[];
  challenges: string[];
}

const newLog = (): ClientLog => ({ updates: [], challenges: [] });

/**
 * The callback of River5 (scripting/river5 lib/feedtools.js handleHttpRequest): it lowercases
 * the request path; GET /feedupdated echoes the `challenge` query parameter; POST /feedupdated
 * decodes the body with Node's querystring, whatever its Content-Type, reads `url`, and answers
 * 200 text/plain "Thanks for the update! :-)".
 */
function river5Callback(log: ClientLog): Handler {
  return (req, res) => {
    if (req.path.toLowerCase() !== '/feedupdated') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not one of the endpoints');
    if (req.method === 'GET') {
      const challenge = req.query.get('challenge') ?? '';
      log.challenges.push(challenge);
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
    }
    log.updates.push(String(querystring.parse(req.body.toString()).url));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Thanks for the update! :-)');
  };
}

/**
 * The callback davefeedread's startCloud serves (davefeedread.js): one path, any method, the
 * body decoded as a form, answered "Thanks for the update! ;-)". It cannot echo a challenge: it
 * never sends `domain`, so a hub must test it with a POST, not a GET.
 */
function davefeedreadCallback(path: string, log: ClientLog): Handler {
  return (req, res) => {
    if (req.path.toLowerCase() !== path) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.');
    log.updates.push(String(querystring.parse(req.body.toString()).url));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Thanks for the update! ;-)');
  };
}

/**
 * The callback of Dave Winer's clouddemo (2022; the request it makes is the one the protocol digest
 * gives for FeedLand: domain, challenge, an XML reply read for success="true"): POST /feedupdated
 * decodes the body as a form and answers "Thanks for the update! ;-)"; GET /feedupdated answers
 * the `challenge` query parameter as text/plain.
 */
function clouddemoCallback(log: ClientLog): Handler {
  return (req, res) => {
    if (req.path.toLowerCase() !== '/feedupdated') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.');
    if (req.method === 'POST') {
      log.updates.push(String(querystring.parse(req.body.toString()).url));
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end('Thanks for the update! ;-)');
    }
    const challenge = req.query.get('challenge') ?? '';
    log.challenges.push(challenge);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
  };
}

/**
 * The callback of outlinecloud (Dave Winer's watcher of OPML outlines, outlinecloud.js on davehttp):
 * whatever the method, it takes the changed resource from `params.url` and answers 200 text/plain
 * with `params.challenge`. davehttp's params are the query string's alone, and it reads a POST
 * body only for an app that sets flPostEnabled, which outlinecloud does not: a notification
 * whose query has no `url` reaches it, is answered with an empty 200, and tells it nothing.
 */
function outlinecloudCallback(log: ClientLog): Handler {
  return (req, res) => {
    if (req.path.toLowerCase() !== '/outlineupdated') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.');
    const challenge = req.query.get('challenge');
    if (challenge !== null) log.challenges.push(challenge);
    else log.updates.push(req.query.get('url') ?? '(no url)');
    res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge ?? '');
  };
}

/**
 * The callback of FreshRSS's rssCloud extension (rsscloud/xExtension-RssCloud RssCloud/Callback.php),
 * mounted at `/p/api/misc.php/rssCloud/<token>/`: a wrong token is 404; `url` is read from the
 * query, else from the form body ($_POST, so only with a form Content-Type), and a URL it did not
 * subscribe to, compared exactly, is 404; a `challenge` is echoed verbatim; a notification answers
 * 200 "Done: 1\n".
 */
function freshRssCallback(token: string, subscribed: Set<string>, log: ClientLog): Handler {
  return (req, res) => {
    const fail = (code: number, words: string): void => void res.writeHead(code, { 'content-type': 'text/plain; charset=UTF-8' }).end(`${words}\n`);
    if (req.path !== `/p/api/misc.php/rssCloud/${token}/`) return fail(404, 'Not Found!');
    const form = /^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '') ? new URLSearchParams(req.body.toString()) : new URLSearchParams();
    const url = (req.query.get('url') ?? form.get('url') ?? '').trim();
    if (url === '') return fail(422, 'Missing url parameter!');
    if (!subscribed.has(url)) return fail(404, 'Not Found!');
    const challenge = req.query.get('challenge') ?? '';
    if (challenge !== '') {
      log.challenges.push(challenge);
      return void res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', connection: 'close' }).end(challenge);
    }
    log.updates.push(url);
    res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8' }).end('Done: 1\n');
  };
}

/** A client reading the reply with a general XML parser: the root element's name and its attributes. */
function xmlRoot(body: string): { name: string; attrs: Record<string, string> } {
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', ignoreDeclaration: true }).parse(body) as Record<string, Record<string, string>>;
  const [name = '', attrs = {}] = Object.entries(doc)[0] ?? [];
  return { name, attrs };
}

/** FreshRSS's parseNotifyResult: trimmed; JSON when it starts with "{", else XML, `success` compared lowercased to "true". */
function freshRssReads(status: number, body: string): boolean {
  const text = body.trim();
  if (status < 200 || status >= 300 || text === '') return false;
  if (text.startsWith('{')) return Boolean((JSON.parse(text) as { success?: unknown }).success);
  return (xmlRoot(text).attrs['success'] ?? '').trim().toLowerCase() === 'true';
}

/** A form POST to the hub exactly as given: the body bytes and the headers, nothing added but Content-Length. */
async function send(hub: TestHub, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; contentType: string; body: string }> {
  const res = await rawRequest(`${hub.url}${path}`, { method: 'POST', headers, body });
  return { status: res.status, contentType: String(res.headers['content-type'] ?? ''), body: res.body };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('rssCloud clients in the wild', function () {
  let hub: TestHub;
  let feeds: FeedServer;
  let client: Recorder;
  let log: ClientLog;

  before(async () => {
    hub = await startTestHub();
    feeds = await FeedServer.start();
    client = await Recorder.start();
  });
  after(async () => {
    await hub?.destroy();
    await feeds?.close();
    await client?.close();
  });
  beforeEach(async () => {
    await testApi(hub, 'clear');
    client.reset();
    log = newLog();
  });

  describe('subscribers', () => {
    it('River5: no domain, port as a number, Accept: application/json; a JSON reply, then url= POSTs to /feedupdated', async () => {
      // River5's pleaseNotify: `request` with form {port, path, url1, protocol} in that order and
      // Accept: application/json, no domain; it judges the renewal by `success` (River4 by HTTP 200).
      client.handler = river5Callback(log);
      const feed = feeds.changing(unique('river5'));
      const reply = await send(hub, '/pleaseNotify', querystring.stringify({ port: client.port, path: '/feedupdated', url1: feed, protocol: 'http-post' }), {
        ...FORM,
        accept: 'application/json',
      });
      expect(reply.status).to.equal(200);
      expect(reply.contentType).to.match(/^application\/json/);
      expect((JSON.parse(reply.body) as { success: unknown }).success).to.equal(true);
      // The handler test was a notification it could read, and no challenge (it sent no domain).
      expect(log).to.deep.equal({ updates: [feed], challenges: [] });

      const pinged = await send(hub, '/ping', querystring.stringify({ url: feed }), FORM);
      expect(pinged.status).to.equal(200);
      expect(log.updates).to.deep.equal([feed, feed]);
    });

    it('davefeedread: no domain and a callback that answers anything with thanks; never a GET, only url= POSTs', async () => {
      // davefeedread's pleaseNotify sends {port, path: "/feedping", url1, protocol}; its server
      // would answer a challenge GET with thanks, not the challenge, so a GET would fail it.
      client.handler = davefeedreadCallback('/feedping', log);
      const feed = feeds.changing(unique('davefeedread'));
      const reply = await send(hub, '/pleaseNotify', querystring.stringify({ port: client.port, path: '/feedping', url1: feed, protocol: 'http-post' }), {
        ...FORM,
        accept: 'application/json',
      });
      expect((JSON.parse(reply.body) as { success: unknown }).success).to.equal(true);
      await send(hub, '/ping', querystring.stringify({ url: feed }), FORM);
      expect(client.requests.map((r) => [r.method, r.path, r.headers['content-type'], r.body.toString()])).to.deep.equal([
        ['POST', '/feedping', 'application/x-www-form-urlencoded', new URLSearchParams({ url: feed }).toString()],
        ['POST', '/feedping', 'application/x-www-form-urlencoded', new URLSearchParams({ url: feed }).toString()],
      ]);
      expect(log.updates).to.deep.equal([feed, feed]);
    });

    it('clouddemo / FeedLand: domain, a hand-built form, no Accept; an XML notifyResult with success "true", a GET challenge before it, url= POSTs after', async () => {
      // clouddemo.js pleaseNotify: the body is built field by field with encodeURIComponent
      // (domain, port, path, url1, protocol), Content-Type set by hand, no Accept; the reply is
      // parsed with xml2js and read as jstruct.notifyResult.$.success == "true".
      client.handler = clouddemoCallback(log);
      const feed = feeds.changing(unique('clouddemo'));
      const fields: [string, string][] = [['domain', '127.0.0.1'], ['port', String(client.port)], ['path', '/feedupdated'], ['url1', feed], ['protocol', 'http-post']];
      const body = fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
      const reply = await send(hub, '/pleaseNotify', body, FORM);
      expect(reply.status).to.equal(200);
      const root = xmlRoot(reply.body);
      expect(root.name).to.equal('notifyResult');
      expect(root.attrs['success']).to.equal('true');
      expect(root.attrs['msg']).to.be.a('string').and.not.equal('');
      // Verified by the challenge alone: one GET carrying the resource and the challenge it echoed.
      expect(client.requests.map((r) => [r.method, r.path, r.query.get('url')])).to.deep.equal([['GET', '/feedupdated', feed]]);
      expect(log.challenges).to.deep.equal([client.requests[0]!.query.get('challenge')]);
      expect(log.updates).to.deep.equal([]);

      await send(hub, '/ping', querystring.stringify({ url: feed }), FORM);
      expect(log.updates).to.deep.equal([feed]);
    });

    it('outlinecloud: every notification names the resource in its query, where davehttp readers look; their empty 200 is a delivery', async () => {
      // outlinecloud.js: domain, port, path "/outlineupdated", url1, protocol; its callback
      // reads `url` and `challenge` from the query only, and answers a notification with an empty body.
      client.handler = outlinecloudCallback(log);
      const outline = feeds.changing(unique('outline'));
      const fields: [string, string][] = [['domain', '127.0.0.1'], ['port', String(client.port)], ['path', '/outlineupdated'], ['url1', outline], ['protocol', 'http-post']];
      const reply = await send(hub, '/pleaseNotify', fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'), FORM);
      expect(xmlRoot(reply.body).attrs['success']).to.equal('true');
      for (let i = 0; i < 3; i++) await send(hub, '/ping', querystring.stringify({ url: outline }), FORM);
      expect(log.updates).to.deep.equal([outline, outline, outline]);
      const sub = await getSubscription(hub, outline, `http://127.0.0.1:${client.port}/outlineupdated`);
      expect(sub).to.include({ ctConsecutiveErrors: 0, ctErrors: 0 });
    });

    it('FreshRSS: a tokened path with a trailing slash, an empty registerProcedure, a feed URL with a query; the challenge and notifications name that URL exactly', async () => {
      // RssCloud/Subscriber.php: http_build_query of domain, port (a string), path, protocol,
      // registerProcedure, url1; the reply read by parseNotifyResult. CallbackUrl.php: the path is
      // /p/api/misc.php/rssCloud/<token>/, the trailing slash kept for the query the hub appends.
      const token = 'k3y~ab';
      const feed = `${feeds.changing(unique('freshrss'))}?format=rss&lang=fr`;
      client.handler = freshRssCallback(token, new Set([feed]), log);
      const path = `/p/api/misc.php/rssCloud/${token}/`;
      const body = new URLSearchParams([['domain', '127.0.0.1'], ['port', String(client.port)], ['path', path], ['protocol', 'http-post'], ['registerProcedure', ''], ['url1', feed]]).toString();
      // It asks for the reply as 'xml' (this Accept stands for that; FreshRSS's own header may differ).
      const reply = await send(hub, '/pleaseNotify', body, { ...FORM, accept: 'application/xml, text/xml;q=0.9, */*;q=0.8' });
      expect(freshRssReads(reply.status, reply.body), reply.body).to.equal(true);
      expect(client.requests.map((r) => [r.method, r.path, r.query.get('url')])).to.deep.equal([['GET', path, feed]]);
      expect(log.challenges).to.have.length(1);

      await send(hub, '/ping', new URLSearchParams({ url: feed }).toString(), FORM);
      expect(log.updates).to.deep.equal([feed]);
      const [sub] = await getSubscriptions(hub, feed);
      expect(sub).to.include({ url: `http://127.0.0.1:${client.port}${path}`, ctConsecutiveErrors: 0 });
    });

    it('FreshRSS reads the JSON reply too, and a refusal as success false with the words', async () => {
      const token = 'tok';
      const missing = feeds.missing(unique('freshrss-missing'));
      client.handler = freshRssCallback(token, new Set([missing]), log);
      const body = new URLSearchParams([['domain', '127.0.0.1'], ['port', String(client.port)], ['path', `/p/api/misc.php/rssCloud/${token}/`], ['protocol', 'http-post'], ['registerProcedure', ''], ['url1', missing]]).toString();
      const json = await send(hub, '/pleaseNotify', body, { ...FORM, accept: 'application/json' });
      expect(freshRssReads(json.status, json.body)).to.equal(false);
      expect((JSON.parse(json.body) as { msg: string }).msg).to.contain(missing);
      const xml = await send(hub, '/pleaseNotify', body, FORM);
      expect(freshRssReads(xml.status, xml.body)).to.equal(false);
      expect(client.requests).to.deep.equal([]);
    });

    it("the reference server's own client over XML-RPC: port as <i4>, typed strings, a sixth param domain \"\" meaning none; rssCloud.notify(url) is called back at the caller's address", async () => {
      // rsscloud-server's dev harness client (formerly @rsscloud/client): buildPleaseNotifyCall
      // always sends six params, domain `opts.callback.domain ?? ''`, notifyProcedure
      // "rssCloud.notify", Content-Type text/xml.
      const rpc = await XmlRpcSubscriber.start();
      try {
        rpc.answer('rssCloud.notify', () => true);
        const feed = feeds.changing(unique('rs-client'));
        const call =
          '<?xml version="1.0"?><methodCall><methodName>rssCloud.pleaseNotify</methodName><params>' +
          `<param><value><string>rssCloud.notify</string></value></param><param><value><i4>${rpc.port}</i4></value></param>` +
          '<param><value><string>/RPC2</string></value></param><param><value><string>xml-rpc</string></value></param>' +
          `<param><value><array><data><value><string>${feed}</string></value></data></array></value></param>` +
          '<param><value><string></string></value></param></params></methodCall>';
        const reply = await send(hub, '/RPC2', call, { 'content-type': 'text/xml' });
        expect(reply.body.replace(/\s+/g, '')).to.contain('<params><param><value><boolean>1</boolean></value></param></params>');
        expect(rpc.calls).to.deep.equal([{ method: 'rssCloud.notify', params: [feed] }]);
        expect((await getSubscriptions(hub, feed)).map((s) => s.url)).to.deep.equal([`http://127.0.0.1:${rpc.port}/RPC2`]);
      } finally {
        await rpc.close();
      }
    });
  });

  describe('pingers', () => {
    let subscriber: Recorder;
    before(async () => {
      subscriber = await Recorder.start(river5Callback({ updates: [], challenges: [] }));
    });
    after(async () => {
      await subscriber?.close();
    });

    /** A feed with one River5-style subscriber, and the notifications it got. */
    async function followed(name: string): Promise<{ feed: string; updates: () => string[] }> {
      const seen = newLog();
      subscriber.handler = river5Callback(seen);
      const feed = feeds.changing(unique(name));
      await send(hub, '/pleaseNotify', querystring.stringify({ port: subscriber.port, path: '/feedupdated', url1: feed, protocol: 'http-post' }), FORM);
      expect(seen.updates).to.deep.equal([feed]);
      return { feed, updates: () => seen.updates.slice(1) };
    }

    const pingers: { name: string; send: (feed: string) => Promise<{ status: number; contentType: string; body: string }>; reads: (r: { status: number; body: string }) => boolean }[] = [
      {
        // daverss cloudPing before 12/2021: request.post with body querystring.stringify({url})
        // and no Content-Type header at all; the reply is not read.
        name: 'daverss (old): url= with no Content-Type',
        send: (feed) => send(hub, '/ping', querystring.stringify({ url: feed }), {}),
        reads: (r) => r.status === 200,
      },
      {
        // daverss cloudPing since 12/2021 (FeedLand's blog.js pings through it): request.post with form {url}.
        name: 'daverss / FeedLand blog: a form url=',
        send: (feed) => send(hub, '/ping', querystring.stringify({ url: feed }), FORM),
        reads: (r) => r.status === 200,
      },
      {
        // scotthansonde/rsscloud-ping (WordPress): wp_remote_post with body ['url' => feed] and
        // Accept: application/json; a status of 400 or more is logged as a failure.
        name: 'WordPress rsscloud-ping: Accept: application/json',
        send: (feed) => send(hub, '/ping', new URLSearchParams({ url: feed }).toString(), { ...FORM, accept: 'application/json' }),
        reads: (r) => r.status < 400 && (JSON.parse(r.body) as { success: unknown }).success === true,
      },
      {
        // matagus/django-rsscloud rsscloud_notify_update: urllib2.urlopen(url, data=urlencode({"url": feed}));
        // a ping counts as made when the HTTP code is 200, 201, 202 or 204, else it is retried.
        name: 'django-rsscloud: urllib2 form POST, judged by its status code',
        send: (feed) => send(hub, '/ping', querystring.stringify({ url: feed }), { ...FORM, 'user-agent': 'Python-urllib/2.7', connection: 'close' }),
        reads: (r) => [200, 201, 202, 204].includes(r.status),
      },
    ];
    for (const p of pingers) {
      it(`${p.name}: its subscribers hear of the change and it reads the reply as a success`, async () => {
        const { feed, updates } = await followed('ping');
        const reply = await p.send(feed);
        expect(p.reads(reply), `${reply.status} ${reply.body}`).to.equal(true);
        expect(updates()).to.deep.equal([feed]);
      });
    }
  });
});
