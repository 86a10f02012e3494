// Rotation that reaches the pod, the pure parts: which entries `vaultlab rotate ARGS` rotates (and
// its exit-2 errors), which Vault values a seed run changed, which ExternalSecrets and Deployments
// a change concerns and where their pods read it, the commands that ask a pod (no value in argv),
// when a restart has rolled out, and the injector file a simple file_template makes.
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText, BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { selectRotation } from '../../scripts/lifecycle/rotate.ts';
import { changedBySeed, everySeeded } from '../../scripts/lifecycle/converge.ts';
import { changedExternalSecrets, consumingDeployments, forceSyncPatch, restartPatch, rolledOut, RESTARTED_AT_ANNOTATION } from '../../scripts/deliveries/eso/converge.ts';
import { probeCommand, secretProbes } from '../../scripts/deliveries/pods.ts';
import { renderSimpleTemplate } from '../../scripts/deliveries/injector/plan.ts';
import { appsOf } from '../../scripts/deliveries/index.ts';
import { UsageError } from '../../scripts/lib/errors.ts';
import { podProblem } from '../../scripts/adapters/kube.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';

const bundledText = readFileSync(BUNDLED_CONFIG, 'utf8');
const plan = buildPlan(loadConfigText(bundledText, 'config.toml', { env: {} }));
const production = buildPlan(loadConfigText(bundledText, 'config.toml', { env: {}, profile: 'production' }));

function usageError(f: () => unknown): UsageError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('selectRotation (vaultlab rotate [PATH[:KEY]...])', () => {
  it('no argument: every random entry, and no literal', () => {
    const s = selectRotation(plan, []);
    const random = plan.seeding.entries.filter((e) => e.source.type === 'random');
    expect(s.entries).toEqual(random);
    expect(s.only).toContain('webapp/api:api_key');
    expect(s.only).not.toContain('argocd/admin:admin.password');
    expect(s.only).not.toContain('webapp/db:username');
  });

  it('a path: its random keys only; PATH:KEY: that key; several arguments add up', () => {
    expect(selectRotation(plan, ['webapp/db']).only).toEqual(['webapp/db:password']);
    expect(selectRotation(plan, ['reports/api:token']).only).toEqual(['reports/api:token']);
    expect(selectRotation(plan, ['webapp/api', 'reports/api']).only).toEqual(['webapp/api:api_key', 'reports/api:token']);
    expect(selectRotation(plan, ['/argocd/admin/']).only).toEqual(['argocd/admin:server.secretkey']);
  });

  it('a known value from config.toml cannot be rotated: exit 2, naming it and what to do', () => {
    const e = usageError(() => selectRotation(plan, ['webapp/db:username']));
    expect(e.message).toContain('webapp/db:username');
    expect(e.message).toContain('known value from config.toml');
    expect(e.hint).toContain('vaultlab seed');
    // argocd's bcrypt hash is a literal in the demo; its plaintext key names the same entry.
    expect(usageError(() => selectRotation(plan, ['argocd/admin:admin.password.plain'])).message).toContain('argocd/admin:admin.password ([passwords] argocd_admin)');
  });

  it('an unknown path or key: exit 2, naming it (with a suggestion, or the keys there are)', () => {
    const e = usageError(() => selectRotation(plan, ['webap/api']));
    expect(e.message).toContain('"webap/api"');
    expect(e.message).toContain('did you mean "webapp/api"?');
    const k = usageError(() => selectRotation(plan, ['webapp/db:pasword']));
    expect(k.message).toContain('has no key "pasword" (its keys: username, password)');
    usageError(() => selectRotation(plan, ['']));
  });

  it('production: every value is random, so the bcrypt hash rotates (with its plaintext, by the seed)', () => {
    expect(selectRotation(production, ['argocd/admin:admin.password.plain']).only).toEqual(['argocd/admin:admin.password']);
    expect(selectRotation(production, ['webapp/db']).only).toEqual(['webapp/db:username', 'webapp/db:password']);
  });

  it('a random value shared by name rotates everywhere it lives', () => {
    const text = bundledText.replace('[[secrets]]\npath = "webapp/db"', '[[secrets]]\npath = "webapp/db2"\nkey = "password"\npassword = "webapp_db_password"\n\n[[secrets]]\npath = "webapp/db"');
    const p = buildPlan(loadConfigText(text, 'config.toml', { env: {} }));
    expect(p.seeding.entries.filter((e) => e.group === 'webapp_db_password').length).toBe(2);
    expect(selectRotation(p, ['webapp/db:password']).only.sort()).toEqual(['webapp/db2:password', 'webapp/db:password']);
  });
});

