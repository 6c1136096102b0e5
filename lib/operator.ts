// What the operator's pages read and the few actions they may take. Read-only answers carry
// callback hosts, never full callback URLs (their query strings can hold tokens) and never
// secrets. Actions that change state are the admin face's to authorize (ADMIN_TOKEN).
import type { Activity, ActivityLog } from './activity.js';
import type { SignatureAlgorithm } from './config.js';
import type { Poller } from './feeds/poller.js';
import type { Notifier } from './notifier/notifier.js';
import { callbackHost, hostKey } from './model.js';
import { sameSecret } from './signature.js';
import { SharedRead } from './shared-read.js';
import type { Store, StoreCounts, TopicSubscriptions } from './store/store.js';
import type { StreamHub } from './stream.js';
import { escapeXml } from './xml-escape.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface Stats {
  startedAt: string;
  uptimeSeconds: number;
  topics: number;
  subscriptions: number;
  subscriptionsByProtocol: Record<string, number>;
  busiestTopics: { url: string; subscriptions: number; version: number; lastUpdate: string | null }[];
  recentDeliveries: Activity[];
  recentFailures: Activity[];
  pausedHosts: { host: string; failures: number; until: string }[];
  deliveryQueueDepth: number;
  /** Deliveries waiting on subscribers that have not answered within DELIVERY_LINGER_AFTER_MS, without a slot. */
  deliveriesLingering: number;
  polledTopics: number;
  streams: number;
}

/** One subscription as its subscriber may see it (see Operator.subscriptionStatus). */
export interface SubscriptionStatus {
  topic: string;
  callback: string;
  protocol: string;
  since: string;
  expires: string;
  leaseSeconds?: number;
  /** Whether deliveries carry X-Hub-Signature. */
  signed: boolean;
  /** With what algorithm, when signed: sha1 for a PubSubHubbub 0.3 subscriber, else WEBSUB_SIGNATURE_ALGORITHM. */
  signature?: SignatureAlgorithm;
  delivered: number;
  failed: number;
  failedInARow: number;
  lastDelivered: string | null;
  lastFailed: string | null;
  /** The topic's newest version, and the newest this subscription was delivered or given up on. */
  topicVersion: number;
  handledVersion: number;
  /** Set while the callback's host is paused after failures in a row (BREAKER_FAILURES). */
  hostPausedUntil: string | null;
}

export interface OperatorDeps {
  store: Store;
  notifier: Notifier;
  activity: ActivityLog;
  poller: Poller;
  streams: StreamHub;
  /** WEBSUB_SIGNATURE_ALGORITHM: what a signed subscription without an algorithm of its own gets. */
  signatureAlgorithm: SignatureAlgorithm;
  now?: () => number;
  /** Outlines of /feeds.opml written per turn of the event loop (see buildOpml). */
  opmlSlice?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * How old the store's part of the pages may be. `/stats.json` is public and polled every 3 s by
 * each open dashboard; at a million subscriptions on PostgreSQL its store reads take most of a
 * second, so they are shared by everyone loading a page within this long (see SharedRead).
 */
const PAGE_READ_MAX_AGE_MS = 2000;

/** How many of the busiest topics /stats.json shows. */
const BUSIEST_SHOWN = 10;

/**
 * The `n` topics with the most subscriptions, most first, and among equals in the order given:
 * as a stable sort of them all, cut to `n`, would give, in one pass that keeps only `n`.
 */
export function busiestOf<T extends { subscriptions: number }>(followed: readonly T[], n: number): T[] {
  const top: T[] = [];
  if (n <= 0) return top;
  for (const t of followed) {
    if (top.length === n && t.subscriptions <= top[n - 1]!.subscriptions) continue;
    // After every one it does not outnumber: an equal that came first stays first.
    let at = top.length;
    while (at > 0 && top[at - 1]!.subscriptions < t.subscriptions) at--;
    top.splice(at, 0, t);
    if (top.length > n) top.pop();
  }
  return top;
}

export class Operator {
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly opmlSlice: number;

  private readonly counts: SharedRead<StoreCounts>;
  private readonly followed: SharedRead<TopicSubscriptions[]>;

