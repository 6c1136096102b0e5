// What counts as a change of a feed in the wild, over real HTTP: a hub, a publisher's server that
// serves each feed as its generator writes it, a WebSub subscriber and an rssCloud one. Each
// generator's feed is read three times where only what it recomputes on every request (or on
// every comment) differs: view counts, comment counts, generation times. Nobody may hear of
// those. Then a corrected title, an edited body or a new entry must still reach both
// subscribers, the WebSub one as just that entry.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { Recorder, sleep, type Handler, type Recorded } from './helpers/recorder.js';
import { bodyWork, startTestHub, type TestHub } from './helpers/hub.js';
import { postForm } from './helpers/rsscloud.js';
import { TopicServer, settled, subscribe } from './helpers/websub.js';
import { diffFeed, REMEMBERED_FLOOR } from '../lib/feeds/entries.js';
import { TopicChecker } from '../lib/feeds/checker.js';
import { BodyThread } from '../lib/body-thread.js';
import { HttpClient } from '../lib/http.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What a generator's feed shows at one read. */
interface State {
  /** Drives everything the generator recomputes without any new content (counts, times). */
  n: number;
  /** The first entry's title (a correction changes it). */
  title: string;
  /** The first entry's body (an edit changes it). */
  body: string;
  /** A new entry on top. */
  added: boolean;
}

interface Generator {
  name: string;
  contentType: string;
  feed(s: State): string;
  /** The ids of the entries of a delivered (partial) feed, in document order. */
  ids(body: string): string[];
  /** The id of the first entry, and of the one `added` puts on top. */
  first: string;
  added: string;
}

const all = (body: string, re: RegExp): string[] => [...body.matchAll(re)].map((m) => m[1]!);

/** A moment of 2024-03-12 that moves with n, as generators stamp their output. */
const at = (n: number): { iso: string; rfc822: string; sql: string } => {
  const d = new Date(Date.UTC(2024, 2, 12, 14, 5, 11) + n * 61_000);
  return { iso: d.toISOString().replace('.000Z', '+00:00'), rfc822: d.toUTCString().replace('GMT', '+0000'), sql: d.toISOString().slice(0, 19).replace('T', ' ') };
};

// YouTube's channel feed (www.youtube.com/feeds/videos.xml?channel_id=…): one-space indent, its
// view counts and star ratings in each entry's media:community, recomputed on every read, and
// each entry's <updated>, which moves with them (a like or a comment is an update to YouTube:
// readers have reported old videos coming back as updated at every refresh since 2014).
const youtube: Generator = {
  name: 'YouTube channel (Atom, media:statistics views, media:starRating, entry <updated> moving with them)',
  contentType: 'text/xml; charset=UTF-8',
  first: 'yt:video:Vid00000002',
  added: 'yt:video:Vid00000003',
  ids: (b) => all(b, /<id>(yt:video:[^<]+)<\/id>/g),
  feed: (s) => {
    const entry = (id: string, title: string, description: string, views: number, likes: number, updated: string): string => ` <entry>
  <id>yt:video:${id}</id>
  <yt:videoId>${id}</yt:videoId>
  <yt:channelId>UCexampleChannel0000000</yt:channelId>
  <title>${title}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v=${id}"/>
  <author>
   <name>Example Channel</name>
   <uri>https://www.youtube.com/channel/UCexampleChannel0000000</uri>
  </author>
  <published>2024-03-10T16:00:06+00:00</published>
  <updated>${updated}</updated>
  <media:group>
   <media:title>${title}</media:title>
   <media:content url="https://www.youtube.com/v/${id}?version=3" type="application/x-shockwave-flash" width="640" height="390"/>
   <media:thumbnail url="https://i2.ytimg.com/vi/${id}/hqdefault.jpg" width="480" height="360"/>
   <media:description>${description}</media:description>
   <media:community>
    <media:starRating count="${likes}" average="5.00" min="1" max="5"/>
    <media:statistics views="${views}"/>
   </media:community>
  </media:group>
 </entry>
`;
    return `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id=UCexampleChannel0000000"/>
 <id>yt:channel:exampleChannel0000000</id>
 <yt:channelId>exampleChannel0000000</yt:channelId>
 <title>Example Channel</title>
 <link rel="alternate" href="https://www.youtube.com/channel/UCexampleChannel0000000"/>
 <author>
  <name>Example Channel</name>
  <uri>https://www.youtube.com/channel/UCexampleChannel0000000</uri>
 </author>
 <published>2015-06-01T10:00:00+00:00</published>
${s.added ? entry('Vid00000003', 'Brand new video', 'Just uploaded.', 12, 1, at(s.n).iso) : ''}${entry('Vid00000002', s.title, s.body, 4810 + s.n * 377, 230 + s.n, at(s.n).iso)}${entry('Vid00000001', 'An older video', 'From last week.', 91_344 + s.n * 41, 2_117 + (s.n % 2), at(s.n * 2).iso)}</feed>`;
  },
};

