// The VSO delivery against the real Vault Secrets Operator: its controller (built from the Go
// module at an exact version) runs out of cluster against a real kube-apiserver (VSO's CRDs from
// the same module) and a real OpenBao. vaultlab's objects (VaultConnection, VaultAuth,
// VaultStaticSecret) are applied by the delivery's own apply, which waits until VSO synced them;
// verify compares the Secret with Vault by digest, read as the app's role. Then a value changed
// in Vault, and the annotation converge sets: VSO re-reads, re-syncs the Secret and performs the
// rollout restart (the Deployment's restartedAt annotation changes). VSO runs with its client
// cache persisted and encrypted through OpenBao's transit engine, as the chart configures it
// (`helm template` of the module's chart with vaultlab's values gives the VaultAuth it uses):
// each app's cached client is transit ciphertext that decrypts to VSO's token, and a restarted
// VSO resumes from it. No kubelet here: the Deployment has no pods, so what reaches a pod is the
// kind suite's part.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ensureTool, ensureVso, KUBERNETES_VERSION, vsoModuleDir, VSO_VERSION } from '../harness/kube/build.ts';
import { installVsoCrds } from '../harness/kube/vso.ts';
import { shopApp } from '../harness/fixtures/shop.ts';
import { startApiAndBao, tempState, vaultUpForApi, type ApiAndBao } from '../harness/synced.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { allManifests } from '../../scripts/plan/manifests.ts';
import { Output } from '../../scripts/lib/output.ts';
import { sha256 } from '../../scripts/lib/digest.ts';
import { newDeployContext, type DeployContext } from '../../scripts/steps/context.ts';
import { appsOf } from '../../scripts/deliveries/index.ts';
import { FORCE_SYNC, RESTARTED_AT, vsoRuntime } from '../../scripts/deliveries/vso/runtime.ts';
import { vsoValues } from '../../scripts/deliveries/vso/values.ts';
import { CACHE_COMPONENT } from '../../scripts/deliveries/vso/client-cache.ts';
import type { Plan } from '../../scripts/plan/types.ts';

const APP = shopApp({ delivery: 'vso', sample: 'env', entry: 'shop-db', secretExtra: 'refresh_after = "1h"' });
const OPERATOR_NS = 'vault-secrets-operator';
const signal = new AbortController().signal;
const quiet = () => undefined;

