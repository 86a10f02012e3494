// The real path on a Docker machine: deploy -> verify -> re-deploy (nothing changes: no Helm
// upgrade, no server-side apply change, no Vault write by seed, no pod replaced or restarted) ->
// status, reset --secrets -> destroy, on a kind cluster with a unique name. Where no Docker
// engine answers, the suite says so at run time (`skipped: <reason>`) and runs nothing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerInfo } from '../../scripts/adapters/docker.ts';
import { kindClusters } from '../../scripts/adapters/kind.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { PROJECT_ROOT, loadConfig } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';

const docker = await dockerInfo();
const reason = docker.reachable ? undefined : `no Docker engine (${docker.reason})`;
if (reason) console.log(`skipped: e2e deploy on kind: ${reason}`);

const PROFILE = process.env.VAULTLAB_PROFILE || 'demo';
// CI sets the name, so its always-run cleanup step can delete the cluster after a crash.
const NAME = process.env.VAULTLAB_E2E_NAME || `vaultlab-e2e-${process.pid}`;
const CONFIG = join(PROJECT_ROOT, 'config.toml');
const cwd = mkdtempSync(join(tmpdir(), 'vaultlab-e2e-'));
const loaded = loadConfig({ file: CONFIG, profile: PROFILE, clusterName: NAME, env: {} });
const plan = buildPlan(loaded);

function vaultlab(args: string[]) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, '--name', NAME, '--config', CONFIG, '--profile', PROFILE], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    timeout: 1_500_000,
  });
  // Progress and errors for the CI log (never a value: vaultlab redacts, and the test checks).
  process.stderr.write(r.stderr ?? '');
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
const json = (r: { stdout: string }) => JSON.parse(r.stdout);

/** uid and restart count of every pod vaultlab deployed or installed. */
async function pods(): Promise<Record<string, string>> {
  const kube = await Kube.connect({ kubeconfig: join(cwd, '.vaultlab', NAME, 'kubeconfig') });
  const namespaces = [plan.vault.namespace, plan.eso.namespace, ...plan.namespaces.map((n) => n.name)];
  const out: Record<string, string> = {};
  for (const ns of namespaces) {
    for (const p of await kube.list<any>('v1', 'Pod', ns)) {
      const restarts = (p.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0);
      out[`${ns}/${p.metadata.name}`] = `${p.metadata.uid} restarts=${restarts}`;
    }
  }
  return out;
}

const STEPS = ['preflight', 'cluster', 'install', 'vault', 'eso-resources', 'samples', 'verify', 'summary'];
// Values the demo knows; none may ever reach vaultlab's output.
const knownValues = Object.values(loaded.passwords).filter((v) => v.length >= 6);

describe.skipIf(!!reason)(`deploy on kind (Docker), ${PROFILE} profile, cluster ${NAME}`, () => {
  let first: any;
  let podsBefore: Record<string, string>;

  beforeAll(() => {
    expect(docker.reachable).toBe(true);
  });
  afterAll(() => {
    vaultlab(['destroy', '--yes']);
  });

  it('deploys and verifies every ExternalSecret (keys and SHA-256 digests) and sample app', async () => {
    const r = vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    first = json(r);
    expect(first.ok).toBe(true);
    expect(first.steps.map((s: any) => s.name)).toEqual(STEPS);
    expect(first.steps.every((s: any) => typeof s.ms === 'number' && ['ok', 'skipped'].includes(s.outcome))).toBe(true);
    expect(first.summary.verify.length).toBe(plan.namespaces.reduce((n, ns) => n + ns.externalSecrets.length, 0));
    expect(first.summary.verify.every((c: any) => c.ok)).toBe(true);
    expect(first.summary.access.synced.length).toBe(first.summary.verify.length);
    for (const v of knownValues) expect(r.stdout + r.stderr).not.toContain(v);
    podsBefore = await pods();
    expect(Object.keys(podsBefore).length).toBeGreaterThan(0);
  });

  it('a re-deploy changes nothing: no Helm upgrade, SSA unchanged, zero seed writes, same pods, and it is faster', async () => {
    const r = vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j.steps.find((s: any) => s.name === 'install').detail).toBe(plan.vault.external ? 'ESO unchanged' : 'Vault unchanged, ESO unchanged');
    expect(j.summary.vault.init).toBe('already-initialized');
    expect(j.summary.vault.configure).toBe(0);
    expect(j.summary.vault.seed).toMatchObject({ created: 0, updated: 0, rotated: 0 });
    expect(j.summary.vault.seedWrites).toBe(0);
    expect(j.summary.esoResources.changed).toBe(0);
    expect(j.steps.find((s: any) => s.name === 'samples').detail).toMatch(/, 0 changed$/);
    expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
    expect(j.ms).toBeLessThan(first.ms);
    expect(await pods()).toEqual(podsBefore);
  });

  it('plain output in CI: one line per step, then the summary', () => {
    const r = vaultlab(['deploy']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    for (const title of ['Preflight checks', 'Cluster', 'Install Vault and External Secrets Operator (Helm)', 'Verify']) {
      expect(lines.filter((l) => l.startsWith(`✔ ${title}`)).length).toBe(1);
    }
    expect(r.stdout).toContain(`vaultlab ${PROFILE} environment "${NAME}" is ready.`);
    for (const v of knownValues) expect(r.stdout + r.stderr).not.toContain(v);
  });

  it.runIf(PROFILE === 'production')('a renewed certificate rolls the Vault pods one at a time: all replaced, unsealed, secrets untouched; the next deploy replaces none', async () => {
    // The server certificate goes (the CA stays): the next deploy issues a new one, whose digest
    // on the pod template makes a new StatefulSet revision.
    const tls = join(cwd, '.vaultlab', NAME, 'tls');
    for (const f of ['tls.crt', 'tls.key']) rmSync(join(tls, f), { force: true });
    const r = vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect([...j.summary.vault.replaced].sort()).toEqual(Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${plan.vault.release}-${i}`));
    expect(j.summary.vault.seedWrites).toBe(0);
    expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
    const again = json(vaultlab(['deploy', '--json']));
    expect(again.summary.vault.replaced).toEqual([]);
    podsBefore = await pods();
  });

  it('status is healthy (exit 0) and reset --secrets re-syncs', () => {
    expect(vaultlab(['status', '--json']).code).toBe(0);
    const r = vaultlab(['reset', '--secrets', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('destroy removes the cluster and is safe to run twice', async () => {
    expect(vaultlab(['destroy', '--yes']).code).toBe(0);
    expect(await kindClusters()).not.toContain(NAME);
    expect(vaultlab(['destroy', '--yes']).code).toBe(0);
  });
});