describe('what a change concerns', () => {
  it('changedBySeed: the written keys and the plaintext beside a rotated bcrypt hash; unchanged ones not', () => {
    const changed = changedBySeed(production, {
      entries: [
        { path: 'argocd/admin', key: 'admin.password', action: 'rotated', verified: true },
        { path: 'webapp/api', key: 'api_key', action: 'unchanged', verified: true },
        { path: 'webapp/db', key: 'password', action: 'updated', verified: true },
      ],
    });
    expect(changed).toEqual([
      { path: 'argocd/admin', key: 'admin.password' },
      { path: 'argocd/admin', key: 'admin.password.plain' },
      { path: 'webapp/db', key: 'password' },
    ]);
    expect(everySeeded(plan).length).toBe(plan.seeding.entries.length + plan.seeding.entries.filter((e) => e.plaintextKey).length);
  });

  it('changedExternalSecrets: the ExternalSecrets reading a changed value, and the target keys that carry it', () => {
    const eso = appsOf(plan.apps, 'eso');
    const hit = changedExternalSecrets(eso, [{ path: 'webapp/db', key: 'password' }]);
    expect(hit.map((h) => [h.app.name, h.es.name, h.keys])).toEqual([
      ['webapp', 'webapp-db', ['DB_PASSWORD']],
      ['worker', 'worker-credentials', ['db-password']],
    ]);
    // A templated Secret changes as a whole.
    expect(changedExternalSecrets(eso, [{ path: 'registry/creds', key: 'password' }]).map((h) => h.keys)).toEqual([['.dockerconfigjson']]);
    expect(changedExternalSecrets(eso, [{ path: 'reports/api', key: 'token' }])).toEqual([]);
  });

  it('consumingDeployments: the rendered samples, env (envFrom) and files (Secret volumes), only for the changed keys', () => {
    const deps = namespaceManifests(plan, plan.namespaces.find((n) => n.name === 'webapp')!).filter((o) => o.kind === 'Deployment');
    expect(deps.map((d) => d.metadata.name).sort()).toEqual(['webapp', 'worker']);
    const c = consumingDeployments(deps, new Map([['webapp-db', ['DB_PASSWORD']], ['worker-credentials', ['db-password']]]));
    expect(c).toEqual([
      { name: 'webapp', probes: [{ container: 'app', secret: 'webapp-db', key: 'DB_PASSWORD', via: 'env', name: 'DB_PASSWORD' }] },
      { name: 'worker', probes: [{ container: 'app', secret: 'worker-credentials', key: 'db-password', via: 'file', file: '/etc/secrets/worker-credentials/db-password' }] },
    ]);
    expect(consumingDeployments(deps, new Map([['webapp-db', ['API_KEY']]])).map((d) => d.name)).toEqual(['webapp']);
    expect(consumingDeployments(deps, new Map([['other', ['x']]]))).toEqual([]);
  });

  it('secretProbes: env valueFrom, envFrom with a prefix, volume items and subPath mounts; invalid variable names skipped', () => {
    const spec = {
      volumes: [{ name: 'v', secret: { secretName: 's', items: [{ key: 'a', path: 'dir/a.txt' }] } }, { name: 'w', secret: { secretName: 's' } }],
      containers: [
        {
          name: 'c',
          env: [{ name: 'MY_B', valueFrom: { secretKeyRef: { name: 's', key: 'b' } } }, { name: 'PLAIN', value: 'x' }],
          envFrom: [{ secretRef: { name: 's' }, prefix: 'P_' }],
          volumeMounts: [{ name: 'v', mountPath: '/m/' }, { name: 'w', mountPath: '/one/b', subPath: 'b' }],
        },
      ],
      initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 's' } }] }],
    };
    expect(secretProbes(spec, new Map([['s', ['a', 'b', 'not-a-var']]]))).toEqual([
      { container: 'c', secret: 's', key: 'a', via: 'env', name: 'P_a' },
      { container: 'c', secret: 's', key: 'b', via: 'env', name: 'P_b' },
      { container: 'c', secret: 's', key: 'b', via: 'env', name: 'MY_B' },
      { container: 'c', secret: 's', key: 'a', via: 'file', file: '/m/dir/a.txt' },
      { container: 'c', secret: 's', key: 'b', via: 'file', file: '/one/b' },
    ]);
  });

  it('probeCommand: the argv names the variable or the file, never a value', () => {
    expect(probeCommand({ container: 'app', secret: 's', key: 'API_KEY', via: 'env', name: 'API_KEY' })).toEqual(['sh', '-c', 'test -n "${API_KEY+set}" && printf %s "$API_KEY" | sha256sum']);
    expect(probeCommand({ container: 'app', secret: 's', key: 'k', via: 'file', file: '/etc/secrets/s/k' })).toEqual(['sha256sum', '/etc/secrets/s/k']);
    expect(() => probeCommand({ container: 'app', secret: 's', key: 'k', via: 'env', name: 'A;rm -rf /' })).toThrow();
  });

  it('the patches: force-sync on the ExternalSecret, kubectl\'s restartedAt on the pod template', () => {
    expect(forceSyncPatch('T')).toEqual({ metadata: { annotations: { 'force-sync': 'T' } } });
    expect(restartPatch('T')).toEqual({ spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'T' } } } } });
  });

  it('rolledOut: the stamped template observed, every replica updated and available, no old one left', () => {
    const dep = (status: any, stamp = 'T', generation = 3) => ({ metadata: { generation }, spec: { replicas: 1, template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: stamp } } } }, status });
    expect(rolledOut(dep({ observedGeneration: 3, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }), 'T')).toBe(true);
    expect(rolledOut(dep({ observedGeneration: 2, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }), 'T')).toBe(false);
    expect(rolledOut(dep({ observedGeneration: 3, updatedReplicas: 1, replicas: 2, availableReplicas: 1 }), 'T')).toBe(false);
    expect(rolledOut(dep({ observedGeneration: 3, updatedReplicas: 1, replicas: 1, availableReplicas: 0 }), 'T')).toBe(false);
    expect(rolledOut(dep({ observedGeneration: 3, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }, 'older'), 'T')).toBe(false);
  });
});

