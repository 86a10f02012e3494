// `seed`: write the [[secrets]] matrix into KV v2, idempotently.
//   check every path (bounded concurrency) -> decide per key -> one write per changed path.
// "Check" is a read, or, for paths the seed ledger (seed-ledger.ts) vouches for, Vault's own
// version metadata listed per folder: the same answer for a fraction of the requests.
// A path that exists is merge-patched (sibling keys are never clobbered); a path that does not
// is created with cas=0; any other error fails loudly. An existing random value is kept unless
// --rotate; a literal already equal is not rewritten; a bcrypt hash is kept while it verifies.
import bcrypt from 'bcryptjs';
import type { VaultClient } from '../adapters/vault.ts';
import { VaultApiError } from '../adapters/vault.ts';
import type { Plan, SeedEntry } from '../plan/types.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import type { StateDir } from '../lib/state.ts';
import { pool } from '../lib/pool.ts';
import { SeedLedger, checkableByVersion, vouchedPaths, type LedgerEntry } from './seed-ledger.ts';

export type SeedAction = 'created' | 'updated' | 'unchanged' | 'rotated';

export interface SeedOptions {
  /** Regenerate random values (literals are restored either way). */
  rotate?: boolean;
  /** Only entries matching "path" or "path:key". */
  only?: string[];
  concurrency?: number;
  /**
   * The state dir whose seed ledger records the versions seen and written. Without it every
   * path is read (the seed is just as correct, only a re-seed costs one request per path).
   */
  ledger?: StateDir;
}

export interface SeedReport {
  mount: string;
  counts: Record<SeedAction, number>;
  /**
   * Per key: never a value. `verified: false` when the values were not readable (a token that
   * sees subkeys only); for a path checked by version, what was known when that version was recorded.
   */
  entries: { path: string; key: string; action: SeedAction; verified: boolean }[];
  writes: number;
  /**
   * How the paths were checked: read one by one, or by version through the seed ledger; and how
   * literal bcrypt hashes were: compared (bcrypt run), or vouched for by the ledger (the same
   * version, checked before, holds the same plaintext beside it).
   */
  checked: { read: number; byVersion: number; hashesCompared: number; hashesVouched: number };
}

interface Current {
  exists: boolean;
  /** Values, when the token may read them (and the path was read). */
  data: Record<string, string> | undefined;
  /** Key names (always known). */
  keys: Set<string>;
  /** Whether the values were readable: now, or when the vouched-for version was recorded. */
  verified: boolean;
  /** The latest version and its created_time, when the path exists. */
  version: number;
  created: string;
  /** Vouched for by the ledger and Vault's version metadata instead of read. */
  byVersion: boolean;
}

function matches(entry: SeedEntry, only: string[] | undefined): boolean {
  if (!only?.length) return true;
  return only.some((o) => {
    const [path, key] = o.split(':');
    return entry.path === path && (key === undefined || key === '' || entry.key === key);
  });
}

/** A path with nothing in it (each its own key set: a Current is never shared between paths). */
const absent = (): Current => ({ exists: false, data: undefined, keys: new Set(), verified: true, version: 0, created: '', byVersion: false });

async function readCurrent(client: VaultClient, mount: string, path: string): Promise<Current> {
  try {
    const r = await client.kvRead(mount, path);
    return r ? { exists: true, data: r.data, keys: new Set(Object.keys(r.data)), verified: true, version: r.version, created: r.created, byVersion: false } : absent();
  } catch (err) {
    if (!(err instanceof VaultApiError) || err.status !== 403) throw err;
    // A setup token may write but not read values: learn which keys exist from subkeys.
    const r = await client.kvKeys(mount, path);
    return r ? { exists: true, data: undefined, keys: new Set(r.keys), verified: false, version: r.version, created: r.created, byVersion: false } : absent();
  }
}

function vouchedCurrent(entry: LedgerEntry): Current {
  return { exists: true, data: undefined, keys: new Set(entry.keys), verified: entry.verified, version: entry.version, created: entry.created, byVersion: true };
}

