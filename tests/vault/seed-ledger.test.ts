// The seed ledger against a real OpenBao: a re-seed checks random-only paths by Vault's version
// metadata (one listing per folder) and reads the rest, and every change made behind vaultlab's
// back (a new version, a deletion, a recreated path) sends that path back to a real read.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { seedVault } from '../../scripts/vault/seed.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { LEDGER_FILE } from '../../scripts/vault/seed-ledger.ts';
import bcrypt from 'bcryptjs';

const CONFIG = `
[passwords]
shared = ""
admin = "a-literal-admin-password"

[[secrets]]
path = "team/alpha"
key = "token"
format = "hex"
bytes = 16
[[secrets]]
path = "team/alpha"
key = "pw"
password = "shared"
[[secrets]]
path = "team/beta"
key = "pw"
password = "shared"
[[secrets]]
path = "team/gamma"
key = "hash"
format = "base64"
bytes = 16
hash = "bcrypt"
bcrypt_cost = 4
plaintext_key = "plain"
[[secrets]]
path = "ops/admin"
key = "password"
password = "admin"
[[secrets]]
path = "top"
key = "k"
format = "hex"
bytes = 8
`;

const newState = () => new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-ledger-')), 'state'));

describe('seed ledger: re-seeds checked by version against a real OpenBao', () => {
  let bao: BaoServer;
  let root: VaultClient;
  let rootToken: string;
  const loaded = loadConfigText(CONFIG, 'ledger.toml', { env: {} });
  const plan = buildPlan(loaded);
  const seed = async (state: StateDir | undefined, opts: { rotate?: boolean; token?: string } = {}) => {
    const c = new VaultClient({ address: bao.address, token: opts.token ?? rootToken });
    const before = c.requests;
    const r = await seedVault(c, plan, loaded.passwords, { ...(state ? { ledger: state } : {}), ...(opts.rotate ? { rotate: true } : {}) });
    const requests = c.requests - before;
    c.close();
    return { ...r, requests };
  };
  const value = async (path: string, key: string) => (await root.kvRead('secret', path))!.data[key];

  beforeAll(async () => {
    bao = await startBao();
    const state = newState();
    root = new VaultClient({ address: bao.address });
    await vaultUp(root, plan, state, { passwords: loaded.passwords, seed: false });
    rootToken = readInit(state)!.root_token!;
  });
  afterAll(async () => {
    root?.close();
    await bao?.stop();
  });

  it('the first seed records every path; the re-seed lists three folders, reads only the literal path, and writes nothing', async () => {
    const state = newState();
    const first = await seed(state);
    expect(first.counts.created).toBe(plan.seeding.entries.length);
    expect(first.checked).toMatchObject({ read: 5, byVersion: 0 });
    const ledger = JSON.parse(readFileSync(state.file(LEDGER_FILE), 'utf8'));
    expect(Object.keys(ledger.mounts.secret).sort()).toEqual(['ops/admin', 'team/alpha', 'team/beta', 'team/gamma', 'top']);
    expect(ledger.mounts.secret['team/gamma']).toMatchObject({ version: 1, keys: ['hash', 'plain'], verified: true });
    expect(statSync(state.file(LEDGER_FILE)).mode & 0o777).toBe(0o600);
    // Key names and versions only: no value of any path is in the file.
    const text = readFileSync(state.file(LEDGER_FILE), 'utf8');
    for (const p of ['team/alpha', 'team/beta', 'team/gamma', 'ops/admin', 'top']) {
      for (const v of Object.values((await root.kvRead('secret', p))!.data)) expect(text.includes(v), `a value of ${p} is in the ledger`).toBe(false);
    }
    const mtime = statSync(state.file(LEDGER_FILE)).mtimeMs;

    const again = await seed(state);
    expect(again.counts.unchanged).toBe(plan.seeding.entries.length);
    expect(again.writes).toBe(0);
    expect(again.checked).toMatchObject({ read: 1, byVersion: 4 });
    // One listing for team/, one for the mount root (top), and one read of ops/admin.
    expect(again.requests).toBe(3);
    expect(again.entries.every((e) => e.verified)).toBe(true);
    // Nothing changed, so the ledger is not rewritten.
    expect(statSync(state.file(LEDGER_FILE)).mtimeMs).toBe(mtime);
  });

  it('a changed literal in config.toml is still found: literal paths are always read and compared', async () => {
    const state = newState();
    await seed(state);
    await root.kvPatch('secret', 'ops/admin', { password: 'tampered-by-hand' });
    const r = await seed(state);
    expect(r.entries.find((e) => e.path === 'ops/admin')!.action).toBe('updated');
    expect(await value('ops/admin', 'password')).toBe('a-literal-admin-password');
  });

  it('a new version written behind vaultlab\'s back sends the path to a read: a key removed by hand is created again', async () => {
    const state = newState();
    await seed(state);
    const kept = await value('team/alpha', 'pw');
    // `kv put` replaces the whole secret: the token key is gone, the version moves on.
    await root.post('secret/data/team/alpha', { data: { pw: kept } });
    const r = await seed(state);
    expect(r.checked).toMatchObject({ read: 2, byVersion: 3 });
    expect(r.entries.find((e) => e.path === 'team/alpha' && e.key === 'token')!.action).toBe('created');
    expect(r.entries.find((e) => e.path === 'team/alpha' && e.key === 'pw')!.action).toBe('unchanged');
    expect(await value('team/alpha', 'token')).toMatch(/^[0-9a-f]{32}$/);
    // The write was recorded: the next re-seed checks the path by version again.
    expect((await seed(state)).checked).toMatchObject({ read: 1, byVersion: 4 });
  });

  it('a soft-deleted latest version, and a path deleted and recreated with the same keys at the same version, are both read', async () => {
    const state = newState();
    await seed(state);
    await root.delete('secret/data/top');
    await root.delete('secret/metadata/team/gamma');
    await root.post('secret/data/team/gamma', { data: { hash: 'not-a-bcrypt-hash', plain: 'by-hand' } }); // version 1 again
    const r = await seed(state);
    expect(r.checked).toMatchObject({ read: 3, byVersion: 2 });
    expect(r.entries.find((e) => e.path === 'top')!.action).toBe('created');
    expect((await root.kvMetadata('secret', 'top'))!.current_version).toBe(2);
    // Read, it is seen for what it is: a random pair that exists is kept, as without a ledger.
    expect(r.entries.filter((e) => e.path === 'team/gamma').map((e) => e.action)).toEqual(['unchanged']);
    expect(await value('team/gamma', 'plain')).toBe('by-hand');
    expect((await root.kvMetadata('secret', 'team/gamma'))!.current_version).toBe(1);
  });

  it('a shared value held on a path checked by version is read, not generated again, when another holder lost it', async () => {
    const state = newState();
    await seed(state);
    const shared = await value('team/alpha', 'pw');
    await root.delete('secret/metadata/team/beta');
    const r = await seed(state);
    expect(r.entries.find((e) => e.path === 'team/beta')!.action).toBe('created');
    expect(await value('team/beta', 'pw')).toBe(shared);
    expect(r.checked.byVersion).toBe(2); // team/gamma and top; team/alpha was read for its value
  });

  it('--rotate reads every path and records the new versions, so the next re-seed checks them by version', async () => {
    const state = newState();
    await seed(state);
    const before = await value('top', 'k');
    const r = await seed(state, { rotate: true });
    expect(r.checked).toMatchObject({ read: 5, byVersion: 0 });
    expect(await value('top', 'k')).not.toBe(before);
    const next = await seed(state);
    expect(next.checked).toMatchObject({ read: 1, byVersion: 4 });
    expect(next.writes).toBe(0);
  });

  it('a token that may not list detailed metadata (as on HashiCorp Vault, which has no such listing) reads every path, with the same result', async () => {
    const state = newState();
    await seed(state);
    await root.put('sys/policies/acl/seed-no-list', {
      policy: 'path "secret/data/*" { capabilities = ["read", "create", "update", "patch"] }\npath "secret/metadata/*" { capabilities = ["read"] }\npath "sys/tools/random/*" { capabilities = ["update"] }\n',
    });
    const t = (await root.post<any>('auth/token/create', { policies: ['seed-no-list'], ttl: '10m' })).data.auth.client_token as string;
    const r = await seed(state, { token: t });
    expect(r.counts.unchanged).toBe(plan.seeding.entries.length);
    expect(r.writes).toBe(0);
    expect(r.checked).toMatchObject({ read: 5, byVersion: 0 });
  });

  it('a damaged ledger is ignored and replaced; without a ledger every path is read', async () => {
    const state = newState();
    await seed(state);
    writeFileSync(state.file(LEDGER_FILE), '{ not json', { mode: 0o600 });
    const r = await seed(state);
    expect(r.checked).toMatchObject({ read: 5, byVersion: 0 });
    expect(r.writes).toBe(0);
    expect((await seed(state)).checked).toMatchObject({ read: 1, byVersion: 4 });
    expect((await seed(undefined)).checked).toMatchObject({ read: 5, byVersion: 0 });
  });

  it('a literal bcrypt hash is compared once per version: re-seeds trust the ledger while the same version holds the same plaintext, and compare again after any change', async () => {
    const text = `
[passwords]
argo = "first-admin-password"
[[secrets]]
path = "hashed/argo"
key = "hash"
password = "argo"
hash = "bcrypt"
bcrypt_cost = 4
plaintext_key = "plain"
`;
    const run = async (state: StateDir, pw: string) => {
      const l = loadConfigText(text.replace('first-admin-password', pw), 'bcrypt.toml', { env: {} });
      const c = new VaultClient({ address: bao.address, token: rootToken });
      const r = await seedVault(c, buildPlan(l), l.passwords, { ledger: state });
      c.close();
      return { action: r.entries[0]!.action, checked: r.checked, writes: r.writes };
    };
    const state = newState();
    expect(await run(state, 'first-admin-password')).toMatchObject({ action: 'created', checked: { hashesCompared: 0, hashesVouched: 0 } });
    expect(JSON.parse(readFileSync(state.file(LEDGER_FILE), 'utf8')).mounts.secret['hashed/argo'].hashesVerified).toEqual(['hash']);
    // The same version, the same plaintext: no bcrypt run, nothing written.
    expect(await run(state, 'first-admin-password')).toEqual({ action: 'unchanged', checked: { read: 1, byVersion: 0, hashesCompared: 0, hashesVouched: 1 }, writes: 0 });
    // A hash of another password written behind vaultlab's back (a new version, the same plaintext): compared, found wrong, re-hashed.
    await root.kvPatch('secret', 'hashed/argo', { hash: await bcrypt.hash('someone-elses', 4) });
    expect(await run(state, 'first-admin-password')).toMatchObject({ action: 'updated', checked: { hashesCompared: 1, hashesVouched: 0 }, writes: 1 });
    expect(await bcrypt.compare('first-admin-password', (await value('hashed/argo', 'hash'))!)).toBe(true);
    expect((await run(state, 'first-admin-password')).checked.hashesVouched).toBe(1);
    // A new literal in config.toml: the plaintext in Vault differs, so the ledger vouches for nothing.
    expect(await run(state, 'second-admin-password')).toMatchObject({ action: 'updated', checked: { hashesCompared: 1, hashesVouched: 0 } });
    expect(await value('hashed/argo', 'plain')).toBe('second-admin-password');
    expect(await bcrypt.compare('second-admin-password', (await value('hashed/argo', 'hash'))!)).toBe(true);
    // The ledger file lost: compared again, still unchanged.
    writeFileSync(state.file(LEDGER_FILE), '{}', { mode: 0o600 });
    expect(await run(state, 'second-admin-password')).toMatchObject({ action: 'unchanged', checked: { hashesCompared: 1, hashesVouched: 0 }, writes: 0 });
  });
});
