// The delivery limiter (lib/notifier/limiter.ts), a unit: at most `max` tasks at once, waiters
// served strictly in arrival order however long the queue grows (a fan-out queues thousands per
// host), and `pending` right at every step.
import { expect } from 'chai';
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