  constructor(private readonly deps: OperatorDeps) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    this.opmlSlice = deps.opmlSlice ?? 5000;
    this.counts = new SharedRead(() => deps.store.counts(), PAGE_READ_MAX_AGE_MS);
    this.followed = new SharedRead(() => deps.store.subscribedTopics(), PAGE_READ_MAX_AGE_MS);
  }

  async stats(): Promise<Stats> {
    const { notifier, activity, poller, streams } = this.deps;
    const [counts, followed] = await Promise.all([this.counts.get(), this.followed.get()]);
    const busiest = await this.busiest(followed);
    return {
      startedAt: iso(this.startedAt),
      uptimeSeconds: Math.round((this.now() - this.startedAt) / 1000),
      topics: counts.topics,
      subscriptions: counts.subscriptions,
      subscriptionsByProtocol: counts.byProtocol,
      busiestTopics: busiest,
      recentDeliveries: activity.recent(20, (a) => a.kind === 'delivery'),
      recentFailures: activity.recent(20, (a) => !a.ok),
      pausedHosts: notifier.pausedHosts().map((h) => ({ host: h.host, failures: h.failures, until: iso(h.until) })),
      deliveryQueueDepth: notifier.queueDepth,
      deliveriesLingering: notifier.lingeringDeliveries,
      polledTopics: poller.size,
      streams: streams.size,
    };
  }

  /** The busiest topics as last read (or being read), and the read of the followed topics they come from. */
  private lastBusiest: { from: TopicSubscriptions[]; topics: Promise<Stats['busiestTopics']> } | undefined;

  /**
   * Chosen and read once per read of the followed topics (shared for PAGE_READ_MAX_AGE_MS), as
   * the OPML is built: each load of /stats.json sorted every followed topic (~25-35 ms of the
   * event loop at 100,000) and read the ten busiest from the store again, and anyone may load
   * it as often as they like.
   */
  private busiest(followed: TopicSubscriptions[]): Promise<Stats['busiestTopics']> {
    if (this.lastBusiest?.from !== followed) {
      const { store } = this.deps;
      // From the subscriptions' counts, not the topics: a WebSub subscriber may follow a topic
      // the hub has not read yet.
      const topics = Promise.all(
        busiestOf(followed, BUSIEST_SHOWN).map(async ({ topic: url, subscriptions }) => {
          const t = await store.getTopic(url);
          return { url, subscriptions, version: t?.version ?? 0, lastUpdate: t?.whenLastUpdate ? iso(t.whenLastUpdate) : null };
        }),
      );
      const entry = { from: followed, topics };
      this.lastBusiest = entry;
      // A failed read is not kept: the next load tries again.
      topics.catch(() => {
        if (this.lastBusiest === entry) this.lastBusiest = undefined;
      });
    }
    return this.lastBusiest.topics;
  }

  /** The last OPML built (or being built), and the read of the followed topics it is built from. */
  private lastOpml: { from: TopicSubscriptions[]; title: string; parts: Promise<Buffer[]> } | undefined;

  /**
   * OPML 2.0 listing every topic that has at least one subscription, in URL order. Built once
   * per read of the followed topics (shared for PAGE_READ_MAX_AGE_MS): at 10,000 topics it is
   * megabytes, and anyone may ask for it. Requests that come while it is being built share that
   * build. In parts, UTF-8, to be sent in turn: joined, its one 18 MB buffer (at 100,000 topics)
   * took up to 100 ms to allocate and fill, the event loop held meanwhile.
   */
  async opml(title: string): Promise<Buffer[]> {
    const followed = await this.followed.get();
    if (this.lastOpml?.from !== followed || this.lastOpml.title !== title) {
      this.lastOpml = { from: followed, title, parts: this.buildOpml(title, followed) };
    }
    return this.lastOpml.parts;
  }

