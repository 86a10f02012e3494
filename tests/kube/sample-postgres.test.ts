// The sample Postgres's objects on a real kube-apiserver: the editor's Secret written through the
// API (generated once, then read back, never in the plan), the rendered StatefulSet/Service/init
// ConfigMap, and a re-apply that writes nothing. Pods do not run here (no kubelet): that Postgres
// starts, its init step runs and Vault connects is the kind suite's (tests/e2e/demo-journey.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { BUNDLED_CONFIG, loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { applySamplePostgres, PASSWORD_KEY } from '../../scripts/steps/sample-postgres.ts';
import { samplePostgresManifests } from '../../scripts/plan/postgres-sample.ts';
import { applyIsNoop } from '../../scripts/adapters/ssa-noop.ts';

describe('the sample Postgres on a real API server', () => {
  let server: KubeServer;
  let kube: Kube;
  const loaded = loadConfigText(readFileSync(BUNDLED_CONFIG, 'utf8'), 'config.toml', { env: {} });
  const plan = buildPlan(loaded);
  const s = plan.vault.databases!.sample!;

  setupOrFail(async () => {
    server = await startKube();
    kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
  });
  afterAll(async () => server?.stop());

  it('first apply: the editor password generated into its Secret (and handed to configure), the objects created; a re-apply writes nothing and keeps the password', async () => {
    expect(loaded.passwords.shop_editor).toBe('');
    const ctx: Parameters<typeof applySamplePostgres>[0] = { plan, loaded };
    const first = await applySamplePostgres(ctx, kube);
    expect(first.source).toBe('generated');
    expect(first.changed).toBe(5); // Namespace, Secret, ConfigMap, Service, StatefulSet
    const password = ctx.databasePasswords!.shop_editor!;
    expect(password.length).toBeGreaterThanOrEqual(24);
    const secret = await kube.readSecret(s.namespace, s.passwordSecret);
    expect(secret!.data[PASSWORD_KEY]!.toString('utf8')).toBe(password);
    // The plan (what `vaultlab plan` prints and writes) never holds it.
    expect(JSON.stringify(plan)).not.toContain(password);
    const sts = await kube.get<any>('apps/v1', 'StatefulSet', s.namespace, s.name);
    const env = sts.spec.template.spec.containers[0].env;
    expect(env.find((e: any) => e.name === 'POSTGRES_PASSWORD')).toEqual({ name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: s.passwordSecret, key: PASSWORD_KEY } } });
    expect(env.find((e: any) => e.name === 'POSTGRES_USER').value).toBe('vaultlab_editor');
    const init = await kube.get<any>('v1', 'ConfigMap', s.namespace, 'postgres-init');
    expect(init.data['10-vaultlab-group-roles.sql']).toContain('CREATE ROLE "shop_app" NOLOGIN;');

    const again: Parameters<typeof applySamplePostgres>[0] = { plan, loaded };
    const second = await applySamplePostgres(again, kube);
    expect(second).toEqual({ changed: 0, source: 'secret' });
    // Proven from what the server holds, so a re-deploy sends no PATCH: the StatefulSet too,
    // whose volumeClaimTemplates (an atomic list the server defaults into) are rendered as stored.
    for (const o of samplePostgresManifests(plan)) {
      expect(applyIsNoop(o, await kube.getJson(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name), 'vaultlab'), `${o.kind} ${o.metadata.name}`).toBe(true);
    }
    expect(again.databasePasswords!.shop_editor).toBe(password);
  });

  it('a password in [passwords] (or VAULTLAB_PASSWORD_<NAME>) is used as given', async () => {
    const given = loadConfigText(readFileSync(BUNDLED_CONFIG, 'utf8'), 'config.toml', { env: { VAULTLAB_PASSWORD_SHOP_EDITOR: 'given-editor-pw-4711' } });
    const ctx: Parameters<typeof applySamplePostgres>[0] = { plan, loaded: given };
    const r = await applySamplePostgres(ctx, kube);
    expect(r).toEqual({ changed: 1, source: 'config' }); // the Secret, now holding the given value
    expect((await kube.readSecret(s.namespace, s.passwordSecret))!.data[PASSWORD_KEY]!.toString('utf8')).toBe('given-editor-pw-4711');
  });
});
