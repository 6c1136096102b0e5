// What a feed's generator writes into an entry that moves without the entry changing: counts of
// what readers did with it. An entry's fingerprint leaves these out, so a feed whose only news is
// a view or a comment notifies nobody; everything its author wrote (title, body, links,
// enclosures, dates, categories) still counts to the byte.
//
// Left out, wherever it sits inside an entry:
//   - Slash (`http://purl.org/rss/1.0/modules/slash/`) `comments` and `hit_parade`: WordPress's
//     RSS 2.0 writes every post's comment count in `slash:comments`, and Slashdot adds the
//     count at each score threshold. A comment is not in the feed; its count moving sent every
//     subscriber the post again, and each new post came with every commented one beside it.
//   - Feed Threading (RFC 4685, `http://purl.org/syndication/thread/1.0`) `total`, and in an Atom
//     feed the entry's `rel="replies"` links: WordPress's Atom puts the count in their
//     `thr:count`, Blogger in their title ('3 Comments'). A replies link points at the comments,
//     not at the entry.
//   - Media RSS (`http://search.yahoo.com/mrss/`) `community`, `statistics` and `starRating`: user
//     ratings, view counts and user tags (Media RSS's own definition of `media:community`).
//     YouTube's channel feeds carry the view count and likes of each video, recomputed at every
//     read: every entry of every YouTube feed changed at every poll.
//   - In a YouTube feed (an Atom root declaring `http://www.youtube.com/xml/schemas/2015`, as
//     www.youtube.com/feeds/videos.xml and the front ends copying it do), each entry's own
//     `updated`: YouTube moves it with those counts (a like, a comment), so with the counts left
//     out every entry still changed at most polls. What a viewer sees of a video is in its
//     title and media:group (title, description, thumbnail, content), which still count; an
//     entry's `updated` in any other feed counts as before.
//   - Feed Rank (`http://purl.org/atompub/rank/1.0`) `rank`: Stack Exchange's question and tag
//     feeds (stackoverflow.com/feeds/…) put each question's and answer's score there, as
//     `<re:rank scheme="https://stackoverflow.com">9</re:rank>`; every vote sent the question to
//     every subscriber again. A rank is by its definition what readers made of an entry.
// Only where the namespace is declared on the root element, as every generator above does, and
// matched by the prefix it declares there, unless that prefix is bound to another namespace
// anywhere below (then it names other elements there); a replies link and YouTube's updated only
// as an entry's own child. A feed that declares none of them costs one look at its root start
// tag, one that does a search of its text for each such prefix.
//
// Three generators write their counts into an entry's text, which no element marks; there only the
// counts' text is left out, in their feeds alone and only where they write it (addCountCuts), so
// the same words written by an author anywhere else still count:
//   - hnrss (hnrss.org's Hacker News feeds, known by their RSS channel's generator 'hnrss v…',
//     their Atom feed's hnrss.org id, or their JSON Feed's description 'Hacker News RSS'): the
//     numbers of a story's closing "Points: N" and "# Comments: N" paragraphs. Every story of a
//     busy list changed at every read.
//   - Discourse (a forum's topic lists: /latest.rss, /top.rss, /c/….rss, /tag/….rss; known by
//     its namespace, `http://www.discourse.org/`, on the root): a topic's closing line of posts
//     and participants ("12 posts - 5 participants", in the forum's language) before the link to
//     the topic. Every reply sent the topic to every subscriber again.
//   - Lemmy (its post feeds, /feeds/c/….xml, /feeds/u/….xml, /feeds/all.xml…, up to 0.19): the
//     score and comment count of the line it opens each post's description with,
//     "submitted by <a…>user</a> to <a…>community</a><br>N points | <a href="P">M comments</a>",
//     where P is the post's own page, as in the item's `comments`. Lemmy names itself nowhere in
//     the feed: it is known by what its feed code (the rss crate's) writes, an RSS root declaring
//     `xmlns:dc="http://purl.org/dc/elements/1.1/"`, a channel with no generator, and each item
//     opening with its title, link and that line. Every vote sent the post to every subscriber.
// Telling them costs any other feed a look at its root start tag and at the first characters of
// its channel's (Atom: feed's) generator or id, and an RSS feed with Lemmy's root and no
// generator one anchored pattern tried at its first item's start; their own feeds, a search of
// each entry's end (Lemmy: a match at its start).
// A feed of any other generator with such counts in its text is compared as before, to the byte.
import { splitName } from './discover.js';
import type { ElementSpan } from './xml-spans.js';

