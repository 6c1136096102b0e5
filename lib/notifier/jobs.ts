// The fan-outs under way, each a Job: one content version in the outbox, the subscriptions it is
// still owed to, and its body while deliveries need it; Jobs keeps them by topic and version
// with their bodies' bytes, which OUTBOX_MAX_BYTES bounds (see Notifier.withinBudget).
import type { OutboxEntry } from '../model.js';
import type { FanOutReport } from './notifier.js';
import type { Content } from './sender.js';

export interface Job {
  entry: OutboxEntry;
  /** Its body, while the first pass runs or a delivery of it is under way (see Notifier.useContent). */
  content?: Content;
  /** The read of its body from the store under way, shared by every delivery that needs it meanwhile. */
  reading?: Promise<Content | undefined>;
  /** Deliveries holding `content` (see Notifier.useContent): it is dropped when the last lets go after the first pass. */
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
  /** Given up to keep the outbox within OUTBOX_MAX_BYTES (see Notifier.withinBudget): its lanes skip it. */
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
  /** The bodies' bytes of the jobs not given up. */
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
    if (!job.givenUp) this.bytes -= job.bytes;
  }

  /** Whether that version was given up (see Notifier.withinBudget); its lanes skip it. */
  givenUp(topic: string, version: number): boolean {
    return this.get(topic, version)?.givenUp === true;
  }

  /** Marks a job given up: its bytes no longer count, and its body is no longer held. */
  giveUp(job: Job): void {
    if (job.givenUp) return;
    job.givenUp = true;
    job.content = undefined;
    this.bytes -= job.bytes;
  }

  /** Each topic's jobs not given up, oldest version first; the topics holding the most bytes first. */
  heldByTopic(): Job[][] {
    const topics: { bytes: number; jobs: Job[] }[] = [];
    for (const versions of this.byTopic.values()) {
      const jobs = [...versions.values()].filter((j) => !j.givenUp).sort((a, b) => a.entry.version - b.entry.version);
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
