// The protocol-neutral core. It knows no wire format: faces hand it typed requests and render
// what it answers. It decides whether a topic changed, who must hear of it, and in which form
// (bare for rssCloud, full content for WebSub), so a change learned on any face reaches every
// subscriber of that exact topic URL on every face.
import { EventEmitter } from 'node:events';
import type { ActivityInput } from './activity.js';
import type { Config } from './config.js';
import { deadline } from './deadline.js';
import { FETCH_MAX_REDIRECTS, TopicChecker, isReadFailure, type CheckResult } from './feeds/checker.js';
import type { BodyThread } from './body-thread.js';
import { isHtmlPage, parseDiscovery, type Discovery } from './feeds/discover.js';
import { readWithin } from './feeds/poller.js';
import { ReadNotStarted } from './fetch-slots.js';
import { OutboundError, type HttpClient } from './http.js';
import type { Logger } from './log.js';
import { SUBSCRIPTION_LIMIT_REASONS, type HubError } from './messages.js';
import { callbackHost, carriesCredentials, hasControlCharacters, hasEdgeSpaces, isRssCloudProtocol, newSubscription, type PendingRead, type RssCloudProtocol, type Site, type Subscription, type WebSubRequest } from './model.js';
import { describeError } from './notifier/outcome.js';
import { againOnHubFailure } from './backoff.js';
import type { FanOutReport, Notifier } from './notifier/notifier.js';
import type { Content } from './notifier/sender.js';
export type { WebSubRequest } from './model.js';
export type { CleanupReport } from './sweep.js';
import { verifySignature } from './signature.js';
import { Sites } from './sites.js';
import { Sweeper, type CleanupReport } from './sweep.js';
import { limitError, subscriptionLimits } from './subscription-limits.js';
import { WebSubVerifications } from './websub-verifications.js';
import type { Store } from './store/store.js';
import type { Verifier } from './verify.js';

export interface HubDeps {
  config: Config;
  store: Store;
  http: HttpClient;
  notifier: Notifier;
  verifier: Verifier;
  log: Logger;
  now?: () => number;
  /** Where read bodies are compared; without one, on the main thread. */
  bodies?: BodyThread;
}

export interface PleaseNotifyRequest {
  protocol: string;
  port: string;
  path: string;
  urls: string[];
  /** Empty or absent: the caller's address is the callback host. */
  domain?: string;
  callerAddress: string;
  notifyProcedure?: string;
}

/** A weblogUpdates ping: a site changed. */
export interface SitePingRequest {
  /** The site's page (a blog's home page); its feeds are discovered when no feed is named. */
  siteUrl: string;
  /** The feed the caller named (extendedPing, rssUpdate): read as it is, nothing discovered. */
  feedUrl?: string;
}

export interface SitePingResult {
  error: HubError | null;
}

/** What a ping did: its answer, and the deliveries it started. */
interface Pinged extends SitePingResult {
  fanOut: Promise<unknown>;
}

export interface RefreshResult extends CheckResult {
  /** Settles when every subscriber has had its first delivery attempt. */
  fanOut: Promise<FanOutReport>;
}

/** Whether a read waits to share one queued before it, and may be shared by those after it (see serialize). */
type Sharing = 'both' | 'joinOnly' | 'none';

/** A poll's read found, under the topic lock, that another read had just been made (see pollRead). */
class ReadElsewhere extends Error {
  constructor(readonly readAt: number) {
    super('read by another process within the poll interval');
  }
}

/**
 * How much longer than REQUEST_TIMEOUT_MS a ping waits for its fan-out's first attempts (see
 * firstAttempts): those sent at once have ended by then and their outcomes are recorded.
 */
const FIRST_ATTEMPTS_GRACE_MS = 1000;

/**
 * How long a weblogUpdates ping waits for its reads before it is answered with thanks, the
 * reads going on. WordPress gives the answer 3 s (`$client->timeout = 3` in weblog_ping) and,
 * when its extendedPing gets none, sends the same site a second ping, weblogUpdates.ping: a
 * feed or home page that took longer to read (a site busy right after publishing, a page then
 * its feeds) was read twice and taken for failed. Later than this, a read that fails is only
 * logged: the pinger has gone or soon will.
 */
const SITE_PING_ANSWER_MS = 2500;

/**
 * Longest XML-RPC procedure name a subscriber may ask to be notified with. Each subscription
 * keeps its own, and every notification carries it: one pleaseNotify of 25 URLs naming one of
 * 60 KB stored 1.5 MB, so a client within the default rate limit grew the store and the hub's
 * memory by ~900 MB a minute. Names in use are a few dozen characters (`river.feedUpdated`).
 */
const MAX_NOTIFY_PROCEDURE_LENGTH = 256;

const NO_FAN_OUT: Promise<FanOutReport> = Promise.resolve({ attempted: 0, delivered: 0, failed: 0 });

/**
 * Events: 'change' (Content) for faces that push to live listeners (SSE); 'subscribed' and
 * 'published' (topic URL) for the poller, which polls topics with subscribers whose publishers
 * do not ping; 'activity' (ActivityInput) for the operator's log and metrics.
 */
export class Hub extends EventEmitter {
  private readonly checker: TopicChecker;
  private readonly sites: Sites;
  private readonly sweeper: Sweeper;
  private readonly verifications: WebSubVerifications;
  private readonly now: () => number;
  /** Per topic, the last read or fat ping queued, and the queued read not yet started that later reads join (see serialize). */
  private readonly refreshing = new Map<string, { last: Promise<unknown>; joinable?: Promise<RefreshResult> }>();
  private readonly background = new Set<Promise<unknown>>();
  /** Recent topic discoveries, oldest first (see discover). */
  private readonly discoveries = new Map<string, { settledAt: number; result: Promise<Discovery | { error: string }> }>();
  /** Topics whose pending read this process is reading from the record (readOwed, adoptOrphanedReads), until that read ends. */
  private readonly readingOwed = new Set<string>();
  /** Set by close(): verifications waiting to ask again (see pause) stop waiting. */
  private closing = false;
  private readonly wakers = new Set<() => void>();

