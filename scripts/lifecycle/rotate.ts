// `vaultlab rotate [PATH[:KEY]...]`: new random values in Vault (the seed primitive, rotate mode),
// then every consumer made to see them (each delivery's converge): the command ends only when each
// pod holds the new value. Known values from config.toml are not rotated: they are the config's.
import type { Environment } from './connect.ts';
import { ensureUnsealed } from './after-restart.ts';
import { convergeConsumers, changedBySeed, type DeliveryConvergence } from './converge.ts';
import { seedVault, type SeedReport } from '../vault/seed.ts';
import type { Plan, SeedEntry } from '../plan/types.ts';
import type { ChangedValue } from '../deliveries/types.ts';
import { UsageError, VaultlabError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';

export interface RotateSelection {
  /** The random entries to rotate (with every entry sharing a value with one of them). */
  entries: SeedEntry[];
  /** seedVault's `only`: "path:key" of each. */
  only: string[];
}

const id = (e: Pick<SeedEntry, 'path' | 'key'>) => `${e.path}:${e.key}`;

/**
 * PATH[:KEY] arguments -> the random entries they name (none: every random entry). Each is an
 * exit-2 error when it names no [[secrets]] path or key, or only known values (literals) of the
 * config. The plaintext key beside a bcrypt hash names its hash's entry (they rotate together);
 * entries sharing one random value (the same [passwords] name) rotate together.
 */
export function selectRotation(plan: Pick<Plan, 'seeding'>, args: readonly string[], file = 'config.toml'): RotateSelection {
  const all = plan.seeding.entries;
  const random = (e: SeedEntry) => e.source.type === 'random';
  const picked = new Set<SeedEntry>();
  if (args.length === 0) {
    for (const e of all.filter(random)) picked.add(e);
    if (picked.size === 0) throw new UsageError(`${file} seeds no random value: nothing to rotate`, 'Random values are [[secrets]] entries with format/bytes (or a [passwords] name set to ""); known values change by editing config.toml and `vaultlab seed`.');
  }
  for (const arg of args) {
    const colon = arg.indexOf(':');
    const path = (colon < 0 ? arg : arg.slice(0, colon)).replace(/^\/+|\/+$/g, '');
    const key = colon < 0 ? undefined : arg.slice(colon + 1);
    const onPath = all.filter((e) => e.path === path);
    if (!path || onPath.length === 0) {
      const guess = suggest(path, [...new Set(all.map((e) => e.path))]);
      throw new UsageError(`"${arg}": no [[secrets]] entry in ${file} has path "${path}"${guess ? `; did you mean "${guess}"?` : ''}`, 'vaultlab rotate PATH[:KEY], with PATH and KEY as in [[secrets]] (vaultlab plan lists them).');
    }
    let named = onPath;
    if (key) {
      named = onPath.filter((e) => e.key === key || e.plaintextKey === key);
      if (named.length === 0) {
        const keys = onPath.flatMap((e) => [e.key, ...(e.plaintextKey ? [e.plaintextKey] : [])]);
        throw new UsageError(`"${arg}": path "${path}" in ${file} has no key "${key}" (its keys: ${keys.join(', ')})`, `vaultlab rotate ${path}:<key>, or ${path} for all of them.`);
      }
    }
    const rotatable = named.filter(random);
    if (rotatable.length === 0) {
      const which = named.map((e) => `${id(e)}${e.source.type === 'literal' ? ` ([passwords] ${e.source.password})` : ''}`).join(', ');
      throw new UsageError(
        `"${arg}": ${which} ${named.length > 1 ? 'are known values' : 'is a known value'} from ${file}, not a random one: rotate regenerates random values only`,
        'Change it in config.toml (or VAULTLAB_PASSWORD_<NAME>) and run `vaultlab seed`; `vaultlab reset --secrets` restores it. Set its [passwords] entry to "" to make it random.',
      );
    }
    for (const e of rotatable) picked.add(e);
  }
  // One random value shared by name is rotated everywhere it lives, or the copies would differ.
  const groups = new Set([...picked].map((e) => e.group).filter((g) => g !== undefined));
  for (const e of all) if (e.group !== undefined && groups.has(e.group) && random(e)) picked.add(e);
  const entries = all.filter((e) => picked.has(e));
  return { entries, only: entries.map(id) };
}

export interface RotateReport {
  seed: SeedReport;
  unsealed?: boolean;
  /** The Vault values that changed (path and key; never a value). */
  changed: ChangedValue[];
  /** Per consumer: what was done and when its pod held the new value. */
  consumers: DeliveryConvergence[];
  timings: { seedMs: number; convergeMs: number };
}

export async function rotateSecrets(env: Environment, selection: RotateSelection, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RotateReport> {
  const { plan, vault } = env;
  const sealed = await ensureUnsealed(vault, plan, env.state, { kube: env.kube });
  if (sealed.state !== 'unsealed' && sealed.state !== 'was-sealed-now-unsealed') {
    throw new VaultlabError(`cannot rotate: Vault at ${vault.address} is ${sealed.state}${sealed.detail ? ` (${sealed.detail})` : ''}`, { ...(sealed.fix ? { hint: sealed.fix } : {}) });
  }
  if (!vault.hasToken()) throw new VaultlabError(`no token for Vault at ${vault.address}`, { hint: 'Set VAULT_TOKEN, or run from the directory holding .vaultlab/<cluster>/ (or --state-dir).' });
  const t0 = performance.now();
  const now = new Date();
  const seed = await seedVault(vault, plan, env.loaded.passwords, { rotate: true, only: selection.only, ledger: env.state });
  const t1 = performance.now();
  const changed = changedBySeed(plan, seed);
  const consumers = env.kube ? await convergeConsumers(env, changed, { ...opts, now }) : [];
  return {
    seed,
    ...(sealed.state === 'was-sealed-now-unsealed' ? { unsealed: true } : {}),
    changed,
    consumers,
    timings: { seedMs: Math.round(t1 - t0), convergeMs: Math.round(performance.now() - t1) },
  };
}
