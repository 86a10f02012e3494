// Servers a describe block needs, started once for it. A server that cannot start (`bao`
// missing, a bad configuration) fails every test of the block with the reason: vitest would
// otherwise report the tests of a block whose beforeAll threw as skipped.
import { beforeAll, beforeEach } from 'vitest';

export function startForBlock(start: () => Promise<void>): void {
  let error: unknown;
  beforeAll(async () => {
    try {
      await start();
    } catch (err) {
      error = err;
    }
  });
  beforeEach(() => {
    if (error) throw error;
  });
}
