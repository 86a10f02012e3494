// The real path on a Docker machine: deploy -> verify -> re-deploy (nothing changes) ->
// reset --secrets -> destroy, on a kind cluster with a unique name. Where no Docker engine
// answers, the suite says so at run time (`skipped: <reason>`) and runs nothing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerInfo } from '../../scripts/adapters/docker.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

const docker = await dockerInfo();
const reason = docker.reachable ? undefined : `no Docker engine (${docker.reason})`;
if (reason) console.log(`skipped: e2e deploy on kind: ${reason}`);

const NAME = `vaultlab-e2e-${process.pid}`;
const cwd = mkdtempSync(join(tmpdir(), 'vaultlab-e2e-'));
function vaultlab(args: string[]) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, '--name', NAME, '--config', join(PROJECT_ROOT, 'config.toml')], { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 1_500_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const json = (r: { stdout: string }) => JSON.parse(r.stdout);

const PROFILE = process.env.VAULTLAB_PROFILE || 'demo';

describe.skipIf(!!reason)(`deploy on kind (Docker), ${PROFILE} profile`, () => {
  beforeAll(() => {
    expect(docker.reachable).toBe(true);
  });
  afterAll(() => {
    vaultlab(['destroy', '--yes']);
  });

  it('deploys, verifies every ExternalSecret and sample app', () => {
    const r = vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j.ok).toBe(true);
    expect(j.steps.map((s: any) => s.name)).toEqual(['preflight', 'cluster', 'install', 'vault', 'eso-resources', 'samples', 'verify']);
    expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
  });

  it('a re-deploy changes nothing: no Helm upgrade, no applied change, no secret written', () => {
    const r = vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j.summary.vault.seed).toMatchObject({ created: 0, updated: 0, rotated: 0 });
    expect(j.summary.vault.configure).toBe(0);
    expect(j.summary.esoResources.changed).toBe(0);
    expect(j.steps.find((s: any) => s.name === 'install').detail).toMatch(/Vault unchanged, ESO unchanged/);
  });

  it('status is healthy (exit 0) and reset --secrets re-syncs', () => {
    expect(vaultlab(['status', '--json']).code).toBe(0);
    const r = vaultlab(['reset', '--secrets', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('destroy removes the cluster and is safe to run twice', () => {
    expect(vaultlab(['destroy', '--yes']).code).toBe(0);
    expect(vaultlab(['destroy', '--yes']).code).toBe(0);
  });
});
