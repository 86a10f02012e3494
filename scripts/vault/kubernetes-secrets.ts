// `vault configure`, the Kubernetes secrets engine part ([[kubernetes_roles]]): its config (which
// API server, with which CA and whose token) and one Vault role per [[kubernetes_roles]] entry.
// Read first, written only on a difference, so a re-run writes nothing. The mount itself is one
// of the plan's engines (configure's step 1).
import type { VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import { generatedRoleRules, vaultRoleBody } from '../plan/kubernetes-secrets.ts';
import { durationSeconds } from '../config/duration.ts';
import { registerSecret } from '../lib/redact.ts';
import type { ConfigureItem, ConfigureOptions } from './configure.ts';
import { pruneMountRoles } from './prune-roles.ts';

export interface KubernetesSecretsTarget {
  /** The API server as Vault reaches it; default: the auth method's (ConfigureOptions.kubernetes). */
  host?: string | undefined;
  caPem?: string | undefined;
  /**
   * The token Vault calls the API with. Omitted for a Vault in the cluster, which uses its own
   * pod's token (re-read as the kubelet rotates it); given for an external Vault or a test.
   */
  jwt?: string | undefined;
  /** The account behind `jwt` was recreated since Vault got its token: replace it. */
  jwtStale?: boolean | undefined;
}

const sameSet = (a: unknown, b: string[]) => [...((a as string[] | null) ?? [])].map(String).sort().join('\u0000') === [...b].sort().join('\u0000');

export async function configureKubernetesSecrets(client: VaultClient, plan: Plan, opts: ConfigureOptions): Promise<ConfigureItem[]> {
  const ks = plan.vault.kubernetesSecrets;
  if (!ks) return [];
  const items: ConfigureItem[] = [];

  // Config: host + CA (+ explicit token with disable_local_ca_jwt). Vault never returns the
  // token, so a stored one counts as current unless the caller says its account was recreated.
  const t = opts.kubernetesSecrets;
  const host = t?.host ?? opts.kubernetes?.host;
  const caPem = t?.caPem ?? opts.kubernetes?.caPem;
  const jwt = t?.jwt;
  const name = `${ks.mount}/config`;
  if (!host || !caPem) {
    items.push({ kind: 'k8s-config', name, action: 'skipped', detail: 'no cluster given' });
  } else if (opts.kubernetes?.reviewerJwt && !jwt) {
    // An external Vault has no pod token to fall back on.
    items.push({ kind: 'k8s-config', name, action: 'skipped', detail: `external Vault: no token for ${ks.identity.namespace}/${ks.identity.serviceAccount} given` });
  } else {
    if (jwt) registerSecret(jwt);
    const r = await client.get<any>(name, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    const same =
      cur &&
      cur.kubernetes_host === host &&
      String(cur.kubernetes_ca_cert ?? '').trim() === caPem.trim() &&
      !!cur.disable_local_ca_jwt === !!jwt &&
      !(jwt && t?.jwtStale);
    if (same) items.push({ kind: 'k8s-config', name, action: 'unchanged', detail: host });
    else {
      await client.post(name, { kubernetes_host: host, kubernetes_ca_cert: caPem, disable_local_ca_jwt: !!jwt, ...(jwt ? { service_account_jwt: jwt } : {}) });
      items.push({ kind: 'k8s-config', name, action: cur ? 'updated' : 'created', detail: host });
    }
  }

  // Roles: every field compared, every field written (a mode switch clears the other fields).
  for (const role of ks.roles) {
    const path = `${ks.mount}/roles/${role.name}`;
    const r = await client.get<any>(path, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    const same =
      cur &&
      sameSet(cur.allowed_kubernetes_namespaces, role.namespaces) &&
      (cur.service_account_name ?? '') === (role.serviceAccount ?? '') &&
      (cur.kubernetes_role_name ?? '') === (role.clusterRole ?? '') &&
      cur.kubernetes_role_type === role.roleType &&
      (cur.generated_role_rules ?? '') === generatedRoleRules(role) &&
      Number(cur.token_default_ttl) === durationSeconds(role.tokenTtl) &&
      Number(cur.token_max_ttl) === durationSeconds(role.tokenMaxTtl) &&
      sameSet(cur.token_default_audiences, role.audiences);
    const detail = role.mode === 'service-account' ? `ServiceAccount ${role.serviceAccount}` : role.mode === 'rules' ? `generated ${role.roleType}` : `ClusterRole ${role.clusterRole}`;
    if (same) items.push({ kind: 'k8s-role', name: role.name, action: 'unchanged', detail });
    else {
      await client.post(path, vaultRoleBody(role, durationSeconds));
      items.push({ kind: 'k8s-role', name: role.name, action: cur ? 'updated' : 'created', detail });
    }
  }

  // Prune: vaultlab owns the whole mount (it created it for [[kubernetes_roles]]).
  if (opts.prune) items.push(...(await pruneMountRoles(client, ks.mount, new Set(ks.roles.map((r) => r.name)), 'k8s-role')));
  return items;
}
