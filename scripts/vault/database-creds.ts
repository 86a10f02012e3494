// Dynamic database credentials from Vault's `database` engine: issue one lease on
// database/creds/<role> (a Postgres LOGIN role of its own, valid until the lease ends), revoke it
// by lease id (Vault runs the role's revocation SQL: the user is dropped). The password is
// registered with the redactor at once; callers print it only when asked to.
import type { VaultClient } from '../adapters/vault.ts';
import { VaultApiError } from '../adapters/vault.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import { DATABASE_MOUNT } from '../config/databases.ts';

export interface DatabaseCredentials {
  leaseId: string;
  /** Seconds the lease lives (renewable up to the role's max_ttl). */
  leaseDuration: number;
  renewable: boolean;
  /** When the lease ends, from the issuing clock (the Postgres role's VALID UNTIL matches it). */
  expiresAt: string;
  username: string;
  /** Never log it: it is registered with the redactor. */
  password: string;
}

export interface DatabaseIssueOptions {
  role: string;
  mount?: string;
  /** The clock the expiry is computed from (tests). */
  now?: () => Date;
}

export async function issueDatabaseCredentials(client: VaultClient, opts: DatabaseIssueOptions): Promise<DatabaseCredentials> {
  const mount = opts.mount ?? DATABASE_MOUNT;
  const path = `${mount}/creds/${opts.role}`;
  const now = (opts.now ?? (() => new Date()))();
  let r;
  try {
    r = await client.get<any>(path, { retry: false });
  } catch (err) {
    if (err instanceof VaultApiError && err.status === 403) {
      throw new VaultlabError(`this token may not read ${path}`, {
        hint: `Use a token whose policy grants read on ${path} (each app's policy covers only its own [[databases.roles]]; the production setup token issues none).`,
        cause: err,
      });
    }
    if (err instanceof VaultApiError && (err.status === 400 || err.status === 404) && err.vaultErrors.some((e) => /unknown role|role .*not found|does not exist/i.test(e))) {
      throw new VaultlabError(`Vault has no database role "${opts.role}"`, { hint: 'Add it to [[databases.roles]] and run `vaultlab vault configure`.', cause: err });
    }
    if (err instanceof VaultApiError && err.status !== undefined && err.status >= 400 && err.status < 500) {
      throw new VaultlabError(`Vault could not create a database user for role "${opts.role}": ${err.vaultErrors.join('; ')}`, {
        hint: "The group role must exist in the database first, and the connection's editor must be able to create roles and grant it.",
        cause: err,
      });
    }
    throw err;
  }
  const data = r.data?.data ?? {};
  const password = String(data.password ?? '');
  registerSecret(password);
  const leaseDuration = Number(r.data?.lease_duration ?? 0);
  return {
    leaseId: String(r.data?.lease_id ?? ''),
    leaseDuration,
    renewable: !!r.data?.renewable,
    expiresAt: new Date(now.getTime() + leaseDuration * 1000).toISOString(),
    username: String(data.username ?? ''),
    password,
  };
}

/**
 * Sets a lease's remaining lifetime (`--ttl`): sys/leases/renew with that increment, capped by the
 * role's max_ttl. Vault runs the renew SQL, so the user's VALID UNTIL moves with it (also earlier).
 */
export async function renewDatabaseLease(client: VaultClient, leaseId: string, ttl: string | number, now: () => Date = () => new Date()): Promise<Pick<DatabaseCredentials, 'leaseDuration' | 'expiresAt'>> {
  const t0 = now();
  const r = await client.put<any>('sys/leases/renew', { lease_id: leaseId, increment: ttl }, { retry: false });
  const leaseDuration = Number(r.data?.lease_duration ?? 0);
  return { leaseDuration, expiresAt: new Date(t0.getTime() + leaseDuration * 1000).toISOString() };
}

/** Ends a lease now: Vault runs the role's revocation SQL, so the user is gone from pg_roles. */
export async function revokeDatabaseLease(client: VaultClient, leaseId: string): Promise<void> {
  try {
    await client.put(`sys/leases/revoke/${leaseId}`, {}, { retry: false });
  } catch (err) {
    if (err instanceof VaultApiError && err.status === 403) {
      throw new VaultlabError(`this token may not revoke ${leaseId}`, {
        hint: `Revoking needs update on sys/leases/revoke/${leaseId.split('/').slice(0, -1).join('/')}/*: use the vaultlab-setup token (production; the state dir holds it) or root (demo).`,
        cause: err,
      });
    }
    throw err;
  }
}

export interface LeaseInfo {
  id: string;
  issueTime: string;
  expireTime: string;
  ttl: number;
}

/**
 * The active leases under a role's creds path: sys/leases/lookup/<mount>/creds/<role>/ (a list,
 * which needs sudo) and one lookup per lease for its times. Empty when the role has none.
 */
export async function listLeases(client: VaultClient, prefix: string): Promise<LeaseInfo[]> {
  const r = await client.get<any>(`sys/leases/lookup/${prefix}/?list=true`, { accept: [404] });
  const keys = r.status === 404 ? [] : ((r.data?.data?.keys ?? []) as string[]);
  const out: LeaseInfo[] = [];
  for (const k of keys) {
    const id = `${prefix}/${k}`;
    const l = await client.put<any>('sys/leases/lookup', { lease_id: id }, { accept: [400] });
    if (l.status === 400) continue; // ended between the list and the lookup
    const d = l.data?.data ?? {};
    out.push({ id, issueTime: String(d.issue_time ?? ''), expireTime: String(d.expire_time ?? ''), ttl: Number(d.ttl ?? 0) });
  }
  return out;
}
