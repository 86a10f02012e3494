// The real sync, minus pods: the External Secrets Operator controller (built from its Go
// module) runs out of cluster against the test API server and syncs OpenBao into Kubernetes
// Secrets through the SecretStore and ExternalSecrets vaultlab renders, with Kubernetes auth.
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { ESO_CONTROLLER_VERSION } from '../harness/kube/build.ts';
import { startApiAndBao, externalVaultConfig, tempState, vaultUpForApi, startEsoController, type ApiAndBao, type EsoController } from '../harness/synced.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { checkSecret } from '../../scripts/deliveries/eso/sync.ts';
import { FORCE_SYNC_ANNOTATION } from '../../scripts/lifecycle/reset.ts';

describe(`ESO ${ESO_CONTROLLER_VERSION} syncing OpenBao into Kubernetes Secrets`, () => {
  let env: ApiAndBao;
  let kube: Kube;
  let vault: VaultClient;
  let controller: EsoController;
  let plan: ReturnType<typeof buildPlan>;
  const logs = () => controller?.logs() ?? '';

  setupOrFail(async () => {
    env = await startApiAndBao(ESO_CONTROLLER_VERSION);
    kube = env.kube;
    // The bundled demo environment, with an "external" Vault (the local OpenBao) so the
    // SecretStores point at its loopback address.
    const loaded = loadConfigText(externalVaultConfig(env.bao.address), 'config.toml', { env: {} });
    plan = buildPlan(loaded);
    vault = new VaultClient({ address: env.bao.address });
    await vaultUpForApi(vault, kube, plan, tempState(), loaded.passwords);
    await kube.apply(resourceManifests({ plan, options: { preload: false, skipSamples: false, timeoutMs: 1000 } }));
    // ArgoCD's own key in the Secret it owns, which ESO must merge into, not replace.
    await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'argocd-secret', namespace: 'argocd' }, data: { 'server.owned-by-argocd': Buffer.from('keep').toString('base64') } }], { fieldManager: 'argocd' });
    controller = startEsoController(env.kubeServer.kubeconfigPath);
  });
  afterAll(async () => {
    controller?.stop();
    vault?.close();
    await env?.stop();
  });

  it('every SecretStore becomes Ready and every ExternalSecret syncs the exact values from Vault', async () => {
    for (const ns of plan.namespaces.filter((n) => n.deliveries.includes('eso'))) {
      await kube.waitForCondition('external-secrets.io/v1', 'SecretStore', ns.name, 'vault-backend', 'Ready', { timeoutMs: 90_000 }).catch((e) => {
        throw new Error(`${e.message}\ncontroller log:\n${logs().slice(-3000)}`);
      });
    }
    for (const ns of plan.namespaces.filter((n) => n.deliveries.includes('eso'))) {
      for (const es of ns.externalSecrets) {
        await kube.waitForCondition('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name, 'Ready', { reason: 'SecretSynced', timeoutMs: 90_000 });
        const secret = await kube.readSecret(ns.name, es.target);
        const check = await checkSecret(ns.name, es, secret!.data, async (p, k) => (await vault.kvRead('secret', p))?.data[k]);
        expect(check, `${ns.name}/${es.target}`).toMatchObject({ ok: true, problems: [] });
      }
    }
  });

  it('the ESO template builds a dockerconfigjson Secret with the seeded registry credentials', async () => {
    const secret = (await kube.readSecret('registry', 'regcred'))!;
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    const auths = JSON.parse(secret.data['.dockerconfigjson']!.toString()).auths['registry.local:5000'];
    const creds = (await vault.kvRead('secret', 'registry/creds'))!.data;
    expect(auths.username).toBe(creds.username);
    expect(auths.password).toBe(creds.password);
    expect(Buffer.from(auths.auth, 'base64').toString()).toBe(`${creds.username}:${creds.password}`);
  });

  it("creationPolicy Merge adds the bcrypt hash to ArgoCD's Secret and keeps ArgoCD's own keys", async () => {
    const secret = (await kube.readSecret('argocd', 'argocd-secret'))!;
    expect(secret.data['server.owned-by-argocd']!.toString()).toBe('keep');
    expect(secret.data['admin.password']!.toString()).toMatch(/^\$2[ab]\$10\$/);
  });

  it('a value changed in Vault reaches the Secret after a forced re-sync', async () => {
    await vault.kvPatch('secret', 'webapp/db', { password: 'rotated-by-the-test-0001' });
    await kube.mergePatch('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db', { metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: new Date().toISOString() } } });
    await kube.waitFor('v1', 'Secret', 'webapp', 'webapp-db', (s) => Buffer.from(s.data?.DB_PASSWORD ?? '', 'base64').toString() === 'rotated-by-the-test-0001', 'updated', { timeoutMs: 60_000 });
  });
});
