// WebSub's verifications of intent (REC §5.3) as the hub runs them: a request accepted with a
// 202 is stored, then its subscriber is asked, again a few times when it does not answer, and
// what it confirmed is applied unless a newer request for the same topic and callback was
// applied first. Stored requests survive a restart, and with several processes on one database
// each runs those it claimed, taking over those of a process that died. The GETs themselves
// are lib/verify.ts's.
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ActivityInput } from './activity.js';
import { againOnHubFailure, backoff } from './backoff.js';
import type { Config } from './config.js';
import { OutboundError, type HttpClient } from './http.js';
import type { Logger } from './log.js';
import { webSubLimitDenialReason, webSubTopicUnfetchableReason, type HubError } from './messages.js';
import { callbackHost, type PendingVerification, type Subscription, type WebSubRequest } from './model.js';
import { describeError } from './notifier/outcome.js';
import type { Store } from './store/store.js';
import { limitError, subscriptionLimits } from './subscription-limits.js';
import type { Verifier } from './verify.js';

/** Verifications a restart (or a takeover) starts per turn of the event loop. */
const VERIFICATION_CHUNK = 500;

export interface WebSubVerificationsDeps {
  config: Config;
  store: Store;
  http: HttpClient;
  verifier: Verifier;
  log: Logger;
  now: () => number;
  /** This process's name on claims (the notifier's, as on the outbox). */
  owner: string;
  /** Whether the hub is closing: a takeover starts no more verifications. */
  closing: () => boolean;
  /** Waits `ms` unless the hub closes first: resolves to false if it does. */
  pause: (ms: number) => Promise<boolean>;
  /** Runs work in the background, waited for by the hub's idle() and logged if it fails. */
  track: (p: Promise<unknown>) => void;
  /** Tells the operator's activity log (and metrics) what happened. */
  note: (a: ActivityInput) => void;
  /** A topic gained a subscriber (for the poller). */
  subscribed: (topic: string) => void;
}

export class WebSubVerifications {
  /** Ids of the verifications this process is running (their claims are renewed). */
  private readonly verifying = new Set<string>();
  private claimTimers: NodeJS.Timeout[] = [];

  constructor(private readonly deps: WebSubVerificationsDeps) {}

  /**
   * Stores a request the hub accepted and verifies it in the background; hub_busy when
   * WEBSUB_MAX_PENDING_VERIFICATIONS are waiting already.
   */
  async accept(req: WebSubRequest): Promise<HubError | null> {
    // Each request waits in memory and in the store until its callback answers, up to
    // WEBSUB_VERIFY_ATTEMPTS over minutes when it does not: without a bound, requests naming
    // callbacks that never answer, from as many addresses as the rate limit needed, held the
    // hub's memory for as long as someone sent them.
    if (this.verifying.size >= this.deps.config.websubMaxPendingVerifications) {
      this.deps.log.warn('websub: request refused, too many verifications waiting', { topic: req.topic, waiting: this.verifying.size });
      return { code: 'hub_busy' };
    }
    // Persisted before the 202, so a restart still verifies what was accepted.
    const createdAt = this.deps.now();
    // Claimed by this process, which runs it; another takes it over only if this one dies.
    const pending: PendingVerification = {
      id: randomUUID(),
      ...req,
      createdAt,
      claimedBy: this.deps.owner,
      claimedUntil: Date.now() + this.deps.config.outboxClaimLeaseMs, // the stores' clock, whatever this hub was given
    };
    await this.deps.store.putVerification(pending);
    this.deps.track(this.runVerification(pending, this.deps.config.websubVerifyDelayMs));
    return null;
  }

  /** After a restart: verifications that were under way. */
  async resume(): Promise<void> {
    // Every verification nobody runs: on the embedded store all of them; with other processes
    // on one database, not those they are running.
    await this.takeOverVerifications(1_000_000_000);
  }

  /**
   * With several processes on one database: renews the claims of the verifications this process
   * runs every lease/3, and every lease/2 runs those whose claim expired (their process died).
   * Started by server.ts (through the hub); stopped by stopClaims().
   */
  startClaims(): void {
    if (this.claimTimers.length > 0) return;
    const { store, config, owner, log } = this.deps;
    const lease = config.outboxClaimLeaseMs;
    const renew = setInterval(() => {
      store.renewVerificationClaims(owner, lease, [...this.verifying]).catch((e: unknown) => log.warn('renewing verification claims failed', { error: describeError(e) }));
    }, Math.max(1, Math.floor(lease / 3)));
    let taking = false;
    const takeover = setInterval(() => {
      if (taking) return;
      taking = true;
      this.takeOverVerifications(100)
        .catch((e: unknown) => log.warn('taking over verifications failed', { error: describeError(e) }))
        .finally(() => (taking = false));
    }, Math.max(1, Math.floor(lease / 2)));
    renew.unref();
    takeover.unref();
    this.claimTimers = [renew, takeover];
  }

  stopClaims(): void {
    for (const t of this.claimTimers) clearInterval(t);
    this.claimTimers = [];
  }