  /**
   * Written `opmlSlice` outlines at a time, a turn of the event loop apart: in one piece, the
   * 18 MB of 100,000 topics held the event loop ~400 ms (escaping, joining, encoding), and every
   * ping, delivery and stream of the hub waited that long.
   */
  private async buildOpml(title: string, followed: TopicSubscriptions[]): Promise<Buffer[]> {
    const head = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<opml version="2.0">',
      `  <head><title>${escapeXml(title)}</title><dateCreated>${new Date(this.now()).toUTCString()}</dateCreated></head>`,
      '  <body>',
      '',
    ].join('\n');
    const parts = [Buffer.from(head, 'utf8')];
    // Apart from the read of the followed topics (~15 ms at 100,000 on the embedded store):
    // the sort is the largest piece left in one turn (~15-30 ms).
    await yieldToLoop();
    const urls = followed.map((t) => t.topic).sort();
    for (let from = 0; from < urls.length; from += this.opmlSlice) {
      await yieldToLoop();
      let text = '';
      for (const url of urls.slice(from, from + this.opmlSlice)) text += `    <outline type="rss" text="${escapeXml(url)}" xmlUrl="${escapeXml(url)}"/>\n`;
      parts.push(Buffer.from(text, 'utf8'));
    }
    parts.push(Buffer.from('  </body>\n</opml>\n', 'utf8'));
    return parts;
  }

  /**
   * What the hub holds for one subscription, for its subscriber to see why deliveries do or do
   * not arrive. Only someone who names the exact topic and callback asks, and a subscription
   * with a secret answers only to that secret: the answer is undefined (as for none) otherwise,
   * so it never confirms that a guessed callback follows a topic. Never the secret itself.
   */
  async subscriptionStatus(topic: string, callback: string, secret: string | undefined): Promise<SubscriptionStatus | undefined> {
    const { store, notifier } = this.deps;
    const sub = await store.getSubscription(topic, callback);
    if (!sub || (sub.secret !== undefined && (secret === undefined || !sameSecret(secret, sub.secret)))) return undefined;
    const topicVersion = (await store.getTopic(topic))?.version ?? 0;
    // Keyed as the notifier keys its circuit breaker.
    const host = callbackHost(callback);
    const paused = notifier.pausedHosts().find((h) => h.host === host);
    return {
      topic,
      callback,
      protocol: sub.protocol,
      since: iso(sub.whenCreated),
      expires: iso(sub.whenExpires),
      ...(sub.leaseSeconds !== undefined && { leaseSeconds: sub.leaseSeconds }),
      signed: sub.secret !== undefined,
      ...(sub.secret !== undefined && { signature: sub.signatureAlgorithm ?? this.deps.signatureAlgorithm }),
      delivered: sub.ctUpdates,
      failed: sub.ctErrors,
      failedInARow: sub.ctConsecutiveErrors,
      lastDelivered: sub.whenLastUpdate === null ? null : iso(sub.whenLastUpdate),
      lastFailed: sub.whenLastError === null ? null : iso(sub.whenLastError),
      topicVersion,
      handledVersion: sub.deliveredVersion ?? 0,
      hostPausedUntil: paused ? iso(paused.until) : null,
    };
  }

  async dropSubscription(topic: string, callback: string): Promise<boolean> {
    const deleted = await this.deps.store.deleteSubscription(topic, callback);
    // The operator's own change shows on the next page load.
    this.counts.forget();
    this.followed.forget();
    return deleted;
  }

  /**
   * Without a host: every host (the test API's clear). The host as the operator writes it, read
   * as a URL's would be (`127.000.000.001`, `[::ffff:7f00:1]`, a name in Unicode, a root dot),
   * then keyed as the breaker keys it: the host as /stats.json shows it was the only spelling
   * that woke anything. Undefined, waking nothing, when it is more than a host[:port] (see
   * hostOnly).
   */
  retryHost(host?: string): number | undefined {
    if (host === undefined) return this.deps.notifier.retryHostNow(undefined);
    const key = hostOnly(host);
    return key === undefined ? undefined : this.deps.notifier.retryHostNow(key);
  }
}

/**
 * `host[:port]` keyed as a callback's host is, or undefined when it is not that alone. Read as a
 * URL's authority, `reader.example@cb.example`, `cb.example/feeds` or `cb.example?x` woke (and
 * cleared the breaker of) cb.example, a host the operator did not name as such.
 */
function hostOnly(host: string): string | undefined {
  if (/[\s/\\@?#]/.test(host)) return undefined;
  try {
    return hostKey(new URL(`http://${host}/`).host);
  } catch {
    return undefined;
  }
}
