// The hub's domain words (see docs/glossary.md): a Topic (rssCloud says "resource") is an exact URL;
// a Subscription ties one callback to one topic; a protocol names the wire it arrived on and leaves on.
// Times are epoch milliseconds; the faces turn them into ISO strings where a wire wants one.
import type { SignatureAlgorithm } from './config.js';

export type RssCloudProtocol = 'http-post' | 'https-post' | 'xml-rpc';
export type Protocol = RssCloudProtocol | 'websub';

const RSSCLOUD_PROTOCOLS: readonly RssCloudProtocol[] = ['http-post', 'https-post', 'xml-rpc'];

export function isRssCloudProtocol(p: string): p is RssCloudProtocol {
  return (RSSCLOUD_PROTOCOLS as readonly string[]).includes(p);
}

export interface Topic {
  url: string;
  /** MD5 of the last body read, hex; '' = never read. */
  lastHash: string;
  lastSize: number;
  ctChecks: number;
  whenLastCheck: number;
  ctUpdates: number;
  whenLastUpdate: number;
  /** Validators for conditional GETs. */
  etag?: string;
  lastModified?: string;
  contentType?: string;
  /**
   * Entry fingerprints of the last version read that listed entries, when the topic is a feed we
   * can diff (see FINGERPRINT_CHARS in feeds/entries.ts), in document order; then those of entries
   * read before but gone from it, most recently read first, a bounded few (withRemembered in
   * feeds/entries.ts). Every one of them is an entry subscribers already have.
   */
  fingerprints?: string[];
  /** Monotonic content version: bumped on every detected change; deliveries carry it. */
  version: number;
}

export interface Subscription {
  topic: string;
  /** The exact callback URL, query string included. */
  callback: string;
  protocol: Protocol;
  /** xml-rpc only: the method the subscriber asked us to call. */
  notifyProcedure?: string;
  /** websub only: HMAC key; never logged or shown. */
  secret?: string;
  /** websub only: the granted lease. */
  leaseSeconds?: number;
  /**
   * websub only: the X-Hub-Signature algorithm when it is not WEBSUB_SIGNATURE_ALGORITHM ('sha1'
   * for a PubSubHubbub 0.3 subscriber, see WebSubRequest). Absent, the setting applies, so
   * changing it changes every other subscription's.
   */
  signatureAlgorithm?: SignatureAlgorithm;
  /**
   * websub only: the path of the hub URL its latest subscribe request was sent to, as the client
   * spelled it (`/` for the bare root, `/websub/`), when it is not `/websub`. Deliveries name the
   * hub `PUBLIC_URL` + this in their rel=hub, the URL the subscriber knows the hub by.
   */
  hubPath?: string;
  ctUpdates: number;
  ctErrors: number;
  ctConsecutiveErrors: number;
  whenCreated: number;
  whenLastUpdate: number | null;
  whenLastError: number | null;
  whenExpires: number;
  /**
   * The highest topic version this subscription has been handled for (delivered, or given up
   * on after the retry policy ran out). New subscriptions start at the topic's current version,
   * so they receive only changes made after they subscribed.
   */
  deliveredVersion?: number;
}

/**
 * What deliveries to one subscription came to since they were last recorded (see
 * Store.recordDeliveries): counts and times to add, never whole records, so a renewal written
 * meanwhile by a request (or by another process) is never overwritten with older fields.
 */
export interface DeliveryTally {
  topic: string;
  callback: string;
  delivered: number;
  failed: number;
  /**
   * Of `failed`, those the subscriber answered 429: errors (ctErrors, whenLastError), but not
   * toward ctConsecutiveErrors, whose MAX_CONSECUTIVE_ERRORS ends an rssCloud subscription. A
   * subscriber asking the hub to slow down is alive; counted, three refused notifications of a
   * busy feed dropped the subscription of a reader that took every other feed's. One that never
   * takes a notification still ends with its lease, unless it renews it.
   */
  limited: number;
  /** Failures after the last success of this tally, 429s aside (every other failure, when none succeeded). */
  failedSinceDelivered: number;
  lastDeliveredAt: number | null;
  lastFailedAt: number | null;
  /** The newest version now handled for it (delivered, or given up on); 0 when none. */
  handledVersion: number;
}

