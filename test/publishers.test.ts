// Publishers and pingers in the wild: each test sends the exact request one real publisher sends
// (read from its source), checks the reply that publisher needs, and that a subscriber of the
// changed feed is notified. A regression here breaks that publisher for its users, silently:
// none of them shows a failed ping to anyone.
//
// Habits covered elsewhere are not repeated: the PHP publisher library's 204-only success and
// a 202 naming a refused URL, publishing from the query string, multipart/form-data forms (the
// Superfeedr PHP library, PHP curl given an array) and repeated hub.url / hub.url[] / comma lists
// (websub.test.ts "publishing" and "PubSubHubbub 0.3 / 0.4 clients"); hub.topic alone
// (websub.rocks' publisher, websub-rocks.test.ts); WordPress's extendedPing(name, home, feed)
// and its fallback ping(name, home), Google's four-string extendedPing and rssUpdate
// (weblogupdates.test.ts); rssCloud.ping over XML-RPC (rsscloud-xmlrpc.test.ts); REST pings
// with no Content-Type or a charset on it, and legacy paths (rsscloud-rest.test.ts); the update
// pings of other blogging engines and XML-RPC libraries (pingers.test.ts).
import net from 'node:net';
import { expect } from 'chai';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { MSG, notificationsAt, notifyBody, pleaseNotify, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { Subscriber, TopicServer, settled, subscribe } from './helpers/websub.js';

const RSS = 'application/rss+xml; charset=UTF-8';

const rss = (title: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>A blog</title><link>http://blog.example/</link><description>d</description>` +
  `<item><title>${title}</title><guid>urn:${title}</guid></item></channel></rss>\n`;

/** PHP's rawurlencode: RFC 3986 unreserved characters stay, everything else is %XX. */
function phpRawUrlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Python 2's urllib.quote_plus, as urllib.urlencode uses it: '/' and ':' are escaped too. */
function pythonQuotePlus(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

describe('publishers and pingers in the wild', function () {
  let hub: TestHub;
  let web: TopicServer;
  let sub: Subscriber;
  let seq = 0;

  before(async () => {
    hub = await startTestHub();
    web = await TopicServer.start();
    sub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    await web?.close();
    await sub?.close();
  });

  /** A feed at `path` (made unique; the server ignores `query`) with one WebSub subscriber: its URL and callback path. */
  async function followed(path: string, query = ''): Promise<{ url: string; cb: string }> {
    const url = web.set(`/s${++seq}${path}`, { body: rss('first'), contentType: RSS }) + query;
    const cb = `/cb${seq}`;
    const before = sub.verifications('subscribe', cb).length;
    const res = await subscribe(hub, { 'hub.topic': url, 'hub.callback': sub.callback(cb) });
    expect(res.status, await res.text()).to.equal(202);
    await sub.waitVerifications(before + 1, 'subscribe', cb);
    await settled(hub);
    return { url, cb };
  }

  /** The feed gains a post. */
  function post(url: string, title: string): void {
    web.set(new URL(url).pathname, { body: rss(title), contentType: RSS });
  }

  /** What the subscriber at `cb` was delivered, once the hub's background work has settled. */
  async function deliveredTo(cb: string): Promise<string[]> {
    await settled(hub);
    return sub.deliveries(cb).map((d) => d.body.toString());
  }

  describe('WebSub publish', () => {
    it('the WordPress WebSub plugin (4.x) names every feed a post is in: 2 × (site + tags + categories + author), all in one request', async () => {
      // pubsubhubbub/wordpress-pubsubhubbub includes/class-publisher.php: publish_post() lists,
      // for atom and rss2, the site feed, one feed per tag, per category and the author's;
      // publish_update() sends them all in one body built by hand ('hub.mode=publish' then
      // '&hub.url=' . rawurlencode(url) each), Content-Type form, its own User-Agent, and never
      // looks at the reply. A post with 12 tags and a category names 30 URLs: refused whole
      // when publish shared pleaseNotify's limit of 25, no subscriber of any of them heard of it.
      // Big sites add more through its filter (wordpress-pubsubhubbub#9: Android Police pings
      // its category, tag, author and custom feeds on every post).
      const atom = await followed('/feed/atom/');
      const rss2 = await followed('/feed/');
      const base = new URL(atom.url).origin + new URL(atom.url).pathname.replace(/feed\/atom\/$/, '');
      const tags = Array.from({ length: 12 }, (_, i) => `tag-${i}`);
      const urls: string[] = [];
      for (const [type, site] of [['atom/', atom.url], ['', rss2.url]] as const) {
        urls.push(site, ...tags.map((t) => `${base}tag/${t}/feed/${type}`), `${base}category/news/feed/${type}`, `${base}author/admin/feed/${type}`);
      }
      expect(urls).to.have.length(30);
      post(atom.url, 'a post with many tags');
      post(rss2.url, 'a post with many tags');
      const res = await fetch(`${hub.url}/websub`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'WordPress/6.6; http://blog.example; PubSubHubbub/WebSub' },
        body: 'hub.mode=publish' + urls.map((u) => `&hub.url=${phpRawUrlEncode(u)}`).join(''),
      });
      expect(res.status, await res.text()).to.equal(204);
      expect(await deliveredTo(atom.cb)).to.have.length(1);
      expect(await deliveredTo(rss2.cb)).to.have.length(1);
    });

    it('the WordPress WebSub plugin (2.x) puts esc_url() URLs in the body unencoded: ?feed=rss2 of a blog without pretty permalinks', async () => {
      // includes/class-pubsubhubbub-publisher.php (2.x): '&hub.url=' . esc_url($topic_url), no
      // percent-encoding, so the value's own '?' and '=' reach the hub as they are.
      const feed = await followed('/', '?feed=rss2');
      post(feed.url, 'plain permalinks');
      const res = await fetch(`${hub.url}/websub`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'WordPress/4.9; http://blog.example; PubSubHubbub/WebSub' },
        body: `hub.mode=publish&hub.url=${feed.url}`,
      });
      expect(res.status, await res.text()).to.equal(204);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });

    it("Google's Python publisher sends up to 100 hub.url in one request, and raises PublishError on anything but 2xx", async () => {
      // pubsubhubbub/PubSubHubbub publisher_clients/python/pubsubhubbub_publish.py: URL_BATCH_SIZE
      // = 100; urllib.urlencode({'hub.url': chunk, 'hub.mode': 'publish'}, doseq=True) posted
      // with urllib2.urlopen, whose non-2xx answers it turns into PublishError (204 included,
      // as old urllib2 raised on it).
      const feed = await followed('/atom.xml');
      const urls = [feed.url, ...Array.from({ length: 99 }, (_, i) => web.url(`/other-${seq}-${i}.xml`))];
      post(feed.url, 'batched');
      const res = await fetch(`${hub.url}/websub`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Python-urllib/2.7' },
        body: [...urls.map((u) => `hub.url=${pythonQuotePlus(u)}`), 'hub.mode=publish'].join('&'),
      });
      expect(res.status, await res.text()).to.be.within(200, 299);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });

    it("node's `request` given the URLs as an array: indexed keys hub.url[0], hub.url[1] (pubsubhubbub-node-publisher)", async () => {
      // themidgame/pubsubhubbub-node-publisher lib/publisher.js: publishUpdate('a,b') builds
      // 'hub.mode=publish&hub.url=a&hub.url=b', querystring.parse()s it back into
      // {'hub.url': [a, b]} and posts it as request's `form`, which qs.stringify encodes with
      // indices: hub.url%5B0%5D=a&hub.url%5B1%5D=b (its test expects exactly that). PHP's
      // http_build_query writes an array the same way.
      const a = await followed('/a.xml');
      const b = await followed('/b.xml');
      post(a.url, 'indexed');
      post(b.url, 'indexed');
      const res = await fetch(`${hub.url}/websub`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `hub.mode=publish&hub.url%5B0%5D=${encodeURIComponent(a.url)}&hub.url%5B1%5D=${encodeURIComponent(b.url)}`,
      });
      expect(res.status, await res.text()).to.be.within(200, 299);
      expect(await deliveredTo(a.cb)).to.have.length(1);
      expect(await deliveredTo(b.cb)).to.have.length(1);
    });

    it('Sweetroll: hub.topic[] arrays (qs, brackets) with a charset on the form, then the same for granary URLs whose query carries encoded URLs', async () => {
      // sweetroll-fe (IndieWeb CMS) onEntryChange(): in its default 'multi' mode, one POST of
      // qs.stringify({'hub.mode': 'publish', 'hub.topic': urls}, {arrayFormat: 'brackets'}) for
      // the feeds a change is in, and one for each of those through three granary converters
      // (`…/url?input=html&output=atom&hub=<hub>&url=<url>`); Content-Type form with
      // charset=utf-8, User-Agent Sweetroll; the reply is only logged.
      const feed = await followed('/');
      const converted = await followed('/granary/url', `?input=html&output=atom&hub=${encodeURIComponent(`${hub.url}/websub`)}&url=${encodeURIComponent(feed.url)}`);
      post(feed.url, 'from Sweetroll');
      post(converted.url, 'from Sweetroll');
      // qs encodes keys and values alike, brackets included.
      const qsBrackets = (urls: string[]): string =>
        [`hub.mode=publish`, ...urls.map((u) => `hub.topic%5B%5D=${encodeURIComponent(u)}`)].join('&');
      for (const urls of [[feed.url, `${feed.url}an-entry/`], [converted.url]]) {
        const res = await fetch(`${hub.url}/websub`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'user-agent': 'Sweetroll' },
          body: qsBrackets(urls),
        });
        expect(res.status, await res.text()).to.be.within(200, 299);
      }
      expect(await deliveredTo(feed.cb)).to.have.length(1);
      expect(await deliveredTo(converted.cb)).to.have.length(1);
    });

    it("Superfeedr's publisher instructions (until they said commas) list URLs with semicolons: hub.url=<url1>;<url2>", async () => {
      // superfeedr/documentation publishers.md, older versions: "by sending a coma separated
      // list or url-encoded URLs like this hub.url=<url1>;<url2>"; scripts written from it
      // check for 204. Read as one URL, the second feed's path was fetched (404) and nobody heard.
      const a = await followed('/one.xml');
      const b = await followed('/two.xml');
      post(a.url, 'semicolons');
      post(b.url, 'semicolons');
      const res = await hub.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': `${a.url};${b.url}` });
      expect([res.status, await res.text()]).to.deep.equal([204, '']);
      expect(await deliveredTo(a.cb)).to.have.length(1);
      expect(await deliveredTo(b.cb)).to.have.length(1);
    });

    it('a semicolon or comma inside one URL (path parameters, a query of tags) does not split it: only one that starts a new http(s) URL does', async () => {
      const feed = await followed('/feed;jsessionid=a1', '?tags=news,tech;lang=en');
      post(feed.url, 'one URL');
      const res = await hub.postForm('/websub', { 'hub.mode': 'publish', 'hub.url': feed.url });
      expect([res.status, await res.text()]).to.deep.equal([204, '']);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });
  });

  describe('rssCloud REST ping', () => {
    it('the RSSCloud External Ping WordPress plugin: a WordPress form body, Accept: application/json, failed only on a status of 400 or more', async () => {
      // scotthansonde/rsscloud-ping rsscloud-ping.php: wp_remote_post(ping URL, timeout 5,
      // Accept: application/json, body ['url' => get_feed_link('rss2')]); WordPress encodes an
      // array body with http_build_query and labels it form, charset=UTF-8.
      const feed = web.set(`/s${++seq}/feed/`, { body: rss('first'), contentType: RSS });
      const cloud = await Recorder.start(subscriberOk);
      try {
        expect((await pleaseNotify(hub, subscribeForm(cloud, '/notify', feed))).success).to.equal(true);
        cloud.reset(); // the handler test
        post(feed, 'pinged');
        const res = await fetch(`${hub.url}/ping`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8', accept: 'application/json', 'user-agent': 'WordPress/6.6; http://blog.example' },
          body: `url=${encodeURIComponent(feed)}`,
        });
        expect(res.status).to.be.below(400);
        expect(await res.json()).to.deep.equal({ success: true, msg: MSG.pinged });
        await settled(hub);
        expect(notificationsAt(cloud, '/notify').map((r) => r.body.toString())).to.deep.equal([notifyBody(feed)]);
      } finally {
        await cloud.close();
      }
    });
  });

  describe('weblogUpdates over XML-RPC', () => {
    /** The bytes an Incutio IXR_Request carries: typed strings, htmlspecialchars()'d, a param a line. */
    const ixrCall = (method: string, params: string[]): string =>
      `<?xml version="1.0"?>\n<methodCall>\n<methodName>${method}</methodName>\n<params>\n` +
      params.map((p) => `<param><value><string>${p.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}</string></value></param>\n`).join('') +
      '</params></methodCall>';

    const THANKS = /<member><name>flerror<\/name><value><boolean>0<\/boolean><\/value><\/member>/;

    it("WordPress's weblog_ping (WP_HTTP_IXR_Client): IXR's bytes, text/xml; only HTTP 200 and a parsed non-fault answer count", async () => {
      // wp-includes/class-wp-http-ixr-client.php query(): Content-Type text/xml, User-Agent
      // 'The Incutio XML-RPC PHP Library -- WordPress/x'; anything but status 200, an answer
      // that does not parse, or a fault is a failure (a fault of extendedPing makes weblog_ping
      // try ping). The blog name is stored entity-escaped, and IXR escapes it again.
      const feed = await followed('/feed/');
      const home = feed.url.replace(/feed\/$/, '');
      post(feed.url, 'from WordPress core');
      const res = await fetch(`${hub.url}/RPC2`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml', 'user-agent': 'The Incutio XML-RPC PHP Library -- WordPress/6.6' },
        body: ixrCall('weblogUpdates.extendedPing', ['Tom &amp; Jerry&#8217;s blog', home, feed.url]),
      });
      const text = await res.text();
      expect(res.status, text).to.equal(200);
      expect(text).to.match(/^<\?xml version="1\.0"\?>\n?<methodResponse><params><param><value><struct>/);
      expect(text).to.match(THANKS);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });

    it("Python's xmlrpc.client (ping scripts: ServerProxy(url).weblogUpdates.extendedPing(name, home, post, feed)): its bytes, a ProtocolError on anything but 200", async () => {
      // CPython Lib/xmlrpc/client.py: dumps() writes "<?xml version='1.0'?>" in single quotes,
      // one element a line, typed strings with &, < and > escaped; Transport posts text/xml
      // with User-Agent Python-xmlrpc/3.x and Accept-Encoding gzip, and raises ProtocolError
      // unless the status is 200. The four strings are the Baidu/Google convention (a post, then
      // the feed), as in Python ping helpers.
      const feed = await followed('/feed.xml');
      const home = new URL(feed.url).origin + '/';
      post(feed.url, 'from Python');
      const params = ['Ünïcode & <blog>', home, `${home}2026/a-post/`, feed.url];
      const body =
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>weblogUpdates.extendedPing</methodName>\n<params>\n" +
        params.map((p) => `<param>\n<value><string>${p.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</string></value>\n</param>\n`).join('') +
        '</params>\n</methodCall>\n';
      const res = await fetch(`${hub.url}/RPC2`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml', 'user-agent': 'Python-xmlrpc/3.12', 'accept-encoding': 'gzip' },
        body: Buffer.from(body, 'utf8'),
      });
      const text = await res.text();
      expect(res.status, text).to.equal(200);
      expect(text).to.match(THANKS);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });

    it("Ghost: weblogUpdates.ping(post title, post URL) with no Content-Type, read by a regex on flerror's member, given 2 s", async () => {
      // TryGhost/Ghost core/server/services/xmlrpc.js: on post.published, the `xml` package's
      // compact document with an encoding declaration, posted by got (a string body: no
      // Content-Type; User-Agent Ghost/x) with a 2 s timeout; success is only
      // /<member>\s*<name>flerror<\/name>\s*<value>\s*<boolean>0<\/boolean><\/value><\/member>/.
      // It names the post, not the home page: the feed is found from the post page's
      // <link rel="alternate">. (Its ping list is ping-o-matic alone, in the code.)
      const feed = await followed('/rss/');
      const postUrl = web.set(new URL(feed.url).pathname.replace(/rss\/$/, 'a-post/'), {
        body: `<!DOCTYPE html><html><head><title>A post</title><link rel="alternate" type="application/rss+xml" title="A site" href="${feed.url}"></head><body>Hi</body></html>`,
        contentType: 'text/html; charset=utf-8',
      });
      post(feed.url, 'from Ghost');
      const res = await fetch(`${hub.url}/RPC2`, {
        method: 'POST',
        headers: { 'user-agent': 'Ghost/5.0.0 (https://github.com/TryGhost/Ghost)' },
        body: Buffer.from(
          `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value><string>A post</string></value></param><param><value><string>${postUrl}</string></value></param></params></methodCall>`,
        ),
        signal: AbortSignal.timeout(2000),
      });
      const text = await res.text();
      expect(res.status, text).to.equal(200);
      expect(text).to.match(/<member>[\s]*<name>flerror<\/name>[\s]*<value>[\s]*<boolean>0<\/boolean><\/value><\/member>/);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });

    it('the standalone IXR_Client of ping scripts: HTTP/1.0 on a bare socket, reads to the close, no chunked decoding, status line with 200', async () => {
      // Incutio IXR_Library IXR_Client::query(), in ping scripts and small PHP CMSs (extendedPing
      // then ping, timeout 3): fsockopen, 'POST path HTTP/1.0', Host, Content-Type text/xml,
      // User-Agent, Content-Length; then reads lines until the server closes, checks the first
      // for 200, and takes everything after the blank line as the XML, undecoded.
      const feed = await followed('/rss.xml');
      const home = new URL(feed.url).origin + '/';
      post(feed.url, 'from a ping script');
      const body = Buffer.from(ixrCall('weblogUpdates.extendedPing', ['My blog', home, feed.url, feed.url]));
      const { port } = new URL(hub.url);
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.setTimeout(10_000, () => reject(new Error('the hub kept the HTTP/1.0 connection open: IXR reads until the close')));
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        socket.on('error', reject);
        socket.write(
          `POST /RPC2 HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nUser-Agent: The Incutio XML-RPC PHP Library -- PingTool/1.0.0\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        // IXR never half-closes: it writes, then reads.
        socket.write(body);
      });
      const [head = '', xml = ''] = raw.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).to.match(/^HTTP\/[0-9.]+ 200 /);
      expect(head).to.not.match(/transfer-encoding/i);
      expect(xml).to.match(THANKS);
      expect(await deliveredTo(feed.cb)).to.have.length(1);
    });
  });
});
