import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { diffFeed, parseEntries, rememberedLimit, FINGERPRINT_CHARS, MAX_DIFF_BODY, MAX_DIFF_ENTRIES, REMEMBERED_CAP, REMEMBERED_FLOOR, type DiffableFormat, type FeedDiff, type FeedEntry } from '../lib/feeds/entries.js';
import { DEFAULT_MAX_DEPTH, scanXml, type ElementSpan } from '../lib/feeds/xml-spans.js';

function fixture(name: string): Buffer {
  return readFileSync(new URL(`./fixtures/feeds/${name}`, import.meta.url));
}

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

/**
 * The test oracle for partial XML feeds: `text` with the entries containing each marker removed,
 * each with the whitespace before it. `open` and `close` are how the fixture writes the entry's
 * tags (close includes its indentation, so a `</item>` inside a CDATA section is not taken).
 */
function without(text: string, markers: string[], open: string, close: string): string {
  let out = text;
  for (const marker of markers) {
    const at = out.indexOf(marker);
    expect(at, `marker ${marker}`).to.be.greaterThan(-1);
    let start = out.lastIndexOf(open, at);
    const end = out.indexOf(close, at) + close.length;
    while (start > 0 && /[ \t\r\n]/.test(out[start - 1] ?? '')) start--;
    out = out.slice(0, start) + out.slice(end);
  }
  return out;
}

/** The oracle for partial JSON Feeds laid out like the fixtures: `text` without the items containing each marker, each with the comma that joined it to the one before (or after, for the first). */
function withoutItems(text: string, markers: string[]): string {
  let out = text;
  for (const marker of markers) {
    const at = out.indexOf(marker);
    expect(at, `marker ${marker}`).to.be.greaterThan(-1);
    let start = out.lastIndexOf('\n    {', at);
    let end = out.indexOf('\n    }', at) + '\n    }'.length;
    const before = out.slice(0, start).trimEnd();
    if (before.endsWith(',')) start = before.length - 1;
    else if (out[end] === ',') end++;
    out = out.slice(0, start) + out.slice(end);
  }
  return out;
}

/** The exact text of each entry, from the start of its tag to the end of its end tag (see XmlCase.open and .close). */
function entryTexts(text: string, open: string, close: string): string[] {
  const out: string[] = [];
  const tag = open.trimStart();
  for (let at = text.indexOf(open); at !== -1; at = text.indexOf(open, at + 1)) {
    const start = at + open.length - tag.length;
    out.push(text.slice(start, text.indexOf(close, start) + close.length));
  }
  return out;
}

const sha256 = (s: string): string => hash('sha256', Buffer.from(s, 'utf8'), 'hex');

interface XmlCase {
  name: string;
  format: DiffableFormat;
  contentType: string;
  base: string;
  next: string;
  open: string;
  close: string;
  count: number;
  /** A marker of each entry of `base`. */
  markers: string[];
  /** Markers of the entries of `next` that are unchanged since `base`. */
  unchanged: string[];
  /** Ids of the entries of `next` that are new or changed, in document order. */
  changedIds: string[];
  /** `base` with only feed-level metadata changed. */
  metaOnly: (s: string) => string;
}

const XML_CASES: XmlCase[] = [
  {
    name: 'RSS 2.0',
    format: 'rss',
    contentType: 'application/rss+xml; charset=utf-8',
    base: 'rss2.xml',
    next: 'rss2-next.xml',
    open: '\t\t<item>',
    close: '\n\t\t</item>',
    count: 5,
    markers: ['Why I still love RSS', 'Espresso &amp;', 'Links for the weekend', 'A titleless micro-post', 'Hello, world'],
    unchanged: ['Why I still love RSS', 'Links for the weekend', 'A titleless micro-post'],
    changedIds: ['tag:notes.example.com,2024:post-1042', 'https://notes.example.com/2024/03/11/espresso'],
    metaOnly: (s) =>
      s
        .replace('<lastBuildDate>Tue, 12 Mar 2024 14:05:00 GMT</lastBuildDate>', '<lastBuildDate>Tue, 12 Mar 2024 15:00:00 GMT</lastBuildDate>')
        .replace('<ttl>15</ttl>', '<ttl>60</ttl>')
        .replace('on Tue, 12 Mar 2024 14:05:00 GMT -->', 'on Tue, 12 Mar 2024 15:00:00 GMT -->'),
  },
  {
    name: 'RSS 1.0 (RDF)',
    format: 'rdf',
    contentType: 'application/rdf+xml',
    base: 'rss1.rdf',
    next: 'rss1-next.rdf',
    open: '  <item ',
    close: '\n  </item>',
    count: 3,
    markers: ['Run 17', 'Run 16', 'Run 15'],
    unchanged: ['Run 17: buffer sizes', 'Run 16: a failure'],
    changedIds: ['https://lab.example.org/n/18', 'https://lab.example.org/n/15'],
    metaOnly: (s) => s.replace('<dc:date>2024-03-12T10:00:00Z</dc:date>\n    <syn', '<dc:date>2024-03-12T11:00:00Z</dc:date>\n    <syn'),
  },
  {
    name: 'Atom',
    format: 'atom',
    contentType: 'application/atom+xml',
    base: 'atom.xml',
    next: 'atom-next.xml',
    open: '  <entry',
    close: '\n  </entry>',
    count: 4,
    markers: ['Dark mode, done properly', 'Notes on &lt;em&gt;naming', 'Caching at the edge', 'On benchmarks'],
    unchanged: ['Dark mode, done properly', 'Notes on &lt;em&gt;naming', 'On benchmarks'],
    changedIds: ['tag:blog.example.net,2024:/2024/03/shipping', 'tag:blog.example.net,2024:/2024/03/edge-cache'],
    metaOnly: (s) =>
      s.replace('<updated>2024-03-12T18:30:00Z</updated>\n  <link rel="alternate"', '<updated>2024-03-12T19:00:00Z</updated>\n  <link rel="alternate"'),
  },
];

