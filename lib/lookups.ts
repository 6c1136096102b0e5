// Name lookups, shared fairly. The system resolver (getaddrinfo) runs on libuv's thread pool,
// which gives lookups at most half its threads (2 of the default 4) and queues the rest where
// nothing can withdraw them: a lookup whose request has given up still runs when its turn
// comes, and then waits as long as the system resolver waits for a name server that does not
// answer (10 s or more with the usual resolv.conf). So a burst of pings naming hosts under such a name
// server, each answered at REQUEST_TIMEOUT_MS, left behind it a queue of lookups for nobody
// that kept every other lookup (feeds, callbacks) waiting long after: 20 such pings, ~20 s in
// which no named host could be reached. Here a lookup waits for a thread in the hub's own
// queue, which it leaves unstarted once nobody waits for it, and lookups of one name at the
// same time share one call. While requests that keep naming such hosts hold every thread, a
// name answered lately gets that answer at once, and other names wait their turn.
import dns, { type LookupAddress } from 'node:dns';

/** Resolves a host name to its addresses (family 4 or 6, or any). */
export type Resolver = (hostname: string, family?: number) => Promise<LookupAddress[]>;

export class LookupTimeout extends Error {
  override name = 'LookupTimeout';
}

export const systemResolver: Resolver = (hostname, family) =>
  dns.promises.lookup(hostname, { all: true, ...(family === 4 || family === 6 ? { family } : {}) });

/**
 * How many lookups libuv runs at once: half its thread pool, rounded up, as it reads
 * UV_THREADPOOL_SIZE (C's atoi into an unsigned count: 4 when unset, 0 or nonsense is 1, a
 * negative number or more than 1024 is 1024). Starting more than this only queues them inside
 * libuv, out of reach.
 */
export function lookupSlots(threadPoolSize: string | undefined): number {
  const n = threadPoolSize === undefined ? 4 : Number.parseInt(threadPoolSize, 10);
  const threads = Number.isNaN(n) || n === 0 ? 1 : n < 0 ? 1024 : Math.min(n, 1024);
  return Math.floor((threads + 1) / 2);
}

interface Caller {
  ok: (addresses: LookupAddress[]) => void;
  fail: (e: unknown) => void;
  timer?: NodeJS.Timeout;
}

interface Lookup {
  key: string;
  hostname: string;
  family: number | undefined;
  /** Who waits for it to start; undefined once it has. */
  callers: Set<Caller> | undefined;
  /** The call, once started. */
  call?: Promise<LookupAddress[]>;
}

export interface SharedLookupOptions {
  /** Lookups running at once (lookupSlots). */
  slots: number;
  /** Longest a caller waits for a lookup to start. */
  maxWaitMs: number;
  /** How old an answer may be to stand in for a lookup that cannot start at once (default 5 minutes). */
  recentMs?: number;
  /** Names whose last answer is kept for that (default 10,000). */
  recentMax?: number;
  now?: () => number;
}

/** The stand-in caller of a refresh: it keeps the lookup in the queue, and needs no answer. */
const KEEPER: Caller = { ok: () => {}, fail: () => {} };

/**
 * `resolve` with at most `slots` calls running at once. A lookup that finds them all busy
 * gets the name's last answer if it came at most `recentMs` ago, as a caching resolver would
 * give it (so the hosts the hub reaches, its subscribers' above all, stay reachable while slow
 * names hold the slots), and the name is looked up again when a slot frees, ahead of names
 * with no answer; else it waits for a slot. Each caller waits at most `maxWaitMs` (every
 * caller gives up within the request timeout), then fails with LookupTimeout, and a lookup
 * nobody waits for any more leaves the queue without being started. A lookup of a name already
 * being looked up, or waiting to be, gets that answer. With a slot free every lookup asks the
 * resolver afresh, and an answer is only ever as old as the last lookup that gave it.
 */
