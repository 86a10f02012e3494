// Deploy steps' decisions on real inputs: this machine's `docker info`, the real kind, helm and
// kubectl binaries (kind and helm built from their Go modules into ~/.cache/vaultlab/bin), the
// rendered plan, and condition messages in the shape ESO's Vault provider reports them (written
// from ESO's and Vault's error formats: no ESO controller talks to a Vault pod on this machine).
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { kindConfig } from '../../scripts/plan/render.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { parseDockerInfo, dockerInfo } from '../../scripts/adapters/docker.ts';
import { checkTool, findBinary, judgeTool, parseVersion } from '../../scripts/adapters/tools.ts';
import { parseKindClusters } from '../../scripts/adapters/kind.ts';
import { parseList, sameValues } from '../../scripts/adapters/helm.ts';
import { preflightError, type Finding } from '../../scripts/steps/preflight.ts';
import { clusterAction } from '../../scripts/steps/cluster.ts';
import { imagesOf } from '../../scripts/lifecycle/images.ts';
import { allManifests } from '../../scripts/plan/manifests.ts';
import { applyWithRetry, webhookNotReady, decodeEsoError } from '../../scripts/deliveries/eso/sync.ts';
import { vaultRoute } from '../../scripts/steps/vault.ts';
import { accessFacts, summaryLines } from '../../scripts/steps/summary.ts';
import { newDeployContext } from '../../scripts/steps/context.ts';
import { Output } from '../../scripts/lib/output.ts';
import { ensureTool, binDir } from '../harness/kube/build.ts';
import { rolesKnown, GROUP_ROLES_RECORD, type GroupRolesRecord } from '../../scripts/steps/sample-postgres.ts';

const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
const plan = buildPlan(loaded);
const prod = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));

describe('docker adapter on this machine', () => {
  it("parses this machine's real `docker info` the way the engine answered", async () => {
    const raw = spawnSync('docker', ['info', '--format', '{{json .}}'], { encoding: 'utf8' });
    const parsed = parseDockerInfo(raw.status ?? 127, raw.stdout ?? '', raw.stderr ?? '');
    expect(parsed.reachable).toBe(raw.status === 0 && !/ServerErrors":\["/.test(raw.stdout));
    expect(await dockerInfo()).toEqual(parsed);
    if (!parsed.reachable) expect(parsed.reason).toMatch(/Cannot connect to the Docker daemon|not found|permission denied/i);
  });

  it('treats exit 0 with ServerErrors (older clients) as unreachable', () => {
    const r = parseDockerInfo(0, JSON.stringify({ ServerErrors: ['Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?'] }), '');
    expect(r).toMatchObject({ reachable: false, reason: expect.stringMatching(/Cannot connect/) });
    expect(parseDockerInfo(0, JSON.stringify({ ServerVersion: '28.2.2', MemTotal: 8 * 2 ** 30 }), '')).toEqual({ reachable: true, reason: undefined, serverVersion: '28.2.2', memoryBytes: 8 * 2 ** 30 });
  });
});