  private async takeOverVerifications(limit: number): Promise<void> {
    const { store, config, owner } = this.deps;
    const claimed = await store.claimVerifications(owner, config.outboxClaimLeaseMs, limit);
    for (let i = 0; i < claimed.length; i++) {
      // Started VERIFICATION_CHUNK at a time, a turn of the event loop apart: each start makes
      // its challenge and request synchronously, and the 20,000 a restart may find
      // (WEBSUB_MAX_PENDING_VERIFICATIONS) took the hub away from everything else for ~1 s.
      if (i > 0 && i % VERIFICATION_CHUNK === 0) {
        await yieldToLoop();
        // Those not started stay stored, for the next start (as close() leaves those waiting).
        if (this.deps.closing()) return;
      }
      const pending = claimed[i]!;
      if (!this.verifying.has(pending.id)) this.deps.track(this.runVerification(pending));
    }
  }

  /**
   * `delayMs`: how long to wait first, for a request just answered 202. Subscribers keep what
   * that answer tells them (a secret, a token, "pending") after it comes, some with a write that
   * replaces the whole record; a GET sent the same millisecond raced that write, and Indiekit's
   * reader lost the lease it renews by (NewsBlur its "verified" mark). Google's hub, which they
   * were written against, verified from a task queue, well after its answer.
   */
  private async runVerification(pending: PendingVerification, delayMs = 0): Promise<void> {
    this.verifying.add(pending.id);
    let finished = true;
    try {
      // The hub stops meanwhile: the request stays stored, and is verified after the restart.
      if (delayMs > 0 && !(await this.deps.pause(delayMs))) {
        finished = false;
        return;
      }
      // Dropped at the hub's own failure (its store refusing a write after the subscriber
      // confirmed), a subscriber would believe it is subscribed and have nothing.
      const run = await againOnHubFailure('websub: verification', pending.topic, () => this.verifyWebSub(pending), this.deps);
      finished = run === 'closed' ? false : run.done;
    } finally {
      this.verifying.delete(pending.id);
      if (finished) await this.deps.store.deleteVerification(pending.id);
    }
  }

  /** The lease the hub grants: the request's, else the default, within the configured bounds. */
  private grantLease(requested: number | undefined): number {
    const { websubLeaseDefaultSeconds, websubLeaseMinSeconds, websubLeaseMaxSeconds } = this.deps.config;
    return Math.min(websubLeaseMaxSeconds, Math.max(websubLeaseMinSeconds, requested ?? websubLeaseDefaultSeconds));
  }

  /**
   * Whether a newer request for the same (topic, callback) was verified and applied since this
   * one was accepted (it removed this one's record): then this one does nothing more, whatever
   * its subscriber answers (REC §5.1: each request overrides the previous state once verified).
   * `applying`: this one was verified and is about to be applied; still pending, it withdraws
   * the older requests of its pair first, so none of them can be applied after it. A newer
   * request that is not verified withdraws nothing: anyone can send one, and the callback's
   * owner declining it must not cancel the subscribe it did ask for.
   */
  private async superseded(req: PendingVerification, applying: boolean): Promise<boolean> {
    const { store } = this.deps;
    if (applying ? await store.supersedeOlderVerifications(req) : await store.hasVerification(req.id)) return false;
    return this.overridden(req);
  }

  private overridden(req: PendingVerification): true {
    this.deps.log.info('websub: superseded by a newer request for the same topic and callback, nothing applied', { topic: req.topic, host: callbackHost(req.callback), mode: req.mode });
    this.deps.note({ kind: req.mode, topic: req.topic, ok: false, protocol: 'websub', detail: `${callbackHost(req.callback)}: superseded by a newer request` });
    return true;
  }

