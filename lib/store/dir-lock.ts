// One process at a time on an embedded store's directory. Two would each replay the journal,
// append to the same segment and rewrite the snapshots from their own memory, each erasing what
// the other wrote: a second hub started on the same DATA_DIR (another PORT, a copied systemd
// unit) or `npm run migrate` run beside the hub.
//
// The lock is a Unix socket, DATA_DIR/hub.lock, that its holder listens on. A live holder accepts
// a connection (and says its pid); the file a dead one left (SIGKILL, a crash, a power cut)
// refuses it, so it is taken over without anyone removing it by hand, and a pid reused since can
// never pass for the holder. Not covered: two processes that find the same leftover file at the
// same moment.
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'hub.lock';

/** The longest socket path Linux takes (sun_path is 108 bytes with its NUL; macOS's is 104). */
const MAX_SOCKET_PATH = 103;

export class DataDirInUseError extends Error {}

export interface DirLock {
  release(): Promise<void>;
}

/** Where the lock of `dir` listens: in it, or, when that path is too long for a socket, in the system's temporary directory under a name derived from it. */
function socketPath(dir: string): string {
  const inDir = path.resolve(dir, LOCK_FILE);
  if (process.platform === 'win32') return `\\\\?\\pipe\\pushbutton-${hashOf(inDir)}`;
  return inDir.length <= MAX_SOCKET_PATH ? inDir : path.join(os.tmpdir(), `pushbutton-${hashOf(inDir)}.lock`);
}

function hashOf(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 24);
}

/** What a live holder says when asked (its pid), or undefined when nothing listens there. */
function askHolder(file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let said = '';
    const socket = net.connect(file);
    socket.setEncoding('utf8');
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('data', (chunk: string) => void (said += chunk));
    socket.on('connect', () => socket.end());
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? undefined : `unknown (${e.code ?? e.message})`));
    socket.on('close', () => resolve(said.trim() || 'unknown'));
  });
}

function listen(server: net.Server, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Takes the lock of `dir` (which must exist), or rejects with DataDirInUseError naming the process that holds it. */
export async function lockDataDir(dir: string): Promise<DirLock> {
  const file = socketPath(dir);
  const server = net.createServer((socket) => socket.end(`${process.pid}\n`));
  // The lock alone never keeps a process alive.
  server.unref();
  const release = async (): Promise<void> => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(file).catch(() => undefined);
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await listen(server, file);
      return { release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
    const holder = await askHolder(file);
    if (holder !== undefined) {
      throw new DataDirInUseError(`${path.resolve(dir)} is in use by another process (pid ${holder}): one hub, or one migrate, at a time on an embedded store`);
    }
    await unlink(file).catch(() => undefined); // left by a process that is gone
  }
  throw new DataDirInUseError(`${path.resolve(dir)}: its lock ${file} was taken again as soon as it was freed`);
}
