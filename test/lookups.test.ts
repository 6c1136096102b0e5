// Unit tests of lib/lookups.ts with a resolver of the test's own, whose answers it releases by
// hand. The same rules met by the system resolver, over HTTP: test/slow-dns.test.ts.
import { expect } from 'chai';
import type { LookupAddress } from 'node:dns';
import { LookupTimeout, lookupSlots, sharedLookups, type Resolver } from '../lib/lookups.js';
import { sleep } from './helpers/recorder.js';

/** A resolver whose calls wait until the test answers them. */
function heldResolver(): { resolve: Resolver; calls: string[]; answer: (name: string, ok?: boolean) => void } {
  const calls: string[] = [];
  const waiting = new Map<string, { ok: (a: LookupAddress[]) => void; fail: (e: Error) => void }>();
  return {
    calls,
    resolve: (hostname) =>
      new Promise((ok, fail) => {
        calls.push(hostname);
        waiting.set(hostname, { ok, fail });
      }),
    answer: (name, ok = true) => {
      const w = waiting.get(name);
      if (!w) throw new Error(`${name} is not being looked up`);
      waiting.delete(name);
      if (ok) w.ok([{ address: '192.0.2.1', family: 4 }]);
      else w.fail(new Error(`getaddrinfo EAI_AGAIN ${name}`));
    },
  };
}

/** What `p` rejected with; undefined if it was answered. */
function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e);
}

