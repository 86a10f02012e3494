// status, doctor, reset and destroy as a user runs them (the CLI in a child process), against a
// real OpenBao and a real kube-apiserver (provider = "existing", pointing at the test API server).
// The harness runs no kube-controller-manager and no kubelet: Deployments never become Available
// and deleted namespaces stay Terminating, which these tests use as such.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { installEsoCrds } from '../harness/kube/eso.ts';
import { withoutVso } from '../harness/synced.ts';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { checkTool } from '../../scripts/adapters/tools.ts';
import { BUNDLED_CONFIG, PROJECT_ROOT, loadConfig } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { namespaceManifests, MANAGED_BY } from '../../scripts/plan/manifests.ts';
import { OWNER_CONFIGMAP } from '../../scripts/steps/cluster.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { ownership } from '../../scripts/lifecycle/destroy.ts';
import { TOKEN_REVIEWER } from '../../scripts/plan/manifests.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');
const HELM = await checkTool('helm');
const KV_PATHS = ['webapp/db', 'webapp/api', 'webapp/worker', 'argocd/admin', 'registry/creds', 'dashboard/config'];

describe('lifecycle commands on a real API server and OpenBao', () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let cwd: string;
  let config: string;
  let state: StateDir;
  let plan: ReturnType<typeof buildPlan>;

  const vaultlab = (args: string[], env: Record<string, string> = {}) => {
    const vaultFlags = args[0] === 'destroy' ? [] : ['--vault-addr', bao.address];
    const r = spawnSync(process.execPath, [CLI, ...args, '--config', config, ...vaultFlags], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', VAULT_TOKEN: '', VAULT_ADDR: '', CI: '', ...env } });
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };
  const json = (r: { stdout: string; out: string }) => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`not JSON:\n${r.out}`);
    }
  };
  const check = (j: any, name: string) => j.checks.find((c: any) => c.name === name);
  const root = () => new VaultClient({ address: bao.address, token: readInit(state)!.root_token! });

  beforeAll(async () => {
    [kubeServer, bao] = await Promise.all([startKube(), startBao()]);
    kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
    await installEsoCrds(kube);
    cwd = mkdtempSync(join(tmpdir(), 'vaultlab-life-'));
    config = join(cwd, 'config.toml');
    writeFileSync(config, withoutVso(readFileSync(BUNDLED_CONFIG, 'utf8')).replace('provider = "kind"', `provider = "existing"\ncontext = "vaultlab-test"\nkubeconfig = "${kubeServer.kubeconfigPath}"`));
    state = new StateDir(join(cwd, '.vaultlab', 'vaultlab'));
    const caFile = join(cwd, 'ca.pem');
    writeFileSync(caFile, kubeServer.caPem);
    const up = vaultlab(['vault', 'up', '--kube-host', kubeServer.host, '--kube-ca-file', caFile]);
    expect(up.code, up.out).toBe(0);
    // What deploy applies to the cluster: the ownership marker (an existing cluster is never
    // "created by vaultlab"), the demo's copy of the init result, the namespaces, ESO resources
    // and sample Deployments.
    plan = buildPlan(loadConfig({ file: config, env: {} }));
    await kube.apply([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: OWNER_CONFIGMAP, namespace: 'kube-system', labels: { ...MANAGED_BY } }, data: { cluster: plan.cluster.name, provider: 'existing', createdByVaultlab: 'false' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.vault.namespace } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: plan.vault.init.secretName, namespace: plan.vault.namespace, labels: { ...MANAGED_BY } }, data: { 'vault-init.json': Buffer.from(state.read('vault-init.json')!).toString('base64') } },
    ]);
    await kube.apply(resourceManifests({ plan, options: { preload: false, skipSamples: false, timeoutMs: 1000 } }));
    await kube.apply(plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns)).filter((o) => o.kind === 'Deployment'));
  });
  afterAll(async () => Promise.all([kubeServer?.stop(), bao?.stop()]));

  it('status reports every part, with durations, and exits 1 while ESO is missing', () => {
    const r = vaultlab(['status', '--json']);
    expect(r.code, r.out).toBe(1);
    const j = json(r);
    expect(j).toMatchObject({ ok: false, healthy: false, exitCode: 1, profile: 'demo', provider: 'existing' });
    expect(j.ms).toBeTypeOf('number');
    expect(check(j, 'cluster')).toMatchObject({ ok: true, detail: 'context "vaultlab-test" reachable' });
    expect(check(j, 'vault')).toMatchObject({ ok: true });
    expect(check(j, 'vault').detail).toMatch(/initialized, unsealed, active/);
    expect(j.vault).toMatchObject({ initialized: true, sealed: false, standby: false, unseal: 'unsealed' });
    expect(check(j, 'vault engines').detail).toMatch(/secret\/ .*transit\/; auth .*kubernetes\//);
    expect(check(j, 'vault pod vault/vault-0')).toMatchObject({ ok: false, detail: 'missing', fix: 'vaultlab deploy' });
    expect(check(j, 'eso')).toMatchObject({ ok: false, fix: 'vaultlab deploy' });
    expect(check(j, 'ExternalSecret webapp/webapp-db')).toMatchObject({ ok: false, detail: 'no condition yet' });
    expect(check(j, 'app webapp/webapp')).toMatchObject({ ok: false, detail: '0/1 ready; no pods' });
    // Every failed check says how to fix it.
    expect(j.checks.filter((c: any) => !c.ok && !c.fix)).toEqual([]);
    // Human output: one line per check, the verdict first.
    const human = vaultlab(['status']);
    expect(human.stdout.split('\n')[0]).toBe('UNHEALTHY: demo environment "vaultlab" (existing)');
    expect(human.stdout).toMatch(/ok {3}vault +initialized, unsealed/);
  });

  it('after a restart Vault is sealed: reported (exit 1, with the command), production never auto-unseals, demo unseals from the stored key', async () => {
    await bao.kill();
    await bao.restart();
    const v = new VaultClient({ address: bao.address });
    expect((await v.sealStatus()).sealed).toBe(true);

    const reportOnly = vaultlab(['status', '--no-unseal', '--json']);
    expect(reportOnly.code).toBe(1);
    expect(check(json(reportOnly), 'vault')).toMatchObject({ ok: false, fix: expect.stringMatching(/vaultlab vault unseal/) });
    expect(json(reportOnly).vault).toMatchObject({ unseal: 'sealed', sealed: true });

    const production = vaultlab(['status', '--profile', 'production', '--json']);
    expect(production.code).toBe(1);
    expect(check(json(production), 'vault')).toMatchObject({ ok: false, detail: expect.stringMatching(/needs 1 of 1 key shares, kept offline/), fix: expect.stringMatching(/vaultlab vault unseal --keys-file FILE/) });
    expect((await v.sealStatus()).sealed).toBe(true);

    const demo = vaultlab(['status', '--json']);
    const j = json(demo);
    expect(j.vault).toMatchObject({ unseal: 'was-sealed-now-unsealed', keysFrom: 'state', sealed: false });
    expect(check(j, 'vault')).toMatchObject({ ok: true, detail: expect.stringMatching(/^was sealed \(restart\?\), unsealed from the stored key/) });
    expect((await v.sealStatus()).sealed).toBe(false);
    // The key never reaches the output.
    for (const k of readInit(state)!.keys_base64) expect(demo.out).not.toContain(k);
    v.close();
  });

  it("without the state dir's key, a demo Vault is unsealed from the copy deploy keeps in Vault's namespace", async () => {
    const v = root();
    await v.put('sys/seal', {});
    const initFile = state.file('vault-init.json');
    renameSync(initFile, `${initFile}.away`);
    try {
      const r = vaultlab(['status', '--json']);
      const j = json(r);
      expect(j.vault).toMatchObject({ unseal: 'was-sealed-now-unsealed', keysFrom: 'cluster' });
      expect(check(j, 'vault').detail).toContain(`Secret vault/${plan.vault.init.secretName}`);
      // No token without the init file: engines are a warning, not a failure.
      expect(check(j, 'vault engines')).toMatchObject({ ok: false, severity: 'warning' });
    } finally {
      renameSync(`${initFile}.away`, initFile);
    }
    expect((await v.sealStatus()).sealed).toBe(false);
    v.close();
  });

  it('reset --secrets --no-wait --restart: unseals first, regenerates random values, restores literals, writes only what differs, forces ESO to re-sync, restarts apps', async () => {
    const v = root();
    const before = Object.fromEntries(await Promise.all(KV_PATHS.map(async (p) => [p, (await v.kvRead('secret', p))!] as const)));
    await v.kvPatch('secret', 'dashboard/config', { greeting: 'tampered-by-a-talk' });
    await v.put('sys/seal', {});

    // No ESO controller and no kubelet here: nothing would re-sync or roll out, so nothing is awaited
    // (the default, waiting until every pod holds the values, runs on kind: tests/e2e/demo-journey.ts).
    const r = vaultlab(['reset', '--secrets', '--no-wait', '--restart', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = json(r);
    expect(j).toMatchObject({ ok: true, action: 'reset-secrets', unsealed: true, clusterReachable: true });
    // rotated: every random value, the (switched-off) VSO app's billing/config keys included: seeding is not per app.
    expect(j.seed.counts).toEqual({ created: 0, updated: 1, unchanged: 4, rotated: 9 });
    expect(j.resynced).toHaveLength(5); // every ExternalSecret of the bundled config
    expect([...j.restarted].sort()).toEqual(['dashboard/dashboard', 'registry/registry', 'reports/reports', 'shop/shop', 'webapp/webapp', 'webapp/worker']);
    expect(j.timings.seedMs).toBeTypeOf('number');

    const after = Object.fromEntries(await Promise.all(KV_PATHS.map(async (p) => [p, (await v.kvRead('secret', p))!] as const)));
    // Paths holding a random value get exactly one new version; the untouched all-literal path none.
    for (const p of ['webapp/db', 'webapp/api', 'webapp/worker', 'argocd/admin']) expect(after[p]!.version, p).toBe(before[p]!.version + 1);
    expect(after['dashboard/config']!.version).toBe(before['dashboard/config']!.version + 2); // the tampering, then the reset
    expect(after['registry/creds']!.version).toBe(before['registry/creds']!.version);
    expect(after['webapp/api']!.data.api_key).not.toBe(before['webapp/api']!.data.api_key);
    expect(after['webapp/db']!.data.password).not.toBe(before['webapp/db']!.data.password);
    expect(after['webapp/db']!.data.username).toBe('app_user');
    expect(after['dashboard/config']!.data.greeting).toBe('hello from Vault');
    expect(after['argocd/admin']!.data['admin.password']).toBe(before['argocd/admin']!.data['admin.password']); // bcrypt of a literal: kept while it verifies

    const es = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db');
    expect(es.metadata.annotations['force-sync']).toBe(j.stamp);
    const dep = await kube.get<any>('apps/v1', 'Deployment', 'webapp', 'webapp');
    expect(dep.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe(j.stamp);
    for (const value of [before['webapp/api']!.data.api_key!, after['webapp/api']!.data.api_key!, after['webapp/db']!.data.password!]) expect(r.out).not.toContain(value);
    v.close();
  });

  it('reset --full without --yes and without a terminal refuses (exit 2) and touches nothing', async () => {
    const r = vaultlab(['reset', '--full']);
    expect(r.code).toBe(2);
    expect(r.out).toContain('Pass --yes');
    expect(await kube.get('v1', 'Namespace', undefined, 'webapp')).toBeTruthy();
    expect(existsSync(state.path)).toBe(true);
  });

  it('doctor: every finding that is not ok has a fix; ESO not running is an error (exit 1)', async () => {
    const r = vaultlab(['doctor', '--json']);
    expect(r.code, r.out).toBe(1);
    const j = json(r);
    expect(j.deployed).toBe(true);
    expect(j.machine.find((f: any) => /^helm/.test(f.what))).toMatchObject({ ok: HELM.ok, severity: 'error' });
    expect([...j.machine, ...j.environment].filter((f: any) => !f.ok && !f.fix)).toEqual([]);
    expect(j.environment.find((f: any) => /^eso:/.test(f.what))).toMatchObject({ ok: false, severity: 'error', fix: 'vaultlab deploy' });
    expect(j.environment.find((f: any) => /^vault:/.test(f.what))).toMatchObject({ ok: true });
    expect(j.errors).toBeGreaterThan(0);
  });

  it.runIf(!HELM.found)('destroy on an existing cluster refuses to start when a Helm release is there but helm is not, and deletes nothing', async () => {
    // How Helm 3 records a release: a Secret labelled owner=helm,name=<release> in its namespace.
    await kube.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.eso.namespace } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: `sh.helm.release.v1.${plan.eso.release}.v1`, namespace: plan.eso.namespace, labels: { owner: 'helm', name: plan.eso.release, status: 'deployed' } }, type: 'helm.sh/release.v1' },
    ]);
    const r = vaultlab(['destroy', '--json']);
    expect(r.code).toBe(1);
    expect(json(r)).toMatchObject({ ok: false, error: expect.stringMatching(/Helm release\(s\) external-secrets\/external-secrets are installed, but helm is not available.*nothing was deleted/) });
    expect(await kube.get('v1', 'Namespace', undefined, 'webapp')).toMatchObject({ metadata: { name: 'webapp' } });
    expect((await kube.get<any>('v1', 'Namespace', undefined, 'webapp'))!.metadata.deletionTimestamp).toBeUndefined();
    expect(existsSync(state.path)).toBe(true);
    await kube.delete('v1', 'Secret', plan.eso.namespace, `sh.helm.release.v1.${plan.eso.release}.v1`);
  });

  it('destroy on an existing cluster removes only what vaultlab installed, and is safe twice', async () => {
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'not-ours' } }]);
    // An account under the reviewer's name that vaultlab did not create (no managed-by label).
    await kube.apply([{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: TOKEN_REVIEWER.serviceAccount, namespace: TOKEN_REVIEWER.namespace } }]);
    const r = vaultlab(['destroy', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = json(r);
    expect(j).toMatchObject({ ok: true, action: 'removed-installed', provider: 'existing' });
    expect(j.removed).toEqual(expect.arrayContaining(['namespace webapp', 'namespace argocd', 'namespace registry', 'namespace dashboard', `Secret vault/${plan.vault.init.secretName}`, `ConfigMap kube-system/${OWNER_CONFIGMAP}`, `state ${state.path}`]));
    expect(j.removed.some((x: string) => /not-ours|kube-system$|default|namespace vault$/.test(x))).toBe(false);
    const ns = await kube.get<any>('v1', 'Namespace', undefined, 'webapp');
    expect(!ns || ns.metadata.deletionTimestamp).toBeTruthy();
    expect(await kube.get('v1', 'Namespace', undefined, 'not-ours')).toBeTruthy();
    expect(await kube.get('v1', 'ServiceAccount', TOKEN_REVIEWER.namespace, TOKEN_REVIEWER.serviceAccount)).toBeTruthy();
    expect(await kube.get('v1', 'Namespace', undefined, plan.vault.namespace)).toBeTruthy();
    expect(existsSync(state.path)).toBe(false);

    const again = vaultlab(['destroy']);
    expect(again.code, again.out).toBe(0);
    expect(again.stdout).toMatch(/^Nothing to destroy/);
  });

  it('reset --full in CI (CI=true) does not ask; it destroys, and waits for the namespaces to be gone before deploying', () => {
    // The harness has no namespace controller: the namespaces deleted above stay Terminating,
    // so the wait runs out (after --timeout) and reset stops before deploying.
    const t0 = Date.now();
    const r = vaultlab(['reset', '--full', '--timeout', '2', '--json'], { CI: 'true' });
    expect(r.code).toBe(1);
    expect(json(r)).toMatchObject({ ok: false, error: expect.stringMatching(/namespace\(s\) .*webapp.* still terminating after 2 s/) });
    expect(r.out).not.toMatch(/\[y\/N\]/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it("a kind cluster without vaultlab's marker is not vaultlab's to delete, and the refusal says why", async () => {
    const kindPlan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
    const fresh = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    const none = await ownership(kindPlan, fresh, kube);
    expect(none).toMatchObject({ owned: false });
    expect(none.reason).toMatch(/no .*cluster\.json; no ConfigMap kube-system\/vaultlab-owner/);
    // deploy found the cluster already there: reused, not created.
    await kube.apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: OWNER_CONFIGMAP, namespace: 'kube-system' }, data: { cluster: 'vaultlab', createdByVaultlab: 'false' } }]);
    expect((await ownership(kindPlan, fresh, kube)).reason).toMatch(/vaultlab reused it/);
    await kube.apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: OWNER_CONFIGMAP, namespace: 'kube-system' }, data: { cluster: 'vaultlab', createdByVaultlab: 'true' } }]);
    expect(await ownership(kindPlan, fresh, kube)).toMatchObject({ owned: true, reason: expect.stringMatching(/marks it as created by vaultlab/) });
    await kube.delete('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP);
    fresh.writeJson('cluster.json', { name: 'vaultlab', provider: 'kind', profile: 'demo', createdByVaultlab: true });
    expect(await ownership(kindPlan, fresh, undefined)).toMatchObject({ owned: true, reason: expect.stringMatching(/records that vaultlab created it/) });
    fresh.writeJson('cluster.json', { name: 'other', provider: 'kind', profile: 'demo', createdByVaultlab: true });
    expect((await ownership(kindPlan, fresh, kube)).reason).toMatch(/created "other", not this one/);
  });
});
