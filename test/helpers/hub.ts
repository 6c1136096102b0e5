// Starts a real hub in-process on 127.0.0.1:0 with its own data directory, loopback allowed
// for feeds and callbacks (the tests' servers live there), and the test API on.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config.js';
import { startHub, type RunningHub, type StartOptions } from '../../lib/server.js';
import { storeEnv } from './store-under-test.js';

export interface TestHub extends RunningHub {
  dataDir: string;
  /** POSTs a form to the hub. */
  postForm(path: string, form: Record<string, string> | URLSearchParams, headers?: Record<string, string>): Promise<Response>;
  /** Closes the hub and removes its data directory. */
  destroy(): Promise<void>;
}

export const TEST_ENV: Record<string, string> = {
  PORT: '0',
  HOST: '127.0.0.1',
  FETCH_ALLOW_CIDRS: '127.0.0.0/8',
  CALLBACK_ALLOW_CIDRS: '127.0.0.0/8',
  ENABLE_TEST_API: 'true',
  LOG_LEVEL: 'silent',
  REQUEST_TIMEOUT_MS: '4000',
  // As REQUEST_TIMEOUT_MS: a subscriber that never answers costs a test no more than a feed does;
  // the tests of WEBSUB_TIMEOUT_MS (websub-timeout.test.ts) set it apart.
  WEBSUB_TIMEOUT_MS: '4000',
  // Limits that protect a public hub get in the way of tests that are not about them; the
  // tests of those limits set them back.
  RATE_LIMIT_PER_MINUTE: '0',
  FETCH_MIN_INTERVAL_MS: '0',
  // A second per subscription would add minutes to the suite; websub-subscribers.test.ts proves the delay.
  WEBSUB_VERIFY_DELAY_MS: '0',
  // The embedded store unless a test says otherwise: a DATABASE_URL in the environment (for
  // test/helpers/postgres.ts) must not turn every hub, child processes included, onto one database.
  // With TEST_STORE=postgresql, startTestHub and spawnHub give each data directory a schema of
  // its own instead (test/helpers/store-under-test.ts).
  DATABASE_URL: '',
};

export async function tempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'pushbutton-test-'));
}

/**
 * A hub on `dataDir` (a new temporary directory by default), on the store under test: with
 * TEST_STORE=postgresql and no DATABASE_URL in `env`, on the data directory's own schema, so a
 * hub started again on the same directory finds what this one stored.
 */
export async function startTestHub(env: Record<string, string> = {}, dataDir?: string, opts: StartOptions = {}): Promise<TestHub> {
  const dir = dataDir ?? (await tempDataDir());
  let running: RunningHub;
  try {
    running = await startHub(loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await storeEnv(dir, env)), ...env }), opts);
  } catch (e) {
    // A hub meant not to start (a test of its refusal) leaves no directory of this helper's behind.
    if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...running,
    dataDir: dir,
    postForm: (p, form, headers = {}) =>
      fetch(`${running.url}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: (form instanceof URLSearchParams ? form : new URLSearchParams(form)).toString(),
      }),
    destroy: async () => {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The value of one series on the hub's /metrics (`name{label="value",…}` as written there), or undefined when it has none. */
export async function metricSample(hub: { url: string }, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** How much body work (BodyThread: `diff`, `sign`) the hub did on the worker thread or the main one, read from /metrics. */
export async function bodyWork(hub: { url: string }, work: 'diff' | 'sign', on: 'worker' | 'main'): Promise<number> {
  const n = await metricSample(hub, `pushbutton_body_work_total{work="${work}",on="${on}"}`);
  if (n === undefined) throw new Error(`no pushbutton_body_work_total for ${work} on ${on}`);
  return n;
}