describe('name lookups (lib/lookups.ts)', () => {
  it('runs as many at once as libuv gives lookups: half its thread pool, rounded up', () => {
    expect(lookupSlots(undefined)).to.equal(2);
    expect(lookupSlots('4')).to.equal(2);
    expect(lookupSlots('1')).to.equal(1);
    expect(lookupSlots('5')).to.equal(3);
    expect(lookupSlots('16')).to.equal(8);
    // libuv reads the number as atoi does: 0 or nonsense is one thread, and at most 1024.
    expect(lookupSlots('0')).to.equal(1);
    expect(lookupSlots('many')).to.equal(1);
    expect(lookupSlots('100000')).to.equal(512);
    expect(lookupSlots('-1')).to.equal(512);
  });

  it('starts no more than its slots at once; the others start in arrival order as slots free', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 2, maxWaitMs: 10_000 });
    const answers = ['a', 'b', 'c', 'd'].map((n) => lookup(n));
    expect(r.calls).to.deep.equal(['a', 'b']);
    r.answer('b');
    await answers[1];
    expect(r.calls).to.deep.equal(['a', 'b', 'c']);
    r.answer('a', false);
    await answers[0]!.catch(() => undefined);
    expect(r.calls).to.deep.equal(['a', 'b', 'c', 'd']);
    r.answer('c');
    r.answer('d');
    expect(await answers[3]).to.deep.equal([{ address: '192.0.2.1', family: 4 }]);
  });

  it('a lookup that waits longer than its limit fails without ever being started, and frees its place', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 100 });
    const first = lookup('slow.example');
    const waited = lookup('late.example');
    const err = await rejectionOf(waited);
    expect(err).to.be.instanceOf(LookupTimeout);
    expect((err as Error).message).to.include('late.example');
    r.answer('slow.example');
    await first;
    expect(r.calls, 'the lookup that gave up was started after all').to.deep.equal(['slow.example']);
    // The name that gave up is not left half-queued: asked again with a slot free, it starts.
    const again = lookup('late.example');
    expect(r.calls).to.deep.equal(['slow.example', 'late.example']);
    r.answer('late.example');
    await again;
  });

  it('a lookup that started after waiting answers its callers however long it then takes', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 100 });
    const busy = lookup('busy.example');
    const waited = lookup('then-slow.example');
    r.answer('busy.example');
    await busy;
    // Started: its wait is over, and it may now take longer than the wait limit.
    await sleep(150);
    r.answer('then-slow.example');
    expect(await waited).to.deep.equal([{ address: '192.0.2.1', family: 4 }]);
  });

  it('a caller that joins a waiting lookup of the same name waits its own time, and the lookup starts for it', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 200 });
    const busy = lookup('busy.example');
    const first = lookup('same.example');
    await sleep(150);
    const joiner = lookup('same.example');
    // The first caller's time is up: the joiner's is not, so the lookup stays in the queue.
    expect(await rejectionOf(first)).to.be.instanceOf(LookupTimeout);
    r.answer('busy.example');
    await busy;
    expect(r.calls).to.deep.equal(['busy.example', 'same.example']);
    r.answer('same.example');
    expect(await joiner).to.deep.equal([{ address: '192.0.2.1', family: 4 }]);
  });

  it('a caller that joins a waiting lookup gives up at its own limit too', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 100 });
    const busy = lookup('busy.example');
    const first = lookup('same.example');
    await sleep(50);
    const joiner = lookup('same.example');
    expect(await rejectionOf(first)).to.be.instanceOf(LookupTimeout);
    expect(await rejectionOf(joiner)).to.be.instanceOf(LookupTimeout);
    r.answer('busy.example');
    await busy;
    expect(r.calls, 'a lookup nobody waited for was started').to.deep.equal(['busy.example']);
  });

  it('lookups of one name while it is being looked up share its answer; later ones ask again', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 2, maxWaitMs: 10_000 });
    const same = [lookup('x.example'), lookup('x.example'), lookup('x.example')];
    expect(r.calls).to.deep.equal(['x.example']);
    r.answer('x.example');
    expect(await Promise.all(same)).to.have.length(3);
    const again = lookup('x.example');
    expect(r.calls).to.deep.equal(['x.example', 'x.example']);
    r.answer('x.example');
    await again;
  });

  it('with every slot busy, a name answered lately gets its last answer at once; with a slot free it is asked afresh', async () => {
    let clock = 0;
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 10_000, recentMs: 60_000, now: () => clock });
    const first = lookup('known.example');
    r.answer('known.example');
    await first;
    // A slot is free: the resolver is asked.
    const fresh = lookup('known.example');
    expect(r.calls).to.deep.equal(['known.example', 'known.example']);
    r.answer('known.example');
    await fresh;
    // Every slot busy: the last answer, without a call.
    const slow = lookup('slow.example');
    clock += 59_000;
    expect(await lookup('known.example')).to.deep.equal([{ address: '192.0.2.1', family: 4 }]);
    expect(r.calls).to.deep.equal(['known.example', 'known.example', 'slow.example']);
    // Too old: it waits for a slot like any other.
    clock += 2_000;
    const waits = lookup('known.example');
    expect(r.calls).to.have.length(3);
    r.answer('slow.example');
    await slow;
    expect(r.calls).to.have.length(4);
    r.answer('known.example');
    await waits;
  });

  it('a name standing in on its last answer is looked up again as soon as a slot frees, before names with none, so it keeps standing in', async () => {
    let clock = 0;
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 10_000, recentMs: 60_000, now: () => clock });
    const known = lookup('known.example');
    r.answer('known.example');
    await known;
    const slow1 = lookup('slow1.example');
    const newName = lookup('new.example');
    clock += 50_000;
    expect(await lookup('known.example')).to.have.length(1);
    expect(r.calls).to.deep.equal(['known.example', 'slow1.example']);
    r.answer('slow1.example');
    await slow1;
    // The refresh first, though new.example asked earlier.
    expect(r.calls).to.deep.equal(['known.example', 'slow1.example', 'known.example']);
    r.answer('known.example');
    await sleep(0);
    expect(r.calls.at(-1)).to.equal('new.example');
    // 100 s after the first answer, but 50 s after the refresh: it still stands in.
    clock += 50_000;
    expect(await lookup('known.example')).to.have.length(1);
    r.answer('new.example');
    await newName;
    await sleep(0);
    r.answer('known.example');
  });

  it('an answer stands in up to recentMs old, not after; the names answered longest ago are forgotten first', async () => {
    let clock = 0;
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 50, recentMs: 1000, recentMax: 2, now: () => clock });
    for (const name of ['a.example', 'b.example', 'a.example', 'c.example']) {
      const p = lookup(name);
      r.answer(name);
      await p;
    }
    // Answered in the order b, a, c, at most two kept: b is forgotten.
    const busy = lookup('busy.example');
    clock += 1000;
    expect(await lookup('a.example')).to.have.length(1);
    expect(await lookup('c.example')).to.have.length(1);
    expect(await rejectionOf(lookup('b.example'))).to.be.instanceOf(LookupTimeout);
    clock += 1;
    const late = lookup('c.example');
    let answered = false;
    void late.then(() => (answered = true), () => undefined);
    await sleep(0);
    expect(answered, 'an answer older than recentMs stood in').to.equal(false);
    // The stand-ins' refreshes run when the slot frees, in turn; the late caller gets c's.
    r.answer('busy.example');
    await busy;
    await sleep(0);
    expect(r.calls.at(-1)).to.equal('a.example');
    r.answer('a.example');
    await sleep(0);
    expect(r.calls.at(-1)).to.equal('c.example');
    r.answer('c.example');
    expect(await late).to.have.length(1);
  });

  it('keeps the last answers of the recentMax names answered last, through thousands of names, answers again and failures', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 1, recentMs: 60_000, recentMax: 100, now: () => 0 });
    const answer = async (name: string, ok = true): Promise<void> => {
      const p = lookup(name);
      r.answer(name, ok);
      await p.catch(() => undefined);
    };
    const names = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}.example`);
    for (const name of names('n', 0, 2000)) await answer(name);
    for (const name of names('n', 1900, 1910)) await answer(name);
    for (const name of names('n', 1950, 1960)) await answer(name, false);
    for (const name of names('m', 0, 15)) await answer(name);

    // Every slot busy: a name stands in on its last answer if it was kept, else waits and gives up (maxWaitMs).
    const busy = lookup('busy.example');
    const candidates = [...names('n', 1800, 2000), ...names('m', 0, 15)];
    const standsIn = await Promise.all(candidates.map((name) => lookup(name).then(() => true, () => false)));
    const kept = candidates.filter((_, i) => standsIn[i]);
    // 90 left of n1900–n1999 (ten failed), n1900–n1909 answered again last, then m0–m14: the five answered longest ago go.
    expect(kept.sort()).to.deep.equal([...names('n', 1915, 1950), ...names('n', 1960, 2000), ...names('n', 1900, 1910), ...names('m', 0, 15)].sort());
    r.answer('busy.example');
    await busy;
  });

  it('a name whose lookup failed has no last answer to stand in for it', async () => {
    const r = heldResolver();
    const lookup = sharedLookups(r.resolve, { slots: 1, maxWaitMs: 10_000 });
    const ok = lookup('gone.example');
    r.answer('gone.example');
    await ok;
    const failed = lookup('gone.example');
    r.answer('gone.example', false);
    await failed.catch(() => undefined);
    const busy = lookup('busy.example');
    let answered = false;
    const after = lookup('gone.example').then(() => (answered = true));
    await sleep(0);
    expect(answered, 'the answer from before the failure was used').to.equal(false);
    r.answer('busy.example');
    await busy;
    r.answer('gone.example');
    await after;
  });

  it('a resolver that throws instead of rejecting frees its slot', async () => {
    let n = 0;
    const lookup = sharedLookups((name) => {
      if (n++ === 0) throw new Error(`no ${name}`);
      return Promise.resolve([{ address: '192.0.2.2', family: 4 }]);
    }, { slots: 1, maxWaitMs: 1000 });
    const err = await rejectionOf(lookup('throws.example'));
    expect((err as Error).message).to.equal('no throws.example');
    await sleep(0);
    expect(await lookup('fine.example')).to.deep.equal([{ address: '192.0.2.2', family: 4 }]);
  });
});