/** The fields of a subscription that its deliveries change. */
export type SubscriptionStats = Pick<Subscription, 'ctUpdates' | 'ctErrors' | 'ctConsecutiveErrors' | 'whenLastUpdate' | 'whenLastError' | 'deliveredVersion'>;

/** A subscription's stats with a tally added, as both stores apply it. */
export function withTally(sub: Subscription, t: DeliveryTally): SubscriptionStats {
  return {
    ctUpdates: sub.ctUpdates + t.delivered,
    ctErrors: sub.ctErrors + t.failed,
    ctConsecutiveErrors: t.delivered > 0 ? t.failedSinceDelivered : sub.ctConsecutiveErrors + t.failed - t.limited,
    whenLastUpdate: t.lastDeliveredAt ?? sub.whenLastUpdate,
    whenLastError: t.lastFailedAt ?? sub.whenLastError,
    deliveredVersion: Math.max(sub.deliveredVersion ?? 0, t.handledVersion),
  };
}

/** A content version with deliveries still to make (see Store.putOutbox). */
export interface OutboxEntry {
  topic: string;
  version: number;
  contentType: string;
  createdAt: number;
  /**
   * Which hub process is delivering this version, and until when (epoch ms) its claim holds.
   * Absent: nobody; an expired claim may be taken over (Store.claimOutbox).
   */
  claimedBy?: string;
  claimedUntil?: number;
}

/** One outbox entry, by its key. */
export interface OutboxKey {
  topic: string;
  version: number;
}

/** A WebSub subscribe or unsubscribe request, as the face parsed it. */
export interface WebSubRequest {
  mode: 'subscribe' | 'unsubscribe';
  topic: string;
  callback: string;
  secret?: string;
  leaseSeconds?: number;
  verifyToken?: string;
  /** Set ('sha1') for a subscriber that spoke PubSubHubbub 0.3 (routes/websub.ts); see Subscription. */
  signatureAlgorithm?: SignatureAlgorithm;
  /** The path the request was sent to when it is not `/websub` (routes/websub.ts); see Subscription. */
  hubPath?: string;
}

/** A WebSub request answered 202 whose verification of intent has not finished yet. */
export interface PendingVerification extends WebSubRequest {
  id: string;
  createdAt: number;
  /** Which hub process is verifying it, and until when (epoch ms); as on OutboxEntry. */
  claimedBy?: string;
  claimedUntil?: number;
}

/**
 * A read the hub owes a topic: a publish (or a ping answered before its read ended) was
 * acknowledged, and a hub stopped before that read finished would otherwise forget it. Stored
 * before the acknowledgement, deleted once a read that began after `since` has finished.
 */
export interface PendingRead {
  topic: string;
  /** When the publish or ping arrived (epoch ms): a read begun after it sees its change. */
  since: number;
}

/**
 * What the hub remembers of a site (a page that is not a feed, such as a blog's home page): the
 * feeds it links to as alternates, so that a ping naming only the site reaches them without the
 * page being read every time. Re-read once it is older than SITE_RECHECK_SECONDS.
 */
export interface Site {
  /** The site URL as pinged, exactly. */
  url: string;
  /** Feed URLs discovered on the page, absolute, in document order, capped (MAX_FEEDS_PER_SITE). */
  feeds: string[];
  /** WebSub hubs the page advertises (rel="hub"), absolute. */
  hubs: string[];
  /** The page's rel="self", when it gave one. */
  self?: string;
  /** When the page was last read (or confirmed unchanged). */
  whenChecked: number;
  whenCreated: number;
}

export function newTopic(url: string): Topic {
  return { url, lastHash: '', lastSize: 0, ctChecks: 0, whenLastCheck: 0, ctUpdates: 0, whenLastUpdate: 0, version: 0 };
}

