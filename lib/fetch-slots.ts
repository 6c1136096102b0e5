// Turns for topic and page reads: at most `perHostMax` of one host at once (FETCH_PER_HOST), and
// `globalMax` across all hosts (FETCH_CONCURRENCY). A read waits first for its host's turn, then
// for a global one, as deliveries do (lib/notifier/host-limiter.ts): a publisher pinging hundreds
// of its feeds at once queues them in its own host's line, so it never holds more than its few
// slots, its server is not hit with every one at once, and another host's read waits behind at
// most a few reads per busy host rather than the whole burst.
import { OutboundError } from './address-guard.js';
import { HostLimiters, Limiter } from './notifier/limiter.js';

/**
 * Reads waiting at once in one host's line; past it, a read fails at once as one that timed out.
 * The line is bounded by count, not time: bounded by REQUEST_TIMEOUT_MS, a blog host pinging 500
 * of its feeds at once (answering in 300 ms) had 145 read and the rest never read, their
 * subscribers never told. 1,000 holds a burst twice that size, drained in ~40 s at 8 reads of
 * 300 ms at a time. It bounds what a host whose feeds never answer costs when pinged steadily:
 * such a host drains FETCH_PER_HOST reads per REQUEST_TIMEOUT_MS (2 a second by default), so its
 * line fills and the pings beyond fail at once, as they all did before. A waiting read holds only
 * closures and its topic's queued refresh (no socket of its own, no database connection), on the
 * order of a kilobyte (not measured), so a full line costs about a megabyte.
 */
export const WAITING_PER_HOST = 1000;

export class FetchSlots {
  private readonly global: Limiter;
  private readonly perHost: HostLimiters;
  /** Each read waiting for a turn, by the means to end its wait (see stop). */
  private readonly waits = new Set<(e: OutboundError) => void>();
  private stopped = false;

  constructor(
    globalMax: number,
    perHostMax: number,
    private readonly waitingPerHostMax = WAITING_PER_HOST,
  ) {
    this.global = new Limiter(globalMax);
    this.perHost = new HostLimiters(perHostMax);
  }

  /**
   * Takes a turn for a read of `host`: its host's, waited for however long it takes unless the
   * host's line is full (then it fails at once), then a global one, waited for at most `ms`.
   * Either failure is a read that timed out, which every face already answers in its protocol's
   * shape. Resolves to the function that gives both slots back.
   */
  async take(host: string, ms: number): Promise<() => void> {
    const own = this.perHost.of(host);
    if (own.pending - own.running >= this.waitingPerHostMax) {
      throw new OutboundError('timeout', `${this.waitingPerHostMax} reads of ${host} already waiting for their turn (FETCH_PER_HOST reads of it in flight)`);
    }
    // A free slot is taken at once; only a full one costs a wait (a promise, closures, a timer).
    if (!own.tryEnter()) await this.wait(own, undefined, () => this.perHost.leave(host));
    if (!this.global.tryEnter()) {
      try {
        await this.wait(this.global, ms, () => this.global.release(), `no fetch slot free within ${ms} ms (FETCH_CONCURRENCY reads in flight)`);
      } catch (e) {
        this.perHost.leave(host);
        throw e;
      }
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.global.release();
      this.perHost.leave(host);
    };
  }

  /**
   * The hub is stopping: every read waiting for a turn fails now, and from now on one that would
   * have to wait fails at once. A host's line may hold a thousand reads, minutes of them for a
   * slow host, and a stop waits for the reads under way: it would outlast a supervisor's stop
   * timeout (Docker's 10 s) and be killed. Nothing durable is lost: they are reads, not
   * subscriptions; a change they would have seen is read at the next ping or poll.
   */
  stop(): void {
    this.stopped = true;
    for (const end of [...this.waits]) end(new ReadNotStarted());
  }

  /** Takes a slot of `slots`, waiting at most `ms` (undefined: as long as it takes, or until stop). */
  private wait(slots: Limiter, ms: number | undefined, giveBack: () => void, message = ''): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let gaveUp = false;
      let timer: NodeJS.Timeout | undefined;
      const end = (e: OutboundError): void => {
        gaveUp = true;
        clearTimeout(timer);
        this.waits.delete(end);
        reject(e);
      };
      const start = (): void => {
        // Handed a slot after giving up: pass it on at once.
        if (gaveUp) return giveBack();
        clearTimeout(timer);
        this.waits.delete(end);
        resolve();
      };
      if (slots.enter(start)) return start();
      if (this.stopped) return end(new ReadNotStarted());
      this.waits.add(end);
      // The wait has a deadline of its own, apart from the request's: counted in it, reads that
      // got their turn late were cut by it halfway, their slot spent for nothing, and under a
      // flood of slow feeds nearly every read failed.
      if (ms !== undefined) timer = setTimeout(() => end(new OutboundError('timeout', message)), ms);
    });
  }
}

/**
 * A read dropped because the hub is stopping (see FetchSlots.stop): still an OutboundError, as
 * callers answering a ping take it, but no answer of the topic's, so a read owed to a publish
 * (Store.putPendingReads) is kept for the next start rather than counted as done.
 */
export class ReadNotStarted extends OutboundError {
  constructor() {
    super('timeout', 'the hub is stopping: read not started');
  }
}
