// Kubernetes auth for real: OpenBao configured by vaultlab against the real API server (host +
// CA), ServiceAccount tokens from TokenRequest, logins to eso-<ns>-role, and the least-privilege
// production policies. No mocks on either side.
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { vaultReviewerToken } from '../harness/kube/reviewer.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { StateDir } from '../../scripts/lib/state.ts';

const CONFIG = `
[[secrets]]
path = "team-a/db"
key = "password"
format = "hex"
[[secrets]]
path = "team-b/db"
key = "password"
format = "hex"
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
`;

describe('Vault Kubernetes auth against a real API server', () => {
  let kubeServer: KubeServer;
  let bao: BaoServer;
  let kube: Kube;
  let vault: VaultClient;
  const loaded = loadConfigText(CONFIG, 'config.toml', { env: {}, profile: 'production' });
  const plan = buildPlan(loaded);

  const login = async (role: string, jwt: string) => {
    const r = await vault.post<any>('auth/kubernetes/login', { role, jwt }, { anonymous: true, retry: false, accept: [400, 403] });
    return r;
  };

  setupOrFail(async () => {
    const auditPath = join(mkdtempSync(join(tmpdir(), 'vaultlab-audit-')), 'audit.log');
    [kubeServer, bao] = await Promise.all([startKube(), startBao({ auditFile: auditPath })]);
    kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
    // What deploy applies: namespaces and ServiceAccounts, plus Vault's own reviewer account
    // allowed to call TokenReview (system:auth-delegator), as the Vault chart sets up in-cluster.
    await kube.apply([
      ...['team-a', 'team-b'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
      ...['team-a', 'team-b'].flatMap((ns) => [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'external-secrets', namespace: ns } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'someone-else', namespace: ns } },
      ]),
    ] as any);
    const reviewerJwt = await vaultReviewerToken(kube);
    const info = kube.clusterInfo();
    vault = new VaultClient({ address: bao.address });
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-state-')), 'state'));
    await vaultUp(vault, plan, state, {
      passwords: loaded.passwords,
      configure: { kubernetes: { host: info.server, caPem: info.caPem!, reviewerJwt }, auditPath },
    });
  });
  afterAll(async () => {
    vault?.close();
    await Promise.all([kubeServer?.stop(), bao?.stop()]);
  });

  it('vault configure wrote the API server host and CA into the auth config', async () => {
    const cfg = (await vault.get<any>('auth/kubernetes/config')).data.data;
    expect(cfg.kubernetes_host).toBe(kubeServer.host);
    expect(cfg.kubernetes_ca_cert.trim()).toBe(kubeServer.caPem.trim());
  });

  it("SA external-secrets in team-a, audience vault, logs in to eso-team-a-role and reads team-a's secret only", async () => {
    const jwt = await kube.createServiceAccountToken('team-a', 'external-secrets', ['vault']);
    const r = await login('eso-team-a-role', jwt);
    expect(r.status).toBe(200);
    expect(r.data.auth.policies).toContain('eso-team-a-policy');
    const asA = new VaultClient({ address: bao.address, token: r.data.auth.client_token, attempts: 1 });
    expect((await asA.kvRead('secret', 'team-a/db'))!.data.password).toMatch(/^[0-9a-f]{64}$/);
    expect(((await asA.get('secret/data/team-b/db').catch((e) => e)) as VaultApiError).status).toBe(403);
    expect(((await asA.kvPatch('secret', 'team-a/db', { password: 'x' }).catch((e) => e)) as VaultApiError).status).toBe(403);
    asA.close();
  });

  it('a token from another namespace is refused by eso-team-a-role', async () => {
    const jwt = await kube.createServiceAccountToken('team-b', 'external-secrets', ['vault']);
    const r = await login('eso-team-a-role', jwt);
    expect(r.status).toBe(403);
    expect(JSON.stringify(r.data.errors)).toMatch(/namespace not authorized|not authorized/);
  });

  it('a token of another ServiceAccount in the right namespace is refused', async () => {
    const jwt = await kube.createServiceAccountToken('team-a', 'someone-else', ['vault']);
    const r = await login('eso-team-a-role', jwt);
    expect(r.status).toBe(403);
    expect(JSON.stringify(r.data.errors)).toMatch(/service account name not authorized|not authorized/);
  });

  it('a token for another audience is refused', async () => {
    const jwt = await kube.createServiceAccountToken('team-a', 'external-secrets', ['not-vault']);
    const r = await login('eso-team-a-role', jwt);
    expect(r.status).toBe(403);
  });
});
