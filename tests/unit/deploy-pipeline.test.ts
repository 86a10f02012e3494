// The deploy pipeline itself, twice, on real servers: a real kube-apiserver as the "existing"
// cluster, OpenBao as an external Vault, and the External Secrets Operator controller (built from
// its Go module) running out of cluster. Only the Helm install step is left out: no chart
// repository is reachable and no pod runs here (no kubelet); ESO's CRDs and controller stand in
// for what it installs. Every other step runs as `vaultlab deploy` runs it, through the runner.
// The second run is a re-deploy on a healthy environment: it must change nothing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { KubeServer } from '../harness/kube/server.ts';
import { startApiAndBao, startEsoController, statusCheck, withoutSampleDatabase, withoutVso, type ApiAndBao, type EsoController } from '../harness/synced.ts';
import { ensureTool, binDir, ESO_CONTROLLER_VERSION } from '../harness/kube/build.ts';
import type { BaoServer } from '../harness/bao.ts';
import type { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { Output } from '../../scripts/lib/output.ts';
import { runSteps, type StepOutcome } from '../../scripts/lib/tasks.ts';
import { DEPLOY_STEPS } from '../../scripts/steps/index.ts';
import { newDeployContext, type DeployContext } from '../../scripts/steps/context.ts';
import { OWNER_CONFIGMAP } from '../../scripts/steps/cluster.ts';
import { TOKEN_REVIEWER } from '../../scripts/steps/vault.ts';
import type { SecretCheck } from '../../scripts/deliveries/eso/sync.ts';

describe(`deploy pipeline twice: API server, OpenBao (external Vault), ESO ${ESO_CONTROLLER_VERSION}`, () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let env: ApiAndBao;
  let controller: EsoController;
  const logs = () => controller?.logs() ?? '';
  let config: string;
  const saved = process.env.PATH;
  const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
  const steps = DEPLOY_STEPS.filter((s) => s.name !== 'install');
  const runs: { ctx: DeployContext; outcomes: StepOutcome[] }[] = [];

  async function deploy() {
    const loaded = loadConfigText(config, 'config.toml', { env: {} });
    const ctx = newDeployContext({ loaded, plan: buildPlan(loaded), out: new Output({ json: true, verbose: false, plain: true }), state, options: { preload: false, skipSamples: true, timeoutMs: 90_000 } });
    try {
      const outcomes = await runSteps(steps, ctx, ctx.out, { handleSigint: false });
      runs.push({ ctx, outcomes });
      return { ctx, outcomes };
    } catch (err) {
      (err as Error).message += `\nESO controller log:\n${logs().slice(-3000)}`;
      throw err;
    } finally {
      ctx.vault?.close();
      await Promise.all(ctx.forwards.map((f) => f.close()));
    }
  }

  beforeAll(async () => {
    ensureTool('helm'); // preflight for an existing cluster checks helm
    process.env.PATH = [binDir(), saved].join(delimiter);
    env = await startApiAndBao(ESO_CONTROLLER_VERSION);
    ({ kubeServer, bao, kube } = env);
    // An external Vault cannot reach the sample Postgres (and this API server runs no pods): the bundled config without it, and without its VSO app.
    config = withoutVso(withoutSampleDatabase(readFileSync(BUNDLED_CONFIG, 'utf8')))
      .replace(/^provider = "kind".*$/m, `provider = "existing"\nkubeconfig = "${kubeServer.kubeconfigPath}"`)
      .replace('[vault]\n', `[vault]\naddress = "${bao.address}"\n`);
    controller = startEsoController(kubeServer.kubeconfigPath);
  }, 600_000);
  afterAll(async () => {
    process.env.PATH = saved;
    controller?.stop();
    await env?.stop();
  });

  it('first deploy: every step runs; Vault initialized, configured and seeded; every Secret matches Vault', async () => {
    const { ctx, outcomes } = await deploy();
    expect(outcomes.map((o) => [o.name, o.outcome])).toEqual([
      ['preflight', 'ok'],
      ['cluster', 'ok'],
      ['vault', 'ok'],
      ['deliveries', 'ok'],
      ['samples', 'skipped'],
      ['verify', 'ok'],
      ['summary', 'ok'],
    ]);
    const v = ctx.summary.vault as { init: string; configure: number; seed: Record<string, number> };
    expect(v.init).toBe('initialized');
    expect(v.configure).toBeGreaterThan(0);
    expect(v.seed.created).toBeGreaterThan(0);
    const checks = ctx.summary.verify as SecretCheck[];
    expect(checks.length).toBe(ctx.plan.namespaces.reduce((n, ns) => n + ns.externalSecrets.length, 0));
    expect(checks.every((c) => c.ok)).toBe(true);
    // The external Vault checks ESO's tokens with a reviewer allowed to call TokenReview.
    expect(await kube.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, TOKEN_REVIEWER.serviceAccount)).toBeDefined();
  });

  it('a re-deploy changes nothing: no Vault write, zero config changes, seed unchanged, every apply unchanged', async () => {
    const marker = (await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)).metadata.resourceVersion;
    const targets = async () => {
      const rv: Record<string, string> = {};
      for (const ns of runs[0]!.ctx.plan.namespaces) for (const es of ns.externalSecrets) rv[`${ns.name}/${es.name}`] = (await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name)).metadata.generation;
      return rv;
    };
    const before = await targets();
    const { ctx, outcomes } = await deploy();
    expect(outcomes.every((o) => o.outcome === 'ok' || o.outcome === 'skipped')).toBe(true);
    const v = ctx.summary.vault as { init: string; configure: number; seed: Record<string, number>; seedWrites: number; writes: number };
    expect(v.init).toBe('already-initialized');
    expect(v.configure).toBe(0);
    expect(v.seed).toMatchObject({ created: 0, updated: 0, rotated: 0 });
    expect(v.seedWrites).toBe(0);
    expect(v.writes).toBe(0);
    expect(ctx.summary.deliveries).toMatchObject({ changed: 0 });
    expect((await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)).metadata.resourceVersion).toBe(marker);
    expect(await targets()).toEqual(before);
    expect((ctx.summary.verify as SecretCheck[]).every((c) => c.ok)).toBe(true);
    const ms = (o: StepOutcome[]) => o.reduce((n, s) => n + s.ms, 0);
    console.log(`deploy: first ${ms(runs[0]!.outcomes)} ms, re-deploy ${ms(outcomes)} ms (${outcomes.map((o) => `${o.name} ${o.ms}`).join(', ')})`);
  });

  it('a recreated reviewer account (destroy removes it) gets its token replaced in Vault: ESO logins work again, then nothing changes', async () => {
    const { namespace, serviceAccount } = TOKEN_REVIEWER;
    const plan = runs[0]!.ctx.plan;
    const role = plan.vault.kubernetesAuth.roles.find((r) => r.namespace === 'webapp')!;
    const esoLogin = async () => {
      const jwt = await kube.createServiceAccountToken(role.namespace, role.serviceAccount, [role.audience], 600);
      const v = new VaultClient({ address: bao.address, attempts: 1 });
      try {
        return (await v.post(`auth/${plan.vault.kubernetesAuth.mount}/login`, { role: role.name, jwt }, { anonymous: true, accept: [400, 403, 500] })).status;
      } finally {
        v.close();
      }
    };
    const reviewerCheck = () => statusCheck({ loaded: runs[0]!.ctx.loaded, plan, state, kube }, bao.address, 'vault token reviewer');
    expect(await esoLogin()).toBe(200);
    expect(await reviewerCheck()).toMatchObject({ ok: true });
    // What destroy removes; a later deploy creates the account anew, with a new uid.
    await kube.delete('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, serviceAccount);
    await kube.delete('v1', 'ServiceAccount', namespace, serviceAccount);
    expect(await esoLogin()).not.toBe(200); // Vault still holds the deleted account's token
    // status names the cause and the fix (ESO itself only says "permission denied").
    expect(await reviewerCheck()).toEqual({
      name: 'vault token reviewer',
      ok: false,
      detail: `ServiceAccount ${namespace}/${serviceAccount} is missing: Vault cannot check ESO's tokens, so every ESO login is refused`,
      fix: 'vaultlab deploy (re-creates the account and gives Vault its new token)',
    });
    const { ctx } = await deploy();
    const v = ctx.summary.vault as { configure: number; seedWrites: number };
    expect(v.configure).toBe(1); // the auth config, with the new reviewer token
    expect(v.seedWrites).toBe(0);
    expect(await esoLogin()).toBe(200);
    expect(await reviewerCheck()).toMatchObject({ ok: true });
    expect((ctx.summary.verify as SecretCheck[]).every((c) => c.ok)).toBe(true);
    const again = await deploy();
    expect((again.ctx.summary.vault as { writes: number }).writes).toBe(0);
  });

  it('demo: a lost state dir is restored from the copy of the init result kept in the cluster', async () => {
    const file = state.file('vault-init.json');
    const original = readFileSync(file, 'utf8');
    rmSync(file);
    const { ctx, outcomes } = await deploy();
    expect(outcomes.find((o) => o.name === 'vault')?.outcome).toBe('ok');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(original));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((ctx.summary.vault as { writes: number }).writes).toBe(0);
  });

  it('no keys and no token anywhere: the vault step stops with what is missing and the fix', async () => {
    rmSync(state.file('vault-init.json'));
    await kube.delete('v1', 'Secret', 'vault', 'vault-init-keys');
    const err = (await deploy().catch((e) => e)) as Error;
    expect(err.message.split('\n')[0]).toMatch(/^no token for Vault at http:\/\/127\.0\.0\.1:\d+/);
    expect((err as { hint?: string }).hint ?? String((err as { cause?: { hint?: string } }).cause?.hint)).toMatch(/VAULT_TOKEN/);
  });
});
