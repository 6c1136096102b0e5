// `npm test` after the type check: six mocha runs in four lanes that run at the same time, then
// ONE closing line for all, "N passed, N failed, N skipped", always the last line of the output
// (CI reads it).
//
//   lane 1: the embedded-store suites that wait longest on other processes (several hubs, a
//           PostgreSQL server stopped and started): WAIT_LONG below; then the browser suite
//           (BROWSER) with the PostgreSQL-silence and shutdown suites;
//   lane 2: the protocol suites (.mocharc.postgresql.jsonc) again with TEST_STORE=postgresql:
//           every hub on the PostgreSQL store (test/helpers/store-under-test.ts), every
//           top-level suite titled "[postgresql] …"; then the embedded WebSub and HTTPS suites
//           (AFTER_PG);
//   lane 3: the other embedded-store suites that spend their time waiting on protocol timers:
//           WAIT below;
//   lane 4: every other test file on the embedded store.
//
// The suites mostly wait, so one after the other they left the cores idle most of the time;
// four lanes take about a quarter as long as one (three took 4 m 31 s by the end of 2026-12-04,
// close to the 5-minute budget, with the cores still half idle; four: 3 m 37 s; 4 m 2 s once the
// PostgreSQL lane had grown, and less again with the browser and WebSub suites swapped; the
// HTTPS suite moved from lane 4, the longest in every full run of 2026-12-05, to lane 2, the
// shortest). Every test file
// still runs exactly as `npx mocha` runs it (each run is its own process, with its own
// throwaway PostgreSQL server); lane 1's output is shown as it comes,
// the other runs' output whole, once the run before is done, so their lines never interleave.
//
// Each run's reporter (test/reporter.cjs) writes its counts, and the titles of the tests that
// failed, to the file TEST_COUNTS_FILE names instead of printing them; the titles are printed
// again above the closing line, where CI's excerpt of the output still shows them. A run that
// ends without its counts (it crashed, or could not load a file) or exits non-zero without a
// failure counted is one more failure in the total, so a run that broke can never add up to
// green. Exit status: 0 only when nothing failed.
// Arguments go to every run (e.g. `npm test -- --grep pleaseNotify`). `TEST_TIMINGS=1 npm test`
// also lists each run's test files by the seconds they took: what the lanes are balanced by.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** TEST_TIMINGS=1: each run's test files by the seconds they took, hooks included, under its line. */
const TIMINGS = process.env.TEST_TIMINGS === '1';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');

// Measured per suite (2026-12-04, quiet machine): rebalance when a lane grows. (2026-12-05:
// lane 4 the longest at 280-293 s, lane 3 at 249 s: weblogupdates, ~23 s of answer timers, moved.
// Later that day lane 1 at 281 s, the others 250-257 s, with cluster's SIGSTOP test added:
// pg-silence (~14 s alone) moved to lane 3. Later still: lane 2 the shortest again, by ~30 s,
// once cluster's and pg-outage's waits were cut from lane 1: pg-silence moved on to lane 2.
// 2026-12-05 evening: the browser suite ~25 s shorter (one page for its tests), lane 1 the
// shortest at 180 s, the others 222-237 s: pg-silence and shutdown (~14 s each) to lane 1.)
const WAIT_LONG = ['test/cluster.test.ts', 'test/pg-outage.test.ts', 'test/migrate.test.ts', 'test/pg-managed.test.ts'];
const WAIT = ['test/polling.test.ts', 'test/delivery.test.ts', 'test/security.test.ts', 'test/fuzz.test.ts', 'test/polling-schedule.test.ts', 'test/store.test.ts', 'test/weblogupdates.test.ts'];
/** Lanes of their own would idle after them: each runs after a shorter lane's suites. */
const BROWSER = ['test/browser.test.ts', 'test/pg-silence.test.ts', 'test/shutdown.test.ts'];
const AFTER_PG = ['test/websub.test.ts', 'test/https.test.ts'];
const SLOW = [...WAIT_LONG, ...WAIT, ...BROWSER, ...AFTER_PG];

const ALL = readdirSync(path.join(ROOT, 'test'), { recursive: true })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => path.posix.join('test', f.split(path.sep).join('/')))
  .sort();
