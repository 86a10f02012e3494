// `seed`: write the [[secrets]] matrix into KV v2, idempotently.
//   read every path (bounded concurrency) -> decide per key -> one write per changed path.
// A path that exists is merge-patched (sibling keys are never clobbered); a path that does not
// is created with cas=0; any other error fails loudly. An existing random value is kept unless
// --rotate; a literal already equal is not rewritten; a bcrypt hash is kept while it verifies.
import bcrypt from 'bcryptjs';
import type { VaultClient } from '../adapters/vault.ts';
import { VaultApiError } from '../adapters/vault.ts';
import type { Plan, SeedEntry } from '../plan/types.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';

export type SeedAction = 'created' | 'updated' | 'unchanged' | 'rotated';

export interface SeedOptions {
  /** Regenerate random values (literals are restored either way). */
  rotate?: boolean;
  /** Only entries matching "path" or "path:key". */
  only?: string[];
  concurrency?: number;
}

export interface SeedReport {
  mount: string;
  counts: Record<SeedAction, number>;
  /** Per key: never a value. `verified: false` when the token may not read values (subkeys only). */
  entries: { path: string; key: string; action: SeedAction; verified: boolean }[];
  writes: number;
}

interface Current {
  exists: boolean;
  /** Values, when the token may read them. */
  data: Record<string, string> | undefined;
  /** Key names (always known). */
  keys: Set<string>;
}

export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return results;
}

function matches(entry: SeedEntry, only: string[] | undefined): boolean {
  if (!only?.length) return true;
  return only.some((o) => {
    const [path, key] = o.split(':');
    return entry.path === path && (key === undefined || key === '' || entry.key === key);
  });
}

async function readCurrent(client: VaultClient, mount: string, path: string): Promise<Current> {
  try {
    const r = await client.kvRead(mount, path);
    return r ? { exists: true, data: r.data, keys: new Set(Object.keys(r.data)) } : { exists: false, data: undefined, keys: new Set() };
  } catch (err) {
    if (!(err instanceof VaultApiError) || err.status !== 403) throw err;
    // A setup token may write but not read values: learn which keys exist from subkeys.
    const keys = await client.kvSubkeys(mount, path);
    return keys ? { exists: true, data: undefined, keys: new Set(keys) } : { exists: false, data: undefined, keys: new Set() };
  }
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

  // 1. Read what is there.
  const current = new Map<string, Current>();
  await pool(paths, concurrency, async (p) => current.set(p, await readCurrent(client, mount, p)));

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
  const needsRandom = (e: SeedEntry) => {
    if (e.source.type !== 'random') return false;
    const cur = current.get(e.path)!;
    if (!cur.keys.has(e.key) || opts.rotate) return true;
    return e.hash.type === 'bcrypt' && !!e.plaintextKey && !!cur.data && cur.data[e.plaintextKey] === undefined;
  };
  const fetchRandom = (e: SeedEntry & { source: { type: 'random' } }) => client.random(e.source.bytes, e.source.format);
  const wanted = new Set<SeedEntry | string>();
  for (const e of entries.filter(needsRandom)) if (!(e.group && groupValue.has(e.group))) wanted.add(e.group ?? e);
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
  for (const e of entries) {
    const cur = current.get(e.path)!;
    const has = cur.keys.has(e.key);
    const value = cur.data?.[e.key];
    const verified = cur.data !== undefined || !has;
    let action: SeedAction = 'unchanged';

    if (e.source.type === 'literal') {
      const desired = passwords[e.source.password] ?? '';
      if (e.hash.type === 'bcrypt') {
        const ok = value !== undefined && value.startsWith('$2') && (await bcrypt.compare(desired, value));
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
          if (e.plaintextKey) set(e.path, e.plaintextKey, plain);
        } else set(e.path, e.key, plain);
        action = has ? 'rotated' : 'created';
      } else if (e.hash.type === 'bcrypt' && e.plaintextKey && cur.data && cur.data[e.plaintextKey] === undefined) {
        // A hash without its plaintext: regenerate both, or nobody can log in.
        const plain = await randomFor(e as SeedEntry & { source: { type: 'random' } });
        set(e.path, e.key, await bcrypt.hash(plain, e.hash.cost));
        set(e.path, e.plaintextKey, plain);
        action = 'updated';
      }
    }
    report.push({ path: e.path, key: e.key, action, verified: action !== 'unchanged' || verified });
  }

  // 4. One request per changed path.
  await pool([...changes.entries()], concurrency, async ([path, data]) => {
    await writePath(client, mount, path, data, current.get(path)!.exists);
  });

  const counts: Record<SeedAction, number> = { created: 0, updated: 0, unchanged: 0, rotated: 0 };
  for (const r of report) counts[r.action]++;
  return { mount, counts, entries: report, writes: client.writes - writesBefore };
}

/**
 * PATCH when the path exists, create with cas=0 when it does not. Races and soft-deleted
 * latest versions resolve to the other form; anything else fails loudly.
 */
async function writePath(client: VaultClient, mount: string, path: string, data: Record<string, string>, exists: boolean): Promise<void> {
  if (exists) {
    const r = await client.kvPatch(mount, path, data, { accept: [404] });
    if (r.status !== 404) return;
  }
  const created = await client.kvCreate(mount, path, data, { accept: [400] });
  if (created.status !== 400) return;
  const errors: string[] = Array.isArray((created.data as any)?.errors) ? (created.data as any).errors : [];
  if (!errors.some((e) => /check-and-set/i.test(e))) throw new VaultApiError('POST', `${mount}/data/${path}`, 400, errors);
  // Someone created it since we read it: merge into theirs.
  const patched = await client.kvPatch(mount, path, data, { accept: [404] });
  if (patched.status !== 404) return;
  // Metadata without a readable latest version (deleted): write the next version.
  const meta = await client.kvMetadata(mount, path);
  await client.post(`${mount}/data/${path}`, { options: { cas: meta?.current_version ?? 0 }, data });
}
