// A real file system small enough to fill: a tmpfs of its own (root only: CI runs as root), so
// the store meets ENOSPC from the kernel as it would on a full disk, not from a stub.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export class SmallDisk {
  private constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `bytes`; throws (never skips) where it cannot. */
  static async mount(bytes = 2 * 1024 * 1024): Promise<SmallDisk> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-disk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`these tests need a small file system of their own (mount -t tmpfs, as root): ${(e as Error).message}`);
    }
    return new SmallDisk(dir);
  }

  /** Bytes a write may still take. */
  free(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Takes every free byte (a file outside what the hub owns) but about `leave`. */
  fill(leave = 0): void {
    const fd = openSync(path.join(this.dir, 'filler'), 'a');
    try {
      const page = Buffer.alloc(4096, 1);
      while (this.free() > leave) writeSync(fd, page);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(fd);
    }
  }

  /** Gives the space back. */
  async unfill(): Promise<void> {
    await rm(path.join(this.dir, 'filler'), { force: true });
  }

  /** Remounts it read-only (nothing may have a file open for writing on it), or writable again. */
  readOnly(on: boolean): void {
    execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, this.dir], { stdio: 'pipe' });
  }

  async unmount(): Promise<void> {
    execFileSync('umount', [this.dir], { stdio: 'pipe' });
    await rm(this.dir, { recursive: true, force: true });
  }
}