for (const f of SLOW) if (!ALL.includes(f)) throw new Error(`test/run.mjs: ${f} in SLOW is not a test file`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pushbutton-test-run-'));

// The hub compiled once for the run, as `npm run build` compiles it: the tests' hub processes
// start from it (TEST_HUB_BUILD, test/helpers/child-hub.ts) in about half the time and CPU of
// one run from the sources under tsx. A directory of the project's root, as dist/ is, so the
// compiled hub finds public/ and node_modules/ where the built one does.
const build = mkdtempSync(path.join(ROOT, '.test-build-'));
const compiled = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json', '--outDir', build], { cwd: ROOT, stdio: 'inherit' });
if (compiled.status !== 0) {
  rmSync(build, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
  process.stdout.write('\nthe hub did not compile (tsc -p tsconfig.build.json), so no test ran\n0 passed, 1 failed, 0 skipped\n');
  process.exit(1);
}

/** .mocharc.json with only `files` to run (mocha adds a --spec to the config's, never replaces it). */
function embeddedConfig(name, files) {
  const config = { ...JSON.parse(readFileSync(path.join(ROOT, '.mocharc.json'), 'utf8')), spec: files };
  const file = path.join(tmp, `${name}.mocharc.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const LANES = [
  [
    { name: 'embedded store, suites that wait on other processes', config: embeddedConfig('wait-long', WAIT_LONG), store: 'embedded' },
    { name: 'embedded store, in a real browser, PostgreSQL silence and shutdown', config: embeddedConfig('browser', BROWSER), store: 'embedded' },
  ],
  [
    { name: 'PostgreSQL store, protocol suites', config: '.mocharc.postgresql.jsonc', store: 'postgresql' },
    { name: 'embedded store, WebSub and HTTPS', config: embeddedConfig('after-pg', AFTER_PG), store: 'embedded' },
  ],
  [{ name: 'embedded store, suites that wait on timers', config: embeddedConfig('wait', WAIT), store: 'embedded' }],
  [{ name: 'embedded store, the other suites', config: embeddedConfig('other', ALL.filter((f) => !SLOW.includes(f))), store: 'embedded' }],
];

// Output: one run at a time is live (written as it comes); the others are held and written
// whole when the live one ends.
const held = new Map();
let live;
function write(run, chunk) {
  if (run === live) process.stdout.write(chunk);
  else held.get(run).push(chunk);
}
function ended(run) {
  if (run !== live) return;
  live = undefined;
  for (const [other, chunks] of held) {
    if (other.done) {
      for (const c of chunks) process.stdout.write(c);
      held.delete(other);
    }
  }
  const next = [...held.keys()][0];
  if (next) {
    for (const c of held.get(next)) process.stdout.write(c);
    held.delete(next);
    live = next;
  }
}

const children = new Set();
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    // To each run's process group: mocha re-spawns itself (for --import) and its wrapper passes
    // on only SIGINT, so a SIGTERM to the wrapper alone left the tests running.
    for (const c of children) {
      try {
        process.kill(-c.pid, signal);
      } catch {
        // already gone
      }
    }
  });
}

function runMocha(run, countsFile) {
  return new Promise((resolve) => {
    const color = process.stdout.isTTY ? ['--color'] : [];
    const child = spawn(process.execPath, [MOCHA, '--config', run.config, ...color, ...process.argv.slice(2)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, TEST_STORE: run.store, TEST_COUNTS_FILE: countsFile, TEST_HUB_BUILD: build },
    });
    children.add(child);
    child.stdout.on('data', (c) => write(run, c));
    child.stderr.on('data', (c) => write(run, c));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    // 'close', not 'exit': the last of its output has been read by then.
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
}

async function start(run, i) {
  const countsFile = path.join(tmp, `counts-${i}.json`);
  const started = Date.now();
  if (live === undefined) live = run;
  else held.set(run, []);
  const exit = await runMocha(run, countsFile);
  run.done = true;
  ended(run);
  const seconds = Math.round((Date.now() - started) / 1000);
  let counts;
  try {
    counts = JSON.parse(readFileSync(countsFile, 'utf8'));
  } catch {
    counts = undefined;
  }
  let broke;
  if (exit.error) broke = `mocha could not be started: ${exit.error.message}`;
  else if (!counts) broke = `it ended (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}) without reporting its counts`;
  else if ((exit.code !== 0 || exit.signal) && counts.failed === 0) broke = `it exited with ${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`} although no test failed`;
  return { run, seconds, counts: counts ?? { passed: 0, failed: 0, skipped: 0 }, broke };
}

const results = new Map();
const started = Date.now();
let n = 0;
await Promise.all(
  LANES.map(async (lane) => {
    for (const run of lane) {
      if (interrupted) return;
      results.set(run, await start(run, n++));
    }
  }),
);
for (const chunks of held.values()) for (const c of chunks) process.stdout.write(c);
rmSync(tmp, { recursive: true, force: true });
rmSync(build, { recursive: true, force: true });

const line = (c) => `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
const total = { passed: 0, failed: 0, skipped: 0 };
process.stdout.write(`\n${LANES.flat().length} runs in ${LANES.length} lanes, ${Math.round((Date.now() - started) / 1000)} s in all:\n`);
for (const run of LANES.flat()) {
  const r = results.get(run);
  if (!r) {
    process.stdout.write(`${run.name}: not run (${interrupted}), counted as one failure\n`);
    total.failed += 1;
    continue;
  }
  process.stdout.write(`${run.name} (${r.seconds} s): ${line(r.counts)}\n`);
  if (TIMINGS) {
    const files = Object.entries(r.counts.files ?? {}).sort((a, b) => b[1] - a[1]);
    for (const [file, seconds] of files) process.stdout.write(`  ${seconds.toFixed(1).padStart(6)} s  ${file}\n`);
  }
  for (const f of r.counts.failures ?? []) process.stdout.write(`  failed: ${f}\n`);
  if (r.broke) process.stdout.write(`  the ${run.name} run broke, counted as one more failure: ${r.broke}\n`);
  total.passed += r.counts.passed;
  total.failed += r.counts.failed + (r.broke ? 1 : 0);
  total.skipped += r.counts.skipped;
}
process.stdout.write(`${line(total)}\n`);
process.exitCode = total.failed === 0 && !interrupted ? 0 : 1;
