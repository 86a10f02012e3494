// [[kubernetes_roles]]: short-lived Kubernetes ServiceAccount tokens issued by Vault's
// `kubernetes` secrets engine. One table per Vault role; strict like every table. Checks that span
// entries (namespaces that are app namespaces, production scope) live in crossCheckKubernetesRoles.
import { z } from 'zod';
import type { Config } from './schema.ts';
import { ConfigError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';
import { dnsLabel, duration, durationSeconds } from './fields.ts';

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

/** Where the secrets engine is mounted (auth methods live under auth/, so auth/kubernetes does not clash). */
export const KUBERNETES_SECRETS_MOUNT = 'kubernetes';

/** The TokenRequest API refuses expirationSeconds below 600 (k8s.io/kubernetes validation). */
export const TOKEN_REQUEST_MIN_SECONDS = 600;

type Where = (path: (string | number)[]) => string;

export function crossCheckKubernetesRoles(config: Config, where: Where): ConfigError[] {
  const errors: ConfigError[] = [];
  const err = (path: (string | number)[], message: string, hint?: string) => errors.push(new ConfigError(where(path), message, hint));
  const production = config.profile.name === 'production';
  const appNamespaces = [...new Set(config.apps.filter((a) => a.enabled).map((a) => a.namespace))].sort();
  const names = new Map<string, number>();
  if (config.kubernetes_roles.length > 0 && config.vault.kv_mount === KUBERNETES_SECRETS_MOUNT) {
    err(['vault', 'kv_mount'], `"${KUBERNETES_SECRETS_MOUNT}" is where the Kubernetes secrets engine is mounted when [[kubernetes_roles]] are set`, 'Choose another vault.kv_mount (default "secret").');
  }

  config.kubernetes_roles.forEach((r, i) => {
    const at = (...p: (string | number)[]) => ['kubernetes_roles', i, ...p];
    if (names.has(r.name)) err(at('name'), `duplicate kubernetes role "${r.name}" (also kubernetes_roles[${names.get(r.name)}])`);
    else names.set(r.name, i);

    const modes = [r.service_account !== undefined && 'service_account', r.rules !== undefined && 'rules', r.cluster_role !== undefined && 'cluster_role'].filter(Boolean) as string[];
    if (modes.length === 0) {
      err(at('name'), `kubernetes role "${r.name}" sets none of service_account, rules or cluster_role`,
        'Set service_account = "<existing account>" (tokens only), or rules = [...] / cluster_role = "<name>" (Vault creates a ServiceAccount and a RoleBinding per lease).');
    } else if (modes.length > 1) {
      err(at(modes[1]!), `sets both ${modes[0]} and ${modes[1]}: a role either issues tokens for an existing ServiceAccount or generates one`, `Keep one of ${modes.join(', ')}.`);
    }

    r.namespaces.forEach((ns, ni) => {
      if (!appNamespaces.includes(ns)) {
        const guess = suggest(ns, appNamespaces);
        err(at('namespaces', ni), `"${ns}" is not the namespace of an enabled [[apps]] entry${guess ? `; did you mean "${guess}"?` : ''}`,
          appNamespaces.length ? `Tokens are issued only in app namespaces: ${appNamespaces.join(', ')}.` : 'Add an [[apps]] entry with that namespace first.');
      }
    });
    if (new Set(r.namespaces).size !== r.namespaces.length) err(at('namespaces'), 'lists a namespace twice');

    if (r.kind === 'ClusterRole' && r.rules === undefined) {
      err(at('kind'), 'kind only applies to generated rules (a cluster_role is always a ClusterRole)', 'Remove kind, or set rules.');
    }
    if (r.cluster_wide && r.service_account !== undefined) err(at('cluster_wide'), 'cluster_wide applies to generated bindings, not to an existing service_account');
    if (r.cluster_wide && r.rules !== undefined && r.kind === 'Role') {
      err(at('cluster_wide'), 'a ClusterRoleBinding cannot refer to a Role', 'Set kind = "ClusterRole" as well (demo only), or remove cluster_wide.');
    }

    const ttl = durationSeconds(r.token_ttl);
    const max = durationSeconds(r.token_max_ttl);
    if (ttl < TOKEN_REQUEST_MIN_SECONDS) {
      err(at('token_ttl'), `${r.token_ttl} is below 10m: the Kubernetes TokenRequest API issues no token shorter than 10 minutes`, 'Use token_ttl = "10m" or longer; revoke a lease to end it sooner.');
    }
    if (max < ttl) err(at('token_max_ttl'), `${r.token_max_ttl} is shorter than token_ttl ${r.token_ttl}`, 'Make token_max_ttl at least token_ttl.');

    if (production) {
      const why = 'in production a kubernetes role grants no more than its own namespace';
      if (r.cluster_wide) err(at('cluster_wide'), `cluster_wide = true binds cluster-wide (ClusterRoleBinding); ${why}`, 'Remove cluster_wide: the binding is a RoleBinding in the namespace.');
      if (r.rules !== undefined && r.kind === 'ClusterRole') err(at('kind'), `kind = "ClusterRole" makes Vault create cluster-scoped roles; ${why}`, 'Use kind = "Role" (the default).');
      r.rules?.forEach((rule, ri) => {
        for (const field of ['verbs', 'resources', 'api_groups'] as const) {
          if (rule[field].includes('*')) {
            err(at('rules', ri, field), `"*" in ${field} grants everything; ${why}, and names what it may do`, `List the ${field === 'api_groups' ? 'API groups' : field} explicitly.`);
          }
        }
      });
    }
  });
  return errors;
}
