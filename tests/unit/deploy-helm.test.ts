// The helm adapter and the ESO install for real: the helm binaries, 3 and 4 (built from their Go modules), the
// External Secrets Operator chart (its source from the ESO Go module, packaged and served from a
// local chart repository, since this machine has no route to charts.external-secrets.io),
// installed into a real kube-apiserver + etcd. No pod runs here (no kubelet), so nothing waits
// with --wait except the interrupted installs below, which is the point.
//
// Said plainly: the pinned chart (plan.eso.chart.version, 2.x) is not on the Go module proxy (ESO's
// v2 tags have no /v2 module path), so the chart source is the newest one the proxy serves
// (ESO_VERSION), packaged under the pinned version so the adapter sees exactly what it asks
// helm for. The values vaultlab sets exist in both (checked against the pinned chart's values).
//
// Two changes to the chart source, both what ESO's release pipeline does or makes moot: its CRDs
// (generated at release into templates/crds) are placed in crds/, and the optional, disabled
// bitwarden-sdk-server dependency (an OCI chart) is dropped. And one to what helm sees: a
// kube-apiserver built from source reports its version as "v0.0.0-master+$Format:%H$", which the
// chart's semver checks reject, so helm talks to it through a local proxy that answers /version
// with the Kubernetes version it was built from. Everything else passes through unchanged.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { esoModuleDir, ESO_VERSION } from '../harness/kube/eso.ts';
import { ensureTool, binDir, KUBERNETES_VERSION } from '../harness/kube/build.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { exec } from '../../scripts/adapters/exec.ts';
import { helmStatus, helmTemplate, helmUpgradeInstall, helmRepoList, storedRelease, type HelmRelease } from '../../scripts/adapters/helm.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts, vaultValues } from '../../scripts/plan/render.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';
import { applyWithRetry, webhookNotReady } from '../../scripts/deliveries/eso/sync.ts';
import { imagesOf } from '../../scripts/lifecycle/images.ts';
import { esoImageValues } from '../../scripts/plan/images.ts';

