// Name lookups, shared fairly. The system resolver (getaddrinfo) runs on libuv's thread pool,
// which gives lookups at most half its threads (2 of the default 4) and queues the rest where
// nothing can withdraw them: a lookup whose request has given up still runs when its turn
// comes, and then waits as long as the system resolver waits for a name server that does not
// answer (10 s with the usual resolv.conf). So a burst of pings naming hosts under such a name
// server, each answered at REQUEST_TIMEOUT_MS, left behind it a queue of lookups for nobody
// that kept every other lookup (feeds, callbacks) waiting long after: 20 such pings, ~20 s in
// which no named host could be reached. Here a lookup waits for a thread in the hub's own
// queue, which it leaves when its caller's time is up, and lookups of one name at the same
// time share one call.
import dns, { type LookupAddress } from 'node:dns';

/** Resolves a host name to its addresses (family 4 or 6, or any). */
export type Resolver = (hostname: string, family?: number) => Promise<LookupAddress[]>;

export class LookupTimeout extends Error {}

export const systemResolver: Resolver = (hostname, family) =>
  dns.promises.lookup(hostname, { all: true, ...(family === 4 || family === 6 ? { family } : {}) });

/**
 * How many lookups libuv runs at once: half its thread pool, rounded up, as it reads
 * UV_THREADPOOL_SIZE (a whole number, 4 when unset, at least 1, at most 1024). Starting more
 * than this only queues them inside libuv, out of reach.
 */
export function lookupSlots(threadPoolSize: string | undefined): number {
  const n = threadPoolSize === undefined ? 4 : Number.parseInt(threadPoolSize, 10);
  const threads = Number.isNaN(n) || n <= 0 ? 1 : Math.min(n, 1024);
  return Math.floor((threads + 1) / 2);
}

/**
 * `resolve` with at most `slots` calls running at once; a lookup that finds them all busy
 * waits at most `maxWaitMs` for one, then fails with LookupTimeout without ever being started
 * (its caller's own deadline has passed by then: every lookup's caller gives up within the
 * request timeout). A lookup of a name already being looked up (or waiting) gets that answer.
 */
export function sharedLookups(resolve: Resolver, slots: number, maxWaitMs: number): Resolver {
  let running = 0;
  /** In arrival order; a lookup whose wait is over leaves at once. */
  const waiting = new Set<() => void>();
  const pending = new Map<string, Promise<LookupAddress[]>>();

  return (hostname, family) => {
    const key = `${family ?? 0} ${hostname}`;
    const known = pending.get(key);
    if (known) return known;
    const promise = new Promise<LookupAddress[]>((resolveP, rejectP) => {
      const start = (): void => {
        running++;
        let call: Promise<LookupAddress[]>;
        try {
          call = resolve(hostname, family);
        } catch (e) {
          call = Promise.reject(e);
        }
        // The slot is free, and the next lookup started, before the caller hears the answer.
        const done = (): void => {
          running--;
          pending.delete(key);
          const turn = waiting.values().next();
          if (!turn.done) turn.value();
        };
        call.then(
          (addresses) => {
            done();
            resolveP(addresses);
          },
          (e: unknown) => {
            done();
            rejectP(e);
          },
        );
      };
      if (running < slots) return start();
      const turn = (): void => {
        waiting.delete(turn);
        clearTimeout(timer);
        start();
      };
      const timer = setTimeout(() => {
        waiting.delete(turn);
        pending.delete(key);
        rejectP(new LookupTimeout(`no lookup of ${hostname} could start within ${maxWaitMs} ms: the name servers of other lookups are slow to answer`));
      }, maxWaitMs);
      waiting.add(turn);
    });
    pending.set(key, promise);
    return promise;
  };
}
