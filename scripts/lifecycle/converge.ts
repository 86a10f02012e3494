// After Vault's values changed (rotate, reset --secrets): every delivery that has consumers of them
// makes its pods see them (`DeliveryRuntime.converge`), concurrently; what each did, and when.
import type { Environment } from './connect.ts';
import { eachUsed } from '../deliveries/index.ts';
import type { ChangedValue, ConvergeOptions, ConvergeResult, DeliveryName } from '../deliveries/types.ts';
import type { Plan, SeedEntry } from '../plan/types.ts';
import type { SeedReport } from '../vault/seed.ts';

export interface DeliveryConvergence extends ConvergeResult {
  delivery: DeliveryName;
}

/** The Vault values a seed run changed: each written key, and the plaintext beside a bcrypt hash. */
export function changedBySeed(plan: Pick<Plan, 'seeding'>, report: Pick<SeedReport, 'entries'>): ChangedValue[] {
  const out = new Map<string, ChangedValue>();
  const add = (path: string, key: string) => out.set(`${path}\u0000${key}`, { path, key });
  for (const r of report.entries) {
    if (r.action === 'unchanged') continue;
    add(r.path, r.key);
    const e = plan.seeding.entries.find((x: SeedEntry) => x.path === r.path && x.key === r.key);
    if (e?.plaintextKey) add(r.path, e.plaintextKey);
  }
  return [...out.values()];
}

/** Every value the plan seeds (reset: everything is put back, so every consumer is checked). */
export function everySeeded(plan: Pick<Plan, 'seeding'>): ChangedValue[] {
  const out = new Map<string, ChangedValue>();
  for (const e of plan.seeding.entries) {
    out.set(`${e.path}\u0000${e.key}`, { path: e.path, key: e.key });
    if (e.plaintextKey) out.set(`${e.path}\u0000${e.plaintextKey}`, { path: e.path, key: e.plaintextKey });
  }
  return [...out.values()];
}

export async function convergeConsumers(env: Environment, changed: ChangedValue[], opts: ConvergeOptions & { signal?: AbortSignal } = {}): Promise<DeliveryConvergence[]> {
  if (changed.length === 0) return [];
  const signal = opts.signal ?? new AbortController().signal;
  const runs = eachUsed(env.plan, async (d, apps) => {
    if (apps.length === 0) return [];
    const rt = await d.runtime();
    if (!rt.converge) return [];
    const r = await rt.converge(env, apps, changed, signal, opts);
    return r.map((x) => ({ ...x, delivery: d.name }));
  });
  // Every delivery runs to the end even when one fails: a failing VSO app must not leave ESO's
  // consumers un-restarted (the next command would find pods holding the old values).
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.flatMap((r) => (r as PromiseFulfilledResult<DeliveryConvergence[]>).value);
}
