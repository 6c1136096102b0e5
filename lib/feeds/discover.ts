// Discovery: what a topic's representation says about itself. Reads the response headers
// and body of a fetched topic and reports its format, its advertised rel="self" URL, every
// WebSub hub it names, its rssCloud <cloud> elements, its <source:cloud> values and, for
// HTML pages, the feeds it links to as alternates.
//
// This is a pure function over untrusted input, so it is defensive throughout:
//   - it never throws; a body that cannot be read yields what the headers give;
//   - the work is bounded: the first 2 MB of a body at most, 256 KB for HTML, 64 KB of Link
//     header, and linear scanners with no backtracking-prone regular expressions;
//   - XML is parsed with fast-xml-parser with its entity handling off, and a document that
//     carries a DOCTYPE or an entity declaration is not parsed at all;
//   - only http(s) URLs are reported (hubs, self and alternates are things the hub or a
//     person will request), resolved against the topic URL (or an HTML <base href>).
import { XMLParser } from 'fast-xml-parser';
import { withoutTrailingSlashes } from '../model.js';
import { decodeBytes, mediaType } from '../media-type.js';

export interface CloudElement {
  domain: string;
  port: string;
  path: string;
  registerProcedure: string;
  protocol: string;
}

export type FeedFormat = 'rss' | 'rdf' | 'atom' | 'json' | 'html' | 'other';

export interface Discovery {
  /** The URL that was read (as given). */
  topic: string;
  format: FeedFormat;
  /** The advertised rel="self", absolute; a Link header wins over the body. */
  self: string | null;
  /** Every advertised WebSub hub, absolute, deduplicated, Link header ones first. */
  hubs: string[];
  /** RSS <cloud> elements, attributes as strings (missing → ''). */
  rssCloud: CloudElement[];
  /** <source:cloud> text values (https://source.scripting.com/). */
  sourceCloud: string[];
  /** HTML only: <link rel="alternate"> to feeds, absolute hrefs. Empty for other formats. */
  alternates: { href: string; type: string; title: string }[];
}

export interface LinkValue {
  url: string;
  rels: string[];
}

/** Only this much of a body is ever looked at. */
const MAX_DISCOVERY_BODY = 2 * 1024 * 1024;
/** Only this much of an HTML body is scanned for <link> tags. */
const MAX_DISCOVERY_HTML = 256 * 1024;
/**
 * Only this much of an XML feed is parsed for the feed's own links, which come before the
 * entries in every feed seen. Parsing costs ~0.5 ms per KB on the hub's one thread: the whole
 * 2 MB held it for a second per discover request or site ping.
 */
const MAX_DISCOVERY_XML = 128 * 1024;
const MAX_LINK_HEADER = 64 * 1024;
const MAX_LINKS = 1000;
const MAX_XML_DEPTH = 100;

const SOURCE_NAMESPACES = new Set(['source.scripting.com']);
const IANA_REL_PREFIX = 'http://www.iana.org/assignments/relation/';

const HTML_FEED_TYPES = new Set([
  'application/rss+xml',
  'application/atom+xml',
  'application/feed+json',
  'application/json',
]);

// ---------------------------------------------------------------------------------------
// Small helpers

function isWs(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
}

/** Decodes the five predefined XML entities and numeric character references. */
function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(
    /&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos));/g,
    (whole: string, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
      if (name !== undefined) {
        switch (name) {
          case 'amp':
            return '&';
          case 'lt':
            return '<';
          case 'gt':
            return '>';
          case 'quot':
            return '"';
          default:
            return "'";
        }
      }
      const cp = dec !== undefined ? parseInt(dec, 10) : parseInt(hex ?? '', 16);
      if (!Number.isFinite(cp) || cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return whole;
      return String.fromCodePoint(cp);
    },
  );
}

