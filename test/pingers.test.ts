// Update pings as blogging engines and XML-RPC libraries really send them: each test writes the
// bytes one client puts on the wire (read from its source, facts only) over a raw socket, reads
// the answer the way that client reads it, and checks that a subscriber of the pinged feed was
// notified. None of these clients shows a failed ping to anyone but a log, so a regression here
// is silent for its users.
//
// Covered elsewhere and not repeated: WordPress core, the standalone IXR_Client over HTTP/1.0
// (Textpattern and many ping scripts use it), Python's xmlrpc.client and Ghost
// (publishers.test.ts); Google's four-string extendedPing and rssUpdate (weblogupdates.test.ts);
// a call in ISO-8859-1 (rsscloud-xmlrpc.test.ts).
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Subscriber, TopicServer, settled, subscribe } from './helpers/websub.js';

const RSS = 'application/rss+xml; charset=UTF-8';

const rss = (title: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>A blog</title><link>http://blog.example/</link><description>d</description>` +
  `<item><title>${title}</title><guid>urn:${title}</guid></item></channel></rss>\n`;

interface RawReply {
  statusLine: string;
  headers: Map<string, string>;
  body: string;
}

/**
 * Writes `head` (CRLF line ends and the blank line included) and `body` on a bare socket, as the
 * client would, and reads one answer: to Content-Length, to the last chunk, or to the close.
 * With `expectContinue` the body waits for the hub's 100 Continue, as .NET's HttpWebRequest does.
 */
function rawRequest(port: number, head: string, body: Buffer | Buffer[], opts: { expectContinue?: boolean } = {}): Promise<RawReply> {
  const parts = Array.isArray(body) ? body : [body];
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let waitingForContinue = opts.expectContinue === true;
    let settledOnce = false;
    const finish = (reply: RawReply | Error): void => {
      if (settledOnce) return;
      settledOnce = true;
      socket.destroy();
      if (reply instanceof Error) reject(reply);
      else resolve(reply);
    };
    const tryParse = (closed: boolean): void => {
      if (waitingForContinue) {
        const interim = received.indexOf('\r\n\r\n');
        if (interim === -1) return;
        const line = received.subarray(0, interim).toString('latin1');
        if (!/^HTTP\/1\.1 100 /.test(line)) return finish(new Error(`expected 100 Continue, got ${line}`));
        received = received.subarray(interim + 4);
        waitingForContinue = false;
        for (const p of parts) socket.write(p);
      }
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine = '', ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const l of lines) {
        const colon = l.indexOf(':');
        headers.set(l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim());
      }
      let rest = received.subarray(end + 4);
      const length = headers.get('content-length');
      if (length !== undefined) {
        if (rest.length < Number(length)) return;
        rest = rest.subarray(0, Number(length));
      } else if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
        const chunks: Buffer[] = [];
        for (let at = 0; ; ) {
          const lineEnd = rest.indexOf('\r\n', at);
          if (lineEnd === -1) return;
          const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
          if (size === 0) break;
          if (rest.length < lineEnd + 2 + size + 2) return;
          chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        rest = Buffer.concat(chunks);
      } else if (!closed) {
        return;
      }
      finish({ statusLine, headers, body: rest.toString('utf8') });
    };
    socket.setTimeout(10_000, () => finish(new Error(`no complete answer; got ${received.toString('latin1')}`)));
    socket.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      tryParse(false);
    });
    socket.on('end', () => {
      tryParse(true);
      finish(new Error(`the hub closed the connection mid-answer: ${received.toString('latin1')}`));
    });
    socket.on('error', (e) => finish(e));
    socket.write(head);
    if (!waitingForContinue) for (const p of parts) socket.write(p);
  });
}

