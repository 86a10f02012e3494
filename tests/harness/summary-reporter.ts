// Prints one plain closing line, "tests: N passed, N failed, N skipped", after vitest's own
// report, so CI transcripts can be read the same way whatever the runner prints.
//
// vitest reports the tests of a suite whose beforeAll threw (a server that did not start, say)
// as "skipped", with the error on the suite or module. Those tests did not run because
// something broke, so they count as failed here: the closing line never says "0 failed" for a
// run that vitest itself fails. A test skipped on purpose (skipIf, a Docker gate) stays skipped.
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/** Did a hook of the test's suite, an enclosing suite or its module throw? */
function setupFailed(t: TestCase): boolean {
  for (let p: TestSuite | TestModule = t.parent; ; p = p.parent) {
    if (p.errors().length > 0) return true;
    if (p.type === 'module') return false;
  }
}

export function countResults(modules: ReadonlyArray<TestModule>): { passed: number; failed: number; skipped: number } {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const m of modules) {
    let tests = 0;
    for (const t of m.children.allTests()) {
      tests++;
      const state = t.result().state;
      if (state === 'passed') passed++;
      else if (state === 'failed' || setupFailed(t)) failed++;
      else skipped++;
    }
    // A module that failed before declaring any test (an import error, a top-level throw).
    if (m.state() === 'failed' && tests === 0) failed++;
  }
  return { passed, failed, skipped };
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const { passed, failed, skipped } = countResults(modules);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
