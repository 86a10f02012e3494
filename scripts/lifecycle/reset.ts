// reset --secrets: every seeded secret back to its configured state (the seed engine with
// rotate: random values regenerated, literals restored where they drifted), then every consumer
// made to see the values (each delivery's converge: ESO's ExternalSecrets forced to re-sync
// (annotation force-sync) and the Deployments whose pods read a changed key restarted, the
// injector's files re-rendered), each pod's copy compared with Vault by digest. No cluster recreation.
import type { Environment } from './connect.ts';
import { ensureUnsealed } from './after-restart.ts';
import { seedVault, type SeedReport } from '../vault/seed.ts';
import { VaultlabError } from '../lib/errors.ts';
import { convergeConsumers, everySeeded, type DeliveryConvergence } from './converge.ts';

export { FORCE_SYNC_ANNOTATION, RESTARTED_AT_ANNOTATION } from '../deliveries/eso/converge.ts';

export interface ResetOptions {
  /**
   * How far to wait: "pods" (default) until every consumer's pod holds the values; "secrets" until
   * every Kubernetes Secret does (no pod restarted); "none": Vault reset and the re-syncs forced.
   */
  until?: 'pods' | 'secrets' | 'none';
  /** With until "none": restart every sample Deployment anyway (not awaited). */
  restart?: boolean;
  timeoutMs?: number;
  now?: Date;
  signal?: AbortSignal;
}

export interface ResetReport {
  seed: SeedReport;
  /** Set when Vault was found sealed (restart) and unsealed first. */
  unsealed?: boolean;
  /** ExternalSecrets forced to re-sync (and, converged, equal to Vault by digest). */
  resynced: string[];
  /** Same as resynced once converged (kept for scripts reading it). */
  synced: string[];
  /** Deployments restarted so their pods read the reset values. */
  restarted: string[];
  /** Per consumer: what was done and when its pod held the value. */
  consumers: DeliveryConvergence[];
  /** The force-sync / restartedAt value written. */
  stamp: string;
  timings: { seedMs: number; convergeMs: number };
}

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
  let consumers: DeliveryConvergence[] = [];
  const resynced: string[] = [];
  const until = opts.until ?? 'pods';
  const restartedBlind: string[] = [];
  if (kube && until !== 'none') {
    // Every value is put back, so every consumer is asked (those already holding it are left alone).
    consumers = await convergeConsumers(env, everySeeded(plan), { now, secretsOnly: until === 'secrets', ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    for (const c of consumers) if (c.action === 're-synced') resynced.push(`${c.namespace}/${c.target.replace(/^ExternalSecret /, '')}`);
  } else if (kube) {
    const { forceSyncPatch } = await import('../deliveries/eso/converge.ts');
    for (const ns of plan.namespaces) {
      for (const es of ns.externalSecrets) {
        if (!(await kube.get('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name))) continue;
        await kube.mergePatch('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name, forceSyncPatch(stamp));
        resynced.push(`${ns.name}/${es.name}`);
      }
    }
    if (opts.restart) {
      const { restartPatch } = await import('../deliveries/eso/converge.ts');
      for (const ns of plan.namespaces) {
        for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
          if (!(await kube.get('apps/v1', 'Deployment', ns.name, s.app))) continue;
          await kube.mergePatch('apps/v1', 'Deployment', ns.name, s.app, restartPatch(stamp));
          restartedBlind.push(`${ns.name}/${s.app}`);
        }
      }
    }
  }
  resynced.sort();
  return {
    seed,
    ...(sealed.state === 'was-sealed-now-unsealed' ? { unsealed: true } : {}),
    resynced,
    synced: until !== 'none' && kube ? [...resynced] : [],
    restarted: [...restartedBlind, ...consumers.filter((c) => c.action.startsWith('restarted')).map((c) => `${c.namespace}/${c.target.replace(/^Deployment /, '')}`)].sort(),
    consumers,
    stamp,
    timings: { seedMs: Math.round(t1 - t0), convergeMs: Math.round(performance.now() - t1) },
  };
}