  constructor(private readonly deps: HubDeps) {
    super();
    this.now = deps.now ?? Date.now;
    this.checker = new TopicChecker(deps.http, deps.store, this.now, deps.bodies);
    this.sites = new Sites({ config: deps.config, store: deps.store, http: deps.http, now: this.now });
    this.sweeper = new Sweeper({ config: deps.config, store: deps.store, log: deps.log, now: this.now, closing: () => this.closing, track: (p) => this.track(p) });
    this.verifications = new WebSubVerifications({
      config: deps.config,
      store: deps.store,
      http: deps.http,
      verifier: deps.verifier,
      log: deps.log,
      now: this.now,
      owner: deps.notifier.owner,
      closing: () => this.closing,
      pause: (ms) => this.pause(ms),
      track: (p) => this.track(p),
      note: (a) => this.note(a),
      subscribed: (topic) => this.emit('subscribed', topic),
    });
  }

  // ---- rssCloud -------------------------------------------------------------------------

  /** rssCloud pleaseNotify. Resolves to null on success (any URL verified), else the first failure. */
  async pleaseNotify(req: PleaseNotifyRequest): Promise<HubError | null> {
    const answerBy = deadline(this.answerBudgetMs());
    try {
      return await this.pleaseNotifyBy(req, answerBy.reached);
    } finally {
      answerBy.clear();
    }
  }

  private async pleaseNotifyBy(req: PleaseNotifyRequest, answerBy: Promise<'late'>): Promise<HubError | null> {
    if (!isRssCloudProtocol(req.protocol)) return { code: 'unsupported_protocol', protocol: req.protocol };
    if (req.protocol === 'xml-rpc' && (req.notifyProcedure ?? '').length > MAX_NOTIFY_PROCEDURE_LENGTH) {
      return { code: 'subscription_limit', detail: SUBSCRIPTION_LIMIT_REASONS.notifyProcedureTooLong(MAX_NOTIFY_PROCEDURE_LENGTH) };
    }
    if (req.urls.length === 0) return { code: 'no_resources' };
    const tooMuch = this.checkUrls(req.urls) ?? unreadable(req.urls);
    if (tooMuch) return tooMuch;
    const callback = rssCloudCallback(req.protocol, req.port, req.path, req.domain || req.callerAddress);
    // The callback is built from strangers' fields (domain, port, path): it obeys MAX_URL_LENGTH too.
    const longCallback = callback === undefined ? null : this.checkUrls([callback]);
    if (longCallback) return longCallback;
    const domain = req.domain ? req.domain : undefined;
    // Settled, not Promise.all: a failure of the hub itself on one URL (its store refusing that
    // topic's write) answered the whole request as failed at once, while the other URLs went on
    // to subscribe after the reply. As for any failure, one URL subscribed makes it a success.
    const settled = await Promise.allSettled(
      req.urls.map((url) => this.subscribeRssCloud(url, callback, req.protocol as RssCloudProtocol, domain, req.notifyProcedure, answerBy)),
    );
    const results = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    const hubFailure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (results.includes(null)) {
      // The face logs a failure it answers; one answered as a success is logged here.
      settled.forEach((r, i) => {
        if (r.status === 'rejected') this.deps.log.error('pleaseNotify failed for one URL', { topic: req.urls[i], error: describeError(r.reason) });
      });
      return null;
    }
    if (hubFailure) throw hubFailure.reason;
    return results[0] ?? { code: 'handler_test_failed' };
  }

  /** Bounds on what one request may ask of the hub: how many URLs, how long each. */
  checkUrls(urls: string[], maxUrls = this.deps.config.maxUrlsPerRequest): HubError | null {
    const { maxUrlLength } = this.deps.config;
    if (urls.length > maxUrls) return { code: 'too_many_urls', limit: maxUrls };
    if (urls.some((u) => u.length > maxUrlLength)) return { code: 'url_too_long', limit: maxUrlLength };
    return null;
  }

  /** checkUrls for a WebSub publish, which may name more URLs (MAX_URLS_PER_PUBLISH). */
  checkPublishUrls(urls: string[]): HubError | null {
    return this.checkUrls(urls, this.deps.config.maxUrlsPerPublish);
  }

  /**
   * Whether one more subscription may be made: a topic, and a callback host, may hold only so
   * many, so that nobody can make the hub fan out without bound at a third party. This is the
   * early answer when a request arrives; storeWithinLimits has the last word.
   */
  private async checkSubscriptionLimits(topic: string, callback: string): Promise<HubError | null> {
    const reached = await this.deps.store.subscriptionLimitReached(topic, callback, subscriptionLimits(this.deps.config));
    return reached && limitError(this.deps.config, reached, callback);
  }

  /**
   * Stores a subscription unless a limit forbids it. Requests are checked when they arrive,
   * but verification takes a while and many can pass that check together, in this process and
   * in the others on one database: the store counts and writes in one step for all of them.
   */
  private async storeWithinLimits(sub: Subscription): Promise<HubError | null> {
    const refused = await this.deps.store.putSubscriptionWithinLimits(sub, subscriptionLimits(this.deps.config));
    return refused && limitError(this.deps.config, refused, sub.callback);
  }