export async function seedVault(client: VaultClient, plan: Plan, passwords: Readonly<Record<string, string>>, opts: SeedOptions = {}): Promise<SeedReport> {
  const mount = plan.seeding.mount;
  const entries = plan.seeding.entries.filter((e) => matches(e, opts.only));
  if (opts.only?.length && entries.length === 0) {
    throw new VaultlabError(`--only ${opts.only.join(', ')} matches no [[secrets]] entry`, { exitCode: 2, hint: 'Use PATH or PATH:KEY exactly as in config.toml.' });
  }
  const writesBefore = client.writes;
  const concurrency = opts.concurrency ?? 16;
  // Also read the paths of entries outside --only that share a random value with a selected one,
  // so a value that exists there is reused instead of a second one being generated.
  const groups = new Set(entries.map((e) => e.group).filter((g) => g !== undefined));
  const related = plan.seeding.entries.filter((e) => e.group !== undefined && groups.has(e.group));
  const paths = [...new Set([...entries, ...related].map((e) => e.path))];

  // 1. Learn what is there: paths the ledger vouches for by version, the rest read.
  const ledger = opts.ledger ? SeedLedger.open(opts.ledger) : undefined;
  const current = new Map<string, Current>();
  if (ledger && !opts.rotate) {
    const onPath = new Map<string, SeedEntry[]>();
    for (const e of plan.seeding.entries) onPath.set(e.path, [...(onPath.get(e.path) ?? []), e]);
    const candidates = new Map<string, LedgerEntry>();
    for (const p of paths) {
      const recorded = ledger.get(mount, p);
      if (recorded && checkableByVersion(onPath.get(p)!, recorded)) candidates.set(p, recorded);
    }
    if (candidates.size > 0) for (const p of await vouchedPaths(client, mount, candidates, concurrency)) current.set(p, vouchedCurrent(candidates.get(p)!));
  }
  const read = async (p: string) => current.set(p, await readCurrent(client, mount, p));
  await pool(paths.filter((p) => !current.has(p)), concurrency, read);

  // Random values that will be needed, and whether a shared one lives on a vouched-for path
  // (whose values were not read): then that path is read after all.
  const needsRandom = (e: SeedEntry) => {
    if (e.source.type !== 'random') return false;
    const cur = current.get(e.path)!;
    if (!cur.keys.has(e.key) || opts.rotate) return true;
    return e.hash.type === 'bcrypt' && !!e.plaintextKey && !!cur.data && cur.data[e.plaintextKey] === undefined;
  };
  // Reading a holder does not change what it needs: its keys are the ones the ledger recorded.
  const needing = entries.filter(needsRandom);
  const wantedGroups = new Set(needing.map((e) => e.group).filter((g) => g !== undefined));
  const holders = plan.seeding.entries.filter((e) => e.group !== undefined && wantedGroups.has(e.group) && current.get(e.path)?.byVersion).map((e) => e.path);
  await pool([...new Set(holders)], concurrency, read);

  // 2. Random values shared by name: reuse one that exists anywhere, unless rotating.
  const groupValue = new Map<string, string>();
  if (!opts.rotate) {
    for (const e of plan.seeding.entries) {
      if (!e.group || groupValue.has(e.group)) continue;
      // The plaintext: the key itself, or with bcrypt the plaintext key beside the hash.
      const plainKey = e.hash.type === 'bcrypt' ? e.plaintextKey : e.key;
      const existing = plainKey === undefined ? undefined : current.get(e.path)?.data?.[plainKey];
      if (existing !== undefined) groupValue.set(e.group, existing);
    }
  }
  // Random values that will be needed, fetched from Vault's CSPRNG concurrently up front.
  const fetchRandom = (e: SeedEntry & { source: { type: 'random' } }) => client.random(e.source.bytes, e.source.format);
  const wanted = new Set<SeedEntry | string>();
  for (const e of needing) if (!(e.group && groupValue.has(e.group))) wanted.add(e.group ?? e);
  const ids = [...wanted];
  const fetched = await pool(ids, concurrency, async (id) => {
    const e = (typeof id === 'string' ? entries.find((x) => x.group === id) : id) as SeedEntry & { source: { type: 'random' } };
    return fetchRandom(e);
  });
  const randomById = new Map(ids.map((id, i) => [id, fetched[i]!]));
  const randomFor = async (e: SeedEntry & { source: { type: 'random' } }): Promise<string> => {
    if (e.group && groupValue.has(e.group)) return groupValue.get(e.group)!;
    const value = randomById.get(e.group ?? e) ?? (await fetchRandom(e));
    if (e.group) groupValue.set(e.group, value);
    return value;
  };

  // 3. Decide per key, collecting one change set per path.
  const changes = new Map<string, Record<string, string>>();
  const report: SeedReport['entries'] = [];
  const set = (path: string, key: string, value: string) => {
    registerSecret(value);
    const c = changes.get(path) ?? {};
    c[key] = value;
    changes.set(path, c);
  };
  // bcrypt keys whose hash matches the plaintext beside it in the version read (per path), so the
  // ledger can skip the hash next time that same version holds the same plaintext; and the ones
  // written together with their plaintext (true in the version a write makes).
  const hashOk = new Map<string, string[]>();
  const hashWritten = new Map<string, string[]>();
  const note = (m: Map<string, string[]>, path: string, key: string) => m.set(path, [...(m.get(path) ?? []), key]);
  const hashCounts = { compared: 0, vouched: 0 };
  for (const e of entries) {
    const cur = current.get(e.path)!;
    const has = cur.keys.has(e.key);
    const value = cur.data?.[e.key];
    const verified = cur.verified || !has;
    let action: SeedAction = 'unchanged';

    if (e.source.type === 'literal') {
      const desired = passwords[e.source.password] ?? '';
      if (e.hash.type === 'bcrypt') {
        // The plaintext beside the hash is the desired one, and this very version's hash was
        // checked against it before (KV versions are immutable): the hash still verifies.
        const recorded = ledger?.get(mount, e.path);
        const plainHere = !!e.plaintextKey && cur.data?.[e.plaintextKey] === desired;
        const vouched = plainHere && !!recorded && recorded.version === cur.version && recorded.created === cur.created && !!recorded.hashesVerified?.includes(e.key);
        const looksHashed = value !== undefined && value.startsWith('$2');
        if (looksHashed) hashCounts[vouched ? 'vouched' : 'compared']++;
        const ok = looksHashed && (vouched || (await bcrypt.compare(desired, value)));
        if (ok && plainHere) note(hashOk, e.path, e.key);
        if (e.plaintextKey && (!has || (cur.data !== undefined && !ok))) note(hashWritten, e.path, e.key);
        if (!has || (cur.data !== undefined && !ok)) {
          set(e.path, e.key, await bcrypt.hash(desired, e.hash.cost));
          action = has ? 'updated' : 'created';
        }
        if (e.plaintextKey && (cur.data ? cur.data[e.plaintextKey] !== desired : !cur.keys.has(e.plaintextKey))) set(e.path, e.plaintextKey, desired);
      } else if (!has || (cur.data !== undefined && value !== desired)) {
        set(e.path, e.key, desired);
        action = has ? 'updated' : 'created';
      }
    } else {
      const rotate = !!opts.rotate;
      if (!has || rotate) {
        const plain = await randomFor(e as SeedEntry & { source: { type: 'random' } });
        if (e.hash.type === 'bcrypt') {
          set(e.path, e.key, await bcrypt.hash(plain, e.hash.cost));
          if (e.plaintextKey) {
            set(e.path, e.plaintextKey, plain);
            note(hashWritten, e.path, e.key);
          }
        } else set(e.path, e.key, plain);
        action = has ? 'rotated' : 'created';
      } else if (e.hash.type === 'bcrypt' && e.plaintextKey && cur.data && cur.data[e.plaintextKey] === undefined) {
        // A hash without its plaintext: regenerate both, or nobody can log in.
        const plain = await randomFor(e as SeedEntry & { source: { type: 'random' } });
        set(e.path, e.key, await bcrypt.hash(plain, e.hash.cost));
        set(e.path, e.plaintextKey, plain);
        note(hashWritten, e.path, e.key);
        action = 'updated';
      }
    }
    report.push({ path: e.path, key: e.key, action, verified: action !== 'unchanged' || verified });
  }

  // 4. One request per changed path. The ledger records each path's version as read or written;
  // a write whose resulting version is not known for sure leaves its path to be read next time.
  const written = new Map<string, { version: number; created: string } | undefined>();
  try {
    await pool([...changes.entries()], concurrency, async ([path, data]) => {
      written.set(path, await writePath(client, mount, path, data, current.get(path)!));
    });
  } finally {
    if (ledger) {
      for (const p of paths) {
        const cur = current.get(p)!;
        if (changes.has(p)) {
          const v = written.get(p);
          // In the new version: the hashes written with their plaintext, and the ones that
          // verified here when this write touched neither the hash nor its plaintext.
          const changed = changes.get(p)!;
          const untouched = (hashOk.get(p) ?? []).filter((k) => {
            const e = entries.find((x) => x.path === p && x.key === k)!;
            return !(k in changed) && !(e.plaintextKey! in changed);
          });
          const hashesVerified = [...(hashWritten.get(p) ?? []), ...untouched];
          ledger.set(mount, p, v ? { ...v, keys: [...cur.keys, ...Object.keys(changed)], verified: cur.verified, hashesVerified } : undefined);
        } else if (!cur.byVersion) {
          ledger.set(mount, p, cur.exists && cur.created ? { version: cur.version, created: cur.created, keys: [...cur.keys], verified: cur.verified, hashesVerified: hashOk.get(p) ?? [] } : undefined);
        }
      }
      ledger.save();
    }
  }

  const counts: Record<SeedAction, number> = { created: 0, updated: 0, unchanged: 0, rotated: 0 };
  for (const r of report) counts[r.action]++;
  const byVersion = paths.filter((p) => current.get(p)!.byVersion).length;
  return { mount, counts, entries: report, writes: client.writes - writesBefore, checked: { read: paths.length - byVersion, byVersion, hashesCompared: hashCounts.compared, hashesVouched: hashCounts.vouched } };
}

