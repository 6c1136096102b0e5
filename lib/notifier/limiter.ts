// A counting semaphore: at most `max` tasks run at once, the rest wait in arrival order. A
// finishing task hands its slot straight to the first waiter, so a newcomer never overtakes
// the queue, and a free slot is taken without a promise (a fan-out takes thousands a second).
export class Limiter {
  private active = 0;
  /** Waiters in arrival order from `head` on: a fan-out queues thousands per host, and shift() on an array that long copies it. */
  private waiting: (() => void)[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  /** Takes a slot: undefined when one was free, else a promise that resolves once it is handed over. */
  acquire(): Promise<void> | undefined {
    if (this.tryEnter()) return undefined;
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Takes a slot if one is free (none is while others wait: a released slot passes to them). */
  tryEnter(): boolean {
    if (this.active >= this.max) return false;
    this.active++;
    return true;
  }

  /**
   * Takes a slot for `start`: true when one was free (the caller calls `start` itself), else
   * false, and `start` is called when a slot is handed to it, in a microtask of its own: a
   * `start` that gives the slot straight back hands it to the next one, and called from
   * release() directly, a queue of thousands of those would nest a call per entry.
   */
  enter(start: () => void): boolean {
    if (this.tryEnter()) return true;
    this.waiting.push(() => queueMicrotask(start));
    return false;
  }

  /** Gives a slot back, to the first waiter if there is one. */
  release(): void {
    if (this.head === this.waiting.length) {
      if (this.head > 0) {
        this.waiting = [];
        this.head = 0;
      }
      this.active--;
      return;
    }
    const next = this.waiting[this.head]!;
    this.waiting[this.head++] = noop;
    // Drop the served part once it is most of the array, so the queue does not grow without end.
    if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    next();
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const wait = this.acquire();
    if (wait) await wait;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /** Slots taken (waiters not counted). */
  get running(): number {
    return this.active;
  }

  get pending(): number {
    return this.waiting.length - this.head + this.active;
  }
}

function noop(): void {}

/**
 * One Limiter per host, made when the host first asks and dropped once nothing runs in it or
 * waits for it: a hub that delivers to, or reads from, ever new hosts (every blog of a platform
 * has its own) keeps no entry per host it ever met. Deliveries (HostLimiter) and reads
 * (FetchSlots) each keep one.
 */
export class HostLimiters {
  private readonly byHost = new Map<string, Limiter>();

  constructor(private readonly perHostMax: number) {}

  /** The limiter of `host`, made if it has none. */
  of(host: string): Limiter {
    let limiter = this.byHost.get(host);
    if (!limiter) {
      limiter = new Limiter(this.perHostMax);
      this.byHost.set(host, limiter);
    }
    return limiter;
  }

  /** Gives back a slot of `host`, and forgets the host once nothing holds or waits for it. */
  leave(host: string): void {
    const own = this.byHost.get(host);
    if (!own) return;
    own.release();
    if (own.pending === 0) this.byHost.delete(host);
  }

  /** Hosts with a task running or waiting. */
  get size(): number {
    return this.byHost.size;
  }

  values(): IterableIterator<Limiter> {
    return this.byHost.values();
  }
}
