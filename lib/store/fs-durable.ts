// Small file-system helpers for the embedded store: durable replace (temp file, fsync, rename),
// directory fsync (a rename or a new file name is durable only once its directory is synced),
// a yield to the event loop, and a per-key mutex for the outbox's content files.
import { open, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Files the store creates hold WebSub secrets: readable by the hub's user only. */
export const FILE_MODE = 0o600;

export function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * A read of `file` that failed, named: Node words a failed read ("EIO: i/o error, read",
 * "EISDIR: illegal operation on a directory, read") without the file, and a start that stops on
 * it left the operator to guess which of DATA_DIR's files was bad.
 */
export function readFailure(file: string, e: unknown): Error {
  return new Error(`${file} could not be read (${e instanceof Error ? e.message : String(e)})`, { cause: e });
}

/** fsync a directory, so that the names created, renamed or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Hidden temp name next to the target, so that directory listings can tell it apart. */
function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
}

/**
 * Replaces `file` with `data` (or its parts, in order) atomically and durably as far as the file's content goes: the
 * data is fsynced under a temp name before the rename, so a crash leaves the old file or the
 * new one, never a torn one. The rename itself is durable after a syncDir of the directory,
 * which the caller does (once for many files, where it can).
 */
export async function replaceFile(file: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    const fh = await open(tmp, 'w', FILE_MODE);
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) await fh.writeFile(data);
      // Parts, one after the other: a large file is not joined into one buffer first.
      else for (const part of data) for (let at = 0; at < part.length; ) at += (await fh.write(part, at)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    // A write that failed on a full disk has filled it with a partial temp file: left there,
    // it would keep the space the next write (a journal append) needs, until the next start.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Creates and removes a file in `dir`, so that a directory the store cannot write in (mounted
 * read-only, owned by another user) stops the start with its reason, instead of a hub that
 * answers while every registration, ping and publish fails. A full disk passes: the space may
 * come back, and what is stored stays readable meanwhile.
 */
export async function checkWritable(dir: string): Promise<void> {
  const probe = path.join(dir, '.write-test');
  try {
    await (await open(probe, 'w', FILE_MODE)).close();
    await rm(probe, { force: true });
  } catch (e) {
    throw new Error(`${dir} is not writable (${e instanceof Error ? e.message : String(e)}): the store could keep nothing there`);
  }
}

/**
 * Removes a file, if it is there. rm({ force: true }) met a file it may not unlink (chattr +i or
 * +a) by retrying it as a directory, and failed with "ENOTDIR: not a directory, scandir", which
 * told the operator nothing about the flag on the file.
 */
export async function removeFile(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs async functions one at a time per key; different keys do not wait for each other. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }
}
