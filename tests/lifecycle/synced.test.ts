// The lifecycle commands on an environment that really syncs: a real kube-apiserver, a real
// OpenBao (as an "external" Vault, so the SecretStores can reach it from the out-of-cluster ESO
// controller) and the External Secrets Operator controller built from its Go module. Sample apps
// are off: without a kubelet no pod would ever run.
//
// One stand-in, said plainly: the harness runs no kube-controller-manager, so nothing would ever
// write the ESO Deployment's status. The test writes `Available=True` through the status
// subresource, as the deployment controller does, because the controller it describes (the ESO
// process started here) is running.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { KubeServer } from '../harness/kube/server.ts';
import { startApiAndBao, startEsoController, withoutSampleDatabase, type ApiAndBao, type EsoController } from '../harness/synced.ts';
import { vaultReviewerToken } from '../harness/kube/reviewer.ts';
import { ensureTool, binDir, ESO_CONTROLLER_VERSION } from '../harness/kube/build.ts';
import type { BaoServer } from '../harness/bao.ts';
import type { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { BUNDLED_CONFIG, PROJECT_ROOT, loadConfig } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { FORCE_SYNC_ANNOTATION } from '../../scripts/lifecycle/reset.ts';
import { kubernetesAuthTarget, TOKEN_REVIEWER } from '../../scripts/steps/vault.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');
const ES = 'external-secrets.io/v1';

