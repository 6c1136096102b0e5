// Runs the hub as `npm start` would, in a child process, so a test can kill it for real. The
// listening URL is read from the JSON log line main prints.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_ENV } from './hub.js';
import { storeEnv } from './store-under-test.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Node's arguments that run the hub (cwd: the project root). `npm test` compiles the hub once
 * for its run (test/run.mjs, TEST_HUB_BUILD): started from that, a hub is npm start's own
 * JavaScript and starts in about half the time and CPU (~0.6 s, 0.7 CPU-s) of one run from the
 * sources under tsx (~1.1 s, 1.5 CPU-s), which a test file run on its own still does.
 */
export const HUB_ARGS: readonly string[] = process.env.TEST_HUB_BUILD ? [path.join(process.env.TEST_HUB_BUILD, 'lib', 'main.js')] : ['--import', 'tsx', 'lib/main.ts'];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildHub {
  url: string;
  proc: ChildProcess;
  /** Every stderr line so far. */
  log: string[];
  exited: Promise<Exit>;
  /** Sends a signal and resolves with how the process ended. */
  stop(signal: NodeJS.Signals): Promise<Exit>;
}

/**
 * A hub process on `dataDir`, on the store under test (as startTestHub: test/helpers/hub.ts).
 * `wrapper`, when given, is a command the hub's own command line is appended to, which must
 * end by exec'ing it (so the process signalled is the hub).
 */
export async function spawnHub(dataDir: string, env: Record<string, string> = {}, startTimeoutMs = 15_000, wrapper: string[] = []): Promise<ChildHub> {
  const [command = process.execPath, ...args] = [...wrapper, process.execPath, ...HUB_ARGS];
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...TEST_ENV, LOG_LEVEL: 'info', DATA_DIR: dataDir, ...(await storeEnv(dataDir, env)), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log: string[] = [];
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));

  const url = await new Promise<string>((resolve, reject) => {
    let partial = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the hub did not start within ${startTimeoutMs} ms:\n${log.join('\n')}`));
    }, startTimeoutMs);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        log.push(line);
        let entry: { msg?: unknown; url?: unknown };
        try {
          entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
        } catch {
          continue;
        }
        if (entry.msg === 'pushbutton listening' && typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve(entry.url);
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited (code ${code}, signal ${signal}) before listening:\n${log.join('\n')}`));
    });
  });

  return {
    url,
    proc,
    log,
    exited,
    stop: (signal) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