const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
const VERSION = plan.eso.chart.version;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Plain-HTTP front for the test API server (admin token added), answering /version with KUBERNETES_VERSION. */
async function startVersionProxy(server: KubeServer): Promise<{ url: string; close(): void }> {
  const [major, minor] = KUBERNETES_VERSION.replace(/^v/, '').split('.');
  const proxy = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ major, minor, gitVersion: KUBERNETES_VERSION, platform: 'linux/amd64' }));
    }
    const upstream = httpsRequest(`${server.host}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(server.host).host, authorization: `Bearer ${server.adminToken}` }, ca: server.caPem }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, close: () => proxy.close() };
}

// Both Helm majors users have: Helm 3, and Helm 4 (what a package manager installs today).
describe.each(['helm', 'helm4'] as const)(`helm adapter (%s): ESO chart ${VERSION} (source of ${ESO_VERSION}) into a real API server`, (tool) => {
  let kubeServer: KubeServer;
  let kube: Kube;
  let repo: Server;
  let work: string;
  let log: string;
  let helmBin: string;
  const saved = { ...process.env };
  let rel: HelmRelease;
  let versionProxy: { url: string; close(): void };
  let helmKubeconfig: string;
  const esoValues = parseYaml(renderArtifacts(plan).get('helm/eso-values.yaml')!) as Record<string, unknown>;
  const SENTINEL = 'values-never-in-argv-7f3a';

  const calls = () =>
    readFileSync(log, 'utf8')
      .split('\n---\n')
      .filter(Boolean)
      .map((c) => c.split('\n').filter(Boolean));
  // Never spawnSync a helm that talks to the cluster: the proxy it goes through runs in this process.
  const helm = (args: string[]) => exec(helmBin, [...args, '--kubeconfig', helmKubeconfig]);

  /** Starts `helm upgrade --install --wait` and kills it (SIGKILL) once the release is pending. */
  async function interruptedHelm(values: Record<string, unknown>): Promise<string> {
    const file = join(work, `values-${Date.now()}.yaml`);
    writeFileSync(file, JSON.stringify(values), { mode: 0o600 });
    const child = spawn(helmBin, ['upgrade', '--install', rel.name, `external-secrets/external-secrets`, '--version', VERSION, '-n', rel.namespace, '--create-namespace', '-f', file, '--kubeconfig', helmKubeconfig, '--wait', '--timeout', '5m'], { stdio: 'ignore' });
    const deadline = Date.now() + 60_000;
    let status: string | undefined;
    let exited = false;
    child.once('exit', () => (exited = true));
    while (Date.now() < deadline && !exited) {
      status = (await helmStatus(rel.name, rel.namespace, rel))?.status;
      if (status?.startsWith('pending-')) break;
      await sleep(200);
    }
    if (!exited) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    return status ?? 'none';
  }

  beforeAll(async () => {
    helmBin = ensureTool(tool);
    work = mkdtempSync(join(tmpdir(), 'vaultlab-helm-test-'));
    // The chart, as published: source from the ESO module, CRDs alongside.
    const src = join(esoModuleDir(ESO_VERSION), 'deploy', 'charts', 'external-secrets');
    const chart = join(work, 'chart', 'external-secrets');
    cpSync(src, chart, { recursive: true });
    spawnSync('chmod', ['-R', 'u+w', join(work, 'chart')]);
    const chartYaml = readFileSync(join(chart, 'Chart.yaml'), 'utf8');
    writeFileSync(join(chart, 'Chart.yaml'), chartYaml.slice(0, chartYaml.indexOf('dependencies:')));
    rmSync(join(chart, 'Chart.lock'), { force: true });
    mkdirSync(join(chart, 'crds'));
    const bases = join(esoModuleDir(ESO_VERSION), 'config', 'crds', 'bases');
    for (const f of readdirSync(bases).filter((n) => n.startsWith('external-secrets.io_'))) cpSync(join(bases, f), join(chart, 'crds', f));
    const served = join(work, 'repo');
    mkdirSync(served);
    const pkg = spawnSync(helmBin, ['package', chart, '--version', VERSION, '--app-version', `v${VERSION}`, '-d', served], { encoding: 'utf8' });
    expect(pkg.status, pkg.stderr).toBe(0);
    // A stand-in chart under Vault's name and version (the HashiCorp chart is not reachable from
    // here): one ConfigMap, no schema, so it takes Vault's rendered values as they are.
    const standIn = join(work, 'chart', 'vault');
    mkdirSync(join(standIn, 'templates'), { recursive: true });
    writeFileSync(join(standIn, 'Chart.yaml'), `apiVersion: v2\nname: ${plan.vault.chart.chart}\nversion: ${plan.vault.chart.version}\n`);
    writeFileSync(join(standIn, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "{{ .Release.Name }}-values"}\ndata: {values: {{ toJson .Values | quote }}}\n');
    expect(spawnSync(helmBin, ['package', standIn, '-d', served]).status).toBe(0);
    repo = createServer((req, res) => {
      const file = join(served, (req.url ?? '/').split('?')[0]!.replace(/^\/+/, ''));
      if (!file.startsWith(served) || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((r) => repo.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(repo.address() as { port: number }).port}`;
    expect(spawnSync(helmBin, ['repo', 'index', served, '--url', url]).status).toBe(0);

    // helm on PATH is a shim that records each call's argv and the mode of its -f file.
    log = join(work, 'calls.log');
    writeFileSync(log, '');
    const shimDir = join(work, 'shim');
    mkdirSync(shimDir);
    writeFileSync(
      join(shimDir, 'helm'),
      `#!/bin/sh\nprev=""\nfor a in "$@"; do printf '%s\\n' "$a" >> '${log}'; if [ "$prev" = "-f" ]; then printf 'MODE=%s\\n' "$(stat -c %a "$a")" >> '${log}'; fi; prev="$a"; done\nprintf -- '---\\n' >> '${log}'\nexec '${helmBin}' "$@"\n`,
    );
    chmodSync(join(shimDir, 'helm'), 0o755);
    const home = join(work, 'helm-home');
    Object.assign(process.env, {
      PATH: [shimDir, binDir(), process.env.PATH].join(delimiter),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_DATA_HOME: join(home, 'data'),
    });

    kubeServer = await startKube();
    kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
    versionProxy = await startVersionProxy(kubeServer);
    helmKubeconfig = join(work, 'helm-kubeconfig');
    writeFileSync(
      helmKubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: p, cluster: {server: "${versionProxy.url}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: p, context: {cluster: p, user: u}}]\ncurrent-context: p\n`,
      { mode: 0o600 },
    );
    rel = {
      name: plan.eso.release,
      namespace: plan.eso.namespace,
      chart: { ...plan.eso.chart, repoUrl: url },
      values: { ...esoValues, podLabels: { sentinel: SENTINEL } },
      kubeconfig: helmKubeconfig,
    };
  }, 600_000);

  afterAll(async () => {
    process.env = saved;
    repo?.close();
    versionProxy?.close();
    await kubeServer?.stop();
  });

  it('the images --preload loads are read from the rendered chart (a local .tgz source), overrides included', async () => {
    const chart = { ...plan.eso.chart, source: { type: 'path' as const, path: join(work, 'repo', `external-secrets-${VERSION}.tgz`) } };
    const render = async (values: Record<string, unknown>) => [...imagesOf(parseAllDocuments(await helmTemplate({ name: 'x', namespace: 'eso', chart, values })).map((d) => d.toJS()), 'eso').keys()];
    expect(await render(esoValues)).toEqual([`ghcr.io/external-secrets/external-secrets:v${VERSION}`]);
    const mirrored = { ...plan.images, mirror: 'mirror.example:5000' };
    expect(await render({ ...esoValues, ...esoImageValues(mirrored) })).toEqual([`mirror.example:5000/external-secrets/external-secrets:v${VERSION}`]);
    expect(await render({ ...esoValues, ...esoImageValues({ ...plan.images, eso: 'local/eso:v0.17.0' }) })).toEqual(['local/eso:v0.17.0']);
    // A local chart whose version is not the pinned one is refused (a re-run could never tell it is unchanged).
    await expect(helmTemplate({ name: 'x', namespace: 'eso', chart: { ...chart, version: '9.9.9' }, values: {} })).rejects.toThrow(/is version .*, but 9\.9\.9 is pinned/);
  });

  it('an install cut short (pending-install, helm killed) is removed and installed again', async () => {
    // The repository must exist for the raw helm call; vaultlab's own call adds it.
    await exec(helmBin, ['repo', 'add', 'external-secrets', rel.chart.repoUrl]); // served by this process: never spawnSync
    expect(await interruptedHelm(rel.values)).toBe('pending-install');
    writeFileSync(log, '');
    const r = await helmUpgradeInstall(rel);
    expect(r).toEqual({ action: 'installed', recovered: 'removed the pending-install release an interrupted run left' });
    expect(await helmStatus(rel.name, rel.namespace, rel)).toMatchObject({ status: 'deployed', chart: `external-secrets-${VERSION}`, revision: 1 });
    expect((await helmRepoList()).find((x) => x.name === 'external-secrets')?.url).toBe(rel.chart.repoUrl);
    await kube.waitForCrdsEstablished(['secretstores.external-secrets.io', 'externalsecrets.external-secrets.io'], 30_000);
  });

  it('values go through a 0600 file, never argv; the pinned --version is passed', () => {
    const upgrade = calls().find((c) => c[0] === 'upgrade')!;
    expect(upgrade.slice(0, 3)).toEqual(['upgrade', '--install', rel.name]);
    expect(upgrade[upgrade.indexOf('--version') + 1]).toBe(VERSION);
    expect(upgrade).toContain('MODE=600');
    expect(existsSync(upgrade[upgrade.indexOf('-f') + 1]!)).toBe(false); // removed afterwards
    expect(readFileSync(log, 'utf8')).not.toContain(SENTINEL);
  });

  it('a re-run with the same chart and values does nothing: no repository refresh, no upgrade, same revision', async () => {
    writeFileSync(log, '');
    expect(await helmUpgradeInstall(rel)).toEqual({ action: 'unchanged' });
    expect(calls().map((c) => c.slice(0, 2).join(' '))).toEqual(['list -n', 'get values']);
    expect((await helmStatus(rel.name, rel.namespace, rel))?.revision).toBe(1);
  });

  it("a re-run given the API reads the release record itself: 'unchanged' with no helm process; a change still goes to helm", async () => {
    const stored = await storedRelease(kube, rel.name, rel.namespace);
    expect(stored).toMatchObject({ revision: 1, status: 'deployed', chart: `external-secrets-${VERSION}` });
    const listed = await helmStatus(rel.name, rel.namespace, rel);
    expect({ revision: stored!.revision, status: stored!.status, chart: stored!.chart }).toEqual({ revision: listed!.revision, status: listed!.status, chart: listed!.chart });
    writeFileSync(log, '');
    expect(await helmUpgradeInstall({ ...rel, kube })).toEqual({ action: 'unchanged' });
    expect(readFileSync(log, 'utf8')).toBe('');
    // Another storage driver: the record is not in Secrets, so helm is asked.
    expect(await storedRelease(kube, rel.name, rel.namespace, { HELM_DRIVER: 'configmap' })).toBeUndefined();
    expect(await storedRelease(kube, 'no-such-release', rel.namespace)).toBeUndefined();
    // Values that differ from the record: helm checks and decides (here: same chart, a value changed -> upgrade).
    writeFileSync(log, '');
    const changed = { ...rel, kube, values: { ...rel.values, replicaCount: 2 } };
    expect(await helmUpgradeInstall(changed)).toEqual({ action: 'upgraded' });
    expect(calls().map((c) => c.slice(0, 2).join(' '))).toContain('upgrade --install');
    expect((await storedRelease(kube, rel.name, rel.namespace))?.revision).toBe(2);
    // Back to the original values, as the test after this one expects to start from.
    await helmUpgradeInstall({ ...rel, kube });
    expect(await storedRelease(kube, rel.name, rel.namespace)).toMatchObject({ revision: 3, status: 'deployed' });
  });

  it('changed values upgrade the release (after a repository refresh)', async () => {
    writeFileSync(log, '');
    const changed = { ...rel, values: { ...rel.values, replicaCount: 2 } };
    expect(await helmUpgradeInstall(changed)).toEqual({ action: 'upgraded' });
    expect(calls().map((c) => c.slice(0, 2).join(' '))).toEqual(['list -n', 'get values', 'repo list', 'repo update', 'upgrade --install']);
    expect((await helmStatus(rel.name, rel.namespace, rel))?.revision).toBe(4);
    expect(await helmUpgradeInstall(changed)).toEqual({ action: 'unchanged' });
  });

  it('an upgrade cut short (pending-upgrade) is rolled back, then upgraded', async () => {
    expect(await interruptedHelm({ ...rel.values, replicaCount: 3 })).toBe('pending-upgrade');
    const r = await helmUpgradeInstall(rel);
    expect(r).toEqual({ action: 'upgraded', recovered: 'rolled back the pending-upgrade revision 5 an interrupted run left' });
    expect(await helmStatus(rel.name, rel.namespace, rel)).toMatchObject({ status: 'deployed', revision: 7 });
    expect((await helm(['history', rel.name, '-n', rel.namespace])).stdout).toMatch(/Rollback to 4/);
  });

  it("Vault's rendered values (demo and production: HCL blocks, empty strings, numbers) survive helm's round trip, so a re-run is 'unchanged'", async () => {
    for (const p of [plan, buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }))]) {
      const vaultRel: HelmRelease = { name: `vault-${p.profile}`, namespace: 'vault', chart: { ...p.vault.chart, repoName: 'external-secrets', repoUrl: rel.chart.repoUrl }, values: vaultValues(p), kubeconfig: helmKubeconfig };
      expect(await helmUpgradeInstall(vaultRel)).toMatchObject({ action: 'installed' });
      expect(await helmUpgradeInstall(vaultRel)).toEqual({ action: 'unchanged' });
      expect(await helmUpgradeInstall({ ...vaultRel, kube })).toEqual({ action: 'unchanged' }); // from the record: the same verdict
    }
  });

  it("ESO's webhook without a running pod: SSA is refused as 'not answering yet', retried, then reported with a fix", async () => {
    const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
    const objects = namespaceManifests(plan, webapp);
    await kube.apply(objects.filter((o) => o.kind === 'Namespace' || o.kind === 'ServiceAccount'));
    const store = objects.find((o) => o.kind === 'SecretStore')!;
    const raw = await kube.apply([store]).then(
      () => undefined,
      (e: Error) => e.message,
    );
    // The API server's own words (printed for the record; the unit tests quote this shape).
    console.log(`webhook refusal from the API server: ${raw}`);
    expect(raw).toBeDefined();
    expect(webhookNotReady(raw!)).toBe(true);
    const t0 = Date.now();
    await expect(applyWithRetry(kube, [store], 2500)).rejects.toMatchObject({ message: expect.stringMatching(/^ESO's admission webhook is still not answering/) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
  });
});
