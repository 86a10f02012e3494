// `vaultlab status`, the short-lived credentials part: the active leases of every
// [[databases.roles]] and [[kubernetes_roles]] role (sys/leases/lookup, a sudo list), and a warning
// for leases close to their role's max_ttl: renewal cannot take them past it, so their holder must
// fetch new credentials soon. Reads only.
import { VaultApiError, type VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import { databaseRoles } from '../plan/databases.ts';
import { durationSeconds } from '../config/duration.ts';
import { listLeases, type LeaseInfo } from '../vault/database-creds.ts';
import type { Check } from './status.ts';

export interface RoleLeases {
  kind: 'database' | 'kubernetes';
  role: string;
  active: number;
  /** Lease ids whose hard end (issue time + max_ttl) is near. */
  nearMaxTtl: string[];
}

/** The window before max_ttl that counts as "close": a tenth of it, at least 5 minutes. */
export const nearWindowSeconds = (maxTtl: number): number => Math.max(maxTtl / 10, 300);

/** Is this lease within the window before its role's max_ttl (seconds from its issue time)? */
export function nearMaxTtl(lease: Pick<LeaseInfo, 'issueTime'>, maxTtl: number, now: Date): boolean {
  const issued = Date.parse(lease.issueTime);
  if (Number.isNaN(issued)) return false;
  const left = (issued + maxTtl * 1000 - now.getTime()) / 1000;
  return left <= nearWindowSeconds(maxTtl);
}

export async function leaseReport(vault: VaultClient, plan: Plan, now: () => Date = () => new Date()): Promise<{ roles: RoleLeases[]; checks: Check[] }> {
  const db = plan.vault.databases;
  const ks = plan.vault.kubernetesSecrets;
  const wanted = [
    ...databaseRoles(db).map((r) => ({ kind: 'database' as const, role: r.name, prefix: `${db!.mount}/creds/${r.name}`, maxTtl: durationSeconds(r.maxTtl) })),
    ...(ks?.roles ?? []).map((r) => ({ kind: 'kubernetes' as const, role: r.name, prefix: `${ks!.mount}/creds/${r.name}`, maxTtl: durationSeconds(r.tokenMaxTtl) })),
  ];
  const roles: RoleLeases[] = [];
  const checks: Check[] = [];
  if (wanted.length === 0) return { roles, checks };
  try {
    const found = await Promise.all(wanted.map(async (w) => ({ w, leases: await listLeases(vault, w.prefix) })));
    const t = now();
    for (const { w, leases } of found) {
      const near = leases.filter((l) => nearMaxTtl(l, w.maxTtl, t)).map((l) => l.id);
      roles.push({ kind: w.kind, role: w.role, active: leases.length, nearMaxTtl: near });
      const soonest = leases.map((l) => l.expireTime).filter(Boolean).sort()[0];
      checks.push({
        name: `leases ${w.kind}/${w.role}`,
        ok: near.length === 0,
        severity: 'warning',
        detail: `${leases.length} active${soonest ? `, next expiry ${soonest}` : ''}${near.length ? `; ${near.length} within ${Math.round(nearWindowSeconds(w.maxTtl))} s of max_ttl (${w.maxTtl} s): ${near.join(', ')}` : ''}`,
        ...(near.length ? { fix: 'Renewal cannot go past max_ttl: the holder must fetch new credentials (`vaultlab creds <role>` for a human; apps re-read their creds path).' } : {}),
      });
    }
  } catch (err) {
    const denied = err instanceof VaultApiError && err.status === 403;
    checks.push({
      name: 'leases',
      ok: false,
      severity: 'warning',
      detail: denied ? 'this token may not list leases' : (err as Error).message,
      fix: denied ? 'Listing leases needs list+sudo on sys/leases/lookup/<mount>/creds/* (the production setup policy and root have it).' : 'vaultlab doctor',
    });
  }
  return { roles, checks };
}
