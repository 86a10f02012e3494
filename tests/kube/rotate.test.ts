// Rotation, ESO's side, against the real thing minus pods: OpenBao, a real kube-apiserver and the
// ESO controller (built from its Go module) running out of cluster. A rotated value reaches the
// Secret through the force-sync annotation, and the Deployment that reads it is restarted with a
// real write of kubectl's restartedAt (its generation moves; the one that does not read it is left
// alone). With no kubelet the new pod never comes: the convergence then fails naming the rollout.
// The pods' side (env and files holding the new value) is proven on kind (tests/e2e/demo-journey.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { ESO_CONTROLLER_VERSION } from '../harness/kube/build.ts';
import { startApiAndBao, externalVaultConfig, tempState, vaultUpForApi, startEsoController, type ApiAndBao, type EsoController } from '../harness/synced.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';
import { seedVault } from '../../scripts/vault/seed.ts';
import { changedBySeed } from '../../scripts/lifecycle/converge.ts';
import { esoConverge, FORCE_SYNC_ANNOTATION, RESTARTED_AT_ANNOTATION } from '../../scripts/deliveries/eso/converge.ts';
import { appsOf } from '../../scripts/deliveries/index.ts';
import { sha256 } from '../../scripts/lib/digest.ts';
import type { Environment } from '../../scripts/lifecycle/connect.ts';

describe(`rotate, ESO ${ESO_CONTROLLER_VERSION}: force-sync until the Secret equals Vault, then the consuming Deployment restarted`, () => {
  let api: ApiAndBao;
  let kube: Kube;
  let vault: VaultClient;
  let controller: EsoController;
  let plan: ReturnType<typeof buildPlan>;
  let loaded: ReturnType<typeof loadConfigText>;
  const state = tempState();
  const logs = () => controller?.logs() ?? '';

  setupOrFail(async () => {
    api = await startApiAndBao(ESO_CONTROLLER_VERSION);
    kube = api.kube;
    loaded = loadConfigText(externalVaultConfig(api.bao.address), 'config.toml', { env: {} });
    plan = buildPlan(loaded);
    vault = new VaultClient({ address: api.bao.address });
    await vaultUpForApi(vault, kube, plan, state, loaded.passwords);
    await kube.apply(resourceManifests({ plan, options: { preload: false, skipSamples: false, timeoutMs: 1000 } }));
    // The webapp namespace's sample Deployments (webapp: envFrom; worker: Secret volumes).
    await kube.apply(namespaceManifests(plan, plan.namespaces.find((n) => n.name === 'webapp')!).filter((o) => o.kind === 'Deployment'));
    controller = startEsoController(api.kubeServer.kubeconfigPath);
  });
  afterAll(async () => {
    controller?.stop();
    vault?.close();
    await api?.stop();
  });

  it('rotating webapp/api: webapp-db re-synced to the new value, Deployment webapp restarted (a real write), worker untouched', async () => {
    await kube.waitForCondition('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db', 'Ready', { reason: 'SecretSynced', timeoutMs: 90_000 }).catch((e) => {
      throw new Error(`${e.message}\ncontroller log:\n${logs().slice(-3000)}`);
    });
    const before = await Promise.all(['webapp', 'worker'].map((n) => kube.get<any>('apps/v1', 'Deployment', 'webapp', n)));
    const seed = await seedVault(vault, plan, loaded.passwords, { rotate: true, only: ['webapp/api:api_key'], ledger: state });
    expect(seed.counts.rotated).toBe(1);
    const changed = changedBySeed(plan, seed);
    expect(changed).toEqual([{ path: 'webapp/api', key: 'api_key' }]);
    const env = { plan, kube, vault, kubeProblem: undefined } as unknown as Environment;
    const now = new Date();
    const err = await esoConverge(env, appsOf(plan.apps, 'eso'), changed, new AbortController().signal, { timeoutMs: 8000, now }).then(
      () => undefined,
      (e: Error) => e,
    );
    // No kubelet: the restarted Deployment never rolls out, and the error says which one.
    expect(err?.message).toContain('Deployment webapp/webapp did not roll out after its restart');
    // The Secret holds Vault's new value (digests), after the forced re-sync.
    const es = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db');
    expect(es.metadata.annotations[FORCE_SYNC_ANNOTATION]).toBe(now.toISOString());
    const secret = (await kube.readSecret('webapp', 'webapp-db'))!;
    expect(sha256(secret.data.API_KEY!)).toBe(sha256((await vault.kvRead('secret', 'webapp/api'))!.data.api_key!));
    // webapp reads API_KEY (envFrom): its pod template changed, so the API server moved its generation.
    const [webapp, worker] = await Promise.all(['webapp', 'worker'].map((n) => kube.get<any>('apps/v1', 'Deployment', 'webapp', n)));
    expect(webapp.spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION]).toBe(now.toISOString());
    expect(webapp.metadata.generation).toBe(before[0].metadata.generation + 1);
    // worker reads webapp/db and webapp/worker only: not restarted.
    expect(worker.metadata.generation).toBe(before[1].metadata.generation);
    expect(worker.spec.template.metadata.annotations?.[RESTARTED_AT_ANNOTATION]).toBeUndefined();
    // The other namespaces' ExternalSecrets were not asked to re-sync.
    const dash = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'dashboard', 'dashboard-config');
    expect(dash.metadata.annotations?.[FORCE_SYNC_ANNOTATION]).toBeUndefined();
  });
});
