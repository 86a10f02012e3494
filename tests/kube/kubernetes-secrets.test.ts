// Vault's Kubernetes secrets engine for real: OpenBao configured by vaultlab ([[kubernetes_roles]])
// against the real API server (RBAC authorization), with Vault's ServiceAccount holding only the
// Role vaultlab renders for it. Issued tokens are checked by TokenReview and by what the API
// server lets them do; generated ServiceAccounts/Roles/RoleBindings live exactly as long as
// their lease. No mocks on either side.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, kubeconfigYaml, type KubeServer } from '../harness/kube/server.ts';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { vaultReviewerToken } from '../harness/kube/reviewer.ts';
import { Kube, KubeError } from '../../scripts/adapters/kube.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { loadConfigText, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { leaseReport } from '../../scripts/lifecycle/lease-status.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { kubernetesSecretsRbac } from '../../scripts/plan/manifests.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { configureVault, type ConfigureOptions } from '../../scripts/vault/configure.ts';
import { issueKubernetesToken, revokeKubernetesLease } from '../../scripts/vault/kubernetes-creds.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { VaultlabError } from '../../scripts/lib/errors.ts';

const CONFIG = `
[[secrets]]
path = "team-a/db"
key = "password"
[[secrets]]
path = "team-b/db"
key = "password"
[[apps]]
name = "a"
namespace = "team-a"
[[apps.external_secrets]]
name = "db"
data = [{ secret_key = "password", path = "team-a/db", key = "password" }]
[[apps]]
name = "b"
namespace = "team-b"
[[apps.external_secrets]]
name = "db"
data = [{ secret_key = "password", path = "team-b/db", key = "password" }]

[[kubernetes_roles]]
name = "deployer"
namespaces = ["team-a"]
service_account = "deployer"

[[kubernetes_roles]]
name = "pod-reader"
namespaces = ["team-a", "team-b"]
rules = [{ api_groups = [""], resources = ["pods"], verbs = ["get", "list"] }]
token_ttl = "15m"

[[kubernetes_roles]]
name = "cm-viewer"
namespaces = ["team-b"]
cluster_role = "vaultlab-test-configmap-viewer"
`;

const RBAC = 'rbac.authorization.k8s.io/v1';

