// How long to wait before trying again, for deliveries (lib/notifier/) and verifications
// (lib/hub.ts) alike: after the far end failed, backoff; after the hub's own side failed (its
// store refused a read or a write), a fixed few tries, 1 s apart and doubling.

/** Tries of a version (see Notifier.runLane) or a verification (Hub.runVerification) after unexpected failures, 1 s apart and doubling: ~31 s in all. */
export const UNEXPECTED_RETRIES = 5;

/** The wait before trying again after the `failures`-th unexpected failure in a row (1 s, 2 s, 4 s …). */
export function unexpectedRetryDelayMs(failures: number): number {
  return 1000 * 2 ** (failures - 1);
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
