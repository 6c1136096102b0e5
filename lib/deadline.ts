// A timer to race work against: the hub's ping answers, a metrics scrape's wait for the store,
// and a stop's wait for polls each give up on something after a while, and must stop their timer
// once nothing waits for it (a pending timer keeps a stopping process alive).

/** `reached` settles with 'late' after `ms`; `clear` stops the timer. */
export function deadline(ms: number): { reached: Promise<'late'>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const reached = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  return { reached, clear: () => clearTimeout(timer) };
}
