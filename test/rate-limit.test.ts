// The per-address token buckets (lib/rate-limit.ts), as a unit: a clock the test moves, so that
// "refilled" and "drained" are exact. (Over HTTP the limits are tested in the protocol suites.)
import { expect } from 'chai';
import { RateLimiter } from '../lib/rate-limit.js';

describe('rate limiter: per-address buckets', function () {
  // 60 a minute = one token a second; a burst of 3.
  const limiter = (tracked?: number): { rate: RateLimiter; clock: { t: number } } => {
    const clock = { t: 0 };
    return { rate: new RateLimiter(60, 3, () => clock.t, tracked), clock };
  };
  const drain = (rate: RateLimiter, key: string): void => {
    while (rate.take(key).ok);
  };

  it('refuses an address past its burst, with the seconds until its next token, and refills with time', () => {
    const { rate, clock } = limiter();
    for (let i = 0; i < 3; i++) expect(rate.take('a').ok).to.equal(true);
    expect(rate.take('a')).to.deep.equal({ ok: false, retryAfterSeconds: 1 });
    expect(rate.take('b').ok, 'another address has its own bucket').to.equal(true);
    clock.t += 1000;
    expect(rate.take('a').ok).to.equal(true);
    expect(rate.take('a').ok).to.equal(false);
  });

  // Nothing refills while the clock stands still, so every bucket is one the old limiter could not
  // prune: it kept them all.
  it('tracks no more addresses than its bound, however many drained addresses it has seen', () => {
    const { rate } = limiter(100);
    for (let i = 0; i < 1_000; i++) drain(rate, `10.0.${i >> 8}.${i & 255}`);
    expect(rate.size).to.be.at.most(100);
  });

  it('forgets addresses that have gone longest without a request, never one that keeps sending', () => {
    const { rate } = limiter(100);
    drain(rate, 'busy');
    drain(rate, 'quiet');
    for (let i = 0; i < 1_000; i++) {
      drain(rate, `new-${i}`);
      expect(rate.take('busy').ok, `busy, after ${i} new addresses`).to.equal(false);
    }
    // 'quiet' was pushed out: it starts again with a full bucket.
    expect(rate.take('quiet').ok).to.equal(true);
  });

  // The old limiter scanned every bucket on each request once more than 50,000 had not refilled:
  // at the default bound, 200,000 requests from new addresses then take ~10^10 steps (minutes,
  // ended by mocha's timeout); two generations of 25,000 take a fraction of a second.
  it('costs the same per request with 50,000 drained addresses tracked as with none', () => {
    const { rate } = limiter();
    for (let i = 0; i < 250_000; i++) rate.take(`2001:db8:${i.toString(16)}::/64`);
    expect(rate.size).to.be.at.most(50_000);
  });
});