describe('Kubernetes secrets engine against a real API server', () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let vault: VaultClient;
  let configureOptions: ConfigureOptions;
  /** ESO's Vault logins in team-a and team-b: what an app in that namespace may do. */
  let a: VaultClient;
  let b: VaultClient;
  const tmp = mkdtempSync(join(tmpdir(), 'vaultlab-k8s-secrets-'));
  const loaded = loadConfigText(CONFIG, 'config.toml', { env: {}, profile: 'production' });
  const plan = buildPlan(loaded);

  /** A client of the API server that authenticates with `token` only. */
  const asToken = async (token: string, name: string) => {
    const file = join(tmp, `${name}.kubeconfig`);
    writeFileSync(file, kubeconfigYaml(kubeServer.host, kubeServer.caPem, token), { mode: 0o600 });
    return Kube.connect({ kubeconfig: file });
  };
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (err) {
      if (err instanceof KubeError) return err.status;
      throw err;
    }
  };
  const review = async (token: string) => {
    const { k8s, kc } = await kube.client();
    const api = kc.makeApiClient(k8s.AuthenticationV1Api);
    const r = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
    return r.status!;
  };
  /**
   * Seconds until the API server stops accepting a token whose ServiceAccount was deleted: it
   * caches successful token authentications for 10 s (kube-apiserver's token success cache).
   */
  const secondsUntilRejected = async (token: string) => {
    const t0 = Date.now();
    while ((await review(token)).authenticated) {
      if (Date.now() - t0 > 20_000) throw new Error('token still authenticates 20 s after its ServiceAccount was deleted');
      await new Promise((r) => setTimeout(r, 500));
    }
    return (Date.now() - t0) / 1000;
  };
  /** An ESO login for a namespace (as the SecretStore does): a Vault client with that namespace's policy. */
  const esoVault = async (ns: string) => {
    const jwt = await kube.createServiceAccountToken(ns, 'external-secrets', ['vault']);
    const r = await vault.post<any>('auth/kubernetes/login', { role: `eso-${ns}-role`, jwt }, { anonymous: true, retry: false });
    return new VaultClient({ address: bao.address, token: r.data.auth.client_token, attempts: 1 });
  };

  /** The Vault token of an ESO login for a namespace (what `vaultlab creds` gets as VAULT_TOKEN). */
  const esoToken = async (ns: string) => {
    const jwt = await kube.createServiceAccountToken(ns, 'external-secrets', ['vault']);
    const r = await vault.post<any>('auth/kubernetes/login', { role: `eso-${ns}-role`, jwt }, { anonymous: true, retry: false });
    return r.data.auth.client_token as string;
  };

  setupOrFail(async () => {
    const auditPath = join(tmp, 'audit.log');
    [kubeServer, bao] = await Promise.all([startKube(), startBao({ auditFile: auditPath })]);
    kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
    await kube.apply([
      ...['team-a', 'team-b'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
      ...['team-a', 'team-b'].map((namespace) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'external-secrets', namespace } })),
      // The existing account of role "deployer", with what its own Role allows.
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'deployer', namespace: 'team-a' } },
      { apiVersion: RBAC, kind: 'Role', metadata: { name: 'deployer', namespace: 'team-a' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] },
      {
        apiVersion: RBAC,
        kind: 'RoleBinding',
        metadata: { name: 'deployer', namespace: 'team-a' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deployer' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'team-a' }],
      },
      // The existing ClusterRole of role "cm-viewer".
      { apiVersion: RBAC, kind: 'ClusterRole', metadata: { name: 'vaultlab-test-configmap-viewer' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
      // What deploy applies for the secrets engine: Vault's Role + RoleBinding per namespace.
      ...['team-a', 'team-b'].flatMap((ns) => kubernetesSecretsRbac(plan, ns)),
    ] as any);
    // Vault's own ServiceAccount (vault/vault): TokenReview for the auth method, and the
    // secrets engine's API calls with exactly the Roles above (no other binding).
    const vaultJwt = await vaultReviewerToken(kube);
    const info = kube.clusterInfo();
    vault = new VaultClient({ address: bao.address });
    const state = new StateDir(join(tmp, 'state'));
    configureOptions = { kubernetes: { host: info.server, caPem: info.caPem!, reviewerJwt: vaultJwt }, kubernetesSecrets: { jwt: vaultJwt }, auditPath };
    const up = await vaultUp(vault, plan, state, { passwords: loaded.passwords, configure: configureOptions });
    // Production: root is revoked; the rest runs as the vaultlab-setup token, as day-2 runs do.
    expect(up.setupToken).toBe('created');
    [a, b] = await Promise.all([esoVault('team-a'), esoVault('team-b')]);
  });
  afterAll(async () => {
    for (const c of [vault, a, b]) c?.close();
    await Promise.all([kubeServer?.stop(), bao?.stop()]);
  });

  it('vault configure enabled kubernetes/, configured it and wrote the three roles; a re-run writes nothing', async () => {
    const mounts = (await vault.get<any>('sys/mounts')).data.data;
    expect(mounts['kubernetes/'].type).toBe('kubernetes');
    const cfg = (await vault.get<any>('kubernetes/config')).data.data;
    expect(cfg.kubernetes_host).toBe(kubeServer.host);
    expect(cfg.disable_local_ca_jwt).toBe(true);
    const role = (await vault.get<any>('kubernetes/roles/pod-reader')).data.data;
    expect(role.allowed_kubernetes_namespaces).toEqual(['team-a', 'team-b']);
    expect(role.token_default_ttl).toBe(900);
    expect(JSON.parse(role.generated_role_rules)).toEqual({ rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] });

    const before = vault.writes;
    const items = await configureVault(vault, plan, configureOptions);
    expect(vault.writes - before).toBe(0);
    const k8s = items.filter((i) => i.kind.startsWith('k8s-'));
    expect(k8s.map((i) => `${i.kind} ${i.name} ${i.action}`)).toEqual([
      'k8s-config kubernetes/config unchanged',
      'k8s-role deployer unchanged',
      'k8s-role pod-reader unchanged',
      'k8s-role cm-viewer unchanged',
    ]);
  });

  it("each namespace's ESO policy issues only its own roles, only in its own namespace", async () => {
    {
      const denied = async (p: Promise<unknown>) => ((await p.catch((e) => e)) as VaultlabError).message;
      // team-b's policy has no deployer path at all; team-a's may not ask for team-b.
      expect(await denied(issueKubernetesToken(b, { role: 'deployer', namespace: 'team-a' }))).toMatch(/may not issue credentials from kubernetes\/creds\/deployer/);
      expect(await denied(issueKubernetesToken(a, { role: 'pod-reader', namespace: 'team-b' }))).toMatch(/may not issue/);
      expect(await denied(issueKubernetesToken(a, { role: 'cm-viewer', namespace: 'team-b' }))).toMatch(/may not issue/);
      // Audiences are not the caller's choice (allowed_parameters names only namespace and ttl).
      const r = await a.post('kubernetes/creds/deployer', { kubernetes_namespace: 'team-a', audiences: ['vault'] }, { retry: false }).catch((e) => e);
      expect((r as VaultApiError).status).toBe(403);
      const t = await issueKubernetesToken(a, { role: 'deployer', namespace: 'team-a' });
      expect(t.serviceAccountName).toBe('deployer');
      await revokeKubernetesLease(vault, t.leaseId);
    }
  });

  it('the production setup token configures the engine but cannot issue credentials', async () => {
    const err = (await issueKubernetesToken(vault, { role: 'deployer', namespace: 'team-a' }).catch((e) => e)) as VaultlabError;
    expect(err.message).toMatch(/may not issue credentials/);
  });

  it('an existing ServiceAccount: the token authenticates as it, can do what its Role allows, 403 elsewhere', async () => {
    const t = await issueKubernetesToken(a, { role: 'deployer', namespace: 'team-a' });
    expect(t.leaseId).toMatch(/^kubernetes\/creds\/deployer\//);
    expect(t.leaseDuration).toBe(600);
    const tr = await review(t.token);
    expect(tr.authenticated).toBe(true);
    expect(tr.user?.username).toBe('system:serviceaccount:team-a:deployer');
    const as = await asToken(t.token, 'deployer');
    expect(await status(as.list('v1', 'ConfigMap', 'team-a'))).toBe(200);
    expect(await status(as.list('v1', 'Secret', 'team-a'))).toBe(403);
    expect(await status(as.list('v1', 'ConfigMap', 'team-b'))).toBe(403);
    // The JWT carries the lease's lifetime.
    const claims = JSON.parse(Buffer.from(t.token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.exp - claims.iat).toBe(600);
    await revokeKubernetesLease(vault, t.leaseId);
    // The account is not Vault's: it stays, and so does a TokenRequest token until it expires.
    expect(await kube.get('v1', 'ServiceAccount', 'team-a', 'deployer')).toBeDefined();
  });

  it('generated rules: ServiceAccount, Role and RoleBinding exist for the lease, the token can read pods only there, all gone after revocation', async () => {
    const t = await issueKubernetesToken(a, { role: 'pod-reader', namespace: 'team-a' });
    expect(t.leaseDuration).toBe(900);
    const sa = t.serviceAccountName;
    expect(sa).toMatch(/^v-/);
    expect(await kube.get('v1', 'ServiceAccount', 'team-a', sa)).toBeDefined();
    const role = await kube.getJson(RBAC, 'Role', 'team-a', sa);
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }]);
    const binding = await kube.getJson(RBAC, 'RoleBinding', 'team-a', sa);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'team-a' }]);

    expect((await review(t.token)).user?.username).toBe(`system:serviceaccount:team-a:${sa}`);
    const as = await asToken(t.token, 'pod-reader');
    expect(await status(as.list('v1', 'Pod', 'team-a'))).toBe(200);
    expect(await status(as.list('v1', 'Secret', 'team-a'))).toBe(403);
    expect(await status(as.list('v1', 'Pod', 'team-b'))).toBe(403);

    await revokeKubernetesLease(vault, t.leaseId);
    expect(await kube.get('v1', 'ServiceAccount', 'team-a', sa)).toBeUndefined();
    expect(await kube.getJson(RBAC, 'Role', 'team-a', sa)).toBeUndefined();
    expect(await kube.getJson(RBAC, 'RoleBinding', 'team-a', sa)).toBeUndefined();
    // Its account is gone, so the token stops authenticating (after the API server's 10 s
    // authentication cache), long before its 15 minutes are up.
    expect(await secondsUntilRejected(t.token)).toBeLessThan(15);
    expect(await status(as.list('v1', 'Pod', 'team-a'))).toBe(401);
  });

  it('an existing ClusterRole, bound in the namespace per lease: configmaps there, nowhere else; binding gone after revocation', async () => {
    const t = await issueKubernetesToken(b, { role: 'cm-viewer', namespace: 'team-b' });
    const sa = t.serviceAccountName;
    const binding = await kube.getJson(RBAC, 'RoleBinding', 'team-b', sa);
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'vaultlab-test-configmap-viewer' });
    const as = await asToken(t.token, 'cm-viewer');
    expect(await status(as.list('v1', 'ConfigMap', 'team-b'))).toBe(200);
    expect(await status(as.list('v1', 'ConfigMap', 'team-a'))).toBe(403);
    expect(await status(as.list('v1', 'Pod', 'team-b'))).toBe(403);
    await revokeKubernetesLease(vault, t.leaseId);
    expect(await kube.getJson(RBAC, 'RoleBinding', 'team-b', sa)).toBeUndefined();
    expect(await kube.get('v1', 'ServiceAccount', 'team-b', sa)).toBeUndefined();
    expect(await secondsUntilRejected(t.token)).toBeLessThan(15);
    expect(await status(as.list('v1', 'ConfigMap', 'team-b'))).toBe(401);
  });

  it("Vault's own ServiceAccount can do no more than the rendered Role: a namespace without one is refused", async () => {
    // pod-reader allows team-b, but a Role of Vault's only exists where a kubernetes role allows it:
    // remove team-b's and the API server refuses Vault (no silent cluster-wide fallback).
    const [role] = kubernetesSecretsRbac(plan, 'team-b');
    await kube.delete(RBAC, 'Role', 'team-b', role!.metadata.name);
    try {
      const err = (await issueKubernetesToken(b, { role: 'pod-reader', namespace: 'team-b' }).catch((e) => e)) as VaultApiError;
      expect(err).toBeInstanceOf(VaultApiError);
      expect(err.message).toMatch(/forbidden/i);
    } finally {
      await kube.apply([role!]);
    }
  });

  it('TTL: the lease and the JWT share one lifetime; below the API server floor of 10 minutes nothing is issued', async () => {
    const t = await issueKubernetesToken(a, { role: 'pod-reader', namespace: 'team-a', ttl: '20m' });
    expect(t.leaseDuration).toBe(1200);
    const claims = JSON.parse(Buffer.from(t.token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.exp - claims.iat).toBe(1200);
    await revokeKubernetesLease(vault, t.leaseId);
    // TokenRequest refuses expirationSeconds < 600; Vault passes that refusal on.
    const err = (await issueKubernetesToken(a, { role: 'deployer', namespace: 'team-a', ttl: 60 }).catch((e) => e)) as VaultApiError;
    expect(err).toBeInstanceOf(VaultApiError);
    expect(err.message).toMatch(/10 minutes|expirationSeconds|600/);
  });

  it('`vaultlab creds` issues a ServiceAccount token (--namespace), prints the account, lease and expiry, the token only with --show-secret; status lists the lease; --revoke deletes the account', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-k8s-creds-'));
    writeFileSync(join(dir, 'config.toml'), CONFIG);
    const token = await esoToken('team-a');
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, '--config', join(dir, 'config.toml'), '--profile', 'production', '--vault-addr', bao.address, '--state-dir', join(dir, 'state')], {
        encoding: 'utf8',
        cwd: PROJECT_ROOT,
        env: { ...process.env, NO_COLOR: '1', VAULT_ADDR: '', BAO_ADDR: '', BAO_TOKEN: '', VAULT_TOKEN: token },
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const ambiguous = run(['creds', 'pod-reader']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/allows several namespaces: give --namespace/);
    const issued = run(['creds', 'pod-reader', '--namespace', 'team-a', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    const out = JSON.parse(issued.stdout);
    expect(out).toMatchObject({ ok: true, kind: 'kubernetes', role: 'pod-reader', leaseDuration: 900 });
    expect(out.token).toBeUndefined();
    expect(out.serviceAccount).toMatch(/^team-a\/v-/);
    const sa = out.serviceAccount.split('/')[1];
    expect(await kube.get('v1', 'ServiceAccount', 'team-a', sa)).toBeDefined();

    const text = run(['creds', 'deployer', '--show-secret']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/kubernetes role deployer: ServiceAccount team-a\/deployer/);
    const jwt = text.stdout.trim().split('\n').pop()!;
    expect((await review(jwt)).user?.username).toBe('system:serviceaccount:team-a:deployer');
    expect(text.stderr).not.toContain(jwt);

    // status, as the setup token: one active lease on each role used above.
    const report = await leaseReport(vault, plan);
    expect(report.roles.filter((r) => r.active > 0).map((r) => `${r.kind}/${r.role} ${r.active}`).sort()).toEqual(['kubernetes/deployer 1', 'kubernetes/pod-reader 1']);
    expect(report.checks.every((c) => c.ok)).toBe(true);

    // An app's token may issue but not revoke; the setup token (from the state dir) may.
    const refused = run(['creds', '--revoke', out.leaseId]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/may not revoke kubernetes\/creds\/pod-reader\/.*\n.*vaultlab-setup token/);
    const revoked = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), 'creds', '--revoke', out.leaseId, '--config', join(dir, 'config.toml'), '--profile', 'production', '--vault-addr', bao.address, '--state-dir', join(tmp, 'state')], {
      encoding: 'utf8',
      cwd: PROJECT_ROOT,
      env: { ...process.env, NO_COLOR: '1', VAULT_ADDR: '', BAO_ADDR: '', BAO_TOKEN: '', VAULT_TOKEN: '' },
    });
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await kube.get('v1', 'ServiceAccount', 'team-a', sa)).toBeUndefined();
    const lease = /lease {4}(\S+)/.exec(text.stdout)![1]!;
    await revokeKubernetesLease(vault, lease);
  });
});
