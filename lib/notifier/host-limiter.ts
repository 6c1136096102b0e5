// Concurrency per subscriber host and overall. A delivery first waits for a slot of its own
// host, and only then for a global slot, so thousands of deliveries queued for one slow host
// wait in that host's queue and never hold the global slots other hosts need.
import { Limiter } from './limiter.js';

export class HostLimiter {
  private readonly global: Limiter;
  private readonly perHost = new Map<string, Limiter>();

  constructor(
    globalMax: number,
    private readonly perHostMax: number,
  ) {
    this.global = new Limiter(globalMax);
  }

  async run<T>(host: string, task: () => Promise<T>): Promise<T> {
    let limiter = this.perHost.get(host);
    if (!limiter) {
      limiter = new Limiter(this.perHostMax);
      this.perHost.set(host, limiter);
    }
    const own = limiter;
    // Host slot first, then a global one; one async frame instead of a run() per level.
    const forHost = own.acquire();
    if (forHost) await forHost;
    try {
      const forAll = this.global.acquire();
      if (forAll) await forAll;
      try {
        return await task();
      } finally {
        this.global.release();
      }
    } finally {
      own.release();
      if (own.pending === 0 && this.perHost.get(host) === own) this.perHost.delete(host);
    }
  }

  /** Deliveries running or waiting, across all hosts. */
  get pending(): number {
    let n = 0;
    for (const l of this.perHost.values()) n += l.pending;
    return n;
  }
}

/** The host part of a URL (host:port), the unit of per-host limits and circuit breaking. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
