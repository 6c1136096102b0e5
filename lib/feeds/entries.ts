// Entries: what a feed contains, entry by entry, and what changed since the last version.
//
// The hub uses this to
//   - decide whether a topic really changed: a new version that alters no entry (a fresh
//     lastBuildDate, ttl or feed-level <updated> alone) is not an update;
//   - send WebSub subscribers only the new or changed entries, wrapped in the feed's own envelope
//     (W3C WebSub §7 allows this for Atom and RSS);
//   - show browsers a feed's entries as JSON.
//
// An entry is an RSS item (and a podcast's liveItem: liveItemName), an RSS 1.0 item, an Atom
// entry or a JSON Feed item. Every entry gets a fingerprint: the hash of its exact bytes (XML) or
// of its canonical JSON (JSON Feed), so any change inside an entry counts and nothing outside one
// does, but for the counts of views, votes and comments some generators write into their entries
// (in elements of their own, or in the text, as hnrss, Discourse and Lemmy do), and the time
// YouTube moves with them (volatile.ts), which are left out.
// An entry is reported when its fingerprint is not among those kept with the topic: the previous
// version's, and those of entries read recently but gone from it since (withRemembered), so that
// an entry that leaves the feed and comes back is no news. Deciding that
// needs no parsing: an entry is read (its id, title, link...; a full XML parse each) only when
// something asks for it, a browser's stream or another hub process, and only the reported ones,
// from the partial feed that holds just them. A fingerprint is the first FINGERPRINT_CHARS hex digits of the sha256;
// older builds stored 16 (and before that `${idHash}:${contentHash}`): only the first
// FINGERPRINT_CHARS of their content part are compared, which is the same sha256 prefix, and
// since the id was read from those same bytes, the comparison gives the same answer.
//
// A feed is never re-serialised: xml-spans.ts and json-spans.ts find the byte ranges of the
// entries, and a partial feed is the original bytes minus the ranges of the unchanged entries.
// Scanning a latin1 view of the bytes makes string offsets byte offsets, so any ASCII-compatible
// encoding (UTF-8, ISO-8859-*, windows-125*) is cut exactly; other encodings (UTF-16,
// Shift_JIS...) are not diffed.
//
// Like discover.ts this reads untrusted input: it never throws, bounds its work (10 MB at most,
// MAX_DIFF_ENTRIES entries, a linear scanner, nesting limits) and refuses any document with a
// DOCTYPE. Whenever it returns null the hub falls back to whole-body change detection and
// delivery, which is always correct.
import { createHash, hash } from 'node:crypto';
import {
  JsonBody,
  attr,
  attributes,
  children,
  elementName,
  formatFromContentType,
  isJsonFeed,
  localName,
  relTokens,
  sniffFormat,
  splitName,
  textOf,
  withNamespaces,
  xmlParser,
  type Namespaces,
  type XNode,
} from './discover.js';
import { decodeBytes, mediaType } from '../media-type.js';
import { jsonItemSpans } from './json-spans.js';
import { COUNT, addCountCuts, countsOfRoot, isHnrssJsonFeed, isVolatile, mayBeLemmy, namesHnrss, prefixedNamespaces, volatileParts, withoutHnrssJsonCounts, type CountsInText, type Cut } from './volatile.js';
import { isWsCode, rootStartTag, scanXml, type ElementSpan } from './xml-spans.js';

export type DiffableFormat = 'rss' | 'rdf' | 'atom' | 'json';

export interface FeedEntry {
  id: string;
  title: string | null;
  link: string | null;
  published: string | null;
  summary: string | null;
}

export interface FeedDiff {
  format: DiffableFormat;
  /** One per entry of the current version, in document order: FINGERPRINT_CHARS hex chars of the sha256 of its content. */
  fingerprints: string[];
  /**
   * What the hub stores with the topic to diff the next version against: `fingerprints`, then
   * those of entries `previous` knew that this version no longer lists, most recently read first,
   * at most rememberedLimit() of them (see withRemembered). `fingerprints` itself when there are none.
   */
  known: string[];
  /** How many entries are new or changed since `previous` (all of them without one). */
  changedCount: number;
  /**
   * Those entries, in document order, read at each call from `body` (itself a feed of just
   * those entries), which is all it holds: not the whole feed, which a change event waiting in
   * the streams' backlog would otherwise keep. Null when one does not parse (the scanner
   * accepts a few things fast-xml-parser refuses).
   */
  changed(): FeedEntry[] | null;
  /** The feed with only the changed entries: for XML the exact original bytes of everything outside the entries (prolog, envelope, channel metadata) and the exact original bytes of each kept entry; for JSON Feed the exact original bytes with the unchanged items (and any item that is not an object) cut out of its `items` array. When previous is undefined, the original body unchanged. */
  body: Buffer;
}

