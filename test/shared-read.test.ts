// Unit test of SharedRead, with a clock of its own.
import { expect } from 'chai';
import { SharedRead } from '../lib/shared-read.js';

describe('SharedRead', () => {
  it('shares a read in flight and its result for maxAgeMs after it settled, then reads again', async () => {
    let clock = 1000;
    let reads = 0;
    const shared = new SharedRead(async () => ++reads, 2000, () => clock);
    const [a, b] = await Promise.all([shared.get(), shared.get()]);
    expect([a, b, reads]).to.deep.equal([1, 1, 1]);
    clock += 1999;
    expect(await shared.get()).to.equal(1);
    clock += 1;
    expect(await shared.get()).to.equal(2);
    shared.forget();
    expect(await shared.get()).to.equal(3);
  });

  it('keeps no failed read: the next caller reads again', async () => {
    let fail = true;
    const shared = new SharedRead(async () => {
      if (fail) throw new Error('down');
      return 'ok';
    }, 60_000);
    let failed: unknown;
    await shared.get().catch((e: unknown) => (failed = e));
    expect((failed as Error).message).to.equal('down');
    fail = false;
    expect(await shared.get()).to.equal('ok');
  });

  it('with maxAgeMs 0, shares only the read in flight', async () => {
    let reads = 0;
    const shared = new SharedRead(async () => ++reads, 0);
    await Promise.all([shared.get(), shared.get(), shared.get()]);
    expect(reads).to.equal(1);
    await shared.get();
    expect(reads).to.equal(2);
  });
});
