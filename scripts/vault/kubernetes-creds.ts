// Short-lived Kubernetes ServiceAccount tokens from Vault's `kubernetes` secrets engine: issue
// one for a [[kubernetes_roles]] role in a namespace, revoke it by lease id. The token is
// registered with the redactor at once; callers print it only when asked to.
import type { VaultClient } from '../adapters/vault.ts';
import { VaultApiError } from '../adapters/vault.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import { KUBERNETES_SECRETS_MOUNT } from '../config/kubernetes-roles.ts';

export interface KubernetesToken {
  leaseId: string;
  /** Seconds the lease (and the token: Vault caps one to the other) lives. */
  leaseDuration: number;
  /** When the lease ends, from the issuing clock. */
  expiresAt: string;
  serviceAccountName: string;
  serviceAccountNamespace: string;
  /** The bearer token. Never log it: it is registered with the redactor. */
  token: string;
  warnings: string[];
}

export interface IssueOptions {
  role: string;
  namespace: string;
  /** "15m", or seconds; default: the role's token_ttl. At least 10 minutes (TokenRequest floor). */
  ttl?: string | number | undefined;
  mount?: string;
  /** The clock the expiry is computed from (tests). */
  now?: () => Date;
}

export async function issueKubernetesToken(client: VaultClient, opts: IssueOptions): Promise<KubernetesToken> {
  const mount = opts.mount ?? KUBERNETES_SECRETS_MOUNT;
  const path = `${mount}/creds/${opts.role}`;
  const body = { kubernetes_namespace: opts.namespace, ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}) };
  let r;
  try {
    r = await client.post<any>(path, body, { retry: false });
  } catch (err) {
    if (err instanceof VaultApiError && err.status === 403) {
      throw new VaultlabError(`this token may not issue credentials from ${path} in namespace "${opts.namespace}"`, {
        hint: `Use a token whose policy grants update on ${path} for that namespace (each app namespace's policy covers only its own [[kubernetes_roles]]).`,
        cause: err,
      });
    }
    if (err instanceof VaultApiError && err.status === 400 && err.vaultErrors.some((e) => /does not exist/.test(e))) {
      throw new VaultlabError(`Vault has no kubernetes role "${opts.role}"`, { hint: 'Add it to [[kubernetes_roles]] and run `vaultlab vault configure`.', cause: err });
    }
    throw err;
  }
  const data = r.data?.data ?? {};
  const token = String(data.service_account_token ?? '');
  registerSecret(token);
  const leaseDuration = Number(r.data?.lease_duration ?? 0);
  const now = (opts.now ?? (() => new Date()))();
  return {
    leaseId: String(r.data?.lease_id ?? ''),
    leaseDuration,
    expiresAt: new Date(now.getTime() + leaseDuration * 1000).toISOString(),
    serviceAccountName: String(data.service_account_name ?? ''),
    serviceAccountNamespace: String(data.service_account_namespace ?? opts.namespace),
    token,
    warnings: (r.data?.warnings ?? []) as string[],
  };
}

/**
 * Ends a lease now: Vault deletes what it generated for it (ServiceAccount, Role/RoleBinding),
 * so the token stops working at once. A token of an existing ServiceAccount stays valid until it
 * expires: Kubernetes has no way to revoke a single TokenRequest token.
 */
export async function revokeKubernetesLease(client: VaultClient, leaseId: string): Promise<void> {
  await client.put(`sys/leases/revoke/${leaseId}`, {}, { retry: false });
}
