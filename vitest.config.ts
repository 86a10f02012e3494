import { defineConfig } from 'vitest/config';

// The main suite: unit tests plus the suites that run against real servers started by the
// tests themselves (OpenBao, kube-apiserver + etcd). The Docker/kind suite has its own
// config (tests/e2e/vitest.config.ts, `npm run test:e2e`).
export default defineConfig({
  test: {
    include: ['tests/{unit,vault,kube,production,lifecycle}/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Two cores: suites that start servers should not all run at once.
    maxWorkers: 2,
    reporters: ['default', './tests/harness/summary-reporter.ts'],
  },
});