/** Splits a rel value into lower-cased tokens; full IANA relation URIs count as their short name. */
export function relTokens(rel: string): string[] {
  const out: string[] = [];
  for (const raw of rel.split(/[ \t\n\r\f]+/)) {
    if (raw === '') continue;
    let t = raw.toLowerCase();
    if (t.startsWith(IANA_REL_PREFIX)) t = t.slice(IANA_REL_PREFIX.length);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** An absolute http(s) URL for `ref` resolved against `base`, or null. */
function resolveUrl(ref: string, base: string): string | null {
  if (typeof ref !== 'string') return null;
  const r = ref.trim();
  if (r === '' || r.length > 8192) return null;
  let u: URL;
  try {
    u = base === '' ? new URL(r) : new URL(r, base);
  } catch {
    try {
      u = new URL(r); // the base itself may be unusable while the reference is absolute
    } catch {
      return null;
    }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return u.href;
}

function headerValue(headers: Record<string, string>, name: string): string {
  if (headers === null || typeof headers !== 'object') return '';
  const direct = headers[name];
  if (typeof direct === 'string') return direct;
  if (Array.isArray(direct)) return (direct as unknown[]).filter((v) => typeof v === 'string').join(', ');
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue;
    const v: unknown = headers[key];
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.filter((x) => typeof x === 'string').join(', ');
  }
  return '';
}

/** Collects results, deduplicating hubs and keeping the first self. */
class Collector {
  readonly hubs: string[] = [];
  private readonly seenHubs = new Set<string>();
  headerSelf: string | null = null;
  bodySelf: string | null = null;
  readonly rssCloud: CloudElement[] = [];
  readonly sourceCloud: string[] = [];
  readonly alternates: { href: string; type: string; title: string }[] = [];
  private readonly seenAlternates = new Set<string>();

  addHub(url: string | null): void {
    if (url === null || this.seenHubs.has(url)) return;
    this.seenHubs.add(url);
    this.hubs.push(url);
  }

  addBodySelf(url: string | null): void {
    if (url !== null && this.bodySelf === null) this.bodySelf = url;
  }

  addAlternate(href: string | null, type: string, title: string): void {
    if (href === null || this.seenAlternates.has(href)) return;
    this.seenAlternates.add(href);
    this.alternates.push({ href, type, title });
  }
}

// ---------------------------------------------------------------------------------------
// Link header (RFC 8288)

/** Index of the next top-level comma at or after i (skipping quoted strings and <...>), or s.length. */
function skipToComma(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s[i];
    if (c === ',') return i;
    if (c === '"') {
      i++;
      while (i < n && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '<') {
      const close = s.indexOf('>', i + 1);
      if (close < 0) return n;
      i = close + 1;
    } else {
      i++;
    }
  }
  return n;
}

/**
 * Parses a Link header field value (several fields may be joined with ", ") into link values.
 * URLs are returned as written (not resolved); rels are lower-cased, space-separated tokens of
 * the first rel parameter. Malformed parts are skipped; never throws.
 */
export function parseLinkHeader(value: string): LinkValue[] {
  const out: LinkValue[] = [];
  if (typeof value !== 'string') return out;
  const s = value.length > MAX_LINK_HEADER ? value.slice(0, MAX_LINK_HEADER) : value;
  const n = s.length;
  let i = 0;
  while (i < n && out.length < MAX_LINKS) {
    while (i < n && (isWs(s[i]) || s[i] === ',')) i++;
    if (i >= n) break;
    if (s[i] !== '<') {
      // Not a link-value: skip to the next one.
      i = skipToComma(s, i);
      continue;
    }
    const close = s.indexOf('>', i + 1);
    if (close < 0) break;
    const url = s.slice(i + 1, close).trim();
    i = close + 1;
    let rel: string | null = null;
    for (;;) {
      while (i < n && isWs(s[i])) i++;
      if (i >= n || s[i] === ',') break;
      if (s[i] !== ';') {
        i = skipToComma(s, i); // junk after the link's parameters; keep what we have
        break;
      }
      i++;
      while (i < n && isWs(s[i])) i++;
      const nameStart = i;
      while (i < n && s[i] !== '=' && s[i] !== ';' && s[i] !== ',' && !isWs(s[i])) i++;
      const name = s.slice(nameStart, i).toLowerCase();
      while (i < n && isWs(s[i])) i++;
      let val = '';
      if (s[i] === '=') {
        i++;
        while (i < n && isWs(s[i])) i++;
        if (s[i] === '"') {
          i++;
          let buf = '';
          while (i < n && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < n) i++;
            buf += s[i];
            i++;
          }
          i++; // closing quote (or past the end)
          val = buf;
        } else {
          const valStart = i;
          while (i < n && s[i] !== ';' && s[i] !== ',') i++;
          val = s.slice(valStart, i).trim();
        }
      }
      // RFC 8288 §3.3: occurrences of rel after the first are ignored.
      if (name === 'rel' && rel === null) rel = val;
    }
    if (url !== '') out.push({ url, rels: rel === null ? [] : relTokens(rel) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Format detection

/** Whether a parsed JSON value looks like a JSON Feed. */
export function isJsonFeed(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o['version'] === 'string' && /^https?:\/\/jsonfeed\.org\//i.test(o['version'])) return true;
  return Array.isArray(o['items']);
}

/**
 * Deepest nesting of arrays and objects read as JSON. A JSON Feed nests five deep; JSON.parse
 * takes ~0.5 µs a byte on a text that only opens arrays, so a feed of 5 MB of "[" (5 KB
 * gzipped) held the hub's one thread nearly 3 s at every ping of it, before failing anyway.
 */
const MAX_JSON_DEPTH = 100;

/** Whether `text` opens more than `max` arrays or objects inside one another (strings skipped). */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** Lazily parsed JSON of the body (parsed at most once); undefined when it is none, or nests too deep. */
export class JsonBody {
  private done = false;
  private value: unknown = undefined;
  constructor(private readonly text: () => string) {}
  get(): unknown {
    if (!this.done) {
      this.done = true;
      const text = this.text().replace(/^\uFEFF/, '');
      try {
        this.value = nestsDeeperThan(text, MAX_JSON_DEPTH) ? undefined : JSON.parse(text);
      } catch {
        this.value = undefined;
      }
    }
    return this.value;
  }
}

export function formatFromContentType(type: string, json: JsonBody): FeedFormat | null {
  switch (type) {
    case 'application/rss+xml':
      return 'rss';
    case 'application/rdf+xml':
      return 'rdf';
    case 'application/atom+xml':
      return 'atom';
    case 'text/html':
    case 'application/xhtml+xml':
      return 'html';
  }
  if (type === 'application/feed+json' || type === 'application/json' || type === 'text/json' || type.endsWith('+json')) {
    if (isJsonFeed(json.get())) return 'json';
  }
  return null;
}

/** Looks at the start of the text: the root element of an XML document, an HTML page or JSON. */
export function sniffFormat(text: string, json: JsonBody): FeedFormat {
  const n = Math.min(text.length, 64 * 1024);
  let i = 0;
  for (let guard = 0; guard < 64 && i < n; guard++) {
    while (i < n && (isWs(text[i]) || text[i] === '\uFEFF')) i++;
    if (i >= n) break;
    const c = text[i];
    if (c === '{') return isJsonFeed(json.get()) ? 'json' : 'other';
    if (c !== '<') return 'other';
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) return 'other';
      i = end + 2;
    } else if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) return 'other';
      i = end + 3;
    } else if (text.startsWith('<!', i)) {
      if (/^<!doctype[ \t\r\n]+html[ \t\r\n>]/i.test(text.slice(i, i + 20))) return 'html';
      // Some other doctype: step over it, internal subset included, without reading it.
      const gt = text.indexOf('>', i + 2);
      const bracket = text.slice(i + 2, gt < 0 ? n : gt).indexOf('[');
      if (bracket >= 0) {
        const close = text.indexOf(']', i + 2 + bracket + 1);
        if (close < 0) return 'other';
        const end = text.indexOf('>', close + 1);
        if (end < 0) return 'other';
        i = end + 1;
      } else {
        if (gt < 0) return 'other';
        i = gt + 1;
      }
    } else {
      const m = /<([A-Za-z_][A-Za-z0-9_.:-]{0,100})/y;
      m.lastIndex = i;
      const found = m.exec(text);
      if (found?.[1] === undefined) return 'other';
      const name = found[1];
      const local = (name.includes(':') ? name.slice(name.lastIndexOf(':') + 1) : name).toLowerCase();
      if (local === 'rss') return 'rss';
      if (local === 'rdf') return 'rdf';
      if (local === 'feed') return 'atom';
      if (local === 'html' || local === 'head' || local === 'body') return 'html';
      return 'other';
    }
  }
  return 'other';
}

// ---------------------------------------------------------------------------------------
// XML feeds (RSS 2.0, RSS 1.0 / RDF, Atom)

export type XNode = Record<string, unknown>;
export type Namespaces = ReadonlyMap<string, string>;

export const xmlParser = new XMLParser({
  preserveOrder: true, // document order, so hubs come out in the order they are written
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: false, // prefixes are needed to resolve namespaces
  processEntities: false, // no entity expansion at all; see decodeEntities
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  cdataPropName: '#cdata', // kept apart so CDATA content is not entity-decoded
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_XML_DEPTH,
});

export function elementName(node: XNode): string | null {
  for (const key of Object.keys(node)) {
    if (key !== ':@' && key !== '#text' && key !== '#cdata' && key !== '#comment') return key;
  }
  return null;
}

export function children(node: XNode, name: string): XNode[] {
  const c = node[name];
  return Array.isArray(c) ? (c.filter((x) => x !== null && typeof x === 'object') as XNode[]) : [];
}

export function attributes(node: XNode): Record<string, unknown> {
  const a = node[':@'];
  return a !== null && typeof a === 'object' ? (a as Record<string, unknown>) : {};
}

export function attr(attrs: Record<string, unknown>, name: string): string | null {
  const v = attrs[`@_${name}`];
  return typeof v === 'string' ? decodeEntities(v) : null;
}

export function withNamespaces(parent: Namespaces, attrs: Record<string, unknown>): Namespaces {
  let ns: Map<string, string> | null = null;
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value !== 'string') continue;
    let prefix: string;
    if (key === '@_xmlns') prefix = '';
    else if (key.startsWith('@_xmlns:')) prefix = key.slice('@_xmlns:'.length);
    else continue;
    ns ??= new Map(parent);
    ns.set(prefix, decodeEntities(value).trim());
  }
  return ns ?? parent;
}

