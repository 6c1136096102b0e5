// The fan-outs under way, each a Job: one content version in the outbox, the subscriptions it is
// still owed to, and its body while deliveries need it; Jobs keeps them by topic and version
// with their bodies' bytes, which OUTBOX_MAX_BYTES bounds (see outbox-budget.ts).
import type { OutboxEntry } from '../model.js';
import type { FanOutReport } from './notifier.js';
import type { Content } from './sender.js';

/**
 * This process's claim on an outbox entry, as far as it knows (see OutboxClaims.startRenewals):
 * shared by the entry while it is being resumed and by its job after.
 */
export interface Claim {
  /**
   * Until when the claim surely holds (Date.now() clock): when the claim or its last successful
   * renewal was sent to the store, plus OUTBOX_CLAIM_LEASE_MS. Another process takes it over only
   * once the store's claimed_until, never earlier than this, has passed. Infinity on a store no
   * other process shares (see Store.sharedClaims): nobody can take it there.
   */
  heldUntil: number;
  /** A renewal found it no longer this process's: another took it over (or it is gone). */
  lost: boolean;
}

export interface Job {
  entry: OutboxEntry;
  /** This process's claim on the entry: no delivery of it starts once heldUntil has passed (see Notifier.takeTurn). */
  claim: Claim;
  /** Its body, while the first pass runs or a delivery of it is under way (see job-content.ts). */
  content?: Content;
  /** The read of its body from the store under way, shared by every delivery that needs it meanwhile. */
  reading?: Promise<Content | undefined>;
  /** Deliveries holding `content` (see job-content.ts): it is dropped when the last lets go after the first pass. */
  users: number;
  /** The subscriptions it is still owed to, added as their lanes are queued (see queueing). */
  remaining: Set<string>;
  /** Still being queued in chunks: it is not finished while some of its subscriptions are not in `remaining` yet. */
  queueing: boolean;
  /** True once known that no other process holds an older version of the topic (see Notifier.stage). */
  noEarlier?: boolean;
  /**
   * Its first attempts, counted until each subscription had one: Notifier.stage() reports them; for a
   * resumed fan-out they only say when to stop holding the body (see Notifier.settleFirst).
   */
  first: FirstPass;
  /** Its body's size, counted against OUTBOX_MAX_BYTES. */
  bytes: number;
  /** Given up to keep the outbox within OUTBOX_MAX_BYTES (see outbox-budget.ts): its lanes skip it. */
  givenUp?: boolean;
  /** A lane stopped trying it after failures on the hub's side (see Notifier.runLane): its entry stays, to be resumed. */
  resumeLater?: boolean;
}

export interface FirstPass {
  attempted: number;
  pending: number;
  delivered: number;
  done: (report: FanOutReport) => void;
}

/** A first pass of `count` attempts to come, reported to `done` once each has had one. */
export function firstPass(count: number, done: (report: FanOutReport) => void): FirstPass {
  return { attempted: count, pending: count, delivered: 0, done };
}

/**
 * The fan-outs under way, by topic then version: looked up several times per delivery, without
 * building a key string each time. Also the bytes of their bodies.
 */
export class Jobs {
  private readonly byTopic = new Map<string, Map<number, Job>>();
  /** The bodies' bytes of the jobs neither given up nor lost. */
  bytes = 0;

  get(topic: string, version: number): Job | undefined {
    return this.byTopic.get(topic)?.get(version);
  }

  set(job: Job): void {
    const { topic, version } = job.entry;
    this.delete(topic, version);
    let versions = this.byTopic.get(topic);
    if (!versions) this.byTopic.set(topic, (versions = new Map()));
    versions.set(version, job);
    this.bytes += job.bytes;
  }

  delete(topic: string, version: number): void {
    const versions = this.byTopic.get(topic);
    const job = versions?.get(version);
    if (!versions || !job) return;
    versions.delete(version);
    if (versions.size === 0) this.byTopic.delete(topic);
    if (counted(job)) this.bytes -= job.bytes;
  }

  /**
   * Whether this process holds that version: a job of its own, not lost to another process. The
   * ordering checks ask (see Notifier.noneEarlier): a version lost here is another's to deliver,
   * and its later versions wait for it as for any other process's.
   */
  holds(topic: string, version: number): boolean {
    const job = this.get(topic, version);
    return job !== undefined && !job.claim.lost;
  }

  /** Whether that version was given up (see outbox-budget.ts); its lanes skip it. */
  givenUp(topic: string, version: number): boolean {
    return this.get(topic, version)?.givenUp === true;
  }

  /** Marks a job given up: its bytes no longer count, and its body is no longer held. */
  giveUp(job: Job): void {
    if (job.givenUp) return;
    if (counted(job)) this.bytes -= job.bytes;
    job.givenUp = true;
    job.content = undefined;
  }

  /**
   * Marks a job lost to another process (see OutboxClaims.lose): its bytes no longer count, and
   * its body is no longer held. It stays until its lanes have each dropped it (see Notifier.handled).
   */
  lose(job: Job): void {
    if (job.claim.lost) return;
    if (counted(job)) this.bytes -= job.bytes;
    job.claim.lost = true;
    job.content = undefined;
  }

  /** Each topic's jobs not given up, oldest version first; the topics holding the most bytes first. */
  heldByTopic(): Job[][] {
    const topics: { bytes: number; jobs: Job[] }[] = [];
    for (const versions of this.byTopic.values()) {
      const jobs = [...versions.values()].filter(counted).sort((a, b) => a.entry.version - b.entry.version);
      if (jobs.length > 0) topics.push({ bytes: jobs.reduce((n, j) => n + j.bytes, 0), jobs });
    }
    return topics.sort((a, b) => b.bytes - a.bytes).map((t) => t.jobs);
  }

  all(): Job[] {
    const out: Job[] = [];
    for (const versions of this.byTopic.values()) out.push(...versions.values());
    return out;
  }
}

/** Whether this process still delivers a job (neither given up nor lost), and so counts its bytes in Jobs.bytes. */
export function counted(job: Job): boolean {
  return !job.givenUp && !job.claim.lost;
}
