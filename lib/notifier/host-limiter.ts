// Concurrency per subscriber host and overall. A delivery first waits for a slot of its own
// host, and only then for a global slot, so thousands of deliveries queued for one slow host
// wait in that host's queue and never hold the global slots other hosts need.
import { HostLimiters, Limiter } from './limiter.js';

export class HostLimiter {
  private readonly global: Limiter;
  private readonly perHost: HostLimiters;

  constructor(
    globalMax: number,
    perHostMax: number,
  ) {
    this.global = new Limiter(globalMax);
    this.perHost = new HostLimiters(perHostMax);
  }

  async run<T>(host: string, task: (giveBack: () => void) => Promise<T>): Promise<T> {
    const forHost = this.perHost.of(host).acquire();
    if (forHost) await forHost;
    return this.runHeld(host, task);
  }

  /**
   * Calls `start` once it holds a slot of `host`: at once when one is free, else when one is
   * handed over. A fan-out queues thousands of subscriptions per host; each waits as this one
   * callback rather than as the suspended frames of a delivery, which lived for the whole
   * fan-out and cost more in garbage collection than the deliveries themselves. `start` must
   * end with the slot given back: by runHeld, or by leave.
   */
  enter(host: string, start: () => void): void {
    if (this.perHost.of(host).enter(start)) start();
  }

  /**
   * Runs `task` with the host slot the caller holds (from enter), then a global slot; gives both
   * back. The task may give its global slot back sooner with `giveBack` (once; later calls do
   * nothing), keeping its host slot: a request left waiting for a subscriber that does not answer
   * costs a socket, not work, and must not keep other hosts' deliveries waiting (see Notifier).
   */
  async runHeld<T>(host: string, task: (giveBack: () => void) => Promise<T>): Promise<T> {
    try {
      const forAll = this.global.acquire();
      if (forAll) await forAll;
      let holding = true;
      const giveBack = (): void => {
        if (!holding) return;
        holding = false;
        this.global.release();
      };
      try {
        return await task(giveBack);
      } finally {
        giveBack();
      }
    } finally {
      this.leave(host);
    }
  }

  /** Gives back a host slot taken by enter without running a task in it. */
  leave(host: string): void {
    this.perHost.leave(host);
  }

  /** Deliveries running or waiting, across all hosts. */
  get pending(): number {
    let n = 0;
    for (const l of this.perHost.values()) n += l.pending;
    return n;
  }

}
