// The validated-config cache: what zod made of a config text (defaults filled in), keyed by the
// text and by the schema that validated it, so a command run on an unchanged config.toml (seed,
// status, every re-deploy) need not load zod and build the schema (~60 ms of each process start).
//
// It caches exactly one pure function, schema.parse(TOML text), and nothing that depends on the
// environment: profile and cluster-name overrides, VAULTLAB_PASSWORD_<NAME> values and the
// cross-entry checks are applied to the cached result on every load, as to a fresh one. The key
// holds a digest of the text and of every source the schema is built from (scripts/config/*.ts,
// the deliveries' names, zod's package.json), so any edit to either is a miss. [passwords] values
// are never written: the entry holds their names, and a hit takes the values from the text itself.
// Entries are 0600 under ~/.cache/vaultlab/config (XDG_CACHE_HOME), the newest 32 kept. A damaged,
// unreadable or unwritable entry is a miss, never an error; VAULTLAB_CONFIG_CACHE=0 turns it off.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './schema.ts';
import { vaultlabCacheDir } from '../lib/cache-dir.ts';

const FORMAT = 1;
const KEEP = 32;
const HERE = dirname(fileURLToPath(import.meta.url));

let fingerprint: string | undefined;

/** A digest of everything the schema is built from. */
export function schemaFingerprint(): string {
  if (fingerprint) return fingerprint;
  const h = createHash('sha256').update(`vaultlab-config-cache-${FORMAT}\0`);
  const files = readdirSync(HERE).filter((f) => f.endsWith('.ts')).sort().map((f) => join(HERE, f));
  files.push(join(HERE, '..', 'deliveries', 'types.ts'));
  try {
    let dir = dirname(createRequire(import.meta.url).resolve('zod'));
    while (!safeExists(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
    files.push(join(dir, 'package.json'));
  } catch {
    h.update('no-zod\0');
  }
  for (const f of files) h.update(f).update('\0').update(readFileSync(f)).update('\0');
  return (fingerprint = h.digest('hex'));
}

const safeExists = (path: string): boolean => {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
};

export function cacheDir(env: NodeJS.ProcessEnv): string {
  return join(vaultlabCacheDir(env), 'config');
}

const entryPath = (source: string, env: NodeJS.ProcessEnv): string =>
  join(cacheDir(env), `${createHash('sha256').update(schemaFingerprint()).update('\0').update(source).digest('hex')}.json`);

interface Entry {
  format: number;
  /** The parsed config, with [passwords] reduced to its names. */
  config: Config;
  passwordNames: string[];
}

/** The validated config of `source`, or undefined (not cached, or unusable). `raw` is the text's TOML. */
export function readValidated(source: string, raw: unknown, env: NodeJS.ProcessEnv): Config | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(entryPath(source, env), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  const passwords = (raw as { passwords?: unknown }).passwords ?? {};
  if (entry?.format !== FORMAT || typeof entry.config !== 'object' || entry.config === null || typeof passwords !== 'object' || passwords === null) return undefined;
  const names = Object.keys(passwords).sort();
  if (JSON.stringify(names) !== JSON.stringify([...(entry.passwordNames ?? [])].sort())) return undefined;
  return { ...entry.config, passwords: { ...(passwords as Record<string, string>) } };
}

/** Records what the schema made of `source` (before any override is applied to it). */
export function writeValidated(source: string, config: Config, env: NodeJS.ProcessEnv): void {
  try {
    const path = entryPath(source, env);
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const entry: Entry = { format: FORMAT, config: { ...config, passwords: {} }, passwordNames: Object.keys(config.passwords) };
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, path);
    prune(dir);
  } catch {
    // Only a shortcut: the next load validates again.
  }
}

function prune(dir: string): void {
  const entries = readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (entries.length <= KEEP) return;
  const byAge = entries.map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { f } of byAge.slice(KEEP)) unlinkSync(join(dir, f));
}