/** A range of an entry left out of its fingerprint: an element, or a count in its text (named COUNT). */
export type Cut = Pick<ElementSpan, 'name' | 'depth' | 'start' | 'end'>;
/** The name of a cut that is a count in an entry's text: no element has it (`#` starts no XML name). */
export const COUNT = '#count';

const SLASH_NS = 'http://purl.org/rss/1.0/modules/slash/';
const THREAD_NS = 'http://purl.org/syndication/thread/1.0';
/** Media RSS, also as it is often declared, without its final slash. */
const MRSS_NS = new Set(['http://search.yahoo.com/mrss/', 'http://search.yahoo.com/mrss']);
/** YouTube's own elements (yt:videoId, yt:channelId): declared, it marks the feed as YouTube's. */
const YOUTUBE_NS = 'http://www.youtube.com/xml/schemas/2015';
/** Feed Rank, an Atom extension draft; Stack Exchange's feeds write an entry's score in its `rank`. */
const RANK_NS = 'http://purl.org/atompub/rank/1.0';

export interface VolatileParts {
  /** Qualified names of the elements to leave out (the scanner reports them at any depth). */
  names: ReadonlySet<string>;
  /** The Atom link element's qualified name when its `rel="replies"` links are left out, else null. */
  repliesLink: string | null;
  /**
   * The Atom updated element's qualified name when an entry's own is left out (a YouTube feed),
   * else null. Newer than the rest: an entry whose fingerprint an older build made with it is
   * known by that fingerprint too (entries.ts, `formerly`).
   */
  entryUpdated: string | null;
  /**
   * The qualified names of Feed Rank's `rank` among `names`. Newer than the rest, as
   * `entryUpdated` is (entries.ts, `formerly`).
   */
  ranks: ReadonlySet<string>;
}