/** A subscription that has never been delivered to, created at `now`, lasting until `whenExpires`. */
export function newSubscription(topic: string, callback: string, protocol: Protocol, now: number, whenExpires: number): Subscription {
  return { topic, callback, protocol, ctUpdates: 0, ctErrors: 0, ctConsecutiveErrors: 0, whenCreated: now, whenLastUpdate: null, whenLastError: null, whenExpires };
}

/** The path of the hub's WebSub URL, which deliveries name unless a subscription says otherwise (Subscription.hubPath). */
export const DEFAULT_HUB_PATH = '/websub';

export function subscriptionKey(topic: string, callback: string): string {
  // A newline cannot occur in a URL we accept, so it separates the pair unambiguously.
  return `${topic}\n${callback}`;
}

/** One outbox entry's key in maps, as subscriptionKey's for a subscription. */
export function outboxEntryKey(topic: string, version: number): string {
  return `${topic}\n${version}`;
}

/**
 * `s` without the slashes it ends with. Not `replace(/\/+$/, '')`: a regular expression tries
 * `\/+$` from every slash of a run that does not end the text, so it costs the square of the
 * run's length. A request path of 16 KB of slashes held the hub's one thread ~170 ms (twenty of
 * them, 3.5 s), and a feed's xmlns of 100 KB of them, read by discovery, 12 s (of the 5 MB a
 * feed may be, 20 minutes).
 */
export function withoutTrailingSlashes(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x2f) end--;
  return end === s.length ? s : s.slice(0, end);
}

/**
 * Whether a URL as given holds control characters (tabs, line breaks, other C0, DEL). None is
 * accepted: the URL standard drops some when it parses, so the hub would reach another URL than
 * the one it keeps, and subscriptionKey relies on there being no line break.
 */
export function hasControlCharacters(url: string): boolean {
  return /[\x00-\x1f\x7f]/.test(url);
}

/**
 * Whether a URL as given begins or ends with a space, which the URL standard drops too (C0
 * controls being refused already). None is accepted, for the same reason: a topic kept as
 * `http://a/feed ` was read and polled as `http://a/feed`, yet no ping or publish of that URL
 * reached its subscribers, nor did a WebSub publish of the same spelling, since publish trims
 * the URLs of its comma-separated lists.
 */
export function hasEdgeSpaces(url: string): boolean {
  return url.startsWith(' ') || url.endsWith(' ');
}

/**
 * Whether a URL names a user or a password (`http://user:pass@host/`). The hub sends no
 * credentials anywhere (lib/http.ts refuses such a URL), so it can never read such a topic; and
 * the hub shows topics on its public pages and logs them, where a password does not belong.
 */
