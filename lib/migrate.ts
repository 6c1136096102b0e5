// `npm run migrate` (pushbutton migrate): copies the embedded store in DATA_DIR into the
// PostgreSQL database at DATABASE_URL, creating or updating its schema first. Idempotent: rows
// are upserted, and a second run reports everything unchanged. Stop the hub that uses DATA_DIR
// first: the embedded store is one process's files.
import { stat } from 'node:fs/promises';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { LowdbStore } from './store/lowdb-store.js';
import { redactUrl } from './store/create-store.js';
import { copyStore, type CopyCounts } from './store/pg-copy.js';
import { PgStore } from './store/pg-store.js';

function line(what: string, c: CopyCounts): string {
  const skipped = c.skipped > 0 ? `, ${c.skipped} skipped (see the warnings)` : '';
  return `${what.padEnd(14)} ${String(c.read).padStart(8)} copied: ${c.inserted} new, ${c.updated} updated, ${c.unchanged} already there${skipped}`;
}

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`pushbutton migrate: configuration error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (config.databaseUrl === undefined) {
    process.stderr.write('pushbutton migrate: set DATABASE_URL to the PostgreSQL database to copy into (and DATA_DIR to the embedded store to copy from)\n');
    return 1;
  }
  const isDir = await stat(config.dataDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) {
    process.stderr.write(`pushbutton migrate: DATA_DIR ${config.dataDir} is not a directory: there is no embedded store to copy\n`);
    return 1;
  }

  process.stdout.write(`pushbutton migrate: ${config.dataDir} → ${redactUrl(config.databaseUrl)}\n`);
  // The store's own warnings and errors (journal lines it could not read and set aside) reach
  // the operator, as a hub's log would: silent, the one run that saw the damage said nothing, and
  // the records in those lines were simply not copied.
  const from = new LowdbStore({ dir: config.dataDir, log: createLogger('warn') });
  const to = new PgStore({ connectionString: config.databaseUrl, poolSize: config.databasePoolSize, queryTimeoutMs: config.databaseQueryTimeoutMs });
  await from.open();
  try {
    await to.open();
    try {
      const schema = to.schema!;
      process.stdout.write(
        schema.applied.length > 0
          ? `schema: version ${schema.from} → ${schema.to} (applied ${schema.applied.join(', ')})\n`
          : `schema: version ${schema.to}, up to date\n`,
      );
      const report = await copyStore(from, to);
      for (const w of report.warnings) process.stderr.write(`pushbutton migrate: warning: ${w}\n`);
      process.stdout.write(
        [
          line('topics', report.topics),
          line('subscriptions', report.subscriptions),
          line('outbox', report.outbox),
          line('verifications', report.verifications),
          line('pending reads', report.pendingReads),
          '',
        ].join('\n'),
      );
      process.stdout.write(`pushbutton migrate: done; the counts in PostgreSQL now: ${JSON.stringify(await to.counts())}\n`);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`pushbutton migrate: failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
