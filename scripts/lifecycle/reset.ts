// reset --secrets: every seeded secret back to its configured state (the seed engine with
// rotate: random values regenerated, literals restored where they drifted), ESO forced to
// re-sync every ExternalSecret (annotation force-sync), consuming workloads optionally
// restarted (pod template annotation vaultlab.dev/restartedAt). No cluster recreation.
import type { Environment } from './connect.ts';
import { ensureUnsealed } from './after-restart.ts';
import { seedVault, type SeedReport } from '../vault/seed.ts';
import { VaultlabError } from '../lib/errors.ts';
import { decodeEsoError } from '../deliveries/eso/sync.ts';

export const FORCE_SYNC_ANNOTATION = 'force-sync';
export const RESTARTED_AT_ANNOTATION = 'vaultlab.dev/restartedAt';

export interface ResetOptions {
  /** Restart the sample Deployments that consume the Secrets. */
  restart?: boolean;
  /** Wait until ESO has re-synced every ExternalSecret after the forced re-sync. */
  wait?: boolean;
  timeoutMs?: number;
  now?: Date;
}

export interface ResetReport {
  seed: SeedReport;
  /** Set when Vault was found sealed (restart) and unsealed first. */
  unsealed?: boolean;
  resynced: string[];
  /** With wait: ExternalSecrets ESO re-synced after the stamp. */
  synced: string[];
  restarted: string[];
  /** The force-sync / restartedAt value written. */
  stamp: string;
  timings: { seedMs: number; resyncMs: number; waitMs?: number };
}

const refreshedAfter = (obj: any, notBefore: number, previous: string | undefined) => {
  const t = obj?.status?.refreshTime as string | undefined;
  const ready = (obj?.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  // refreshTime has one-second precision: a new value at or after the stamp's second.
  return !!t && t !== previous && Date.parse(t) >= notBefore && ready?.status === 'True';
};

export async function resetSecrets(env: Environment, opts: ResetOptions = {}): Promise<ResetReport> {
  const { plan, kube, vault } = env;
  const sealed = await ensureUnsealed(vault, plan, env.state, { kube });
  if (sealed.state !== 'unsealed' && sealed.state !== 'was-sealed-now-unsealed') {
    throw new VaultlabError(`cannot reset secrets: Vault at ${vault.address} is ${sealed.state}${sealed.detail ? ` (${sealed.detail})` : ''}`, { ...(sealed.fix ? { hint: sealed.fix } : {}) });
  }
  if (!vault.hasToken()) {
    throw new VaultlabError(`no token for Vault at ${vault.address}`, { hint: 'Set VAULT_TOKEN, or run from the directory holding .vaultlab/<cluster>/ (or --state-dir).' });
  }
  const t0 = performance.now();
  const seed = await seedVault(vault, plan, env.loaded.passwords, { rotate: true, ledger: env.state });
  const t1 = performance.now();
  const now = opts.now ?? new Date();
  const stamp = now.toISOString();
  const resynced: string[] = [];
  const restarted: string[] = [];
  const previous = new Map<string, string | undefined>();
  if (kube) {
    for (const ns of plan.namespaces) {
      for (const es of ns.externalSecrets) {
        const obj = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name);
        if (!obj) continue;
        previous.set(`${ns.name}/${es.name}`, obj.status?.refreshTime);
        // ESO re-syncs an ExternalSecret whose annotations change.
        await kube.mergePatch('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name, { metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: stamp } } });
        resynced.push(`${ns.name}/${es.name}`);
      }
    }
  }
  const t2 = performance.now();

  // Wait for the Secrets before restarting the apps, so the new pods read the new values.
  const synced: string[] = [];
  let waitMs: number | undefined;
  if (kube && opts.wait) {
    const notBefore = Math.floor(now.getTime() / 1000) * 1000;
    await Promise.all(
      resynced.map(async (id) => {
        const [nsName, esName] = id.split('/') as [string, string];
        let lastError = '';
        await kube
          .waitFor('external-secrets.io/v1', 'ExternalSecret', nsName, esName, (o) => refreshedAfter(o, notBefore, previous.get(id)), `re-synced after ${stamp}`, {
            timeoutMs: opts.timeoutMs ?? 120_000,
            onUpdate: (o) => {
              const r = (o.status?.conditions ?? []).find((c: any) => c.type === 'Ready' && c.status === 'False');
              if (r?.message) lastError = r.message;
            },
          })
          .catch((err) => {
            const ns = plan.namespaces.find((n) => n.name === nsName)!;
            const d = lastError ? decodeEsoError(lastError, ns, plan) : undefined;
            throw new VaultlabError(`ExternalSecret ${id} did not re-sync: ${d ? d.cause : (err as Error).message}`, { hint: d?.fix ?? 'Is ESO running? `vaultlab status` shows it.', cause: err });
          });
        synced.push(id);
      }),
    );
    waitMs = Math.round(performance.now() - t2);
  }

  if (kube && opts.restart) {
    for (const ns of plan.namespaces) {
      for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
        if (!(await kube.get('apps/v1', 'Deployment', ns.name, s.app))) continue;
        // What `kubectl rollout restart` does, under vaultlab's own annotation.
        await kube.mergePatch('apps/v1', 'Deployment', ns.name, s.app, { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: stamp } } } } });
        restarted.push(`${ns.name}/${s.app}`);
      }
    }
  }
  return {
    seed,
    ...(sealed.state === 'was-sealed-now-unsealed' ? { unsealed: true } : {}),
    resynced,
    synced: synced.sort(),
    restarted,
    stamp,
    timings: { seedMs: Math.round(t1 - t0), resyncMs: Math.round(t2 - t1), ...(waitMs !== undefined ? { waitMs } : {}) },
  };
}
