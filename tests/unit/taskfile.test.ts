// `task X` and `npx vaultlab X` behave the same: the Taskfile is run by the real `task`
// binary (built from its Go module by tests/harness/provision.ts).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTool } from '../harness/kube/build.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

const task = ensureTool('task');
const env = { ...process.env, NO_COLOR: '1' };

describe('Taskfile.yml', () => {
  it('lists every documented task', () => {
    const r = spawnSync(task, ['--list'], { cwd: PROJECT_ROOT, encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    for (const t of ['deploy', 'destroy', 'reset', 'rotate', 'status', 'doctor', 'plan', 'vault:init', 'vault:generate-secrets', 'test', 'bench']) expect(r.stdout).toContain(`* ${t}:`);
  });

  it('task plan gives the same bytes as npx vaultlab plan', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-task-'));
    const viaTask = spawnSync(task, ['plan', '--', '--out', join(dir, 'task')], { cwd: PROJECT_ROOT, encoding: 'utf8', env });
    expect(viaTask.status, viaTask.stderr).toBe(0);
    const viaCli = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), 'plan', '--out', join(dir, 'cli')], { cwd: PROJECT_ROOT, encoding: 'utf8', env });
    expect(viaCli.status).toBe(0);
    for (const f of ['plan.json', 'helm/vault-values.yaml', 'manifests/webapp.yaml']) {
      expect(readFileSync(join(dir, 'task', f), 'utf8')).toBe(readFileSync(join(dir, 'cli', f), 'utf8'));
    }
  });

  it('a config error fails the task too, with the same message', () => {
    const r = spawnSync(task, ['plan', '--', '--profile', 'nope'], { cwd: PROJECT_ROOT, encoding: 'utf8', env });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown profile "nope"');
  });
});
