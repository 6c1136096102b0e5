// The embedded store on a disk that misbehaves: a real tmpfs filled to the last page (ENOSPC
// from the kernel), a data directory that turned read-only, files damaged between two runs.
// What must hold: nothing acknowledged is lost, the error is told in the protocol's own words
// and logged as the hub's own, and the hub is whole again once there is room.
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { SmallDisk } from './helpers/small-disk.js';
import { outbox, sub } from './helpers/store-contract.js';

/** Bodies over INLINE_BODY_MAX go to files of their own in content/. */
const BIG = Buffer.alloc(60 * 1024, 0x2e);

describe('the embedded store on a full disk', function () {
  this.timeout(20_000);
  let disk: SmallDisk;
  let store: LowdbStore | undefined;

  before(async () => {
    disk = await SmallDisk.mount();
  });
  afterEach(async () => {
    await store?.close().catch(() => undefined);
    store = undefined;
    await disk.unfill();
  });
  after(async () => {
    await disk?.unmount();
  });

  it('an outbox body that does not fit leaves no temp file behind, so the space is there again for the next write', async () => {
    const dir = path.join(disk.dir, 'bodies');
    store = new LowdbStore({ dir });
    await store.open();
    await store.putSubscription(sub('http://a/feed0', 'http://s/1'));
    disk.fill(100 * 1024);
    const free = disk.free();
    let failed = 0;
    for (let i = 0; i < 5; i++) await store.putOutbox(outbox(`http://a/feed${i}`, 1), BIG).catch(() => failed++);
    expect(failed, 'bodies that did not fit').to.be.greaterThan(0);
    expect((await readdir(path.join(dir, 'content'))).filter((f) => f.startsWith('.')), 'temp files of the writes that failed').to.deep.equal([]);
    // What the bodies that fit took, and nothing more.
    expect(disk.free()).to.equal(free - (5 - failed) * BIG.length);
  });
});

describe('the embedded store on files damaged between two runs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-damaged-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a truncated snapshot shard stops open() with an error that names the file, and is left as it was', async () => {
    const store = new LowdbStore({ dir });
    await store.open();
    for (let i = 0; i < 3; i++) await store.putSubscription(sub('http://a/feed', `http://s/${i}`));
    await store.compact();
    await store.close();
    const [shard] = (await readdir(dir)).filter((f) => /^snapshot-\d\d\.json$/.test(f));
    const text = await readFile(path.join(dir, shard!), 'utf8');
    await writeFile(path.join(dir, shard!), text.slice(0, text.length >> 1));
    const refused = await new LowdbStore({ dir }).open().then(
      () => 'it opened',
      (e: unknown) => (e as Error).message,
    );
    expect(refused).to.include(path.join(dir, shard!)).and.to.include('damaged');
    expect(await readFile(path.join(dir, shard!), 'utf8'), 'the damaged file, for whoever repairs it').to.equal(text.slice(0, text.length >> 1));
  });
});
