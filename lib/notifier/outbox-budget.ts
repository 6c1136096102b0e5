// OUTBOX_MAX_BYTES: the bound on the bodies this process holds for delivery, and which versions
// are given up past it (docs/adr/0007-a-bound-on-what-waits-for-delivery.md).
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { Job, Jobs } from './jobs.js';
import { describeError } from './outcome.js';

export interface OutboxBudgetDeps {
  config: Pick<Config, 'outboxMaxBytes'>;
  store: Pick<Store, 'deleteOutbox'>;
  log: Logger;
}

/**
 * Keeps the bodies this process holds for delivery within OUTBOX_MAX_BYTES. Without a bound, a
 * topic that changes every second, with large bodies and a subscriber that never answers, kept
 * a retry window of versions (~10 minutes by default, gigabytes) on disk or, on the embedded
 * store, the smaller bodies in memory. Past the bound, versions are given up, down to nine
 * tenths of it (so a process held at the bound does this once per tenth, not per version):
 * first those a later version of the same topic follows (their subscribers hear of the topic
 * again), then the newest ones; each time from the topics holding the most bytes, oldest
 * first, so what one topic's failing subscribers hold up costs that topic, not the fan-outs of
 * others. Never `keep`, the version just counted. A version given up leaves the outbox at once
 * (a delivery of it already under way finishes); the lanes that still owe it skip it without
 * counting a failure against their subscriptions (the hub gave up, not the subscriber).
 */
export function withinBudget(jobs: Jobs, keep: Job, deps: OutboxBudgetDeps): void {
  const max = deps.config.outboxMaxBytes;
  if (max === 0 || jobs.bytes <= max) return;
  const target = Math.floor(max * 0.9);
  let versions = 0;
  let bytes = 0;
  const giveUp = (job: Job | undefined): void => {
    if (!job || job === keep || jobs.bytes <= target) return;
    versions++;
    bytes += job.bytes;
    jobs.giveUp(job);
    const { topic, version } = job.entry;
    deps.store.deleteOutbox(topic, version).catch((e: unknown) => deps.log.warn('removing a version given up failed', { topic, version, error: describeError(e) }));
  };
  for (const held of jobs.heldByTopic()) for (const job of held.slice(0, -1)) giveUp(job);
  // Ranked again: each topic now holds its newest alone.
  for (const held of jobs.heldByTopic()) giveUp(held.at(-1));
  if (versions > 0) deps.log.warn('the outbox was over OUTBOX_MAX_BYTES: versions were given up', { versions, bytes, limit: max });
}
