// A counting semaphore: at most `max` tasks run at once, the rest wait in arrival order. A
// finishing task hands its slot straight to the first waiter, so a newcomer never overtakes
// the queue, and a free slot is taken without a promise (a fan-out takes thousands a second).
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Takes a slot: undefined when one was free, else a promise that resolves once it is handed over. */
  acquire(): Promise<void> | undefined {
    if (this.active < this.max) {
      this.active++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Gives a slot back, to the first waiter if there is one. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
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

  get pending(): number {
    return this.waiting.length + this.active;
  }
}