/** splitName(name).local, without the object: asked of every element the entries scan reports. */
export function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

export function splitName(name: string): { prefix: string; local: string } {
  const colon = name.indexOf(':');
  return colon < 0 ? { prefix: '', local: name } : { prefix: name.slice(0, colon), local: name.slice(colon + 1) };
}

function isSourceNamespace(uri: string | undefined): boolean {
  if (uri === undefined) return false;
  const bare = withoutTrailingSlashes(
    uri
      .trim()
      .toLowerCase()
      .replace(/^https?:\/\//, ''),
  );
  return SOURCE_NAMESPACES.has(bare);
}

export function textOf(node: XNode, name: string): string {
  let out = '';
  for (const child of children(node, name)) {
    const t = child['#text'];
    if (typeof t === 'string') out += decodeEntities(t);
    else if (typeof t === 'number' || typeof t === 'boolean') out += String(t);
    const cdata = child['#cdata'];
    if (Array.isArray(cdata)) {
      for (const part of cdata as unknown[]) {
        const pt = part !== null && typeof part === 'object' ? (part as XNode)['#text'] : undefined;
        if (typeof pt === 'string' || typeof pt === 'number') out += String(pt);
      }
    }
  }
  return out.trim();
}

/** Looks at one channel-level element (a direct child of rss, rdf:RDF, channel or feed). */
function visitFeedElement(node: XNode, name: string, ns: Namespaces, topic: string, acc: Collector): void {
  const { prefix, local } = splitName(name);
  const attrs = attributes(node);
  if (local === 'link') {
    const href = attr(attrs, 'href');
    if (href === null) return; // RSS's own <link> carries text, not an href
    const rels = relTokens(attr(attrs, 'rel') ?? '');
    if (rels.includes('hub')) acc.addHub(resolveUrl(href, topic));
    if (rels.includes('self')) acc.addBodySelf(resolveUrl(href, topic));
  } else if (local === 'cloud') {
    const uri = ns.get(prefix);
    if (prefix === 'source' || isSourceNamespace(uri)) {
      const text = textOf(node, name);
      if (text !== '') acc.sourceCloud.push(text);
    } else if (prefix === '') {
      acc.rssCloud.push({
        domain: attr(attrs, 'domain') ?? '',
        port: attr(attrs, 'port') ?? '',
        path: attr(attrs, 'path') ?? '',
        registerProcedure: attr(attrs, 'registerProcedure') ?? '',
        protocol: attr(attrs, 'protocol') ?? '',
      });
    }
  }
}

/**
 * The part of a feed too long to parse whole that is parsed for the feed's own links: up to its
 * first entry (they come before the entries in every feed seen), within `max` characters, and
 * back to the end of the last complete tag outside a CDATA section or comment, so the parser
 * sees a clean if unclosed prefix (an unclosed CDATA section, as full-content feeds cut
 * anywhere have, made it refuse the whole document).
 */
function xmlHead(xml: string, max: number): string {
  let head = xml.length > max ? xml.slice(0, max) : xml;
  const entry = /<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]/.exec(head);
  if (entry) head = head.slice(0, entry.index);
  const cdata = head.lastIndexOf('<![CDATA[');
  if (cdata > head.lastIndexOf(']]>')) head = head.slice(0, cdata);
  const comment = head.lastIndexOf('<!--');
  if (comment > head.lastIndexOf('-->')) head = head.slice(0, comment);
  return head.slice(0, head.lastIndexOf('>') + 1);
}

