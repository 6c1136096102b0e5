// PostgreSQL for the tests. With DATABASE_URL set, the tests use that server; otherwise this
// starts a throwaway one for the test run (test/helpers/pg-server.ts: initdb into a temporary
// directory, a unix socket in that directory, no TCP port), with fsync off, and stops and
// removes it when the run ends. Either way each caller of freshDatabaseUrl() gets a schema of
// its own, named in the URL's search_path, so tests never see each other's rows.
//
// Without DATABASE_URL and without PostgreSQL server binaries the PostgreSQL tests FAIL, with a
// message saying what to install: a store that was not tested must not look green.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPgServer } from './pg-server.js';

export { findPgBin } from './pg-server.js';

interface Server {
  /** URL of the server's database, without a search_path. */
  url: string;
  admin: pg.Pool;
  /** Stops and removes a throwaway server; drops the schemas made on an external one. */
  stop(): Promise<void>;
}

let starting: Promise<Server> | undefined;
const schemas: string[] = [];

/** The throwaway server (test/helpers/pg-server.ts), fsync off: the tests cannot observe durability. */
function startThrowaway(): Promise<Server> {
  return startPgServer({ durable: false });
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
