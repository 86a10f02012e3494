// Deploy steps against a real kube-apiserver + etcd: the cluster step on an existing cluster
// (ownership marker, idempotent, a cluster owned by another environment refused), the
// port-forward adapter's failure path (no kubelet here: every forward fails, and must say why
// and close promptly), and the SecretStore wait decoding ESO's condition message. ESO's status
// is written here in the controller's place (no controller runs).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { installEsoCrds } from '../harness/kube/eso.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { portForward } from '../../scripts/adapters/portforward.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { Output } from '../../scripts/lib/output.ts';
import { newDeployContext } from '../../scripts/steps/context.ts';
import { cluster, CLUSTER_STATE, OWNER_CONFIGMAP } from '../../scripts/steps/cluster.ts';
import { waitStoreReady } from '../../scripts/deliveries/eso/sync.ts';

const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
const base = buildPlan(loaded);

describe('deploy steps on a real API server', () => {
  let server: KubeServer;
  let kube: Kube;

  const patchStatus = (ns: string, name: string, conditions: object[]) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${server.host}/apis/external-secrets.io/v1/namespaces/${ns}/secretstores/${name}/status`,
        { method: 'PATCH', ca: server.caPem, headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/merge-patch+json' } },
        (res) => {
          res.resume();
          res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`status patch: HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ status: { conditions } }));
    });

  beforeAll(async () => {
    server = await startKube();
    kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
    await installEsoCrds(kube);
  }, 300_000);
  afterAll(async () => server?.stop());

  describe('cluster step, provider = "existing"', () => {
    const plan = { ...base, cluster: { ...base.cluster, provider: 'existing' as const, context: undefined, kubeconfig: '' } };
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    const ctx = () => newDeployContext({ loaded, plan: { ...plan, cluster: { ...plan.cluster, kubeconfig: server.kubeconfigPath } }, out: new Output({ json: true, verbose: false, plain: true }), state, options: { preload: false, skipSamples: false, timeoutMs: 10_000 } });

    it('uses the kubeconfig context, marks ownership (not created by vaultlab), records the state', async () => {
      const c = ctx();
      expect(await cluster.run(c, () => undefined, new AbortController().signal)).toMatch(/^using context "/);
      expect(c.kubeContext).toBe(c.kube!.context);
      const marker = await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP);
      expect(marker.data).toEqual({ cluster: plan.cluster.name, provider: 'existing', createdByVaultlab: 'false' });
      expect(state.readJson(CLUSTER_STATE)).toMatchObject({ name: plan.cluster.name, provider: 'existing', createdByVaultlab: false, complete: true });
    });

    it('a second run changes nothing', async () => {
      const rv = (await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)).metadata.resourceVersion;
      await cluster.run(ctx(), () => undefined, new AbortController().signal);
      expect((await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)).metadata.resourceVersion).toBe(rv);
    });

    it('refuses a cluster that another vaultlab environment owns', async () => {
      const other = newDeployContext({ ...ctx(), plan: { ...ctx().plan, cluster: { ...ctx().plan.cluster, name: 'someone-else' } }, state: new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state')) });
      await expect(cluster.run(other, () => undefined, new AbortController().signal)).rejects.toMatchObject({
        message: `this cluster already belongs to vaultlab environment "${plan.cluster.name}", not "someone-else"`,
        hint: expect.stringContaining(`--name ${plan.cluster.name}`),
      });
    });
  });

  it('a port-forward that cannot reach its pod closes the connection, says why, and closes promptly', async () => {
    const fwd = await portForward(kube, 'vault', 'vault-0', 8200);
    expect(fwd.target).toBe('vault/vault-0:8200');
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect(fwd.port, '127.0.0.1');
      s.on('error', () => resolve(true));
      s.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 10_000);
    });
    expect(closed).toBe(true);
    expect(fwd.lastError()).toMatch(/404|not found|Unexpected server response/i);
    const idle = connect(fwd.port, '127.0.0.1'); // still open while we close
    const t0 = Date.now();
    await fwd.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    idle.destroy();
  });

  describe('SecretStore wait', () => {
    const webapp = base.namespaces.find((n) => n.name === 'webapp')!;
    beforeAll(async () => {
      await kube.apply(namespaceManifests(base, webapp).filter((o) => ['Namespace', 'ServiceAccount', 'SecretStore'].includes(o.kind)));
    });

    it("times out with ESO's message decoded: role, ServiceAccount and audience named, and the fix", async () => {
      await patchStatus('webapp', webapp.secretStore.name, [
        { type: 'Ready', status: 'False', reason: 'InvalidProviderConfig', message: 'unable to log in to auth method: unable to log in with Kubernetes auth: Error making API request. Code: 403. Errors: * permission denied', lastTransitionTime: new Date().toISOString() },
      ]);
      await expect(waitStoreReady(kube, base, webapp, { timeoutMs: 1500 })).rejects.toMatchObject({
        message: 'SecretStore webapp/vault-backend is not Ready: Vault refused ESO\'s login in "webapp" as role eso-webapp-role (ServiceAccount external-secrets, audience "vault")',
        hint: expect.stringMatching(/vault configure/),
      });
    });

    it('returns as soon as ESO reports Ready (watch, no polling)', async () => {
      const waiting = waitStoreReady(kube, base, webapp, { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await patchStatus('webapp', webapp.secretStore.name, [{ type: 'Ready', status: 'True', reason: 'Valid', message: 'store validated', lastTransitionTime: new Date().toISOString() }]);
      await waiting;
      expect(Date.now() - t0).toBeLessThan(3000);
    });
  });
});