function readXml(xml: string, topic: string, acc: Collector): void {
  // Never let a DTD near the parser: no entity expansion of any kind, internal or external.
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) return;
  let doc: unknown;
  try {
    doc = xmlParser.parse(xml);
  } catch {
    return;
  }
  if (!Array.isArray(doc)) return;
  let root: XNode | null = null;
  let rootName: string | null = null;
  for (const node of doc as unknown[]) {
    if (node === null || typeof node !== 'object') continue;
    const name = elementName(node as XNode);
    if (name !== null) {
      root = node as XNode;
      rootName = name;
      break;
    }
  }
  if (root === null || rootName === null) return;
  const rootNs = withNamespaces(new Map(), attributes(root));
  // The containers: the root element itself (rss, rdf:RDF or feed) and any channel under it.
  // Items and entries are not looked into: their links describe entries, not the feed.
  const containers: { node: XNode; name: string; ns: Namespaces }[] = [{ node: root, name: rootName, ns: rootNs }];
  for (const child of children(root, rootName)) {
    const name = elementName(child);
    if (name !== null && splitName(name).local === 'channel') {
      containers.push({ node: child, name, ns: withNamespaces(rootNs, attributes(child)) });
    }
  }
  for (const container of containers) {
    for (const child of children(container.node, container.name)) {
      const name = elementName(child);
      if (name === null) continue;
      visitFeedElement(child, name, withNamespaces(container.ns, attributes(child)), topic, acc);
    }
  }
}

