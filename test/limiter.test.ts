// The delivery limiters (lib/notifier/limiter.ts, host-limiter.ts), units: at most `max` tasks
// at once, waiters served strictly in arrival order however long the queue grows (a fan-out
// queues thousands per host), and `pending` right at every step.
import { expect } from 'chai';
import { HostLimiter } from '../lib/notifier/host-limiter.js';
import { Limiter } from '../lib/notifier/limiter.js';

describe('Limiter', () => {
  it('runs at most max at once and serves 5,000 waiters in arrival order, counting pending right', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 5000 }, (_, i) =>
      limiter.run(async () => {
        running++;
        most = Math.max(most, running);
        order.push(i);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
      }),
    );
    expect(limiter.pending).to.equal(5000);
    // Let them through a few at a time, checking the count as the queue drains.
    for (let done = 0; done < 5000; ) {
      await new Promise((r) => setImmediate(r));
      const open = gates.splice(0);
      for (const g of open) g();
      done += open.length;
      await new Promise((r) => setImmediate(r));
      expect(limiter.pending).to.equal(5000 - done);
    }
    await Promise.all(tasks);
    expect(most).to.equal(3);
    expect(order).to.deep.equal(Array.from({ length: 5000 }, (_, i) => i));
    expect(limiter.pending).to.equal(0);
    // Empty again, it takes a slot without waiting.
    expect(limiter.acquire()).to.equal(undefined);
    limiter.release();
  });
});

describe('HostLimiter', () => {
  it('starts queued entries in arrival order as slots of their host free up, each holding a slot; a global slot too while it runs', async () => {
    const limiter = new HostLimiter(3, 2);
    const started: string[] = [];
    const gates = new Map<string, () => void>();
    const runs: Promise<void>[] = [];
    const entry = (host: string, name: string): void =>
      limiter.enter(host, () => {
        started.push(name);
        runs.push(limiter.runHeld(host, () => new Promise<void>((resolve) => gates.set(name, resolve))));
      });
    for (let i = 0; i < 4; i++) entry('a:1', `a${i}`);
    entry('b:1', 'b0');
    entry('b:1', 'b1');
    // Two of a:1 hold its slots; b0 holds b's and the last global slot, so b1 runs its task only
    // once a global slot frees although a slot of b:1 is its own.
    expect(started).to.deep.equal(['a0', 'a1', 'b0', 'b1']);
    expect(limiter.pending).to.equal(6);
    await new Promise((r) => setImmediate(r));
    expect([...gates.keys()]).to.deep.equal(['a0', 'a1', 'b0']);
    gates.get('a0')!();
    await new Promise((r) => setImmediate(r));
    // a0's host slot went to a2, its global slot to b1 (waiting first); a2 now waits for a global one.
    expect(started).to.deep.equal(['a0', 'a1', 'b0', 'b1', 'a2']);
    expect([...gates.keys()]).to.deep.equal(['a0', 'a1', 'b0', 'b1']);
    expect(limiter.pending).to.equal(5);
    for (const name of ['a1', 'b0', 'b1', 'a2', 'a3']) {
      await new Promise((r) => setImmediate(r));
      gates.get(name)!();
    }
    await Promise.all(runs);
    expect(started).to.deep.equal(['a0', 'a1', 'b0', 'b1', 'a2', 'a3']);
    expect(limiter.pending).to.equal(0);
  });

  it('a slot given back with leave goes to the next entry of that host', async () => {
    const limiter = new HostLimiter(10, 1);
    const started: number[] = [];
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 3; i++) limiter.enter('h:1', () => started.push(i));
    expect(started).to.deep.equal([0]);
    limiter.leave('h:1');
    await turn();
    expect(started).to.deep.equal([0, 1]);
    limiter.leave('h:1');
    await turn();
    limiter.leave('h:1');
    expect(started).to.deep.equal([0, 1, 2]);
    expect(limiter.pending).to.equal(0);
  });
});

describe('HostLimiter, entries that give their slot straight back', () => {
  it('hands a slot down a queue of 50,000 such entries without deepening the stack', async () => {
    // A lane that starts after the hub closed, or that must first wait for another process's
    // older version, leaves at once: each hand-over must not start the next inside the last.
    const limiter = new HostLimiter(10, 1);
    let started = 0;
    limiter.enter('h:1', () => undefined); // holds the only slot
    for (let i = 0; i < 50_000; i++) {
      limiter.enter('h:1', () => {
        started++;
        limiter.leave('h:1');
      });
    }
    limiter.leave('h:1');
    for (let i = 0; i < 100 && started < 50_000; i++) await new Promise((r) => setImmediate(r));
    expect(started).to.equal(50_000);
    expect(limiter.pending).to.equal(0);
  });
});

describe('HostLimiter, a task that gives its global slot back (giveBack)', () => {
  it('hands the global slot to the next waiter at once, keeps its host slot until it ends, and gives the global slot back only once however often it is called', async () => {
    // A delivery left waiting for a subscriber that never answers gives its global slot back
    // (Notifier's linger): given back twice, the limiter let more than `globalMax` run at once.
    const limiter = new HostLimiter(1, 1);
    const ran: string[] = [];
    let giveBackA: () => void = () => undefined;
    let endA: () => void = () => undefined;
    const gates = new Map<string, () => void>();
    const a = limiter.run('a:1', (giveBack) => {
      ran.push('a');
      giveBackA = giveBack;
      return new Promise<void>((resolve) => (endA = resolve));
    });
    const task = (name: string) => (): Promise<void> => {
      ran.push(name);
      return new Promise<void>((resolve) => gates.set(name, resolve));
    };
    const a2 = limiter.run('a:1', task('a2'));
    const b = limiter.run('b:1', task('b'));
    const c = limiter.run('c:1', task('c'));
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    await turn();
    expect(ran).to.deep.equal(['a']);
    giveBackA();
    giveBackA();
    await turn();
    // b took the global slot; a still holds a:1's, so a2 waits; c waits for the global one.
    expect(ran).to.deep.equal(['a', 'b']);
    endA();
    await a;
    await turn();
    expect(ran, 'a ending gave back its host slot only').to.deep.equal(['a', 'b']);
    gates.get('b')!();
    await b;
    await turn();
    // a2 took a:1's slot when a ended and then queued for the global one, behind c.
    expect(ran).to.deep.equal(['a', 'b', 'c']);
    gates.get('c')!();
    await c;
    await turn();
    expect(ran).to.deep.equal(['a', 'b', 'c', 'a2']);
    gates.get('a2')!();
    await a2;
    expect(limiter.pending).to.equal(0);
  });
});
