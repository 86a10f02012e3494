// The seed ledger: which KV v2 version of each seeded path vaultlab last read or wrote, and which
// keys that version holds. Never a value. A KV v2 version is immutable: any write makes a new
// version, and a deleted-and-recreated path starts over with new creation times. So when Vault's
// own metadata still names the same current version, created at the same instant, not deleted,
// the keys recorded for it are still exactly the keys in Vault.
//
// A re-seed uses this to check paths in bulk: OpenBao lists the metadata of a whole folder in one
// request (`LIST <mount>/detailed-metadata/<folder>/`), where reading each path is one request
// per path. Only paths whose entries all keep an existing random value are checked this way;
// a literal or a bcrypt hash of one must be compared with config.toml, so those paths are read.
// Whatever does not match (another version, a deletion, an unknown path, HashiCorp Vault, which
// has no such listing, a token that may not list) is read as before. The ledger is a shortcut
// with Vault as the judge, never a cache that replaces it: removing the file only slows a re-seed.
import { posix } from 'node:path';
import type { StateDir } from '../lib/state.ts';
import type { KvPathMetadata, VaultClient } from '../adapters/vault.ts';
import type { SeedEntry } from '../plan/types.ts';
import { VaultlabError } from '../lib/errors.ts';
import { pool } from '../lib/pool.ts';

export const LEDGER_FILE = 'seed-ledger.json';

export interface LedgerEntry {
  /** The KV v2 version this record describes, and its created_time as Vault reported it. */
  version: number;
  created: string;
  /** Every key name that version holds. */
  keys: string[];
  /** Whether the values were readable (a setup token sees key names only). */
  verified: boolean;
  /**
   * bcrypt keys of this version whose hash was checked against the plaintext key beside it (the
   * same version, so the same two values): a re-seed that reads the same plaintext here need not
   * run bcrypt again (~90 ms per hash at cost 10). Never the values, only key names.
   */
  hashesVerified?: string[];
}

interface LedgerFile {
  format: 1;
  /** Per KV mount, per path. */
  mounts: Record<string, Record<string, LedgerEntry>>;
}

export class SeedLedger {
  private readonly state: StateDir;
  private readonly file: LedgerFile;
  private readonly before: string;
  private constructor(state: StateDir, file: LedgerFile) {
    this.state = state;
    this.file = file;
    this.before = JSON.stringify(file);
  }

  static open(state: StateDir): SeedLedger {
    let file: LedgerFile | undefined;
    try {
      file = state.readJson<LedgerFile>(LEDGER_FILE);
    } catch (err) {
      // Only a shortcut: a damaged ledger is ignored (and replaced), never a reason to fail a seed.
      if (!(err instanceof VaultlabError)) throw err;
    }
    const valid = file && file.format === 1 && typeof file.mounts === 'object' && file.mounts !== null;
    return new SeedLedger(state, valid ? file! : { format: 1, mounts: {} });
  }

  get(mount: string, path: string): LedgerEntry | undefined {
    const e = this.file.mounts[mount]?.[path];
    return e && Number.isInteger(e.version) && typeof e.created === 'string' && Array.isArray(e.keys) ? e : undefined;
  }

  set(mount: string, path: string, entry: LedgerEntry | undefined): void {
    const paths = (this.file.mounts[mount] ??= {});
    if (entry) {
      const { hashesVerified, ...rest } = entry;
      paths[path] = { ...rest, keys: [...new Set(entry.keys)].sort(), ...(hashesVerified?.length ? { hashesVerified: [...new Set(hashesVerified)].sort() } : {}) };
    }
    else delete paths[path];
  }

  /** Writes the file (0600, atomic) only when something changed. */
  save(): void {
    if (JSON.stringify(this.file) !== this.before) this.state.writeJson(LEDGER_FILE, this.file);
  }
}

/** Whether Vault's metadata still shows the version the ledger recorded, undeleted. */
export function sameVersion(meta: KvPathMetadata | undefined, entry: LedgerEntry): boolean {
  if (!meta || meta.current_version !== entry.version) return false;
  const v = meta.versions[String(entry.version)];
  return !!v && v.created_time === entry.created && !v.deletion_time && !v.destroyed;
}

/**
 * A path may be checked by version when every entry on it keeps an existing random value
 * whose keys the recorded version holds: then a read would decide "unchanged" for all of them.
 */
export function checkableByVersion(entries: readonly SeedEntry[], entry: LedgerEntry): boolean {
  const keys = new Set(entry.keys);
  return entries.every((e) => e.source.type === 'random' && keys.has(e.key) && (e.hash.type !== 'bcrypt' || !e.plaintextKey || keys.has(e.plaintextKey)));
}

/**
 * The paths (of `candidates`) whose recorded version is still current: one metadata listing per
 * folder. Paths the server cannot vouch for this way are simply not in the result.
 */
export async function vouchedPaths(
  client: VaultClient,
  mount: string,
  candidates: ReadonlyMap<string, LedgerEntry>,
  concurrency: number,
): Promise<Set<string>> {
  const byFolder = new Map<string, string[]>();
  for (const path of candidates.keys()) {
    const folder = posix.dirname(path) === '.' ? '' : posix.dirname(path);
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), path]);
  }
  const vouched = new Set<string>();
  await pool([...byFolder.entries()], concurrency, async ([folder, paths]) => {
    const listed = await client.kvListMetadata(mount, folder);
    if (!listed) return;
    for (const path of paths) if (sameVersion(listed.get(posix.basename(path)), candidates.get(path)!)) vouched.add(path);
  });
  return vouched;
}
