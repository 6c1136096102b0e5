// The notifier owns every outbound delivery, whatever the protocol: one concurrency limit,
// one place where outcomes update a subscription's counters, one retry policy.
// rssCloud keeps its own rule (consecutive errors, no retries: the next change is the retry);
// WebSub retries with exponential backoff and jitter, bounded in count and never past the lease.
import type { Config } from '../config.js';
import type { HttpClient } from '../http.js';
import type { Logger } from '../log.js';
import type { Protocol, Subscription } from '../model.js';
import type { Store } from '../store/store.js';
import { Limiter } from './limiter.js';
import { RssCloudPostSender } from './rsscloud-post.js';
import { RssCloudXmlRpcSender } from './rsscloud-xmlrpc.js';
import type { Content, DeliveryOutcome, Sender } from './sender.js';
import { WebSubContentSender } from './websub-content.js';

export interface NotifierDeps {
  config: Config;
  http: HttpClient;
  store: Store;
  log: Logger;
  now?: () => number;
}

export interface FanOutReport {
  attempted: number;
  delivered: number;
  failed: number;
}

export class Notifier {
  private readonly limiter: Limiter;
  private readonly senders: Record<Protocol, Sender>;
  private readonly retries = new Set<NodeJS.Timeout>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly deps: NotifierDeps) {
    this.limiter = new Limiter(deps.config.deliveryConcurrency);
    this.now = deps.now ?? Date.now;
    const post = new RssCloudPostSender(deps.http);
    this.senders = {
      'http-post': post,
      'https-post': post,
      'xml-rpc': new RssCloudXmlRpcSender(deps.http),
      websub: new WebSubContentSender(deps.http, `${deps.config.publicUrl}/websub`, deps.config.websubSignatureAlgorithm),
    };
  }

  /** Whether a subscription should hear of a change now. */
  isActive(sub: Subscription): boolean {
    if (sub.whenExpires <= this.now()) return false;
    // rssCloud gives up on a subscriber after too many failures in a row; WebSub keeps the
    // subscription until its lease ends (REC §7) and bounds retries per notification instead.
    return sub.protocol === 'websub' || sub.ctConsecutiveErrors < this.deps.config.maxConsecutiveErrors;
  }

  /**
   * Sends one content version to every active subscription given. Resolves once each has had
   * its first attempt (each bounded by the request timeout); WebSub retries continue after.
   */
  async fanOut(subs: Subscription[], content: Content): Promise<FanOutReport> {
    const active = subs.filter((s) => this.isActive(s));
    const outcomes = await Promise.all(active.map((s) => this.attempt(s, content, 1)));
    const delivered = outcomes.filter((o) => o.ok).length;
    return { attempted: active.length, delivered, failed: active.length - delivered };
  }

  /** One delivery attempt with no retry and no counters: the rssCloud handler test uses it. */
  send(sub: Subscription, content: Content): Promise<DeliveryOutcome> {
    return this.limiter.run(() => this.senders[sub.protocol].deliver(sub, content));
  }

  get queueDepth(): number {
    return this.limiter.pending;
  }

  close(): void {
    this.closed = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  private async attempt(sub: Subscription, content: Content, attempt: number): Promise<DeliveryOutcome> {
    const outcome = await this.send(sub, content);
    this.deps.log.debug('delivery', {
      topic: content.topic,
      protocol: sub.protocol,
      version: content.version,
      attempt,
      ok: outcome.ok,
      status: outcome.status,
      error: outcome.error,
    });
    await this.record(sub, outcome);
    if (!outcome.ok && !outcome.gone && sub.protocol === 'websub') this.retryLater(sub, content, attempt);
    return outcome;
  }

  private async record(sub: Subscription, outcome: DeliveryOutcome): Promise<void> {
    const current = await this.deps.store.getSubscription(sub.topic, sub.callback);
    if (!current) return;
    if (outcome.gone && current.protocol === 'websub') {
      await this.deps.store.deleteSubscription(sub.topic, sub.callback);
      this.deps.log.info('subscription ended by 410 Gone', { topic: sub.topic });
      return;
    }
    const now = this.now();
    if (outcome.ok) {
      current.ctUpdates++;
      current.ctConsecutiveErrors = 0;
      current.whenLastUpdate = now;
    } else {
      current.ctErrors++;
      current.ctConsecutiveErrors++;
      current.whenLastError = now;
    }
    await this.deps.store.putSubscription(current);
  }

  private retryLater(sub: Subscription, content: Content, attempt: number): void {
    const { websubMaxAttempts, websubRetryBaseMs, websubRetryMaxMs } = this.deps.config;
    if (this.closed || attempt >= websubMaxAttempts) return;
    const ceiling = Math.min(websubRetryMaxMs, websubRetryBaseMs * 2 ** (attempt - 1));
    // Equal jitter: half the delay is fixed so retries still back off, half is random so a
    // recovering host is not hit by every queued retry in the same instant.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    if (this.now() + delay >= sub.whenExpires) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      void this.retry(sub, content, attempt + 1);
    }, delay);
    this.retries.add(timer);
  }

  private async retry(sub: Subscription, content: Content, attempt: number): Promise<void> {
    if (this.closed) return;
    const current = await this.deps.store.getSubscription(sub.topic, sub.callback);
    if (!current || current.protocol !== 'websub' || current.whenExpires <= this.now()) return;
    await this.attempt(current, content, attempt);
  }
}
