// One read of something costly shared by everyone who asks while it runs, and for `maxAgeMs`
// after it settled. The operator's public pages and the metrics scrape count every
// subscription on PostgreSQL; how often anyone loads them must not decide how often the
// database does that.
export class SharedRead<T> {
  private current: Promise<T> | undefined;
  /** When the current read settled; undefined while it runs. */
  private settledAt: number | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    // Monotonic: on the wall clock, a step back (NTP, a VM restored) kept the last read for as
    // long as the step, so /metrics and the operator's pages showed counts an hour old.
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The next get() reads again (after a change the caller made itself and wants to see). */
  forget(): void {
    this.current = undefined;
  }

  get(): Promise<T> {
    const current = this.current;
    if (current !== undefined && (this.settledAt === undefined || this.now() - this.settledAt < this.maxAgeMs)) return current;
    const run = this.read();
    this.current = run;
    this.settledAt = undefined;
    run.then(
      () => {
        if (this.current === run) this.settledAt = this.now();
      },
      () => {
        // A failed read is not kept: the next caller tries again.
        if (this.current === run) this.current = undefined;
      },
    );
    return run;
  }
}
