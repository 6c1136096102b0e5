// Turns for topic and page reads: at most `perHostMax` of one host at once (FETCH_PER_HOST), and
// `globalMax` across all hosts (FETCH_CONCURRENCY). A read waits first for its host's turn, then
// for a global one, as deliveries do (lib/notifier/host-limiter.ts): a publisher pinging hundreds
// of its feeds at once queues them in its own host's line, so it never holds more than its few
// slots, its server is not hit with every one at once, and another host's read waits behind at
// most a few reads per busy host rather than the whole burst.
import { OutboundError } from './address-guard.js';
import { Limiter } from './notifier/limiter.js';

export class FetchSlots {
  private readonly global: Limiter;
  private readonly perHost = new Map<string, Limiter>();

  constructor(
    globalMax: number,
    private readonly perHostMax: number,
  ) {
    this.global = new Limiter(globalMax);
  }

  /**
   * Takes a turn for a read of `host`, waiting at most `ms` in all for both slots; past that,
   * fails as a read that timed out, which every face already answers in its protocol's shape.
   * Resolves to the function that gives both slots back.
   */
  async take(host: string, ms: number): Promise<() => void> {
    const since = performance.now();
    const own = this.hostLimiter(host);
    await waitTurn(own, ms, () => this.leave(host), `no fetch slot for ${host} free within ${ms} ms (FETCH_PER_HOST reads of it in flight)`);
    try {
      const left = Math.max(0, ms - (performance.now() - since));
      await waitTurn(this.global, left, () => this.global.release(), `no fetch slot free within ${ms} ms (FETCH_CONCURRENCY reads in flight)`);
    } catch (e) {
      this.leave(host);
      throw e;
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.global.release();
      this.leave(host);
    };
  }

  private leave(host: string): void {
    const own = this.perHost.get(host);
    if (!own) return;
    own.release();
    if (own.pending === 0) this.perHost.delete(host);
  }

  private hostLimiter(host: string): Limiter {
    let limiter = this.perHost.get(host);
    if (!limiter) {
      limiter = new Limiter(this.perHostMax);
      this.perHost.set(host, limiter);
    }
    return limiter;
  }
}

/**
 * Takes a slot of `slots`, waiting at most `ms`. The wait has a deadline of its own, apart from
 * the request's: counted in it, reads that got their turn late were cut by it halfway, their slot
 * spent for nothing, and under a flood of slow feeds nearly every read failed.
 */
function waitTurn(slots: Limiter, ms: number, giveBack: () => void, message: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let gaveUp = false;
    let timer: NodeJS.Timeout | undefined;
    const start = (): void => {
      // Handed a slot after giving up: pass it on at once.
      if (gaveUp) return giveBack();
      clearTimeout(timer);
      resolve();
    };
    if (slots.enter(start)) return start();
    timer = setTimeout(() => {
      gaveUp = true;
      reject(new OutboundError('timeout', message));
    }, ms);
  });
}
