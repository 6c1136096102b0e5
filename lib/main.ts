// Composition root for `npm start`: read the configuration, start the hub, and on SIGTERM or
// SIGINT stop taking requests and flush the store before exiting.
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { startHub } from './server.js';

/**
 * Why the hub did not start, as one JSON line like every other, whatever LOG_LEVEL says (it is
 * the line an operator most needs, a bad LOG_LEVEL included). It was plain text: under systemd's
 * Restart=always, every 5 s a line in the JSON stream that `jq` stopped at and log shippers
 * filed without a level.
 */
function exitWith(msg: string, error: string): never {
  createLogger('error').error(msg, { error });
  process.exit(1);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) exitWith('configuration error', e.message);
    throw e;
  }
  const log = createLogger(config.logLevel);
  if (config.enableTestApi) log.warn('ENABLE_TEST_API is on: /test/* lets anyone read and erase every subscription');
  const running = await startHub(config, { log });
  log.info('pushbutton listening', {
    url: running.url,
    publicUrl: config.publicUrl,
    store: config.databaseUrl === undefined ? 'embedded' : 'postgresql',
    ...(config.databaseUrl === undefined && { dataDir: config.dataDir }),
  });

  const stop = (signal: string): void => {
    log.info('shutting down', { signal });
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error('shutdown failed', { error: e instanceof Error ? e.message : String(e) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => exitWith('failed to start', e instanceof Error ? e.message : String(e)));
