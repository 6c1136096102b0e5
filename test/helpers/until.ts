// The one way the tests wait for something that WILL happen (a connection closes, a delivery
// arrives, a count reaches a value) when there is no event to wait on: poll the condition until it
// holds or the time is up, and say whether it held. The caller keeps its own `expect` afterwards,
// so a failure reads as it always did.
//
// The bound is generous on purpose: CI runs four test lanes at once on a loaded 2-core machine,
// where a 2 s bound once found a browser's connection still open. A wait that succeeds costs no
// more for a long bound; only a test that is failing anyway waits it out. Do not use this to prove
// that something does NOT happen (sleep, then check): that wait is the test's, and a longer one
// only slows the suite.

/** Polls `condition` every `everyMs` until it holds (true) or `timeoutMs` has passed (false). */
export async function until(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, everyMs = 20 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
