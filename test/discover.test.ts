import { expect } from 'chai';
import { parseDiscovery, parseLinkHeader, type Discovery } from '../lib/feeds/discover.js';

const TOPIC = 'https://example.com/feeds/main.xml';

function discover(body: string | Buffer, headers: Record<string, string> = {}, topic = TOPIC): Discovery {
  return parseDiscovery(topic, headers, typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
}

const RSS2 = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>Scripting News</title>
    <link>https://example.com/</link>
    <atom:link rel="hub" href="https://hub.example.net/websub"/>
    <atom:link rel="self" type="application/rss+xml" href="https://example.com/feeds/main.xml?a=1&amp;b=2"/>
    <cloud domain="rpc.rsscloud.example" port="5337" path="/pleaseNotify" registerProcedure="" protocol="http-post"/>
    <item>
      <title>Entry</title>
      <atom:link rel="hub" href="https://item-level.example/hub"/>
      <atom:link rel="self" href="https://item-level.example/self"/>
    </item>
  </channel>
</rss>`;

const RSS_SOURCE = `<?xml version="1.0"?>
<rss version="2.0" xmlns:source="http://source.scripting.com/">
  <channel>
    <title>Source</title>
    <source:cloud>https://cloud.example/one</source:cloud>
    <source:cloud><![CDATA[ https://cloud.example/two?x=1&y=2 ]]></source:cloud>
    <item><title>x</title></item>
  </channel>
</rss>`;

const RSS_SOURCE_OTHER_PREFIX = `<rss version="2.0" xmlns:s="https://source.scripting.com/" xmlns:x="urn:other">
  <channel>
    <s:cloud>https://cloud.example/prefixed</s:cloud>
    <x:cloud>https://not-source.example/</x:cloud>
    <cloud domain="d.example" port="80"/>
  </channel>
</rss>`;

const ATOM = `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom</title>
  <link href="/" />
  <link rel="alternate" type="text/html" href="https://example.com/"/>
  <link rel="hub" href="https://hub-one.example/"/>
  <link rel="HUB" href="//hub-two.example/push"/>
  <link rel="hub" href="https://hub-one.example/"/>
  <link rel="self" href="atom.xml"/>
  <entry>
    <title>e</title>
    <link rel="self" href="https://entry.example/self"/>
    <link rel="hub" href="https://entry.example/hub"/>
  </entry>
</feed>`;

const RDF = `<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:atom10="http://www.w3.org/2005/Atom">
  <channel rdf:about="https://example.com/">
    <title>RDF</title>
    <atom10:link rel="hub" href="https://hub.example.org/"/>
    <atom10:link rel="self" href="https://example.com/index.rdf"/>
  </channel>
  <item rdf:about="https://example.com/1"><title>one</title></item>
</rdf:RDF>`;

const JSON_FEED = JSON.stringify({
  version: 'https://jsonfeed.org/version/1.1',
  title: 'JSON',
  feed_url: 'https://example.com/feed.json',
  hubs: [
    { type: 'WebSub', url: 'https://hub.example.com/' },
    { type: 'rssCloud', url: 'https://cloud.example.com/pleaseNotify' },
    { type: 'WebSub' },
    'junk',
  ],
  items: [],
});

const HTML = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>A <link rel="hub" href="https://in-title.example/"> page</title>
  <!-- <link rel="hub" href="https://commented.example/"> -->
  <script>document.write('<link rel="hub" href="https://in-script.example/">');</script>
  <LINK TYPE="application/rss+xml" REL="alternate" HREF="/feed.xml?a=1&amp;b=2" TITLE="RSS &amp; more">
  <link href='/atom.xml' title='Atom' rel='alternate' type='application/atom+xml'>
  <link rel=alternate type=application/feed+json href=/feed.json title=JSON>
  <link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
  <link rel="stylesheet alternate" type="text/css" href="/alt.css">
  <link rel="hub self" href="https://hub.example.com/">
  <link rel="canonical" href="https://example.com/">
</head>
<body><p title="a > b">text</p><link rel="hub" href="https://body-hub.example/"></body>
</html>`;

describe('discover', () => {
  describe('parseLinkHeader', () => {
    it('parses several links, quoted and unquoted rels, commas inside <...>', () => {
      const links = parseLinkHeader(
        '<https://hub.example/a,b>; rel="hub self", <https://example.com/x>; rel=hub, ' +
          '<https://example.com/p;q=1>; title="a, b; c"; rel="next", </relative>; REL="Self"',
      );
      expect(links).to.deep.equal([
        { url: 'https://hub.example/a,b', rels: ['hub', 'self'] },
        { url: 'https://example.com/x', rels: ['hub'] },
        { url: 'https://example.com/p;q=1', rels: ['next'] },
        { url: '/relative', rels: ['self'] },
      ]);
    });

    it('uses only the first rel parameter and handles escapes in quoted strings', () => {
      const links = parseLinkHeader('<a>; title="say \\"hi\\", ok"; rel=hub; rel=self');
      expect(links).to.deep.equal([{ url: 'a', rels: ['hub'] }]);
    });

    it('skips junk and returns [] for empty or odd values', () => {
      expect(parseLinkHeader('')).to.deep.equal([]);
      expect(parseLinkHeader('garbage, <https://h.example/>; rel=hub')).to.deep.equal([
        { url: 'https://h.example/', rels: ['hub'] },
      ]);
      expect(parseLinkHeader('<unterminated; rel=hub')).to.deep.equal([]);
      expect(parseLinkHeader('<https://x.example/>')).to.deep.equal([{ url: 'https://x.example/', rels: [] }]);
      expect(parseLinkHeader(undefined as unknown as string)).to.deep.equal([]);
    });
  });

  describe('RSS 2.0', () => {
    it('finds atom:link hub and self and the <cloud> element', () => {
      const d = discover(RSS2, { 'content-type': 'application/rss+xml; charset=utf-8' });
      expect(d.topic).to.equal(TOPIC);
      expect(d.format).to.equal('rss');
      expect(d.hubs).to.deep.equal(['https://hub.example.net/websub']);
      expect(d.self).to.equal('https://example.com/feeds/main.xml?a=1&b=2');
      expect(d.rssCloud).to.deep.equal([
        {
          domain: 'rpc.rsscloud.example',
          port: '5337',
          path: '/pleaseNotify',
          registerProcedure: '',
          protocol: 'http-post',
        },
      ]);
      expect(d.sourceCloud).to.deep.equal([]);
      expect(d.alternates).to.deep.equal([]);
    });

    it('sniffs RSS served as text/xml or without a content type', () => {
      expect(discover(RSS2, { 'content-type': 'text/xml' }).format).to.equal('rss');
      expect(discover(RSS2).format).to.equal('rss');
      expect(discover(RSS2).hubs).to.deep.equal(['https://hub.example.net/websub']);
    });

    it('fills missing <cloud> attributes with empty strings', () => {
      const d = discover(RSS_SOURCE_OTHER_PREFIX);
      expect(d.rssCloud).to.deep.equal([{ domain: 'd.example', port: '80', path: '', registerProcedure: '', protocol: '' }]);
    });
  });

  describe('source:cloud', () => {
    it('reads <source:cloud> values, CDATA included', () => {
      const d = discover(RSS_SOURCE, { 'content-type': 'application/rss+xml' });
      expect(d.sourceCloud).to.deep.equal(['https://cloud.example/one', 'https://cloud.example/two?x=1&y=2']);
      expect(d.rssCloud).to.deep.equal([]);
      expect(d.hubs).to.deep.equal([]);
    });

    it('matches any prefix bound to the source namespace, and only those', () => {
      const d = discover(RSS_SOURCE_OTHER_PREFIX);
      expect(d.sourceCloud).to.deep.equal(['https://cloud.example/prefixed']);
    });

    it('accepts the "source" prefix even when it is not declared', () => {
      const d = discover('<rss><channel><source:cloud>https://c.example/</source:cloud></channel></rss>');
      expect(d.sourceCloud).to.deep.equal(['https://c.example/']);
    });
  });

  describe('Atom', () => {
    it('finds several hubs (deduplicated, case-insensitive rel) and resolves a relative self', () => {
      const d = discover(ATOM, { 'content-type': 'application/atom+xml' });
      expect(d.format).to.equal('atom');
      expect(d.hubs).to.deep.equal(['https://hub-one.example/', 'https://hub-two.example/push']);
      expect(d.self).to.equal('https://example.com/feeds/atom.xml');
      expect(d.rssCloud).to.deep.equal([]);
    });

    it('sniffs Atom served as application/xml', () => {
      expect(discover(ATOM, { 'content-type': 'application/xml' }).format).to.equal('atom');
    });
  });

  describe('RSS 1.0 (RDF)', () => {
    it('finds atom:link under rdf:RDF/channel', () => {
      const d = discover(RDF, { 'content-type': 'application/rdf+xml' });
      expect(d.format).to.equal('rdf');
      expect(d.hubs).to.deep.equal(['https://hub.example.org/']);
      expect(d.self).to.equal('https://example.com/index.rdf');
    });

    it('sniffs an RDF root', () => {
      expect(discover(RDF, { 'content-type': 'text/xml' }).format).to.equal('rdf');
    });
  });

  describe('JSON Feed', () => {
    it('reads hubs and feed_url', () => {
      const d = discover(JSON_FEED, { 'content-type': 'application/feed+json' });
      expect(d.format).to.equal('json');
      expect(d.hubs).to.deep.equal(['https://hub.example.com/', 'https://cloud.example.com/pleaseNotify']);
      expect(d.self).to.equal('https://example.com/feed.json');
      expect(d.alternates).to.deep.equal([]);
    });

    it('accepts application/json and sniffs a JSON Feed without a content type', () => {
      expect(discover(JSON_FEED, { 'content-type': 'application/json' }).format).to.equal('json');
      expect(discover(JSON_FEED).format).to.equal('json');
    });

    it('reads one nesting exactly 100 deep and no deeper; brackets in strings, after escaped quotes, do not count', () => {
      // The feed object is one level: an extension of 99 arrays inside one another makes 100.
      const nested = (levels: number): string => JSON_FEED.replace(/^\{/, `{"_deep":${'['.repeat(levels)}${']'.repeat(levels)},`);
      expect(discover(nested(99), { 'content-type': 'application/feed+json' }).format).to.equal('json');
      expect(discover(nested(100), { 'content-type': 'application/feed+json' }).format).to.not.equal('json');
      // A title quoting a quote and then 200 brackets, and one ending in a backslash: still text.
      const quoting = JSON.stringify({ ...(JSON.parse(JSON_FEED) as object), title: `say "${'[{'.repeat(100)}`, description: 'C:\\', home_page_url: `\\"${'['.repeat(200)}` });
      const d = discover(quoting, { 'content-type': 'application/feed+json' });
      expect([d.format, d.hubs]).to.deep.equal(['json', ['https://hub.example.com/', 'https://cloud.example.com/pleaseNotify']]);
    });

    it('does not call arbitrary JSON a feed', () => {
      const d = discover('{"hello":"world","hubs":[{"url":"https://h.example/"}]}', {
        'content-type': 'application/json',
      });
      expect(d.format).to.equal('other');
      expect(d.hubs).to.deep.equal([]);
    });

    it('lets a Link header self win over feed_url', () => {
      const d = discover(JSON_FEED, {
        'content-type': 'application/feed+json',
        link: '<https://example.com/canonical.json>; rel="self"',
      });
      expect(d.self).to.equal('https://example.com/canonical.json');
    });
  });

  describe('HTML', () => {
    const topic = 'https://example.com/blog/';

    it('finds feed alternates, hubs and self from <link> tags', () => {
      const d = discover(HTML, { 'content-type': 'text/html; charset=utf-8' }, topic);
      expect(d.format).to.equal('html');
      expect(d.alternates).to.deep.equal([
        { href: 'https://example.com/feed.xml?a=1&b=2', type: 'application/rss+xml', title: 'RSS & more' },
        { href: 'https://example.com/atom.xml', type: 'application/atom+xml', title: 'Atom' },
        { href: 'https://example.com/feed.json', type: 'application/feed+json', title: 'JSON' },
      ]);
      expect(d.hubs).to.deep.equal(['https://hub.example.com/', 'https://body-hub.example/']);
      expect(d.self).to.equal('https://hub.example.com/');
      expect(d.rssCloud).to.deep.equal([]);
    });

    it('sniffs HTML by its doctype or <html> root', () => {
      expect(discover(HTML, {}, topic).format).to.equal('html');
      expect(discover('<html><head><link rel="hub" href="/hub"></head></html>', {}, topic)).to.include({
        format: 'html',
      });
      expect(discover('<html><head><link rel="hub" href="/hub"></head></html>', {}, topic).hubs).to.deep.equal([
        'https://example.com/hub',
      ]);
    });

    it('honours the first <base href>', () => {
      const d = discover(
        '<html><head><base href="https://cdn.example/x/"><base href="https://ignored.example/">' +
          '<link rel="alternate" type="application/json" href="feed.json"></head></html>',
        { 'content-type': 'text/html' },
        topic,
      );
      expect(d.alternates).to.deep.equal([{ href: 'https://cdn.example/x/feed.json', type: 'application/json', title: '' }]);
    });

    it('only scans the first 256 KB', () => {
      const late = '<html><head>' + ' '.repeat(300 * 1024) + '<link rel="hub" href="https://late.example/"></head></html>';
      expect(discover(late, { 'content-type': 'text/html' }, topic).hubs).to.deep.equal([]);
    });

    it('survives unterminated tags, comments and quotes', () => {
      for (const body of ['<html><link rel="hub', '<html><!-- <link rel=hub href=/h>', '<html><script>', '<html><link', '<<<<']) {
        const d = discover(body, { 'content-type': 'text/html' }, topic);
        expect(d.hubs).to.deep.equal([]);
      }
    });
  });

  describe('Link header', () => {
    it('works with no body: several headers joined with ", ", commas in URLs, rel combinations', () => {
      const d = discover('', {
        link:
          '<https://hub.example/a,b?x=1>; rel="hub self", </hub2>; rel=hub, ' +
          '<https://example.com/next>; rel="next", <https://hub.example/a,b?x=1>; rel="hub"',
      });
      expect(d.format).to.equal('other');
      expect(d.hubs).to.deep.equal(['https://hub.example/a,b?x=1', 'https://example.com/hub2']);
      expect(d.self).to.equal('https://hub.example/a,b?x=1');
      expect(d.rssCloud).to.deep.equal([]);
      expect(d.sourceCloud).to.deep.equal([]);
      expect(d.alternates).to.deep.equal([]);
    });

    it('overrides the body self and puts its hubs first', () => {
      const d = discover(RSS2, {
        'content-type': 'application/rss+xml',
        link: '<https://header-hub.example/>; rel="hub", <https://example.com/canonical.xml>; rel="self"',
      });
      expect(d.self).to.equal('https://example.com/canonical.xml');
      expect(d.hubs).to.deep.equal(['https://header-hub.example/', 'https://hub.example.net/websub']);
    });

    it('deduplicates hubs named in both the header and the body', () => {
      const d = discover(RSS2, {
        'content-type': 'application/rss+xml',
        link: '<https://hub.example.net/websub>; rel=hub',
      });
      expect(d.hubs).to.deep.equal(['https://hub.example.net/websub']);
    });

    it('ignores non-http(s) URLs', () => {
      const d = discover('', { link: '<javascript:alert(1)>; rel=hub, <mailto:a@b>; rel=self' });
      expect(d.hubs).to.deep.equal([]);
      expect(d.self).to.equal(null);
    });
  });

  describe('hostile and broken input', () => {
    it('returns headers-only results for broken XML', () => {
      const broken = '<rss><channel><atom:link rel="hub" href="https://body.example/"/><title a="';
      const d = discover(broken, {
        'content-type': 'application/rss+xml',
        link: '<https://hub.example/>; rel=hub',
      });
      expect(d.format).to.equal('rss');
      expect(d.hubs).to.deep.equal(['https://hub.example/']);
      expect(d.self).to.equal(null);
    });

    it('refuses to parse a body with a DOCTYPE or ENTITY declaration', () => {
      const evil = `<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY hub "https://evil.example/"> <!ENTITY lol "lol"> ]>
<rss><channel><atom:link rel="hub" href="&hub;"/><atom:link rel="hub" href="https://plain.example/"/>
<cloud domain="d" port="1" path="/p" registerProcedure="" protocol="http-post"/></channel></rss>`;
      const d = discover(evil, {
        'content-type': 'application/rss+xml',
        link: '<https://hub.example/>; rel="hub"',
      });
      expect(d.format).to.equal('rss');
      expect(d.hubs).to.deep.equal(['https://hub.example/']);
      expect(d.rssCloud).to.deep.equal([]);

      const entityOnly = '<rss><channel><!ENTITY x "y"><atom:link rel="hub" href="https://plain.example/"/></channel></rss>';
      expect(discover(entityOnly, { 'content-type': 'application/rss+xml' }).hubs).to.deep.equal([]);
    });

    it('handles an empty body', () => {
      for (const ct of ['application/rss+xml', 'application/atom+xml', 'application/feed+json', 'text/html', '']) {
        const d = discover('', ct === '' ? {} : { 'content-type': ct });
        expect(d.hubs).to.deep.equal([]);
        expect(d.self).to.equal(null);
      }
      expect(discover('').format).to.equal('other');
      expect(discover('', { 'content-type': 'application/rss+xml' }).format).to.equal('rss');
    });

    it('handles binary garbage', () => {
      let seed = 12345;
      const bytes = Buffer.alloc(64 * 1024);
      for (let i = 0; i < bytes.length; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        bytes[i] = seed & 0xff;
      }
      for (const ct of ['application/rss+xml', 'application/feed+json', 'text/html', 'application/octet-stream']) {
        const d = discover(bytes, { 'content-type': ct });
        expect(d.hubs).to.deep.equal([]);
      }
      expect(discover(bytes).format).to.equal('other');
      const d = discover(Buffer.from([0x3c, 0x00, 0xff, 0xfe, 0x3c, 0x72, 0x73, 0x73]));
      expect(d.hubs).to.deep.equal([]);
    });

    it('never throws on odd arguments', () => {
      const odd = [
        () => parseDiscovery('not a url', { link: '</x>; rel=hub' }, Buffer.from(RSS2)),
        () => parseDiscovery(TOPIC, null as unknown as Record<string, string>, Buffer.from('')),
        () => parseDiscovery(TOPIC, {}, null as unknown as Buffer),
        () => parseDiscovery(undefined as unknown as string, {}, Buffer.from(ATOM)),
        () => parseDiscovery(TOPIC, { 'content-type': 'application/rss+xml' }, Buffer.from('<a>'.repeat(5000))),
        () => parseDiscovery(TOPIC, { 'content-type': 'application/json' }, Buffer.from('['.repeat(100000))),
      ];
      for (const f of odd) expect(f).to.not.throw();
      const d = parseDiscovery('not a url', { link: '</x>; rel=hub, <https://abs.example/>; rel=hub' }, Buffer.from(''));
      expect(d.hubs).to.deep.equal(['https://abs.example/']);
    });

    it('reads the channel head of a feed larger than 2 MB', () => {
      const items = '<item><title>x</title></item>'.repeat(100 * 1024);
      const big = `<rss xmlns:atom="http://www.w3.org/2005/Atom"><channel><atom:link rel="hub" href="https://hub.example/"/>${items}</channel></rss>`;
      expect(big.length).to.be.greaterThan(2 * 1024 * 1024);
      const d = discover(big, { 'content-type': 'application/rss+xml' });
      expect(d.hubs).to.deep.equal(['https://hub.example/']);
    });

    it('finds the links at the top of a full-content feed over 128 KB, wherever the cut falls in its CDATA and comments', () => {
      const item = (i: number): string =>
        `<item><title>post ${i}</title><!-- a <b>note</b> --><content:encoded><![CDATA[<p>${'words > more '.repeat(300)}</p>]]></content:encoded></item>`;
      for (const count of [34, 35, 36, 37, 60, 100]) {
        const feed = `<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title><atom:link rel="hub" href="https://hub.example/"/><atom:link rel="self" href="https://example.com/feed"/>${Array.from({ length: count }, (_, i) => item(i)).join('')}</channel></rss>`;
        expect(feed.length, `${count} items`).to.be.greaterThan(128 * 1024);
        const d = discover(feed, { 'content-type': 'application/rss+xml' });
        expect([d.hubs, d.self], `${count} items`).to.deep.equal([['https://hub.example/'], 'https://example.com/feed']);
      }
    });

    it('parses no more than the first 128 KB of a feed: a link after that is not looked for', () => {
      const items = (n: number): string => '<item><title>x</title></item>'.repeat(n);
      const feed = (before: number): string =>
        `<rss xmlns:atom="http://www.w3.org/2005/Atom"><channel>${items(before)}<atom:link rel="hub" href="https://hub.example/"/>${items(10)}</channel></rss>`;
      // 100 KB of items before the link: found.
      expect(discover(feed(3500), { 'content-type': 'application/rss+xml' }).hubs).to.deep.equal(['https://hub.example/']);
      // 1 MB: the parser (half a second of the hub's one thread for it) never reaches it.
      expect(discover(feed(36_000), { 'content-type': 'application/rss+xml' }).hubs).to.deep.equal([]);
    });
  });
});
