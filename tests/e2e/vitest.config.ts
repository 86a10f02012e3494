import { defineConfig } from 'vitest/config';

// The Docker/kind suite: `npm run test:e2e`. Without a Docker engine it prints `skipped: <reason>`.
export default defineConfig({
  test: {
    include: ['tests/e2e/**/*.e2e.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
