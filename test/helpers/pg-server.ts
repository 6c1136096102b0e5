// A throwaway PostgreSQL server: initdb into a temporary directory, a unix socket in that
// directory (no TCP port, unless asked for TLS), pg_ctl stop plus removal of the directory when asked, and also when
// the process exits without asking (an exception, Ctrl-C handled by process.exit). The tests
// (test/helpers/postgres.ts) run it with fsync off; the benchmarks (bench/cluster.ts) with
// fsync on, as a real deployment would.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './recorder.js';

export interface PgServerOptions {
  /**
   * fsync, synchronous_commit and full_page_writes at PostgreSQL's defaults (on). Off by
   * default: durability is the store's promise against a real server, not something the tests
   * can observe, and fsync only slows them down.
   */
  durable?: boolean;
  /** More postgresql.conf lines, after the defaults here (a later line wins). */
  settings?: string[];
  /**
   * Also listen on a free TCP port of 127.0.0.1 (`tcpUrl`), with this certificate and key for
   * TLS: PostgreSQL speaks TLS on TCP only, never on its unix socket.
   */
  tls?: { cert: string; key: string };
}

export interface PgServer {
  /** URL of the server's `postgres` database, without a search_path. */
  url: string;
  /** With `tls`: the server's `postgres` database over TCP (127.0.0.1), without an sslmode. */
  tcpUrl?: string;
  /** A small pool on `url`, as the server's superuser. */
  admin: pg.Pool;
  /** The data directory (postmaster.pid, postgresql.conf). */
  dataDir: string;
  /** Stops the server, keeping its data (`pg_ctl stop -m <mode>`): the database gone away. */
  halt(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts a halted server again on the same data, socket and URL. */
  resume(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** The throwaway server's binaries: PG_BIN, then Debian's /usr/lib/postgresql/<newest>/bin, then PATH. */
export function findPgBin(): string | undefined {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(path.join(debian, v, 'bin'));
  }
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(dir);
  return candidates.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl')));
}

/** Runs a program to completion; rejects with its output when it fails. */
function run(cmd: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${code}):\n${out}`))));
  });
}

/** initdb refuses to run as root: as root, the server runs as `postgres` (or `nobody`). */
export function serverIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new Error('running as root, and neither a "postgres" nor a "nobody" user exists to run the throwaway PostgreSQL as');
}

/** The postmaster's process id, from the first line of postmaster.pid (undefined when not running). */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function startPgServer(opts: PgServerOptions = {}): Promise<PgServer> {
  const bin = findPgBin();
  if (!bin) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) were not found in $PG_BIN, /usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH. ' +
        'Install the server (Debian: apt-get install postgresql) or set DATABASE_URL to a server the tests may create schemas in.',
    );
  }
  const ids = serverIds();
  // Short, so the socket path (dir + "/.s.PGSQL.5432") stays under the 107-byte limit.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pb-pg-'));
  const data = path.join(dir, 'data');
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  const ctl = path.join(bin, 'pg_ctl');
  const port = opts.tls ? await freePort('127.0.0.1') : 5432;
  let started = false;
  const stopNow = (): void => {
    if (started) spawnSync(ctl, ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...ids, stdio: 'ignore' });
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  // Should the run end without stop() (an exception, Ctrl-C), nothing is left behind.
  process.once('exit', stopNow);
  try {
    // --no-sync only skips flushing initdb's own files; the server's settings are below.
    await run(path.join(bin, 'initdb'), ['-D', data, '-U', 'pushbutton', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], ids);
    if (opts.tls) {
      // The server refuses a key that others may read, or that its user does not own.
      for (const [name, text] of [['server.crt', opts.tls.cert], ['server.key', opts.tls.key]] as const) {
        await writeFile(path.join(data, name), text, { mode: 0o600 });
        if (ids.uid !== undefined) await chown(path.join(data, name), ids.uid, ids.gid!);
      }
    }
    await appendFile(
      path.join(data, 'postgresql.conf'),
      [
        ...(opts.tls ? ["listen_addresses = '127.0.0.1'", `port = ${port}`, 'ssl = on'] : ["listen_addresses = ''"]),
        `unix_socket_directories = '${dir}'`,
        'unix_socket_permissions = 0777',
        'max_connections = 200',
        'shared_buffers = 32MB',
        ...(opts.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
        ...(opts.settings ?? []),
        '',
      ].join('\n'),
    );
    await run(ctl, ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', 'start'], ids);
    started = true;
  } catch (e) {
    stopNow();
    process.removeListener('exit', stopNow);
    throw e;
  }
  const url = `postgresql://pushbutton@localhost${opts.tls ? `:${port}` : ''}/postgres?host=${encodeURIComponent(dir)}`;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  // A halted server cuts the admin pool's idle connections: replaced on next use, not a crash.
  admin.on('error', () => undefined);
  return {
    url,
    ...(opts.tls && { tcpUrl: `postgresql://pushbutton@127.0.0.1:${port}/postgres` }),
    admin,
    dataDir: data,
    halt: async (mode = 'fast') => {
      await run(ctl, ['-D', data, '-m', mode, '-w', 'stop'], ids);
      started = false;
    },
    resume: async () => {
      await run(ctl, ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', 'start'], ids);
      started = true;
    },
    stop: async () => {
      await admin.end();
      await run(ctl, ['-D', data, '-m', 'fast', '-w', 'stop'], ids).catch(() => undefined);
      started = false;
      await rm(dir, { recursive: true, force: true });
      process.removeListener('exit', stopNow);
    },
  };
}