  /**
   * rssCloud ping: read the topic, and when it changed tell every subscriber before answering.
   * A URL nobody follows as a topic that turns out to be a web page stands for its site's
   * feeds (see pingUrl).
   */
  async ping(url: string): Promise<HubError | null> {
    const answerBy = deadline(this.answerBudgetMs());
    try {
      const refused = await this.checkPing(url);
      if (refused) return refused;
      this.note({ kind: 'ping', topic: url, ok: true, protocol: 'rssCloud' });
      const pinged = await this.pingedBy(this.pingUrl(url, 'topic', 'rssCloud'), answerBy.reached);
      if (pinged === 'late') {
        // Not read in time (queued behind another read of the topic, in its host's line of a
        // burst (FETCH_PER_HOST), FETCH_MIN_INTERVAL_MS, a site's page and then its feeds): the
        // pinger hears what a read that timed out gets, as for one that waited too long for a
        // FETCH_CONCURRENCY slot. Told it worked, it would never hear of a read that fails after;
        // asked again, it joins the read or finds it done.
        this.deps.log.info('ping: topic not read in time, answered as unreadable; the read goes on', { topic: url });
        return { code: 'resource_unreadable', url };
      }
      // Nothing to wait for when the read found no change: no deadline to set and clear.
      if (pinged.fanOut !== NO_FAN_OUT) await this.firstAttempts(pinged.fanOut, answerBy.reached);
      return pinged.error;
    } finally {
      answerBy.clear();
    }
  }

  /**
   * What a ping's reads give, or 'late' once `answerBy` comes first: they then go on in the
   * background, tracked with their fan-out, so a stop waits for them.
   */
  private async pingedBy(work: Promise<Pinged>, answerBy: Promise<'late'>): Promise<Pinged | 'late'> {
    const pinged = await Promise.race([work, answerBy]);
    if (pinged === 'late') this.track(work.then((p) => p.fanOut));
    return pinged;
  }

  /**
   * The longest an rssCloud ping waits for its answer, counted from its arrival: its read may
   * wait REQUEST_TIMEOUT_MS for a FETCH_CONCURRENCY slot and then take REQUEST_TIMEOUT_MS, and
   * its fan-out's first attempts get FIRST_ATTEMPTS_GRACE_MS more (9 s by default). Counted from
   * the read's end only, a queued read then a fan-out queued at its subscribers' host kept a
   * pinger ~13 s, and most pinging clients give up after ~10 s and take the ping for failed.
   */
  private answerBudgetMs(): number {
    return 2 * this.deps.config.requestTimeoutMs + FIRST_ATTEMPTS_GRACE_MS;
  }

  /**
   * Waits for a fan-out's first attempts (rssCloud item 26: the ping is answered once its
   * subscribers have been told), for at most REQUEST_TIMEOUT_MS and FIRST_ATTEMPTS_GRACE_MS,
   * and never past `answerBy` (see answerBudgetMs): each attempt sent at once is bounded by
   * REQUEST_TIMEOUT_MS, but those waiting for a slot of their host (DELIVERY_PER_HOST) or of the
   * hub (DELIVERY_CONCURRENCY) were not. A popular feed followed by 2,000 readers of one
   * service, answering in 200 ms, kept its ping 50 s; its pinger, gone after ~10 s, took the
   * ping for failed. The rest go on in the background.
   */
  private async firstAttempts(fanOut: Promise<unknown>, answerBy: Promise<'late'>): Promise<void> {
    const late = deadline(this.deps.config.requestTimeoutMs + FIRST_ATTEMPTS_GRACE_MS);
    try {
      if ((await Promise.race([fanOut, late.reached, answerBy])) === 'late') this.track(fanOut);
    } finally {
      late.clear();
    }
  }

  /**
   * weblogUpdates ping: a site changed. The feed the caller named is read as it is; without
   * one, the site's page stands for its feeds. Resolves once the feeds are read, or after
   * SITE_PING_ANSWER_MS with thanks while the reads go on (see there); deliveries go on in the
   * background, as for a WebSub publish.
   */
  async pingSite(req: SitePingRequest): Promise<SitePingResult> {
    const url = req.feedUrl ?? req.siteUrl;
    const refused = await this.checkPing(url);
    if (refused) return { error: refused };
    this.note({ kind: 'ping', topic: url, ok: true, protocol: 'weblogUpdates' });
    const arrived = this.now();
    const answerBy = deadline(SITE_PING_ANSWER_MS);
    try {
      const work = this.pingUrl(url, req.feedUrl === undefined ? 'site' : 'topic', 'weblogUpdates');
      const pinged = await this.pingedBy(work, answerBy.reached);
      if (pinged === 'late') {
        await this.oweLateReads(url, arrived, work);
        this.deps.log.info('weblogUpdates ping: feeds not read yet, answered; the reads go on', { site: url });
        return { error: null };
      }
      this.track(pinged.fanOut);
      return { error: pinged.error };
    } finally {
      answerBy.clear();
    }
  }

  /**
   * A weblogUpdates ping about to be thanked while its reads go on: as for a publish, a pending
   * read of each followed topic it stands for (the URL itself, the feeds known of its site), so a
   * hub stopped before the reads end reads them when it starts again. Thanked and stored nowhere,
   * the ping was lost with the process, and the pinger, told it worked, never pings again for
   * that post. `since` is the ping's arrival, before any of its reads began; the records go once
   * its reads have ended (kept when the hub's own failure stopped them, for the next start).
   */
  private async oweLateReads(url: string, since: number, work: Promise<unknown>): Promise<void> {
    const site = await this.sites.get(url).catch(() => undefined);
    const owed = await this.owe([url, ...(site?.feeds ?? [])], since);
    if (owed.length === 0) return;
    this.track(
      work.then(
        // Ended by a stop, its feeds' reads may have been dropped before they began (counted as
        // unreadable feeds by the ping): the records stay, and the next start reads them.
        () => (this.deps.http.stopping ? undefined : Promise.all(owed.map((topic) => this.readPaid(topic, since)))),
        () => undefined,
      ),
    );
  }

