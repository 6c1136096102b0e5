// Unit test of the per-host circuit breaker (lib/notifier/breaker.ts) on a clock of its own: what
// it remembers over time. Its effect on deliveries is tested over HTTP in test/delivery.test.ts.
import { expect } from 'chai';
import { CircuitBreaker } from '../lib/notifier/breaker.js';

describe('circuit breaker memory', () => {
  const MAX = 1000;
  let now = 0;
  const breaker = (): CircuitBreaker => new CircuitBreaker({ failureThreshold: 3, baseCooldownMs: 100, maxCooldownMs: MAX, now: () => now });
  beforeEach(() => {
    now = 1_000_000;
  });

  it('forgets a host that has not failed for twice the longest cooldown', () => {
    const b = breaker();
    b.failure('gone:80');
    b.failure('paused:80');
    b.failure('paused:80');
    b.failure('paused:80');
    expect(b.size).to.equal(2);
    now += 2 * MAX + 1;
    b.failure('other:80');
    expect(b.size, 'only the host that just failed').to.equal(1);
    expect(b.waitUntil('paused:80'), 'starts afresh: closed').to.equal(0);
  });

  it('lets another delivery probe when the one let through sent nothing', () => {
    const b = breaker();
    for (let i = 0; i < 3; i++) b.failure('host:80');
    now = b.waitUntil('host:80');
    expect(b.waitUntil('host:80'), 'this one probes').to.equal(0);
    expect(b.waitUntil('host:80'), 'the others wait for it').to.be.greaterThan(now);
    b.probeNotSent('host:80');
    expect(b.waitUntil('host:80'), 'the next may probe').to.equal(0);
  });

  it('keeps a dead host that is still probed, at the longest cooldown, and its pause', () => {
    const b = breaker();
    for (let i = 0; i < 3; i++) b.failure('dead:80');
    for (let round = 0; round < 20; round++) {
      const until = b.waitUntil('dead:80');
      expect(until, `round ${round}: paused`).to.be.greaterThan(now);
      now = until;
      expect(b.waitUntil('dead:80'), 'the probe may go').to.equal(0);
      // The probe takes a while to fail; meanwhile another host's failure sweeps.
      now += MAX / 2;
      b.failure(`other-${round}:80`);
      b.failure('dead:80');
    }
    expect(b.paused().map((p) => p.host)).to.include('dead:80');
    expect(b.waitUntil('dead:80') - now, 'still at the longest cooldown').to.equal(MAX);
  });

  it('counts a 429 once per subscription in a run of failures: one rate-limited feed never pauses its host, three different subscriptions in a row do', () => {
    const b = breaker();
    for (let i = 0; i < 10; i++) b.rateLimited('feeds:80', '/push/busy');
    expect(b.waitUntil('feeds:80'), 'one subscription refused ten times: not paused').to.equal(0);
    b.rateLimited('feeds:80', '/push/other');
    expect(b.waitUntil('feeds:80'), 'two subscriptions: not yet').to.equal(0);
    b.success('feeds:80');
    b.rateLimited('feeds:80', '/push/third');
    expect(b.waitUntil('feeds:80'), 'a success in between starts the run afresh').to.equal(0);
    b.rateLimited('feeds:80', '/push/busy');
    b.rateLimited('feeds:80', '/push/other');
    expect(b.waitUntil('feeds:80'), 'three different subscriptions in a row: paused').to.be.greaterThan(now);
  });

  it('a probe answered 429 is a failed probe, even to a subscription already counted', () => {
    const b = breaker();
    for (const cb of ['/a', '/b', '/c']) b.rateLimited('feeds:80', cb);
    now = b.waitUntil('feeds:80');
    expect(b.waitUntil('feeds:80'), 'the probe may go').to.equal(0);
    b.rateLimited('feeds:80', '/a');
    expect(b.waitUntil('feeds:80') - now, 'paused again, for twice the cooldown').to.equal(200);
  });
});