const DECLARATION = /[ \t\r\n]xmlns:([^ \t\r\n=]+)[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')/g;

/** The namespaces a start tag declares under a prefix, in order: [prefix, URI]. */
export function* prefixedNamespaces(tag: string): Generator<[string, string]> {
  for (const m of tag.matchAll(DECLARATION)) yield [m[1]!, (m[2] ?? m[3] ?? '').trim()];
}

/**
 * Declarations of these namespaces on the root that are looked at; the rest are left alone (their
 * elements compared to the byte). Each costs a search of the whole document: a feed whose root
 * declared the Slash namespace under 20,000 prefixes (52 KB gzipped) held the hub's one thread
 * 9 s at every read. A generator declares each once.
 */
const MAX_DECLARATIONS = 16;

/** What to leave out of the entries of document `s`, whose root start tag is `rootTag`; null for nothing. */
export function volatileParts(s: string, rootTag: string): VolatileParts | null {
  if (!rootTag.includes('xmlns:')) return null;
  const names = new Set<string>();
  const ranks = new Set<string>();
  let thread = false;
  let youtube = false;
  let looked = 0;
  for (const [prefix, uri] of prefixedNamespaces(rootTag)) {
    if (uri === YOUTUBE_NS) youtube = true;
    if (uri !== SLASH_NS && uri !== THREAD_NS && uri !== RANK_NS && !MRSS_NS.has(uri)) continue;
    if (++looked > MAX_DECLARATIONS) break;
    // A prefix bound again below the root to another namespace names other elements there
    // (an entry's own `s:comments`): its elements are compared to the byte, as before.
    if (reboundElsewhere(s, prefix, uri)) continue;
    if (uri === SLASH_NS) {
      names.add(`${prefix}:comments`).add(`${prefix}:hit_parade`);
    } else if (uri === THREAD_NS) {
      names.add(`${prefix}:total`);
      thread = true;
    } else if (uri === RANK_NS) {
      names.add(`${prefix}:rank`);
      ranks.add(`${prefix}:rank`);
    } else if (MRSS_NS.has(uri)) {
      names.add(`${prefix}:community`).add(`${prefix}:statistics`).add(`${prefix}:starRating`);
    }
  }
  let repliesLink: string | null = null;
  let entryUpdated: string | null = null;
  const root = splitName(/^<([^ \t\r\n/>]+)/.exec(rootTag)?.[1] ?? '');
  const own = (local: string): string => (root.prefix === '' ? local : `${root.prefix}:${local}`);
  if (thread && root.local === 'feed') {
    repliesLink = own('link');
    names.add(repliesLink);
  }
  if (youtube && root.local === 'feed') {
    entryUpdated = own('updated');
    names.add(entryUpdated);
  }
  return names.size === 0 ? null : { names, repliesLink, entryUpdated, ranks };
}

/** The rest of a namespace declaration after its name: `="uri"`, the URI in group 1 or 2. */
const DECLARED_AS = /[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')/y;

/** Whether `prefix` is declared anywhere in `s` (the root's own declaration among them) with a namespace other than `uri`. */
function reboundElsewhere(s: string, prefix: string, uri: string): boolean {
  const declaration = `xmlns:${prefix}`;
  for (let i = s.indexOf(declaration); i >= 0; i = s.indexOf(declaration, i + 1)) {
    DECLARED_AS.lastIndex = i + declaration.length;
    const m = DECLARED_AS.exec(s); // null for a longer prefix (`xmlns:slashdot=`) or mere text
    // One quoted in CDATA is taken for a declaration too: the entries are then compared whole.
    if (m !== null && (m[1] ?? m[2] ?? '').trim() !== uri) return true;
  }
  return false;
}

/**
 * An attribute and its quoted value, from the start of the white space before it. Tried from
 * within that white space too, as it was, a start tag of 40 KB of spaces and no attribute cost a
 * second of the hub's one thread (the square of its length: a 1 MB one, minutes) at every read.
 */
const ATTRIBUTE = /(?<![ \t\r\n])[ \t\r\n]+([^ \t\r\n=/>]+)[ \t\r\n]*=[ \t\r\n]*("[^"]*"|'[^']*')/g;

/** Whether `el`, an element of `s` the scanner reported for one of `parts.names`, is left out. */
export function isVolatile(s: string, el: ElementSpan, parts: VolatileParts): boolean {
  // An entry's own (the feed's, at depth 1, is no entry's; one deeper is the author's markup).
  if (el.name === parts.entryUpdated) return el.depth === 2;
  if (el.name !== parts.repliesLink) return true;
  // Only an entry's own links (RFC 4685 puts them there), not a link in its XHTML content.
  if (el.depth !== 2) return false;
  // Attribute by attribute, so that a `rel="replies"` quoted in another attribute's value is not taken for one.
  for (const m of s.slice(el.start, el.contentStart).matchAll(ATTRIBUTE)) {
    if (m[1] === 'rel') return m[2]!.slice(1, -1).trim() === 'replies';
  }
  return false;
}

/** Generators that write their counts into an entry's text, where no element of theirs holds them. */
export type CountsInText = 'hnrss' | 'discourse' | 'lemmy';

/** Discourse's own elements (discourse:topicPinned…), declared on the root of each of its topic lists. */
const DISCOURSE_NS = 'http://www.discourse.org/';

/** 'discourse' when root start tag `rootTag` declares Discourse's namespace, else null. */
export function countsOfRoot(rootTag: string): CountsInText | null {
  if (!rootTag.includes('discourse.org')) return null;
  for (const [, uri] of prefixedNamespaces(rootTag)) if (uri === DISCOURSE_NS) return 'discourse';
  return null;
}

/**
 * Whether `el`, a child of an RSS channel or of an Atom feed whose local name is `local`, says hnrss
 * made the feed: its RSS channel's generator ('hnrss v2.1'), or its Atom feed's id, the feed's own
 * hnrss.org address, which it writes there whoever runs it (its Atom has no generator).
 */
export function namesHnrss(s: string, el: ElementSpan, local: string): boolean {
  if (local === 'generator') return s.startsWith('hnrss ', el.contentStart);
  if (local === 'id') return s.startsWith('https://hnrss.org/', el.contentStart);
  return false;
}

/**
 * Whether root start tag `rootTag` is as Lemmy's feeds write it: RSS, declaring Dublin Core under
 * `dc` just so (the rss crate writes every declaration in double quotes). With a channel that
 * has no generator, the feed may be Lemmy's, which each item's start then says (addCountCuts).
 */
export function mayBeLemmy(rootTag: string): boolean {
  return rootTag.startsWith('<rss') && rootTag.includes(' xmlns:dc="http://purl.org/dc/elements/1.1/"');
}

/**
 * hnrss's last lines of an entry's description or content, at the `<p>Points: ` found last: its
 * CDATA section closed by that element (with `description=0` an item has none, and a title's
 * CDATA could end in the same words).
 */
const HNRSS_COUNTS = /<p>Points: (-?\d+)<\/p>[ \t\r\n]*<p># Comments: (\d+)<\/p>[ \t\r\n]*\]\]><\/(?:description|content)>/y;
/**
 * What follows Discourse's count line: the link to the topic (group 1), the last line of the
 * description. Its posts feed (/posts.rss) declares the same namespace and has no such line,
 * but a post of its own may end alike: the link must be the item's own `link` (addCountCuts).
 */
const DISCOURSE_TAIL = /<\/small><\/p>[ \t\r\n]*<p><a href="([^"<]*)">[^<]*<\/a><\/p>[ \t\r\n]*\]\]><\/description>/y;
/**
 * How Lemmy (to 0.19) opens each post: title, link, then the description's first line, the score
 * (group 1, below zero too), the post's page (2) and its comment count (3). Nothing but a tag's
 * own text between tags, so a try at an item of any other feed stops within its title or link.
 */