  /** The limits every ping obeys: URL bounds, and MIN_SECS_BETWEEN_PINGS per topic. */
  private async checkPing(url: string): Promise<HubError | null> {
    const tooMuch = this.checkUrls([url]) ?? unreadable([url]);
    if (tooMuch) return tooMuch;
    const { minSecsBetweenPings } = this.deps.config;
    if (minSecsBetweenPings > 0) {
      const topic = await this.deps.store.getTopic(url);
      // A last read stamped over the interval ahead of now is the clock stepped back since (NTP,
      // a VM restored), not a recent ping: counted, it refused every ping of the topic for as
      // long as the step.
      const since = topic ? this.now() - topic.whenLastCheck : Infinity;
      if (since < minSecsBetweenPings * 1000 && since > -minSecsBetweenPings * 1000) {
        return { code: 'ping_too_soon', minSecs: minSecsBetweenPings };
      }
    }
    return null;
  }

  /**
   * Reads what a ping names. `as` is 'topic' when the caller names a topic (an rssCloud ping, a
   * weblogUpdates feed URL) and 'site' when it names a site (weblogUpdates without a feed).
   *
   * A URL somebody follows is a topic, whatever its content type (WebSub topics may be HTML).
   * A web page nobody follows is a site: it stands for the feeds it links to (remembered, and
   * read again after SITE_RECHECK_SECONDS), each of them read like a pinged topic. A site ping
   * of a page somebody follows does both: the page for its followers, and its feeds. A URL
   * that is not a web page is a topic, whichever way it was named.
   */
  private async pingUrl(url: string, as: 'topic' | 'site', from: 'rssCloud' | 'weblogUpdates'): Promise<Pinged> {
    const followed = (await this.deps.store.countSubscriptions({ topic: url })) > 0;
    const known = await this.sites.get(url);
    const fresh = known !== undefined && known.feeds.length > 0 && this.sites.isFresh(known) ? known : undefined;
    if (fresh && !followed) return this.pingFeeds(url, fresh.feeds);

    this.emit('published', url);
    let result: RefreshResult;
    try {
      result = await this.refresh(url);
    } catch (e) {
      if (!isReadFailure(e)) throw e;
      this.deps.log.info('ping: topic unreadable', { topic: url, error: describeError(e) });
      return { error: { code: 'resource_unreadable', url }, fanOut: NO_FAN_OUT };
    }
    if (!result.changed) this.deps.log.info('ping: topic unchanged, nobody notified', { topic: url });
    const asTopic: Pinged = { error: null, fanOut: result.fanOut };
    if (followed && as === 'topic') return asTopic;
    const page = result.read
      ? isHtmlPage(result.read.headers['content-type'], result.read.body)
      : isHtmlPage(result.topic.contentType, Buffer.alloc(0));
    if (!page) return asTopic;

    let site: Site | undefined = fresh;
    if (!site) {
      try {
        site = await this.sites.learn(url, result.read, known);
      } catch (e) {
        this.deps.log.info('ping: site page unreadable', { site: url, error: describeError(e) });
      }
    }
    const feeds = site?.feeds ?? [];
    this.deps.log.info('ping: site', { site: url, feeds: feeds.join(' ') });
    // A page that links to no feed was still read and stored, which is all an rssCloud ping
    // asks: it succeeds, as on the reference server (clients show a failure to their users).
    // A weblogUpdates ping, naming a site or a page as its feed, hears that no feed was found.
    if (feeds.length === 0) return followed || from === 'rssCloud' ? asTopic : { error: { code: 'no_feeds', url }, fanOut: result.fanOut };
    const pinged = await this.pingFeeds(url, feeds);
    if (!followed) return pinged;
    return { error: null, fanOut: Promise.all([result.fanOut, pinged.fanOut]) };
  }

  /**
   * Reads each feed of a site like a pinged topic, each under its own fetch throttle and ping
   * limit; a feed is never taken for a site in turn. Succeeds when any feed could be read.
   */
  private async pingFeeds(site: string, feeds: string[]): Promise<Pinged> {
    type Outcome = { feed: string; fanOut: Promise<FanOutReport> } | { error: HubError };
    // Settled: a failure of the hub itself on one feed fails the ping only if no feed was read.
    const settled = await Promise.allSettled(
      feeds.map(async (feed): Promise<Outcome> => {
        const refused = await this.checkPing(feed);
        if (refused) return { error: refused };
        this.emit('published', feed);
        try {
          const result = await this.refresh(feed);
          if (!result.changed) this.deps.log.info('ping: feed of a site unchanged, nobody notified', { site, topic: feed });
          return { feed, fanOut: result.fanOut };
        } catch (e) {
          if (!isReadFailure(e)) throw e;
          this.deps.log.info('ping: feed of a site unreadable', { site, topic: feed, error: describeError(e) });
          return { error: { code: 'resource_unreadable', url: feed } };
        }
      }),
    );
    const outcomes = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const read = outcomes.flatMap((o) => ('feed' in o ? [o] : []));
    const hubFailure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (hubFailure && read.length > 0) {
      settled.forEach((r, i) => {
        if (r.status === 'rejected') this.deps.log.error('ping: feed of a site failed', { site, topic: feeds[i], error: describeError(r.reason) });
      });
    }
    if (read.length === 0) {
      if (hubFailure) throw hubFailure.reason;
      const first = outcomes.find((o): o is { error: HubError } => 'error' in o);
      return { error: first?.error ?? { code: 'no_feeds', url: site }, fanOut: NO_FAN_OUT };
    }
    return { error: null, fanOut: Promise.all(read.map((o) => o.fanOut)) };
  }

