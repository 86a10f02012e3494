// The deploy's ESO-resources, verify and summary steps against a real External Secrets
// Operator controller (built from its Go module, running out of cluster), a real kube-apiserver
// and a real OpenBao: SecretStores Ready, every ExternalSecret synced and compared with Vault by
// SHA-256 through ESO's own identity. Then ESO's real failure messages, as the controller writes
// them, decoded by vaultlab: a missing path, a path outside the policy, a namespace the role does
// not bind, a wrong audience, a Merge target that does not exist. No pods run here (no kubelet),
// so the sample Deployments are not deployed (--skip-samples).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ESO_CONTROLLER_VERSION } from '../harness/kube/build.ts';
import { startApiAndBao, externalVaultConfig, tempState, vaultUpForApi, startEsoController, type ApiAndBao, type EsoController } from '../harness/synced.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { namespaceManifests, type KubeObject } from '../../scripts/plan/manifests.ts';
import type { ExternalSecretPlan, NamespacePlan } from '../../scripts/plan/types.ts';
import { Output } from '../../scripts/lib/output.ts';
import { newDeployContext, type DeployContext } from '../../scripts/steps/context.ts';
import { deliveries } from '../../scripts/steps/deliveries.ts';
import { waitStoreReady, waitSynced, type SecretCheck } from '../../scripts/deliveries/eso/sync.ts';
import { verify } from '../../scripts/steps/verify.ts';
import { summary, type Access } from '../../scripts/steps/summary.ts';

const signal = new AbortController().signal;
const quiet = () => undefined;