// ---------------------------------------------------------------------------------------
// JSON Feed

function readJsonFeed(feed: Record<string, unknown>, topic: string, acc: Collector): void {
  const hubs = feed['hubs'];
  if (Array.isArray(hubs)) {
    for (const hub of hubs.slice(0, MAX_LINKS) as unknown[]) {
      if (hub === null || typeof hub !== 'object') continue;
      const url = (hub as Record<string, unknown>)['url'];
      if (typeof url === 'string') acc.addHub(resolveUrl(url, topic));
    }
  }
  const feedUrl = feed['feed_url'];
  if (typeof feedUrl === 'string') acc.addBodySelf(resolveUrl(feedUrl, topic));
}

// ---------------------------------------------------------------------------------------
// HTML

// Elements whose content is text, not markup: a "<link" inside them is not a tag.
const RAW_TEXT_ELEMENTS = ['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes'];
const RAW_TEXT_END = new Map(RAW_TEXT_ELEMENTS.map((name) => [name, new RegExp(`</${name}[\\s/>]`, 'gi')]));
const TAG_NAME = /[A-Za-z][^\s/>]{0,100}/y;

/** Reads a tag's attributes from i (just after its name); returns them and the index after '>'. */
function readAttributes(s: string, i: number): { attrs: Map<string, string>; end: number } {
  const attrs = new Map<string, string>();
  const n = s.length;
  while (i < n) {
    const c = s[i];
    if (c === '>') return { attrs, end: i + 1 };
    if (isWs(c) || c === '/') {
      i++;
      continue;
    }
    const nameStart = i;
    i++; // a name may begin with '=' (HTML tokenizer rule), so always take one character
    while (i < n && !isWs(s[i]) && s[i] !== '/' && s[i] !== '>' && s[i] !== '=') i++;
    const name = s.slice(nameStart, i).toLowerCase();
    while (i < n && isWs(s[i])) i++;
    let value = '';
    if (s[i] === '=') {
      i++;
      while (i < n && isWs(s[i])) i++;
      const q = s[i];
      if (q === '"' || q === "'") {
        const close = s.indexOf(q, i + 1);
        if (close < 0) return { attrs, end: n }; // unterminated: the tag never ends
        value = s.slice(i + 1, close);
        i = close + 1;
      } else {
        const valueStart = i;
        while (i < n && !isWs(s[i]) && s[i] !== '>') i++;
        value = s.slice(valueStart, i);
      }
    }
    if (!attrs.has(name)) attrs.set(name, decodeEntities(value)); // the first of duplicates wins
  }
  return { attrs, end: n };
}

