// The embedded store's directory lock (lib/store/dir-lock.ts) on its own: the cases the store's
// tests (test/store.test.ts, "one process at a time") do not reach.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DataDirInUseError, LOCK_FILE, lockDataDir, type DirLock } from '../lib/store/dir-lock.js';

describe('the data directory lock', () => {
  let root: string;
  const held: DirLock[] = [];
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-lock-'));
  });
  afterEach(async () => {
    for (const l of held.splice(0)) await l.release();
    await rm(root, { recursive: true, force: true });
  });
  const refusal = (dir: string): Promise<unknown> => lockDataDir(dir).then((l) => (held.push(l), 'taken'), (e: unknown) => e);

  it('takes over a leftover that is not a live socket (a regular file where the socket was)', async () => {
    await writeFile(path.join(root, LOCK_FILE), 'left over');
    held.push(await lockDataDir(root));
    expect(await refusal(root)).to.be.instanceOf(DataDirInUseError);
  });

  it('a directory whose path is too long for a socket (counted in bytes) is locked all the same, through a symbolic link too', async () => {
    // 60 two-byte letters: 60 characters, 120 bytes, past the 103 a socket path may have.
    const dir = path.join(root, 'é'.repeat(60));
    await mkdir(dir);
    held.push(await lockDataDir(dir));
    expect(existsSync(path.join(dir, LOCK_FILE)), 'no socket where it cannot be made').to.equal(false);
    const link = path.join(root, 'link');
    await symlink(dir, link);
    const e = await refusal(link);
    expect(e).to.be.instanceOf(DataDirInUseError);
    expect((e as Error).message).to.include(`(pid ${process.pid})`);
    await held.pop()!.release();
    held.push(await lockDataDir(link));
  });

  it('a release leaves alone the socket of another process that took the lock after this one was removed', async () => {
    const first = await lockDataDir(root);
    await rm(path.join(root, LOCK_FILE)); // by hand, or a cleaner
    held.push(await lockDataDir(root));
    await first.release();
    expect(existsSync(path.join(root, LOCK_FILE)), 'the second holder keeps its socket').to.equal(true);
    expect(await refusal(root)).to.be.instanceOf(DataDirInUseError);
  });
});
