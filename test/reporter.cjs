// Mocha's spec output, then one closing line CI can count: "N passed, N failed, N skipped".
//
// Under test/run.mjs (`npm test`, two mocha runs) TEST_COUNTS_FILE names a file: the counts go
// there as JSON instead, and test/run.mjs prints the one closing line for both runs. With
// TEST_STORE set (the PostgreSQL pass), every top-level suite's title starts "[postgresql] ", so
// its tests and failures cannot be mistaken for the embedded store's.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class CountingReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    const store = process.env.TEST_STORE?.trim();
    if (store && store !== 'embedded') {
      for (const t of [...runner.suite.suites, ...runner.suite.tests]) t.title = `[${store}] ${t.title}`;
    }
    super(runner, options);
    // CI keeps only the tail of the output, where mocha's own failure report may already be cut:
    // the titles travel with the counts so test/run.mjs can name them beside its closing line.
    const failures = [];
    runner.on(EVENT_TEST_FAIL, (test, error) => {
      const message = String(error?.message ?? error).split('\n')[0].slice(0, 300);
      failures.push(`${test.fullTitle()}: ${message}`);
    });
    // Seconds per test file, hooks included, for balancing test/run.mjs's lanes (TEST_TIMINGS=1).
    const files = {};
    const began = new Map();
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (suite.file && suite.parent?.root) began.set(suite, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      const t = began.get(suite);
      if (t === undefined) return;
      const name = path.relative(process.cwd(), suite.file);
      files[name] = (files[name] ?? 0) + (Date.now() - t) / 1000;
    });
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const file = process.env.TEST_COUNTS_FILE;
      if (file) {
        fs.writeFileSync(file, JSON.stringify({ passed: s.passes, failed: s.failures, skipped: s.pending, failures, files }));
      } else {
        process.stdout.write(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
      }
    });
  }
}

module.exports = CountingReporter;
