// Structured logs: pino, one JSON object per line on stderr (or into `write`, for tests that
// read the log), behind the small Logger interface the rest of the hub uses. Callers pass
// fields, never secrets: WebSub secrets, publisher secrets and the admin token are not logged.
import pino from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  // Synchronous: a line written just before exit (a start-up failure, the last delivery
  // before SIGTERM) must not be lost in a buffer.
  const destination = write ? { write } : stderrDestination();
  const p = pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination,
  );
  return {
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
  };
}

export const silentLogger: Logger = createLogger('silent');

/**
 * stderr, written synchronously. A line that cannot be written (stderr is a file on a full disk:
 * ENOSPC) is dropped: pino lets only EPIPE pass quietly and re-emits anything else as an 'error'
 * event nobody listens to, which ended the process at its next log line.
 */
function stderrDestination(): ReturnType<typeof pino.destination> {
  const destination = pino.destination({ dest: 2, sync: true });
  destination.on('error', () => {});
  return destination;
}