describe('tools adapter with the real binaries', () => {
  let path: string;
  beforeAll(() => {
    ensureTool('kind');
    ensureTool('helm');
    path = [binDir(), process.env.PATH].join(delimiter);
  }, 600_000);

  it('finds kind and helm and reads their versions (helm built from source prints only "v3.19")', async () => {
    const saved = process.env.PATH;
    process.env.PATH = path;
    try {
      const kind = await checkTool('kind');
      expect(kind).toMatchObject({ found: true, ok: true, path: join(binDir(), 'kind') });
      expect(kind.version).toMatch(/^0\.(3\d|[4-9]\d)\.\d+$/);
      const helm = await checkTool('helm');
      const printed = spawnSync(join(binDir(), 'helm'), ['version', '--short'], { encoding: 'utf8' }).stdout.trim();
      expect(helm).toMatchObject({ found: true, ok: true, version: parseVersion(printed) });
      expect(helm.what).toMatch(/^helm 3\.\d+\.\d+ \(need >= 3\.14\.0\)$/);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('says "not found" for a tool missing from PATH; an optional one is only a warning', async () => {
    const saved = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), 'vaultlab-empty-path-'));
    try {
      expect(await checkTool('kind')).toMatchObject({ found: false, ok: false, what: 'kind not found' });
      expect(await checkTool('kubectl')).toMatchObject({ found: false, ok: true, optional: true });
    } finally {
      process.env.PATH = saved;
    }
    expect(findBinary('sh')).toMatch(/\/sh$/);
  });

  it('asks each binary for its version once: the same file is answered from the cache, a replaced one is asked again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-toolcache-'));
    const calls = join(dir, 'calls');
    const kind = join(dir, 'kind');
    const script = (v: string) => `#!/bin/sh\necho x >> ${calls}\necho "kind v${v} go1.25 linux/amd64"\n`;
    writeFileSync(kind, script('0.31.0'), { mode: 0o755 });
    const saved = { PATH: process.env.PATH, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };
    process.env.PATH = dir;
    process.env.XDG_CACHE_HOME = join(dir, 'cache');
    const asked = () => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
    try {
      expect(await checkTool('kind')).toMatchObject({ ok: true, version: '0.31.0' });
      expect(await checkTool('kind')).toMatchObject({ ok: true, version: '0.31.0' });
      expect(asked()).toBe(1);
      expect(statSync(join(dir, 'cache', 'vaultlab', 'tool-versions.json')).mode & 0o777).toBe(0o600);
      // An upgrade in place (another size and mtime): asked again, and judged on what it prints now.
      writeFileSync(kind, script('0.20.0') + '# older\n', { mode: 0o755 });
      expect(await checkTool('kind')).toMatchObject({ ok: false, what: 'kind 0.20.0 is too old (need >= 0.30.0)' });
      expect(asked()).toBe(2);
      process.env.VAULTLAB_TOOL_CACHE = '0';
      await checkTool('kind');
      expect(asked()).toBe(3);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.XDG_CACHE_HOME === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved.XDG_CACHE_HOME;
      delete process.env.VAULTLAB_TOOL_CACHE;
    }
  });

  it('judges versions: too old, unknown, optional', () => {
    expect(judgeTool('kind', '/x/kind', 'kind v0.20.0 go1.20.4 linux/amd64')).toMatchObject({ ok: false, what: 'kind 0.20.0 is too old (need >= 0.30.0)' });
    expect(judgeTool('helm', '/x/helm', 'v3.13.3+gc8b9489')).toMatchObject({ ok: false });
    expect(judgeTool('helm', '/x/helm', 'garbage')).toMatchObject({ ok: true, version: undefined });
    expect(judgeTool('kubectl', '/x/kubectl', 'Client Version: v1.20.0')).toMatchObject({ ok: true, optional: true });
    expect(parseVersion('Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0')).toBe('1.32.4');
  });

  it('kind reports a Docker-less machine with the fix attached (real kind, real docker client)', async () => {
    const docker = await dockerInfo();
    const saved = process.env.PATH;
    process.env.PATH = path;
    try {
      const { kindClusters } = await import('../../scripts/adapters/kind.ts');
      if (docker.reachable) {
        expect(Array.isArray(await kindClusters())).toBe(true);
      } else {
        await expect(kindClusters()).rejects.toMatchObject({ message: expect.stringMatching(/kind get clusters.*failed/), hint: expect.stringMatching(/Start Docker/) });
      }
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('preflight verdict', () => {
  it('one failed check: its own message and fix; several: all of them, numbered', () => {
    const f: Finding[] = [
      { ok: false, severity: 'error', what: 'Docker is not running: x', fix: 'Start Docker' },
      { ok: true, severity: 'error', what: 'kind 0.33.0' },
      { ok: false, severity: 'warning', what: 'Docker has 2.0 GiB', fix: 'more memory' },
    ];
    expect(preflightError(f)).toMatchObject({ message: 'Docker is not running: x', hint: 'Start Docker' });
    const two = preflightError([...f, { ok: false, severity: 'error', what: 'port 8200 (cluster.ports.vault) is already in use', fix: 'lsof -i :8200' }]);
    expect(two?.message).toBe('preflight found 2 problems: Docker is not running: x; port 8200 (cluster.ports.vault) is already in use');
    expect(two?.hint).toBe('(1) Start Docker (2) lsof -i :8200');
    expect(preflightError([f[1]!, f[2]!])).toBeUndefined();
  });
});

describe('cluster step decisions', () => {
  it('creates, reuses, or recreates a cluster whose creation was interrupted', () => {
    const rec = { name: 'vaultlab', provider: 'kind' as const, profile: 'demo', createdByVaultlab: true };
    expect(clusterAction('vaultlab', parseKindClusters('other\n'), undefined)).toBe('create');
    expect(clusterAction('vaultlab', parseKindClusters('other\nvaultlab\n'), undefined)).toBe('reuse');
    expect(clusterAction('vaultlab', ['vaultlab'], { ...rec, complete: true })).toBe('reuse');
    expect(clusterAction('vaultlab', ['vaultlab'], { ...rec, complete: false })).toBe('recreate');
    // Never delete a cluster vaultlab did not create, even if a record says "incomplete".
    expect(clusterAction('vaultlab', ['vaultlab'], { ...rec, createdByVaultlab: false, complete: false })).toBe('reuse');
    expect(parseKindClusters('No kind clusters found.\n')).toEqual([]);
  });

  it('the images of rendered objects: every container and init container, with who runs it, once each', () => {
    const images = imagesOf(allManifests(plan), 'sample');
    // busybox for the samples; the db-client sample's psql runs in the sample Postgres's image.
    expect([...images.keys()].sort()).toEqual([plan.images.postgres, plan.images.samples].sort());
    expect(images.get(plan.images.postgres)).toEqual(['sample Deployment/shop']);
    expect(images.get(plan.images.samples)).toEqual(expect.arrayContaining(['sample Deployment/dashboard']));
    const job = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: { initContainers: [{ image: 'a:1' }], containers: [{ image: 'b:2' }, { image: 'a:1' }] } } } } } };
    expect(Object.fromEntries(imagesOf([job], 'x'))).toEqual({ 'a:1': ['x CronJob/c'], 'b:2': ['x CronJob/c'] });
  });

  it('kind gets the rendered config: the Vault NodePort only in demo, the dashboard in both', () => {
    const demoPorts = kindConfig(plan).nodes[0].extraPortMappings.map((m: any) => m.hostPort);
    const prodPorts = kindConfig(prod).nodes[0].extraPortMappings.map((m: any) => m.hostPort);
    expect(demoPorts).toEqual([plan.cluster.hostPorts.vault, plan.cluster.hostPorts.http]);
    expect(prodPorts).toEqual([prod.cluster.hostPorts.http]);
  });
});