/**
 * PATCH when the path exists, create with cas=0 when it does not. Races and soft-deleted
 * latest versions resolve to the other form; anything else fails loudly. Returns the version
 * written when its keys are known for sure: a create, or a patch of exactly the version read
 * (the next version number); undefined when someone else may have written in between.
 */
async function writePath(client: VaultClient, mount: string, path: string, data: Record<string, string>, cur: Current): Promise<{ version: number; created: string } | undefined> {
  const written = (r: { data: any }) => ({ version: Number(r.data?.data?.version), created: String(r.data?.data?.created_time ?? '') });
  if (cur.exists) {
    const r = await client.kvPatch(mount, path, data, { accept: [404] });
    if (r.status !== 404) {
      const v = written(r);
      return v.version === cur.version + 1 && v.created ? v : undefined;
    }
  }
  const created = await client.kvCreate(mount, path, data, { accept: [400] });
  if (created.status !== 400) {
    const v = written(created);
    return v.version === 1 && v.created && !cur.exists ? v : undefined;
  }
  const errors: string[] = Array.isArray((created.data as any)?.errors) ? (created.data as any).errors : [];
  if (!errors.some((e) => /check-and-set/i.test(e))) throw new VaultApiError('POST', `${mount}/data/${path}`, 400, errors);
  // Someone created it since we read it: merge into theirs.
  const patched = await client.kvPatch(mount, path, data, { accept: [404] });
  if (patched.status !== 404) return undefined;
  // Metadata without a readable latest version (deleted): write the next version.
  const meta = await client.kvMetadata(mount, path);
  await client.post(`${mount}/data/${path}`, { options: { cas: meta?.current_version ?? 0 }, data });
  return undefined;
}
