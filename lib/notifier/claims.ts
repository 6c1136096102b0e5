// This process's claims on outbox entries, which matter when several processes share one store:
// a version is delivered by the process that claimed it, which renews its claim while it does,
// loses the version when another took it over (it stopped renewing: it died, or was held up
// past the lease), and takes over the versions of a process that died.
import type { Logger } from '../log.js';
import { outboxEntryKey, type OutboxEntry, type OutboxKey } from '../model.js';
import type { Store } from '../store/store.js';
import type { Claim, Job, Jobs } from './jobs.js';
import { describeError } from './outcome.js';

export interface OutboxClaimsDeps {
  store: Store;
  log: Logger;
  /** The notifier's fan-outs under way, whose claims are renewed (and lost) here. */
  jobs: Jobs;
  /** This process's name on claims. */
  owner: string;
  /** OUTBOX_CLAIM_LEASE_MS. */
  leaseMs: number;
  /** Told of each version lost to another process, once its job here is given up. */
  onLost: (key: OutboxKey) => void;
}

/** Queues claimed entries for the subscriptions still behind them (Notifier.resumeEntries); resolves to how many deliveries. */
export type ResumeEntries = (claimed: OutboxEntry[], heldUntil: number) => Promise<number>;

export class OutboxClaims {
  private renewTimer: NodeJS.Timeout | undefined;
  private takeoverTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Entries claimed and not yet resumed (see adopt), with their claims: renewed too. */
  private readonly resuming = new Map<OutboxEntry, Claim>();
  /** Lanes waiting for the next renewal's answer, their job's lease having passed (see confirmed). */
  private renewalWaiters: (() => void)[] = [];

  constructor(private readonly deps: OutboxClaimsDeps) {}

  /**
   * Claims up to `limit` outbox entries nobody holds; resolves to them with when those claims
   * surely hold until.
   */
  claimFree(limit: number): Promise<{ entries: OutboxEntry[]; heldUntil: number }> {
    const { store, owner, leaseMs } = this.deps;
    // Before the call: the store's claimed_until is counted from a moment no earlier.
    const sent = Date.now();
    return store.claimOutbox(owner, leaseMs, limit).then((entries) => ({ entries, heldUntil: sent + leaseMs }));
  }

  /**
   * With several processes on one database: renews this process's claims every lease/3 (see
   * startRenewals), and every lease/2 takes over entries whose claim expired (their process
   * died), handing them to `resume` as Notifier.resume() does. Started by server.ts (through
   * Notifier.startClaims); stopped by close().
   */
  start(resume: ResumeEntries): void {
    this.startRenewals();
    if (this.takeoverTimer || this.closed) return;
    let taking = false;
    this.takeoverTimer = setInterval(() => {
      if (taking || this.closed) return;
      taking = true;
      this.claimFree(TAKEOVER_BATCH)
        .then(async ({ entries, heldUntil }) => {
          const n = await resume(entries, heldUntil);
          if (n > 0) this.deps.log.info('took over deliveries whose claim expired', { deliveries: n, versions: entries.length });
        })
        .catch((e: unknown) => this.deps.log.warn('taking over outbox entries failed', { error: describeError(e) }))
        .finally(() => (taking = false));
    }, Math.max(1, Math.floor(this.deps.leaseMs / 2)));
    this.takeoverTimer.unref();
  }

  /**
   * Renews, every lease/3, the claims on the versions this process is delivering and on those it
   * claimed and is still resuming. Started by Notifier.resume() before it claims anything:
   * reading a long outbox (a few queries per version) can outlast a lease, and claims left to
   * lapse meanwhile were taken over by other processes, which then delivered those versions too.
   *
   * The answer fences this process's sends (on a store other processes share): a renewal that
   * succeeded moves the claim's heldUntil to when it was sent plus the lease, which no delivery
   * of the version starts after (see Notifier.takeTurn); a key not renewed was taken over by
   * another process (or is gone), and the version is dropped here (see lose). A process held up
   * longer than the lease (load, GC, a paused VM) missed its renewals, another took its fan-out
   * over, and once it ran again it went on sending its queued remainder alongside the taker: both
   * worked through the same subscribers, each sending before either had recorded (a test on a
   * loaded machine: 1,696 subscribers sent to twice).
   */
  startRenewals(): void {
    if (this.renewTimer || this.closed) return;
    const { store, owner, leaseMs, jobs } = this.deps;
    this.renewTimer = setInterval(() => {
      const held: { key: OutboxKey; claim: Claim }[] = [];
      for (const j of jobs.all()) if (!j.givenUp && !j.claim.lost) held.push({ key: outboxKey(j.entry), claim: j.claim });
      for (const [entry, claim] of this.resuming) if (!claim.lost) held.push({ key: outboxKey(entry), claim });
      // Before the call: the store's new claimed_until is counted from a moment no earlier.
      const sent = Date.now();
      store
        .renewOutboxClaims(owner, leaseMs, held.map((h) => h.key))
        .then((renewed) => this.renewed(held, renewed, sent + leaseMs))
        .catch((e: unknown) => this.deps.log.warn('renewing outbox claims failed', { error: describeError(e) }))
        .finally(() => {
          for (const wake of this.renewalWaiters.splice(0)) wake();
        });
    }, Math.max(1, Math.floor(leaseMs / 3)));
    this.renewTimer.unref();
  }

