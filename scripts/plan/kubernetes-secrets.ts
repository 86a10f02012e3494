// [[kubernetes_roles]] -> the plan of Vault's `kubernetes` secrets engine, and the exact RBAC
// Vault's own ServiceAccount needs for it. Pure: no I/O.
import type { Config } from '../config/schema.ts';
import { KUBERNETES_SECRETS_MOUNT, type KubernetesRoleConfig } from '../config/kubernetes-roles.ts';
import type { EnginePlan, KubernetesRolePlan, KubernetesSecretsPlan, RbacRule } from './types.ts';

/** An external Vault has no pod token: it uses this account's (deploy creates it, like the token reviewer). */
export const EXTERNAL_IDENTITY = { namespace: 'kube-system', serviceAccount: 'vaultlab-kubernetes-secrets' } as const;
/** Name of the Role/RoleBinding (per namespace) and ClusterRole/ClusterRoleBinding (demo, cluster-wide) vaultlab renders for Vault. */
export const VAULT_RBAC_NAME = 'vaultlab-vault-kubernetes-secrets';

const RBAC = 'rbac.authorization.k8s.io';

function rolePlan(r: KubernetesRoleConfig): KubernetesRolePlan {
  const mode = r.service_account !== undefined ? 'service-account' : r.rules !== undefined ? 'rules' : 'cluster-role';
  return {
    name: r.name,
    namespaces: [...r.namespaces].sort(),
    mode,
    serviceAccount: r.service_account,
    rules: (r.rules ?? []).map((x) => ({
      apiGroups: x.api_groups,
      resources: x.resources,
      verbs: x.verbs,
      ...(x.resource_names.length ? { resourceNames: x.resource_names } : {}),
    })),
    clusterRole: r.cluster_role,
    roleType: mode === 'cluster-role' ? 'ClusterRole' : r.kind,
    clusterWide: r.cluster_wide,
    tokenTtl: r.token_ttl,
    tokenMaxTtl: r.token_max_ttl,
    audiences: r.audiences,
  };
}

export function buildKubernetesSecrets(config: Config): KubernetesSecretsPlan | undefined {
  if (config.kubernetes_roles.length === 0) return undefined;
  const external = config.vault.address !== undefined;
  return {
    mount: KUBERNETES_SECRETS_MOUNT,
    // The chart names the server's ServiceAccount after the release (fullnameOverride).
    identity: external ? { ...EXTERNAL_IDENTITY } : { namespace: config.vault.namespace, serviceAccount: config.vault.release },
    roles: config.kubernetes_roles.map(rolePlan),
  };
}

export function kubernetesSecretsEngine(ks: KubernetesSecretsPlan): EnginePlan {
  return { path: ks.mount, type: 'kubernetes', options: {}, description: 'vaultlab: short-lived Kubernetes ServiceAccount tokens' };
}

/** generated_role_rules as Vault stores it: a deterministic JSON `{"rules": [...]}` (compared byte for byte on re-runs). */
export function generatedRoleRules(role: KubernetesRolePlan): string {
  return role.mode === 'rules' ? JSON.stringify({ rules: role.rules }) : '';
}

/** The Vault role's fields, as written to <mount>/roles/<name>; every field given, so a mode switch clears the others. */
export function vaultRoleBody(role: KubernetesRolePlan, seconds: (d: string) => number): Record<string, unknown> {
  return {
    allowed_kubernetes_namespaces: role.namespaces,
    service_account_name: role.serviceAccount ?? '',
    kubernetes_role_name: role.clusterRole ?? '',
    kubernetes_role_type: role.roleType,
    generated_role_rules: generatedRoleRules(role),
    token_default_ttl: seconds(role.tokenTtl),
    token_max_ttl: seconds(role.tokenMaxTtl),
    token_default_audiences: role.audiences,
  };
}

const dedupe = (rules: RbacRule[]): RbacRule[] => {
  const seen = new Set<string>();
  return rules.filter((r) => {
    const k = JSON.stringify(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
};

/**
 * What Vault may do in namespace `ns`, for the roles that allow it: request tokens for the named
 * accounts; for generated ones create/delete ServiceAccounts and RoleBindings (and Roles, whose
 * rules Vault must hold itself: RBAC lets nobody grant what they lack), bind the named ClusterRole.
 */
export function vaultNamespaceRules(ks: KubernetesSecretsPlan, ns: string): RbacRule[] {
  const rules: RbacRule[] = [];
  for (const role of ks.roles.filter((r) => r.namespaces.includes(ns))) {
    if (role.mode === 'service-account') {
      rules.push({ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: [role.serviceAccount!] });
      continue;
    }
    rules.push({ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['create', 'delete'] });
    rules.push({ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] });
    if (!role.clusterWide) rules.push({ apiGroups: [RBAC], resources: ['rolebindings'], verbs: ['create', 'delete'] });
    if (role.mode === 'rules' && role.roleType === 'Role') {
      rules.push({ apiGroups: [RBAC], resources: ['roles'], verbs: ['create', 'delete'] }, ...role.rules);
    }
    if (role.mode === 'cluster-role' && !role.clusterWide) {
      rules.push({ apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['bind'], resourceNames: [role.clusterRole!] });
    }
  }
  return dedupe(rules);
}

/** Cluster-scoped rights, only for the demo-only roles: generated ClusterRoles and ClusterRoleBindings. Empty otherwise. */
export function vaultClusterRules(ks: KubernetesSecretsPlan): RbacRule[] {
  const rules: RbacRule[] = [];
  for (const role of ks.roles) {
    if (role.mode === 'rules' && role.roleType === 'ClusterRole') {
      rules.push({ apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['create', 'delete'] }, ...role.rules);
    }
    if (role.clusterWide) {
      rules.push({ apiGroups: [RBAC], resources: ['clusterrolebindings'], verbs: ['create', 'delete'] });
      if (role.mode === 'cluster-role') rules.push({ apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['bind'], resourceNames: [role.clusterRole!] });
    }
  }
  return dedupe(rules);
}

/** The roles a namespace's policy may issue credentials from (demo's shared policy: every role). */
export function credsGrants(ks: KubernetesSecretsPlan | undefined, ns: string | undefined): { role: string; namespaces: string[]; clusterWide: boolean }[] {
  if (!ks) return [];
  return ks.roles
    .filter((r) => ns === undefined || r.namespaces.includes(ns))
    .map((r) => ({ role: r.name, namespaces: ns === undefined ? r.namespaces : [ns], clusterWide: r.clusterWide }));
}