  private async subscribeRssCloud(
    url: string,
    callback: string | undefined,
    protocol: RssCloudProtocol,
    domain: string | undefined,
    notifyProcedure: string | undefined,
    answerBy: Promise<'late'>,
  ): Promise<HubError | null> {
    try {
      // As the reference server does, this read is a full ping: when it finds a change, the
      // existing subscribers hear of it before this subscriber is answered, as long as a ping
      // would wait for them. The read itself is waited for: its result decides the subscription.
      await this.firstAttempts((await this.refresh(url)).fanOut, answerBy);
    } catch (e) {
      if (!isReadFailure(e)) throw e;
      this.deps.log.info('pleaseNotify: topic unreadable', { topic: url, error: describeError(e) });
      return { code: 'resource_unreadable', url };
    }
    if (callback === undefined) return { code: 'handler_test_failed', detail: 'no usable callback URL' };
    const limited = await this.checkSubscriptionLimits(url, callback);
    if (limited) return limited;
    const now = this.now();
    const probe: Subscription = {
      ...newSubscription(url, callback, protocol, now, now + this.deps.config.rssCloudLeaseSeconds * 1000),
      ...(protocol === 'xml-rpc' && { notifyProcedure: notifyProcedure ?? '' }),
    };
    if (!(await this.testHandler(probe, domain))) {
      this.note({ kind: 'subscribe', topic: url, ok: false, protocol, detail: `${callbackHost(callback)}: handler test failed` });
      return { code: 'handler_test_failed' };
    }
    // Read the existing row only now: deliveries may have updated it during the test.
    const existing = await this.deps.store.getSubscription(url, callback);
    const sub: Subscription = {
      ...probe,
      ...existing,
      protocol,
      ctConsecutiveErrors: 0,
      whenExpires: probe.whenExpires,
      ctUpdates: (existing?.ctUpdates ?? 0) + 1,
      whenLastUpdate: now,
      deliveredVersion: existing?.deliveredVersion ?? (await this.currentVersion(url)),
    };
    if (protocol === 'xml-rpc') sub.notifyProcedure = notifyProcedure ?? '';
    else delete sub.notifyProcedure;
    const refused = await this.storeWithinLimits(sub);
    if (refused) return refused;
    this.emit('subscribed', url);
    this.note({ kind: 'subscribe', topic: url, ok: true, protocol, detail: callbackHost(callback) });
    return null;
  }

  private async currentVersion(topic: string): Promise<number> {
    return (await this.deps.store.getTopic(topic))?.version ?? 0;
  }

  /** rssCloud's synchronous handler test: a challenge with `domain`, else a real notification. */
  private async testHandler(sub: Subscription, domain: string | undefined): Promise<boolean> {
    if (sub.protocol !== 'xml-rpc' && domain !== undefined) {
      return this.deps.verifier.rssCloudChallenge(sub.callback, sub.topic);
    }
    const outcome = await this.deps.notifier.send(sub, { topic: sub.topic, version: 0, body: Buffer.alloc(0), contentType: '' });
    if (!outcome.ok) this.deps.log.info('pleaseNotify: handler test failed', { topic: sub.topic, host: callbackHost(sub.callback), error: outcome.error });
    return outcome.ok;
  }

  // ---- WebSub ---------------------------------------------------------------------------

  /**
   * Accepts a WebSub (un)subscription request. Resolves quickly: to an error when the request
   * must be refused now (4xx), else to null and verification of intent runs in the background.
   */
  async webSubRequest(req: WebSubRequest): Promise<HubError | null> {
    const tooMuch = this.checkUrls([req.topic, req.callback]);
    if (tooMuch) return tooMuch;
    if (req.mode === 'subscribe') {
      const limited = await this.checkSubscriptionLimits(req.topic, req.callback);
      if (limited) return limited;
    }
    try {
      await this.deps.http.checkTarget('callback', req.callback);
    } catch (e) {
      return { code: 'callback_refused', detail: e instanceof OutboundError ? e.message : 'the callback cannot be reached' };
    }
    return this.verifications.accept(req);
  }

  /** After a restart: finishes fan-outs and verifications that were under way. */
  async resume(): Promise<void> {
    await this.deps.notifier.resume();
    await this.verifications.resume();
    await this.readOwed();
  }

  /**
   * With several processes on one database: renews the claims of the verifications this process
   * runs every lease/3, and every lease/2 runs those whose claim expired (their process died).
   * Started by server.ts; stopped by close().
   */
  startClaims(): void {
    this.verifications.startClaims();
  }

  /**
   * Stops the claim timers and wakes verifications waiting to ask their subscriber again: they
   * end without deleting their request, which the next start (or another process) verifies.
   */
  close(): void {
    this.closing = true;
    this.verifications.stopClaims();
    for (const wake of [...this.wakers]) wake();
    this.deps.verifier.close();
  }

