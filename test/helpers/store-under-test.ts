// Which store the tests' hubs run on. `npm test` (test/run.mjs) runs every test file on the
// embedded store, and the protocol suites (.mocharc.postgresql.jsonc) again with
// TEST_STORE=postgresql: there startTestHub and spawnHub give each hub that a test does not
// give a DATABASE_URL of its own a schema on the test server (test/helpers/postgres.ts), one
// per data directory, so a hub restarted on the same data directory, in this process or in a
// child process, finds what the previous one stored, as it would in its files. The schemas go
// when the run ends, with the throwaway server (or, on an external DATABASE_URL, one by one).
//
// Only the test helpers read TEST_STORE; the hub knows nothing of it (DATABASE_URL decides).
import path from 'node:path';
import { freshDatabaseUrl } from './postgres.js';

export type TestStore = 'embedded' | 'postgresql';

function storeFromEnv(value: string | undefined): TestStore {
  const v = value?.trim() ?? '';
  if (v === '' || v === 'embedded') return 'embedded';
  if (v === 'postgresql') return 'postgresql';
  throw new Error(`TEST_STORE must be "embedded" (the default) or "postgresql", not "${v}"`);
}

export const TEST_STORE: TestStore = storeFromEnv(process.env.TEST_STORE);

/** The PostgreSQL schema of each data directory a hub was started on, by absolute path. */
const databases = new Map<string, Promise<string>>();

/**
 * What a hub on `dataDir` needs in its environment to run on the store under test: nothing on
 * the embedded store, nor when the test chose its own DATABASE_URL (even '': the embedded
 * store); on PostgreSQL, the DATABASE_URL of the data directory's schema, made on first use.
 */
export async function storeEnv(dataDir: string, env: Record<string, string>): Promise<Record<string, string>> {
  if (TEST_STORE === 'embedded' || 'DATABASE_URL' in env) return {};
  const key = path.resolve(dataDir);
  let url = databases.get(key);
  if (!url) {
    url = freshDatabaseUrl('hub');
    databases.set(key, url);
    url.catch(() => databases.delete(key));
  }
  return { DATABASE_URL: await url };
}

/**
 * Defines tests about the embedded store itself (its journal, snapshot shards, files in
 * DATA_DIR): they run on the embedded pass and are left out, not skipped, of the PostgreSQL
 * pass, where there is nothing of the kind to test. `reason` says why, for the reader.
 */
export function embeddedOnly(reason: string, define: () => void): void {
  if (reason.trim() === '') throw new Error('embeddedOnly: say why the tests only apply to the embedded store');
  if (TEST_STORE === 'embedded') define();
}
