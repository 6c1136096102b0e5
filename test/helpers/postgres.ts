// PostgreSQL for the tests. With DATABASE_URL set, the tests use that server; otherwise this
// starts a throwaway one for the test run: initdb into a temporary directory, a unix socket in
// that directory (no TCP port), fsync off, and pg_ctl stop plus removal of the directory when
// the run ends. Either way each caller of freshDatabaseUrl() gets a schema of its own, named in
// the URL's search_path, so tests never see each other's rows.
//
// Without DATABASE_URL and without PostgreSQL server binaries the PostgreSQL tests FAIL, with a
// message saying what to install: a store that was not tested must not look green.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

interface Server {
  /** URL of the server's database, without a search_path. */
  url: string;
  admin: pg.Pool;
  /** Stops and removes a throwaway server; drops the schemas made on an external one. */
  stop(): Promise<void>;
}

let starting: Promise<Server> | undefined;
const schemas: string[] = [];

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
function serverIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new Error('running as root, and neither a "postgres" nor a "nobody" user exists to run the throwaway PostgreSQL as');
}

async function startThrowaway(): Promise<Server> {
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
  let started = false;
  const stopNow = (): void => {
    if (started) spawnSync(ctl, ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...ids, stdio: 'ignore' });
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  // Should the run end without the after() hook (an exception, Ctrl-C), nothing is left behind.
  process.once('exit', stopNow);
  try {
    await run(path.join(bin, 'initdb'), ['-D', data, '-U', 'pushbutton', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], ids);
    await appendFile(
      path.join(data, 'postgresql.conf'),
      [
        "listen_addresses = ''",
        `unix_socket_directories = '${dir}'`,
        'unix_socket_permissions = 0777',
        'max_connections = 200',
        'shared_buffers = 32MB',
        // A throwaway server: durability is the store's promise against a real server, not
        // something these tests can observe, and fsync only slows them down.
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
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
  const url = `postgresql://pushbutton@localhost/postgres?host=${encodeURIComponent(dir)}`;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  return {
    url,
    admin,
    stop: async () => {
      await admin.end();
      await run(ctl, ['-D', data, '-m', 'fast', '-w', 'stop'], ids).catch(() => undefined);
      started = false;
      await rm(dir, { recursive: true, force: true });
      process.removeListener('exit', stopNow);
    },
  };
}

async function useExternal(url: string): Promise<Server> {
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  await admin.query('SELECT 1');
  return {
    url,
    admin,
    stop: async () => {
      for (const s of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
      await admin.end();
    },
  };
}

/** The server for this test run, started on first use. */
export function pgServer(): Promise<Server> {
  const external = process.env.DATABASE_URL?.trim();
  starting ??= external ? useExternal(external) : startThrowaway();
  return starting;
}

/** `url` with `schema` as its search_path (kept alongside any options the URL already has). */
export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  const options = u.searchParams.get('options');
  u.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${schema}`);
  return u.toString();
}

/** A URL on the test server whose tables live in a new, empty schema of their own. */
export async function freshDatabaseUrl(tag = 't'): Promise<string> {
  const server = await pgServer();
  const schema = `pb_${tag.replace(/\W/g, '_').toLowerCase()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await server.admin.query(`CREATE SCHEMA ${schema}`);
  schemas.push(schema);
  return withSearchPath(server.url, schema);
}

/** Drops a schema made by freshDatabaseUrl (connections to it must be closed). */
export async function dropDatabaseSchema(url: string): Promise<void> {
  const schema = /search_path=(\w+)/.exec(new URL(url).searchParams.get('options') ?? '')?.[1];
  if (!schema || !schemas.includes(schema)) return;
  const server = await pgServer();
  await server.admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  schemas.splice(schemas.indexOf(schema), 1);
}

/** Runs SQL on the test server as its administrator (to look at what a store wrote). */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  return (await (await pgServer()).admin.query<R>(sql, values)).rows;
}

// Mocha: a hook at the top level of a module loaded with the specs belongs to the root suite,
// so it runs once, after every test file.
if (typeof after === 'function') {
  after(async function () {
    this.timeout(30_000);
    if (!starting) return;
    const server = await starting.catch(() => undefined);
    starting = undefined;
    await server?.stop();
  });
}
