// Deploy steps' Kubernetes and Vault halves against the real API server and a real OpenBao.
// There is no ESO controller here, so the target Secrets are written by the test in ESO's
// place; what is tested is vaultlab's side: apply, the ESO identity login, the digest check.
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startApiAndBao, tempState, vaultUpForApi, withoutVso, type ApiAndBao } from '../harness/synced.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { readFileSync } from 'node:fs';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { resourceManifests } from '../../scripts/steps/deliveries.ts';
import { applyWithRetry, checkSecret, esoIdentityClient } from '../../scripts/deliveries/eso/sync.ts';
import { vaultReviewerToken } from '../harness/kube/reviewer.ts';

describe('deploy steps on a real API server and OpenBao', () => {
  let env: ApiAndBao;
  let kube: Kube;
  let vault: VaultClient;
  // ESO syncs here (no VSO controller: tests/kube/vso.test.ts runs it): the VSO app switched off.
  const loaded = loadConfigText(withoutVso(readFileSync(BUNDLED_CONFIG, 'utf8')), 'config.toml', { env: {} });
  const plan = buildPlan(loaded);
  const options = { preload: false, skipSamples: false, timeoutMs: 30_000 };

  setupOrFail(async () => {
    env = await startApiAndBao();
    kube = env.kube;
    vault = new VaultClient({ address: env.bao.address });
    await vaultUpForApi(vault, kube, plan, tempState(), loaded.passwords);
  });
  afterAll(async () => {
    vault?.close();
    await env?.stop();
  });

  it('applies the ESO resources of every namespace; a second deploy changes nothing', async () => {
    const objects = resourceManifests({ plan, options });
    const first = await applyWithRetry(kube, objects);
    expect(first.every((r) => r.action === 'created')).toBe(true);
    const second = await applyWithRetry(kube, objects);
    expect(second.every((r) => r.action === 'unchanged')).toBe(true);
  });

  it("verify reads Vault with ESO's own identity and checks each synced Secret by digest", async () => {
    const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
    const asEso = await esoIdentityClient(kube, plan, vault, webapp);
    try {
      const es = webapp.externalSecrets.find((e) => e.name === 'webapp-db')!;
      const values: Record<string, Buffer> = {};
      for (const d of es.data) values[d.secretKey] = Buffer.from((await asEso.kvRead('secret', d.path))!.data[d.key]!);
      // Written here in ESO's place (no controller on this machine).
      await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: es.target, namespace: 'webapp' }, data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.toString('base64')])) }], { fieldManager: 'external-secrets' });
      const lookup = async (p: string, k: string) => (await asEso.kvRead('secret', p))?.data[k];
      const good = await checkSecret('webapp', es, (await kube.readSecret('webapp', es.target))!.data, lookup);
      expect(good).toMatchObject({ ok: true });
      // Vault moves on (rotation) and the Secret has not synced yet: verify sees it.
      await vault.kvPatch('secret', 'webapp/db', { password: 'rotated-in-vault-0001' });
      const stale = await checkSecret('webapp', es, (await kube.readSecret('webapp', es.target))!.data, lookup);
      expect(stale.ok).toBe(false);
      expect(stale.problems).toEqual(["DB_PASSWORD differs from Vault's webapp/db:password (digest mismatch)"]);
    } finally {
      asEso.close();
    }
  });
  it("ESO identity login: Vault's TokenReview refused (reviewer without auth-delegator) is retried until it comes back; a lasting refusal is named", async () => {
    const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
    const binding = await kube.getJson('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, 'vault-auth-delegator');
    expect(binding).toBeDefined();
    await kube.delete('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, 'vault-auth-delegator');
    try {
      // The refusal lasts: the error says what Vault could not do, and how many times it was asked.
      const lasting = await esoIdentityClient(kube, plan, vault, webapp, { waitMs: 1500, intervalMs: 500 }).then(() => undefined, (e: Error) => e);
      expect(lasting?.message).toMatch(/Vault refused ESO's identity in "webapp" \(role eso-webapp-role, ServiceAccount [^)]+\) for [2-9] attempt\(s\): Vault could not check the token with the Kubernetes TokenReview API/);
      expect((lasting as any).hint).toMatch(/system:auth-delegator/);
      // The reviewer's permission comes back while the login is retried (a node restart's window).
      const restore = new Promise((r) => setTimeout(r, 1500)).then(() => vaultReviewerToken(kube));
      const asEso = await esoIdentityClient(kube, plan, vault, webapp, { waitMs: 30_000, intervalMs: 500 });
      await restore;
      try {
        expect((await asEso.kvRead('secret', 'webapp/db'))?.data).toBeDefined();
      } finally {
        asEso.close();
      }
    } finally {
      await vaultReviewerToken(kube);
    }
  });

  it('ESO identity login: a refusal with a reason (unknown role) fails at once, not retried', async () => {
    const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
    const wrong = { ...webapp, secretStore: { ...webapp.secretStore, role: 'no-such-role' } };
    const t0 = Date.now();
    const err = await esoIdentityClient(kube, plan, vault, wrong, { waitMs: 20_000, intervalMs: 500 }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/auth\/kubernetes\/login failed \(HTTP 4\d\d\)/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