// WordPress's RSS 2.0 feed (wp-includes/feed-rss2.php), tab-indented, with each post's comment
// count (slash:comments), behind WP Super Cache, which signs each page it makes with its
// generation time after the root.
const wordpressRss: Generator = {
  name: 'WordPress RSS 2.0 (slash:comments; lastBuildDate, WP Super Cache comments)',
  contentType: 'application/rss+xml; charset=UTF-8',
  first: 'https://wp.example.org/?p=412',
  added: 'https://wp.example.org/?p=415',
  ids: (b) => all(b, /<guid isPermaLink="false">([^<]+)<\/guid>/g),
  feed: (s) => {
    const item = (p: number, slug: string, title: string, content: string, comments: number): string => `
	<item>
		<title>${title}</title>
		<link>https://wp.example.org/2024/03/${slug}/</link>
					<comments>https://wp.example.org/2024/03/${slug}/#comments</comments>
		
		<dc:creator><![CDATA[editor]]></dc:creator>
		<pubDate>Mon, 11 Mar 2024 08:30:${String(p % 60).padStart(2, '0')} +0000</pubDate>
				<category><![CDATA[Notes]]></category>
		<guid isPermaLink="false">https://wp.example.org/?p=${p}</guid>

					<description><![CDATA[${content.slice(0, 40)} [&#8230;]]]></description>
										<content:encoded><![CDATA[<p>${content}</p>
]]></content:encoded>
					
					<wfw:commentRss>https://wp.example.org/2024/03/${slug}/feed/</wfw:commentRss>
			<slash:comments>${comments}</slash:comments>
		
		
			</item>`;
    const t = at(s.n);
    return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:atom="http://www.w3.org/2005/Atom"
	xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
	xmlns:slash="http://purl.org/rss/1.0/modules/slash/"
	>

<channel>
	<title>An Example Blog</title>
	<atom:link href="https://wp.example.org/feed/" rel="self" type="application/rss+xml" />
	<link>https://wp.example.org</link>
	<description>Notes</description>
	<lastBuildDate>${t.rfc822}</lastBuildDate>
	<language>en-US</language>
	<sy:updatePeriod>
	hourly	</sy:updatePeriod>
	<sy:updateFrequency>
	1	</sy:updateFrequency>
	<generator>https://wordpress.org/?v=6.4.3</generator>
${s.added ? item(415, 'fresh', 'A fresh post', 'Posted just now.', 0) : ''}${item(412, 'first', s.title, s.body, 3 + s.n)}${item(398, 'older', 'An older post', 'Written a while ago.', 17 + 2 * s.n)}
	</channel>
</rss>
<!-- Dynamic page generated in ${(0.3 + s.n / 97).toFixed(3)} seconds. -->
<!-- Cached page generated by WP-Super-Cache on ${t.sql} -->
`;
  },
};

// WordPress's Atom feed (wp-includes/feed-atom.php): the comment count twice in each entry's
// replies links (thr:count) and once more in thr:total.
const wordpressAtom: Generator = {
  name: 'WordPress Atom (thr:total, replies links with thr:count)',
  contentType: 'application/atom+xml; charset=UTF-8',
  first: 'https://wp.example.org/?p=412',
  added: 'https://wp.example.org/?p=415',
  ids: (b) => all(b, /<id>(https:\/\/wp\.example\.org\/\?p=\d+)<\/id>/g),
  feed: (s) => {
    const entry = (p: number, slug: string, title: string, content: string, comments: number): string => `
	<entry>
		<author>
			<name>editor</name>
					</author>

		<title type="html"><![CDATA[${title}]]></title>
		<link rel="alternate" type="text/html" href="https://wp.example.org/2024/03/${slug}/" />

		<id>https://wp.example.org/?p=${p}</id>
		<updated>2024-03-11T08:30:00Z</updated>
		<published>2024-03-11T08:30:00Z</published>
		<category scheme="https://wp.example.org" term="Notes" />
		<summary type="html"><![CDATA[${content.slice(0, 40)} [&#8230;]]]></summary>
		<content type="html" xml:base="https://wp.example.org/2024/03/${slug}/"><![CDATA[<p>${content}</p>
]]></content>
					<link rel="replies" type="text/html" href="https://wp.example.org/2024/03/${slug}/#comments" thr:count="${comments}" />
			<link rel="replies" type="application/atom+xml" href="https://wp.example.org/2024/03/${slug}/feed/atom/" thr:count="${comments}" />
			<thr:total>${comments}</thr:total>
			</entry>`;
    return `<?xml version="1.0" encoding="UTF-8"?><feed
	xmlns="http://www.w3.org/2005/Atom"
	xmlns:thr="http://purl.org/syndication/thread/1.0"
	xml:lang="en-US"
	>
	<title type="text">An Example Blog</title>
	<subtitle type="text">Notes</subtitle>

	<updated>${at(s.n).iso.replace('+00:00', 'Z')}</updated>

	<link rel="alternate" type="text/html" href="https://wp.example.org" />
	<id>https://wp.example.org/feed/atom/</id>
	<link rel="self" type="application/atom+xml" href="https://wp.example.org/feed/atom/" />

	<generator uri="https://wordpress.org/" version="6.4.3">WordPress</generator>
${s.added ? entry(415, 'fresh', 'A fresh post', 'Posted just now.', 0) : ''}${entry(412, 'first', s.title, s.body, 3 + s.n)}${entry(398, 'older', 'An older post', 'Written a while ago.', 17 + 2 * s.n)}
</feed>
`;
  },
};

// Blogger's Atom feed (…/feeds/posts/default): one line, single quotes, the comment count in a
// replies link's title ('3 Comments') and in thr:total, and openSearch counts at the top.
const blogger: Generator = {
  name: "Blogger Atom (thr:total, replies link title='N Comments')",
  contentType: 'application/atom+xml; charset=UTF-8',
  first: 'tag:blogger.com,1999:blog-1234567890123456789.post-111',
  added: 'tag:blogger.com,1999:blog-1234567890123456789.post-333',
  ids: (b) => all(b, /<id>(tag:blogger\.com,1999:blog-\d+\.post-\d+)<\/id>/g),
  feed: (s) => {
    const blog = 'tag:blogger.com,1999:blog-1234567890123456789';
    const entry = (post: number, title: string, content: string, comments: number): string =>
      `<entry><id>${blog}.post-${post}</id><published>2024-03-11T09:00:00.000-08:00</published><updated>2024-03-11T09:05:00.000-08:00</updated><title type='text'>${title}</title><content type='html'>${content}</content><link rel='replies' type='application/atom+xml' href='https://example.blogspot.com/feeds/${post}/comments/default' title='Post Comments'/><link rel='replies' type='text/html' href='https://example.blogspot.com/2024/03/post-${post}.html#comment-form' title='${comments} Comments'/><link rel='edit' type='application/atom+xml' href='https://www.blogger.com/feeds/1234567890123456789/posts/default/${post}'/><link rel='self' type='application/atom+xml' href='https://www.blogger.com/feeds/1234567890123456789/posts/default/${post}'/><link rel='alternate' type='text/html' href='https://example.blogspot.com/2024/03/post-${post}.html' title='${title}'/><author><name>Someone</name><email>noreply@blogger.com</email></author><thr:total>${comments}</thr:total></entry>`;
    return `<?xml version='1.0' encoding='UTF-8'?><?xml-stylesheet href="http://www.blogger.com/styles/atom.css" type="text/css"?><feed xmlns='http://www.w3.org/2005/Atom' xmlns:openSearch='http://a9.com/-/spec/opensearchrss/1.0/' xmlns:blogger='http://schemas.google.com/blogger/2008' xmlns:georss='http://www.georss.org/georss' xmlns:gd="http://schemas.google.com/g/2005" xmlns:thr='http://purl.org/syndication/thread/1.0'><id>${blog}</id><updated>${at(s.n).iso.replace('+00:00', '.000-08:00')}</updated><title type='text'>Example Blogspot</title><link rel='alternate' type='text/html' href='https://example.blogspot.com/'/><author><name>Someone</name></author><generator version='7.00' uri='http://www.blogger.com'>Blogger</generator><openSearch:totalResults>${s.added ? 3 : 2}</openSearch:totalResults><openSearch:startIndex>1</openSearch:startIndex><openSearch:itemsPerPage>25</openSearch:itemsPerPage>${s.added ? entry(333, 'A fresh post', 'Posted just now.', 0) : ''}${entry(111, s.title, s.body, 3 + s.n)}${entry(222, 'An older post', 'Written a while ago.', 9 + s.n)}</feed>`;
  },
};

// Slashdot's RSS 1.0 feed: each story's comment count and its spread over score thresholds.
const slashdot: Generator = {
  name: 'Slashdot RSS 1.0 (slash:comments, slash:hit_parade)',
  contentType: 'application/rdf+xml',
  first: 'https://tech.example.org/story/24/03/12/1/first',
  added: 'https://tech.example.org/story/24/03/12/3/fresh',
  ids: (b) => all(b, /<item rdf:about="([^"]+)">/g),
  feed: (s) => {
    const item = (path: string, title: string, text: string, comments: number): string => `<item rdf:about="https://tech.example.org/story/24/03/12/${path}">
<title>${title}</title>
<link>https://tech.example.org/story/24/03/12/${path}</link>
<description>${text}</description>
<dc:creator>editor</dc:creator>
<dc:date>2024-03-12T14:00:00+00:00</dc:date>
<dc:subject>tech</dc:subject>
<slash:department>from-the-examples-dept</slash:department>
<slash:section>technology</slash:section>
<slash:comments>${comments}</slash:comments>
<slash:hit_parade>${comments},${comments},${Math.floor(comments * 0.7)},${Math.floor(comments / 2)},3,0,0</slash:hit_parade>
</item>
`;
    const lis = (s.added ? ['3/fresh'] : []).concat(['1/first', '2/second']);
    return `<?xml version="1.0" encoding="ISO-8859-1"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/" xmlns:syn="http://purl.org/rss/1.0/modules/syndication/">
<channel rdf:about="https://tech.example.org/">
<title>Tech Example</title>
<link>https://tech.example.org/</link>
<description>News for examples</description>
<dc:date>${at(s.n).iso}</dc:date>
<syn:updatePeriod>hourly</syn:updatePeriod>
<syn:updateFrequency>1</syn:updateFrequency>
<items>
 <rdf:Seq>
${lis.map((l) => `  <rdf:li rdf:resource="https://tech.example.org/story/24/03/12/${l}" />`).join('\n')}
 </rdf:Seq>
</items>
</channel>
${s.added ? item('3/fresh', 'A fresh story', 'Just in.', 0) : ''}${item('1/first', s.title, s.body, 40 + 11 * s.n)}${item('2/second', 'Another story', 'Older news.', 250 + 3 * s.n)}</rdf:RDF>
`;
  },
};

// hnrss (hnrss.org, github.com/hnrss/hnrss): Hacker News lists as RSS 2.0, one line as Go's
// encoding/xml writes it, its channel's generator 'hnrss v…'. Each story's description ends with
// its points and comment count, which move at every read of a busy list; the first story is an
// Ask HN (its own text above them), the others link elsewhere.
const hnStory = (id: number, title: string, text: string | null, points: number, comments: number): { id: string; title: string; description: string } => {
  const hn = `https://news.ycombinator.com/item?id=${id}`;
  const head = text === null ? `<p>Article URL: <a href="https://example.com/${id}">https://example.com/${id}</a></p>` : `<p>${text}</p>\n<hr>`;
  return { id: hn, title, description: `\n${head}\n<p>Comments URL: <a href="${hn}">${hn}</a></p>\n<p>Points: ${points}</p>\n<p># Comments: ${comments}</p>\n` };
};
const hnStories = (s: State): ReturnType<typeof hnStory>[] => [
  ...(s.added ? [hnStory(39700003, 'Show HN: A fresh thing', null, 1, 0)] : []),
  hnStory(39700001, s.title, s.body, 12 + 7 * s.n, 3 + 2 * s.n),
  hnStory(39700000, 'An older story', null, 240 + s.n, 88 + s.n),
];
const hnrssRss: Generator = {
  name: 'hnrss RSS 2.0 (Points and # Comments in each description)',
  contentType: 'application/xml; charset=utf-8',
  first: 'https://news.ycombinator.com/item?id=39700001',
  added: 'https://news.ycombinator.com/item?id=39700003',
  ids: (b) => all(b, /<guid isPermaLink="false">([^<]+)<\/guid>/g),
  feed: (s) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Hacker News: Newest</title><link>https://news.ycombinator.com/newest</link><description>Hacker News RSS</description><docs>https://hnrss.org/</docs><generator>hnrss v2.1.1</generator><lastBuildDate>${at(s.n).rfc822}</lastBuildDate><atom:link href="https://hnrss.org/newest" rel="self" type="application/rss+xml"></atom:link>` +
    hnStories(s)
      .map((h) => `<item><title><![CDATA[${h.title}]]></title><description><![CDATA[${h.description}]]></description><pubDate>Tue, 12 Mar 2024 13:00:00 +0000</pubDate><link>${h.id}</link><dc:creator>someone</dc:creator><comments>${h.id}</comments><guid isPermaLink="false">${h.id}</guid></item>`)
      .join('') +
    '</channel></rss>',
};
// Its Atom (hnrss.org/newest.atom): no generator there, the feed's id its own hnrss.org address.
const hnrssAtom: Generator = {
  name: 'hnrss Atom (Points and # Comments in each content)',
  contentType: 'application/xml; charset=utf-8',
  first: 'https://news.ycombinator.com/item?id=39700001',
  added: 'https://news.ycombinator.com/item?id=39700003',
  ids: (b) => all(b, /<id>(https:\/\/news\.ycombinator\.com\/item\?id=\d+)<\/id>/g),
  feed: (s) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><id>https://hnrss.org/newest.atom</id><title>Hacker News: Newest</title><updated>${at(s.n).iso.replace('+00:00', 'Z')}</updated><link href="https://hnrss.org/newest.atom" rel="self" type="application/atom+xml"></link>` +
    hnStories(s)
      .map((h) => `<entry><title><![CDATA[${h.title}]]></title><link href="${h.id}" rel="alternate"></link><author><name>someone</name></author><content type="html"><![CDATA[${h.description}]]></content><updated>2024-03-12T13:00:00Z</updated><published>2024-03-12T13:00:00Z</published><id>${h.id}</id></entry>`)
      .join('') +
    '</feed>',
};

// Its JSON Feed (hnrss.org/newest.jsonfeed): as Go's encoding/json writes it (HTML's <, > and &
// escaped); no generator, the description hnrss writes into every one.
const hnrssJson: Generator = {
  name: 'hnrss JSON Feed (Points and # Comments in each content_html)',
  contentType: 'application/json; charset=utf-8',
  first: 'https://news.ycombinator.com/item?id=39700001',
  added: 'https://news.ycombinator.com/item?id=39700003',
  ids: (b) => (JSON.parse(b) as { items: { id: string }[] }).items.map((i) => i.id),
  feed: (s) =>
    JSON.stringify({
      version: 'https://jsonfeed.org/version/1',
      title: 'Hacker News: Newest',
      description: 'Hacker News RSS',
      home_page_url: 'https://news.ycombinator.com/newest',
      items: hnStories(s).map((h) => ({ id: h.id, title: h.title, content_html: h.description, url: h.id, external_url: h.id, date_published: '2024-03-12T13:00:00Z', author: 'someone' })),
    }).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`),
};

// A Discourse forum's topic list (/latest.rss, /c/…/….rss, /top.rss, /tag/….rss): each topic's
// description is its first post, then a line of how many posts and participants it has (in the
// site's language), then a link to the topic; the root declares Discourse's namespace.
const discourse: Generator = {
  name: "Discourse topic list (the 'N posts - M participants' line in each description)",
  contentType: 'application/rss+xml; charset=utf-8',
  first: 'forum.example.org-topic-1201',
  added: 'forum.example.org-topic-1203',
  ids: (b) => all(b, /<guid isPermaLink="false">([^<]+)<\/guid>/g),
  feed: (s) => {
    const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
    const topic = (id: number, title: string, cooked: string, posts: number, people: number): string => `
            <item>
              <title>${title}</title>
              <dc:creator><![CDATA[someone]]></dc:creator>
              <category>General</category>
              <description><![CDATA[
                ${cooked}
                <p><small>${plural(posts, 'post')} - ${plural(people, 'participant')}</small></p>
                <p><a href="https://forum.example.org/t/topic-${id}/${id}">Read full topic</a></p>
              ]]></description>
              <link>https://forum.example.org/t/topic-${id}/${id}</link>
              <pubDate>Tue, 12 Mar 2024 10:00:00 +0000</pubDate>
              <discourse:topicPinned>No</discourse:topicPinned>
              <discourse:topicClosed>No</discourse:topicClosed>
              <discourse:topicArchived>No</discourse:topicArchived>
              <guid isPermaLink="false">forum.example.org-topic-${id}</guid>
              <source url="https://forum.example.org/t/topic-${id}/${id}.rss">${title}</source>
            </item>`;
    return `<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:discourse="http://www.discourse.org/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Example Forum - Latest topics</title>
    <link>https://forum.example.org/latest</link>
    <description>Latest topics</description>
    <language>en</language>
      <lastBuildDate>Tue, 12 Mar 2024 10:00:00 +0000</lastBuildDate>
      <atom:link href="https://forum.example.org/latest.rss" rel="self" type="application/rss+xml" />${s.added ? topic(1203, 'A fresh topic', '<p>Just asked.</p>', 1, 1) : ''}${topic(1201, s.title, `<p>${s.body}</p>`, 1 + 3 * s.n, 1 + s.n)}${topic(1200, 'An older topic', '<p>Asked a while ago.</p>\n<p><small>a footnote - of its own</small></p>', 40 + s.n, 12 + s.n)}
  </channel>
</rss>
`;
  },
};

// Stack Exchange's question lists (stackoverflow.com/feeds/tag/…, /feeds/question/…): Atom whose
// root declares Feed Rank, each question's (and answer's) score in its entry's re:rank, which
// moves with every vote.
const stackExchange: Generator = {
  name: 'Stack Exchange tag feed (Atom, each score in re:rank)',
  contentType: 'application/atom+xml; charset=utf-8',
  first: 'https://stackoverflow.com/q/78100001',
  added: 'https://stackoverflow.com/q/78100003',
  ids: (b) => all(b, /<id>(https:\/\/stackoverflow\.com\/q\/\d+)<\/id>/g),
  feed: (s) => {
    const question = (id: number, title: string, body: string, score: number): string => `
    <entry>
        <id>https://stackoverflow.com/q/${id}</id>
        <re:rank scheme="https://stackoverflow.com">${score}</re:rank>
        <title type="text">${title}</title>
            <category scheme="https://stackoverflow.com/tags" term="regex" />
        <author>
            <name>someone</name>
            <uri>https://stackoverflow.com/users/68788</uri>
        </author>
        <link rel="alternate" href="https://stackoverflow.com/questions/${id}/a-question" />
        <published>2024-03-12T09:00:00Z</published>
        <updated>2024-03-12T09:00:00Z</updated>
        <summary type="html">
            &lt;p&gt;${body}&lt;/p&gt;
        </summary>
    </entry>`;
    return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule" xmlns:re="http://purl.org/atompub/rank/1.0">
    <title type="text">Newest questions tagged regex - Stack Overflow</title>
    <link rel="self" href="https://stackoverflow.com/feeds/tag/regex" type="application/atom+xml" />
    <link rel="alternate" href="https://stackoverflow.com/questions/tagged/?tagnames=regex&amp;sort=newest" type="text/html" />
    <subtitle>most recent 30 from stackoverflow.com</subtitle>
    <updated>${at(s.n).iso.replace('+00:00', 'Z')}</updated>
    <id>https://stackoverflow.com/feeds/tag/regex</id>
    <creativeCommons:license>https://creativecommons.org/licenses/by-sa/4.0/rdf</creativeCommons:license>${s.added ? question(78100003, 'A fresh question', 'Just asked.', 0) : ''}${question(78100001, s.title, s.body, 4 + 3 * s.n)}${question(78100000, 'An older question', 'Asked a while ago.', -2 + s.n)}
</feed>`;
  },
};

// Lemmy's community feed (/feeds/c/….xml, up to 0.19), on one line as the rss crate writes it:
// no generator, Dublin Core declared on the root; each post's description opens with who posted
// it where, then its score and comment count, the latter linking the post's page, which is also
// the item's comments. The older post is voted down.
const lemmyPost = (id: number, title: string, body: string | null, score: number, comments: number): string => {
  const page = `https://lemmy.example/post/${id}`;
  const head = `submitted by <a href="https://lemmy.example/u/someone">someone</a> to <a href="https://lemmy.example/c/technology">technology</a><br>${score} points | <a href="${page}">${comments} comments</a>`;
  const rest = body === null ? `<br><a href="https://example.com/${id}">https://example.com/${id}</a>` : `<p>${body}</p>\n`;
  return `<item><title>${title}</title><link>${body === null ? `https://example.com/${id}` : page}</link><description><![CDATA[${head}${rest}]]></description><comments>${page}</comments><guid>${page}</guid><pubDate>Tue, 12 Mar 2024 09:00:00 +0000</pubDate><dc:creator>https://lemmy.example/u/someone</dc:creator></item>`;
};
const lemmy: Generator = {
  name: "Lemmy community feed (each post's 'N points | M comments' line)",
  contentType: 'application/rss+xml',
  first: 'https://lemmy.example/post/101',
  added: 'https://lemmy.example/post/103',
  ids: (b) => all(b, /<guid>([^<]+)<\/guid>/g),
  feed: (s) =>
    `<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Lemmy Example - technology</title><link>https://lemmy.example/c/technology</link><description><![CDATA[<p>All things tech.</p>\n]]></description>` +
    (s.added ? lemmyPost(103, 'A fresh post', 'Just posted.', 1, 0) : '') +
    lemmyPost(101, s.title, s.body, 12 + 5 * s.n, 3 + s.n) +
    lemmyPost(100, 'An older post', null, -3 + s.n, 40 + 2 * s.n) +
    '</channel></rss>',
};

const GENERATORS = [youtube, wordpressRss, wordpressAtom, blogger, slashdot, hnrssRss, hnrssAtom, hnrssJson, discourse, stackExchange, lemmy];

const BASE: State = { n: 0, title: 'Frist post', body: 'What we shipped this week.', added: false };

/** How long nothing must happen, once the hub is idle, to count as "nothing happened". */
const QUIET_MS = 200;

describe('feeds in the wild: what counts as a change', function () {
  this.timeout(30_000);
  let hub: TestHub;
  let topics: TopicServer;
  let ws: Recorder;
  let cloud: Recorder;
  before(async () => {
    // Every body compared on the worker thread (BodyThread): the answers below are its answers.
    hub = await startTestHub({ POLL_ENABLED: 'false', BODY_THREAD_MIN_BYTES: '1' });
    topics = await TopicServer.start();
    const answer: Handler = (req, res) => {
      const challenge = req.query.get('hub.challenge');
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.method === 'GET' && challenge !== null ? challenge : 'ok');
    };
    ws = await Recorder.start(answer);
    cloud = await Recorder.start();
  });
  after(async () => {
    await ws?.close();
    await cloud?.close();
    await topics?.close();
    await hub?.destroy();
  });

  const posts = (rec: Recorder, p: string): Recorded[] => rec.matching((r) => r.method === 'POST' && r.path === p);

  /** Serves `body` at the topic, has the publisher ping, and waits until the hub is done with it. */
  async function read(topicPath: string, g: Generator, s: State): Promise<void> {
    const topic = topics.set(topicPath, { body: g.feed(s), contentType: g.contentType });
    const res = await postForm(hub.url, '/websub', { 'hub.mode': 'publish', 'hub.url': topic });
    expect(res.status, await res.text()).to.equal(204);
    await settled(hub);
  }

  for (const g of GENERATORS) {
    it(`${g.name}: what it recomputes on every read is no change on either protocol; a corrected title, an edited body and a new entry are`, async () => {
      const key = `/${g.name.replace(/\W+/g, '-')}`;
      const topic = topics.url(key);
      await read(key, g, BASE);
      const verified = (r: Recorded): boolean => r.method === 'GET' && r.path === key && r.query.get('hub.mode') === 'subscribe';
      const sub = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${ws.url}${key}` });
      expect(sub.status).to.equal(202);
      await ws.waitFor(1, verified);
      const pn = await postForm(hub.url, '/pleaseNotify', { port: String(cloud.port), path: key, protocol: 'http-post', url1: topic });
      expect(await pn.text()).to.contain('success="true"');
      await settled(hub);
      const cloudBefore = posts(cloud, key).length; // the handler test
      const readsBefore = topics.fetches(key).length;

      // Two more reads where only the generator's own counts and times moved.
      for (const n of [1, 2]) {
        const body = g.feed({ ...BASE, n });
        expect(body, 'the read differs from the last').to.not.equal(g.feed({ ...BASE, n: n - 1 }));
        await read(key, g, { ...BASE, n });
      }
      await sleep(QUIET_MS);
      expect(topics.fetches(key).length - readsBefore, 'each version was read').to.equal(2);
      expect(posts(ws, key).map((r) => g.ids(r.body.toString())), 'WebSub: nothing new').to.deep.equal([]);
      expect(posts(cloud, key).length - cloudBefore, 'rssCloud: nothing new').to.equal(0);

      // Real changes, each with the counts moved too: every one reaches both subscribers, the
      // WebSub one as just the entry that changed.
      const steps: [State, string][] = [
        [{ ...BASE, n: 3, title: 'First post' }, g.first],
        [{ ...BASE, n: 4, title: 'First post', body: 'What we shipped this week, and what we did not.' }, g.first],
        [{ ...BASE, n: 5, title: 'First post', body: 'What we shipped this week, and what we did not.', added: true }, g.added],
      ];
      for (const [i, [state, id]] of steps.entries()) {
        await read(key, g, state);
        const got = await ws.waitFor(i + 1, (r) => r.method === 'POST' && r.path === key);
        expect(g.ids(got[i]!.body.toString()), `step ${i + 1}: only the changed entry`).to.deep.equal([id]);
        await cloud.waitFor(cloudBefore + i + 1, (r) => r.method === 'POST' && r.path === key);
      }
      await sleep(QUIET_MS);
      expect(posts(ws, key)).to.have.length(3);
      expect(posts(cloud, key).length - cloudBefore).to.equal(3);
      expect(await bodyWork(hub, 'diff', 'worker'), 'compared on the worker thread').to.be.at.least(6);
      expect(await bodyWork(hub, 'diff', 'main'), 'compared on the main thread').to.equal(0);
    });
  }

  /**
   * The topic at `key`, read once by this build, as an older build left it: `stored` as its
   * fingerprints (which this build no longer makes, `why`), then a WebSub subscriber of its own.
   */
  async function storedByOlderBuild(key: string, stored: string[], why: string): Promise<void> {
    const topic = topics.url(key);
    const now = await hub.store.getTopic(topic);
    expect(now?.fingerprints, why).to.not.deep.equal(stored);
    await hub.store.putTopic({ ...now!, fingerprints: stored });
    const sub = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${ws.url}${key}` });
    expect(sub.status).to.equal(202);
    await ws.waitFor(1, (r) => r.method === 'GET' && r.path === key);
    await settled(hub);
  }

  it('a feed whose entries an older build fingerprinted with their counts is no change at the first read after the upgrade', async () => {
    const key = '/upgraded';
    const topic = topics.url(key);
    await read(key, wordpressRss, BASE);
    // What an older build kept: the start of the sha256 of each entry's exact bytes.
    const body = wordpressRss.feed(BASE);
    const exact = all(body, /(<item>[\s\S]*?<\/item>)/g).map((e) => createHash('sha256').update(e, 'latin1').digest('hex').slice(0, 12));
    expect(exact).to.have.length(2);
    await storedByOlderBuild(key, exact, 'the count is left out now');

    // The same feed, read again by the new build (nobody commented in between).
    await read(key, wordpressRss, BASE);
    await sleep(QUIET_MS);
    expect(posts(ws, key), 'nothing new').to.deep.equal([]);
    expect((await hub.store.getTopic(topic))?.fingerprints, 'kept in the new form').to.not.deep.equal(exact);
    await read(key, wordpressRss, { ...BASE, n: 2, added: true });
    const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
    expect(wordpressRss.ids(got[0]!.body.toString())).to.deep.equal([wordpressRss.added]);
  });

  it("a podcast's live show (podcast:liveItem, beside the items) going live and ending reaches both protocols, the WebSub subscriber as that live item alone", async () => {
    // The Podcast Namespace's liveItem is a child of the channel, not an item: a show announces
    // its live stream with status="pending", switches it to "live" when it starts (listeners'
    // apps, told of it, offer to tune in) and to "ended" after, usually beside a new item for the
    // recording. Its buildDate moves at every render.
    const key = '/podcast-live';
    const CT = 'application/rss+xml; charset=utf-8';
    const episode = (n: number): string => `
    <item>
      <title>Episode ${n}</title>
      <guid isPermaLink="false">show-episode-${n}</guid>
      <pubDate>Mon, 0${n} Mar 2024 10:00:00 +0000</pubDate>
      <enclosure url="https://media.example.fm/show/ep${n}.mp3" length="${31_000_000 + n}" type="audio/mpeg"/>
      <itunes:duration>01:02:0${n}</itunes:duration>
      <itunes:episode>${n}</itunes:episode>
      <podcast:transcript url="https://media.example.fm/show/ep${n}.vtt" type="text/vtt"/>
    </item>`;
    const feed = (status: string, n: number, episodes = [2, 1]): string => `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:podcast="https://podcastindex.org/namespace/1.0">
  <channel>
    <title>Example Show</title>
    <link>https://example.fm/</link>
    <description>A show.</description>
    <lastBuildDate>${at(n).rfc822}</lastBuildDate>
    <itunes:author>Someone</itunes:author>
    <podcast:guid>917393e3-1b1e-5cef-ace4-edaa54e1f810</podcast:guid>
    <podcast:liveItem status="${status}" start="2024-03-12T18:00:00Z" end="2024-03-12T19:00:00Z">
      <title>Live: Episode 3</title>
      <guid isPermaLink="false">show-live-3</guid>
      <enclosure url="https://stream.example.fm/live.mp3" type="audio/mpeg" length="33"/>
      <podcast:contentLink href="https://example.fm/live">Listen live</podcast:contentLink>
    </podcast:liveItem>${episodes.map(episode).join('')}
  </channel>
</rss>
`;
    const liveIds = (body: string): string[] => all(body, /<guid isPermaLink="false">([^<]+)<\/guid>/g);
    const serve = (body: string): Promise<void> => readPage(key, body, CT);
    await serve(feed('pending', 0));
    const cloudBefore = await follow(key);

    await serve(feed('pending', 1)); // a new render, nothing new
    await sleep(QUIET_MS);
    expect(posts(ws, key), 'nothing new yet').to.deep.equal([]);

    await serve(feed('live', 2));
    const live = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
    expect(live[0]!.body.toString(), 'the live item as it is now').to.contain('<podcast:liveItem status="live"');
    expect(liveIds(live[0]!.body.toString())).to.deep.equal(['show-live-3']);
    await cloud.waitFor(cloudBefore + 1, (r) => r.method === 'POST' && r.path === key);

    await serve(feed('ended', 3, [3, 2, 1]));
    const ended = await ws.waitFor(2, (r) => r.method === 'POST' && r.path === key);
    expect(liveIds(ended[1]!.body.toString())).to.deep.equal(['show-live-3', 'show-episode-3']);
    await cloud.waitFor(cloudBefore + 2, (r) => r.method === 'POST' && r.path === key);
    await sleep(QUIET_MS);
    expect(posts(ws, key)).to.have.length(2);
    expect(posts(cloud, key).length - cloudBefore).to.equal(2);
  });

  it("a YouTube feed whose entries an older build fingerprinted with their <updated> (or with their counts too) is no change at the first read after the upgrade", async () => {
    const body = youtube.feed(BASE);
    const entries = all(body, /(<entry>[\s\S]*?<\/entry>)/g);
    expect(entries).to.have.length(2);
    const print = (e: string): string => createHash('sha256').update(e, 'latin1').digest('hex').slice(0, 12);
    // The build before this one left the counts out, and the one before that nothing.
    const olderBuilds: [string, string[]][] = [
      ['counts left out', entries.map((e) => print(e.replace(/<media:community>[\s\S]*?<\/media:community>/, '')))],
      ['exact bytes', entries.map(print)],
    ];
    for (const [build, stored] of olderBuilds) {
      const key = `/upgraded-youtube-${build.replace(/\W+/g, '-')}`;
      await read(key, youtube, BASE);
      await storedByOlderBuild(key, stored, build);

      await read(key, youtube, BASE);
      await sleep(QUIET_MS);
      expect(posts(ws, key), `${build}: nothing new`).to.deep.equal([]);
      await read(key, youtube, { ...BASE, n: 2, added: true });
      const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
      expect(youtube.ids(got[0]!.body.toString()), build).to.deep.equal([youtube.added]);
    }
  });

  it('an hnrss, Discourse, Stack Exchange or Lemmy feed whose entries an older build fingerprinted with their counts is no change at the first read after the upgrade', async () => {
    const print = (e: string): string => createHash('sha256').update(e, 'latin1').digest('hex').slice(0, 12);
    // A JSON Feed item's: its JSON with the keys sorted (the same for these flat items).
    const sorted = (o: Record<string, unknown>): string => `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(o[k])}`).join(',')}}`;
    for (const g of [hnrssRss, hnrssAtom, hnrssJson, discourse, stackExchange, lemmy]) {
      // What the build before each kept: the start of the sha256 of each entry's exact bytes.
      const exact =
        g === hnrssJson
          ? (JSON.parse(g.feed(BASE)) as { items: Record<string, unknown>[] }).items.map((i) => print(sorted(i)))
          : all(g.feed(BASE), /(<item>[\s\S]*?<\/item>|<entry>[\s\S]*?<\/entry>)/g).map(print);
      expect(exact, g.name).to.have.length(2);
      const key = `/upgraded-${g.name.replace(/\W+/g, '-')}`;
      await read(key, g, BASE);
      await storedByOlderBuild(key, exact, `${g.name}: the counts are left out now`);

      // The same feed, read again by the new build (no vote, no post in between).
      await read(key, g, BASE);
      await sleep(QUIET_MS);
      expect(posts(ws, key), `${g.name}: nothing new`).to.deep.equal([]);
      await read(key, g, { ...BASE, n: 2, added: true });
      const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
      expect(g.ids(got[0]!.body.toString()), g.name).to.deep.equal([g.added]);
    }
  });

  // Entries that leave a feed and come back: a CDN or load balancer whose nodes serve an older
  // and a newer copy of the feed by turns, a front-page feed whose entries hover around its
  // cut-off, a generator whose page size wobbles. Each return was delivered as new.

  /** A small blog's RSS 2.0 feed of the posts numbered `ids`, newest first; an `edited` post carries its corrected text. */
  const blogPage = (ids: number[], edited: number[] = []): string => {
    const items = ids.map(
      (id) => `\n  <item><title>Post ${id}</title><guid isPermaLink="false">post-${id}</guid><description>${edited.includes(id) ? `Text of post ${id}, corrected.` : `Text of post ${id}.`}</description></item>`,
    );
    return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>A blog</title><link>https://blog.example/</link><description>d</description>${items.join('')}\n</channel></rss>\n`;
  };
  const postIds = (body: string): number[] => all(body, /<guid isPermaLink="false">post-(\d+)<\/guid>/g).map(Number);
  const RSS_TYPE = 'application/rss+xml; charset=UTF-8';

  /** Serves `body` at the topic, has the publisher ping, and waits until the hub is done with it. */
  async function readPage(key: string, body: string, contentType = RSS_TYPE): Promise<void> {
    const topic = topics.set(key, { body, contentType });
    const res = await postForm(hub.url, '/websub', { 'hub.mode': 'publish', 'hub.url': topic });
    expect(res.status, await res.text()).to.equal(204);
    await settled(hub);
  }

  /** Subscribes the WebSub and the rssCloud recorders to the topic at `key`; returns how many rssCloud POSTs came before (the handler test). */
  async function follow(key: string): Promise<number> {
    const topic = topics.url(key);
    const sub = await subscribe(hub, { 'hub.topic': topic, 'hub.callback': `${ws.url}${key}` });
    expect(sub.status).to.equal(202);
    await ws.waitFor(1, (r) => r.method === 'GET' && r.path === key);
    const pn = await postForm(hub.url, '/pleaseNotify', { port: String(cloud.port), path: key, protocol: 'http-post', url1: topic });
    expect(await pn.text()).to.contain('success="true"');
    await settled(hub);
    return posts(cloud, key).length;
  }

  it('a feed served by turns from an older copy and a newer one (a CDN whose nodes disagree) delivers the newest entry once, not at every flip back, on either protocol', async () => {
    const key = '/flipping';
    // The newer copy has post 4 on top and, a page being 3 posts long, no longer post 1.
    const older = blogPage([3, 2, 1]);
    const newer = blogPage([4, 3, 2]);
    await readPage(key, older);
    const cloudBefore = await follow(key);

    await readPage(key, newer);
    const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
    expect(postIds(got[0]!.body.toString()), 'the new post alone').to.deep.equal([4]);
    await cloud.waitFor(cloudBefore + 1, (r) => r.method === 'POST' && r.path === key);

    // The nodes go on answering by turns: each copy's posts are all known by now.
    for (const body of [older, newer, older, newer, older, newer]) await readPage(key, body);
    await sleep(QUIET_MS);
    expect(topics.fetches(key).length, 'every flip was read').to.be.at.least(8);
    expect(posts(ws, key).map((r) => postIds(r.body.toString())), 'WebSub: post 4 once, post 1 never again').to.deep.equal([[4]]);
    expect(posts(cloud, key).length - cloudBefore, 'rssCloud: one notification').to.equal(1);
  });

  it('a read where one entry drops out and a new one arrives, or one comes back beside a new one, delivers only the new one; an edit is still a change, but an edit reverted to a text read before is not', async () => {
    const key = '/hovering';
    await readPage(key, blogPage([3, 2, 1]));
    const cloudBefore = await follow(key);
    const delivered = async (n: number): Promise<number[]> => {
      const got = await ws.waitFor(n, (r) => r.method === 'POST' && r.path === key);
      await cloud.waitFor(cloudBefore + n, (r) => r.method === 'POST' && r.path === key);
      return postIds(got[n - 1]!.body.toString());
    };

    await readPage(key, blogPage([4, 3, 2])); // post 1 drops out, post 4 arrives
    expect(await delivered(1), 'post 4 alone').to.deep.equal([4]);
    await readPage(key, blogPage([5, 3, 2, 1])); // post 4 drops out, post 1 comes back, post 5 arrives
    expect(await delivered(2), 'post 5 alone').to.deep.equal([5]);
    await readPage(key, blogPage([5, 4, 3, 2], [3])); // post 4 comes back, post 3 is corrected
    expect(await delivered(3), 'the corrected post 3 alone').to.deep.equal([3]);

    // The trade-off: post 3's first text is remembered, so the correction undone is no news.
    await readPage(key, blogPage([5, 4, 3, 2]));
    await sleep(QUIET_MS);
    expect(posts(ws, key), 'nothing more for WebSub').to.have.length(3);
    expect(posts(cloud, key).length - cloudBefore, 'nothing more for rssCloud').to.equal(3);
  });

  it("the lines hnrss and Discourse write their counts in are the author's text in a feed they did not make: a change on both protocols", async () => {
    // A link blog that quotes a story's lines as hnrss writes them, and a forum's as Discourse
    // does, its root declaring no Discourse namespace and its generator another.
    const key = '/quoted-counts';
    const page = (n: number): string =>
      `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Links</title><link>https://links.example/</link><description>d</description><generator>https://wordpress.org/?v=6.4.3</generator>` +
      `<item><title>Post 1</title><guid isPermaLink="false">post-1</guid><description><![CDATA[\n<p>Comments URL: <a href="https://news.ycombinator.com/item?id=1">https://news.ycombinator.com/item?id=1</a></p>\n<p>Points: ${12 + n}</p>\n<p># Comments: ${3 + n}</p>\n]]></description></item>` +
      `<item><title>Post 2</title><guid isPermaLink="false">post-2</guid><description><![CDATA[\n<p>Seen on a forum.</p>\n<p><small>${4 + n} posts - 2 participants</small></p>\n<p><a href="https://forum.example.org/t/2">Read full topic</a></p>\n]]></description></item>` +
      `</channel></rss>\n`;
    await readPage(key, page(0));
    const cloudBefore = await follow(key);
    await readPage(key, page(1));
    const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
    expect(postIds(got[0]!.body.toString()), 'both posts').to.deep.equal([1, 2]);
    await cloud.waitFor(cloudBefore + 1, (r) => r.method === 'POST' && r.path === key);

    // The same in an Atom feed whose id is not hnrss's.
    const atomKey = '/quoted-counts-atom';
    const ATOM_TYPE = 'application/atom+xml';
    const entry = (n: number): string =>
      `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><id>https://links.example/feed.atom</id><title>Links</title>` +
      `<entry><id>https://links.example/post-1</id><title>Post 1</title><content type="html"><![CDATA[\n<p>Points: ${12 + n}</p>\n<p># Comments: ${3 + n}</p>\n]]></content></entry></feed>\n`;
    await readPage(atomKey, entry(0), ATOM_TYPE);
    await follow(atomKey);
    await readPage(atomKey, entry(1), ATOM_TYPE);
    const atomGot = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === atomKey);
    expect(atomGot[0]!.body.toString()).to.contain('<p>Points: 13</p>');

    // And in a JSON Feed whose description is not hnrss's.
    const jsonKey = '/quoted-counts-json';
    const item = (n: number): string =>
      JSON.stringify({ version: 'https://jsonfeed.org/version/1.1', title: 'Links', description: 'Links I liked', items: [{ id: 'post-1', content_html: `\n<p>Points: ${12 + n}</p>\n<p># Comments: ${3 + n}</p>\n` }] });
    await readPage(jsonKey, item(0), 'application/feed+json');
    await follow(jsonKey);
    await readPage(jsonKey, item(1), 'application/feed+json');
    const jsonGot = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === jsonKey);
    expect(jsonGot[0]!.body.toString()).to.contain('<p>Points: 13</p>');
  });

  it("Lemmy's score line and a rank element are the author's in a feed Lemmy or Feed Rank did not make: a change on both protocols", async () => {
    // A WordPress feed (its generator says so) with Dublin Core declared as Lemmy declares it,
    // whose post opens its description with a line as Lemmy writes it, linking the post's comments.
    const key = '/quoted-lemmy';
    const page = (n: number): string =>
      `<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Links</title><link>https://links.example/</link><description>d</description><generator>https://wordpress.org/?v=6.4.3</generator>` +
      `<item><title>Post 1</title><link>https://links.example/post-1</link><description><![CDATA[submitted by <a href="https://links.example/u/me">me</a> to <a href="https://links.example/c/all">all</a><br>${12 + n} points | <a href="https://links.example/post-1">${3 + n} comments</a>]]></description><comments>https://links.example/post-1</comments><guid isPermaLink="false">post-1</guid></item>` +
      `</channel></rss>\n`;
    await readPage(key, page(0));
    const cloudBefore = await follow(key);
    await readPage(key, page(1));
    const got = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === key);
    expect(postIds(got[0]!.body.toString())).to.deep.equal([1]);
    await cloud.waitFor(cloudBefore + 1, (r) => r.method === 'POST' && r.path === key);

    // An Atom feed whose `re` prefix is another namespace's (a reviews vocabulary): its rank is the entry's.
    const atomKey = '/quoted-rank';
    const entry = (n: number): string =>
      `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xmlns:re="http://reviews.example/ns"><id>https://reviews.example/feed.atom</id><title>Reviews</title>` +
      `<entry><id>https://reviews.example/post-1</id><title>Post 1</title><re:rank scheme="https://reviews.example">${4 + n}</re:rank><content type="html">A review.</content></entry></feed>\n`;
    await readPage(atomKey, entry(0), 'application/atom+xml');
    await follow(atomKey);
    await readPage(atomKey, entry(1), 'application/atom+xml');
    const atomGot = await ws.waitFor(1, (r) => r.method === 'POST' && r.path === atomKey);
    expect(atomGot[0]!.body.toString()).to.contain('>5</re:rank>');
  });

  it('the fingerprints a topic keeps stay bounded when every entry changes at every read: its current ones, then those read most recently, at most REMEMBERED_FLOOR of them for a short feed', async () => {
    const key = '/churning';
    const topic = topics.url(key);
    const version = (r: number): string => blogPage([5, 4, 3, 2, 1].map((k) => r * 10 + k));
    const printsOf = (r: number): string[] => diffFeed(Buffer.from(version(r)), RSS_TYPE, undefined)!.fingerprints;
    const stored = async (): Promise<string[] | undefined> => (await hub.store.getTopic(topic))?.fingerprints;

    await readPage(key, version(1));
    expect(await stored(), 'the first read: its entries').to.deep.equal(printsOf(1));
    await readPage(key, version(2));
    expect(await stored(), 'then those of the read before').to.deep.equal([...printsOf(2), ...printsOf(1)]);
    for (let r = 3; r <= 9; r++) await readPage(key, version(r));
    // Five current ones, then the 20 read most recently (reads 8 back to 5); reads 1 to 4 are forgotten.
    const expected = [9, 8, 7, 6, 5].flatMap(printsOf);
    expect(expected).to.have.length(5 + REMEMBERED_FLOOR);
    expect(await stored()).to.deep.equal(expected);

    // A version listing no entry (a CMS whose database is down) leaves them as they were.
    await readPage(key, blogPage([]));
    expect(await stored(), 'kept through an empty channel').to.deep.equal(expected);
    // Back with a new entry, one of read 5 (remembered) and one of read 4 (forgotten): read 5's
    // other four are the ones that fall off now.
    const back = blogPage([100, 51, 41]);
    await readPage(key, back);
    const now = diffFeed(Buffer.from(back), RSS_TYPE, undefined)!.fingerprints;
    expect(now[1], "post 51's fingerprint").to.equal(printsOf(5)[4]);
    expect(await stored()).to.deep.equal([...now, ...[9, 8, 7, 6].flatMap(printsOf)]);
  });
});

