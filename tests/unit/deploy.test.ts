import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DEPLOY_STEPS } from '../../scripts/steps/index.ts';
import { machineFindings, portFree } from '../../scripts/steps/preflight.ts';
import { checkSecret, decodeEsoError, expectedKeys } from '../../scripts/deliveries/eso/sync.ts';
import { sha256 } from '../../scripts/lib/digest.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { checkProfileSwitch } from '../../scripts/steps/cluster.ts';
import { dockerInfo } from '../../scripts/adapters/docker.ts';
import { parseVersion, versionAtLeast } from '../../scripts/adapters/tools.ts';
import { loadConfig, BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';

const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
const options = { preload: false, skipSamples: false, timeoutMs: 1000 };

describe('deploy pipeline', () => {
  it('runs its steps in the documented order', () => {
    expect(DEPLOY_STEPS.map((s) => s.name)).toEqual(['preflight', 'cluster', 'install', 'vault', 'deliveries', 'samples', 'verify', 'summary']);
    expect(new Set(DEPLOY_STEPS.map((s) => s.name)).size).toBe(DEPLOY_STEPS.length);
  });

  it('applies ESO resources in dependency order, sample workloads excluded', () => {
    const kinds = resourceManifests({ plan, options }).map((o) => o.kind);
    const firstOf = (k: string) => kinds.indexOf(k);
    expect(firstOf('Namespace')).toBe(0);
    expect(kinds.lastIndexOf('Namespace')).toBeLessThan(firstOf('ServiceAccount'));
    expect(kinds.lastIndexOf('Secret')).toBeLessThan(firstOf('SecretStore')); // argocd-secret before its Merge ExternalSecret
    expect(kinds.lastIndexOf('SecretStore')).toBeLessThan(firstOf('ExternalSecret'));
    expect(kinds).not.toContain('Deployment');
  });

  it('parses tool versions and compares them', () => {
    expect(parseVersion('kind v0.33.0 go1.26 linux/amd64')).toBe('0.33.0');
    expect(parseVersion('v3.19.0+g3d8990f')).toBe('3.19.0');
    expect(versionAtLeast('0.33.0', '0.30.0')).toBe(true);
    expect(versionAtLeast('3.9.4', '3.14.0')).toBe(false);
  });

  it('sees a port in use', async () => {
    const srv = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as { port: number }).port;
    expect(await portFree(port)).toBe(false);
    srv.close();
  });

  it('refuses to switch a deployed environment to another profile in place', () => {
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    state.writeJson('cluster.json', { name: 'vaultlab', provider: 'kind', profile: 'demo', createdByVaultlab: true });
    const prod = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));
    expect(() => checkProfileSwitch({ state, plan })).not.toThrow();
    expect(() => checkProfileSwitch({ state, plan: prod })).toThrow(/^environment "vaultlab" is a demo environment \(the environment was deployed with the demo profile; .*cluster\.json\); switching it to production in place is refused$/);
    // The init record alone counts too: it is what cannot change.
    const initOnly = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    initOnly.writeJson('vault-init.json', { profile: 'demo', keys_base64: ['k'], root_token: null });
    expect(() => checkProfileSwitch({ state: initOnly, plan: prod })).toThrow(/Vault was initialized with the demo profile/);
  });
});

describe('preflight on this machine', async () => {
  const docker = await dockerInfo();
  it('reports the Docker engine state with a fix', async () => {
    const findings = await machineFindings({ plan });
    const d = findings.find((f) => /Docker/.test(f.what))!;
    expect(d.ok).toBe(docker.reachable);
    if (!docker.reachable) {
      expect(d.what).toMatch(/^Docker is not running: /);
      expect(d.fix).toMatch(/Start Docker/);
    }
  });

  it.runIf(!docker.reachable)('deploy stops at preflight with exit 1, the reason and the fix, and JSON step durations', () => {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), 'deploy', '--json'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, cwd: mkdtempSync(join(tmpdir(), 'vaultlab-')) });
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(false);
    expect(j.error).toMatch(/Docker is not running/);
    expect(j.hint).toMatch(/Start Docker/);
    expect(j.steps).toEqual([expect.objectContaining({ name: 'preflight', outcome: 'failed', ms: expect.any(Number) })]);
  });
});

describe('verify', () => {
  const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
  const es = webapp.externalSecrets.find((e) => e.name === 'webapp-db')!;
  const vault: Record<string, string> = { 'webapp/db:username': 'app_user', 'webapp/db:password': 'p4ss-word', 'webapp/api:api_key': 'abcdef0123' };
  const lookup = async (p: string, k: string) => vault[`${p}:${k}`];

  it('accepts a Secret whose keys and values match Vault exactly', async () => {
    const secret = { DB_USERNAME: Buffer.from('app_user'), DB_PASSWORD: Buffer.from('p4ss-word'), API_KEY: Buffer.from('abcdef0123') };
    expect(await checkSecret('webapp', es, secret, lookup)).toMatchObject({ ok: true, problems: [] });
  });

  it('names missing, unexpected and differing keys without printing values', async () => {
    const secret = { DB_USERNAME: Buffer.from('app_user'), DB_PASSWORD: Buffer.from('stale-value'), EXTRA: Buffer.from('x') };
    const r = await checkSecret('webapp', es, secret, lookup);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual(['missing key(s) API_KEY', 'unexpected key(s) EXTRA', "DB_PASSWORD differs from Vault's webapp/db:password (digest mismatch)"]);
    expect(JSON.stringify(r)).not.toContain('stale-value');
    expect(JSON.stringify(r)).not.toContain('p4ss-word');
  });

  it('a Merge target may hold keys of its owner; a template decides the expected keys', async () => {
    const argo = plan.namespaces.find((n) => n.name === 'argocd')!.externalSecrets[0]!;
    const r = await checkSecret('argocd', argo, { 'admin.password': Buffer.from('h'), 'server.secretkey': Buffer.from('k'), 'owned.by.argocd': Buffer.from('z') }, async (_p, k) => (k === 'admin.password' ? 'h' : 'k'));
    expect(r.ok).toBe(true);
    const reg = plan.namespaces.find((n) => n.name === 'registry')!.externalSecrets[0]!;
    expect(expectedKeys(reg)).toEqual(['.dockerconfigjson']);
    expect(sha256('a')).toHaveLength(64);
  });

  it('decodes ESO errors into causes that name role, policy and audience', () => {
    const d = decodeEsoError('could not get provider client: unable to log in to auth method: Error making API request. Code: 403. Errors: * permission denied', webapp, plan);
    expect(d.cause).toContain('role eso-webapp-role, policy eso-policy, audience "vault"');
    expect(decodeEsoError('cannot find secret data for key: "password"', webapp, plan).fix).toMatch(/vaultlab seed/);
    expect(decodeEsoError('dial tcp: connection refused', webapp, plan).cause).toContain('cannot reach Vault at http://vault.vault.svc:8200');
  });
});
