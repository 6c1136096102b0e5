// How long to wait before trying again, for deliveries (lib/notifier/), verifications
// (lib/websub-verifications.ts) and publishes alike: after the far end failed, backoff; after
// the hub's own side failed (its store refused a read or a write), a fixed few tries, 1 s apart
// and doubling (againOnHubFailure).
import type { Logger } from './log.js';
import { describeError } from './notifier/outcome.js';

/** Tries of a version (see Notifier.runLane) or a verification (WebSubVerifications.runVerification) after unexpected failures, 1 s apart and doubling: ~31 s in all. */
export const UNEXPECTED_RETRIES = 5;

/** The wait before trying again after the `failures`-th unexpected failure in a row (1 s, 2 s, 4 s … from `baseMs`, 1 s but in tests). */
export function unexpectedRetryDelayMs(failures: number, baseMs = 1000): number {
  return baseMs * 2 ** (failures - 1);
}

/**
 * Runs `attempt`, and again after a failure on the hub's side (its store refused a read or a
 * write: a database restarting, a full disk), 1 s later and doubling, up to UNEXPECTED_RETRIES
 * times, as deliveries are. Rejects with the last failure once they run out, or at once with a
 * failure `notOurs` says is not the hub's; resolves to 'closed' if the hub closes meanwhile
 * (`hub.pause` resolves to false).
 */
export async function againOnHubFailure<T>(
  what: string,
  topic: string,
  attempt: () => Promise<T>,
  hub: { log: Logger; pause: (ms: number) => Promise<boolean> },
  notOurs: (e: unknown) => boolean = () => false,
): Promise<{ done: T } | 'closed'> {
  for (let failures = 0; ; failures++) {
    try {
      return { done: await attempt() };
    } catch (e) {
      if (notOurs(e) || failures >= UNEXPECTED_RETRIES) throw e;
      hub.log.warn(`${what} failed on the hub's side; trying again`, { topic, error: describeError(e) });
      if (!(await hub.pause(unexpectedRetryDelayMs(failures + 1)))) return 'closed';
    }
  }
}

/**
 * Exponential backoff with equal jitter: half the delay is fixed so retries still back off,
 * half is random so a recovering host is not hit by every queued retry in the same instant.
 */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = longestBackoff(attempt, baseMs, maxMs);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** The longest wait backoff gives after `attempt`: doubling from `baseMs`, up to `maxMs`. */
export function longestBackoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** (attempt - 1));
}

/** The longest the waits between `maxAttempts` attempts can add up to. */
export function retryWindow(maxAttempts: number, baseMs: number, maxMs: number): number {
  let total = 0;
  for (let attempt = 1; attempt < maxAttempts; attempt++) total += longestBackoff(attempt, baseMs, maxMs);
  return total;
}