describe('vault step route', () => {
  it('NodePort in demo on kind (port-forward as fallback), port-forward in production and on existing clusters', () => {
    expect(vaultRoute(plan)).toBe('nodeport-or-forward');
    expect(vaultRoute(prod)).toBe('forward');
    expect(vaultRoute({ ...plan, cluster: { ...plan.cluster, provider: 'existing' } })).toBe('forward');
    expect(vaultRoute({ ...plan, vault: { ...plan.vault, external: true } })).toBe('direct');
  });
});

describe('ESO resources', () => {
  // Seen from the real kube-apiserver with the ESO chart installed and no webhook pod (see
  // deploy-helm.test.ts; here the call went out through this machine's egress proxy, hence x509).
  const webhookDown =
    'applying SecretStore webapp/vault-backend: Internal error occurred: failed calling webhook "validate.secretstore.external-secrets.io": failed to call webhook: Post "https://external-secrets-webhook.external-secrets.svc:443/validate-external-secrets-io-v1-secretstore?timeout=5s": tls: failed to verify certificate: x509: certificate is valid for pypi.org, not external-secrets-webhook.external-secrets.svc (HTTP 500)';

  it('tells a webhook that is not answering yet from a real rejection', () => {
    expect(webhookNotReady(webhookDown)).toBe(true);
    expect(webhookNotReady('no endpoints available for service "external-secrets-webhook"')).toBe(true);
    expect(webhookNotReady('x509: certificate signed by unknown authority')).toBe(true);
    expect(webhookNotReady('applying ExternalSecret webapp/webapp-db: ExternalSecret.external-secrets.io "webapp-db" is invalid: spec.refreshInterval: Invalid value (HTTP 422)')).toBe(false);
  });

  it('retries while the webhook is not answering, with backoff; fails at once on anything else', async () => {
    let calls = 0;
    const flaky = {
      apply: async () => {
        calls++;
        if (calls < 3) throw new Error(webhookDown);
        return [{ kind: 'SecretStore', namespace: 'webapp', name: 'vault-backend', action: 'created' as const }];
      },
    };
    const t0 = Date.now();
    expect(await applyWithRetry(flaky, [], 10_000)).toHaveLength(1);
    expect(calls).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400); // 500 ms, then 1000 ms

    let rejected = 0;
    const invalid = { apply: async () => { rejected++; throw new Error('is invalid (HTTP 422)'); } };
    await expect(applyWithRetry(invalid, [], 10_000)).rejects.toThrow(/HTTP 422/);
    expect(rejected).toBe(1);

    const down = { apply: async () => { throw new Error(webhookDown); } };
    await expect(applyWithRetry(down, [], 300)).rejects.toMatchObject({ message: expect.stringMatching(/^ESO's admission webhook is still not answering/), hint: expect.stringMatching(/get pods/) });
  });
});

describe('ESO error decoding', () => {
  const webapp = plan.namespaces.find((n) => n.name === 'webapp')!;
  const cases: [string, RegExp, RegExp][] = [
    [
      'could not get provider client: unable to log in to auth method: unable to log in with Kubernetes auth: Error making API request.\n\nURL: PUT http://vault.vault.svc:8200/v1/auth/kubernetes/login\nCode: 403. Errors:\n\n* invalid audience (aud) claim: audience claim does not match any expected audience',
      /audience .*role eso-webapp-role, policy eso-policy, audience "vault".*expects "vault"/,
      /audiences equal/,
    ],
    [
      'unable to log in with Kubernetes auth: Error making API request. Code: 403. Errors: * service account name not authorized',
      /does not bind ServiceAccount external-secrets in "webapp"/,
      /vault configure/,
    ],
    ['error processing spec.data[0] (key: webapp/db), err: Secret does not exist', /not in Vault \(secret\/\)/, /vaultlab seed/],
    ['could not get SecretStore "vault-backend", SecretStore.external-secrets.io "vault-backend" not found', /SecretStore webapp\/vault-backend is not Ready/, /describe secretstore/],
    ['Get "http://vault.vault.svc:8200/v1/secret/data/webapp/db": dial tcp 10.96.12.4:8200: connect: connection refused', /cannot reach Vault at http:\/\/vault\.vault\.svc:8200/, /vaultlab status/],
    ['Error making API request. Code: 503. Errors: * Vault is sealed', /cannot reach Vault/, /sealed/],
  ];
  it.each(cases)('%s', (message, cause, fix) => {
    const d = decodeEsoError(message, webapp, plan);
    expect(d.cause).toMatch(cause);
    expect(d.fix).toMatch(fix);
  });
  it('passes an unknown message through with where to look', () => {
    expect(decodeEsoError('something new', webapp, plan)).toEqual({ cause: 'something new', fix: expect.stringMatching(/kubectl -n webapp describe externalsecret/) });
  });
});

describe('summary', () => {
  const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
  const out = new Output({ json: true, verbose: false, plain: true });
  it('demo: Vault UI on the NodePort, dashboard, what synced, the login hint; no value anywhere', () => {
    const ctx = newDeployContext({ loaded, plan, out, state, options: { preload: false, skipSamples: false, timeoutMs: 1000 } });
    ctx.summary.verify = [
      { namespace: 'webapp', externalSecret: 'webapp-db', target: 'webapp-db', ok: true, problems: [] },
      { namespace: 'registry', externalSecret: 'regcred', target: 'regcred', ok: false, problems: ['x'] },
    ];
    ctx.kubeconfigPath = state.file('kubeconfig');
    const a = accessFacts(ctx);
    expect(a).toMatchObject({ vaultUi: `${plan.vault.hostAddress}/ui`, dashboard: `http://localhost:${plan.cluster.hostPorts.http}`, synced: ['webapp/webapp-db'] });
    expect(a.login).toContain(state.file('vault-init.json'));
    const text = summaryLines(ctx).join('\n');
    expect(text).toContain('Vault UI:   http://127.0.0.1:8200/ui');
    expect(text).toContain('Dashboard:  http://localhost:8080');
    for (const v of Object.values(loaded.passwords)) if (v.length > 3) expect(text).not.toContain(v);
  });
  it('production: a port-forward for the UI and the key-shares warning', () => {
    const ctx = newDeployContext({ loaded, plan: prod, out, state, options: { preload: false, skipSamples: false, timeoutMs: 1000 } });
    const a = accessFacts(ctx);
    expect(a.vaultUiHint).toMatch(/port-forward svc\/vault 8200 \(CA: .*tls\/ca\.crt\)/);
    expect(a.login).toMatch(/5 key shares: move it offline/);
  });
});

describe('helm adapter parsing', () => {
  it('reads `helm list -o json` and compares values ignoring key order', () => {
    const listed = '[{"name":"external-secrets","namespace":"external-secrets","revision":"2","updated":"2026-11-22 13:58:01.1 +0000 UTC","status":"pending-upgrade","chart":"external-secrets-1.3.2","app_version":"v1.3.2"}]';
    expect(parseList(listed, 'external-secrets')).toEqual({ status: 'pending-upgrade', chart: 'external-secrets-1.3.2', revision: 2 });
    expect(parseList('[]', 'external-secrets')).toBeUndefined();
    expect(sameValues({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 })).toBe(true);
    expect(sameValues({ a: 1 }, { a: '1' })).toBe(false);
  });
});

describe('sample Postgres group roles: when the psql check is skipped', () => {
  const want = ['shop_app', 'shop_ro'];
  it('the same pod (name and UID) asked for no role beyond the recorded ones: known, through the state dir as written', () => {
    const state = new StateDir(mkdtempSync(join(tmpdir(), 'vaultlab-pgroles-')));
    const path = state.writeJson(GROUP_ROLES_RECORD, { pod: 'postgres-0', uid: 'u-1', roles: want } satisfies GroupRolesRecord);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const record = state.readJson<GroupRolesRecord>(GROUP_ROLES_RECORD);
    expect(rolesKnown(record, 'postgres-0', 'u-1', want)).toBe(true);
    expect(rolesKnown(record, 'postgres-0', 'u-1', ['shop_ro'])).toBe(true);
  });
  it('asked again: no record, a new pod UID (restarted, recreated volume), another pod, a role added since, a pod without a UID', () => {
    const record: GroupRolesRecord = { pod: 'postgres-0', uid: 'u-1', roles: want };
    expect(rolesKnown(undefined, 'postgres-0', 'u-1', want)).toBe(false);
    expect(rolesKnown(record, 'postgres-0', 'u-2', want)).toBe(false);
    expect(rolesKnown(record, 'other-0', 'u-1', want)).toBe(false);
    expect(rolesKnown(record, 'postgres-0', 'u-1', [...want, 'shop_admin'])).toBe(false);
    expect(rolesKnown(record, 'postgres-0', undefined, want)).toBe(false);
  });
});

describe('install: the deliveries\' releases settled together', () => {
  it('values in the jobs\' order; a failure is reported only once every job has ended, the first by order', async () => {
    const { settleAll } = await import('../../scripts/steps/install.ts');
    const later = (ms: number, v: string) => new Promise<string>((r) => setTimeout(() => r(v), ms));
    expect(await settleAll([later(20, 'ESO unchanged'), later(1, 'VSO unchanged')])).toEqual(['ESO unchanged', 'VSO unchanged']);
    let slowEnded = false;
    const slow = later(30, 'VSO installed').then((v) => ((slowEnded = true), v));
    const failing = new Promise<string>((_r, reject) => setTimeout(() => reject(new Error('ESO: webhook not Ready')), 1));
    await expect(settleAll([failing, slow])).rejects.toThrow('ESO: webhook not Ready');
    expect(slowEnded).toBe(true);
    expect(await settleAll([])).toEqual([]);
  });
});