describe(`deploy steps with ESO ${ESO_CONTROLLER_VERSION}, OpenBao and a real API server`, () => {
  let env: ApiAndBao;
  let kube: Kube;
  let vault: VaultClient;
  let controller: EsoController;
  let ctx: DeployContext;
  const logs = () => controller?.logs() ?? '';

  beforeAll(async () => {
    env = await startApiAndBao(ESO_CONTROLLER_VERSION);
    kube = env.kube;
    // The bundled demo environment with an "external" Vault (this OpenBao), so the SecretStores
    // point at its loopback address, which the out-of-cluster controller reaches.
    const loaded = loadConfigText(externalVaultConfig(env.bao.address), 'config.toml', { env: {} });
    const plan = buildPlan(loaded);
    const state = tempState();
    vault = new VaultClient({ address: env.bao.address });
    await vaultUpForApi(vault, kube, plan, state, loaded.passwords);
    controller = startEsoController(env.kubeServer.kubeconfigPath);
    ctx = newDeployContext({ loaded, plan, out: new Output({ json: true, verbose: false, plain: true }), state, options: { preload: false, skipSamples: true, timeoutMs: 90_000 } });
    ctx.kube = kube;
    ctx.vault = vault;
  }, 600_000);
  afterAll(async () => {
    controller?.stop();
    vault?.close();
    await env?.stop();
  });

  const withLogs = async <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: Error) => {
      throw new Error(`${e.message}\ncontroller log:\n${logs().slice(-3000)}`);
    });

  it('deliveries step: applies everything, every SecretStore Ready; a second run changes nothing', async () => {
    const first = await withLogs(deliveries.run(ctx, quiet, signal) as Promise<string>);
    expect(first).toMatch(/^\d+ objects, \d+ changed; 4 SecretStore\(s\) Ready; 1 injector app\(s\)$/);
    expect(await deliveries.run(ctx, quiet, signal)).toMatch(/, 0 changed; 4 SecretStore\(s\) Ready; 1 injector app\(s\)$/);
  });

  it('verify step: every ExternalSecret synced, keys exact and values equal to Vault by digest; summary lists them', async () => {
    const detail = await withLogs(verify.run(ctx, quiet, signal) as Promise<string>);
    const checks = ctx.summary.verify as SecretCheck[];
    const expected = ctx.plan.namespaces.reduce((n, ns) => n + ns.externalSecrets.length, 0);
    expect(detail).toBe(`${expected} Secret(s) match Vault`);
    expect(checks.every((c) => c.ok)).toBe(true);
    await summary.run(ctx, quiet, signal);
    expect((ctx.summary.access as Access).synced).toHaveLength(expected);
    expect(JSON.stringify(ctx.summary)).not.toContain(ctx.loaded.passwords.registry_token!);
  });

  it('verify fails, naming the Secret and key and never a value, when Vault moved on and the Secret did not follow', async () => {
    const before = (await vault.kvRead('secret', 'webapp/api'))!.data.api_key!;
    await vault.kvPatch('secret', 'webapp/api', { api_key: 'moved-on-in-vault-0001' });
    try {
      const err = (await verify.run(ctx, quiet, signal).catch((e) => e)) as Error;
      expect(err.message).toBe("1 Secret(s) do not match Vault: webapp/webapp-db (API_KEY differs from Vault's webapp/api:api_key (digest mismatch))");
      expect(JSON.stringify(err)).not.toContain('moved-on-in-vault-0001');
      expect(err.message).not.toContain(before);
    } finally {
      await vault.kvPatch('secret', 'webapp/api', { api_key: before });
    }
  });

  describe("ESO's real failure messages, decoded", () => {
    const webapp = () => ctx.plan.namespaces.find((n) => n.name === 'webapp')!;
    const store = (ns: NamespacePlan) => namespaceManifests(ctx.plan, ns).find((o) => o.kind === 'SecretStore')! as KubeObject & { spec: any };
    const externalSecret = (ns: NamespacePlan, es: ExternalSecretPlan) => namespaceManifests(ctx.plan, { ...ns, externalSecrets: [es], samples: [] }).find((o) => o.kind === 'ExternalSecret')!;
    const seen: string[] = [];
    afterAll(() => console.log(`ESO ${ESO_CONTROLLER_VERSION} messages seen:\n${seen.join('\n')}`));
    const record = (e: unknown) => {
      seen.push(`  ${(e as Error).message}`);
      return e;
    };

    it('a path that is not in Vault', async () => {
      const es: ExternalSecretPlan = { ...webapp().externalSecrets[0]!, name: 'missing-path', target: 'missing-path', data: [{ secretKey: 'X', path: 'webapp/not-seeded', key: 'x' }] };
      await kube.apply([externalSecret(webapp(), es)]);
      const t0 = Date.now();
      const err = record(await waitSynced(kube, ctx.plan, webapp(), es, { timeoutMs: 60_000, vault }).catch((e) => e));
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(err).toMatchObject({
        message: 'ExternalSecret webapp/missing-path is not synced: secret not found: secret/webapp/not-seeded does not exist (needed for X) (ESO deleted webapp/missing-path: deletionPolicy Delete)',
        hint: expect.stringMatching(/vaultlab seed/),
      });
    });

    it('a path outside the policy (permission denied): role and policy named, after the grace period, not at the deadline', async () => {
      const other = store(webapp());
      other.metadata.name = 'vault-other-mount';
      other.spec.provider.vault.path = 'not-a-granted-mount';
      await kube.apply([other]);
      const ns: NamespacePlan = { ...webapp(), secretStore: { ...webapp().secretStore, name: 'vault-other-mount' } };
      const es: ExternalSecretPlan = { ...webapp().externalSecrets[0]!, name: 'denied', target: 'denied' };
      const manifest = externalSecret(ns, es);
      await kube.apply([manifest]);
      const t0 = Date.now();
      const err = record(await waitSynced(kube, ctx.plan, ns, es, { timeoutMs: 120_000, vault, settleMs: 3000 }).catch((e) => e));
      expect(Date.now() - t0).toBeLessThan(40_000);
      expect(err).toMatchObject({ message: expect.stringMatching(/^ExternalSecret webapp\/denied is not synced: Vault refused role eso-webapp-role reading .*: policy eso-policy does not allow it/), hint: expect.stringMatching(/vault configure/) });
    });

    it('a namespace the role does not bind', async () => {
      const intruder: NamespacePlan = { ...webapp(), name: 'intruder', externalSecrets: [], samples: [] };
      await kube.apply(namespaceManifests(ctx.plan, intruder)); // Namespace, ServiceAccount, SecretStore using eso-webapp-role
      const err = record(await waitStoreReady(kube, ctx.plan, intruder, { timeoutMs: 120_000, vault, settleMs: 3000 }).catch((e) => e));
      expect(err).toMatchObject({ message: 'SecretStore intruder/vault-backend is not Ready: Vault refused ESO\'s login in "intruder" as role eso-webapp-role (ServiceAccount external-secrets, audience "vault")', hint: expect.stringMatching(/vault configure/) });
    });

    it('a token audience the role does not accept', async () => {
      const wrong = store(webapp());
      wrong.metadata.name = 'vault-wrong-audience';
      wrong.spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences = ['not-vault'];
      await kube.apply([wrong]);
      const ns: NamespacePlan = { ...webapp(), secretStore: { ...webapp().secretStore, name: 'vault-wrong-audience', audiences: ['not-vault'] } };
      const err = record(await waitStoreReady(kube, ctx.plan, ns, { timeoutMs: 120_000, vault, settleMs: 3000 }).catch((e) => e));
      expect(err).toMatchObject({
        message: 'SecretStore webapp/vault-wrong-audience is not Ready: Vault refused ESO\'s login in "webapp": audience mismatch (role eso-webapp-role expects "vault", the SecretStore sends "not-vault")',
        hint: expect.stringMatching(/audiences equal/),
      });
    });

    it('a Merge target that does not exist fails at once, not at the deadline', async () => {
      const argocd = ctx.plan.namespaces.find((n) => n.name === 'argocd')!;
      const es = argocd.externalSecrets[0]!;
      expect(es.creationPolicy).toBe('Merge');
      const gone: ExternalSecretPlan = { ...es, name: 'merge-into-nothing', target: 'not-created-by-anyone' };
      await kube.apply([externalSecret(argocd, gone)]);
      const t0 = Date.now();
      const err = record(await waitSynced(kube, ctx.plan, argocd, gone, { timeoutMs: 60_000, vault }).catch((e) => e));
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(err).toMatchObject({ message: expect.stringContaining('its target Secret argocd/not-created-by-anyone does not exist, and with creationPolicy Merge'), hint: expect.stringMatching(/Create argocd\/not-created-by-anyone first/) });
    });
  });
});
