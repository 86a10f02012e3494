// [[kubernetes_roles]]: short-lived Kubernetes ServiceAccount tokens issued by Vault's
// `kubernetes` secrets engine. One table per Vault role; strict like every table. Checks that span
// entries (namespaces that are app namespaces, production scope) live in crossCheckKubernetesRoles.
//
// The zod schema of the table; the checks across entries and the constants are in
// kubernetes-roles.ts, which does not load zod.
import { z } from 'zod';
import { dnsLabel, duration } from './fields.ts';

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/, 'must be a Kubernetes object name: lowercase letters, digits, "-", "." or ":"');

/** One RBAC rule of a generated Role, TOML-cased (api_groups, resource_names). */
const rbacRule = z.strictObject({
  /** "" is the core group ("pods", "secrets", "serviceaccounts"). */
  api_groups: z.array(z.string()).min(1),
  resources: z.array(z.string().min(1)).min(1),
  verbs: z.array(z.enum(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', '*'])).min(1),
  resource_names: z.array(z.string().min(1)).default([]),
});

export const kubernetesRole = z.strictObject({
  /** The Vault role: kubernetes/roles/<name>, credentials at kubernetes/creds/<name>. */
  name: z.string().regex(/^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits, "-" or "_" (it is a Vault role name)'),
  /** App namespaces a token may be issued in. */
  namespaces: z.array(dnsLabel).min(1),
  /** An existing ServiceAccount (in each namespace): Vault only requests tokens for it. */
  service_account: dnsSubdomain.optional(),
  /** Rules of a Role Vault generates per lease, with its ServiceAccount and RoleBinding. */
  rules: z.array(rbacRule).min(1).optional(),
  /** An existing ClusterRole bound per lease to a generated ServiceAccount (RoleBinding in the namespace). */
  cluster_role: dnsSubdomain.optional(),
  /** With rules: generate a "Role" (default) or a "ClusterRole" (demo only). */
  kind: z.enum(['Role', 'ClusterRole']).default('Role'),
  /** Bind cluster-wide (ClusterRoleBinding) instead of in the namespace (demo only). */
  cluster_wide: z.boolean().default(false),
  /** Default token lifetime; the API server's TokenRequest floor is 10 minutes. */
  token_ttl: duration.default('10m'),
  /** Longest lifetime a caller may ask for. */
  token_max_ttl: duration.default('1h'),
  /** Token audiences; default: the API server's own. */
  audiences: z.array(z.string().min(1)).default([]),
});

export const kubernetesRoles = z.array(kubernetesRole).default([]);
export type KubernetesRoleConfig = z.infer<typeof kubernetesRole>;