/** Raw HTTP/1.x headers, CRLF-terminated, with the blank line. */
const headOf = (requestLine: string, headers: [string, string | number][]): string =>
  `${requestLine}\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;

/** The one flerror member of a weblogUpdates answer, as a regex-reading client finds it. */
const FLERROR = /<member>\s*<name>flerror<\/name>\s*<value>\s*<boolean>([01])<\/boolean>\s*<\/value>\s*<\/member>/;

describe('update pings from blogging engines and XML-RPC libraries', function () {
  let hub: TestHub;
  let port: number;
  let web: TopicServer;
  let sub: Subscriber;
  let seq = 0;

  before(async () => {
    hub = await startTestHub();
    port = Number(new URL(hub.url).port);
    web = await TopicServer.start();
    sub = await Subscriber.start();
  });
  after(async () => {
    await hub?.destroy();
    await web?.close();
    await sub?.close();
  });

  /**
   * A blog: a home page linking to its RSS feed, the feed with one WebSub subscriber, and a
   * function that adds a post. `home` ends in a slash; the feed is `<home><feedPath>`.
   */
  async function blog(feedPath = 'feed/'): Promise<{ home: string; feed: string; post: (title: string) => void; delivered: () => Promise<string[]> }> {
    const base = `/b${++seq}/`;
    // The topic server ignores a query: `rss.php?version=2.0` is served from `rss.php`.
    const feedFile = `${base}${feedPath.replace(/\?.*$/, '')}`;
    const feed = web.set(feedFile, { body: rss('first'), contentType: RSS }) + feedPath.slice(feedPath.replace(/\?.*$/, '').length);
    const home = web.set(base, {
      body: `<!DOCTYPE html><html><head><title>A blog</title><link rel="alternate" type="application/rss+xml" title="A blog" href="${feed}"></head><body>Hi</body></html>`,
      contentType: 'text/html; charset=utf-8',
    });
    const cb = `/cb${seq}`;
    const before = sub.verifications('subscribe', cb).length;
    const res = await subscribe(hub, { 'hub.topic': feed, 'hub.callback': sub.callback(cb) });
    expect(res.status, await res.text()).to.equal(202);
    await sub.waitVerifications(before + 1, 'subscribe', cb);
    await settled(hub);
    return {
      home,
      feed,
      post: (title) => web.set(feedFile, { body: rss(title), contentType: RSS }),
      delivered: async () => {
        await settled(hub);
        return sub.deliveries(cb).map((d) => d.body.toString());
      },
    };
  }

  describe('blogging engines', () => {
    it('Movable Type (MT::XMLRPC ping_update): untyped values in a heredoc, a name with an entity in CDATA; 2xx, then flerror read by regex', async () => {
      // lib/MT/XMLRPC.pm: weblogUpdates.ping(blog name, site URL) built by hand, four-space
      // indentation, untyped <value>s through encode_xml, which wraps a string holding markup or an
      // entity in CDATA; LWP's HTTP/1.1 with TE and Connection: TE, close; Content-Type text/xml.
      // A status not starting with 2 is an error, then /flerror.*?<boolean>(\d+)/s decides and
      // /message.*?<value>(.+?)<\/value>/s is the message shown.
      const b = await blog();
      b.post('from Movable Type');
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n    <methodName>weblogUpdates.ping</methodName>\n    <params>\n' +
          `    <param><value><![CDATA[Tom &amp; Jerry&#8217;s <em>blog</em>]]></value></param>\n` +
          `    <param><value>${b.home}</value></param>\n` +
          '    </params>\n</methodCall>\n',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['TE', 'deflate,gzip;q=0.3'], ['Connection', 'TE, close'], ['Host', `127.0.0.1:${port}`], ['User-Agent', 'MovableType/7.9'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 2\d\d /);
      expect(/flerror.*?<boolean>(\d+)/s.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(/message.*?<value>(.+?)<\/value>/s.exec(reply.body)?.[1]).to.contain('Thanks for the ping.');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Drupal's xmlrpc.inc (ping module, xmlrpc()): a heredoc head, <string>s a line each, HTTP/1.0 with the port in Host; only 200 and no fault count", async () => {
      // includes/xmlrpc.inc xmlrpc_request(): '<?xml version="1.0"?>' and methodCall/methodName/params
      // a line each, then '<param><value><string>…</string></value></param>' lines
      // (htmlspecialchars, apostrophes left alone); drupal_http_request: HTTP/1.0, Host with the
      // port when not the default, User-Agent Drupal (+http://drupal.org/), Content-Length.
      const b = await blog();
      b.post('from Drupal');
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n<methodName>weblogUpdates.ping</methodName>\n<params>\n' +
          "<param><value><string>Dries' &lt;site&gt;</string></value></param>\n" +
          `<param><value><string>${b.home}</string></value></param>\n` +
          '</params></methodCall>',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'Drupal (+http://drupal.org/)'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(reply.body).to.not.contain('<fault>');
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Dotclear's pings plugin (clearbricks xmlrpcClient): two-space indentation, HTTP/1.0 with Host but no port; a truthy flerror throws the message", async () => {
      // net.xmlrpc/class.net.xmlrpc.php xmlrpcRequest and xmlrpcClient::buildRequest: POST path
      // HTTP/1.0, Host (the host alone), Content-Type text/xml, User-Agent Clearbricks XML/RPC
      // Client, Content-Length; query() throws on a status but 200 or a fault; pingsAPI::doPings
      // throws $rsp['message'] when $rsp['flerror'] is truthy.
      const b = await blog();
      b.post('from Dotclear');
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n  <methodName>weblogUpdates.ping</methodName>\n  <params>\n' +
          '    <param><value><string>Mon blog à moi</string></value></param>\n' +
          `    <param><value><string>${b.home}</string></value></param>\n` +
          '  </params></methodCall>',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['Host', '127.0.0.1'], ['Content-Type', 'text/xml'], ['User-Agent', 'Clearbricks XML/RPC Client'], ['Content-Length', body.length]]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Serendipity's weblogping plugin (PEAR XML_RPC): extendedPing(title, base URL, an empty checkUrl, rss.php?version=2.0); only a fault counts as failure", async () => {
      // serendipity_event_weblogping.php backend_publish: XML_RPC_Value(…, 'string') for the blog
      // title and baseURL, then for extended services '' and baseURL.'rss.php?version=2.0';
      // XML_RPC_Message::createPayload (a declaration with encoding, one element a line), posted by
      // PEAR HTTP_Request over HTTP/1.1 with Connection: close; the answer is parseResponse()d and
      // only faultCode() is looked at.
      const b = await blog('rss.php?version=2.0');
      b.post('from Serendipity');
      const params = ['Serendipity &amp; friends', b.home, '', b.feed.replace(/&/g, '&amp;')];
      const body = Buffer.from(
        '<?xml version="1.0" encoding="UTF-8"?>\n<methodCall>\n<methodName>weblogUpdates.extendedPing</methodName>\n<params>\n' +
          params.map((p) => `<param>\n<value><string>${p}</string></value>\n</param>\n`).join('') +
          '</params>\n</methodCall>\n',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['User-Agent', 'PEAR HTTP_Request class ( http://pear.php.net/ )'], ['Connection', 'close'], ['Host', `127.0.0.1:${port}`], ['Content-Type', 'text/xml'], ['Content-Length', body.length]]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(reply.body).to.not.contain('<fault>');
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('b2evolution / Nucleus (XML-RPC for PHP, xmlrpcmsg): extendedPing(name, url, url, RSS url), a <param> and its <value> on lines of their own, HTTP/1.0', async () => {
      // b2evocore/_functions_pings.php pingBlogs(): weblogUpdates.extendedPing with the blog URL
      // twice and the RSS URL fourth, through xmlrpc_client::send: '<?xml version="1.0"?>', one
      // element a line, HTTP/1.0; a status line without 200 is an error, then a fault, then flerror.
      const b = await blog();
      b.post('from b2evolution');
      const params = ['My b2evo blog', b.home, b.home, b.feed];
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n<methodName>weblogUpdates.extendedPing</methodName>\n<params>\n' +
          params.map((p) => `<param>\n<value><string>${p}</string></value>\n</param>\n`).join('') +
          '</params>\n</methodCall>\n',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['User-Agent', 'XML-RPC for PHP 1.02'], ['Host', '127.0.0.1'], ['Content-Type', 'text/xml'], ['Content-Length', body.length]]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/[0-9.]+ 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });
  });

  describe('XML-RPC libraries that type a string by its looks', () => {
    it("Perl's XMLRPC::Lite: a blog name with a non-ASCII character goes as <base64>; the ping must still work", async () => {
      // XMLRPC::Serializer's typelookup tries base64 first, for any value with a character
      // outside \x09\x0a\x0d\x20-\x7f (so every UTF-8 name with an accent), then int, double,
      // dateTime, and only then string; a compact document with encoding="UTF-8". LWP over
      // HTTP/1.1, Content-Type text/xml (XMLRPC::Lite drops the charset). Reads ->result.
      const b = await blog();
      b.post('from XMLRPC::Lite');
      const name = Buffer.from('Café Müller', 'utf8').toString('base64');
      const body = Buffer.from(
        '<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>weblogUpdates.ping</methodName><params>' +
          `<param><value><base64>${name}</base64></value></param><param><value><string>${b.home}</string></value></param>` +
          '</params></methodCall>',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['Accept', 'text/xml'], ['Accept', 'multipart/*'], ['Accept', 'application/soap'], ['Host', `127.0.0.1:${port}`], ['User-Agent', 'SOAP::Lite/Perl/1.27'], ['Content-Length', body.length], ['Content-Type', 'text/xml'], ['Connection', 'close']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(reply.headers.get('content-type')).to.match(/^text\/xml/);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Perl's RPC::XML::Client: a name of digits (a year) goes as <int>, encoding=\"us-ascii\", HTTP/1.0 with Accept-Encoding: deflate", async () => {
      // RPC::XML::smart_encode: /^[-+]?\d+$/ is an int (i8 past 32 bits), a number a double, a
      // dateTime-looking string a dateTime.iso8601; $RPC::XML::ENCODING is 'us-ascii'. The client
      // sets HTTP/1.0, Content-Type text/xml and Accept-Encoding deflate (Compress::Zlib), and
      // takes anything but a 2xx as an error.
      const b = await blog();
      b.post('from RPC::XML');
      const body = Buffer.from(
        '<?xml version="1.0" encoding="us-ascii"?><methodCall><methodName>weblogUpdates.ping</methodName><params>' +
          `<param><value><int>2024</int></value></param><param><value><string>${b.home}</string></value></param>` +
          '</params></methodCall>',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['Accept-Encoding', 'deflate'], ['Host', '127.0.0.1'], ['User-Agent', 'RPC::XML::Client/1.44 libwww-perl/6.72'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(reply.headers.get('content-encoding') ?? 'identity').to.match(/identity|deflate/);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Perl's Frontier::Client: a name of digits goes as <i4>, a <param> a line", async () => {
      // Frontier::RPC2 encode_call/_scalar: /^[+-]?\d+$/ → <i4>, the perldata number pattern →
      // <double>, else <string> with & < > " escaped; each param on a line of its own.
      const b = await blog();
      b.post('from Frontier::Client');
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n<methodName>weblogUpdates.extendedPing</methodName>\n<params>\n' +
          '<param><value><i4>1984</i4></value></param>\n' +
          `<param><value><string>${b.home}</string></value></param>\n` +
          `<param><value><string>${b.home}</string></value></param>\n` +
          `<param><value><string>${b.feed}</string></value></param>\n` +
          '</params>\n</methodCall>\n',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'libwww-perl/6.72'], ['Content-Length', body.length], ['Content-Type', 'text/xml'], ['Connection', 'close']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });
  });

  describe('XML-RPC libraries of other languages', () => {
    it("Ruby's XMLRPC::Client (Hobix's ping): '<?xml version=\"1.0\" ?>', keep-alive; the answer must be 200, text/xml and exactly Content-Length long", async () => {
      // xmlrpc/client.rb do_rpc: Content-Type text/xml; charset=utf-8, Connection keep-alive;
      // raises unless the code is "200", the media type is text/xml, and (without
      // Transfer-Encoding) the body's bytesize equals Content-Length.
      const b = await blog();
      b.post('from Ruby');
      const body = Buffer.from(
        `<?xml version="1.0" ?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value><string>why’s weblog</string></value></param><param><value><string>${b.home}</string></value></param></params></methodCall>\n`,
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['User-Agent', 'XMLRPC::Client (Ruby 3.2.2)'], ['Content-Type', 'text/xml; charset=utf-8'], ['Content-Length', body.length], ['Connection', 'keep-alive'], ['Accept', '*/*'], ['Host', `127.0.0.1:${port}`]]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(reply.headers.get('content-type')?.split(';')[0]).to.equal('text/xml');
      expect(Buffer.byteLength(reply.body)).to.equal(Number(reply.headers.get('content-length')));
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('Java Apache XML-RPC 3 (Roller): untyped strings, no whitespace, a chunked body when the content length is optional; the answer a Boolean flerror', async () => {
      // org.apache.xmlrpc.serializer.StringSerializer writes a string as the bare text of its
      // <value>; XmlRpcClientConfigImpl.setContentLengthOptional(true) streams the request chunked.
      // Roller casts the struct's flerror to Boolean (an int there is a ClassCastException).
      const b = await blog();
      b.post('from Roller');
      const xml = `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value>Roller weblog</value></param><param><value>${b.home}</value></param></params></methodCall>`;
      const half = Math.floor(xml.length / 2);
      const chunk = (s: string): Buffer => Buffer.from(`${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`);
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['Content-Type', 'text/xml'], ['User-Agent', 'Apache XML RPC 3.1.3 (Jakarta Commons httpclient Transport)'], ['Host', `127.0.0.1:${port}`], ['Transfer-Encoding', 'chunked']]),
        [chunk(xml.slice(0, half)), chunk(xml.slice(half)), Buffer.from('0\r\n\r\n')],
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(reply.body).to.match(FLERROR);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('.NET CookComputing XML-RPC.NET: a UTF-8 byte-order mark, CRLF and two-space indentation, Expect: 100-continue; a struct of exactly flerror (bool) and message', async () => {
      // XmlRpcSerializer indents by 2 with the XmlTextWriter's CRLF, <string> typed; the request
      // stream's UTF-8 encoding writes a BOM; HttpWebRequest sends Expect: 100-continue and waits
      // for the 100 before the body. A struct mapped to a .NET type refuses missing or extra members.
      const b = await blog();
      b.post('from .NET');
      const xml =
        '<?xml version="1.0"?>\r\n<methodCall>\r\n  <methodName>weblogUpdates.ping</methodName>\r\n  <params>\r\n' +
        ['dasBlog', b.home].map((p) => `    <param>\r\n      <value>\r\n        <string>${p}</string>\r\n      </value>\r\n    </param>\r\n`).join('') +
        '  </params>\r\n</methodCall>';
      const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml)]);
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['User-Agent', 'XML-RPC.NET'], ['Content-Type', 'text/xml'], ['Host', `127.0.0.1:${port}`], ['Content-Length', body.length], ['Expect', '100-continue'], ['Connection', 'Keep-Alive']]),
        body,
        { expectContinue: true },
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      const members = [...reply.body.matchAll(/<name>([^<]*)<\/name>/g)].map((m) => m[1]);
      expect(members).to.deep.equal(['flerror', 'message']);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('Open Live Writer after publishing: XmlTextWriter indented by one space with CRLF, encoding="utf-8", Content-Type text/xml;charset=utf-8 (no space), no redirects followed', async () => {
      // OpenLiveWriter.CoreServices XmlRpcClient.CallMethod: UTF8Encoding without a BOM,
      // Formatting.Indented with Indentation 1, <string> typed; ContentType "text/xml;charset=utf-8";
      // AllowAutoRedirect false. UpdateWeblogAsyncOperation's PingHelper sends
      // weblogUpdates.ping(blog name, home page URL) to every URL of its ping list.
      const b = await blog();
      b.post('from Open Live Writer');
      const xml =
        '<?xml version="1.0" encoding="utf-8"?>\r\n<methodCall>\r\n <methodName>weblogUpdates.ping</methodName>\r\n <params>\r\n' +
        ['Écrits & notes', b.home].map((p) => `  <param>\r\n   <value>\r\n    <string>${p.replace(/&/g, '&amp;')}</string>\r\n   </value>\r\n  </param>\r\n`).join('') +
        ' </params>\r\n</methodCall>';
      const body = Buffer.from(xml, 'utf8');
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['User-Agent', 'Open Live Writer 0.6.2 (Windows NT 10.0.19045.0)'], ['Content-Type', 'text/xml;charset=utf-8'], ['Host', `127.0.0.1:${port}`], ['Content-Length', body.length], ['Expect', '100-continue'], ['Connection', 'Keep-Alive']]),
        body,
        { expectContinue: true },
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("Go's kolo/xmlrpc: a compact document with encoding=\"UTF-8\", xml.EscapeText's character references (&#39; &#34;)", async () => {
      // Call(method, []interface{}{name, url}, &reply): each element a param, <string> typed,
      // escaped by encoding/xml (' as &#39;, " as &#34;); net/http: User-Agent Go-http-client/1.1,
      // Accept-Encoding gzip.
      const b = await blog();
      b.post('from Go');
      const body = Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value><string>Rob&#39;s &#34;Go&#34; notes</string></value></param><param><value><string>${b.home}</string></value></param></params></methodCall>`,
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'Go-http-client/1.1'], ['Content-Length', body.length], ['Content-Type', 'text/xml'], ['Accept-Encoding', 'gzip'], ['Connection', 'close']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it("PHP's ext/xmlrpc (xmlrpc_encode_request, file_get_contents): encoding=\"iso-8859-1\", pretty indentation, markup and every non-ASCII byte as numeric references", async () => {
      // xmlrpc-epi's defaults: verbosity pretty (a space per level), escaping markup|non-ascii|
      // non-print as &#NN; (a UTF-8 name's bytes one by one), encoding iso-8859-1. The PHP http
      // stream wrapper: HTTP/1.0, Host, Connection: close, the Content-Type the script gives.
      const b = await blog();
      b.post('from ext/xmlrpc');
      const body = Buffer.from(
        '<?xml version="1.0" encoding="iso-8859-1"?>\n<methodCall>\n<methodName>weblogUpdates.ping</methodName>\n<params>\n' +
          [`Caf&#195;&#169; &#38; bar`, b.home].map((p) => ` <param>\n  <value>\n   <string>${p}</string>\n  </value>\n </param>\n`).join('') +
          '</params>\n</methodCall>\n',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['Host', `127.0.0.1:${port}`], ['Connection', 'close'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });
  });

  describe('hand-built pings', () => {
    it("curl from a shell, -d without -H: the form Content-Type curl defaults to, untyped values", async () => {
      // `curl -d '<?xml …>' https://hub/RPC2`: curl labels a -d body
      // application/x-www-form-urlencoded unless told otherwise.
      const b = await blog();
      b.post('from curl');
      const body = Buffer.from(
        `<?xml version="1.0"?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value>My shell blog</value></param><param><value>${b.home}</value></param></params></methodCall>`,
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.1', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'curl/8.5.0'], ['Accept', '*/*'], ['Content-Length', body.length], ['Content-Type', 'application/x-www-form-urlencoded'], ['Connection', 'close']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.1 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('a bare-socket PHP pinger of the weblogs.com days: HTTP/1.0 with no Host at all, Content-length, untyped values; reads to the close', async () => {
      // The "quick and dirty" pingWeblogs() copied into small CMSs (Siteframe's, 2001):
      // fsockopen, 'POST /RPC2 HTTP/1.0', User-Agent, Content-Type text/xml, Content-length, no
      // Host; then fgets until EOF and the text after the last <value> is the message.
      const b = await blog();
      b.post('from a bare socket');
      const body = Buffer.from(
        `<?xml version="1.0"?><methodCall><methodName>weblogUpdates.ping</methodName><params><param><value>Siteframe site</value></param><param><value>${b.home}</value></param></params></methodCall>`,
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['User-Agent', "Bean's Weblogs.com Updater (PHP Stylin')"], ['Content-Type', 'text/xml'], ['Content-length', body.length]]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });

    it('a body built in an indented heredoc: whitespace before the XML declaration, as IXR and WordPress servers accept', async () => {
      // PHP heredocs inside a class method keep their indentation before PHP 7.3 (the Drupal
      // xmlrpc.inc copies in plugins have '    <?xml version="1.0"?>'); WordPress's xmlrpc.php
      // trims the body "for mozBlog and other cases where '<?xml' isn't on the very first line",
      // and IXR servers (Ping-O-Matic among them) cut the declaration out wherever it is.
      const b = await blog();
      b.post('from an indented heredoc');
      const body = Buffer.from(
        '\n    <?xml version="1.0"?>\n    <methodCall>\n    <methodName>weblogUpdates.ping</methodName>\n    <params>\n    \n' +
          `<param><value><string>Indented</string></value></param>\n<param><value><string>${b.home}</string></value></param>\n` +
          '</params></methodCall>',
      );
      const reply = await rawRequest(
        port,
        headOf('POST /RPC2 HTTP/1.0', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'Drupal (+http://drupal.org/)'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(reply.body).to.not.contain('<fault>');
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
    });
  });

  describe("the hub's bare address in a ping list", () => {
    it("WordPress's Update Services list holding the hub's root URL (as it holds http://rpc.pingomatic.com/): the ping is served as at /RPC2", async () => {
      // WordPress posts to the path of each URL in the list, here `/`. Before, a 404 that
      // WordPress only logs: the post reached no subscriber.
      const b = await blog();
      b.post('pinged at the root');
      const body = Buffer.from(
        '<?xml version="1.0"?>\n<methodCall>\n<methodName>weblogUpdates.extendedPing</methodName>\n<params>\n' +
          `<param><value><string>A blog</string></value></param>\n<param><value><string>${b.home}</string></value></param>\n` +
          `<param><value><string>${b.feed}</string></value></param>\n</params></methodCall>\n`,
      );
      const reply = await rawRequest(
        port,
        headOf('POST / HTTP/1.0', [['Host', `127.0.0.1:${port}`], ['User-Agent', 'The Incutio XML-RPC PHP Library -- WordPress/6.6'], ['Content-Length', body.length], ['Content-Type', 'text/xml']]),
        body,
      );
      expect(reply.statusLine).to.match(/^HTTP\/1\.[01] 200 /);
      expect(reply.headers.get('content-type')).to.match(/^text\/xml/);
      expect(FLERROR.exec(reply.body)?.[1], reply.body).to.equal('0');
      expect(await b.delivered()).to.have.length(1);
      // The page at that address is still the dashboard.
      const page = await fetch(`${hub.url}/`);
      expect([page.status, page.headers.get('content-type')]).to.deep.equal([200, 'text/html; charset=utf-8']);
    });

    it('a broken call at the root gets the fault it gets at /RPC2, sent as text/xml or as application/xml (as some libraries label it)', async () => {
      for (const type of ['text/xml', 'application/xml; charset=utf-8']) {
        const root = await fetch(`${hub.url}/`, { method: 'POST', headers: { 'content-type': type }, body: '<methodCall><methodName>weblogUpdates.ping' });
        const rpc2 = await fetch(`${hub.url}/RPC2`, { method: 'POST', headers: { 'content-type': type }, body: '<methodCall><methodName>weblogUpdates.ping' });
        const text = await root.text();
        expect(text, type).to.contain('<fault>');
        expect([root.status, text], type).to.deep.equal([rpc2.status, await rpc2.text()]);
      }
    });

    // PHP's curl given CURLOPT_POSTFIELDS as a string labels it application/x-www-form-urlencoded
    // unless told otherwise, and many ping scripts never tell it; some clients send no
    // Content-Type at all. Before, such a call at the root reached WebSub, whose 400 in plain
    // text no XML-RPC client can read, and the ping was lost.
    for (const [label, type] of [['curl\'s default form type', 'application/x-www-form-urlencoded'], ['no Content-Type', undefined]] as const) {
      it(`an XML-RPC ping at the root sent with ${label} is served as at /RPC2, answer for answer`, async () => {
        const b = await blog();
        b.post(`pinged at the root with ${label}`);
        const body = Buffer.from(
          '<?xml version="1.0" encoding="UTF-8"?>\n<methodCall><methodName>weblogUpdates.ping</methodName><params>' +
            `<param><value><string>A blog</string></value></param><param><value><string>${b.home}</string></value></param></params></methodCall>`,
        );
        // What PHP's curl puts on the wire for such a post.
        const headers: [string, string | number][] = [['Host', `127.0.0.1:${port}`], ['Accept', '*/*'], ['Content-Length', body.length]];
        if (type !== undefined) headers.push(['Content-Type', type]);
        const root = await rawRequest(port, headOf('POST / HTTP/1.1', headers), body);
        expect(root.statusLine).to.match(/^HTTP\/1\.1 200 /);
        expect(root.headers.get('content-type')).to.equal('text/xml; charset=utf-8');
        expect(FLERROR.exec(root.body)?.[1], root.body).to.equal('0');
        expect(await b.delivered()).to.have.length(1);
        const rpc2 = await rawRequest(port, headOf('POST /RPC2 HTTP/1.1', headers), body);
        expect([root.statusLine, root.headers.get('content-type'), root.body]).to.deep.equal([rpc2.statusLine, rpc2.headers.get('content-type'), rpc2.body]);
      });
    }

    it('an XML-RPC call at the root sent as a gzip-compressed form is read as /RPC2 reads it', async () => {
      const call = '<?xml version="1.0"?><methodCall><methodName>rssCloud.hello</methodName><params></params></methodCall>';
      const post = (path: string): Promise<Response> =>
        fetch(`${hub.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, body: gzipSync(call) });
      const [root, rpc2] = [await post('/'), await post('/RPC2')];
      const text = await root.text();
      expect(text).to.match(/<boolean>1<\/boolean>/);
      expect([root.status, root.headers.get('content-type'), text]).to.deep.equal([rpc2.status, rpc2.headers.get('content-type'), await rpc2.text()]);
    });

    // What XML allows before its root, and a UTF-16 body (with its byte order mark), are a call
    // at /RPC2 whatever the Content-Type; at the root they were taken for WebSub forms (400).
    it('an XML-RPC call at the root sent as a form is told by its content as /RPC2 reads it: a comment, a processing instruction or a doctype before it, or UTF-16', async () => {
      const call = '<methodCall><methodName>rssCloud.hello</methodName><params></params></methodCall>';
      const utf16 = (text: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
      const hello = /<boolean>1<\/boolean>/;
      const bodies: [string, Buffer, RegExp][] = [
        ['a comment', Buffer.from(`<?xml version="1.0"?>\n<!-- pinged by cron -->\n${call}`), hello],
        ['a processing instruction', Buffer.from(`<?xml version="1.0"?><?xml-stylesheet href="a.xsl"?>${call}`), hello],
        // Refused at /RPC2 (no document types: entities), so with the same fault here.
        ['a doctype', Buffer.from(`<?xml version="1.0"?><!DOCTYPE methodCall>${call}`), /<fault>/],
        ['UTF-16 with its byte order mark', utf16(`<?xml version="1.0" encoding="UTF-16"?>${call}`), hello],
      ];
      for (const [what, body, answer] of bodies) {
        const post = (path: string): Promise<Response> => fetch(`${hub.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
        const [root, rpc2] = [await post('/'), await post('/RPC2')];
        const text = await root.text();
        expect(text, what).to.match(answer);
        expect([root.status, root.headers.get('content-type'), text], what).to.deep.equal([rpc2.status, rpc2.headers.get('content-type'), await rpc2.text()]);
      }
    });

    // Told apart by a pattern whose parts could each end at any later terminator, a head of many
    // processing instructions not followed by a call took time doubling with each one.
    it('a form at the root whose head is many processing instructions or comments, and no call, is WebSub\'s to refuse, at once', async () => {
      for (const head of ['<?a?>'.repeat(300), '<!---->'.repeat(200)]) {
        const res = await fetch(`${hub.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `${head}x`, signal: AbortSignal.timeout(10_000) });
        expect(res.status, head.slice(0, 10)).to.equal(400);
        expect(await res.text()).to.not.contain('<fault>');
      }
    });

    it('an XML-RPC call at the root sent as a form, too large for /RPC2, gets the fault /RPC2 gives it, its length declared or not', async () => {
      // RPC2_MAX_BODY_BYTES (64 KB by default) is the XML-RPC face's, not WebSub's 1 MB.
      const body = Buffer.from(
        `<?xml version="1.0"?><methodCall><methodName>rssCloud.ping</methodName><params><param><value><string>http://blog.example/${'x'.repeat(65 * 1024)}</string></value></param></params></methodCall>`,
      );
      const chunked = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      const answers = async (path: string): Promise<[string, string | undefined, string | undefined, string][]> =>
        Promise.all(
          [
            rawRequest(port, headOf(`POST ${path} HTTP/1.1`, [['Host', '127.0.0.1'], ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', body.length]]), body),
            rawRequest(port, headOf(`POST ${path} HTTP/1.1`, [['Host', '127.0.0.1'], ['Content-Type', 'application/x-www-form-urlencoded'], ['Transfer-Encoding', 'chunked']]), chunked),
          ].map(async (r) => {
            const { statusLine, headers, body: text } = await r;
            return [statusLine, headers.get('content-type'), headers.get('access-control-allow-origin'), text];
          }),
        );
      const atRoot = await answers('/');
      expect(atRoot[0]![0]).to.match(/^HTTP\/1\.1 413 /);
      expect(atRoot[0]![3]).to.contain('<fault>').and.contain('The request body is too large.');
      expect(atRoot).to.deep.equal(await answers('/RPC2'));
    });
  });
});