export function carriesCredentials(url: string): boolean {
  // The URL parser takes a user or password only from what comes before an `@`; every ping's
  // URL is checked, and parsing it cost more than the rest of the check.
  if (!url.includes('@')) return false;
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/** Where an http(s) URL's authority ends, by the URL standard: a backslash is a slash there. */
const AUTHORITY_ENDS = new Set(['/', '\\', '?', '#']);

/**
 * host[:port] of a URL as the URL standard reads it (lower case, IDN in punycode, an IPv4 address
 * in dotted decimal, no default port), made one key per host by hostKey: the spelling the
 * notifier keys its per-host limit and breaker by, and MAX_SUBSCRIPTIONS_PER_CALLBACK_HOST
 * counts by. URLs are kept as given, so counted by their own spelling one host was many:
 * `127.000.000.001`, `2130706433`, `%31%32%37.0.0.1`, a written default port, each a host of its
 * own, and IPv4's leading zeros spell one address without end. A backslash is a slash there too,
 * so `https://reader.example\TOKEN\cb` is reader.example, not a host showing its token on the
 * public pages. What does not parse is read by hand up to the first of AUTHORITY_ENDS.
 */
export function callbackHost(url: string): string {
  try {
    return hostKey(new URL(url).host);
  } catch {
    const colon = url.indexOf(':');
    if (colon === -1) return '';
    let start = colon + 1;
    while (url[start] === '/' || url[start] === '\\') start++;
    let end = start;
    while (end < url.length && !AUTHORITY_ENDS.has(url[end]!)) end++;
    const authority = url.slice(start, end);
    return hostKey(authority.slice(authority.lastIndexOf('@') + 1));
  }
}

/**
 * Appends parameters to a URL's query without re-encoding the query it already has (WebSub REC
 * §5.1.1). A fragment stays last: an rssCloud path may end in one (`/rss#top`), and the challenge
 * appended after it was never sent, so the handler test of a working callback failed.
 */
export function withQuery(url: string, params: URLSearchParams | string): string {
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const fragment = hash === -1 ? '' : url.slice(hash);
  const sep = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${sep}${String(params)}${fragment}`;
}

/**
 * A name's root dot (or dots), before the port if any: `cb.example.:8080`. Tried only from the
 * first dot of a run: from each of its dots, a run that does not end the name cost its square.
 */
const ROOT_DOTS = /(?<!\.)\.+(?=(?::\d*)?$)/;
/** An IPv4-mapped IPv6 address as the URL standard writes it (`[::ffff:7f00:1]`), and its port. */
const MAPPED_IPV4 = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\](:\d+)?$/;

/**
 * A host[:port] (as URL.host gives it, or as an operator writes it) as the one key of the host
 * it names: what the URL standard leaves as two spellings of one host is made one. A name
 * written fully qualified (`cb.example.`, which a resolver reads as `cb.example`) loses its dot:
 * counted apart, `http://cb.example./` doubled the subscriptions one host may hold, and its
 * deliveries had a breaker and a concurrency limit of their own beside the undotted spelling's.
 * Every dot goes (`cb.example..` names no host anyway), so a key keyed again is the same key, as
 * the store's trigger needs. An IPv4-mapped IPv6 address is the IPv4 address it maps (the address
 * guard judges it so, and a dual-stack socket reaches that address). lib/store/pg-schema.ts's
 * callback_host_key() is the same rule in SQL (migration 10): the two change together.
 */
export function hostKey(host: string): string {
  const h = host.toLowerCase();
  const mapped = MAPPED_IPV4.exec(h);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}${mapped[3] ?? ''}`;
  }
  return h.replace(ROOT_DOTS, '');
}

/**
 * Any URL in a piece of text cut down to its host. Activity details are shown on read-only
 * pages and streams, and an outbound error message may quote a callback URL whole (a redirect
 * loop names the URL it started from), query string and all: a callback's path and query often
 * hold its subscriber's token, and a verification's the challenge.
 */
export function hostsOnly(text: string): string {
  // Most details hold no URL ("unchanged", "changed, version 3"): nothing to look for.
  if (!text.includes('://')) return text;
  // A URL's scheme is a letter at a word's edge (`\b[a-z]`) and scheme characters up to its
  // "://". Sought so by one expression, a run of scheme characters that no "://" ends was tried
  // from every word edge in it (`a.a.a.…`), at the cost of the run's square: a subscriber's
  // redirect to a Location of 16 KB of them held the hub's one thread 140 ms at every delivery
  // it failed. So each whole run that ends in "://" is found once, from its first character,
  // and the scheme begins at the first letter in it that follows a word's edge.
  const run = /(?<![a-z0-9+.-])[a-z0-9+.-]+:\/\//gi;
  const rest = /[^\s"'<>]*/y;
  let out = '';
  let done = 0;
  for (let m = run.exec(text); m !== null; m = run.exec(text)) {
    const schemeEnd = m.index + m[0].length - 3;
    let start = m.index;
    while (start < schemeEnd && !(/[a-z]/i.test(text[start]!) && (start === 0 || !/\w/.test(text[start - 1]!)))) start++;
    if (start === schemeEnd) {
      // No scheme here: the text from its "://" on is looked at again.
      run.lastIndex = schemeEnd;
      continue;
    }
    rest.lastIndex = m.index + m[0].length;
    rest.exec(text);
    out += text.slice(done, start) + callbackHost(text.slice(start, rest.lastIndex));
    done = run.lastIndex = rest.lastIndex;
  }
  return out + text.slice(done);
}
