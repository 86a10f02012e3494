// Suites that need real servers must FAIL when those cannot be started (binaries missing and
// not buildable, a port clash, a crash), never end up "skipped". A throwing beforeAll makes
// vitest report the suite's tests as skipped; this keeps the setup error and fails every test
// with it instead.
import { beforeAll, beforeEach } from 'vitest';

export function setupOrFail(setup: () => Promise<void>, timeoutMs?: number): void {
  let failure: unknown;
  beforeAll(async () => {
    try {
      await setup();
    } catch (err) {
      failure = err;
    }
  }, timeoutMs);
  beforeEach(() => {
    if (failure !== undefined) throw failure;
  });
}