function readHtml(html: string, topic: string, acc: Collector): void {
  const n = html.length;
  let base = topic;
  let sawBase = false;
  let i = 0;
  while (i < n) {
    const lt = html.indexOf('<', i);
    if (lt < 0) break;
    i = lt + 1;
    const c = html[i];
    if (c === '!') {
      if (html.startsWith('!--', i)) {
        if (html.startsWith('!-->', i)) {
          i += 4;
          continue;
        }
        if (html.startsWith('!--->', i)) {
          i += 5;
          continue;
        }
        const end = html.indexOf('-->', i + 3);
        if (end < 0) break;
        i = end + 3;
      } else {
        const end = html.indexOf('>', i);
        if (end < 0) break;
        i = end + 1;
      }
      continue;
    }
    if (c === '?' || c === '/') {
      // A processing instruction (bogus comment) or an end tag: skip to its '>'.
      const end = html.indexOf('>', i);
      if (end < 0) break;
      i = end + 1;
      continue;
    }
    TAG_NAME.lastIndex = i;
    const m = TAG_NAME.exec(html);
    if (m === null) continue; // a '<' that opens nothing
    const tag = m[0].toLowerCase();
    const { attrs, end } = readAttributes(html, i + m[0].length);
    i = end;
    const rawEnd = RAW_TEXT_END.get(tag);
    if (rawEnd !== undefined) {
      rawEnd.lastIndex = i;
      const close = rawEnd.exec(html);
      if (close === null) break;
      i = close.index + 2;
      continue;
    }
    if (tag === 'base' && !sawBase) {
      const href = attrs.get('href');
      if (href !== undefined) {
        sawBase = true; // only the first <base href> counts
        base = resolveUrl(href, topic) ?? topic;
      }
      continue;
    }
    if (tag !== 'link') continue;
    const href = attrs.get('href');
    if (href === undefined) continue;
    const rels = relTokens(attrs.get('rel') ?? '');
    if (rels.includes('hub')) acc.addHub(resolveUrl(href, base));
    if (rels.includes('self')) acc.addBodySelf(resolveUrl(href, base));
    if (rels.includes('alternate')) {
      const type = mediaType(attrs.get('type') ?? '').type;
      if (HTML_FEED_TYPES.has(type)) acc.addAlternate(resolveUrl(href, base), type, (attrs.get('title') ?? '').trim());
    }
  }
}

