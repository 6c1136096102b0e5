// A circuit breaker per subscriber host. After `failureThreshold` failures in a row a host is
// paused for a cooldown that doubles on each failed probe (up to a ceiling); when the pause
// ends one delivery is let through as a probe, and its success closes the circuit. A dead host
// then costs one request per cooldown instead of one per queued delivery, and never holds up
// deliveries to healthy hosts.

export interface BreakerOptions {
  failureThreshold: number;
  baseCooldownMs: number;
  maxCooldownMs: number;
  now?: () => number;
}

interface HostState {
  failures: number;
  /** While open: deliveries wait until this time. 0 = closed. */
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
  lastFailureAt: number;
  /** The subscriptions whose 429 counted among `failures` (see rateLimited). */
  limited?: Set<string>;
}

export interface PausedHost {
  host: string;
  failures: number;
  until: number;
}

export class CircuitBreaker {
  private readonly hosts = new Map<string, HostState>();
  private readonly now: () => number;
  private sweptAt = 0;

  constructor(private readonly opts: BreakerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * 0 when a delivery to `host` may go now (it may be the probe of a half-open circuit),
   * else the time at which to ask again.
   */
  waitUntil(host: string): number {
    const s = this.hosts.get(host);
    if (!s || s.openUntil === 0) return 0;
    const now = this.now();
    if (now < this.pausedUntil(s, now)) return s.openUntil;
    if (s.probing) return now + Math.min(1000, s.cooldownMs);
    s.probing = true;
    return 0;
  }

  /**
   * No pause is longer than its cooldown: one that seems to be is the wall clock stepped back
   * since (NTP, a VM restored), and the host stayed paused for the step, its deliveries given up
   * as failed. (The notifier's times, which these are compared with, are on that clock.)
   */
  private pausedUntil(s: HostState, now: number): number {
    if (s.openUntil - now > s.cooldownMs) s.openUntil = now + s.cooldownMs;
    return s.openUntil;
  }

  /**
   * The delivery that `waitUntil` let through made no request after all (its version was given
   * up, or it failed before sending): the next one may probe instead. Without this the host
   * stayed half-open, every delivery told to wait for a probe that never came back.
   */
  probeNotSent(host: string): void {
    const s = this.hosts.get(host);
    if (s) s.probing = false;
  }

  success(host: string): void {
    this.hosts.delete(host);
  }

  forgetAll(): void {
    this.hosts.clear();
  }

  failure(host: string): void {
    const now = this.now();
    this.forgetQuiet(now);
    const s = this.hosts.get(host) ?? { failures: 0, openUntil: 0, cooldownMs: 0, probing: false, lastFailureAt: now };
    s.failures++;
    s.lastFailureAt = now;
    if (s.probing || (s.openUntil === 0 && s.failures >= this.opts.failureThreshold)) {
      s.cooldownMs = s.cooldownMs === 0 ? this.opts.baseCooldownMs : Math.min(this.opts.maxCooldownMs, s.cooldownMs * 2);
      s.openUntil = now + s.cooldownMs;
      s.probing = false;
    }
    this.hosts.set(host, s);
  }

  /**
   * A 429 to one subscription (`subscription`: its topic and callback, as subscriptionKey makes
   * them) on the host. Services such as NewsBlur rate-limit per feed: a feed pushed too often is
   * refused while the host takes every other feed's pushes, and the subscription waits on its
   * own (the notifier's retries and lane rests). So within a run of failures each
   * subscription's 429 counts once, whatever its number: the host is paused for 429s only when
   * BREAKER_FAILURES different subscriptions are refused in a row (with no success between), as
   * a host refusing everything does. Per subscription, not per callback: many subscribers (rssCloud
   * aggregators above all) take every feed's pushes at one URL, and counted per callback such a
   * host refusing everything was never paused. A probe answered 429 is a failed probe: the host
   * was paused, and that answer does not show it takes deliveries again.
   */
  rateLimited(host: string, subscription: string): void {
    const s = this.hosts.get(host);
    if (s?.probing) return this.failure(host);
    if (s?.limited?.has(subscription)) return;
    this.failure(host);
    const counted = this.hosts.get(host)!;
    (counted.limited ??= new Set()).add(subscription);
  }

  /**
   * A host is remembered only while it keeps failing: one that has not failed for twice the
   * longest cooldown, and is neither paused nor being probed (its subscriptions are gone, or it
   * came back while nothing was sent to it), starts afresh. Without this, every host:port that
   * ever failed stayed, for good. A dead host still sent to is probed, and fails, at least once
   * per longest cooldown, so it is kept. Swept at most once per longest cooldown.
   */
  private forgetQuiet(now: number): void {
    const max = this.opts.maxCooldownMs;
    if (now - this.sweptAt < max) return;
    this.sweptAt = now;
    for (const [host, s] of this.hosts) {
      if (now - s.lastFailureAt > 2 * max && now >= s.openUntil && !s.probing) this.hosts.delete(host);
    }
  }

  /** How many hosts it remembers (failing now or lately). */
  get size(): number {
    return this.hosts.size;
  }

  paused(): PausedHost[] {
    const now = this.now();
    return [...this.hosts.entries()]
      .filter(([, s]) => this.pausedUntil(s, now) > now)
      .map(([host, s]) => ({ host, failures: s.failures, until: s.openUntil }));
  }
}