const LEMMY_HEAD =
  /<item><title>[^<]*<\/title><link>[^<]*<\/link><description><!\[CDATA\[submitted by <a href="[^"<]*">[^<]*<\/a> to <a href="[^"<]*">[^<]*<\/a><br>(-?\d+) points \| <a href="([^"<]*)">(\d+) comments<\/a>/y;
/** Longer than any count line Discourse writes, in any language. */
const MAX_COUNT_LINE = 200;

/**
 * Adds to `cuts` the counts `generator` wrote into `entry`, an entry of document `s`, and says
 * whether it found them: only where the generator writes them (last in the entry's text, or
 * Lemmy's first), so the same words an author wrote anywhere else in it are still the entry.
 *   - hnrss ends each story's description (Atom: content) with `<p>Points: N</p>` and
 *     `<p># Comments: N</p>`, then closes its CDATA section: the two numbers are left out.
 *   - Discourse ends each topic's description with `<p><small>N posts - M participants</small></p>`
 *     (in the site's language), then a paragraph linking the topic (the item's own link), then closes
 *     it: the line's text is left out, when a number stands on each side of its ` - `.
 *   - Lemmy opens each post's description with a line ending `N points | <a href="P">M comments</a>`
 *     (LEMMY_HEAD): the two numbers are left out, when P is the item's own `comments`.
 */
