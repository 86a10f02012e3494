// [[kubernetes_roles]]: short-lived Kubernetes ServiceAccount tokens issued by Vault's
// `kubernetes` secrets engine. One table per Vault role; strict like every table. Checks that span
// entries (namespaces that are app namespaces, production scope) live in crossCheckKubernetesRoles.
//
// The zod schema is in kubernetes-roles-schema.ts; this module does not load zod.
import type { Config } from './schema.ts';
import { ConfigError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';
import { durationSeconds } from './duration.ts';
import type { KubernetesRoleConfig } from './kubernetes-roles-schema.ts';

export type { KubernetesRoleConfig };

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