export function sharedLookups(resolve: Resolver, opts: SharedLookupOptions): Resolver {
  const { slots, maxWaitMs, recentMs = 300_000, recentMax = 10_000, now = () => performance.now() } = opts;
  let running = 0;
  /** Waiting to start, in arrival order: names with a last answer to refresh first. */
  const refreshes = new Set<Lookup>();
  const queue = new Set<Lookup>();
  /** Waiting or running, by family and name. */
  const byKey = new Map<string, Lookup>();
  /** The last answer for each name, oldest first. */
  const recent = new Map<string, { addresses: LookupAddress[]; at: number }>();
  // The oldest name is found with one iterator kept from lookup to lookup: everything before it
  // has been forgotten, and names answered again go to the end, after it. A new iterator each
  // time walked from the table's start over every entry forgotten since V8 last compacted it,
  // thousands at the default recentMax: ~7 µs per answer once it held 10,000 names (a lookup
  // itself costs the event loop ~25 µs), ~50 µs at 100,000.
  const oldest = recent.keys();
  const remember = (key: string, addresses: LookupAddress[]): void => {
    recent.delete(key);
    recent.set(key, { addresses, at: now() });
    if (recent.size > recentMax) recent.delete(oldest.next().value!);
  };

  const start = (lookup: Lookup): void => {
    refreshes.delete(lookup);
    queue.delete(lookup);
    running++;
    const callers = lookup.callers ?? new Set<Caller>();
    lookup.callers = undefined;
    for (const c of callers) clearTimeout(c.timer);
    let call: Promise<LookupAddress[]>;
    try {
      call = resolve(lookup.hostname, lookup.family);
    } catch (e) {
      call = Promise.reject(e);
    }
    lookup.call = call;
    // The slot is free, and the next lookup started, before the callers hear the answer.
    const done = (): void => {
      running--;
      byKey.delete(lookup.key);
      const next = refreshes.size > 0 ? refreshes.values().next() : queue.values().next();
      if (!next.done) start(next.value);
    };
    call.then(
      (addresses) => {
        done();
        remember(lookup.key, addresses);
        for (const c of callers) c.ok(addresses);
      },
      (e: unknown) => {
        done();
        recent.delete(lookup.key);
        for (const c of callers) c.fail(e);
      },
    );
  };

  /** Leaves the queue unstarted, nobody waiting for it any more. */
  const drop = (lookup: Lookup): void => {
    refreshes.delete(lookup);
    queue.delete(lookup);
    byKey.delete(lookup.key);
  };

  return (hostname, family) => {
    const key = `${family ?? 0} ${hostname}`;
    const known = byKey.get(key);
    if (running >= slots) {
      const last = recent.get(key);
      if (last && now() - last.at <= recentMs) {
        if (!known) {
          // Its refresh waits no longer than the answer may stand in.
          const refresh: Lookup = { key, hostname, family, callers: new Set([KEEPER]) };
          byKey.set(key, refresh);
          refreshes.add(refresh);
          setTimeout(() => {
            if (refresh.callers?.delete(KEEPER) && refresh.callers.size === 0) drop(refresh);
          }, recentMs).unref();
        }
        return Promise.resolve(last.addresses);
      }
    }
    if (known?.call) return known.call;
    return new Promise<LookupAddress[]>((ok, fail) => {
      const caller: Caller = { ok, fail };
      const lookup: Lookup = known ?? { key, hostname, family, callers: new Set() };
      lookup.callers?.add(caller);
      if (!known) {
        byKey.set(key, lookup);
        if (running < slots) return start(lookup);
        queue.add(lookup);
      }
      caller.timer = setTimeout(() => {
        if (lookup.callers?.delete(caller) && lookup.callers.size === 0) drop(lookup);
        fail(new LookupTimeout(`no lookup of ${hostname} could start within ${maxWaitMs} ms: the name servers of other lookups are slow to answer`));
      }, maxWaitMs);
    });
  };
}
