// `npm test` after the type check: mocha twice, one run after the other, then ONE closing line
// for both, "N passed, N failed, N skipped", always the last line of the output (CI reads it).
//
//   1. every test file (.mocharc.json), the hubs on the embedded store, as `npx mocha` runs them;
//   2. the protocol suites (.mocharc.postgresql.jsonc) again with TEST_STORE=postgresql: every
//      hub on the PostgreSQL store (test/helpers/store-under-test.ts), every top-level suite
//      titled "[postgresql] …".
//
// Each run's reporter (test/reporter.cjs) writes its counts to the file TEST_COUNTS_FILE names
// instead of printing them. A run that ends without its counts (it crashed, or could not load a
// file) or exits non-zero without a failure counted is one more failure in the total, so a run
// that broke can never add up to green. Exit status: 0 only when nothing failed.
// Arguments go to both runs (e.g. `npm test -- --grep pleaseNotify`).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');

const RUNS = [
  { name: 'embedded store, every test', config: '.mocharc.json', store: 'embedded' },
  { name: 'PostgreSQL store, protocol suites', config: '.mocharc.postgresql.jsonc', store: 'postgresql' },
];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pushbutton-test-run-'));
let child;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    child?.kill(signal);
  });
}

function runMocha(run, countsFile) {
  return new Promise((resolve) => {
    child = spawn(process.execPath, [MOCHA, '--config', run.config, ...process.argv.slice(2)], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, TEST_STORE: run.store, TEST_COUNTS_FILE: countsFile },
    });
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

const results = [];
for (const [i, run] of RUNS.entries()) {
  if (interrupted) break;
  const countsFile = path.join(tmp, `counts-${i}.json`);
  const started = Date.now();
  const exit = await runMocha(run, countsFile);
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
  results.push({ run, seconds, counts: counts ?? { passed: 0, failed: 0, skipped: 0 }, broke });
}
rmSync(tmp, { recursive: true, force: true });

const line = (c) => `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
const total = { passed: 0, failed: 0, skipped: 0 };
process.stdout.write('\n');
for (const r of results) {
  process.stdout.write(`${r.run.name} (${r.seconds} s): ${line(r.counts)}\n`);
  if (r.broke) process.stdout.write(`  the ${r.run.name} run broke, counted as one more failure: ${r.broke}\n`);
  total.passed += r.counts.passed;
  total.failed += r.counts.failed + (r.broke ? 1 : 0);
  total.skipped += r.counts.skipped;
}
for (const run of RUNS.slice(results.length)) {
  process.stdout.write(`${run.name}: not run (${interrupted}), counted as one failure\n`);
  total.failed += 1;
}
process.stdout.write(`${line(total)}\n`);
process.exitCode = total.failed === 0 && !interrupted ? 0 : 1;