/**
 * Hex digits of an entry's sha256 kept as its fingerprint (48 bits: entries are only ever
 * compared with the previous version's entries of the same feed). Not more: V8 makes a
 * substring of 13 characters or more a view that keeps the whole 64-character digest alive,
 * which tripled what every stored fingerprint costs the embedded store's memory.
 */
export const FINGERPRINT_CHARS = 12;

/** Bodies larger than this are not diffed. */
export const MAX_DIFF_BODY = 10 * 1024 * 1024;
/**
 * Feeds with more entries than this are not diffed. Each entry costs a hash on every read and
 * a fingerprint kept with the topic: a few megabytes of tiny entries were half a second of
 * blocked event loop per read and tens of megabytes of heap. Real feeds rarely come near it
 * (a long podcast archive may); past it the feed is compared by its bytes and delivered whole.
 */
export const MAX_DIFF_ENTRIES = 2000;
/**
 * The fewest, and the most, fingerprints of entries gone from a feed that a topic remembers
 * beside those of its current entries (see withRemembered): at most as many as the feed now
 * lists, but never fewer than the floor (a feed of 5 entries whose page flips between two sets
 * still needs a few) nor more than the cap. A topic's fingerprints thus at most double for a feed
 * of 20 entries or more (~42 bytes each on the embedded store: a 20-entry topic of ~1,460 B was
 * measured at ~2,310 B once 20 more had dropped out, ×1.6), and a feed of MAX_DIFF_ENTRIES grows
 * by a quarter, not twice (~20 KB more than its ~80 KB of fingerprints): entries that come back
 * do so from near the cut-off or from an older copy of the feed, a handful at a time, not by the
 * thousand.
 */
export const REMEMBERED_FLOOR = 20;
export const REMEMBERED_CAP = 500;
/** Summaries taken from full content are cut to this many characters. */
const SUMMARY_FROM_CONTENT_CHARS = 500;
const MAX_XML_DEPTH = 256;

const DC_NS = 'http://purl.org/dc/elements/1.1/';
const CONTENT_NS = 'http://purl.org/rss/1.0/modules/content/';
const RDF_NS = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
/** The Podcast Namespace, and the address it was first published at, which feeds still declare. */
const PODCAST_NS = new Set(['https://podcastindex.org/namespace/1.0', 'https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md']);

// Types whose body is sniffed when they do not name a feed format themselves.
const SNIFFED_TYPES = new Set(['', 'text/xml', 'application/xml', 'text/plain', 'application/octet-stream']);

// Encodings in which a byte below 0x80 is always that ASCII character, so markup found in a latin1
// view of the bytes is real markup and cutting at it cannot split a character.
const ASCII_COMPATIBLE =
  /^(?:utf-?8|unicode-1-1-utf-8|us-ascii|ascii|iso[-_]?8859-(?:[1-9]|1[0-6])|iso8859-?(?:[1-9]|1[0-6])|latin-?[1-6]|l[1-6]|windows-125[0-8]|cp125[0-8]|x-cp125[0-8])$/i;

// ---------------------------------------------------------------------------------------
// The entry points

/**
 * Diffs a topic's current content against the fingerprints of its previous version.
 * null when the content is not a feed we can diff (unknown type, broken XML/JSON, DOCTYPE present,
 * no entries container, unsupported encoding, over 10 MB): the hub then falls back to whole-body
 * MD5 change detection and delivers the body whole. Never throws.
 */
export function diffFeed(body: Buffer, contentType: string, previous: string[] | undefined): FeedDiff | null {
  try {
    const feed = analyse(body, contentType);
    if (feed === null) return null;
    // Every fingerprint stored with the topic is known: the previous version's entries and the
    // ones remembered beside them alike (a build that knows nothing of remembering reads them so
    // too). An entry is new only when its own fingerprint, or one an older build gave it, is none
    // of them: so a remembered fingerprint hides only an entry with those exact bytes, never a
    // new entry or an edited one (the one exception: an edit reverted to a text read before, which
    // is remembered, is not delivered again).
    const seen = new Set<string>();
    if (Array.isArray(previous)) for (const p of previous) if (typeof p === 'string') seen.add(comparable(p));
    // Stored fingerprints in an older build's form that an entry of this version was found under:
    // that entry is current, not gone, so they are not remembered (its own form is stored).
    const former = new Set<string>();
    const isNew = (fp: string, i: number): boolean => {
      if (seen.has(fp)) return false;
      if (seen.size === 0) return true;
      let found = false;
      for (const f of feed.formerly(i)) {
        if (seen.has(f)) {
          former.add(f);
          found = true;
        }
      }
      return !found;
    };
    const keep = feed.fingerprints.map((fp, i) => previous === undefined || isNew(fp, i));
    let changedCount = 0;
    for (const k of keep) if (k) changedCount++;
    const partial = previous === undefined ? body : feed.partial(keep);
    return withChanged(
      {
        format: feed.format,
        fingerprints: feed.fingerprints,
        known: Array.isArray(previous) ? withRemembered(feed.fingerprints, previous, former) : feed.fingerprints,
        changedCount,
        body: partial,
      },
      contentType,
    );
  } catch {
    return null;
  }
}

