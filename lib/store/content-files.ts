// Outbox bodies: one file per (topic, version) in DATA_DIR/content, named
// `<first 16 hex digits of sha256(topic)>-<version>.bin`, written durably before the outbox
// entry that points at it is journaled.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isNotFound, removeFile, replaceFile, syncDir } from './fs-durable.js';

const CONTENT_DIR = 'content';
const NAME_RE = /^[0-9a-f]{16}-\d+\.bin$/;

export function contentFileName(topic: string, version: number): string {
  return `${createHash('sha256').update(topic).digest('hex').slice(0, 16)}-${version}.bin`;
}

export class ContentFiles {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, CONTENT_DIR);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Durable when it resolves: data and name. */
  async write(name: string, body: Uint8Array): Promise<void> {
    await replaceFile(path.join(this.dir, name), body);
    await syncDir(this.dir);
  }

  async read(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path.join(this.dir, name));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async size(name: string): Promise<number | undefined> {
    try {
      return (await stat(path.join(this.dir, name))).size;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async remove(name: string): Promise<void> {
    await removeFile(path.join(this.dir, name));
  }

  /** Removes every file but the `live` ones (temp files of interrupted writes included). */
  async sweep(live: Set<string>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (live.has(name)) continue;
      if (!NAME_RE.test(name) && !name.startsWith('.')) continue; // not ours: leave it
      await this.remove(name);
      removed++;
    }
    return removed;
  }
}