describe(`lifecycle on a syncing environment (ESO ${ESO_CONTROLLER_VERSION}, OpenBao, kube-apiserver)`, () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let env: ApiAndBao;
  let controller: EsoController;
  const logs = () => controller?.logs() ?? '';
  let cwd: string;
  let config: string;
  let state: StateDir;
  let plan: ReturnType<typeof buildPlan>;

  const vaultlab = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args, '--config', config], { cwd, encoding: 'utf8', env: { ...process.env, PATH: `${binDir()}${delimiter}${process.env.PATH}`, NO_COLOR: '1', VAULT_TOKEN: '', VAULT_ADDR: '', CI: 'true' } });
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };
  const json = (r: { stdout: string; out: string }) => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`not JSON:\n${r.out}`);
    }
  };
  const root = () => new VaultClient({ address: bao.address, token: readInit(state)!.root_token! });
  const forceSync = (ns: string, name: string) => kube.mergePatch(ES, 'ExternalSecret', ns, name, { metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: `test-${Date.now()}` } } });
  const waitReady = (ns: string, name: string, status: 'True' | 'False' = 'True') =>
    kube.waitForCondition(ES, 'ExternalSecret', ns, name, 'Ready', { status, timeoutMs: 90_000 }).catch((e) => {
      throw new Error(`${(e as Error).message}\ncontroller log:\n${logs().slice(-3000)}`);
    });
  const secretValue = async (ns: string, name: string, key: string) => (await kube.readSecret(ns, name))?.data[key]?.toString('utf8');
  /** status, until it reports healthy (ESO retries with backoff after an error). */
  const untilHealthy = async (timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = vaultlab(['status', '--json']);
      if (r.code === 0 || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 1000));
    }
  };

  beforeAll(async () => {
    ensureTool('helm'); // doctor's machine check for an existing cluster: helm, from the test tool cache
    env = await startApiAndBao(ESO_CONTROLLER_VERSION);
    ({ kubeServer, bao, kube } = env);
    cwd = mkdtempSync(join(tmpdir(), 'vaultlab-synced-'));
    config = join(cwd, 'config.toml');
    writeFileSync(
      config,
      // An external Vault cannot reach the sample Postgres: the bundled config without it (and its shop app).
      withoutSampleDatabase(readFileSync(BUNDLED_CONFIG, 'utf8'))
        .replace('provider = "kind"', `provider = "existing"\ncontext = "vaultlab-test"\nkubeconfig = "${kubeServer.kubeconfigPath}"`)
        .replace('[vault]\n', `[vault]\naddress = "${bao.address}"\n`)
        .replace(/^sample = "[a-z-]+".*$/gm, 'sample = "none"')
        // ESO is what syncs here; the injector's webhook has its own test (tests/kube/injector.test.ts).
        .replace(/^delivery = "injector"$/m, 'delivery = "injector"\nenabled = false')
        // VSO's controller has its own test (tests/kube/vso.test.ts).
        .replace(/^delivery = "vso"$/m, 'delivery = "vso"\nenabled = false'),
    );
    const loaded = loadConfig({ file: config, env: {} });
    plan = buildPlan(loaded);
    state = new StateDir(join(cwd, '.vaultlab', plan.cluster.name));
    // What deploy does for this config: Vault up (Kubernetes auth against this API server, with
    // the reviewer account the Vault chart would create), then ESO's resources.
    const reviewerJwt = await vaultReviewerToken(kube);
    const info = kube.clusterInfo();
    const v = new VaultClient({ address: bao.address });
    await vaultUp(v, plan, state, { passwords: loaded.passwords, configure: { kubernetes: { host: info.server, caPem: info.caPem!, reviewerJwt } } });
    v.close();
    await kube.apply(resourceManifests({ plan, options: { preload: false, skipSamples: true, timeoutMs: 1000 } }));
    await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'argocd-secret', namespace: 'argocd' }, data: { 'server.owned-by-argocd': Buffer.from('keep').toString('base64') } }], { fieldManager: 'argocd' });
    // ESO's Deployment as the chart names and labels it; its status as the deployment controller writes it.
    const labels = { 'app.kubernetes.io/name': 'external-secrets', 'app.kubernetes.io/instance': plan.eso.release };
    await kube.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.eso.namespace } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: plan.eso.release, namespace: plan.eso.namespace, labels }, spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'external-secrets', image: `ghcr.io/external-secrets/external-secrets:${ESO_CONTROLLER_VERSION}` }] } } } },
    ]);
    const { k8s, kc } = await kube.client();
    const appsApi = kc.makeApiClient(k8s.AppsV1Api);
    const dep = await appsApi.readNamespacedDeployment({ name: plan.eso.release, namespace: plan.eso.namespace });
    dep.status = { replicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'the ESO controller process of this test is running', lastUpdateTime: new Date(), lastTransitionTime: new Date() }] };
    await appsApi.replaceNamespacedDeploymentStatus({ name: plan.eso.release, namespace: plan.eso.namespace, body: dep });

    controller = startEsoController(kubeServer.kubeconfigPath);
    for (const ns of plan.namespaces) for (const es of ns.externalSecrets) await waitReady(ns.name, es.name);
  });
  afterAll(async () => {
    controller?.stop();
    await env?.stop();
  });

  it('status is healthy (exit 0): Vault, ESO, every SecretStore Ready and every ExternalSecret SecretSynced', () => {
    const r = vaultlab(['status', '--json']);
    const j = json(r);
    expect(j.checks.filter((c: any) => !c.ok)).toEqual([]);
    expect(r.code).toBe(0);
    expect(j).toMatchObject({ ok: true, healthy: true, exitCode: 0, vault: { unseal: 'unsealed', sealed: false } });
    expect(j.checks.find((c: any) => c.name === 'SecretStore webapp/vault-backend')).toMatchObject({ ok: true, detail: 'Valid' });
    expect(j.checks.find((c: any) => c.name === 'ExternalSecret webapp/webapp-db')).toMatchObject({ ok: true, detail: expect.stringMatching(/^SecretSynced, refreshed \d{4}-/) });
    expect(j.checks.find((c: any) => c.name === 'eso').detail).toBe(`available: ${plan.eso.release}`);
    expect(j.checks.filter((c: any) => /^(ExternalSecret|SecretStore) /.test(c.name))).toHaveLength(9);
  });

  it('reset --secrets --no-restart: new random values reach the Kubernetes Secrets through ESO (by digest) before it returns', async () => {
    const v = root();
    const apiBefore = (await v.kvRead('secret', 'webapp/api'))!.data.api_key!;
    expect(await secretValue('webapp', 'webapp-db', 'API_KEY')).toBe(apiBefore);
    await v.kvPatch('secret', 'registry/creds', { password: 'tampered-by-a-talk' });

    // No kubelet here: the pods' side (restarts) is proven on kind (tests/e2e/demo-journey.ts).
    const r = vaultlab(['reset', '--secrets', '--no-restart', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = json(r);
    expect(j.synced).toEqual(['argocd/argocd-secret', 'dashboard/dashboard-config', 'registry/regcred', 'webapp/webapp-db', 'webapp/worker-credentials']);
    expect(j.timings.convergeMs).toBeTypeOf('number');
    expect(j.restarted).toEqual([]);
    expect(j.consumers.map((c: any) => c.action)).toEqual(Array(5).fill('re-synced'));
    expect(j.ms).toBeLessThan(60_000);

    const vaultNow = async (p: string, k: string) => (await v.kvRead('secret', p))!.data[k]!;
    const apiAfter = await vaultNow('webapp/api', 'api_key');
    expect(apiAfter).not.toBe(apiBefore);
    // Already in the Secrets when reset returns: no waiting here.
    expect(await secretValue('webapp', 'webapp-db', 'API_KEY')).toBe(apiAfter);
    expect(await secretValue('webapp', 'webapp-db', 'DB_PASSWORD')).toBe(await vaultNow('webapp/db', 'password'));
    expect(await secretValue('webapp', 'worker-credentials', 'signing-key')).toBe(await vaultNow('webapp/worker', 'signing_key'));
    expect(await secretValue('dashboard', 'dashboard-config', 'session_secret')).toBe(await vaultNow('dashboard/config', 'session_secret'));
    const auths = JSON.parse((await secretValue('registry', 'regcred', '.dockerconfigjson'))!).auths['registry.local:5000'];
    expect(auths.password).toBe('demo-registry-token');
    for (const value of [apiBefore, apiAfter]) expect(r.out).not.toContain(value);
    v.close();
  });

  it('after a Vault restart: status --no-unseal exits 1; status unseals the demo Vault and the environment is healthy again', async () => {
    await bao.kill();
    await bao.restart();
    const sealed = vaultlab(['status', '--no-unseal', '--json']);
    expect(sealed.code).toBe(1);
    expect(json(sealed).checks.find((c: any) => c.name === 'vault')).toMatchObject({ ok: false, fix: expect.stringMatching(/vaultlab vault unseal/) });

    const first = vaultlab(['status', '--json']);
    expect(json(first).vault).toMatchObject({ unseal: 'was-sealed-now-unsealed', sealed: false });
    const healthy = await untilHealthy();
    expect(healthy.code, healthy.out).toBe(0);
  });

  it('doctor decodes ESO errors into causes: a drifted policy and audience name the role, policy and audience; missing data names the path and key', async () => {
    const v = root();
    // Drift: the shared ESO policy emptied, the registry role's audience changed, a path deleted, a key dropped.
    const role = plan.vault.kubernetesAuth.roles.find((x) => x.namespace === 'webapp')!;
    const policy = role.policies[0]!;
    await v.put(`sys/policies/acl/${policy}`, { policy: 'path "nothing/*" { capabilities = ["read"] }' });
    await forceSync('webapp', 'webapp-db');
    await waitReady('webapp', 'webapp-db', 'False');
    // The policy is shared: repair it before the next cases, so each shows its own cause.
    let doctor = json(vaultlab(['doctor', '--json']));
    await v.put(`sys/policies/acl/${policy}`, { policy: plan.vault.policies.find((p) => p.name === policy)!.hcl });

    const registryRole = plan.vault.kubernetesAuth.roles.find((x) => x.namespace === 'registry')!;
    const cur = (await v.get<any>(`auth/kubernetes/role/${registryRole.name}`)).data.data;
    await v.post(`auth/kubernetes/role/${registryRole.name}`, { ...cur, audience: 'someone-else' });
    await v.delete('secret/metadata/dashboard/config');
    const admin = (await v.kvRead('secret', 'argocd/admin'))!.data;
    await v.post('secret/data/argocd/admin', { data: { 'admin.password': admin['admin.password'], 'admin.password.plain': admin['admin.password.plain'] } });
    for (const [ns, name] of [['registry', 'regcred'], ['dashboard', 'dashboard-config'], ['argocd', 'argocd-secret']] as const) await forceSync(ns, name);
    for (const [ns, name] of [['registry', 'regcred'], ['dashboard', 'dashboard-config'], ['argocd', 'argocd-secret']] as const) await waitReady(ns, name, 'False');
    const r = vaultlab(['doctor', '--json']);
    expect(r.code).toBe(1);
    const later = json(r);
    const finding = (j: any, name: string) => j.environment.find((f: any) => f.what.startsWith(`ExternalSecret ${name}:`));

    expect(finding(doctor, 'webapp/webapp-db')).toMatchObject({
      ok: false,
      severity: 'error',
      what: expect.stringMatching(new RegExp(`^ExternalSecret webapp/webapp-db: Vault refused role ${role.name} reading secret/webapp/db .*: policy ${policy} does not allow it \\(policy ${policy} in Vault differs from the config\\) \\[ESO: .*permission denied`)),
      fix: expect.stringMatching(/^vaultlab vault configure/),
    });
    expect(finding(later, 'registry/regcred')).toMatchObject({
      what: expect.stringMatching(new RegExp(`audience mismatch \\(role ${registryRole.name} expects audience "someone-else", the SecretStore sends "vault"`)),
      fix: expect.stringMatching(/vaultlab vault configure/),
    });
    expect(finding(later, 'dashboard/dashboard-config')).toMatchObject({ what: expect.stringMatching(/secret not found: secret\/dashboard\/config does not exist \(needed for greeting, session_secret\)/), fix: expect.stringMatching(/^vaultlab seed/) });
    expect(finding(later, 'argocd/argocd-secret')).toMatchObject({ what: expect.stringMatching(/secret not found: key "server.secretkey" is missing at secret\/argocd\/admin \(needed for server.secretkey\)/), fix: expect.stringMatching(/^vaultlab seed/) });
    for (const f of later.environment.filter((x: any) => !x.ok)) expect(f.fix, f.what).toBeTruthy();

    // The fixes doctor names, as a user runs them.
    expect(vaultlab(['vault', 'configure', '--vault-addr', bao.address]).code).toBe(0);
    expect(vaultlab(['seed', '--vault-addr', bao.address]).code).toBe(0);
    const reset = vaultlab(['reset', '--secrets', '--no-restart', '--json']);
    expect(reset.code, reset.out).toBe(0);
    const healthy = await untilHealthy();
    expect(healthy.code, healthy.out).toBe(0);
    v.close();
  });

  it('doctor on the healthy environment: no errors (exit 0)', () => {
    const r = vaultlab(['doctor', '--json']);
    const j = json(r);
    expect(j.environment.filter((f: any) => !f.ok)).toEqual([]);
    expect(j.machine.filter((f: any) => !f.ok && f.severity === 'error')).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('destroy: real `helm uninstall` of the release vaultlab installed, its namespaces, and the external Vault\'s keys kept', async () => {
    // A release named as vaultlab's ESO release, installed by the real helm into this API server.
    const chart = mkdtempSync(join(tmpdir(), 'vaultlab-chart-'));
    mkdirSync(join(chart, 'templates'));
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: stand-in\nversion: 0.1.0\n');
    writeFileSync(join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: installed-by-helm\ndata:\n  a: b\n');
    const helm = spawnSync(join(binDir(), 'helm'), ['install', plan.eso.release, chart, '-n', plan.eso.namespace, '--kubeconfig', kubeServer.kubeconfigPath, '--kube-context', 'vaultlab-test'], { encoding: 'utf8' });
    expect(helm.status, helm.stderr).toBe(0);
    expect(await kube.get('v1', 'ConfigMap', plan.eso.namespace, 'installed-by-helm')).toBeTruthy();

    // The TokenReview account deploy creates for an external Vault.
    await kubernetesAuthTarget({ plan, state }, kube);
    const { namespace: reviewerNs, serviceAccount: reviewer } = TOKEN_REVIEWER;
    expect(await kube.get('v1', 'ServiceAccount', reviewerNs, reviewer)).toBeTruthy();

    const r = vaultlab(['destroy', '--json']);
    expect(r.code, r.out).toBe(0);
    const j = json(r);
    expect(j.removed).toEqual(expect.arrayContaining([`helm release ${plan.eso.namespace}/${plan.eso.release}`, 'namespace webapp', 'namespace argocd', `state ${state.path} (except the external Vault's keys)`]));
    expect(j.removed).toEqual(expect.arrayContaining([`ClusterRoleBinding ${reviewer}`, `ServiceAccount ${reviewerNs}/${reviewer}`]));
    expect(await kube.get('v1', 'ServiceAccount', reviewerNs, reviewer)).toBeUndefined();
    expect(await kube.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, reviewer)).toBeUndefined();
    expect(await kube.get('v1', 'ConfigMap', plan.eso.namespace, 'installed-by-helm')).toBeUndefined();
    // The external Vault lives on: its unseal key and root token stay, nothing else.
    expect(readdirSync(state.path)).toEqual(['vault-init.json']);
    expect(j.notes.join('\n')).toMatch(/kept .*vault-init\.json: the keys of the external Vault/);
    expect(readInit(state)!.keys_base64).toHaveLength(1);
    expect(r.out).not.toContain(readInit(state)!.keys_base64[0]);
  });

  it('reset --full to production with an external Vault vaultlab initialized as demo: refused (exit 2) before anything is destroyed', async () => {
    await kube.apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vaultlab-owner', namespace: 'kube-system' }, data: { cluster: plan.cluster.name, provider: 'existing', createdByVaultlab: 'false' } }]);
    const r = vaultlab(['reset', '--full', '--profile', 'production', '--yes']);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain(`the external Vault at ${bao.address} was initialized by vaultlab with the demo profile`);
    expect(r.out).toMatch(/point vault\.address at a new, uninitialized Vault/);
    expect(r.out).not.toMatch(/Destroyed in/);
    expect(await kube.get('v1', 'ConfigMap', 'kube-system', 'vaultlab-owner')).toBeTruthy();
    expect(readInit(state)!.profile).toBe('demo');
  });
});
