// A real PgBouncer (Debian's `pgbouncer`, which .ci/run installs) in front of a throwaway
// PostgreSQL server's unix socket, listening on a free port of 127.0.0.1, in the pool mode asked
// for. It trusts every client (auth_type = trust) as the server does. As root it runs as the
// server's user: PgBouncer refuses to run as root.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './recorder.js';
import { serverIds } from './pg-server.js';
import { serverAddress } from './pooler-proxy.js';

export interface PgBouncer {
  /** postgresql://user@127.0.0.1:port/database through the pooler. */
  url(user: string, database: string): string;
  stop(): Promise<void>;
}

const BINARY = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));

/** `poolSize`: server connections per database and user (default_pool_size; 40 unless given). */
export async function startPgBouncer(serverUrl: string, mode: 'session' | 'transaction', users: string[], poolSize = 40): Promise<PgBouncer> {
  if (!BINARY) throw new Error('PgBouncer was not found in /usr/sbin or /usr/bin: install it (Debian: apt-get install pgbouncer), as .ci/run does');
  const address = serverAddress(serverUrl);
  if (!('path' in address) || !address.path) throw new Error('startPgBouncer: the server must listen on a unix socket');
  const socketDir = path.dirname(address.path);
  const serverPort = /\.s\.PGSQL\.(\d+)$/.exec(address.path)![1]!;
  const ids = serverIds();
  const port = await freePort('127.0.0.1');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pb-bouncer-'));
  const ini = path.join(dir, 'pgbouncer.ini');
  const files: [string, string][] = [
    [
      ini,
      [
        '[databases]',
        `* = host=${socketDir} port=${serverPort}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${path.join(dir, 'users.txt')}`,
        `pool_mode = ${mode}`,
        `default_pool_size = ${poolSize}`,
        'max_client_conn = 400',
        '',
      ].join('\n'),
    ],
    [path.join(dir, 'users.txt'), users.map((u) => `"${u}" ""\n`).join('')],
  ];
  for (const [file, text] of files) await writeFile(file, text);
  if (ids.uid !== undefined) for (const p of [dir, ...files.map(([f]) => f)]) await chown(p, ids.uid, ids.gid!);
  const proc: ChildProcess = spawn(BINARY, [ini], { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  // Listening once a connection is accepted.
  for (let waited = 0; ; waited += 50) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (proc.exitCode !== null || waited > 10_000) {
      await stop();
      throw new Error(`PgBouncer did not start:\n${log}`);
    }
    await sleep(50);
  }
  return { url: (user, database) => `postgresql://${user}@127.0.0.1:${port}/${database}`, stop };
}