/** The entries of a feed, in document order; null when diffFeed would return null or one does not parse. Never throws. */
export function parseEntries(body: Buffer, contentType: string): { format: DiffableFormat; entries: FeedEntry[] } | null {
  const feed = safely(() => analyse(body, contentType));
  const entries = feed && safely(() => feed.entries());
  return feed && entries ? { format: feed.format, entries } : null;
}

/** A diff given the reader of its changed entries, which `body` (the partial feed) holds: also for a diff made on another thread. */
export function withChanged(diff: Omit<FeedDiff, 'changed'>, contentType: string): FeedDiff {
  return { ...diff, changed: entriesOf(diff.body, contentType) };
}

/** Reads the entries of `body` when called; made apart from the diff so that it holds nothing else (not its fingerprint lists). */
function entriesOf(body: Buffer, contentType: string): () => FeedEntry[] | null {
  return () => parseEntries(body, contentType)?.entries ?? null;
}

/** How many fingerprints of entries gone from the feed a topic remembers beside `current` of its current entries. */
export function rememberedLimit(current: number): number {
  return Math.min(REMEMBERED_CAP, Math.max(REMEMBERED_FLOOR, current));
}

/**
 * The fingerprints a topic keeps after a read that found `current` (one per entry, in document
 * order): those, then the ones `previous` (what it kept before) held that `current` does not and
 * no entry was found under in an older form (`former`), in `previous`'s order, at most
 * rememberedLimit(current.length) of them. `previous` is itself current-then-remembered, so the
 * entries that dropped out at this read come first, then those gone longer, most recently read
 * first; the oldest fall off the end. Remembered ones are kept in this build's form.
 *
 * Why: an entry that leaves a feed and comes back was sent to every subscriber again as new:
 * a CDN or load balancer whose nodes serve an older and a newer copy by turns (each flip back to
 * the newer copy re-delivered its newest entry), a front-page feed whose entries hover around its
 * cut-off, a generator whose page size or order wobbles.
 *
 * Why in the same list: no new field, so no migration of either store (a field of its own would
 * have read more plainly, but needed a column on PostgreSQL); and a build from before this one,
 * started on the same data after a rollback, reads the remembered fingerprints as entries it
 * knows, which they are, so its next read answers as this build's would (it then stores only its
 * current ones). A field of its own it would have ignored, delivering the returning entries again.
 * Comparing with up to twice as many 48-bit fingerprints leaves the odds of a new entry colliding
 * with a known one negligible (about 2^-48 per pair, as before).
 *
 * What it gives up: an entry edited and then edited back (A, then B, then A again) is not
 * delivered the second time its text is A, since A is remembered. One that comes back after its
 * fingerprint fell off the end is delivered again, as every returning entry was before: so after
 * a version listing far fewer entries than the last (a page of 1 between pages of 50), those past
 * the bound are. A fat ping carrying only its new entries leaves the others remembered, so the
 * next read delivers again only those past the bound (all of them, before).
 */
function withRemembered(current: string[], previous: readonly unknown[], former: ReadonlySet<string>): string[] {
  const limit = rememberedLimit(current.length);
  const skip = new Set<string>(current);
  for (const f of former) skip.add(f);
  let out: string[] | null = null;
  let remembered = 0;
  for (const p of previous) {
    if (remembered >= limit) break;
    if (typeof p !== 'string') continue;
    const fp = comparable(p);
    if (fp === '' || skip.has(fp)) continue;
    skip.add(fp);
    (out ??= current.slice()).push(fp);
    remembered++;
  }
  return out ?? current;
}

/** A stored fingerprint as this build makes them: the content hash (after the id hash of the oldest form), cut to FINGERPRINT_CHARS. */
function comparable(fingerprint: string): string {
  return fingerprint.slice(fingerprint.lastIndexOf(':') + 1).slice(0, FINGERPRINT_CHARS);
}

function safely<T>(read: () => T | null): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Common

interface Analysed {
  format: DiffableFormat;
  fingerprints: string[];
  /**
   * The fingerprints entry `i` had under older builds, when they differ from the one it has now:
   * before volatile.ts left parts of it out (of its exact bytes), before it left out YouTube's
   * entry `updated` (its bytes less the elements but that one), before it left out the counts
   * hnrss and Discourse write in the text (its bytes less the elements: the exact bytes for their
   * feeds, which have none), and before it left out Stack Exchange's rank and Lemmy's counts.
   * An entry stored by an older build under one of these is no new entry: without them, the
   * first read after an upgrade sent every WordPress, YouTube, hnrss, Discourse, Stack Exchange
   * and Lemmy feed's entries again. Asked only of an entry not found under its own, so it costs
   * a hash or a few of the new and changed entries alone.
   */
  formerly(i: number): string[];
  /** Reads the entries, a full parse each (so only when asked); null if one does not parse. */
  entries(): FeedEntry[] | null;
  /** The feed with only the entries whose `keep` flag is set (one flag per entry). */
  partial(keep: boolean[]): Buffer;
}

