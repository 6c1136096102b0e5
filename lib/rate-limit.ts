// Token buckets per client address: `perMinute` requests a minute on average, bursts up to
// `burst`. Refill is computed from timestamps when a request arrives, so no timer runs. A hub
// that anyone can POST to must not let one address make it fetch and notify without bound.

import { v6Groups } from './address-guard.js';

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/**
 * The bucket a client address counts against: an IPv4 address, or an IPv6 /64. One IPv6
 * subscriber line holds a whole /64, so counting single IPv6 addresses would let anyone step
 * around the limit by changing the interface half of their address.
 */
export function rateKey(address: string): string {
  const groups = address.includes(':') ? v6Groups(address.split('%')[0] ?? '') : null;
  if (!groups) return address;
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0] = groups;
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket.
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0xffff) return [g >> 8, g & 0xff, h >> 8, h & 0xff].join('.');
  return `${[a, b, c, d].map((x) => x.toString(16)).join(':')}::/64`;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The most addresses tracked at once, in two generations of half as many: an address is found in
 * the current one or moved to it from the previous one, and when the current one is full the
 * previous one is dropped whole. (A scan for refilled buckets ran on every request once 50,000
 * had not refilled, which that many IPv6 /64s under a low limit could arrange: a CPU cost per
 * request that the limiter exists to prevent. A Map in order of use is no cheaper: V8 skips the
 * holes its deletions leave, one by one, to reach the oldest entry.) A drained address dropped this
 * way starts again with a full bucket, but only after 25,000 others have sent requests since its
 * own last one: a client with that many addresses could already spread its requests over them.
 */
const TRACKED = 50_000;

export class RateLimiter {
  private current = new Map<string, Bucket>();
  private previous = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    // Monotonic: on the wall clock, a step back (NTP, a VM restored) drained every bucket by the
    // step, and each address that had sent a request was refused until the clock caught up.
    private readonly now: () => number = () => performance.now(),
    private readonly tracked = TRACKED,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** False when configured with 0 a minute: every request passes. */
  get limits(): boolean {
    return this.perMinute > 0;
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  take(key: string): RateDecision {
    if (!this.limits) return { ok: true };
    const now = this.now();
    let b = this.current.get(key);
    if (!b) {
      b = this.previous.get(key);
      if (b) this.previous.delete(key);
      else b = { tokens: this.burst, at: now };
      this.current.set(key, b);
      if (this.current.size >= this.tracked / 2) {
        this.previous = this.current;
        this.current = new Map();
      }
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) };
  }
}