  /** Resolves to false when the hub closed before it finished (its request is kept), else true. */
  private async verifyWebSub(req: PendingVerification): Promise<boolean> {
    const { store, verifier, log, config } = this.deps;
    if (req.mode === 'subscribe') {
      // Validation (REC §5.2): a topic this hub may never fetch cannot be delivered, so the
      // subscription is denied rather than verified and left silent forever.
      try {
        await this.deps.http.checkTarget('fetch', req.topic);
      } catch (e) {
        // A lookup that failed for now (no answer in time, a name server's SERVFAIL) is no
        // reason to deny for good: every read of the topic is still checked when it connects.
        if (e instanceof OutboundError && e.code === 'timeout') {
          log.info('websub: topic not resolved for now, verifying anyway', { topic: req.topic, host: callbackHost(req.callback), reason: e.message });
        } else {
          // A denial would tell the subscriber that its newer, applied request failed.
          if (await this.superseded(req, false)) return true;
          const reason = webSubTopicUnfetchableReason(e instanceof OutboundError ? e.code : undefined);
          log.info('websub: subscription denied', { topic: req.topic, host: callbackHost(req.callback), reason });
          this.deps.note({ kind: 'deny', topic: req.topic, ok: false, protocol: 'websub', detail: reason });
          await verifier.webSubDenied(req.callback, req.topic, reason);
          return true;
        }
      }
    }
    const lease = req.mode === 'subscribe' ? this.grantLease(req.leaseSeconds) : undefined;
    let requestedAt: number;
    for (let attempt = 1; ; attempt++) {
      // Not asked of the subscriber at all once overridden.
      if (await this.superseded(req, false)) return true;
      requestedAt = this.deps.now();
      const answer = await verifier.webSubIntent({
        callback: req.callback,
        mode: req.mode,
        topic: req.topic,
        ...(lease !== undefined && { leaseSeconds: lease }),
        ...(req.verifyToken !== undefined && { verifyToken: req.verifyToken }),
      });
      // A callback that did not answer (down, busy, restarting) is asked again a few times,
      // backing off as deliveries do; one that answered anything but the challenge is not.
      // One whose certificate the hub refused is asked again too: its owner, seeing why, may
      // renew or fix it within those minutes (as often after an expiry), or one server of
      // several behind its name may still show an old one; a refused certificate says nothing
      // of the subscriber's intent either, and the retries are a few requests, backed off.
      // Not asked: the request stays stored, and is verified after the restart.
      if (answer === 'closed') return false;
      const again = (answer === 'unreachable' || answer === 'bad_certificate') && attempt < config.websubVerifyAttempts;
      const why = answer === 'bad_certificate' ? ': its certificate was refused' : again ? ': no answer' : '';
      const detail = `${req.mode} ${callbackHost(req.callback)}${why}${again ? ', will ask again' : ''}`;
      this.deps.note({ kind: 'verify', topic: req.topic, ok: answer === 'verified', protocol: 'websub', detail });
      if (!again) {
        // A failed verification leaves whatever existed exactly as it was (REC §5.1).
        if (answer !== 'verified') return true;
        break;
      }
      // The hub stops meanwhile: the request stays stored, and is verified after the restart.
      if (!(await this.deps.pause(backoff(attempt, config.websubRetryBaseMs, config.websubRetryMaxMs)))) return false;
    }
    // Checked right before each write. On the embedded store nothing runs in between. On
    // PostgreSQL a subscribe holds its request's row while it writes (putVerifiedSubscription);
    // an unsubscribe's delete could still follow a newer subscribe verified through another
    // process in the same instant (one query's time, against that one's verification). Accepted.
    if (req.mode === 'unsubscribe') {
      if (await this.superseded(req, true)) return true;
      await store.deleteSubscription(req.topic, req.callback);
      log.info('websub: unsubscribed', { topic: req.topic, host: callbackHost(req.callback) });
      this.deps.note({ kind: 'unsubscribe', topic: req.topic, ok: true, protocol: 'websub', detail: callbackHost(req.callback) });
      return true;
    }
    const existing = await store.getSubscription(req.topic, req.callback);
    const sub: Subscription = {
      ctUpdates: 0,
      ctErrors: 0,
      whenCreated: requestedAt,
      whenLastUpdate: null,
      whenLastError: null,
      ...existing,
      topic: req.topic,
      callback: req.callback,
      protocol: 'websub',
      ctConsecutiveErrors: 0,
      deliveredVersion: existing?.deliveredVersion ?? (await store.getTopic(req.topic))?.version ?? 0,
      leaseSeconds: lease,
      // The lease counts from the verification request (REC §5.3.1).
      whenExpires: requestedAt + (lease ?? 0) * 1000,
    };
    delete sub.notifyProcedure;
    // A re-subscribe may change or drop the secret.
    if (req.secret !== undefined) sub.secret = req.secret;
    else delete sub.secret;
    // And may come from another client: the newest request says which algorithm its reader checks.
    if (req.signatureAlgorithm !== undefined) sub.signatureAlgorithm = req.signatureAlgorithm;
    else delete sub.signatureAlgorithm;
    // Deliveries name the hub by the URL the newest request was sent to (the root, /websub, …).
    if (req.hubPath !== undefined) sub.hubPath = req.hubPath;
    else delete sub.hubPath;
    if (await this.superseded(req, true)) return true;
    const stored = await this.deps.store.putVerifiedSubscription(sub, subscriptionLimits(config), req.id);
    // Overridden while it waited for the limits' locks (a newer request through another process).
    if (stored === 'superseded') return this.overridden(req);
    const refused = stored && limitError(config, stored, sub.callback);
    if (refused) {
      // Verified, but others filled the topic or the callback host meanwhile (REC §5.2: deny).
      log.info('websub: subscription denied', { topic: req.topic, host: callbackHost(req.callback), reason: refused.detail });
      await verifier.webSubDenied(req.callback, req.topic, webSubLimitDenialReason(refused.detail));
      return true;
    }
    this.deps.subscribed(sub.topic);
    this.deps.note({ kind: 'subscribe', topic: req.topic, ok: true, protocol: 'websub', detail: callbackHost(req.callback) });
    log.info('websub: subscribed', { topic: req.topic, host: callbackHost(req.callback), lease });
    return true;
  }
}
