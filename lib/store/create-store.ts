// Which store a hub runs on: PostgreSQL when DATABASE_URL is set, the embedded lowdb store in
// DATA_DIR otherwise. The caller opens it.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { LowdbStore } from './lowdb-store.js';
import { PgStore } from './pg-store.js';
import type { Store } from './store.js';

export function createStore(config: Pick<Config, 'dataDir' | 'compactIntervalMs' | 'databaseUrl' | 'databasePoolSize' | 'databaseLockWaitMs' | 'databaseQueryTimeoutMs'>, log?: Logger): Store {
  if (config.databaseUrl === undefined) return new LowdbStore({ dir: config.dataDir, compactAfterMs: config.compactIntervalMs, ...(log && { log }) });
  return new PgStore({
    connectionString: config.databaseUrl,
    poolSize: config.databasePoolSize,
    lockWaitMs: config.databaseLockWaitMs,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
    onError: (e) => log?.warn('database connection lost; it will be replaced', { error: e.message }),
  });
}

// Beside the store whose errors name the URL; here too for main.ts and migrate.ts.
export { redactUrl } from './pg-store.js';
