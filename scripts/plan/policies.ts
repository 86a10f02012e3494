// Vault policies as HCL text. Deterministic: the same inputs give the same bytes, so
// `vault configure` can compare them with what Vault holds and write only on a difference.

const header = (what: string) => `# Managed by vaultlab: ${what}. Edit config.toml, not this policy.\n`;

/** demo: one broad read policy shared by every namespace's ESO role (as in the reference setup). */
export function broadEsoPolicyHcl(mount: string): string {
  return (
    header('demo profile, read access to every seeded secret') +
    `path "${mount}/data/*" {\n  capabilities = ["read"]\n}\n\n` +
    `path "${mount}/metadata/*" {\n  capabilities = ["read", "list"]\n}\n`
  );
}

/** production: read-only, limited to the namespace's own subtree. */
export function policyHcl(mount: string, ns: string): string {
  return (
    header(`production profile, namespace "${ns}" reads only ${mount}/${ns}/*`) +
    `path "${mount}/data/${ns}/*" {\n  capabilities = ["read"]\n}\n\n` +
    `path "${mount}/metadata/${ns}/*" {\n  capabilities = ["read", "list"]\n}\n`
  );
}

/** One policy path block: `path "<path>" { capabilities = [...] }`. */
export const pathBlock = (path: string, caps: string[]): string => `path "${path}" {\n  capabilities = [${caps.map((c) => `"${c}"`).join(', ')}]\n}\n`;

/**
 * production: the limited token day-2 runs use instead of root. It manages mounts, auth roles,
 * policies and audit devices and may write secrets, but it cannot read a secret's value
 * (seeding sees existing keys through the KV v2 subkeys endpoint).
 */
export function setupPolicyHcl(mount: string, authMount: string): string {
  return [
    header('production setup token; manages configuration, cannot read secret values'),
    pathBlock('sys/mounts', ['read']),
    pathBlock('sys/mounts/*', ['create', 'read', 'update']),
    pathBlock('sys/auth', ['read']),
    pathBlock(`sys/auth/${authMount}`, ['create', 'read', 'update', 'sudo']),
    pathBlock(`auth/${authMount}/config`, ['create', 'read', 'update']),
    pathBlock(`auth/${authMount}/role`, ['list']),
    pathBlock(`auth/${authMount}/role/*`, ['create', 'read', 'update', 'delete', 'list']),
    pathBlock('sys/policies/acl', ['list']),
    pathBlock('sys/policies/acl/*', ['create', 'read', 'update', 'delete', 'list']),
    pathBlock('sys/audit', ['read', 'sudo']),
    pathBlock('sys/audit/*', ['create', 'read', 'update', 'sudo']),
    pathBlock('sys/tools/random/*', ['update']),
    pathBlock(`${mount}/data/*`, ['create', 'update', 'patch']),
    pathBlock(`${mount}/subkeys/*`, ['read']),
    pathBlock(`${mount}/metadata/*`, ['read', 'list']),
    // OpenBao: a re-seed checks seeded paths by version, one metadata listing per folder.
    pathBlock(`${mount}/detailed-metadata/*`, ['list']),
    pathBlock('auth/token/lookup-self', ['read']),
    // `vaultlab status` shows the HA members.
    pathBlock('sys/storage/raft/configuration', ['read']),
    pathBlock('sys/ha-status', ['read']),
    // Regenerating root still needs the unseal key shares; OpenBao serves it only to a token.
    pathBlock('sys/generate-root-token/*', ['create', 'read', 'update', 'delete']),
  ].join('\n');
}

/** The setup token's part for transit keys: read one (configure checks it exists) and create it; no encrypt, decrypt or delete. */
export function transitSetupHcl(keys: { mount: string; name: string }[]): string {
  return '\n' + keys.map((k) => pathBlock(`${k.mount}/keys/${k.name}`, ['create', 'read', 'update'])).join('\n');
}

/**
 * Kubernetes ServiceAccount tokens: `update` on exactly the namespace's own
 * <mount>/creds/<role> paths, and only for its own namespace (allowed_parameters; any other
 * parameter, audiences included, is refused). Empty when no role is granted.
 */
export function kubernetesCredsHcl(mount: string, grants: { role: string; namespaces: string[]; clusterWide: boolean }[]): string {
  return grants
    .map((g) => {
      const params = [
        `    "kubernetes_namespace" = [${g.namespaces.map((n) => `"${n}"`).join(', ')}]`,
        '    "ttl" = []',
        ...(g.clusterWide ? ['    "cluster_role_binding" = []'] : []),
      ];
      return `\npath "${mount}/creds/${g.role}" {\n  capabilities = ["update"]\n  allowed_parameters = {\n${params.join('\n')}\n  }\n}\n`;
    })
    .join('');
}

/**
 * production setup token: manage the Kubernetes secrets engine's config and roles, list and end
 * its leases (`vaultlab status`, `vaultlab creds --revoke`); never issue credentials.
 */
export function kubernetesSetupHcl(mount: string): string {
  return ['', pathBlock(`${mount}/config`, ['create', 'read', 'update']), pathBlock(`${mount}/roles`, ['list']), pathBlock(`${mount}/roles/*`, ['create', 'read', 'update', 'delete']), pathBlock(`sys/leases/revoke/${mount}/creds/*`, ['update']), pathBlock(`sys/leases/lookup/${mount}/creds/*`, ['list', 'sudo'])].join('\n');
}

/** production setup token: look up a lease's times (`vaultlab status`), once for every short-lived credential engine. */
export function leaseLookupHcl(): string {
  return '\npath "sys/leases/lookup" {\n  capabilities = ["update"]\n}\n';
}

/** Dynamic database credentials: `read` on exactly the given <mount>/creds/<role> paths. Empty when none. */
export function databaseCredsHcl(mount: string, roles: string[]): string {
  return roles.map((r) => `\npath "${mount}/creds/${r}" {\n  capabilities = ["read"]\n}\n`).join('');
}

/**
 * production setup token: manage the database engine's connections and roles, rotate an
 * editor's password, list and end leases (`vaultlab status`, `creds --revoke`); never issue credentials.
 */
export function databaseSetupHcl(mount: string): string {
  return [
    '',
    pathBlock(`${mount}/config`, ['list']),
    pathBlock(`${mount}/config/*`, ['create', 'read', 'update']),
    pathBlock(`${mount}/roles`, ['list']),
    pathBlock(`${mount}/roles/*`, ['create', 'read', 'update', 'delete']),
    pathBlock(`${mount}/rotate-root/*`, ['update']),
    pathBlock(`sys/leases/lookup/${mount}/creds/*`, ['list', 'sudo']),
    pathBlock(`sys/leases/revoke/${mount}/creds/*`, ['update']),
  ].join('\n');
}