export function addCountCuts(s: string, entry: ElementSpan, generator: CountsInText, cuts: Cut[]): boolean {
  if (generator === 'lemmy') {
    // Tried on the document at the entry's start; no tag's text crosses a `<`, so a match ends
    // within the item's description.
    LEMMY_HEAD.lastIndex = entry.start;
    const m = LEMMY_HEAD.exec(s);
    const end = LEMMY_HEAD.lastIndex;
    if (m === null || end > entry.end || !s.slice(end, entry.end).includes(`<comments>${m[2]!}</comments>`)) return false;
    // Counted back from the match's end: the post's link before it may hold the same words.
    const score = end - ' comments</a>'.length - m[3]!.length - '">'.length - m[2]!.length - ' points | <a href="'.length;
    cuts.push({ name: COUNT, depth: -1, start: score - m[1]!.length, end: score });
    const comments = end - ' comments</a>'.length;
    cuts.push({ name: COUNT, depth: -1, start: comments - m[3]!.length, end: comments });
    return true;
  }
  // A view of the entry's text (V8 copies nothing): every search below stays within the entry.
  const text = s.slice(entry.start, entry.end);
  const cut = (from: number, to: number): void => {
    cuts.push({ name: COUNT, depth: -1, start: entry.start + from, end: entry.start + to });
  };
  if (generator === 'hnrss') {
    const at = text.lastIndexOf('<p>Points: ');
    if (at < 0) return false;
    HNRSS_COUNTS.lastIndex = at;
    const m = HNRSS_COUNTS.exec(text);
    if (m === null) return false;
    const points = at + '<p>Points: '.length;
    cut(points, points + m[1]!.length);
    const comments = text.indexOf('<p># Comments: ', points) + '<p># Comments: '.length;
    cut(comments, comments + m[2]!.length);
    return true;
  }
  const close = text.lastIndexOf('</small></p>');
  if (close < 0) return false;
  const open = text.lastIndexOf('<p><small>', close);
  const from = open + '<p><small>'.length;
  if (open < 0 || close - from > MAX_COUNT_LINE || text.indexOf('<', from) !== close) return false;
  const dash = text.indexOf(' - ', from);
  if (dash < 0 || dash > close || !hasDigit(text, from, dash) || !hasDigit(text, dash + 3, close)) return false;
  DISCOURSE_TAIL.lastIndex = close;
  const tail = DISCOURSE_TAIL.exec(text);
  if (tail === null || !text.includes(`<link>${tail[1]!}</link>`, DISCOURSE_TAIL.lastIndex)) return false;
  cut(from, close);
  return true;
}

/**
 * hnrss's JSON Feed (hnrss.org/newest.jsonfeed…) says who made it only by the description it
 * writes into every one; its items' `content_html` ends with the same two paragraphs as its RSS
 * descriptions (no CDATA there: the string closes them).
 */
const HNRSS_JSON_DESCRIPTION = 'Hacker News RSS';
const HNRSS_JSON_COUNTS = /<p>Points: (-?\d+)<\/p>[ \t\r\n]*<p># Comments: (\d+)<\/p>[ \t\r\n]*$/d;

/** Whether `feed`, a JSON Feed's top-level object, is hnrss's. */
export function isHnrssJsonFeed(feed: Record<string, unknown>): boolean {
  return feed['description'] === HNRSS_JSON_DESCRIPTION;
}

/**
 * An item of hnrss's JSON Feed without the numbers of its closing points and comment count (a
 * copy), or the item itself when its `content_html` does not end with them.
 */
export function withoutHnrssJsonCounts(item: Record<string, unknown>): Record<string, unknown> {
  const html = item['content_html'];
  if (typeof html !== 'string') return item;
  const m = HNRSS_JSON_COUNTS.exec(html);
  const [points, comments] = [m?.indices?.[1], m?.indices?.[2]];
  if (points === undefined || comments === undefined) return item;
  return { ...item, content_html: html.slice(0, points[0]) + html.slice(points[1], comments[0]) + html.slice(comments[1]) };
}

function hasDigit(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) return true;
  }
  return false;
}
