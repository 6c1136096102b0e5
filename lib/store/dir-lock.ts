// One process at a time on an embedded store's directory. Two would each replay the journal,
// append their own segments and compact the snapshots from their own memory, each erasing what
// the other wrote: a second hub started on the same DATA_DIR (another PORT, a copied systemd
// unit) or `npm run migrate` run beside the hub.
//
// The lock is a Unix socket, DATA_DIR/hub.lock, that its holder listens on. A live holder accepts
// a connection (and says its pid); the file a dead one left (SIGKILL, a crash, a power cut)
// refuses it, so it is taken over without anyone removing it by hand, and a pid reused since can
// never pass for the holder. Where no socket can be made there (a path too long for one, a file
// system without sockets), a Linux abstract socket named after the directory's real path stands
// in (elsewhere, one in the temporary directory). Not covered: two processes that find the same
// leftover file at the same moment.
import { createHash } from 'node:crypto';
import { realpath, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'hub.lock';

/** The longest socket path, in bytes, Linux takes (sun_path is 108 with its NUL; macOS's is 104). */
const MAX_SOCKET_PATH = 103;

export class DataDirInUseError extends Error {}

export interface DirLock {
  release(): Promise<void>;
}

/** The stand-in for the socket in the directory whose real path is `real`: a name no file system can refuse. */
function fallbackAddress(real: string): string {
  const hash = createHash('sha256').update(real).digest('hex').slice(0, 32);
  if (process.platform === 'linux') return `\0pushbutton-data-dir-${hash}`;
  if (process.platform === 'win32') return `\\\\?\\pipe\\pushbutton-data-dir-${hash}`;
  return path.join(os.tmpdir(), `pushbutton-data-dir-${hash}.lock`);
}

/** A socket file whose name a later release must not remove if it is no longer this one. */
const isFile = (address: string): boolean => !address.startsWith('\0') && !address.startsWith('\\\\?\\pipe\\');

/** What a live holder says when asked (its pid), or undefined when nothing listens there. */
function askHolder(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let said = '';
    const socket = net.connect(address);
    socket.setEncoding('utf8');
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('data', (chunk: string) => void (said += chunk));
    socket.on('connect', () => socket.end());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(undefined);
      else resolve(e.code === 'EACCES' ? `unknown: ${address} belongs to another user` : `unknown (${e.code ?? e.message})`);
    });
    socket.on('close', () => resolve(said.trim() || 'unknown'));
  });
}

function listen(server: net.Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The socket's inode, to tell it from one another process made at the same path later. */
const inodeOf = (file: string): Promise<number | undefined> => stat(file).then((s) => s.ino, () => undefined);

/** Listens on `address` for `dir`, taking over a holder that is gone; rejects with DataDirInUseError naming a live one. */
async function hold(dir: string, address: string): Promise<DirLock> {
  const server = net.createServer((socket) => socket.end(`${process.pid}\n`));
  // The lock alone never keeps a process alive.
  server.unref();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await listen(server, address);
      const inode = isFile(address) ? await inodeOf(address) : undefined;
      return {
        release: async () => {
          // Closing removes the socket file: not if it is another process's by now (someone
          // removed this one and another process took the lock); this one then goes with the process.
          if (inode !== undefined && (await inodeOf(address)) !== inode) return;
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
    const holder = await askHolder(address);
    if (holder !== undefined) {
      throw new DataDirInUseError(`${path.resolve(dir)} is in use by another process (pid ${holder}): one hub, or one migrate, at a time on an embedded store`);
    }
    if (isFile(address)) await unlink(address).catch(() => undefined); // left by a process that is gone
  }
  throw new DataDirInUseError(`${path.resolve(dir)}: its lock ${address} was taken again as soon as it was freed`);
}

/** Takes the lock of `dir` (which must exist), or rejects with DataDirInUseError naming the process that holds it. */
export async function lockDataDir(dir: string): Promise<DirLock> {
  // The real path decides, so that the same directory reached through a symbolic link gets the
  // same lock (a link short enough for a socket path would otherwise lock apart from the stand-in).
  const real = await realpath(dir);
  const inDir = path.join(real, LOCK_FILE);
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH) {
    try {
      return await hold(dir, inDir);
    } catch (e) {
      if (e instanceof DataDirInUseError) throw e;
      // A file system that cannot hold a socket: the stand-in below.
    }
  }
  return hold(dir, fallbackAddress(real));
}
