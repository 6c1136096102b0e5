// Reads a topic and decides whether it changed. For RSS, RSS 1.0, Atom and JSON Feed a change
// is a new or changed entry, against the last version that listed entries; for anything else (or
// a feed whose previous entries are unknown) it is a different MD5 or length of the body (the
// rssCloud reference rule). A topic never read before has changed. Conditional GETs (ETag / Last-Modified) spare the publisher a full
// response when nothing changed.
import { OutboundError, retryAfterSeconds, type HttpClient } from '../http.js';
import { newTopic, type Topic } from '../model.js';
import type { Content } from '../notifier/sender.js';
import type { Store } from '../store/store.js';
import { isHtmlPage } from './discover.js';
import { diffBody, type BodyDiff, type DiffJob, type MadeFrom } from './body-diff.js';

export const FETCH_MAX_REDIRECTS = 5;

export interface CheckResult {
  topic: Topic;
  changed: boolean;
  /** Present when changed. */
  content?: Content;
  /** The publisher's Cache-Control max-age, when it gave one: the poller never polls faster. */
  maxAgeSeconds?: number;
  /** What was read when the publisher sent a body (not after a 304): site discovery reads it. */
  read?: FetchedPage;
}

export interface FetchedPage {
  /** The final URL, after redirects. */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export class FetchFailed extends Error {
  constructor(
    message: string,
    /** Retry-After of a 429 or 503, in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'FetchFailed';
  }
}

/** The topic could not be read (its server's answer, or no answer): not the hub's own failure. */
export function isReadFailure(e: unknown): boolean {
  return e instanceof FetchFailed || e instanceof OutboundError;
}

function maxAge(cacheControl: string | undefined): number | undefined {
  const m = cacheControl && /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?/i.exec(cacheControl);
  return m ? Number(m[1]) : undefined;
}

export class TopicChecker {
  /**
   * Fingerprint lists this process made by diffing a body (the stores keep the very list while
   * the process runs, and give copies of the topic that share it), each with the body's MD5 and
   * length and the type it came labelled with: a topic read again with those bytes so labelled
   * need not be diffed again to know what its diff gives (see compare). Not lists read back from
   * disk or a database: those may be an older build's, which the first read after an upgrade
   * turns into this build's (see `formerly` in entries.ts).
   */
  private readonly madeHere = new WeakMap<readonly string[], MadeFrom>();

  constructor(
    private readonly http: HttpClient,
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    /** Where bodies are compared: a BodyThread sends big ones to its worker thread. */
    private readonly bodies: { diff(job: DiffJob): Promise<BodyDiff> } = { diff: async (job) => diffBody(job) },
  ) {}

  /**
   * Fetches the topic and records the check. Throws FetchFailed or OutboundError. `turnHeld`:
   * the caller holds the read's turn (HttpClient.fetchTurn).
   */
  async fetch(url: string, { turnHeld = false }: { turnHeld?: boolean } = {}): Promise<CheckResult> {
    const prev = (await this.store.getTopic(url)) ?? newTopic(url);
    const headers: Record<string, string> = {};
    if (prev.lastHash !== '') {
      if (prev.etag) headers['if-none-match'] = prev.etag;
      if (prev.lastModified) headers['if-modified-since'] = prev.lastModified;
    }
    const res = await this.http.request('fetch', url, { method: 'GET', headers, maxRedirects: FETCH_MAX_REDIRECTS, turnHeld });
    const maxAgeSeconds = maxAge(res.headers['cache-control']);
    if (res.status === 304 && prev.lastHash !== '') {
      const topic = { ...prev, ctChecks: prev.ctChecks + 1, whenLastCheck: this.now() };
      await this.store.recordCheck(topic);
      return { topic, changed: false, ...(maxAgeSeconds !== undefined && { maxAgeSeconds }) };
    }
    if (res.status < 200 || res.status >= 300) {
      throw new FetchFailed(`HTTP ${res.status}`, retryAfterSeconds(res.headers['retry-after'], this.now()));
    }
    const result = await this.compare(prev, res.body, res.headers['content-type'] ?? 'application/octet-stream', {
      etag: res.headers['etag'],
      lastModified: res.headers['last-modified'],
    });
    const read: FetchedPage = { url: res.url, headers: res.headers, body: res.body };
    return { ...result, read, ...(maxAgeSeconds !== undefined && { maxAgeSeconds }) };
  }

  /** Records content a publisher pushed itself (an authenticated fat ping). */
  async accept(url: string, body: Buffer, contentType: string): Promise<CheckResult> {
    const prev = (await this.store.getTopic(url)) ?? newTopic(url);
    return this.compare(prev, body, contentType, {});
  }

  private async compare(
    prev: Topic,
    body: Buffer,
    contentType: string,
    validators: { etag?: string | undefined; lastModified?: string | undefined },
  ): Promise<CheckResult> {
    const now = this.now();
    // The very bytes of the last read, and the topic's fingerprints this process's diff made of
    // them under the same label: no entry changed, and the topic holds what their diff would give.
    // Not diffed again: a server that answers 200 with the same body (no validators, or new ones
    // with every answer) made every read of a blog's feed pay for a diff as long as its hash.
    // Fingerprints kept through a version that was not diffed (an empty or broken one, or one
    // labelled with a type or charset that cannot be) were made of other bytes, which the diff
    // would find new entries in; and the label decides what is diffed and how it is decoded.
    const made = prev.fingerprints && this.madeHere.get(prev.fingerprints);
    const sameAs = made && made.hash === prev.lastHash && made.size === prev.lastSize && made.contentType === contentType ? { hash: made.hash, size: made.size } : undefined;
    const { hash, diff: parsed } = await this.bodies.diff({ body, contentType, previous: prev.fingerprints, ...(sameAs && { sameAs }) });
    const bytesChanged = prev.lastHash === '' || hash !== prev.lastHash || body.length !== prev.lastSize;
    const topic: Topic = { ...prev, ctChecks: prev.ctChecks + 1, whenLastCheck: now, lastHash: hash, lastSize: body.length };
    if (validators.etag !== undefined) topic.etag = validators.etag;
    if (validators.lastModified !== undefined) topic.lastModified = validators.lastModified;
    if (parsed === 'same') {
      await this.store.recordCheck(topic);
      return { topic, changed: false };
    }
    // A feed is compared entry by entry, so a new lastBuildDate alone is not an update, and
    // subscribers receive only the new or changed entries in the feed's own envelope. A topic
    // we cannot diff (or whose previous entries we do not know) falls back to MD5 and length.
    // A feed with no entries at all has nothing to compare by, so its bytes decide.
    const diff = parsed && (parsed.fingerprints.length > 0 || (prev.fingerprints?.length ?? 0) > 0) ? parsed : null;
    // A feed that answers an empty body or a web page (a CMS whose database is down answers 200
    // with its error page) has no new entry either: delivered, its subscribers got that page as
    // the feed, and rssCloud readers were sent to read it.
    const glitch = !parsed && (prev.fingerprints?.length ?? 0) > 0 && (body.length === 0 || isHtmlPage(contentType, body));
    const changed = glitch ? false : diff && prev.fingerprints ? diff.changedCount > 0 : bytesChanged;
    // The fingerprints stand for the entries subscribers already have. A version that lists no
    // entry (an empty channel from a CMS whose database is down) or is no feed we can read (an
    // empty body or an error page answered 200) says nothing of those, so they are kept: when the
    // feed is back, only its really new entries are new, not every entry it holds. A version that
    // lists some stores theirs and, after them, those of entries read recently that it no longer
    // lists (diff.known, see withRemembered in entries.ts): an entry that comes back (an older copy
    // of the feed served by turns with the newer, a page whose cut-off wobbles) is no change.
    if (diff && diff.fingerprints.length > 0) {
      topic.fingerprints = diff.known;
      this.madeHere.set(diff.known, { hash, size: body.length, contentType });
    }
    if (changed) {
      topic.ctUpdates++;
      topic.whenLastUpdate = now;
      topic.version++;
      topic.contentType = contentType;
    }
    // A changed topic is recorded by the hub only once the new version is in the outbox: a
    // version recorded without its outbox entry would be a change nobody is ever told of.
    if (!changed) {
      await this.store.recordCheck(topic);
      return { topic, changed };
    }
    const content: Content = {
      topic: topic.url,
      version: topic.version,
      body: diff && prev.fingerprints ? diff.body : body,
      contentType,
      ...(diff && { entries: diff.changed }),
    };
    return { topic, changed, content };
  }
}