function unavailable(): string | undefined {
  if (spawnSync('go', ['version']).status !== 0) return 'Go is not installed (VSO is built from the Go module proxy)';
  try {
    ensureVso();
  } catch (err) {
    return `vault-secrets-operator ${VSO_VERSION} cannot be built (Go module proxy unreachable?): ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    ensureTool('helm');
  } catch (err) {
    return `helm cannot be built (it renders VSO's chart): ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}
const reason = unavailable();
if (reason) console.log(`skipped: VSO out of cluster: ${reason}`);

describe.skipIf(!!reason)(`VSO ${VSO_VERSION} out of cluster, real API server and OpenBao`, () => {
  let env: ApiAndBao;
  let kube: Kube;
  let vault: VaultClient;
  let plan: Plan;
  let ctx: DeployContext;
  let controller: ChildProcess;
  let logs = '';

  beforeAll(async () => {
    env = await startApiAndBao();
    kube = env.kube;
    // One VSO app, with OpenBao as an external Vault (its loopback address is what VSO reaches).
    const text = `[vault]\naddress = "${env.bao.address}"\n${APP}`;
    const loaded = loadConfigText(text, 'config.toml', { env: {} });
    plan = buildPlan(loaded);
    expect(plan.apps.map((a) => `${a.delivery}:${a.name}`)).toEqual(['vso:shop']);
    vault = new VaultClient({ address: env.bao.address });
    await vaultUpForApi(vault, kube, plan, tempState(), loaded.passwords);
    // VSO's CRDs, from its module's chart (what the chart installs).
    await installVsoCrds(kube);
    // What the deliveries step applies before the delivery: the namespaces; and the sample
    // Deployment that rolloutRestartTargets names.
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } }, ...allManifests(plan).filter((o) => o.kind === 'Namespace')]);
    // What the chart installs for the client cache, rendered by the chart itself with vaultlab's
    // values: the controller's ServiceAccount and the storage-encryption VaultAuth.
    const valuesFile = join(mkdtempSync(join(tmpdir(), 'vaultlab-vso-values-')), 'values.json');
    writeFileSync(valuesFile, JSON.stringify(vsoValues(plan)));
    const rendered = spawnSync(ensureTool('helm'), ['template', plan.vso.release, join(vsoModuleDir(), 'chart'), '--namespace', OPERATOR_NS, '--kube-version', KUBERNETES_VERSION, '-f', valuesFile], { encoding: 'utf8' });
    expect(rendered.status, rendered.stderr).toBe(0);
    const chartObjects = parseAllDocuments(rendered.stdout).map((d) => d.toJSON()).filter(Boolean);
    const cache = plan.vso.clientCache!;
    const fromChart = chartObjects.filter((o: any) => (o.kind === 'ServiceAccount' && o.metadata.name === cache.serviceAccount) || (o.kind === 'VaultAuth' && o.metadata.name === cache.vaultAuth));
    expect(fromChart.map((o: any) => o.kind).sort()).toEqual(['ServiceAccount', 'VaultAuth']);
    // The chart leaves spec.namespace empty (null); Helm creates the object and the API server
    // prunes a null of a non-nullable field. Server-side apply refuses it instead: dropped here.
    const dropNulls = (v: any): any => (Array.isArray(v) ? v.map(dropNulls) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, dropNulls(x)])) : v);
    await kube.apply(fromChart.map((o: any) => dropNulls({ ...o, metadata: { ...o.metadata, namespace: OPERATOR_NS } })));
    startController();
    ctx = newDeployContext({ loaded, plan, out: new Output({ json: true, verbose: false, plain: true }), state: tempState(), options: { preload: false, skipSamples: true, timeoutMs: 90_000 } });
    ctx.kube = kube;
    ctx.vault = vault;
  }, 600_000);
  function startController() {
    // The chart's flag for controller.manager.clientCache.persistenceModel.
    controller = spawn(ensureVso(), ['--health-probe-bind-address=0', '--metrics-bind-address=0', '--leader-elect=false', '--client-cache-persistence-model=direct-encrypted'], {
      env: { ...process.env, KUBECONFIG: env.kubeServer.kubeconfigPath, OPERATOR_NAMESPACE: OPERATOR_NS },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let own = '';
    controller.stdout!.on('data', (d) => ((logs += d), (own += d)));
    controller.stderr!.on('data', (d) => ((logs += d), (own += d)));
    const mine = controller;
    mine.once('exit', (code, sig) => {
      logs += `\n[VSO exited: ${code ?? sig}]\n`;
      // VSO v0.10.0's setEncryptionClient sends twice on a channel it closes (vault/client_factory.go:
      // the goroutine's last line and its deferred send), a race that sometimes panics the process
      // when it first sets up its transit client. In a cluster the kubelet restarts it; so here.
      if (mine === controller && stopping === false && /send on closed channel[\s\S]*setEncryptionClient/.test(own)) {
        upstreamPanics++;
        startController();
      }
    });
  }
  let stopping = false;
  let upstreamPanics = 0;
  afterAll(async () => {
    stopping = true;
    if (upstreamPanics) console.log(`VSO ${VSO_VERSION}: ${upstreamPanics} restart(s) after its known setEncryptionClient panic`);
    controller?.kill('SIGTERM');
    vault?.close();
    await env?.stop();
  });
  const withLogs = async <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: Error) => {
      throw new Error(`${e.message}\nVSO log:\n${logs.slice(-4000)}`);
    });

  it('apply: VaultConnection, VaultAuth and VaultStaticSecret applied and synced; a second apply changes nothing', async () => {
    const apps = appsOf(plan.apps, 'vso');
    const first = await withLogs(vsoRuntime.apply(ctx, apps, quiet));
    expect(first).toMatchObject({ applied: 5, changed: 5, detail: '1 VaultStaticSecret(s) synced, client cache encrypted with transit/keys/vso-client-cache' });
    const again = await withLogs(vsoRuntime.apply(ctx, apps, quiet));
    expect(again).toMatchObject({ applied: 5, changed: 0 });
    const auth = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultAuth', 'shop', 'shop');
    expect(auth.status.valid).toBe(true);
  }, 180_000);

  it('verify: the Secret holds exactly the mapped keys, equal to Vault by digest (read as vso-shop-role)', async () => {
    const checks = await withLogs(vsoRuntime.verify(ctx, appsOf(plan.apps, 'vso'), quiet, signal));
    expect(checks).toEqual([
      { namespace: 'shop', target: 'shop-db', ok: true, problems: [], delivery: 'vso', app: 'shop' },
      { namespace: OPERATOR_NS, target: 'client cache of shop/shop (transit/keys/vso-client-cache)', ok: true, problems: [], delivery: 'vso', app: 'shop' },
    ]);
    const secret = (await kube.readSecret('shop', 'shop-db'))!;
    expect(Object.keys(secret.data).sort()).toEqual(['DB_PASSWORD', 'DB_USER']);
    const kv = (await vault.kvRead('secret', 'shop/db'))!;
    expect(sha256(secret.data.DB_PASSWORD!)).toBe(sha256(kv.data.password!));
  }, 180_000);

  it("the client cache: the app's client stored in VSO's namespace as transit ciphertext (no token in the clear) that decrypts to VSO's Vault token", async () => {
    const stored = await kube.list<any>('v1', 'Secret', OPERATOR_NS, CACHE_COMPONENT);
    const auth = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultAuth', 'shop', 'shop');
    const mine = stored.filter((x) => x.metadata.labels['auth/UID'] === auth.metadata.uid);
    expect(mine).toHaveLength(1);
    expect(mine[0].metadata.labels).toMatchObject({ encrypted: 'true', vaultTransitRef: plan.vso.clientCache!.vaultAuth });
    const raw = Buffer.from(mine[0].data.secret, 'base64').toString();
    const { ciphertext } = JSON.parse(raw);
    expect(ciphertext).toMatch(/^vault:v1:/);
    expect(raw).not.toMatch(/"(client_token|token)"\s*:/);
    // Decrypted with the root token (vaultlab itself never does): VSO's login, a token that works.
    const plain = JSON.parse(Buffer.from((await vault.post<any>('transit/decrypt/vso-client-cache', { ciphertext })).data.data.plaintext, 'base64').toString());
    const token: string = plain.auth?.client_token;
    expect(token).toMatch(/^[sh]\./);
    const self = (await vault.withToken(token).get<any>('auth/token/lookup-self')).data.data;
    expect(self.policies).toContain('vso-policy');
    expect(self.meta).toMatchObject({ role: 'vso-shop-role', service_account_namespace: 'shop' });
    // status reports it.
    const status = await vsoRuntime.status({ plan, kube } as never, appsOf(plan.apps, 'vso'));
    expect(status.find((c) => c.name === 'VSO client cache')).toMatchObject({ ok: true, detail: `1 cached client(s) in ${OPERATOR_NS}, encrypted with transit/keys/vso-client-cache` });
  }, 60_000);

  it('a value changed in Vault and the force-sync annotation: VSO re-syncs the Secret and rolls the Deployment (restartedAt)', async () => {
    await kube.apply(allManifests(plan).filter((o) => o.kind === 'Deployment'));
    const before = (await kube.get<any>('apps/v1', 'Deployment', 'shop', 'shop')).spec.template.metadata.annotations?.[RESTARTED_AT];
    expect(before).toBeUndefined();
    const rotated = `rotated-${Date.now()}`;
    await vault.kvPatch('secret', 'shop/db', { password: rotated });
    // verify now fails, naming the key and never the value (VSO re-reads only every refresh_after = 1h).
    const stale = await vsoRuntime.verify({ ...ctx, options: { ...ctx.options, timeoutMs: 5000 } }, appsOf(plan.apps, 'vso'), quiet, AbortSignal.timeout(3000));
    expect(stale[0]!.ok).toBe(false);
    expect(stale[0]!.problems).toEqual(["DB_PASSWORD differs from Vault's shop/db:password (digest mismatch)"]);
    expect(JSON.stringify(stale)).not.toContain(rotated);
    await kube.mergePatch('secrets.hashicorp.com/v1beta1', 'VaultStaticSecret', 'shop', 'shop-db', { metadata: { annotations: { [FORCE_SYNC]: new Date().toISOString() } } });
    await withLogs(kube.waitFor('v1', 'Secret', 'shop', 'shop-db', (s) => Buffer.from(s.data?.DB_PASSWORD ?? '', 'base64').toString() === rotated, 'the rotated value', { timeoutMs: 60_000 }));
    const dep = await withLogs(kube.waitFor('apps/v1', 'Deployment', 'shop', 'shop', (d) => !!d.spec.template.metadata.annotations?.[RESTARTED_AT], 'VSO rollout restart', { timeoutMs: 60_000 }));
    expect(Date.parse(dep.spec.template.metadata.annotations[RESTARTED_AT])).toBeGreaterThan(Date.now() - 120_000);
    const checks = await vsoRuntime.verify(ctx, appsOf(plan.apps, 'vso'), quiet, signal);
    expect(checks.every((c) => c.ok)).toBe(true);
  }, 240_000);

  it('converge after a rotation: VSO made to re-read at once (no refresh_after wait), the Secret holds the new value; an unrelated change leaves it alone', async () => {
    const app = appsOf(plan.apps, 'vso')[0]!;
    // No kubelet here: converge's pod half has no pods to wait for, so the app is taken as
    // workload-less (sample "none"); the Secret half is what this checks.
    const headless = { ...app, sample: 'none' as const };
    const rotated = `converged-${Date.now()}`;
    await vault.kvPatch('secret', 'shop/db', { password: rotated });
    const envLike = { plan, kube, vault, kubeProblem: undefined } as never;
    const t0 = Date.now();
    const results = await withLogs(vsoRuntime.converge!(envLike, [headless], [{ path: 'shop/db', key: 'password' }], signal));
    expect(results).toEqual([{ namespace: 'shop', app: 'shop', target: 'shop-db', action: 're-synced', seconds: expect.any(Number) }]);
    expect(Date.now() - t0).toBeLessThan(60_000);
    const secret = (await kube.readSecret('shop', 'shop-db'))!;
    expect(secret.data.DB_PASSWORD!.toString()).toBe(rotated);
    expect(await vsoRuntime.converge!(envLike, [headless], [{ path: 'other/path', key: 'x' }], signal)).toEqual([{ namespace: 'shop', app: 'shop', target: 'shop-db', action: 'unchanged', seconds: 0 }]);
  }, 120_000);

  it("status: VaultConnection and VaultAuth valid, the VaultStaticSecret synced (the controller's Deployment is the chart's, absent here)", async () => {
    const checks = await vsoRuntime.status({ plan, kube } as never, appsOf(plan.apps, 'vso'));
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['vso', false],
      ['VSO client cache', true],
      ['VaultConnection shop/vault', true],
      ['VaultAuth shop/shop', true],
      ['VaultStaticSecret shop/shop-db', true],
    ]);
    expect(checks[4]!.detail).toBe('synced -> Secret shop-db, restarts Deployment shop');
  }, 60_000);

  // Last: the restarted controller re-reads everything at its start, which the tests above must not race.
  it('a restarted VSO resumes from the encrypted cache: it syncs a changed value with the restored token, no new login', async () => {
    const names = async () => (await kube.list<any>('v1', 'Secret', OPERATOR_NS, CACHE_COMPONENT)).map((x) => x.metadata.name).sort();
    // Every token OpenBao holds, by accessor: a new login would add one.
    const accessors = async () => ((await vault.get<any>('auth/token/accessors?list=true')).data.data.keys as string[]).sort();
    const before = { names: await names(), accessors: await accessors() };
    stopping = true;
    controller.kill('SIGTERM');
    await new Promise((r) => controller.once('exit', r));
    stopping = false;
    logs = '';
    startController();
    // Its VaultStaticSecret controller running again (what a change needs to be seen).
    const deadline = Date.now() + 60_000;
    while (!/"Starting workers".*vaultstaticsecret/i.test(logs)) {
      if (Date.now() > deadline || /\[VSO exited/.test(logs)) throw new Error(`the restarted VSO did not start its workers:\n${logs.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const changed = `after-restart-${Date.now()}`;
    await vault.kvPatch('secret', 'shop/db', { username: changed });
    await kube.mergePatch('secrets.hashicorp.com/v1beta1', 'VaultStaticSecret', 'shop', 'shop-db', { metadata: { annotations: { [FORCE_SYNC]: `restart-${Date.now()}` } } });
    await withLogs(kube.waitFor('v1', 'Secret', 'shop', 'shop-db', (x) => Buffer.from(x.data?.DB_USER ?? '', 'base64').toString() === changed, 'the value changed after the restart', { timeoutMs: 60_000 }));
    expect(await names()).toEqual(before.names);
    // The new tokens are the cache's own (VSO never persists the client it decrypts with): it
    // logged in as vso-client-cache-role to decrypt the app's client, which it then used as is
    // (one login per process: two if the known panic above restarted it).
    const added = (await accessors()).filter((a) => !before.accessors.includes(a));
    const roles = await Promise.all(added.map(async (accessor) => (await vault.post<any>('auth/token/lookup-accessor', { accessor })).data.data.meta?.role));
    expect(roles.length).toBeGreaterThan(0);
    expect([...new Set(roles)]).toEqual(['vso-client-cache-role']);
  }, 120_000);
});