// ---------------------------------------------------------------------------------------
// The entry point

/**
 * Reports what a fetched topic advertises about itself. `headers` has lower-cased names (values
 * of repeated headers joined with ", "); `body` is the representation as received. Pure and
 * total: never throws, whatever the input.
 */
export function parseDiscovery(topic: string, headers: Record<string, string>, body: Buffer): Discovery {
  const topicUrl = typeof topic === 'string' ? topic : '';
  const acc = new Collector();
  let format: FeedFormat = 'other';

  try {
    for (const link of parseLinkHeader(headerValue(headers, 'link'))) {
      if (link.rels.includes('hub')) acc.addHub(resolveUrl(link.url, topicUrl));
      if (link.rels.includes('self') && acc.headerSelf === null) acc.headerSelf = resolveUrl(link.url, topicUrl);
    }
  } catch {
    // headers we cannot read give nothing
  }

  try {
    const bytes: Uint8Array = body instanceof Uint8Array ? body : new Uint8Array(0);
    const truncated = bytes.length > MAX_DISCOVERY_BODY;
    const { type, charset } = mediaType(headerValue(headers, 'content-type'));
    let text: string | null = null;
    const fullText = (): string => (text ??= decodeBytes(bytes.subarray(0, MAX_DISCOVERY_BODY), charset));
    const json = new JsonBody(fullText);

    format = formatFromContentType(type, json) ?? sniffFormat(fullText(), json);

    switch (format) {
      case 'rss':
      case 'rdf':
      case 'atom': {
        const xml = fullText();
        readXml(truncated || xml.length > MAX_DISCOVERY_XML ? xmlHead(xml, MAX_DISCOVERY_XML) : xml, topicUrl, acc);
        break;
      }
      case 'json': {
        const feed = json.get();
        if (isJsonFeed(feed)) readJsonFeed(feed, topicUrl, acc);
        break;
      }
      case 'html':
        readHtml(decodeBytes(bytes.subarray(0, MAX_DISCOVERY_HTML), charset), topicUrl, acc);
        break;
      default:
        break;
    }
  } catch {
    // A body we cannot read gives nothing beyond what was collected before the failure.
  }

  return {
    topic: topicUrl,
    format,
    self: acc.headerSelf ?? acc.bodySelf,
    hubs: acc.hubs,
    rssCloud: acc.rssCloud,
    sourceCloud: acc.sourceCloud,
    alternates: format === 'html' ? acc.alternates : [],
  };
}

/** Only this much of a body is sniffed when its Content-Type does not say what it is. */
const SNIFF_BYTES = 64 * 1024;

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
/** Content-Types that say too little: the body decides. */
const VAGUE_TYPES = new Set(['', 'text/plain', 'application/octet-stream']);

/**
 * Whether a representation is a web page (HTML) rather than a feed or anything else. The first
 * bytes decide when the Content-Type is HTML or says nothing useful (a feed served as text/html
 * is still a feed); any other named type is taken at its word. Without a body (a 304), the
 * Content-Type alone.
 */
export function isHtmlPage(contentType: string | undefined, body: Buffer): boolean {
  const { type, charset } = mediaType(contentType ?? '');
  const html = HTML_TYPES.has(type);
  if (body.length > 0 && (html || VAGUE_TYPES.has(type))) {
    const head = decodeBytes(body.subarray(0, SNIFF_BYTES), charset);
    const sniffed = sniffFormat(head, new JsonBody(() => head));
    if (sniffed !== 'other') return sniffed === 'html';
  }
  return html;
}
