// `vault configure`: a declarative reconcile, run in full on every invocation, in a fixed
// order: engines, audit, auth method, auth config, policies, roles, (prune). Each item is read
// first and written only when it differs, so a second run performs no write at all.
import { VaultApiError, type VaultClient } from '../adapters/vault.ts';
import type { Plan, PolicyPlan } from '../plan/types.ts';
import { VaultlabError } from '../lib/errors.ts';
import { durationSeconds } from '../config/duration.ts';
import { DELIVERY_NAMES } from '../deliveries/types.ts';
import { configureKubernetesSecrets, type KubernetesSecretsTarget } from './kubernetes-secrets.ts';
import { configureDatabases } from './database.ts';

export type Action = 'created' | 'updated' | 'unchanged' | 'deleted' | 'skipped';

export interface ConfigureItem {
  kind: 'engine' | 'audit' | 'auth' | 'auth-config' | 'policy' | 'role' | 'k8s-config' | 'k8s-role' | 'db-connection' | 'db-role' | 'transit-key';
  name: string;
  action: Action;
  detail?: string;
}

export interface KubernetesAuthTarget {
  /** The API server as Vault reaches it ("https://kubernetes.default.svc" in-cluster). */
  host: string;
  caPem: string;
  /** A token allowed to call TokenReview; omitted in-cluster, where Vault uses its own. */
  reviewerJwt?: string | undefined;
  /** The token Vault holds belongs to a reviewer account that was recreated since: replace it. */
  reviewerStale?: boolean | undefined;
}

export interface ConfigureOptions {
  kubernetes?: KubernetesAuthTarget | undefined;
  /** Where the file audit device writes (default: the plan's path, on the chart's audit volume). */
  auditPath?: string | undefined;
  /** The Kubernetes secrets engine's API access ([[kubernetes_roles]]); host and CA default to `kubernetes`'s. */
  kubernetesSecrets?: KubernetesSecretsTarget | undefined;
  /** Resolved [passwords] ([[databases]]: the editor's original password, used once when a connection is created). */
  passwords?: Readonly<Record<string, string>> | undefined;
  /** Delete vaultlab-named policies and roles the plan no longer has. */
  prune?: boolean;
}


const sameSet = (a: unknown, b: string[]) => Array.isArray(a) && a.length === b.length && [...a].map(String).sort().join('\u0000') === [...b].sort().join('\u0000');
// What --prune may delete: the policies and roles vaultlab names for its deliveries
// (eso-policy, eso-<ns>-policy, injector-<app>-role, ...). Never vaultlab-setup (a live setup
// token depends on it) and never anything else.
const DELIVERY_PREFIX = `(${DELIVERY_NAMES.join('|')})`;
const VAULTLAB_POLICY = new RegExp(`^${DELIVERY_PREFIX}(-[a-z0-9-]+)?-policy$`);
const VAULTLAB_ROLE = new RegExp(`^${DELIVERY_PREFIX}-[a-z0-9-]+-role$`);

/** The policies a plan manages: the ESO policies, plus the setup policy in production. */
export function managedPolicies(plan: Plan): PolicyPlan[] {
  return [...plan.vault.policies, ...(plan.vault.setupToken.enabled ? [plan.vault.setupToken.policy] : [])];
}