  /** Stops renewals and takeovers, and wakes the lanes waiting in confirmed(). */
  close(): void {
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.takeoverTimer);
    this.renewTimer = this.takeoverTimer = undefined;
    for (const wake of this.renewalWaiters.splice(0)) wake();
  }

  /**
   * A claim this process made or had renewed at `until` less the lease: on a store other processes
   * share, it surely holds until then; on one they do not, for good.
   */
  claimUntil(until: number): Claim {
    return { heldUntil: this.deps.store.sharedClaims ? until : Infinity, lost: false };
  }

  /**
   * Entries just claimed (see claimFree), to be resumed: those that are not already this
   * process's jobs, oldest version first per topic, each with its claim, renewed from now until
   * resumed() is called for it.
   */
  adopt(claimed: OutboxEntry[], heldUntil: number): { entry: OutboxEntry; claim: Claim }[] {
    const entries: OutboxEntry[] = [];
    for (const e of claimed) {
      const held = this.deps.jobs.get(e.topic, e.version);
      if (!held || held.claim.lost) entries.push(e);
      // Its own, claimed again after it lapsed (a stall) with nobody taking it: held anew.
      else if (this.deps.store.sharedClaims) held.claim.heldUntil = Math.max(held.claim.heldUntil, heldUntil);
    }
    entries.sort((a, b) => (a.topic === b.topic ? a.version - b.version : a.topic < b.topic ? -1 : 1));
    return entries.map((entry) => {
      const claim = this.claimUntil(heldUntil);
      this.resuming.set(entry, claim);
      return { entry, claim };
    });
  }

  /** An adopted entry is a job now (its claim renewed as the job's) or was let go. */
  resumed(entry: OutboxEntry): void {
    this.resuming.delete(entry);
  }

  /**
   * A lane whose job's lease passed before its send (see Notifier.takeTurn) waits here, holding
   * no slot, for renewals' answers until one renews the claim (true: it goes on) or finds it lost
   * (false: the lane drops the version). Never stranded: the claim renewed, the version goes on.
   */
  async confirmed(job: Job): Promise<boolean> {
    // Renewals run from resume() on; started here too for a notifier used without it, so a wait always ends.
    this.startRenewals();
    while (!job.claim.lost && !job.givenUp && !this.closed && job.claim.heldUntil <= Date.now()) {
      await new Promise<void>((wake) => this.renewalWaiters.push(wake));
    }
    return !job.claim.lost;
  }

  /** A renewal's answer (see startRenewals): `renewed` of the claims `held` now hold until `until`, the others are lost. */
  private renewed(held: { key: OutboxKey; claim: Claim }[], renewed: OutboxKey[], until: number): void {
    // Nobody else can take a claim on the embedded store: its gate stays open (heldUntil is
    // Infinity), whatever the renewal says of entries removed meanwhile (a clear, say).
    if (!this.deps.store.sharedClaims) return;
    const back = new Set(renewed.map((k) => outboxEntryKey(k.topic, k.version)));
    for (const { key, claim } of held) {
      if (back.has(outboxEntryKey(key.topic, key.version))) {
        // Answers may come out of order when the store is slow: an older one moves nothing back.
        claim.heldUntil = Math.max(claim.heldUntil, until);
        continue;
      }
      if (claim.lost) continue;
      const job = this.deps.jobs.get(key.topic, key.version);
      // A job done with meanwhile (delivered, or given up and its entry removed) is simply gone.
      if (job?.claim === claim && !job.givenUp) this.lose(job);
      else claim.lost = true;
    }
  }

  /**
   * Another process took a version over from this one (see startRenewals): it is given up here,
   * nothing recorded for the subscriptions still owed it and its outbox entry left, which the new
   * owner delivers and removes. Deliveries of it already under way end and are recorded as usual;
   * its lanes drop it at their next turn (see Notifier.takeTurn), woken for it if they sleep out
   * its retry (onLost), and the job goes once each has.
   */
  private lose(job: Job): void {
    const { jobs } = this.deps;
    jobs.lose(job);
    const { topic, version } = job.entry;
    // Its later versions here were ordered behind it by the lanes alone (noEarlier): now they
    // wait, per subscriber, for the new owner to handle it, as for any other process's version.
    for (const other of jobs.all()) if (other.entry.topic === topic && other.entry.version > version) other.noEarlier = false;
    this.deps.onLost({ topic, version });
    this.deps.log.warn('another process took over a fan-out whose claim lapsed here; it delivers the rest', { topic, version, owed: job.remaining.size });
  }
}

/** How many expired entries one takeover round claims. */
const TAKEOVER_BATCH = 100;

function outboxKey({ topic, version }: OutboxKey): OutboxKey {
  return { topic, version };
}
