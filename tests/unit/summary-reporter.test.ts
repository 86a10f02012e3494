// The closing line CI reads ("tests: N passed, N failed, N skipped") must count tests that never
// ran because their setup threw as failed, never as skipped. A real vitest run on fixtures.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

const FIXTURES = join(PROJECT_ROOT, 'tests', 'harness', 'fixtures', 'reporter');

function run(pattern: string) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', join(FIXTURES, 'vitest.config.ts')], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: { ...process.env, FIXTURES: pattern, CI: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  });
  const closing = r.stdout.split('\n').filter((l) => l.startsWith('tests: '));
  return { code: r.status, closing, out: r.stdout + r.stderr };
}

describe('summary reporter', () => {
  it('counts the tests of a suite whose beforeAll threw as failed; skipIf stays skipped', () => {
    const r = run('setup-fails.fixture.ts');
    expect(r.code, r.out).toBe(1);
    expect(r.closing).toEqual(['tests: 1 passed, 2 failed, 1 skipped']);
  });

  it('counts a module-level beforeAll failure', () => {
    const r = run('top-level-fails.fixture.ts');
    expect(r.code, r.out).toBe(1);
    expect(r.closing).toEqual(['tests: 0 passed, 1 failed, 0 skipped']);
  });

  it('a clean run: vitest exits 0 and the line says 0 failed', () => {
    const r = run('passing.fixture.ts');
    expect(r.code, r.out).toBe(0);
    expect(r.closing).toEqual(['tests: 1 passed, 0 failed, 1 skipped']);
  });
});
