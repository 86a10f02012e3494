// status, doctor, reset and destroy as a user runs them, against a real OpenBao and a real
// kube-apiserver (provider = "existing", pointing at the test API server).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { installEsoCrds } from '../harness/kube/eso.ts';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { BUNDLED_CONFIG, PROJECT_ROOT, loadConfig } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { esoManifests } from '../../scripts/steps/eso-resources.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { ownedByVaultlab } from '../../scripts/lifecycle/destroy.ts';
import { inotifyFindings } from '../../scripts/lifecycle/doctor.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');

describe('lifecycle commands on a real API server and OpenBao', () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let cwd: string;
  let config: string;
  let state: StateDir;

  const vaultlab = (args: string[]) => {
    const vaultFlags = args[0] === 'destroy' ? [] : ['--vault-addr', bao.address];
    const r = spawnSync(process.execPath, [CLI, ...args, '--config', config, ...vaultFlags], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', VAULT_TOKEN: '', VAULT_ADDR: '', CI: '' } });
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };

  beforeAll(async () => {
    [kubeServer, bao] = await Promise.all([startKube(), startBao()]);
    kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
    await installEsoCrds(kube);
    cwd = mkdtempSync(join(tmpdir(), 'vaultlab-life-'));
    config = join(cwd, 'config.toml');
    writeFileSync(config, readFileSync(BUNDLED_CONFIG, 'utf8').replace('provider = "kind"', `provider = "existing"\ncontext = "vaultlab-test"\nkubeconfig = "${kubeServer.kubeconfigPath}"`));
    state = new StateDir(join(cwd, '.vaultlab', 'vaultlab'));
    const caFile = join(cwd, 'ca.pem');
    writeFileSync(caFile, kubeServer.caPem);
    const up = vaultlab(['vault', 'up', '--kube-host', kubeServer.host, '--kube-ca-file', caFile]);
    expect(up.code, up.out).toBe(0);
    // What deploy applies to the cluster.
    const plan = buildPlan(loadConfig({ file: config, env: {} }));
    await kube.apply(esoManifests({ plan, options: { preload: false, skipSamples: false, timeoutMs: 1000 } }));
    await kube.apply(plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns)).filter((o) => o.kind === 'Deployment'));
  });
  afterAll(async () => Promise.all([kubeServer?.stop(), bao?.stop()]));

  it('status reports every part and exits 1 while ESO has synced nothing', () => {
    const r = vaultlab(['status', '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    const by = (n: string) => j.checks.find((c: any) => c.name === n);
    expect(by('cluster').ok).toBe(true);
    expect(by('vault')).toMatchObject({ ok: true });
    expect(by('vault engines').detail).toMatch(/secret\/ .*transit\//);
    expect(by('eso').ok).toBe(false);
    expect(by('ExternalSecret webapp/webapp-db')).toMatchObject({ ok: false, detail: 'no condition yet' });
    expect(j.vault.unseal).toBe('unsealed');
  });

  it('a Vault sealed by a restart is detected and, in the demo profile, unsealed from the stored key', async () => {
    const root = readInit(state)!.root_token!;
    const v = new VaultClient({ address: bao.address, token: root });
    await v.put('sys/seal', {});
    expect((await v.sealStatus()).sealed).toBe(true);
    const r = vaultlab(['status', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j.vault.unseal).toBe('was-sealed-now-unsealed');
    expect(j.checks.find((c: any) => c.name === 'vault').detail).toMatch(/was sealed \(restart\?\), unsealed from the stored key/);
    expect((await v.sealStatus()).sealed).toBe(false);
    v.close();
  });

  it('reset --secrets regenerates random values, restores literals, forces ESO to re-sync and restarts apps', async () => {
    const root = readInit(state)!.root_token!;
    const v = new VaultClient({ address: bao.address, token: root });
    const apiBefore = (await v.kvRead('secret', 'webapp/api'))!.data.api_key;
    await v.kvPatch('secret', 'registry/creds', { username: 'tampered-by-a-talk' });
    const r = vaultlab(['reset', '--secrets', '--restart', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.seed.counts.rotated).toBe(5);
    expect(j.seed.counts.updated).toBe(1);
    expect(j.resynced).toHaveLength(5); // every ExternalSecret of the bundled config
    expect(j.restarted).toEqual(expect.arrayContaining(['webapp/webapp', 'webapp/worker', 'dashboard/dashboard', 'registry/registry']));
    expect((await v.kvRead('secret', 'webapp/api'))!.data.api_key).not.toBe(apiBefore);
    expect((await v.kvRead('secret', 'registry/creds'))!.data.username).toBe('demo-robot');
    const es = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db');
    expect(es.metadata.annotations['force-sync']).toBeTruthy();
    const dep = await kube.get<any>('apps/v1', 'Deployment', 'webapp', 'webapp');
    expect(dep.spec.template.metadata.annotations['vaultlab.dev/restartedAt']).toBe(es.metadata.annotations['force-sync']);
    for (const value of [apiBefore, (await v.kvRead('secret', 'webapp/api'))!.data.api_key!]) expect(r.out).not.toContain(value);
    v.close();
  });

  it('reset --full without --yes and without a terminal refuses (exit 2) and touches nothing', () => {
    const r = vaultlab(['reset', '--full']);
    expect(r.code).toBe(2);
    expect(r.out).toContain('Pass --yes');
  });

  it('doctor lists machine findings with fixes and decodes the environment', () => {
    const r = vaultlab(['doctor', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j.machine.some((f: any) => /inotify/.test(f.what))).toBe(true);
    expect(j.environment.find((f: any) => /^ExternalSecret webapp\/webapp-db/.test(f.what))).toMatchObject({ ok: false });
    expect(r.code).toBe(1);
  });

  it('destroy on an existing cluster removes only what vaultlab installed, and is safe twice', async () => {
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'not-ours' } }]);
    const r = vaultlab(['destroy', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.removed).toEqual(expect.arrayContaining(['namespace webapp', 'namespace argocd']));
    expect(j.removed.some((x: string) => /not-ours|kube-system|default/.test(x))).toBe(false);
    const ns = await kube.get<any>('v1', 'Namespace', undefined, 'webapp');
    expect(!ns || ns.metadata.deletionTimestamp).toBeTruthy();
    expect(await kube.get('v1', 'Namespace', undefined, 'not-ours')).toBeTruthy();
    expect(vaultlab(['destroy']).code).toBe(0);
  });

  it('a kind cluster without vaultlab\'s marker is not vaultlab\'s to delete', async () => {
    const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
    const fresh = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    expect(await ownedByVaultlab(plan, fresh, kube)).toBe(false);
    await kube.apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vaultlab-owner', namespace: 'kube-system' }, data: { cluster: 'vaultlab', createdByVaultlab: 'true' } }]);
    expect(await ownedByVaultlab(plan, fresh, kube)).toBe(true);
    fresh.writeJson('cluster.json', { name: 'vaultlab', provider: 'kind', profile: 'demo', createdByVaultlab: true });
    expect(await ownedByVaultlab(plan, fresh, undefined)).toBe(true);
  });

  it('reads this machine\'s inotify limits', () => {
    const f = inotifyFindings();
    expect(f.map((x) => x.what.split(' =')[0])).toEqual(['fs.inotify.max_user_watches', 'fs.inotify.max_user_instances']);
  });
});