// One-shot hashing: a Hash object per call cost more than the hashing, on every entry of every read.

/** An entry's fingerprint: kept with the topic until its next read. */
function fingerprint(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex').slice(0, FINGERPRINT_CHARS);
}

/** A short hash for what lives only while the entries are read (ids, cache keys). */
function shortHash(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex').slice(0, 16);
}

/** An identity for an entry that has none of its own, from its title and text. */
function hashId(title: string | null, text: string | null): string {
  return `hash:${shortHash(`${title ?? ''}\n${text ?? ''}`)}`;
}

function nonEmpty(s: string | null | undefined): string | null {
  if (typeof s !== 'string') return null;
  const t = s.trim();
  return t === '' ? null : t;
}

/** The first SUMMARY_FROM_CONTENT_CHARS UTF-16 units of s, without splitting a surrogate pair. */
function clip(s: string | null): string | null {
  if (s === null || s.length <= SUMMARY_FROM_CONTENT_CHARS) return s;
  let cut = SUMMARY_FROM_CONTENT_CHARS;
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return s.slice(0, cut);
}

function analyse(body: Buffer, contentType: string): Analysed | null {
  if (!(body instanceof Uint8Array) || body.length > MAX_DIFF_BODY) return null;
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const { type, charset } = mediaType(typeof contentType === 'string' ? contentType : '');

  let text: string | null = null;
  const json = new JsonBody(() => (text ??= decodeBytes(bytes, charset)));
  let format = formatFromContentType(type, json);
  // An HTML type is sniffed too: a feed made by a script often goes out as PHP's default type,
  // and sites.ts (isHtmlPage) already takes such a body for the feed it is; left undiffed, a new
  // lastBuildDate alone delivered it whole. A real page sniffs as 'html', which is not diffed.
  if ((format === null && SNIFFED_TYPES.has(type)) || format === 'html') {
    const head = bytes.subarray(0, 64 * 1024).toString('latin1');
    format = sniffFormat(head.startsWith('\u00EF\u00BB\u00BF') ? head.slice(3) : head, json);
  }
  switch (format) {
    case 'rss':
    case 'rdf':
    case 'atom':
      return analyseXml(bytes, charset);
    case 'json':
      return analyseJson(bytes, charset, json.get());
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------------------
// XML: RSS 2.0, RSS 1.0 (RDF), Atom

/** The label to decode the document's text with, or null if its encoding is not ASCII-compatible. `latin1` is the bytes read as latin1, which the caller scans anyway: its head is read here without a copy. */
function xmlCharset(bytes: Buffer, headerCharset: string, latin1: string): string | null {
  const b0 = bytes[0];
  const b1 = bytes[1];
  if ((b0 === 0xfe && b1 === 0xff) || (b0 === 0xff && b1 === 0xfe)) return null; // UTF-16
  if (b0 === 0 || b1 === 0) return null; // UTF-16/32 without a BOM
  const bom = b0 === 0xef && b1 === 0xbb && bytes[2] === 0xbf;
  const head = latin1.slice(bom ? 3 : 0, 512);
  const declared = /^<\?xml[ \t\r\n][^>]*?encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z0-9._:-]+)["']/.exec(head)?.[1] ?? '';
  for (const label of [headerCharset, declared]) {
    if (label !== '' && !ASCII_COMPATIBLE.test(label)) return null;
  }
  if (bom) return 'utf-8';
  return headerCharset || declared || 'utf-8';
}

type XmlKind = 'rss' | 'rdf' | 'atom';

/**
 * The qualified name of the Podcast Namespace's `liveItem` when the root declares that namespace,
 * else null. A podcast's live show is one, a child of its channel beside the items: it says the
 * show will stream (status="pending"), is streaming ("live") or has ("ended"), and listeners'
 * apps offer to tune in when it goes live. Taken for an entry, so that news of it is news: left
 * in the envelope, a show going live told nobody. Only the item and liveItem are an RSS
 * channel's entries; everything else in it is the feed's own metadata.
 */
function liveItemName(rootTag: string): string | null {
  if (!rootTag.includes('odcast')) return null;
  for (const [prefix, uri] of prefixedNamespaces(rootTag)) {
    if (PODCAST_NS.has(uri)) return `${prefix}:liveItem`;
  }
  return null;
}

function kindOfRoot(name: string): XmlKind | null {
  switch (localName(name).toLowerCase()) {
    case 'rss':
      return 'rss';
    case 'rdf':
      return 'rdf';
    case 'feed':
      return 'atom';
    default:
      return null;
  }
}

/** The element node of a parsed fragment, with its name. */
function parseElement(xml: string): { node: XNode; name: string } | null {
  const doc: unknown = xmlParser.parse(xml);
  if (!Array.isArray(doc)) return null;
  for (const item of doc as unknown[]) {
    if (item === null || typeof item !== 'object') continue;
    const name = elementName(item as XNode);
    if (name !== null) return { node: item as XNode, name };
  }
  return null;
}

/** Resolves `ref` against `base` when that gives an absolute URL; otherwise `fallback`. */
function resolveAgainst(ref: string, base: string | null, fallback: string | null): string | null {
  try {
    return base === null ? new URL(ref).href : new URL(ref, base).href;
  } catch {
    return fallback;
  }
}

/**
 * Contexts by the hash of the root start tag they come from, bounded, the oldest forgotten
 * first: a context is a pure function of its key, so a hit is exactly what reading would give.
 */
const CONTEXTS = new Map<string, XmlContext>();
const MAX_CONTEXTS = 1024;

/** Context an entry is read in: namespaces and xml:base in scope at the root. */
interface XmlContext {
  kind: XmlKind;
  ns: Namespaces;
  base: string | null;
}

function analyseXml(bytes: Buffer, headerCharset: string): Analysed | null {
  const s = bytes.toString('latin1'); // one character per byte: offsets are byte offsets
  const charset = xmlCharset(bytes, headerCharset, s);
  if (charset === null) return null;

  let kind: XmlKind | null | undefined;
  let hasContainer = false;
  const spans: ElementSpan[] = [];
  const rootTag = rootStartTag(s);
  const volatile = rootTag === null ? null : volatileParts(s, rootTag);
  const liveItem = rootTag === null ? null : liveItemName(rootTag);
  // Discourse is known by its root, hnrss by an element of its channel or feed (namesHnrss), Lemmy
  // by its root and its channel's having no generator (mayBeLemmy), then by each item's start.
  let counts: CountsInText | null = rootTag === null ? null : countsOfRoot(rootTag);
  let hasGenerator = false;
  const cuts: Cut[] = [];
  const root = scanXml(
    s,
    (el, ancestors) => {
      const rootName = ancestors[0];
      if (rootName === undefined) return; // the root itself
      // Past depth 2 the scanner reports only these.
      if (volatile !== null && (el.depth > 2 || volatile.names.has(el.name))) {
        if (isVolatile(s, el, volatile)) cuts.push(el);
        return;
      }
      kind ??= kindOfRoot(rootName);
      if (el.depth === 1) {
        const local = localName(el.name);
        if (kind === 'rss') {
          if (local === 'channel') hasContainer = true;
        } else if ((kind === 'rdf' && local === 'item') || (kind === 'atom' && local === 'entry')) {
          spans.push(el);
        } else if (kind === 'atom' && namesHnrss(s, el, local)) {
          counts = 'hnrss';
        }
      } else if (el.depth === 2 && kind === 'rss') {
        const parent = ancestors[1];
        if (parent !== undefined && localName(parent) === 'channel') {
          const local = localName(el.name);
          if (local === 'item' || el.name === liveItem) spans.push(el);
          else {
            if (local === 'generator') hasGenerator = true;
            if (namesHnrss(s, el, local)) counts = 'hnrss';
          }
        }
      }
      return spans.length <= MAX_DIFF_ENTRIES;
    },
    MAX_XML_DEPTH,
    2, // the root's children, and an RSS channel's items
    volatile?.names,
  );
  if (root === null) return null;
  kind = kindOfRoot(root.name);
  if (kind === null) return null;
  if (kind !== 'rss') hasContainer = true;
  if (!hasContainer) return null;

  const decode = (from: number, to: number): string => decodeBytes(bytes.subarray(from, to), charset);
  const xmlKind = kind;
  const readContext = (): XmlContext | null => {
    // The root's start tag gives the namespaces and xml:base every entry is read in.
    const startTag = decode(root.start, root.contentStart);
    const rootXml = root.contentStart === root.end ? startTag : `${startTag}</${root.name}>`;
    const key = shortHash(`${xmlKind}\n${charset}\n${rootXml}`);
    const known = CONTEXTS.get(key);
    if (known !== undefined) return known;
    const parsedRoot = parseElement(rootXml);
    if (parsedRoot === null) return null;
    const rootAttrs = attributes(parsedRoot.node);
    const rootBase = attr(rootAttrs, 'xml:base');
    const context: XmlContext = {
      kind: xmlKind,
      ns: withNamespaces(new Map(), rootAttrs),
      base: rootBase === null ? null : resolveAgainst(rootBase.trim(), null, null),
    };
    if (CONTEXTS.size >= MAX_CONTEXTS) CONTEXTS.delete(CONTEXTS.keys().next().value as string);
    CONTEXTS.set(key, context);
    return context;
  };

  // Each entry's fingerprint is the hash of its bytes less what its generator recomputes without
  // new content (volatile.ts), the pieces between the cuts hashed in turn: copied into one buffer
  // to be hashed whole, a WordPress feed of 80 KB (a comment count in every entry) cost a copy of
  // all its entries on every read. The scanner reports an element when it closes, so a nested one
  // (statistics inside community) comes before the one holding it: in document order, each is
  // dropped within the cut before it.
  // `cutsOf[i]` is the range of `cuts` inside entry i, when there is one.
  const cutsOf: ([number, number] | undefined)[] = [];
  if (counts === null && kind === 'rss' && !hasGenerator && rootTag !== null && mayBeLemmy(rootTag)) counts = 'lemmy';
  // Lemmy opens every post so: past an item that does not, the feed is some other generator's,
  // whose other items need no try (one try per feed, not per item).
  if (counts !== null) for (const span of spans) if (!addCountCuts(s, span, counts, cuts) && counts === 'lemmy') break;
  cuts.sort((a, b) => a.start - b.start);
  const entryUpdated = volatile?.entryUpdated ?? null;
  const ranks = volatile?.ranks;
  const inText = counts;
  /**
   * The build that began leaving `cut` out, in order: Slash, Feed Threading and Media RSS (1),
   * YouTube's entry updated (2), hnrss's and Discourse's counts in the text (3), Stack Exchange's
   * rank and Lemmy's counts (4).
   */
  const since = (cut: Cut): number => {
    if (cut.name === COUNT) return inText === 'lemmy' ? 4 : 3;
    if (ranks?.has(cut.name) === true) return 4;
    return cut.name === entryUpdated && cut.depth === 2 ? 2 : 1;
  };
  /** The fingerprint of `span` less cuts[from..to), but for those `keep` says to hash after all. */
  const cutPrint = (span: ElementSpan, from: number, to: number, keep?: (cut: Cut) => boolean): string => {
    const digest = createHash('sha256');
    let cursor = span.start;
    for (let k = from; k < to; k++) {
      const cut = cuts[k]!;
      if (cut.start < cursor || keep?.(cut) === true) continue; // within the cut before it, or kept
      digest.update(bytes.subarray(cursor, cut.start));
      cursor = cut.end;
    }
    digest.update(bytes.subarray(cursor, span.end));
    return digest.digest('hex').slice(0, FINGERPRINT_CHARS);
  };
  let c = 0;
  const fingerprints = spans.map((span, i) => {
    while (c < cuts.length && cuts[c]!.start < span.start) c++;
    const from = c;
    while (c < cuts.length && cuts[c]!.end <= span.end) c++;
    if (c === from) return fingerprint(bytes.subarray(span.start, span.end));
    cutsOf[i] = [from, c];
    return cutPrint(span, from, c);
  });

  return {
    format: kind,
    fingerprints,
    formerly: (i) => {
      const span = spans[i];
      const range = cutsOf[i];
      if (span === undefined || range === undefined) return [];
      const former = [fingerprint(bytes.subarray(span.start, span.end))];
      const [from, to] = range;
      // A build kept what it did not know yet: the one before `build` printed the entry less the
      // cuts older than `build`. Those before the oldest kind of cut here, its exact bytes.
      const kinds = new Set<number>();
      for (let k = from; k < to; k++) kinds.add(since(cuts[k]!));
      const newer = [...kinds].sort((a, b) => a - b).slice(1);
      for (const build of newer) former.push(cutPrint(span, from, to, (cut) => since(cut) >= build));
      return former;
    },
    entries(): FeedEntry[] | null {
      const context = spans.length === 0 ? null : readContext();
      const entries: FeedEntry[] = [];
      for (const span of spans) {
        const entry = context && readXmlEntry(decode(span.start, span.end), context);
        if (!entry) return null;
        entries.push(entry);
      }
      return entries;
    },
    partial(keep: boolean[]): Buffer {
      // Everything but the dropped entries, each dropped with the whitespace just before it.
      // Copied range by range into one buffer: a view per kept range, then Buffer.concat, was
      // ~1 KB of garbage on every changed read (a feed of 10 entries, one new).
      const from: number[] = [];
      let cursor = 0;
      let length = 0;
      for (let i = 0; i < spans.length; i++) {
        if (keep[i] === true) continue;
        const span = spans[i]!;
        let cut = span.start;
        while (cut > cursor && isWsCode(s.charCodeAt(cut - 1))) cut--;
        length += cut - cursor;
        from.push(cursor, cut);
        cursor = span.end;
      }
      from.push(cursor, bytes.length);
      length += bytes.length - cursor;
      const out = Buffer.allocUnsafe(length);
      let o = 0;
      for (let k = 0; k < from.length; k += 2) o += bytes.copy(out, o, from[k], from[k + 1]);
      return out;
    },
  };
}

interface Child {
  node: XNode;
  name: string;
}

/** Finds an entry's child elements. */
interface EntryReader {
  /** The first child in the feed format's own vocabulary with this local name. */
  own(local: string): Child | undefined;
  /** All such children. */
  ownAll(local: string): Child[];
  /** The first child in a module's namespace (or with its usual prefix, undeclared). */
  module(uri: string, usualPrefix: string, local: string): Child | undefined;
  /** A child's text content, entities decoded, CDATA as is, trimmed; null when empty. */
  text(el: Child | undefined): string | null;
}

/** Reads one entry (an RSS item or an Atom entry) from its exact text; null if it does not parse. */
function readXmlEntry(xml: string, context: XmlContext): FeedEntry | null {
  const parsed = parseElement(xml);
  if (parsed === null) return null;
  const { node, name } = parsed;
  const attrs = attributes(node);
  const ns = withNamespaces(context.ns, attrs);
  // The feed format's own elements share the entry's prefix (none for RSS 2.0, and usually none
  // for RSS 1.0 and Atom); module elements are recognised by namespace, or by their usual prefix
  // when it is not declared.
  // A podcast's liveItem holds the elements of an RSS item (title, guid, enclosure), unprefixed.
  const ownPrefix = context.kind === 'rss' && localName(name) === 'liveItem' ? '' : splitName(name).prefix;
  const kids: { child: Child; prefix: string; local: string }[] = [];
  for (const kid of children(node, name)) {
    const kidName = elementName(kid);
    if (kidName !== null) kids.push({ child: { node: kid, name: kidName }, ...splitName(kidName) });
  }
  const reader: EntryReader = {
    own: (local) => kids.find((k) => k.prefix === ownPrefix && k.local === local)?.child,
    ownAll: (local) => kids.filter((k) => k.prefix === ownPrefix && k.local === local).map((k) => k.child),
    module: (uri, usualPrefix, local) =>
      kids.find(
        (k) => k.local === local && k.prefix !== '' && (ns.get(k.prefix) === uri || (!ns.has(k.prefix) && k.prefix === usualPrefix)),
      )?.child,
    text: (el) => (el === undefined ? null : nonEmpty(textOf(el.node, el.name))),
  };
  return context.kind === 'atom' ? readAtomEntry(xml, attrs, reader, context) : readRssItem(attrs, ns, reader);
}

/** An RSS 2.0 or RSS 1.0 item. */
function readRssItem(attrs: Record<string, unknown>, ns: Namespaces, r: EntryReader): FeedEntry {
  const title = r.text(r.own('title'));
  const linkText = r.text(r.own('link'));
  const description = r.text(r.own('description'));
  const encoded = r.text(r.module(CONTENT_NS, 'content', 'encoded'));
  const guidEl = r.own('guid');
  const guid = r.text(guidEl);
  const guidIsLink =
    guid !== null &&
    guidEl !== undefined &&
    attr(attributes(guidEl.node), 'isPermaLink')?.trim() !== 'false' &&
    /^https?:\/\//i.test(guid);
  // RSS 1.0: the item's rdf:about is its URI.
  let about: string | null = null;
  for (const key of Object.keys(attrs)) {
    if (!key.startsWith('@_')) continue;
    const { prefix, local } = splitName(key.slice(2));
    if (local === 'about' && prefix !== '' && (ns.get(prefix) === RDF_NS || (!ns.has(prefix) && prefix === 'rdf'))) {
      about = nonEmpty(attr(attrs, key.slice(2)));
    }
  }
  return {
    id: guid ?? about ?? linkText ?? hashId(title, description ?? encoded),
    title,
    link: linkText ?? (guidIsLink ? guid : null) ?? about,
    published: r.text(r.own('pubDate')) ?? r.text(r.module(DC_NS, 'dc', 'date')),
    summary: description ?? clip(encoded),
  };
}

/** An Atom entry. Its alternate link is resolved against xml:base when that gives an absolute URL. */
function readAtomEntry(xml: string, attrs: Record<string, unknown>, r: EntryReader, context: XmlContext): FeedEntry {
  let base = context.base;
  const entryBase = attr(attrs, 'xml:base');
  if (entryBase !== null) base = resolveAgainst(entryBase.trim(), base, base);

  // The alternate link: the first with rel="alternate" or no rel at all.
  let link: string | null = null;
  for (const el of r.ownAll('link')) {
    const linkAttrs = attributes(el.node);
    const rel = attr(linkAttrs, 'rel');
    if (rel !== null && !relTokens(rel).includes('alternate')) continue;
    const href = nonEmpty(attr(linkAttrs, 'href'));
    if (href === null) continue;
    let linkBase = base;
    const ownBase = attr(linkAttrs, 'xml:base');
    if (ownBase !== null) linkBase = resolveAgainst(ownBase.trim(), linkBase, linkBase);
    link = linkBase === null ? href : resolveAgainst(href, linkBase, href);
    break;
  }

  const title = atomText(xml, r.own('title'), r);
  const summary = atomText(xml, r.own('summary'), r) ?? clip(atomText(xml, r.own('content'), r));
  return {
    id: r.text(r.own('id')) ?? link ?? hashId(title, summary),
    title,
    link,
    published: r.text(r.own('published')) ?? r.text(r.own('updated')),
    summary,
  };
}

/** An Atom text construct: text and html as their text (HTML left as written), xhtml as its markup. */
function atomText(xml: string, el: Child | undefined, r: EntryReader): string | null {
  if (el === undefined) return null;
  if (attr(attributes(el.node), 'type')?.trim().toLowerCase() !== 'xhtml') return r.text(el);
  // The markup inside the xhtml div, exactly as written, from the entry's first such element.
  const outers: ElementSpan[] = [];
  const inners: ElementSpan[] = [];
  scanXml(xml, (span, ancestors) => {
    if (span.depth === 1 && span.name === el.name) outers.push(span);
    else if (span.depth === 2 && ancestors[1] === el.name) inners.push(span);
  });
  const outer = outers[0];
  if (outer === undefined) return null;
  const div = inners.find((d) => d.start >= outer.start && d.end <= outer.end && splitName(d.name).local === 'div');
  const inner = div ?? outer;
  return nonEmpty(xml.slice(inner.contentStart, inner.contentEnd));
}

// ---------------------------------------------------------------------------------------
// JSON Feed

/** JSON with object keys sorted, so equal items hash equal however their keys were ordered. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function jsonString(v: unknown): string | null {
  return typeof v === 'string' ? nonEmpty(v) : null;
}

function readJsonItem(item: Record<string, unknown>): FeedEntry {
  const rawId = item['id'];
  let id: string | null = null;
  if (typeof rawId === 'string') id = nonEmpty(rawId);
  else if (typeof rawId === 'number' && Number.isFinite(rawId)) id = String(rawId);
  const url = jsonString(item['url']);
  const link = url ?? jsonString(item['external_url']);
  const title = jsonString(item['title']);
  const summary = jsonString(item['summary']) ?? clip(jsonString(item['content_text'])) ?? clip(jsonString(item['content_html']));
  return {
    id: id ?? url ?? hashId(title, jsonString(item['content_html']) ?? jsonString(item['content_text']) ?? summary),
    title,
    link,
    published: jsonString(item['date_published']) ?? jsonString(item['date_modified']),
    summary,
  };
}

function analyseJson(bytes: Buffer, headerCharset: string, feed: unknown): Analysed | null {
  if (!isJsonFeed(feed)) return null;
  const items = feed['items'];
  if (!Array.isArray(items)) return null; // no entries container
  const isObject = (it: unknown): it is Record<string, unknown> => it !== null && typeof it === 'object' && !Array.isArray(it);
  const objects: Record<string, unknown>[] = (items as unknown[]).filter(isObject);
  if (objects.length > MAX_DIFF_ENTRIES) return null;
  // Cut as XML is, so only in an encoding where that cannot split a character (never UTF-16).
  const latin1 = bytes.toString('latin1');
  if (xmlCharset(bytes, headerCharset, latin1) === null) return null;
  const spans = jsonItemSpans(latin1);
  if (spans === null || spans.elements.length !== items.length) return null;
  // Which element of the array each object is.
  const elementOf = (items as unknown[]).flatMap((it, i) => (isObject(it) ? [i] : []));
  // hnrss's items without their counts; an item that had them was fingerprinted whole before.
  const counted = isHnrssJsonFeed(feed) ? objects.map(withoutHnrssJsonCounts) : objects;
  return {
    format: 'json',
    fingerprints: counted.map((item) => fingerprint(canonicalJson(item))),
    formerly: (i) => (counted[i] === objects[i] ? [] : [fingerprint(canonicalJson(objects[i]))]),
    entries: () => objects.map(readJsonItem),
    partial(keep: boolean[]): Buffer {
      const kept = new Set(elementOf.filter((_, k) => keep[k] === true));
      const pieces: Buffer[] = [bytes.subarray(0, spans.open + 1)];
      spans.elements.forEach((el, i) => {
        if (!kept.has(i)) return;
        if (pieces.length > 1) pieces.push(COMMA);
        pieces.push(bytes.subarray(el.lead, el.end));
      });
      pieces.push(bytes.subarray(spans.elements.at(-1)?.end ?? spans.open + 1));
      return Buffer.concat(pieces);
    },
  };
}

const COMMA = Buffer.from(',');