describe('what stays a change in a feed whose counts are left out', () => {
  /** How many entries of `next` are new or changed since `prev`. */
  const changed = (prev: string, next: string, type: string): number => {
    const before = diffFeed(Buffer.from(prev, 'latin1'), type, undefined);
    const d = diffFeed(Buffer.from(next, 'latin1'), type, before!.fingerprints);
    expect(d, 'diffed').to.not.equal(null);
    return d!.changedCount;
  };

  it('a count the author wrote in a post (markup quoted in CDATA) is the post', () => {
    const post = (n: number): string =>
      wordpressRss.feed(BASE).replace('<p>What we shipped this week.</p>', `<p>Write <slash:comments>${n}</slash:comments> in each item.</p>`);
    expect(post(5)).to.contain('<content:encoded><![CDATA[<p>Write <slash:comments>5</slash:comments>');
    expect(changed(post(5), post(6), wordpressRss.contentType)).to.equal(1);
  });

  it("a video's new media file or thumbnail is a change; its views and likes are not", () => {
    const v0 = youtube.feed(BASE);
    expect(changed(v0, youtube.feed({ ...BASE, n: 7 }), youtube.contentType)).to.equal(0);
    expect(changed(v0, v0.replace('Vid00000002/hqdefault.jpg', 'Vid00000002/maxresdefault.jpg'), youtube.contentType)).to.equal(1);
    expect(changed(v0, v0.replace('/v/Vid00000002?version=3"', '/v/Vid00000002?version=4"'), youtube.contentType)).to.equal(1);
  });

  it("an Atom entry's links other than its replies links are a change", () => {
    const v0 = blogger.feed(BASE);
    expect(changed(v0, blogger.feed({ ...BASE, n: 4 }), blogger.contentType)).to.equal(0);
    expect(changed(v0, v0.replace("href='https://example.blogspot.com/2024/03/post-111.html' title=", "href='https://example.blogspot.com/2024/03/post-111-moved.html' title="), blogger.contentType)).to.equal(1);
    const wp0 = wordpressAtom.feed(BASE);
    expect(changed(wp0, wp0.replace('<link rel="alternate" type="text/html" href="https://wp.example.org/2024/03/first/" />', '<link rel="alternate" type="text/html" href="https://wp.example.org/2024/03/first-post/" />'), wordpressAtom.contentType)).to.equal(1);
  });

  it('after an upgrade, an entry an older build fingerprinted with its count is known even beside one that has no count', () => {
    // WordPress's Atom writes the replies links and thr:total only for a post open to comments.
    const v0 = wordpressAtom.feed(BASE).replace(/\n\t*<link rel="replies"[^\n]*\/>\n\t*<link rel="replies"[^\n]*\/>\n\t*<thr:total>17<\/thr:total>/, '');
    const entries = all(v0, /(<entry>[\s\S]*?<\/entry>)/g);
    expect(entries.filter((e) => e.includes('thr:total'))).to.have.length(1);
    const exact = entries.map((e) => createHash('sha256').update(e, 'latin1').digest('hex').slice(0, 12));
    expect(diffFeed(Buffer.from(v0, 'latin1'), wordpressAtom.contentType, exact)!.changedCount).to.equal(0);
  });

  // Small feeds of one changing entry and a steady one: `root` goes into the root start tag.
  const SLASH = ' xmlns:slash="http://purl.org/rss/1.0/modules/slash/"';
  const THR = ' xmlns:thr="http://purl.org/syndication/thread/1.0"';
  const rss = (root: string, item: string, prolog = '<?xml version="1.0" encoding="UTF-8"?>\n'): string =>
    `${prolog}<rss version="2.0"${root}><channel><title>c</title><item><guid>1</guid>${item}</item><item><guid>2</guid></item></channel></rss>`;
  const atom = (root: string, entry: string, prefix = ''): string =>
    `<?xml version="1.0"?><${prefix}feed xmlns${prefix === '' ? '' : `:${prefix.slice(0, -1)}`}="http://www.w3.org/2005/Atom"${root}><${prefix}id>f</${prefix}id>` +
    `<${prefix}entry><${prefix}id>1</${prefix}id>${entry}</${prefix}entry><${prefix}entry><${prefix}id>2</${prefix}id></${prefix}entry></${prefix}feed>`;
  const RSS = 'application/rss+xml';
  const ATOM = 'application/atom+xml';

  it('a prefix bound below the root to another namespace names the author\'s own element there', () => {
    const story = (n: number): string => rss(SLASH, `<s:story xmlns:s="http://example.org/story" xmlns:slash="http://example.org/tally"><slash:comments>Editor's note ${n}</slash:comments></s:story>`);
    expect(changed(story(1), story(2), RSS)).to.equal(1);
    // Bound again to the same namespace, it is still the count.
    const same = (n: number): string => rss(SLASH, `<slash:comments xmlns:slash="http://purl.org/rss/1.0/modules/slash/">${n}</slash:comments>`);
    expect(changed(same(1), same(2), RSS)).to.equal(0);
  });

  it("only an Atom entry's own replies links are left out, not a link in its XHTML content or a rel quoted in a title", () => {
    const xhtml = (href: string): string => atom(THR, `<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><link rel="replies" href="${href}"/></div></content>`);
    expect(changed(xhtml('a'), xhtml('b'), ATOM)).to.equal(1);
    const titled = (href: string): string => atom(THR, `<link title=" rel='replies'" rel="alternate" href="${href}"/>`);
    expect(changed(titled('a'), titled('b'), ATOM)).to.equal(1);
  });

  it('the counts are found under every way generators write the root', () => {
    // Media RSS declared without its final slash; its statistics straight in an RSS item, self-closing.
    const bare = (n: number): string => rss(' xmlns:media="http://search.yahoo.com/mrss"', `<media:statistics views="${n}"/>`);
    expect(changed(bare(1), bare(2), RSS)).to.equal(0);
    // A prefixed Atom root, whose links are prefixed too.
    const prefixed = (n: number): string => atom(THR, `<a:link rel="replies" href="c" thr:count="${n}"/>`, 'a:');
    expect(changed(prefixed(1), prefixed(2), ATOM)).to.equal(0);
    // A `>` in an attribute value before the declarations, a UTF-8 byte order mark, a comment before the root.
    const quoted = (n: number): string => rss(` xml:base="https://example.org/?a>b"${SLASH}`, `<slash:comments>${n}</slash:comments>`);
    expect(changed(quoted(1), quoted(2), RSS)).to.equal(0);
    const bom = (n: number): string => rss(SLASH, `<slash:comments>${n}</slash:comments>`, '\u00EF\u00BB\u00BF<?xml version="1.0" encoding="UTF-8"?>');
    expect(changed(bom(1), bom(2), RSS)).to.equal(0);
    const commented = (n: number): string => rss(SLASH, `<slash:comments>${n}</slash:comments>`, '<?xml version="1.0"?>\n<!-- generator="WordPress/6.4" -->\n');
    expect(changed(commented(1), commented(2), RSS)).to.equal(0);
  });

  it('a root declaring Slash, Feed Threading and Media RSS at once has the counts of all three left out; past 16 such declarations the rest are not looked at', () => {
    const MEDIA = ' xmlns:media="http://search.yahoo.com/mrss/"';
    const three = (n: number): string => rss(`${SLASH}${THR}${MEDIA}`, `<slash:comments>${n}</slash:comments><thr:total>${n}</thr:total><media:statistics views="${n}"/>`);
    expect(changed(three(1), three(2), RSS)).to.equal(0);
    // 15 other prefixes of Slash before: the 16th declaration is looked at, the 17th is not.
    const others = Array.from({ length: 15 }, (_, i) => ` xmlns:s${i}="http://purl.org/rss/1.0/modules/slash/"`).join('');
    const sixteenth = (n: number): string => rss(`${others}${SLASH}`, `<slash:comments>${n}</slash:comments>`);
    expect(changed(sixteenth(1), sixteenth(2), RSS)).to.equal(0);
    const seventeenth = (n: number): string => rss(`${others} xmlns:s15="http://purl.org/rss/1.0/modules/slash/"${SLASH}`, `<slash:comments>${n}</slash:comments>`);
    expect(changed(seventeenth(1), seventeenth(2), RSS)).to.equal(1);
  });

  it("an entry's own <updated> is left out of a YouTube feed only: elsewhere, or anywhere else in the entry, it is a change", () => {
    const YT = ' xmlns:yt="http://www.youtube.com/xml/schemas/2015"';
    const updated = (root: string, n: number, prefix = ''): string => atom(root, `<${prefix}title>v</${prefix}title><${prefix}updated>2024-03-1${n}T00:00:00Z</${prefix}updated>`, prefix);
    expect(changed(updated(YT, 1), updated(YT, 2), ATOM)).to.equal(0);
    expect(changed(updated(YT, 1, 'a:'), updated(YT, 2, 'a:'), ATOM), 'a prefixed root').to.equal(0);
    expect(changed(updated('', 1), updated('', 2), ATOM), 'another Atom feed').to.equal(1);
    expect(changed(updated(YT, 1), updated(YT, 1).replace('<title>v<', '<title>w<'), ATOM), 'a new title').to.equal(1);
    // A <source>'s updated inside the entry is what it says about the entry's origin.
    const source = (n: number): string => atom(YT, `<source><id>s</id><updated>2024-03-1${n}T00:00:00Z</updated></source>`);
    expect(changed(source(1), source(2), ATOM)).to.equal(1);
    // An RSS feed declaring YouTube's namespace has no Atom entries to leave it out of.
    const rssUpdated = (n: number): string => rss(YT, `<atom:updated xmlns:atom="http://www.w3.org/2005/Atom">2024-03-1${n}</atom:updated><updated>${n}</updated>`);
    expect(changed(rssUpdated(1), rssUpdated(2), RSS)).to.equal(1);
  });

  it("what readers did inside a video's media:community is left out whole, with what it holds between the counts", () => {
    const video = (n: number): string =>
      atom(' xmlns:media="http://search.yahoo.com/mrss/"', `<media:group><media:title>v</media:title><media:community><media:starRating count="${n}"/><media:tags>fun ${n}</media:tags><media:statistics views="${n}"/></media:community></media:group>`);
    expect(changed(video(1), video(2), ATOM)).to.equal(0);
    expect(changed(video(1), video(1).replace('<media:title>v<', '<media:title>w<'), ATOM)).to.equal(1);
  });

  it("in an hnrss feed, only the points and comment count it writes last in an entry are left out: the story's own text, and a feed another generator made, count", () => {
    const v0 = hnrssRss.feed(BASE);
    expect(changed(v0, hnrssRss.feed({ ...BASE, n: 9 }), hnrssRss.contentType)).to.equal(0);
    expect(changed(v0, v0.replace('<p>Points: 12</p>', '<p>Points: 13</p>\n<p>Flagged</p>'), hnrssRss.contentType), 'a paragraph after them').to.equal(1);
    // An Ask HN whose author wrote such lines in the story: those are the story.
    const asked = (n: number): string => hnrssRss.feed({ ...BASE, body: `Points: ${n}</p>\n<p># Comments: ${n}` });
    expect(changed(asked(1), asked(2), hnrssRss.contentType)).to.equal(1);
    // Only the channel's generator says who made the feed; nor does a generator merely named alike.
    const other = (n: number, generator: string): string => hnrssRss.feed({ ...BASE, n }).replace('<generator>hnrss v2.1.1</generator>', generator);
    expect(changed(other(0, '<generator>hnrss v2</generator>'), other(1, '<generator>hnrss v2</generator>'), hnrssRss.contentType)).to.equal(0);
    expect(changed(other(0, ''), other(1, ''), hnrssRss.contentType), 'no generator').to.equal(2);
    expect(changed(other(0, '<generator>hnrss2rss</generator>'), other(1, '<generator>hnrss2rss</generator>'), hnrssRss.contentType)).to.equal(2);
    const inItem = (n: number): string => other(n, '').replace('<dc:creator>someone</dc:creator>', '<dc:creator>someone</dc:creator><generator>hnrss v2</generator>');
    expect(changed(inItem(0), inItem(1), hnrssRss.contentType), "an item's generator").to.equal(2);
    // Its Atom, known by its id: another id (a copy of the feed elsewhere) is compared to the byte.
    const a0 = hnrssAtom.feed(BASE);
    expect(changed(a0, hnrssAtom.feed({ ...BASE, n: 9 }), hnrssAtom.contentType)).to.equal(0);
    const elsewhere = (n: number): string => hnrssAtom.feed({ ...BASE, n }).replace('<id>https://hnrss.org/newest.atom</id>', '<id>https://mirror.example/newest.atom</id>');
    expect(changed(elsewhere(0), elsewhere(1), hnrssAtom.contentType)).to.equal(2);
    // With description=0 an item has none: the same words closing its title are the title.
    const titled = (n: number): string =>
      hnrssRss.feed(BASE).replace(/<description><!\[CDATA\[[\s\S]*?\]\]><\/description>/g, '').replace(']]></title>', `<p>Points: ${n}</p><p># Comments: ${n}</p>]]></title>`);
    expect(changed(titled(1), titled(2), hnrssRss.contentType), 'a title ending in them').to.equal(1);
  });

  it("in a Discourse topic list, only the posts and participants line before the topic's link is left out, in any language; the first post's own text counts", () => {
    const v0 = discourse.feed(BASE);
    expect(changed(v0, discourse.feed({ ...BASE, n: 9 }), discourse.contentType)).to.equal(0);
    // A forum in another language says it in its own words.
    const zh = (n: number): string => v0.replace('<small>1 post - 1 participant</small>', `<small>${n} 个帖子 - ${n} 位参与者</small>`);
    expect(changed(Buffer.from(zh(1)).toString('latin1'), Buffer.from(zh(2)).toString('latin1'), discourse.contentType)).to.equal(0);
    // The same line in the first post is the post; so is one with no topic link after it.
    const quoted = (n: number): string => discourse.feed({ ...BASE, body: `Tally</p>\n<p><small>${n} posts - 2 participants</small>` });
    expect(changed(quoted(1), quoted(2), discourse.contentType)).to.equal(1);
    const unlinked = (n: number): string => discourse.feed({ ...BASE, n }).replace(/\n *<p><a href="[^"]*">Read full topic<\/a><\/p>/g, '');
    expect(changed(unlinked(0), unlinked(1), discourse.contentType)).to.equal(2);
    // Nor is a line with no count on either side of its dash.
    const words = (w: string): string => v0.replace('<small>1 post - 1 participant</small>', `<small>${w}</small>`);
    expect(changed(words('one post - one participant'), words('two posts - one participant'), discourse.contentType)).to.equal(1);
    // Its posts feed (/posts.rss) declares the namespace too, and a post there may end with such
    // a line and a link of its own: only a link to the item's own topic makes it the count line.
    const posted = (n: number): string => `<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:discourse="http://www.discourse.org/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Example Forum - Latest posts</title>
    <link>https://forum.example.org</link>
    <description>Latest posts</description>
    <item>
      <title>Releases</title>
      <dc:creator><![CDATA[someone]]></dc:creator>
      <description><![CDATA[
        <p>Release notes</p>
        <p><small>v1.${n} - 2024-0${n}-01</small></p>
        <p><a href="https://example.com/download">Download</a></p>
      ]]></description>
      <link>https://forum.example.org/t/releases/7/3</link>
      <pubDate>Tue, 12 Mar 2024 10:00:00 +0000</pubDate>
      <guid isPermaLink="false">forum.example.org-post-9</guid>
    </item>
  </channel>
</rss>
`;
    expect(changed(posted(2), posted(3), discourse.contentType), 'a post ending in a line and a link of its own').to.equal(1);
    // Without Discourse's namespace on the root, the feed is another generator's.
    const undeclared = (n: number): string => discourse.feed({ ...BASE, n }).replace(' xmlns:discourse="http://www.discourse.org/"', '').replace(/<discourse:[^\n]*\n/g, '');
    expect(changed(undeclared(0), undeclared(1), discourse.contentType)).to.equal(2);
  });

  it('after an upgrade, an entry of a feed with counts both in elements and in its text is known by the print of the build before (the elements left out, the text whole)', () => {
    const v0 = hnrssRss.feed(BASE)
      .replace(' xmlns:dc=', ' xmlns:slash="http://purl.org/rss/1.0/modules/slash/" xmlns:dc=')
      .replaceAll('<dc:creator>someone</dc:creator>', '<dc:creator>someone</dc:creator><slash:comments>3</slash:comments>');
    const before = all(v0, /(<item>[\s\S]*?<\/item>)/g).map((e) => createHash('sha256').update(e.replace('<slash:comments>3</slash:comments>', ''), 'latin1').digest('hex').slice(0, 12));
    expect(before).to.have.length(2);
    const d = diffFeed(Buffer.from(v0, 'latin1'), hnrssRss.contentType, before)!;
    expect(d.changedCount).to.equal(0);
    expect(d.known, 'kept in the new form').to.deep.equal(d.fingerprints);
    expect(d.fingerprints).to.not.deep.equal(before);
  });

  it("in a Lemmy feed, only the score and comment count of the line it opens a post with are left out: the post's own text, and a feed another generator made, count", () => {
    const type = lemmy.contentType;
    const v0 = lemmy.feed(BASE);
    expect(changed(v0, lemmy.feed({ ...BASE, n: 9 }), type)).to.equal(0);
    // A post whose author wrote such a line in its body: that is the post.
    const quoted = (n: number): string => lemmy.feed({ ...BASE, body: `Tally: ${n} points | <a href="https://lemmy.example/post/101">${n} comments</a>` });
    expect(changed(quoted(1), quoted(2), type)).to.equal(1);
    // Its words changed around the counts are a change.
    expect(changed(v0, v0.replaceAll('to <a href="https://lemmy.example/c/technology">technology</a>', 'to <a href="https://lemmy.example/c/news">news</a>'), type)).to.equal(2);
    // The counts are found where the line puts them, even with the same words in the post's link.
    const oddLink = (n: number): string => lemmy.feed({ ...BASE, n }).replaceAll('https://lemmy.example/post/', 'https://lemmy.example/post/?q= points | ');
    expect(changed(oddLink(0), oddLink(1), type), 'a link holding " points | "').to.equal(0);
    // A line whose comments link is not the item's own comments is not Lemmy's.
    const elsewhere = (n: number): string => lemmy.feed({ ...BASE, n }).replaceAll('<comments>https://lemmy.example/post/', '<comments>https://other.example/post/');
    expect(changed(elsewhere(0), elsewhere(1), type)).to.equal(2);
    // A channel with a generator, or a root not declaring Dublin Core as Lemmy does, is another generator's feed.
    const withGenerator = (n: number): string => lemmy.feed({ ...BASE, n }).replace('<item>', '<generator>Feeder 1.0</generator><item>');
    expect(changed(withGenerator(0), withGenerator(1), type)).to.equal(2);
    const root = (n: number): string => lemmy.feed({ ...BASE, n }).replace(' xmlns:dc="http://purl.org/dc/elements/1.1/"', " xmlns:dc='http://purl.org/dc/elements/1.1/'");
    expect(changed(root(0), root(1), type)).to.equal(2);
    // Nor is anything but an RSS item opening with its title and link and then that line.
    const late = (n: number): string => lemmy.feed({ ...BASE, n }).replaceAll('<description><![CDATA[submitted by', '<description><![CDATA[<p>Pinned</p>submitted by');
    expect(changed(late(0), late(1), type)).to.equal(2);
  });

  it('a rank is left out where Feed Rank is declared on the root; an entry with a rank and Media RSS counts is known after an upgrade by the print of the build before (the counts left out, the rank kept)', () => {
    const type = stackExchange.contentType;
    expect(changed(stackExchange.feed(BASE), stackExchange.feed({ ...BASE, n: 9 }), type)).to.equal(0);
    const undeclared = (n: number): string => stackExchange.feed({ ...BASE, n }).replace(' xmlns:re="http://purl.org/atompub/rank/1.0"', ' xmlns:re="http://reviews.example/ns"');
    expect(changed(undeclared(0), undeclared(1), type)).to.equal(2);

    const v0 = stackExchange.feed(BASE)
      .replace(' xmlns:re=', ' xmlns:media="http://search.yahoo.com/mrss/" xmlns:re=')
      .replaceAll('<published>', '<media:community><media:statistics views="120"/></media:community><published>');
    const before = all(v0, /(<entry>[\s\S]*?<\/entry>)/g).map((e) =>
      createHash('sha256').update(e.replace('<media:community><media:statistics views="120"/></media:community>', ''), 'latin1').digest('hex').slice(0, 12),
    );
    expect(before).to.have.length(2);
    const d = diffFeed(Buffer.from(v0, 'latin1'), type, before)!;
    expect(d.changedCount).to.equal(0);
    expect(d.known, 'kept in the new form').to.deep.equal(d.fingerprints);
    expect(d.fingerprints).to.not.deep.equal(before);
  });

  it('a new enclosure of a WordPress post is a change', () => {
    const v0 = wordpressRss.feed(BASE);
    const withEnclosure = v0.replace(
      '<slash:comments>3</slash:comments>',
      '<slash:comments>4</slash:comments>\n<enclosure url="https://wp.example.org/wp-content/uploads/2024/03/episode.mp3" length="1048576" type="audio/mpeg" />',
    );
    expect(changed(v0, withEnclosure, wordpressRss.contentType)).to.equal(1);
  });
});