describe('renderSimpleTemplate (the injector file a file_template makes, for digests)', () => {
  it('renders {{ .KEY }} and {{ index . "key" }} with trim markers; anything else is undefined', () => {
    const bundled = appsOf(plan.apps, 'injector')[0]!.files.find((f) => f.fileTemplate)!;
    expect(renderSimpleTemplate(bundled.fileTemplate!, { DB_PASSWORD: 'pw' })).toBe('postgresql://reports:pw@postgres.reports.svc:5432/reports');
    expect(renderSimpleTemplate('a={{ index . "db-password" }}\n{{- .B -}}\n  c', { 'db-password': '1', B: '2' })).toBe('a=12c');
    expect(renderSimpleTemplate('{{ .A | upper }}', { A: 'x' })).toBeUndefined();
    expect(renderSimpleTemplate('{{ if .A }}y{{ end }}', { A: 'x' })).toBeUndefined();
    expect(renderSimpleTemplate('{{ .MISSING }}', {})).toBeUndefined();
    expect(renderSimpleTemplate('no actions', {})).toBe('no actions');
  });
});

describe('vaultlab rotate (CLI)', () => {
  const cli = (args: string[], cwd: string) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', VAULTLAB_PROFILE: '' } });
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-rotate-'));
  writeFileSync(join(dir, 'config.toml'), bundledText);

  it('bad arguments are exit 2 before any cluster or Vault is reached, also with --json', () => {
    const r = cli(['rotate', 'nope/path'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no [[secrets]] entry in config.toml has path "nope/path"');
    const j = cli(['rotate', 'webapp/db:username', '--json'], dir);
    expect(j.status).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 2 });
    expect(JSON.parse(j.stdout).error).toContain('known value from config.toml');
  });

  it('is listed in --help, and its own --help shows the argument form', () => {
    expect(cli(['--help'], dir).stdout).toMatch(/^ {2}rotate +Rotate random secret values/m);
    expect(cli(['rotate', '--help'], dir).stdout).toContain('Usage: vaultlab rotate [options] [PATH[:KEY]...]');
  });
});

describe('podProblem while pods roll (restarts make new pods; a busy kubelet may not have its Secret cache yet)', () => {
  const pod = (reason: string, message: string) => ({ metadata: { name: 'p', namespace: 'n' }, status: { containerStatuses: [{ name: 'app', image: 'busybox', restartCount: 0, state: { waiting: { reason, message } } }] } });
  it("the kubelet's cache sync timing out is transient; a missing Secret is not", () => {
    expect(podProblem(pod('CreateContainerConfigError', 'failed to sync secret cache: timed out waiting for the condition'))).toBeUndefined();
    expect(podProblem(pod('CreateContainerConfigError', 'secret "webapp-db" not found'))).toMatchObject({ reason: 'CreateContainerConfigError', container: 'app' });
    expect(podProblem(pod('ImagePullBackOff', 'Back-off pulling image'))).toMatchObject({ reason: 'ImagePullBackOff' });
  });
});
