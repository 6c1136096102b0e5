// WebSub content deliveries as the subscribers people run check them: each test plays one
// subscriber's delivery handler (read from its source for facts: which signature it takes, how
// it reads the Link header, what it limits, what it answers) on 127.0.0.1, subscribes through
// the hub with that subscriber's own spelling of its topic and callback, publishes, and asserts
// the subscriber ACCEPTED the content by its own rule, not merely that a POST came.
// websub-subscribers.test.ts holds their verification habits.
import { createHmac, getHashes, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { expect } from 'chai';
import { recorderPool, type Recorded } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { TopicServer, publish, settled, subscriptionsOf } from './helpers/websub.js';

const ATOM = 'application/atom+xml';
const feed = (title: string): string => `<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>${title}</title></feed>`;

describe('WebSub deliveries as subscribers check them', function () {
  let hub: TestHub;
  let topics: TopicServer;
  const servers = recorderPool();
  const server = servers.start;

  before(async () => {
    hub = await startTestHub();
    topics = await TopicServer.start();
  });
  after(async () => {
    await hub.destroy();
    await topics.close();
  });
  afterEach(() => servers.closeAll());

  function postForm(form: URLSearchParams): Promise<Response> {
    return fetch(`${hub.url}/websub`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  }
  /** The subscriber's verification as most do it: the challenge back, for the topic it asked for. */
  function echo(req: Recorded, res: http.ServerResponse, topic: string): void {
    if (req.query.get('hub.topic') !== topic) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('hub.challenge') ?? '');
  }

  // npm `pubsubhubbub` (pubsubhubbub/node-pubsubhubbub, index.js). Subscribes with hub.verify=async,
  // to its callback with ?topic=&hub= appended, and as hub.secret not its secret but
  // HMAC-sha1(secret, topic). On a delivery it takes as the topic the rel=self of the Link header
  // (regex `<url>; rel="x"`, the last self winning, else its callback's ?topic), refuses a
  // delivery without X-Hub-Signature when it has a secret, takes any algorithm Node hashes with,
  // and checks the signature with HMAC-sha1(secret, <that topic>) as the key: a rel=self spelled
  // otherwise than the topic it subscribed to fails the check. Reads the body up to 3 MiB
  // (beyond, 413), then answers 204; every refusal is sent as a 500 page.
  it('npm pubsubhubbub: rel=self is its topic byte for byte, a "|" in the query included, so its topic-keyed signature check passes', async () => {
    topics.set('/node.atom', { body: feed('n1'), contentType: ATOM });
    // A query as the URL standard writes it: it leaves '|', '^', '{', '}' and '`' as they are.
    const topic = `${topics.url('/node.atom')}?tags=news|tech&v={2}^1`;
    expect(new URL(topic).href, 'a URL the URL standard writes so').to.equal(topic);
    const secret = 'node-secret';
    const accepted: { topic: string; hub: string; body: string }[] = [];
    const refused: string[] = [];
    const node = await server((req, res) => {
      if (req.method === 'GET') return echo(req, res, topic);
      let self = req.query.get('topic');
      let hubUrl = req.query.get('hub');
      for (const m of String(req.headers['link'] ?? '').matchAll(/<([^>]+)>\s*(?:;\s*rel=['"]([^'"]+)['"])?/gi)) {
        if ((m[2] ?? '').toLowerCase() === 'self') self = m[1]!;
        if ((m[2] ?? '').toLowerCase() === 'hub') hubUrl = m[1]!;
      }
      const refuse = (why: string): void => {
        refused.push(why);
        res.writeHead(500, { 'content-type': 'text/html' }).end(`<h1>${why}</h1>`);
      };
      if (!self) return refuse('400 Bad Request');
      const header = req.headers['x-hub-signature'];
      if (typeof header !== 'string') return refuse('403 Forbidden');
      const parts = header.split('=');
      const algorithm = (parts.shift() ?? '').toLowerCase();
      const signature = (parts.pop() ?? '').toLowerCase();
      if (!getHashes().includes(algorithm)) return refuse('403 Forbidden');
      if (req.body.length > 3 * 1024 * 1024) return refuse('413 Request Entity Too Large');
      const key = createHmac('sha1', secret).update(self).digest('hex');
      if (createHmac(algorithm, key).update(req.body).digest('hex') !== signature) return refuse('403 Forbidden');
      accepted.push({ topic: self, hub: hubUrl ?? '', body: req.body.toString() });
      res.writeHead(204, { 'content-type': 'text/plain; charset=utf-8' }).end();
    });
    const callback = `${node.url}/?topic=${encodeURIComponent(topic)}&hub=${encodeURIComponent(`${hub.config.publicUrl}/websub`)}`;
    const form = new URLSearchParams({ 'hub.callback': callback, 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.verify': 'async', 'hub.secret': createHmac('sha1', secret).update(topic).digest('hex') });
    expect((await postForm(form)).status).to.equal(202);
    await node.waitFor(1, (r) => r.method === 'GET');
    await settled(hub);
    expect((await subscriptionsOf(hub, topic)).map((s) => s.url)).to.deep.equal([callback]);

    await publish(hub, topic);
    await node.waitFor(1, (r) => r.method === 'POST');
    await settled(hub);
    expect(refused).to.deep.equal([]);
    expect(accepted).to.deep.equal([{ topic, hub: `${hub.config.publicUrl}/websub`, body: feed('n1') }]);
  });

  // django-push (brutasse/django-push, subscriber/views.py and models.py), Python. Subscribes with
  // hub.verify sync and async (so, a PubSubHubbub 0.3 subscriber) and a secret when the hub is
  // HTTPS; played here over http with the secret it would send. On a delivery with a secret it
  // compares X-Hub-Signature with 'sha1=' + the lowercase hex of HMAC-SHA1, as strings: any other
  // algorithm, or upper-case hex, is dropped silently with a 200. It hands the Link header, read
  // by requests.utils.parse_header_links, to the application.
  it('django-push: signed "sha1=" with lower-case hex, the only form it compares against, and a Link parse_header_links reads', async () => {
    const topic = topics.set('/django.atom', { body: feed('d1'), contentType: ATOM });
    const secret = randomBytes(24).toString('base64');
    const accepted: { body: string; links: Record<string, string> }[] = [];
    const dropped: string[] = [];
    const django = await server((req, res) => {
      if (req.method === 'GET') {
        if (!/^\d+$/.test(req.query.get('hub.lease_seconds') ?? '')) return void res.writeHead(400).end('hub.lease_seconds must be an integer');
        return echo(req, res, topic);
      }
      const digest = `sha1=${createHmac('sha1', Buffer.from(secret, 'utf8')).update(req.body).digest('hex')}`;
      if (req.headers['x-hub-signature'] !== digest) {
        dropped.push(String(req.headers['x-hub-signature']));
        return void res.writeHead(200).end('');
      }
      // parse_header_links: split at ", *<", each "<url>; k=v; ...", quotes and spaces stripped.
      const links: Record<string, string> = {};
      for (const val of String(req.headers['link'] ?? '').split(/, *</)) {
        const [url = '', ...params] = val.split(';');
        const link: Record<string, string> = { url: url.replace(/^[<> '"]+|[<> '"]+$/g, '') };
        for (const p of params) {
          const eq = p.indexOf('=');
          if (eq > 0) link[p.slice(0, eq).replace(/^[ '"]+|[ '"]+$/g, '')] = p.slice(eq + 1).replace(/^[ '"]+|[ '"]+$/g, '');
        }
        if (link['rel'] !== undefined) links[link['rel']] = link['url']!;
      }
      accepted.push({ body: req.body.toString(), links });
      res.writeHead(200).end('');
    });
    const callback = `${django.url}/subscriber/42/`;
    const form = new URLSearchParams([['hub.mode', 'subscribe'], ['hub.callback', callback], ['hub.topic', topic], ['hub.verify', 'sync'], ['hub.verify', 'async'], ['hub.secret', secret]]);
    expect((await postForm(form)).status).to.equal(202);
    await django.waitFor(1, (r) => r.method === 'GET');
    await settled(hub);
    await publish(hub, topic);
    await django.waitFor(1, (r) => r.method === 'POST');
    await settled(hub);
    expect(dropped).to.deep.equal([]);
    expect(accepted).to.deep.equal([{ body: feed('d1'), links: { self: topic, hub: `${hub.config.publicUrl}/websub` } }]);
  });

  // Flask-WebSub (flask_websub/subscriber/blueprint.py, utils.py), Python. A REC subscriber (no
  // hub.verify), so signed with WEBSUB_SIGNATURE_ALGORITHM. With a secret it splits
  // X-Hub-Signature at '=' (more than one '=' is a ValueError), hashes with hashlib's function of
  // that name, and compares lower-case hex; a body over MAX_BODY_SIZE (1 MiB) by its
  // Content-Length is answered 400. A mismatch is logged and dropped, answered 200.
  it('Flask-WebSub: the REC signature it splits at "=" and recomputes with hashlib is accepted', async () => {
    const topic = topics.set('/flask-signed.atom', { body: feed('fs1'), contentType: ATOM });
    const secret = 'flask secret';
    const accepted: string[] = [];
    const flask = await server((req, res) => {
      if (req.method === 'GET') return echo(req, res, topic);
      if (Number(req.headers['content-length']) > 1024 * 1024) return void res.writeHead(400).end('Body too large');
      const parts = String(req.headers['x-hub-signature'] ?? '').split('=');
      const [algorithm = '', signature = ''] = parts;
      if (parts.length === 2 && ['sha1', 'sha256', 'sha384', 'sha512'].includes(algorithm) && createHmac(algorithm, Buffer.from(secret, 'utf8')).update(req.body).digest('hex') === signature) {
        accepted.push(req.body.toString());
      }
      res.writeHead(200).end('Content received');
    });
    const form = new URLSearchParams({ 'hub.callback': `${flask.url}/callbacks/9f2`, 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.lease_seconds': '3600', 'hub.secret': secret });
    expect((await postForm(form)).status).to.equal(202);
    await flask.waitFor(1, (r) => r.method === 'GET');
    await settled(hub);
    await publish(hub, topic);
    const [d] = await flask.waitFor(1, (r) => r.method === 'POST');
    await settled(hub);
    expect(d!.headers['x-hub-signature']).to.match(/^sha256=/);
    expect(accepted).to.deep.equal([feed('fs1')]);
  });
  // GNU social (plugins/OStatus/classes/FeedSub.php), PHP. Subscribes with hub.verify=async, a
  // hub.verify_token and a fresh 64-hex-digit secret, to /main/push/callback?feed=<id>. It
  // answers every delivery 200 and then checks it: with a secret, X-Hub-Signature must match
  // /^sha1=([0-9a-fA-F]{40})$/ and equal HMAC-SHA1 of the raw body, else the content is dropped
  // in silence; with no secret, a delivery carrying any X-Hub-Signature is dropped too.
  it('GNU social: sha1 for the signed subscription, no X-Hub-Signature at all for the unsigned one, its ?feed= kept', async () => {
    const topic = topics.set('/gnusocial.atom', { body: feed('g1'), contentType: ATOM });
    const secrets = new Map([['7', randomBytes(32).toString('hex')], ['8', '']]);
    const accepted: string[] = [];
    const dropped: string[] = [];
    const gnu = await server((req, res) => {
      if (req.method === 'GET') return echo(req, res, topic);
      res.writeHead(200).end();
      const id = req.query.get('feed') ?? '';
      const secret = secrets.get(id);
      const hmac = req.headers['x-hub-signature'];
      if (secret === undefined) return void dropped.push(`${id}: unknown feed`);
      if (secret !== '') {
        const m = /^sha1=([0-9a-fA-F]{40})$/.exec(String(hmac ?? ''));
        if (m?.[1]?.toLowerCase() !== createHmac('sha1', secret).update(req.body).digest('hex')) return void dropped.push(`${id}: bad HMAC ${String(hmac)}`);
      } else if (hmac !== undefined && hmac !== '') {
        return void dropped.push(`${id}: unexpected HMAC`);
      }
      accepted.push(`${id}: ${req.body.toString()}`);
    });
    for (const [id, secret] of secrets) {
      const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.callback': `${gnu.url}/main/push/callback?feed=${id}`, 'hub.verify': 'async', 'hub.verify_token': 'Deprecated-since-PuSH-0.4', 'hub.secret': secret, 'hub.topic': topic });
      expect((await postForm(form)).status).to.equal(202);
    }
    await gnu.waitFor(2, (r) => r.method === 'GET');
    await settled(hub);
    await publish(hub, topic);
    await gnu.waitFor(2, (r) => r.method === 'POST');
    await settled(hub);
    expect(dropped).to.deep.equal([]);
    expect(accepted.sort()).to.deep.equal([`7: ${feed('g1')}`, `8: ${feed('g1')}`]);
  });

  // Ballerina's websub module (ballerina/request_processor.bal, utils.bal). A REC subscriber.
  // It reads the body as text, checks X-Hub-Signature (split at '=', sha1, sha256, sha384 or
  // sha512, lower-case hex; an unknown algorithm is an error) and, on a mismatch, drops the
  // content while answering 200. Then it takes the Content-Type's media type without its
  // parameters and knows only application/json, application/xml, text/plain,
  // application/octet-stream and forms: anything else is answered 400 (so an Atom topic, whose
  // type the REC has the hub pass on unchanged, is refused; JSON ones are its use).
  it('Ballerina websub: a JSON topic whose type carries a charset arrives as application/json, signed as it checks', async () => {
    const json = JSON.stringify({ id: 1, title: 'caf\u00e9' });
    const topic = topics.set('/events.json', { body: json, contentType: 'application/json; charset=utf-8' });
    const secret = 'ballerina-secret';
    const accepted: unknown[] = [];
    const ballerina = await server((req, res) => {
      if (req.method === 'GET') return echo(req, res, topic);
      const header = String(req.headers['x-hub-signature'] ?? '');
      const method = header.split('=')[0] ?? '';
      if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(method)) return void res.writeHead(500).end();
      const payload = Buffer.from(req.body.toString('utf8'), 'utf8');
      if (header.slice(method.length + 1) !== createHmac(method, secret).update(payload).digest('hex')) return void res.writeHead(200).end();
      const mediaType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (!['application/json', 'application/xml', 'text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded'].includes(mediaType)) return void res.writeHead(400).end();
      accepted.push(JSON.parse(req.body.toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' }).end('');
    });
    const form = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${ballerina.url}/subscriber`, 'hub.secret': secret });
    expect((await postForm(form)).status).to.equal(202);
    await ballerina.waitFor(1, (r) => r.method === 'GET');
    await settled(hub);
    await publish(hub, topic);
    const [d] = await ballerina.waitFor(1, (r) => r.method === 'POST');
    await settled(hub);
    expect(d!.headers['content-type']).to.equal('application/json; charset=utf-8');
    expect(accepted).to.deep.equal([{ id: 1, title: 'caf\u00e9' }]);
  });
});