// On either thread: the worker answers "the same bytes" itself, by their MD5.
for (const [where, minBytes] of [['main thread', 0], ['worker thread', 1]] as const) {
  describe(`a read of the same bytes as the last (compared on the ${where})`, function () {
    this.timeout(20_000);
    let bodies: BodyThread;
    let dir: string;
    let store: LowdbStore;
    const url = 'https://blog.example/feed';
    const http = (): HttpClient => new HttpClient({ timeoutMs: 1000, maxResponseBytes: 1 << 20, userAgent: 't', fetchAllowCidrs: [], callbackAllowCidrs: [] });
    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-same-bytes-'));
      store = new LowdbStore({ dir });
      await store.open();
      bodies = new BodyThread(minBytes);
    });
    afterEach(async () => {
      bodies.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('is no change and is not diffed again in this process; a process that did not make the fingerprints diffs it once', async () => {
      const body = Buffer.from(wordpressRss.feed(BASE));
      const checker = new TopicChecker(http(), store, Date.now, bodies);
      const first = await checker.accept(url, body, wordpressRss.contentType);
      expect(first.changed).to.equal(true);
      // The hub stores a changed topic once its version is staged.
      await store.putTopic(first.topic);
      const again = await checker.accept(url, body, wordpressRss.contentType);
      expect(again.changed).to.equal(false);
      expect(again.topic.ctChecks).to.equal(2);
      // The very list the first diff made: a diff would have made another (equal) one.
      expect(again.topic.fingerprints).to.equal(first.topic.fingerprints);
      // A checker of another process (its fingerprints read back, perhaps an older build's)
      // diffs the same bytes once, then no more.
      const restarted = new TopicChecker(http(), store, Date.now, bodies);
      const afterRestart = await restarted.accept(url, body, wordpressRss.contentType);
      expect(afterRestart.changed).to.equal(false);
      expect(afterRestart.topic.fingerprints).to.deep.equal(first.topic.fingerprints);
      expect(afterRestart.topic.fingerprints).to.not.equal(first.topic.fingerprints);
      const then = await restarted.accept(url, body, wordpressRss.contentType);
      expect(then.topic.fingerprints).to.equal(afterRestart.topic.fingerprints);
      // Other bytes are diffed as ever.
      const edited = await checker.accept(url, Buffer.from(wordpressRss.feed({ ...BASE, title: 'First post' })), wordpressRss.contentType);
      expect(edited.changed).to.equal(true);
    });

    // When the fingerprints were not made from them.
    it('is diffed against the fingerprints kept through a version that could not be diffed, as a process that did not make them diffs it', async () => {
      const checker = new TopicChecker(http(), store, Date.now, bodies);
      const first = await checker.accept(url, Buffer.from(wordpressRss.feed(BASE)), wordpressRss.contentType);
      await store.putTopic(first.topic);
      // The next version labelled with a charset the hub cannot cut (MySQL's name for UTF-8): a
      // change by its bytes, delivered whole, and the fingerprints of the first kept beside its hash.
      const next = Buffer.from(wordpressRss.feed({ ...BASE, added: true }));
      const opaque = await checker.accept(url, next, 'application/rss+xml; charset=utf8mb4');
      expect(opaque.changed).to.equal(true);
      expect(opaque.topic.fingerprints).to.equal(first.topic.fingerprints);
      await store.putTopic(opaque.topic);
      // The same bytes labelled as they should be: what their diff gives, the new post.
      const expected = diffFeed(next, wordpressRss.contentType, opaque.topic.fingerprints)!;
      expect(expected.changedCount).to.equal(1);
      const labelled = await checker.accept(url, next, wordpressRss.contentType);
      expect(labelled.changed).to.equal(true);
      expect(wordpressRss.ids(labelled.content!.body.toString())).to.deep.equal([wordpressRss.added]);
      expect(labelled.topic.fingerprints).to.deep.equal(expected.known);
    });

    it('is diffed when labelled with another charset than the one its fingerprints were made under', async () => {
      const body = Buffer.from(JSON.stringify({ version: 'https://jsonfeed.org/version/1.1', title: 'Café', items: [{ id: '1', title: 'Crème brûlée', content_text: 'Déjà vu' }, { id: '2', title: 'plain', content_text: 'x' }] }));
      const checker = new TopicChecker(http(), store, Date.now, bodies);
      const first = await checker.accept(url, body, 'application/feed+json; charset=utf-8');
      await store.putTopic(first.topic);
      const latin1 = 'application/feed+json; charset=iso-8859-1';
      const expected = diffFeed(body, latin1, first.topic.fingerprints)!;
      expect(expected.changedCount).to.equal(1);
      const relabelled = await checker.accept(url, body, latin1);
      expect(relabelled.changed).to.equal(expected.changedCount > 0);
      expect(relabelled.topic.fingerprints).to.deep.equal(expected.known);
    });
  });
}