export async function configureVault(client: VaultClient, plan: Plan, opts: ConfigureOptions = {}): Promise<ConfigureItem[]> {
  const items: ConfigureItem[] = [];
  const v = plan.vault;

  // 1. Secrets engines.
  const mounts = (await client.get<any>('sys/mounts')).data;
  const mountTable: Record<string, any> = mounts.data ?? mounts;
  for (const e of v.engines) {
    const current = mountTable[`${e.path}/`];
    if (!current) {
      await client.post(`sys/mounts/${e.path}`, { type: e.type, description: e.description, options: e.options });
      items.push({ kind: 'engine', name: `${e.path}/`, action: 'created', detail: e.type });
    } else if (current.type !== e.type) {
      throw new VaultlabError(`mount ${e.path}/ exists with type "${current.type}", but the config wants "${e.type}"`, {
        hint: `vaultlab never replaces a mount that holds data: move it away (vault secrets move ${e.path}/ ...) or change vault.kv_mount.`,
      });
    } else if (e.type === 'kv' && String(current.options?.version ?? '1') !== '2') {
      await client.post(`sys/mounts/${e.path}/tune`, { options: { version: '2' } });
      items.push({ kind: 'engine', name: `${e.path}/`, action: 'updated', detail: 'KV v1 upgraded to v2' });
    } else {
      items.push({ kind: 'engine', name: `${e.path}/`, action: 'unchanged' });
    }
  }

  // 1b. Transit keys (VSO's client cache): created once, never rotated or deleted here (what
  // they encrypted would no longer decrypt).
  for (const k of v.transitKeys) {
    const r = await client.get<any>(`${k.mount}/keys/${k.name}`, { accept: [404] });
    if (r.status === 404) {
      await client.post(`${k.mount}/keys/${k.name}`, { type: k.type });
      items.push({ kind: 'transit-key', name: `${k.mount}/keys/${k.name}`, action: 'created', detail: k.purpose });
    } else if (r.data?.data?.type && r.data.data.type !== k.type) {
      throw new VaultlabError(`transit key ${k.mount}/keys/${k.name} exists with type "${r.data.data.type}", but vaultlab creates "${k.type}"`, {
        hint: 'Another key of that name is in use: set [vso] client_cache_key to a new name (vaultlab never replaces a key that encrypted data).',
      });
    } else items.push({ kind: 'transit-key', name: `${k.mount}/keys/${k.name}`, action: 'unchanged', detail: k.purpose });
  }

  // 2. Audit device (production), before anything reads a secret.
  if (v.audit.enabled) {
    const path = opts.auditPath ?? v.audit.path;
    const audit = (await client.get<any>('sys/audit')).data;
    const table: Record<string, any> = audit.data ?? audit;
    const current = table['file/'];
    if (!current) {
      const r = await client.put('sys/audit/file', { type: 'file', options: { file_path: path } }, { accept: [400] });
      if (r.status === 400) {
        const errors: string[] = (r.data as any)?.errors ?? [];
        if (errors.some((e) => /declarative/i.test(e))) {
          // OpenBao only creates audit devices from its server configuration.
          throw new VaultlabError('this server only accepts audit devices declared in its configuration file (OpenBao)', {
            hint: `Add to the server config: audit "file" "file" { options { file_path = "${path}" } } (vaultlab renders it for distribution = "openbao").`,
          });
        }
        throw new VaultApiError('PUT', 'sys/audit/file', 400, errors);
      }
      items.push({ kind: 'audit', name: 'file/', action: 'created', detail: path });
    } else if (current.options?.file_path !== path) {
      throw new VaultlabError(`audit device file/ writes to ${current.options?.file_path}, the plan wants ${path}`, {
        hint: 'Audit devices cannot be changed in place without losing the log; disable it (vault audit disable file/) if that is intended.',
      });
    } else items.push({ kind: 'audit', name: 'file/', action: 'unchanged' });
  }

  // 3. Kubernetes auth method.
  const auth = v.kubernetesAuth;
  const auths = (await client.get<any>('sys/auth')).data;
  const authTable: Record<string, any> = auths.data ?? auths;
  const currentAuth = authTable[`${auth.mount}/`];
  if (!currentAuth) {
    await client.post(`sys/auth/${auth.mount}`, { type: 'kubernetes', description: 'vaultlab: External Secrets Operator logins' });
    items.push({ kind: 'auth', name: `${auth.mount}/`, action: 'created' });
  } else if (currentAuth.type !== 'kubernetes') {
    throw new VaultlabError(`auth mount ${auth.mount}/ has type "${currentAuth.type}", not kubernetes`, { hint: 'Change vault.kubernetes_auth.mount.' });
  } else items.push({ kind: 'auth', name: `${auth.mount}/`, action: 'unchanged' });

  // 4. Its config: which API server validates the ServiceAccount tokens.
  if (opts.kubernetes) {
    const k = opts.kubernetes;
    const r = await client.get<any>(`auth/${auth.mount}/config`, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    const want: Record<string, unknown> = { kubernetes_host: k.host, kubernetes_ca_cert: k.caPem, disable_local_ca_jwt: !!k.reviewerJwt };
    const same =
      cur &&
      cur.kubernetes_host === k.host &&
      String(cur.kubernetes_ca_cert ?? '').trim() === k.caPem.trim() &&
      !!cur.disable_local_ca_jwt === !!k.reviewerJwt &&
      (!k.reviewerJwt || (cur.token_reviewer_jwt_set === true && !k.reviewerStale));
    if (!same) {
      await client.post(`auth/${auth.mount}/config`, { ...want, ...(k.reviewerJwt ? { token_reviewer_jwt: k.reviewerJwt } : {}) });
      items.push({ kind: 'auth-config', name: `${auth.mount}/config`, action: cur?.kubernetes_host ? 'updated' : 'created', detail: k.host });
    } else items.push({ kind: 'auth-config', name: `${auth.mount}/config`, action: 'unchanged', detail: k.host });
  } else {
    items.push({ kind: 'auth-config', name: `${auth.mount}/config`, action: 'skipped', detail: 'no cluster given' });
  }

  // 5. Policies: exact text.
  const policies = managedPolicies(plan);
  for (const p of policies) {
    const r = await client.get<any>(`sys/policies/acl/${p.name}`, { accept: [404] });
    const current: string | undefined = r.status === 404 ? undefined : r.data?.data?.policy;
    if (current === p.hcl) items.push({ kind: 'policy', name: p.name, action: 'unchanged' });
    else {
      await client.put(`sys/policies/acl/${p.name}`, { policy: p.hcl });
      items.push({ kind: 'policy', name: p.name, action: current === undefined ? 'created' : 'updated' });
    }
  }

  // 6. One role per app namespace.
  for (const role of auth.roles) {
    const r = await client.get<any>(`auth/${auth.mount}/role/${role.name}`, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    const ttl = durationSeconds(role.ttl);
    const same =
      cur &&
      sameSet(cur.bound_service_account_names, [role.serviceAccount]) &&
      sameSet(cur.bound_service_account_namespaces, [role.namespace]) &&
      cur.audience === role.audience &&
      sameSet(cur.token_policies, role.policies) &&
      Number(cur.token_ttl) === ttl;
    if (same) items.push({ kind: 'role', name: role.name, action: 'unchanged' });
    else {
      await client.post(`auth/${auth.mount}/role/${role.name}`, {
        bound_service_account_names: [role.serviceAccount],
        bound_service_account_namespaces: [role.namespace],
        audience: role.audience,
        token_policies: role.policies,
        token_ttl: ttl,
      });
      items.push({ kind: 'role', name: role.name, action: cur ? 'updated' : 'created' });
    }
  }

  // 6b. The Kubernetes secrets engine's config and roles ([[kubernetes_roles]]; prunes its own).
  items.push(...(await configureKubernetesSecrets(client, plan, opts)));

  // 6c. The database engine's connections (root rotated once) and roles ([[databases]]; prunes its own roles).
  items.push(...(await configureDatabases(client, plan, opts)));

  // 7. Prune what vaultlab created earlier and the config no longer has.
  if (opts.prune) {
    const keep = new Set(policies.map((p) => p.name));
    const listed = await client.get<any>('sys/policies/acl?list=true', { accept: [404] });
    for (const name of (listed.data?.data?.keys ?? []) as string[]) {
      if (VAULTLAB_POLICY.test(name) && !keep.has(name)) {
        await client.delete(`sys/policies/acl/${name}`);
        items.push({ kind: 'policy', name, action: 'deleted' });
      }
    }
    const keepRoles = new Set(auth.roles.map((r) => r.name));
    const roles = await client.get<any>(`auth/${auth.mount}/role?list=true`, { accept: [404] });
    for (const name of (roles.data?.data?.keys ?? []) as string[]) {
      if (VAULTLAB_ROLE.test(name) && !keepRoles.has(name)) {
        await client.delete(`auth/${auth.mount}/role/${name}`);
        items.push({ kind: 'role', name, action: 'deleted' });
      }
    }
  }
  return items;
}

export function countActions<T extends { action: string }>(items: T[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of items) counts[i.action] = (counts[i.action] ?? 0) + 1;
  return counts;
}