  /** Waits `ms` unless the hub closes first: resolves to false if it does. */
  private pause(ms: number): Promise<boolean> {
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve(!this.closing);
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /**
   * WebSub publish of one or more topics. Each is read and, when changed, delivered in the
   * background; the publisher's answer does not wait for subscribers. It does wait for one
   * durable write: a read owed to each topic somebody follows (Store.putPendingReads), so that
   * a hub stopped before the read finishes (a crash, an OOM kill) reads the topic when it
   * starts again (see resume). Answered first and stored nowhere, the publish was lost with
   * the process, and with polling off its subscribers never heard of that change.
   */
  async publish(urls: string[]): Promise<void> {
    const topics = [...new Set(urls)];
    const since = this.now();
    const owed = new Set(await this.owe(topics, since));
    for (const url of topics) {
      this.emit('published', url);
      this.note({ kind: 'publish', topic: url, ok: true, protocol: 'websub' });
      this.track(this.refreshPublished(url, owed.has(url) ? since : undefined));
    }
  }

  /**
   * Stores the reads owed to `topics` (those somebody follows) and resolves to the topics
   * recorded. A store that refuses the write (its database down, its disk full) records none: the
   * publish is still answered and read, and its read tried again while the store is away (see
   * refreshPublished), as before pending reads were kept; only a stop before that read ends loses
   * it then. Refused instead, a publish during a database restart got a 500, and publishers
   * report that to their users as a failed post.
   */
  private async owe(topics: string[], since: number): Promise<string[]> {
    try {
      return await this.deps.store.putPendingReads(topics, since);
    } catch (e) {
      this.deps.log.warn('pending reads not stored; the topics are read, but a stop before their reads end loses them', { topics: topics.length, error: describeError(e) });
      return [];
    }
  }

  /**
   * Reads a published topic in the background; the publisher has its answer already, and cannot
   * know to publish again. A failure on the hub's side (its database restarting, its disk full)
   * is tried again, 1 s later and doubling, up to UNEXPECTED_RETRIES times, as verifications
   * are: dropped at once, the change waited for a poll (POLL_DEFAULT_SECONDS or longer), or, with
   * polling off, for the next publish. `owedSince`: the topic's pending read, deleted once the
   * read has finished, changed, unchanged or unreadable (a failing feed is not read at every
   * start); kept when the hub's own failure or its closing stopped it, for the next start (or,
   * once older than PENDING_READ_ADOPT_AFTER_MS, a running process: see adoptOrphanedReads).
   */
  private async refreshPublished(url: string, owedSince?: number): Promise<unknown> {
    const { log } = this.deps;
    let read = false;
    try {
      const run = await againOnHubFailure('publish', url, () => this.refresh(url), { log, pause: (ms) => this.pause(ms) }, isReadFailure);
      if (run === 'closed') return undefined;
      read = true;
      return run.done.fanOut;
    } catch (e) {
      // Dropped by a stop before it began, the read is still owed: its record stays for the next start.
      if (e instanceof ReadNotStarted) return undefined;
      read = isReadFailure(e);
      if (read) log.info('publish: topic unreadable', { topic: url, error: describeError(e) });
      else log.error('publish failed', { topic: url, error: describeError(e) });
    } finally {
      if (read && owedSince !== undefined) await this.readPaid(url, owedSince);
    }
  }

  /**
   * Deletes a topic's pending read once a read begun after `since` has finished. Its change,
   * if any, is in the outbox by then (staged before the topic records its version), so the
   * deliveries no longer need the record. Left behind by a failure, the record costs one read
   * more at the next start, or once older than PENDING_READ_ADOPT_AFTER_MS.
   */
  private async readPaid(url: string, since: number): Promise<void> {
    try {
      await this.deps.store.deletePendingRead(url, since);
    } catch (e) {
      this.deps.log.warn('pending read not deleted; the topic is read again at the next start, or after PENDING_READ_ADOPT_AFTER_MS', { topic: url, error: describeError(e) });
    }
  }

  /**
   * The pending reads left by a process that stopped before finishing them, read in the
   * background through the normal path (FETCH_PER_HOST, FETCH_MIN_INTERVAL_MS, the topic lock),
   * so the start and readiness do not wait for them. With several processes on one database each
   * reads every record it finds, another process's too, even one it is reading now: harmless,
   * since reads of a topic are serialized (in the process, and across processes by the topic
   * lock) and the second finds the content the first stored unchanged.
   */
  private async readOwed(): Promise<void> {
    const owed = await this.deps.store.listPendingReads();
    if (owed.length === 0) return;
    this.deps.log.info('reading topics whose publish was answered before their read finished', { topics: owed.length });
    for (const read of owed) this.readOwedOne(read);
  }

  /**
   * Reads the pending reads older than PENDING_READ_ADOPT_AFTER_MS (see Sweeper.orphanedReads),
   * as readOwed does at a start: left by a process that died and, on PostgreSQL, may never start
   * again (an instance an autoscaler removed), or kept by a read that failed on the hub's side.
   * Read only at a start, they waited for the next restart of some process. A record this
   * process is already reading that way is skipped. Resolves to how many reads it began.
   */
  adoptOrphanedReads(): Promise<number> {
    // Waited for by idle(), as the sweep is: a stop never closes the store under its listing.
    const adopting = this.adoptOrphans();
    this.track(adopting.then(noop, noop));
    return adopting;
  }

  private async adoptOrphans(): Promise<number> {
    if (this.closing) return 0;
    const orphans = (await this.sweeper.orphanedReads()).filter((r) => !this.readingOwed.has(r.topic));
    if (orphans.length === 0 || this.closing) return 0;
    this.deps.log.info('reading topics whose pending read outlived PENDING_READ_ADOPT_AFTER_MS (its process gone, or its read failed)', { topics: orphans.length });
    for (const read of orphans) this.readOwedOne(read);
    return orphans.length;
  }

  private readOwedOne({ topic, since }: PendingRead): void {
    this.readingOwed.add(topic);
    this.track(this.refreshPublished(topic, since).finally(() => this.readingOwed.delete(topic)));
  }

  /**
   * An authenticated fat ping: the publisher pushes the content itself, signed with the secret
   * configured for the topic's origin, so nothing is fetched. Unsigned or badly signed content
   * is refused and delivers nothing.
   */
  async publishContent(url: string, body: Buffer, contentType: string, signatureHeader: string | undefined): Promise<HubError | null> {
    const secret = this.deps.config.publisherSecrets.get(new URL(url).origin);
    if (secret === undefined || !verifySignature(signatureHeader, secret, body)) {
      this.deps.log.warn('fat ping refused: bad or missing signature', { topic: url });
      this.note({ kind: 'publish', topic: url, ok: false, protocol: 'websub', detail: 'fat ping refused: bad signature' });
      return { code: 'publisher_signature' };
    }
    // The publisher is active, as much as one that pings: the poller leaves the topic alone.
    this.emit('published', url);
    const result = await this.serialize(url, () => this.checker.accept(url, body, contentType), 'none');
    this.track(result.fanOut);
    return null;
  }

  /**
   * Reads a topic and reports the hubs and clouds it advertises (a helper for readers).
   * Discoveries of one URL within FETCH_MIN_INTERVAL_MS of each other share one read, so that
   * nobody can make the hub hammer a third party through this door either.
   */
  discover(url: string): Promise<Discovery | { error: string }> {
    const interval = this.deps.config.fetchMinIntervalMs;
    const now = this.now();
    // Oldest first: forget the reads that are old enough to be made again.
    for (const [u, d] of this.discoveries) {
      if (now - d.settledAt < interval) break;
      this.discoveries.delete(u);
    }
    const recent = this.discoveries.get(url);
    if (recent) return recent.result;
    const entry = { settledAt: Infinity, result: this.readDiscovery(url) };
    if (interval > 0) {
      this.discoveries.set(url, entry);
      void entry.result.then(() => (entry.settledAt = this.now()));
    }
    return entry.result;
  }

  private async readDiscovery(url: string): Promise<Discovery | { error: string }> {
    try {
      const res = await this.deps.http.request('fetch', url, { method: 'GET', maxRedirects: FETCH_MAX_REDIRECTS });
      if (res.status < 200 || res.status >= 300) return { error: `the topic answered HTTP ${res.status}` };
      return parseDiscovery(res.url, res.headers, res.body);
    } catch (e) {
      return { error: describeError(e) };
    }
  }

  // ---- shared ---------------------------------------------------------------------------

  /**
   * Reads a topic and fans a change out. Requests for one topic are serialized, and all that
   * arrive while one read is running share the single read that follows it: one change, one
   * fetch, every subscriber once.
   */
  refresh(url: string): Promise<RefreshResult> {
    return this.read(url, 'both');
  }

  /**
   * A poll's read (see Poller.poll): as refresh, unless a read of the topic ended within
   * `withinMs` of now, as found under the topic lock; then nothing is read and the answer is when
   * that read was. The poller looks before it asks, but two hub processes that looked at once
   * both found the topic due, and both read it, every interval, while their polls stayed in step.
   */
  async pollRead(url: string, withinMs: number): Promise<RefreshResult | { readAt: number }> {
    try {
      return await this.read(url, 'joinOnly', withinMs);
    } catch (e) {
      if (e instanceof ReadElsewhere) return { readAt: e.readAt };
      throw e;
    }
  }

  private read(url: string, sharing: Sharing, unlessReadWithinMs?: number): Promise<RefreshResult> {
    let release = noop;
    return this.serialize(
      url,
      async () => {
        // Again under the lock: another process on the database may have read the topic since.
        let readAt: { at: number | undefined } | undefined;
        if (unlessReadWithinMs !== undefined) {
          readAt = { at: (await this.deps.store.getTopic(url))?.whenLastCheck };
          if (readAt.at !== undefined && readWithin(readAt.at, unlessReadWithinMs)) throw new ReadElsewhere(readAt.at);
        }
        await this.fetchSlot(url, readAt);
        try {
          return await this.checker.fetch(url, { turnHeld: true });
        } finally {
          // Read: the next of its host goes while this one's change is staged.
          release();
        }
      },
      sharing,
      async () => {
        // FETCH_MIN_INTERVAL_MS is waited out before the turn, which it would hold idle.
        await this.fetchSlot(url);
        return (release = await this.deps.http.fetchTurn(url));
      },
    );
  }

  /**
   * Waits until FETCH_MIN_INTERVAL_MS has passed since the topic was last read, so no stream of
   * pings, publishes or subscriptions can make the hub hammer a third party's feed. Requests
   * that arrive meanwhile share the one read that follows (see serialize).
   */
  private async fetchSlot(url: string, readAt?: { at: number | undefined }): Promise<void> {
    const { fetchMinIntervalMs } = this.deps.config;
    if (fetchMinIntervalMs === 0) return;
    // `readAt`, when the caller has just read it under the same lock (a poll's read).
    const last = (readAt ? readAt.at : (await this.deps.store.getTopic(url))?.whenLastCheck) ?? 0;
    // Never longer than the interval: a read stamped ahead of the clock (stepped back since, by
    // NTP or a VM restored) held every read of the topic, pings and polls, for the whole step.
    const wait = Math.min(fetchMinIntervalMs, last + fetchMinIntervalMs - this.now());
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /**
   * Runs a topic's reads and fat pings one at a time, in the order they came. A read that finds
   * another read queued and not yet started shares it (`sharing` 'both' or 'joinOnly'): it will
   * see everything that changed before either asked. A fat ping never shares ('none'): its
   * content is its own, and a read queued behind one must not be answered by it (that read would
   * never fetch the topic); nor is a poll's read shared ('joinOnly'), which may not read at all.
   * `turn`, for a read: takes its turn before the topic lock; its release is called, at the
   * latest, once the lock is given back (more than once is harmless).
   */
  private serialize(url: string, check: () => Promise<CheckResult>, sharing: Sharing, turn?: () => Promise<() => void>): Promise<RefreshResult> {
    const queue = this.refreshing.get(url);
    if (sharing !== 'none' && queue?.joinable) return queue.joinable;
    const entry: { last: Promise<unknown>; joinable?: Promise<RefreshResult> } = queue ?? { last: Promise.resolve() };
    const run: Promise<RefreshResult> = entry.last.then(noop, noop).then(async () => {
      let result: CheckResult;
      let start: (() => Promise<FanOutReport>) | undefined;
      let release: (() => void) | undefined;
      try {
        // A read's turn (FETCH_PER_HOST, FETCH_CONCURRENCY) is taken before the topic lock, which
        // on PostgreSQL holds a connection: reads waiting in a busy host's line held every one
        // (DATABASE_POOL_SIZE), and another host's ping waited behind the burst for a connection.
        // Until it has its turn the read has not begun, so pings of the topic meanwhile share it.
        release = await turn?.();
        // Started: a read asked for from now on may miss what this one reads, so it queues anew.
        if (entry.joinable === run) delete entry.joinable;
        // Several hub processes on one database: one refresh of a topic at a time across all
        // of them, so each version is assigned once (a no-op on the embedded store). A new
        // version goes into the outbox before the topic records it, both under the lock.
        ({ result, start } = await this.deps.store.withTopicLock(url, async () => {
          const r = await check();
          if (!r.content) return { result: r, start: undefined };
          return { result: r, start: await this.deps.notifier.stage(r.content, () => this.deps.store.putTopic(r.topic)) };
        }));
      } catch (e) {
        if (!(e instanceof ReadElsewhere)) this.note({ kind: 'fetch', topic: url, ok: false, detail: describeError(e) });
        throw e;
      } finally {
        release?.();
      }
      this.note({ kind: 'fetch', topic: url, ok: true, detail: result.changed ? `changed, version ${result.topic.version}` : 'unchanged' });
      if (result.topic.ctChecks === 1) this.sweeper.topicCreated();
      const fanOut = result.content && start ? this.distribute(result.content, start) : NO_FAN_OUT;
      return { ...result, fanOut };
    });
    entry.last = run;
    if (sharing === 'both') entry.joinable = run;
    else delete entry.joinable;
    if (!queue) this.refreshing.set(url, entry);
    const settle = (): void => {
      if (entry.last === run && this.refreshing.get(url) === entry) this.refreshing.delete(url);
    };
    run.then(settle, settle);
    return run;
  }

  private async distribute(content: Content, start: () => Promise<FanOutReport>): Promise<FanOutReport> {
    this.emit('change', content);
    const report = await start();
    this.deps.log.info('fan-out', { topic: content.topic, version: content.version, ...report });
    return report;
  }

  /**
   * Removes expired and exhausted subscriptions, and topics nobody follows past the retention
   * window (see Sweeper.removeExpired).
   */
  async removeExpired(): Promise<CleanupReport> {
    // Waited for by idle(), which shutdown awaits before closing the store: caught by a shutdown
    // (SIGTERM during the daily sweep), a pass ran on the closed store, and the hub logged
    // "cleanup failed", an error operators are paged for, at an ordinary stop.
    const swept = this.sweeper.removeExpired();
    // Its failure is the caller's to report; tracked settled either way, it is never logged twice.
    this.track(swept.then(noop, noop));
    return swept;
  }

  /** Tells the operator's activity log (and metrics) what happened; see lib/activity.ts. */
  private note(a: ActivityInput): void {
    this.emit('activity', a);
  }

  /** Waits for background work (verifications, publishes) to settle: shutdown and tests. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((e: unknown) => this.deps.log.error('background task failed', { error: describeError(e) }));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}

function noop(): void {}

/**
 * Whether a refresh failed at the topic (its server, the network, the address guard) rather
 * than in the hub itself (its store on a full or failing disk). Only the first is the
 * publisher's "error reading the resource"; the second is the hub's own failure, which its
 * caller hears as such and the log tells as an error.
 */
/**
 * The rssCloud callback URL: https when the protocol is https-post or the port is 443, an
 * explicit port always, IPv4-mapped prefixes stripped and IPv6 hosts bracketed.
 */
function rssCloudCallback(protocol: RssCloudProtocol, port: string, path: string, host: string): string | undefined {
  const scheme = protocol === 'https-post' || port === '443' ? 'https' : 'http';
  // A `domain` with a path, query, fragment or user in it ended the host early: `cb.example/x`
  // on port 5337 was called at http://cb.example/x:5337/…, on port 80.
  if (/[/?#@\\]/.test(host)) return undefined;
  let h = host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
  if (h.includes(':') && !h.startsWith('[')) h = `[${h}]`;
  const p = path.startsWith('/') ? path : `/${path}`;
  const url = `${scheme}://${h}:${port}${p}`;
  if (hasControlCharacters(url)) return undefined;
  try {
    new URL(url);
  } catch {
    return undefined;
  }
  return url;
}

/**
 * A resource URL with control characters or a space at either end (see hasControlCharacters,
 * hasEdgeSpaces), or with a user name or password (carriesCredentials), gets rssCloud's words for
 * one that cannot be read, before it is read, logged or shown on the operator's pages.
 */
function unreadable(urls: string[]): HubError | null {
  const url = urls.find((u) => hasControlCharacters(u) || hasEdgeSpaces(u) || carriesCredentials(u));
  return url === undefined ? null : { code: 'resource_unreadable', url };
}