describe('feed entries and diffs', () => {
  for (const c of XML_CASES) {
    describe(c.name, () => {
      const base = fixture(c.base);
      const next = fixture(c.next);
      const nextText = next.toString('utf8');

      it('first version: the body unchanged and every entry listed', () => {
        const d = diffFeed(base, c.contentType, undefined);
        expect(d).to.not.equal(null);
        expect(d!.format).to.equal(c.format);
        expect(d!.body.equals(base)).to.equal(true);
        expect(d!.changed()).to.have.length(c.count);
        expect(d!.fingerprints).to.have.length(c.count);
        // The start of the sha256 of the entry's exact bytes, nothing else.
        expect(d!.fingerprints).to.deep.equal(entryTexts(base.toString('utf8'), c.open, c.close).map((e) => sha256(e).slice(0, FINGERPRINT_CHARS)));
        expect(d!.changedCount).to.equal(c.count);
        expect(d!.changed()).to.deep.equal(parseEntries(base, c.contentType)!.entries);
      });

      it('next version: exactly the new and changed entries, in the original envelope bytes', () => {
        const previous = diffFeed(base, c.contentType, undefined)!.fingerprints;
        const d = diffFeed(next, c.contentType, previous)!;
        expect(d.format).to.equal(c.format);
        expect(d.changed()!.map((e) => e.id)).to.deep.equal(c.changedIds);
        expect(d.fingerprints).to.deep.equal(diffFeed(next, c.contentType, undefined)!.fingerprints);
        // The envelope: everything before the first entry, byte for byte.
        const head = next.subarray(0, Buffer.byteLength(nextText.slice(0, nextText.indexOf(c.open))));
        expect(d.body.subarray(0, head.length).equals(head)).to.equal(true);
        const out = d.body.toString('utf8');
        for (const marker of c.unchanged) expect(out).to.not.include(marker);
        expect(out).to.equal(without(nextText, c.unchanged, c.open, c.close));
        // The partial feed is itself a feed holding just those entries.
        expect(parseEntries(d.body, c.contentType)!.entries).to.deep.equal(d.changed());
      });

      it('a feed-level change alone (lastBuildDate, ttl, updated) changes no entry', () => {
        const first = diffFeed(base, c.contentType, undefined)!;
        const meta = buf(c.metaOnly(base.toString('utf8')));
        expect(meta.equals(base)).to.equal(false);
        const d = diffFeed(meta, c.contentType, first.fingerprints)!;
        expect(d.changed()).to.deep.equal([]);
        expect(d.fingerprints).to.deep.equal(first.fingerprints);
        expect(parseEntries(d.body, c.contentType)!.entries).to.deep.equal([]);
        expect(d.body.toString('utf8')).to.equal(without(meta.toString('utf8'), c.markers, c.open, c.close));
      });

      it('an empty previous list keeps every entry: the body is the original bytes', () => {
        const d = diffFeed(next, c.contentType, [])!;
        expect(d.body.equals(next)).to.equal(true);
        expect(d.changed()).to.have.length(d.fingerprints.length);
      });

      // What earlier builds stored: 16 hex digits of the same sha256, and before that with the
      // entry's id hash in front.
      const stored16 = (): string[] => entryTexts(base.toString('utf8'), c.open, c.close).map((e) => sha256(e).slice(0, 16));

      it('fingerprints stored by earlier builds (16 hex digits) still match', () => {
        const d = diffFeed(next, c.contentType, stored16())!;
        expect(d.changed()!.map((e) => e.id)).to.deep.equal(c.changedIds);
        expect(d.body.toString('utf8')).to.equal(without(nextText, c.unchanged, c.open, c.close));
      });

      it('fingerprints stored in the older `idHash:contentHash` form still match', () => {
        const first = diffFeed(base, c.contentType, undefined)!;
        const older = first.changed()!.map((e, i) => `${sha256(e.id).slice(0, 16)}:${stored16()[i]}`);
        const d = diffFeed(next, c.contentType, older)!;
        expect(d.changed()!.map((e) => e.id)).to.deep.equal(c.changedIds);
        expect(d.body.toString('utf8')).to.equal(without(nextText, c.unchanged, c.open, c.close));
      });
    });
  }

  describe('JSON Feed 1.1', () => {
    const base = fixture('feed.json');
    const next = fixture('feed-next.json');
    const CT = 'application/feed+json';

    it('first version: the body unchanged and every entry listed', () => {
      const d = diffFeed(base, CT, undefined)!;
      expect(d.format).to.equal('json');
      expect(d.body.equals(base)).to.equal(true);
      expect(d.changed()).to.have.length(4);
      expect(d.fingerprints).to.have.length(4);
    });

    it('next version: items filtered to the new and changed ones, the rest of the feed as is', () => {
      const previous = diffFeed(base, CT, undefined)!.fingerprints;
      const d = diffFeed(next, CT, previous)!;
      expect(d.changed()!.map((e) => e.id)).to.deep.equal(['2004', 'https://micro.example.com/2024/03/11/podcast']);
      const parsedNext = JSON.parse(next.toString('utf8')) as { items: unknown[] } & Record<string, unknown>;
      const out = JSON.parse(d.body.toString('utf8')) as Record<string, unknown>;
      expect(out).to.deep.equal({ ...parsedNext, items: [parsedNext.items[0], parsedNext.items[2]] });
      expect(Object.keys(out)).to.deep.equal(Object.keys(parsedNext)); // key order kept
      // The publisher's own bytes, its layout included, minus the unchanged items.
      expect(d.body.toString('utf8')).to.equal(withoutItems(next.toString('utf8'), ['"id": 2003', '"id": 2001', '/no-id"']));
    });

    it("the partial feed is the publisher's bytes, not a re-serialisation: ids past 2^53 keep their digits, an ISO-8859-1 feed stays ISO-8859-1", () => {
      const feed = (ids: string[]): string =>
        `{"version":"https://jsonfeed.org/version/1.1","title":"Caf\u00e9 été","items":[${ids.map((id) => `{"id":${id},"title":"crème ${id}","n":1.50}`).join(',')}]}`;
      // Sequential snowflake-style ids: as doubles (256 apart at this size) the three are one
      // number, so re-serialised they reached subscribers as one id, and not theirs.
      const big = ['1790000000000000003', '1790000000000000002', '1790000000000000001'];
      const first = diffFeed(buf(feed(big.slice(2))), CT, undefined)!;
      const d = diffFeed(buf(feed(big)), CT, first.fingerprints)!;
      expect(d.changedCount).to.equal(2);
      expect(d.body.toString('utf8')).to.equal(feed(big.slice(0, 2)));

      const CT1 = 'application/feed+json; charset=iso-8859-1';
      const latin1 = (ids: string[]): Buffer => Buffer.from(feed(ids), 'latin1');
      const l = diffFeed(latin1(['2', '1']), CT1, diffFeed(latin1(['1']), CT1, undefined)!.fingerprints)!;
      expect(l.body.equals(latin1(['2'])), 'the bytes of ISO-8859-1, as the Content-Type says').to.equal(true);
      expect(l.changed()!.map((e) => e.title)).to.deep.equal(['crème 2']);

      // UTF-16 cannot be cut byte by byte: not diffed, so delivered whole.
      const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(feed(['1']), 'utf16le')]);
      expect(diffFeed(utf16, 'application/feed+json', undefined)).to.equal(null);
    });

    it('items that are not objects, escaped keys, an empty array and pretty-printing are cut right', () => {
      const previous = diffFeed(buf('{"items":[{"id":"a"}]}'), CT, undefined)!.fingerprints;
      const cases: [string, string][] = [
        ['{"items":[{"id":"a"}, null, {"id":"b"}, 7]}', '{"items":[ {"id":"b"}]}'],
        ['{"items":[{"id":"b"},{"id":"a"}]}', '{"items":[{"id":"b"}]}'],
        ['{"items":[{"id":"a"},{"id":"b"}]}', '{"items":[{"id":"b"}]}'],
        ['{ "title": "[x], {y}", "\\u0069tems" : [ {"id":"b","t":"]}\\""} ,\n {"id":"a"} ] , "z": [1] }', '{ "title": "[x], {y}", "\\u0069tems" : [ {"id":"b","t":"]}\\""} ] , "z": [1] }'],
        ['\uFEFF{"items": [\n  {"id": "a"},\n  {"id": "c"},\n  {"id": "b"}\n]}', '\uFEFF{"items": [\n  {"id": "c"},\n  {"id": "b"}\n]}'],
      ];
      for (const [body, partial] of cases) {
        const d = diffFeed(buf(body), CT, previous);
        expect(d?.body.toString('utf8'), body).to.equal(partial);
        expect(JSON.parse(partial.replace(/^\uFEFF/, ''))).to.be.an('object');
      }
      const none = diffFeed(buf('{"version":"https://jsonfeed.org/version/1.1","items":[]}'), CT, previous)!;
      expect(none.body.toString()).to.equal('{"version":"https://jsonfeed.org/version/1.1","items":[]}');
    });

    it('a feed-level change alone changes no entry', () => {
      const first = diffFeed(base, CT, undefined)!;
      const meta = buf(base.toString('utf8').replace('"ttl_minutes": 15', '"ttl_minutes": 60'));
      const d = diffFeed(meta, CT, first.fingerprints)!;
      expect(d.changed()).to.deep.equal([]);
      expect((JSON.parse(d.body.toString('utf8')) as { items: unknown[] }).items).to.deep.equal([]);
    });

    it('numeric ids are ids (as strings), kept as numbers in the partial body; key order does not matter', () => {
      const entries = parseEntries(base, CT)!.entries;
      expect(entries.map((e) => e.id)).to.deep.equal([
        '2003',
        'https://micro.example.com/2024/03/11/podcast',
        '2001',
        'https://micro.example.com/2024/03/09/no-id',
      ]);
      const a = diffFeed(buf('{"version":"https://jsonfeed.org/version/1.1","items":[{"id":7,"title":"x","url":"u"}]}'), CT, undefined)!;
      const b = diffFeed(buf('{"items":[{"url":"u","title":"x","id":7}],"version":"https://jsonfeed.org/version/1.1"}'), CT, a.fingerprints)!;
      expect(b.changed()).to.deep.equal([]);
      const c2 = diffFeed(buf('{"version":"https://jsonfeed.org/version/1.1","items":[{"id":7,"title":"y","url":"u"}]}'), CT, a.fingerprints)!;
      expect(c2.changed()!.map((e) => e.id)).to.deep.equal(['7']);
      expect(c2.fingerprints[0]).to.not.equal(a.fingerprints[0]); // same entry, new content
      expect(JSON.parse(c2.body.toString('utf8'))).to.deep.equal({ version: 'https://jsonfeed.org/version/1.1', items: [{ id: 7, title: 'y', url: 'u' }] });
    });

    it('is recognised as application/json and sniffed from text/plain, but not from a plain JSON object', () => {
      expect(parseEntries(base, 'application/json; charset=utf-8')?.format).to.equal('json');
      expect(parseEntries(base, 'text/plain')?.format).to.equal('json');
      expect(parseEntries(buf('{"a":1}'), 'application/json')).to.equal(null);
      expect(parseEntries(buf('{"version":"https://jsonfeed.org/version/1.1","title":"no items"}'), CT)).to.equal(null);
      expect(parseEntries(buf('{"version":"https://jsonfeed.org/version/1.1","items":['), CT)).to.equal(null);
    });
  });

  describe('entry fields', () => {
    it('RSS 2.0: guid / link / hash identity, CDATA as written, entities decoded, content:encoded', () => {
      const r = parseEntries(fixture('rss2.xml'), 'application/rss+xml')!;
      expect(r.format).to.equal('rss');
      const [a, b, c, d, e] = r.entries;
      expect(a).to.deep.equal({
        id: 'tag:notes.example.com,2024:post-1041',
        title: 'Why I still love RSS',
        link: 'https://notes.example.com/2024/03/12/rss-love',
        published: 'Tue, 12 Mar 2024 13:50:00 GMT',
        summary:
          "<p>RSS is <em>simple</em>, and simple things last. Here's a template:</p><pre>&lt;item&gt;<item><title>not a real item</title></item>&lt;/item&gt;</pre>",
      });
      expect(b).to.deep.equal({
        id: 'https://notes.example.com/2024/03/11/espresso',
        title: 'Espresso & naïve benchmarks',
        link: 'https://notes.example.com/2024/03/11/espresso',
        published: 'Mon, 11 Mar 2024 09:12:44 GMT',
        summary: '<p>Timing shots with a stopwatch is <b>not</b> science.</p>',
      });
      expect(c?.id).to.equal('https://notes.example.com/2024/03/09/links'); // no guid: the link
      expect(c?.summary).to.include('write </item> inside CDATA');
      expect(d?.id).to.match(/^hash:[0-9a-f]{16}$/); // neither guid nor link
      expect(d).to.deep.include({
        title: null,
        link: null,
        published: 'Fri, 08 Mar 2024 07:30:00 GMT',
        summary: 'A titleless micro-post, Scripting News style. Emoji ok: ☕️🚀',
      });
      expect(e).to.deep.include({ id: 'tag:notes.example.com,2024:post-1001', title: 'Hello, world', summary: '<p>First post.</p>' });
    });

    it('RSS 2.0: content:encoded is the summary (cut to 500 characters) when there is no description; a permalink guid is the link', () => {
      const long = 'x'.repeat(600);
      const xml = `<rss version="2.0" xmlns:c="http://purl.org/rss/1.0/modules/content/"><channel>
        <item><guid>https://e.example/p/1</guid><c:encoded><![CDATA[${long}]]></c:encoded><media:description xmlns:media="http://search.yahoo.com/mrss/">not this</media:description></item>
        <item><guid isPermaLink="false">https://e.example/p/2</guid><title>
           Padded   title
        </title></item>
      </channel></rss>`;
      const [a, b] = parseEntries(buf(xml), 'application/rss+xml')!.entries;
      expect(a).to.deep.equal({ id: 'https://e.example/p/1', title: null, link: 'https://e.example/p/1', published: null, summary: 'x'.repeat(500) });
      expect(b).to.deep.equal({ id: 'https://e.example/p/2', title: 'Padded   title', link: null, published: null, summary: null });
    });

    it("RSS 2.0: a podcast's liveItem is an entry, read as an item is; one of another namespace, or outside the channel, is not", () => {
      const feed = (ns: string): string => `<rss version="2.0" xmlns:p="${ns}"><channel><title>Show</title>
        <p:liveItem status="live" start="2024-03-12T18:00:00Z"><title>Live now</title><guid isPermaLink="false">live-3</guid><link>https://example.fm/live</link></p:liveItem>
        <item><guid isPermaLink="false">ep-2</guid><title>Episode 2</title><p:liveItem status="ended"><guid>not-an-entry</guid></p:liveItem></item>
      </channel></rss>`;
      for (const ns of ['https://podcastindex.org/namespace/1.0', 'https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md']) {
        expect(parseEntries(buf(feed(ns)), 'application/rss+xml')!.entries, ns).to.deep.equal([
          { id: 'live-3', title: 'Live now', link: 'https://example.fm/live', published: null, summary: null },
          { id: 'ep-2', title: 'Episode 2', link: null, published: null, summary: null },
        ]);
      }
      expect(parseEntries(buf(feed('https://example.org/not-podcasting')), 'application/rss+xml')!.entries.map((e) => e.id)).to.deep.equal(['ep-2']);
    });

    it('RSS 1.0: rdf:about identity, dc:date, numeric character references', () => {
      const r = parseEntries(fixture('rss1.rdf'), 'application/rdf+xml')!;
      expect(r.format).to.equal('rdf');
      expect(r.entries).to.deep.equal([
        {
          id: 'https://lab.example.org/n/17',
          title: 'Run 17: buffer sizes',
          link: 'https://lab.example.org/n/17',
          published: '2024-03-12T09:45:00Z',
          summary: 'Doubling the buffer halved the syscalls & cut p99 by 12%.',
        },
        {
          id: 'https://lab.example.org/n/16',
          title: 'Run 16: a failure',
          link: 'https://lab.example.org/n/16',
          published: '2024-03-11T16:20:00Z',
          summary: 'The <code>&lt;item&gt;</code> parser choked on <b>nested</b> CDATA.',
        },
        { id: 'https://lab.example.org/n/15', title: 'Run 15: baseline', link: 'https://lab.example.org/n/15', published: '2024-03-10T08:00:00Z', summary: null },
      ]);
    });

    it('Atom: id, alternate link resolved against xml:base, published else updated, summary else content', () => {
      const r = parseEntries(fixture('atom.xml'), 'application/atom+xml')!;
      expect(r.format).to.equal('atom');
      const [a, b, c, d] = r.entries as [FeedEntry, FeedEntry, FeedEntry, FeedEntry];
      expect(a).to.deep.equal({
        id: 'tag:blog.example.net,2024:/2024/03/dark-mode',
        title: 'Dark mode, done properly',
        link: 'https://blog.example.net/2024/03/dark-mode',
        published: '2024-03-12T18:00:00Z',
        summary: 'prefers-color-scheme, and three things it does not do for you.',
      });
      expect(b).to.deep.equal({
        id: 'tag:blog.example.net,2024:/drafts/naming',
        title: 'Notes on <em>naming</em>',
        link: 'https://blog.example.net/drafts/naming.html',
        published: '2024-03-10T12:00:00Z',
        summary: '<p>Names are <strong>interfaces</strong>.</p>', // xhtml content: the div's markup
      });
      expect(c).to.deep.equal({
        id: 'tag:blog.example.net,2024:/2024/03/edge-cache',
        title: 'Caching at the edge',
        link: 'https://blog.example.net/2024/03/edge-cache',
        published: '2024-03-08T08:00:00Z',
        summary: '<p>Stale-while-revalidate is your friend. Beware of <entry> tags in CDATA.</p>',
      });
      expect(d.link).to.equal('https://blog.example.net/2024/02/benchmarks');
      expect(d.summary).to.have.length(500);
      expect(d.summary).to.match(/^Benchmarks are a mirror/);
    });

    it('Atom: the first alternate (or rel-less) link; without a usable base the href as written; no id → link', () => {
      const xml = `<a:feed xmlns:a="http://www.w3.org/2005/Atom">
        <a:entry><a:link rel="self" href="https://e.example/self"/><a:link rel="enclosure" href="https://e.example/x.mp3"/>
          <a:link rel="http://www.iana.org/assignments/relation/alternate" href="/posts/1"/><a:title>One</a:title></a:entry>
      </a:feed>`;
      expect(parseEntries(buf(xml), 'application/atom+xml')!.entries).to.deep.equal([
        { id: '/posts/1', title: 'One', link: '/posts/1', published: null, summary: null },
      ]);
    });

    it('JSON Feed: fields, summary from content when there is none', () => {
      const r = parseEntries(fixture('feed.json'), 'application/feed+json')!;
      expect(r.entries).to.deep.equal([
        {
          id: '2003',
          title: 'Lunch',
          link: 'https://micro.example.com/2024/03/12/lunch',
          published: '2024-03-12T12:30:00-05:00',
          summary: '<p>Soup &amp; bread, as ever.</p>',
        },
        {
          id: 'https://micro.example.com/2024/03/11/podcast',
          title: 'Episode 12',
          link: 'https://micro.example.com/2024/03/11/podcast',
          published: '2024-03-11T18:00:00Z',
          summary: 'We talk about feeds.',
        },
        { id: '2001', title: null, link: null, published: '2024-03-10T08:00:00Z', summary: 'A post with no title and no url. Ünïcödé 🚀' },
        {
          id: 'https://micro.example.com/2024/03/09/no-id',
          title: null,
          link: 'https://micro.example.com/2024/03/09/no-id',
          published: null,
          summary: '<p>An item with a url but no id.</p>',
        },
      ]);
    });
  });

  describe('the scanner', () => {
    it('is not fooled by comments, CDATA, processing instructions or attribute values holding <item>', () => {
      const xml = `<?xml version="1.0"?>
<?xml-stylesheet href="x.xsl" note="<item>"?>
<!-- <rss><channel><item>nope</item></channel></rss> -->
<rss version="2.0">
  <channel>
    <title>T</title>
    <!-- <item><guid>commented</guid></item> -->
    <?pi <item><guid>in a PI</guid></item> ?>
    <category domain="a>b" label='<item/'>x</category>
    <item><guid>one</guid><description><![CDATA[</item><item><guid>fake</guid></item>]]></description></item>
    <ext:items xmlns:ext="urn:x"><item><guid>nested, not a channel child</guid></item></ext:items>
    <item><guid>two</guid><!-- </item> --></item>
  </channel>
</rss>`;
      // An attribute value holding '<' is not XML: refused.
      expect(parseEntries(buf(xml), 'application/rss+xml')).to.equal(null);
      const ok = xml.replace(` label='<item/'`, ` label='item/&gt;'`);
      const r = parseEntries(buf(ok), 'application/rss+xml')!;
      expect(r.entries.map((e) => e.id)).to.deep.equal(['one', 'two']);
      expect(r.entries[0]?.summary).to.equal('</item><item><guid>fake</guid></item>');
      // Dropping both leaves everything else, comments and PIs included.
      const d = diffFeed(buf(ok), 'application/rss+xml', diffFeed(buf(ok), 'application/rss+xml', undefined)!.fingerprints)!;
      const out = d.body.toString('utf8');
      expect(out).to.include('<!-- <item><guid>commented</guid></item> -->');
      expect(out).to.include('<?pi <item><guid>in a PI</guid></item> ?>');
      expect(out).to.include('<ext:items xmlns:ext="urn:x"><item><guid>nested, not a channel child</guid></item></ext:items>');
      expect(out).to.not.include('<guid>one</guid>');
      expect(out).to.not.include('<guid>two</guid>');
    });

    it('keeps non-entry elements placed between entries', () => {
      const xml = `<rss><channel><item><guid>a</guid></item><atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" href="h"/><item><guid>b</guid></item></channel></rss>`;
      const first = diffFeed(buf(xml), 'text/xml', undefined)!;
      const d = diffFeed(buf(xml.replace('<guid>b</guid>', '<guid>b</guid><title>t</title>')), 'text/xml', first.fingerprints)!;
      expect(d.body.toString('utf8')).to.equal(
        `<rss><channel><atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" href="h"/><item><guid>b</guid><title>t</title></item></channel></rss>`,
      );
    });

    it('reports element spans and refuses what is not a single well-formed element tree', () => {
      const spans: ElementSpan[] = [];
      const doc = `<?xml version="1.0"?>\n<a x='1' y = "2>"><b/><c>t<![CDATA[<d>]]></c></a>\n<!-- end -->\n`;
      const root = scanXml(doc, (el) => {
        spans.push(el);
      });
      expect(root?.name).to.equal('a');
      expect(spans.map((s) => [s.name, s.depth, doc.slice(s.start, s.end)])).to.deep.equal([
        ['b', 1, '<b/>'],
        ['c', 1, '<c>t<![CDATA[<d>]]></c>'],
        ['a', 0, `<a x='1' y = "2>"><b/><c>t<![CDATA[<d>]]></c></a>`],
      ]);
      const noop = (): void => undefined;
      for (const bad of [
        '<!DOCTYPE a><a/>',
        '<a/><b/>',
        'text<a/>',
        '<a/>text',
        '<a><b></a></b>',
        '<a>',
        '<a x=1/>',
        '<a x="1"y="2"/>',
        '<a x="1/>',
        '<a><!-- open</a>',
        '<a><![CDATA[ open</a>',
        '<![CDATA[x]]><a/>',
        '<ab></a>',
        '<a></ab>',
        '<a></a-b>',
        '<a></ >',
        '<1a/>',
        '<a x="1" y="2" z="<"/>',
        `<a ${Array.from({ length: 2000 }, (_, i) => `k${i}="v"`).join(' ')} last="<"/>`,
        '',
      ]) {
        expect(scanXml(bad, noop), bad).to.equal(null);
      }
      // Names as XML writes them: prefixes, digits, dots and dashes after the first character,
      // non-ASCII characters (a latin1 view of UTF-8 bytes), whitespace before an end tag's `>`.
      const names = `<x:a-1.b><é_2 d-1='y'/><\u00c3\u00a9></\u00c3\u00a9 ></x:a-1.b >`;
      const named: string[] = [];
      const namedRoot = scanXml(names, (el) => {
        named.push(el.name);
      });
      expect(namedRoot?.name).to.equal('x:a-1.b');
      expect(named).to.deep.equal(['é_2', '\u00c3\u00a9', 'x:a-1.b']);
      const many = `<a ${Array.from({ length: 2000 }, (_, i) => `k${i}="v>"`).join(' ')}/>`;
      expect(scanXml(many, noop)?.end).to.equal(many.length);
      expect(scanXml('<a>' + '<b>'.repeat(300) + '</b>'.repeat(300) + '</a>', noop)).to.equal(null);
      // A report depth: deeper elements are checked but not reported.
      const deep = `<a><b><c/><d><e/></d></b><f/></a>`;
      const shallow: string[] = [];
      const report = (el: ElementSpan): void => {
        shallow.push(`${el.name}${el.depth}`);
      };
      expect(scanXml(deep, report, DEFAULT_MAX_DEPTH, 1)?.name).to.equal('a');
      expect(shallow).to.deep.equal(['b1', 'f1', 'a0']);
      expect(scanXml(`<a><b><c><d></c></d></b></a>`, noop, DEFAULT_MAX_DEPTH, 1), 'a mismatch below the report depth').to.equal(null);
    });

    it('a visitor that returns false ends the scan there', () => {
      const seen: string[] = [];
      const root = scanXml('<a><b/><c/><d/><e/></a>', (el) => {
        seen.push(el.name);
        return el.name !== 'c';
      });
      expect(root).to.equal(null);
      expect(seen).to.deep.equal(['b', 'c']);
    });
  });

  describe('what is not diffed', () => {
    const rss = fixture('rss2.xml');

    it('non-feed content types and documents', () => {
      expect(parseEntries(rss, 'image/png')).to.equal(null);
      expect(parseEntries(buf('<!doctype html><html><body><p>hi</p></body></html>'), 'text/html')).to.equal(null);
      expect(parseEntries(buf('<html><body/></html>'), 'application/xml')).to.equal(null);
      expect(parseEntries(buf('<opml version="2.0"><body/></opml>'), 'text/xml')).to.equal(null);
      expect(parseEntries(buf('just some text'), 'text/plain')).to.equal(null);
      expect(diffFeed(buf('{"hello":"world"}'), 'application/json', undefined)).to.equal(null);
    });

    it('sniffs generic XML types by root element, and trusts the root over the declared type', () => {
      expect(parseEntries(rss, 'text/xml')?.format).to.equal('rss');
      expect(parseEntries(rss, 'application/xml; charset=utf-8')?.format).to.equal('rss');
      expect(parseEntries(rss, 'application/octet-stream')?.format).to.equal('rss');
      expect(parseEntries(rss, '')?.format).to.equal('rss');
      expect(parseEntries(rss, 'text/html; charset=utf-8')?.format, "a script's feed under PHP's default type").to.equal('rss');
      expect(parseEntries(fixture('atom.xml'), 'text/xml')?.format).to.equal('atom');
      expect(parseEntries(fixture('rss1.rdf'), 'application/xml')?.format).to.equal('rdf');
      expect(parseEntries(fixture('atom.xml'), 'application/rss+xml')?.format).to.equal('atom');
    });

    it('broken XML', () => {
      expect(diffFeed(rss.subarray(0, rss.length - 20), 'application/rss+xml', undefined)).to.equal(null);
      expect(parseEntries(buf('<rss><channel><item><title>x</item></channel></rss>'), 'application/rss+xml')).to.equal(null);
      expect(parseEntries(buf('<rss><channel><item><title a=b>x</title></item></channel></rss>'), 'application/rss+xml')).to.equal(null);
      expect(parseEntries(buf('<feed><entry></feed>'), 'application/atom+xml')).to.equal(null);
      expect(parseEntries(buf('<rss version="2.0"></rss>'), 'application/rss+xml')).to.equal(null); // no channel
    });

    it('any DOCTYPE', () => {
      const withDoctype = (dt: string): Buffer => buf(rss.toString('utf8').replace('<rss ', `${dt}\n<rss `));
      expect(diffFeed(withDoctype('<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">'), 'application/rss+xml', undefined)).to.equal(null);
      expect(diffFeed(withDoctype('<!DOCTYPE rss [<!ENTITY boom "boom">]>'), 'application/rss+xml', undefined)).to.equal(null);
      expect(parseEntries(buf('<!DOCTYPE feed><feed xmlns="http://www.w3.org/2005/Atom"/>'), 'application/atom+xml')).to.equal(null);
    });

    it('bodies over 10 MB', () => {
      const big = Buffer.alloc(MAX_DIFF_BODY + 1, 0x20);
      rss.copy(big);
      expect(diffFeed(big, 'application/rss+xml', undefined)).to.equal(null);
    });

    it(`feeds of more than ${MAX_DIFF_ENTRIES} entries, in every format; that many are diffed`, () => {
      const feeds: [string, (n: number) => Buffer][] = [
        ['application/rss+xml', (n) => buf(`<rss version="2.0"><channel><title>t</title>${Array.from({ length: n }, (_, i) => `<item>${i}</item>`).join('')}</channel></rss>`)],
        ['application/rdf+xml', (n) => buf(`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel/>${Array.from({ length: n }, (_, i) => `<item>${i}</item>`).join('')}</rdf:RDF>`)],
        ['application/atom+xml', (n) => buf(`<feed xmlns="http://www.w3.org/2005/Atom">${Array.from({ length: n }, (_, i) => `<entry>${i}</entry>`).join('')}</feed>`)],
        ['application/feed+json', (n) => buf(JSON.stringify({ version: 'https://jsonfeed.org/version/1.1', title: 't', items: Array.from({ length: n }, (_, i) => ({ id: String(i) })) }))],
      ];
      for (const [type, make] of feeds) {
        const d = diffFeed(make(MAX_DIFF_ENTRIES), type, undefined);
        expect(d?.fingerprints, type).to.have.length(MAX_DIFF_ENTRIES);
        expect(diffFeed(make(MAX_DIFF_ENTRIES + 1), type, d!.fingerprints), type).to.equal(null);
      }
    });

    it('encodings that are not ASCII-compatible; ASCII-compatible ones are cut byte-exactly', () => {
      const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(rss.toString('utf8'), 'utf16le')]);
      expect(parseEntries(utf16, 'application/rss+xml')).to.equal(null);
      expect(parseEntries(buf('<?xml version="1.0" encoding="Shift_JIS"?><rss><channel/></rss>'), 'application/rss+xml')).to.equal(null);
      expect(parseEntries(rss, 'application/rss+xml; charset=utf-16')).to.equal(null);

      const latin1 = Buffer.from(
        `<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel><title>Caf\u00e9</title>\n<item><guid>1</guid><title>R\u00e9sum\u00e9</title></item>\n<item><guid>2</guid><title>Na\u00efve</title></item>\n</channel></rss>`,
        'latin1',
      );
      const first = diffFeed(latin1, 'application/rss+xml', undefined)!;
      expect(first.changed()!.map((e) => e.title)).to.deep.equal(['Résumé', 'Naïve']);
      const changed = Buffer.from(latin1.toString('latin1').replace('Na\u00efve', 'Na\u00efve!'), 'latin1');
      const d = diffFeed(changed, 'application/rss+xml', first.fingerprints)!;
      expect(d.changed()!.map((e) => e.id)).to.deep.equal(['2']);
      expect(d.body.equals(Buffer.from(changed.toString('latin1').replace('\n<item><guid>1</guid><title>R\u00e9sum\u00e9</title></item>', ''), 'latin1'))).to.equal(true);
    });

    it('windows-1252 and the labels that name it (ISO-8859-1, us-ascii) read bytes 0x80-0x9F as its characters, not C1 controls', () => {
      // Smart quotes, dashes, the euro sign and an ellipsis as a Windows editor writes them; 0x81 is undefined and stays.
      const high = [0x93, 0x80, 0x20, 0x97, 0x20, 0x91, 0x92, 0x96, 0x85, 0x99, 0x9f, 0x81, 0x94];
      for (const [label, where] of [['windows-1252', 'declaration'], ['ISO-8859-1', 'declaration'], ['iso-8859-1', 'header'], ['us-ascii', 'header']]) {
        const decl = where === 'declaration' ? ` encoding="${label}"` : '';
        const doc = Buffer.concat([
          Buffer.from(`<?xml version="1.0"${decl}?><rss version="2.0"><channel><title>t</title><item><guid>1</guid><title>`, 'latin1'),
          Buffer.from(high),
          Buffer.from('</title></item></channel></rss>', 'latin1'),
        ]);
        const type = where === 'header' ? `application/rss+xml; charset=${label}` : 'application/rss+xml';
        expect(parseEntries(doc, type)?.entries.map((e) => e.title), `${label} in the ${where}`).to.deep.equal(['\u201C\u20AC \u2014 \u2018\u2019\u2013\u2026\u2122\u0178\u0081\u201D']);
      }
    });

    it('never throws, whatever the bytes', () => {
      let seed = 42;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const sources = ['rss2.xml', 'rss1.rdf', 'atom.xml', 'feed.json'].map(fixture);
      const types = ['application/rss+xml', 'application/atom+xml', 'application/feed+json', 'text/xml', ''];
      for (let i = 0; i < 400; i++) {
        const src = Buffer.from(sources[i % sources.length]!);
        for (let k = 0; k < 1 + rand(4); k++) {
          const at = rand(src.length);
          src[at] = rand(3) === 0 ? 0x3c : rand(256); // '<' now and then
        }
        const cut = rand(3) === 0 ? src.subarray(0, rand(src.length)) : src;
        const type = types[rand(types.length)]!;
        expect(() => diffFeed(cut, type, ['x', 'y'])?.changed()).to.not.throw();
        expect(() => parseEntries(cut, type)).to.not.throw();
      }
      const weird: unknown[] = [null, undefined, 42, 'text', {}];
      for (const w of weird) {
        expect(diffFeed(w as Buffer, 'application/rss+xml', undefined)).to.equal(null);
        expect(parseEntries(rss, w as string)?.format ?? null).to.be.oneOf(['rss', null]);
      }
      expect(diffFeed(rss, 'application/rss+xml', [null, 3] as unknown as string[])?.changed()).to.have.length(5);
    });
  });

  describe('entries that leave the feed and come back', () => {
    /** An RSS 2.0 feed of the items numbered `ids`, in that order; the `edited` ones with another text. */
    const items = (ids: number[], edited: number[] = []): Buffer =>
      buf(`<rss version="2.0"><channel><title>t</title>${ids.map((i) => `<item><guid>${i}</guid><title>${edited.includes(i) ? `Edited ${i}` : `Item ${i}`}</title></item>`).join('')}</channel></rss>`);
    const RSS = 'application/rss+xml';
    const printsOf = (ids: number[], edited: number[] = []): string[] => diffFeed(items(ids, edited), RSS, undefined)!.fingerprints;
    const ids = (d: FeedDiff): string[] => d.changed()!.map((e) => e.id);

    it('what a read keeps: its own fingerprints in document order, then those of the entries that dropped out, most recently read first', () => {
      const first = diffFeed(items([3, 2, 1]), RSS, undefined)!;
      expect(first.known, 'nothing remembered yet').to.equal(first.fingerprints);
      const second = diffFeed(items([4, 3, 2]), RSS, first.known)!;
      expect(ids(second)).to.deep.equal(['4']);
      expect(second.fingerprints).to.deep.equal(printsOf([4, 3, 2]));
      expect(second.known).to.deep.equal(printsOf([4, 3, 2, 1]));
      const third = diffFeed(items([6, 5]), RSS, second.known)!;
      expect(third.known, 'the ones gone at this read before the one gone at the last').to.deep.equal(printsOf([6, 5, 4, 3, 2, 1]));
      // Nothing dropped out: the list is the current one, as before remembering.
      const same = diffFeed(items([6, 5]), RSS, printsOf([6, 5]))!;
      expect(same.known).to.equal(same.fingerprints);
    });

    it('an entry that comes back is no change; a new entry or an edited one beside it is, and an edit reverted to a remembered text is not', () => {
      const v1 = diffFeed(items([3, 2, 1]), RSS, undefined)!;
      const v2 = diffFeed(items([4, 3, 2]), RSS, v1.known)!;
      const back = diffFeed(items([3, 2, 1]), RSS, v2.known)!;
      expect(back.changedCount, 'item 1 came back').to.equal(0);
      expect(back.known).to.deep.equal(printsOf([3, 2, 1, 4]));
      const mixed = diffFeed(items([5, 4, 3, 2, 1], [2]), RSS, back.known)!;
      expect(ids(mixed), 'item 4 is back; item 5 is new, item 2 edited').to.deep.equal(['5', '2']);
      expect(parseEntries(mixed.body, RSS)!.entries.map((e) => e.title)).to.deep.equal(['Item 5', 'Edited 2']);
      // The trade-off: item 2's first text is remembered, so the edit undone is not delivered.
      const reverted = diffFeed(items([5, 4, 3, 2, 1]), RSS, mixed.known)!;
      expect(reverted.changedCount).to.equal(0);
    });

    it(`at most as many remembered as the feed now lists, never fewer than ${REMEMBERED_FLOOR} nor more than ${REMEMBERED_CAP}`, () => {
      expect([0, 1, 19, 20, 21, 499, 500, 501, MAX_DIFF_ENTRIES].map(rememberedLimit)).to.deep.equal([20, 20, 20, 20, 21, 499, 500, 500, 500]);
      const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
      for (const n of [3, 50, 600]) {
        // Every entry new at every read: what is kept grows to its bound and stays there.
        let known: string[] = [];
        const reads: number[][] = [];
        for (let r = 0; r < Math.ceil(rememberedLimit(n) / n) + 2; r++) {
          reads.unshift(range(r * 1000, n));
          known = diffFeed(items(reads[0]!), RSS, known)!.known;
          const limit = Math.min(REMEMBERED_CAP, Math.max(REMEMBERED_FLOOR, n));
          expect(known, `${n} entries, read ${r + 1}`).to.deep.equal(printsOf(reads.flat()).slice(0, n + limit));
        }
        expect(known, `${n} entries`).to.have.length(n + rememberedLimit(n));
      }
    });

    it('after an upgrade, stored fingerprints of an older form that a current entry matched are not remembered; those of entries gone are, in the form of this build', () => {
      // The 16-digit and `idHash:contentHash` forms, of the RSS 2.0 fixture before and after.
      const base = fixture('rss2.xml');
      const next = fixture('rss2-next.xml');
      const type = 'application/rss+xml; charset=utf-8';
      const now = diffFeed(next, type, undefined)!.fingerprints;
      const before = entryTexts(base.toString('utf8'), '\t\t<item>', '\n\t\t</item>').map((e) => sha256(e));
      const gone = before.map((h) => h.slice(0, FINGERPRINT_CHARS)).filter((f) => !now.includes(f));
      expect(gone, 'an edited entry and one dropped').to.have.length(2);
      for (const stored of [before.map((h) => h.slice(0, 16)), before.map((h, i) => `${sha256(String(i)).slice(0, 16)}:${h.slice(0, 16)}`)]) {
        expect(diffFeed(next, type, stored)!.known).to.deep.equal([...now, ...gone]);
      }
      // Fingerprints of an entry's exact bytes, from the build before counts were left out: the
      // entry is found under them, and they are not kept beside its own.
      const wp = (comments: number, extra = ''): Buffer =>
        buf(`<rss version="2.0" xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel><title>t</title>${extra}<item><guid>1</guid><slash:comments>${comments}</slash:comments></item><item><guid>2</guid></item></channel></rss>`);
      const exact = entryTexts(wp(3).toString('utf8'), '<item>', '</item>').map((e) => sha256(e).slice(0, FINGERPRINT_CHARS));
      const d = diffFeed(wp(3, '<item><guid>0</guid></item>'), RSS, exact)!;
      expect(ids(d)).to.deep.equal(['0']);
      expect(d.known).to.equal(d.fingerprints);
    });

    it('a stored list of anything but fingerprints is read as before, and nothing of it is kept', () => {
      const d = diffFeed(items([2, 1]), RSS, [null, 3, ''] as unknown as string[])!;
      expect(d.changedCount).to.equal(2);
      expect(d.known).to.equal(d.fingerprints);
    });
  });

  describe('memory', () => {
    it('a stored fingerprint costs its own few characters, not the whole digest it was cut from', () => {
      // The embedded store keeps every feed's fingerprints in memory between reads: 20 entries
      // across 100,000 feeds is two million of them. V8 keeps a substring of 13 characters or
      // more as a view of its parent, here the 64-character digest (~120 bytes each in all).
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const FEEDS = 4000;
      const ENTRIES = 10;
      const feeds = Array.from({ length: FEEDS }, (_, f) => {
        const items = Array.from({ length: ENTRIES }, (_, i) => `<item><guid>https://b${f}.example/${i}</guid><title>Entry ${i} of ${f}</title></item>`);
        return buf(`<?xml version="1.0"?><rss version="2.0"><channel><title>F${f}</title>${items.join('')}</channel></rss>`);
      });
      // Compiled and optimised before the measurement, so that its code is not counted.
      for (const body of feeds.slice(0, 500)) diffFeed(body, 'application/rss+xml', undefined);
      gc();
      gc();
      const before = process.memoryUsage().heapUsed;
      const kept = feeds.map((body) => diffFeed(body, 'application/rss+xml', undefined)!.fingerprints);
      gc();
      gc();
      const perFingerprint = (process.memoryUsage().heapUsed - before) / (FEEDS * ENTRIES);
      expect(kept.flat()).to.have.length(FEEDS * ENTRIES);
      // A flat 12-character string and its array slot take about 40 bytes; 16 characters cut
      // from the digest took about 125.
      expect(perFingerprint).to.be.below(80);
    });
  });
});
