// The Vault engine against a real OpenBao server (real init and unseal, persistent storage).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { loadConfig, loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { initVault } from '../../scripts/vault/init.ts';
import { unsealVault, waitForActive } from '../../scripts/vault/seal.ts';
import { configureVault } from '../../scripts/vault/configure.ts';
import { seedVault } from '../../scripts/vault/seed.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { generateRoot } from '../../scripts/vault/token.ts';
import { policyHcl } from '../../scripts/plan/policies.ts';

const tmpState = () => new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-state-')), '.vaultlab', 'test'));

describe('init and unseal (demo 1/1)', () => {
  let bao: BaoServer;
  beforeAll(async () => {
    bao = await startBao();
  });
  afterAll(async () => bao?.stop());

  it('initializes with one share, persists the result 0600 before unsealing, and unseals', async () => {
    const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
    const state = tmpState();
    const client = new VaultClient({ address: bao.address });
    let sawFileInHook = false;
    const r = await initVault(client, plan, state, {
      persistInCluster: async () => {
        // The hook runs after the file is on disk: keys are never only in memory.
        sawFileInHook = state.has('vault-init.json');
        return 'Secret vault/vault-init-keys';
      },
    });
    expect(r.action).toBe('initialized');
    expect(sawFileInHook).toBe(true);
    expect(r.stored).toEqual([state.file('vault-init.json'), 'Secret vault/vault-init-keys']);
    expect(statSync(state.file('vault-init.json')).mode & 0o777).toBe(0o600);
    expect(statSync(state.path).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(state.path, '..', '.gitignore'), 'utf8')).toContain('*');
    const init = readInit(state)!;
    expect(init.keys_base64).toHaveLength(1);
    expect(init.threshold).toBe(1);
    expect((await client.sealStatus()).sealed).toBe(true);
    const u = await unsealVault(client, init.keys_base64);
    expect(u).toMatchObject({ action: 'unsealed', sharesUsed: 1 });
    expect((await unsealVault(client, init.keys_base64)).action).toBe('already-unsealed');
    // A second init is a no-op.
    expect((await initVault(client, plan, state)).action).toBe('already-initialized');
    client.close();
  });

  it('after unseal, waitForActive returns only once the node is active: the first write needs no retry', async () => {
    const b = await startBao();
    try {
      const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
      const state = tmpState();
      const c = new VaultClient({ address: b.address, attempts: 1 });
      await initVault(c, plan, state);
      const init = readInit(state)!;
      await unsealVault(c, init.keys_base64);
      await waitForActive(c);
      expect(await c.health()).toMatchObject({ initialized: true, sealed: false, standby: false });
      expect((await c.leader()).is_self).toBe(true);
      c.setToken(init.root_token!);
      await c.post('sys/mounts/kvtest', { type: 'kv', options: { version: '2' } }); // attempts: 1, so no retry hides a 5xx
      c.close();
    } finally {
      await b.stop();
    }
  });

  it('waitForActive on a sealed Vault gives up after its timeout, saying it is sealed', async () => {
    const b = await startBao();
    try {
      const c = new VaultClient({ address: b.address });
      await initVault(c, buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} })), tmpState());
      const err = await waitForActive(c, 500).catch((e) => e);
      expect(err.message).toMatch(/no active node after .* \(last seen: sealed\)/);
      expect(err.hint).toBe('Unseal it: vaultlab vault unseal');
      c.close();
    } finally {
      await b.stop();
    }
  });
});

describe('init and unseal (production 5/3)', () => {
  let bao: BaoServer;
  beforeAll(async () => {
    bao = await startBao();
  });
  afterAll(async () => bao?.stop());

  it('initializes with 5 shares, threshold 3, unseals with 3 of them, and never overwrites the key file', async () => {
    const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));
    const state = tmpState();
    const client = new VaultClient({ address: bao.address });
    await initVault(client, plan, state);
    const init = readInit(state)!;
    expect(init.keys_base64).toHaveLength(5);
    expect(init.threshold).toBe(3);
    const status = await client.sealStatus();
    expect(status).toMatchObject({ sealed: true, t: 3, n: 5 });
    // Shares 2, 4 and 5: any three will do.
    const u = await unsealVault(client, [init.keys_base64[1]!, init.keys_base64[3]!, init.keys_base64[4]!]);
    expect(u).toMatchObject({ action: 'unsealed', sharesUsed: 3 });
    // Two shares are not enough, with a clear message.
    const fresh = await startBao();
    try {
      const c2 = new VaultClient({ address: fresh.address });
      await expect(initVault(c2, plan, state)).rejects.toThrow(/holds the keys of an earlier one/);
      c2.close();
    } finally {
      await fresh.stop();
    }
    client.close();
  });

  it('refuses to unseal with fewer shares than the threshold', async () => {
    const b = await startBao();
    try {
      const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));
      const state = tmpState();
      const c = new VaultClient({ address: b.address });
      await initVault(c, plan, state);
      const keys = readInit(state)!.keys_base64;
      await expect(unsealVault(c, keys.slice(0, 2))).rejects.toThrow(/needs 3 key shares to unseal, 2 given/);
      c.close();
    } finally {
      await b.stop();
    }
  });

  it('an initialized Vault whose keys vaultlab does not have is explained, with the fix', async () => {
    const b = await startBao();
    try {
      const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
      const c = new VaultClient({ address: b.address });
      await initVault(c, plan, tmpState()); // keys go to a state dir we then "lose"
      const err = await vaultUp(c, plan, tmpState(), { passwords: {} }).catch((e) => e);
      expect(err.message).toMatch(/initialized and sealed, but vaultlab has no keys for it/);
      expect(err.hint).toMatch(/vaultlab reset --full/);
      expect(err.hint).toMatch(/--keys-file/);
      c.close();
    } finally {
      await b.stop();
    }
  });
});

describe('configure and seed (demo)', () => {
  let bao: BaoServer;
  let client: VaultClient;
  let state: StateDir;
  const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
  const plan = buildPlan(loaded);

  beforeAll(async () => {
    bao = await startBao();
    state = tmpState();
    client = new VaultClient({ address: bao.address });
    await vaultUp(client, plan, state, { passwords: loaded.passwords, seed: false });
  });
  afterAll(async () => {
    client?.close();
    await bao?.stop();
  });

  it('a second configure changes nothing and performs zero writes', async () => {
    const before = client.writes;
    const items = await configureVault(client, plan);
    expect(items.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped')).toEqual([]);
    expect(client.writes - before).toBe(0);
    expect(items.map((i) => i.name)).toEqual(
      expect.arrayContaining(['secret/', 'database/', 'transit/', 'kubernetes/', 'eso-policy', 'eso-webapp-role', 'eso-argocd-role', 'transit/keys/vso-client-cache']),
    );
  });

  it("VSO's client cache key: created once in transit/ (aes256-gcm96); vso-client-cache-role may encrypt and decrypt with it and do nothing else", async () => {
    const key = (await client.get<any>('transit/keys/vso-client-cache')).data.data;
    expect(key).toMatchObject({ type: 'aes256-gcm96', deletion_allowed: false });
    // What the role's policy allows, through a token holding only that policy.
    const t = (await client.post<any>('auth/token/create', { policies: ['vso-client-cache-policy'], ttl: '5m' })).data.auth.client_token;
    const c = new VaultClient({ address: bao.address, token: t, attempts: 1 });
    try {
      const plaintext = Buffer.from('{"token":"a cached client"}').toString('base64');
      const enc = (await c.post<any>('transit/encrypt/vso-client-cache', { plaintext })).data.data;
      expect(enc.ciphertext).toMatch(/^vault:v1:/);
      expect((await c.post<any>('transit/decrypt/vso-client-cache', { ciphertext: enc.ciphertext })).data.data.plaintext).toBe(plaintext);
      const denied = await Promise.all([c.get('transit/keys/vso-client-cache'), c.post('transit/keys/other', {}), c.post('transit/encrypt/other', { plaintext }), c.get('secret/data/webapp/db')].map((p) => p.then(() => undefined, (e) => e)));
      expect(denied.map((e) => e?.status)).toEqual([403, 403, 403, 403]);
    } finally {
      c.close();
    }
    // A type mismatch (another key of that name) is an error, never a replacement.
    await client.post('transit/keys/taken', { type: 'ed25519' });
    const other = { ...plan, vault: { ...plan.vault, transitKeys: [{ ...plan.vault.transitKeys[0]!, name: 'taken' }] } };
    await expect(configureVault(client, other)).rejects.toThrow('transit key transit/keys/taken exists with type "ed25519", but vaultlab creates "aes256-gcm96"');
  });

  it('roles are bound to SA external-secrets in their namespace with audience vault', async () => {
    const r = await client.get<any>('auth/kubernetes/role/eso-webapp-role');
    expect(r.data.data).toMatchObject({
      bound_service_account_names: ['external-secrets'],
      bound_service_account_namespaces: ['webapp'],
      audience: 'vault',
      token_policies: ['eso-policy'],
      token_ttl: 3600,
    });
    const mounts = (await client.get<any>('sys/mounts')).data.data;
    expect(mounts['secret/']).toMatchObject({ type: 'kv', options: { version: '2' } });
  });

  it('a drifted role is updated, and --prune removes roles and policies no longer configured', async () => {
    await client.post('auth/kubernetes/role/eso-webapp-role', { bound_service_account_names: ['someone'], bound_service_account_namespaces: ['webapp'], audience: 'vault', token_policies: ['eso-policy'], token_ttl: 3600 });
    await client.post('auth/kubernetes/role/eso-old-role', { bound_service_account_names: ['x'], bound_service_account_namespaces: ['old'], token_policies: ['eso-old-policy'] });
    await client.put('sys/policies/acl/eso-old-policy', { policy: 'path "secret/data/old/*" { capabilities = ["read"] }' });
    await client.put('sys/policies/acl/not-ours', { policy: 'path "x/*" { capabilities = ["read"] }' });
    // A setup token may depend on this one: --prune leaves it alone in every profile.
    await client.put('sys/policies/acl/vaultlab-setup', { policy: 'path "sys/mounts" { capabilities = ["read"] }' });
    const items = await configureVault(client, plan, { prune: true });
    expect(items).toContainEqual({ kind: 'role', name: 'eso-webapp-role', action: 'updated' });
    expect(items).toContainEqual({ kind: 'role', name: 'eso-old-role', action: 'deleted' });
    expect(items).toContainEqual({ kind: 'policy', name: 'eso-old-policy', action: 'deleted' });
    expect((await client.get('sys/policies/acl/not-ours', { accept: [404] })).status).toBe(200);
    expect((await client.get('sys/policies/acl/vaultlab-setup', { accept: [404] })).status).toBe(200);
    expect(items.filter((i) => i.action === 'deleted').map((i) => i.name).sort()).toEqual(['eso-old-policy', 'eso-old-role']);
    // Pruned is gone for good: the next run has nothing to delete and writes nothing.
    const before = client.writes;
    expect((await configureVault(client, plan, { prune: true })).filter((i) => i.action !== 'unchanged' && i.action !== 'skipped')).toEqual([]);
    expect(client.writes - before).toBe(0);
  });

  it('seeds literal, base64, hex and bcrypt values; a re-run writes nothing and rotates nothing', async () => {
    const first = await seedVault(client, plan, loaded.passwords);
    expect(first.counts.created).toBe(plan.seeding.entries.length);
    const db = (await client.kvRead('secret', 'webapp/db'))!.data;
    expect(db.username).toBe(loaded.passwords.webapp_db_user);
    expect(Buffer.from(db.password!, 'base64')).toHaveLength(24); // random, base64, 24 bytes
    const api = (await client.kvRead('secret', 'webapp/api'))!.data;
    expect(api.api_key).toMatch(/^[0-9a-f]{64}$/); // 32 bytes hex
    const argo = (await client.kvRead('secret', 'argocd/admin'))!.data;
    expect(argo['admin.password']).toMatch(/^\$2[ab]\$10\$/); // ArgoCD-compatible bcrypt, cost 10
    expect(await bcrypt.compare(loaded.passwords.argocd_admin!, argo['admin.password']!)).toBe(true);
    expect(argo['admin.password.plain']).toBe(loaded.passwords.argocd_admin);

    const versions = async () =>
      Object.fromEntries(await Promise.all([...new Set(plan.seeding.entries.map((e) => e.path))].map(async (p) => [p, (await client.kvMetadata('secret', p))!.current_version])));
    const v1 = await versions();
    const before = client.writes;
    const second = await seedVault(client, plan, loaded.passwords);
    expect(second.counts).toEqual({ created: 0, updated: 0, rotated: 0, unchanged: plan.seeding.entries.length });
    expect(client.writes - before).toBe(0);
    expect(await versions()).toEqual(v1);
    expect((await client.kvRead('secret', 'webapp/db'))!.data.password).toBe(db.password);
  });

  it('never clobbers a sibling key: patch merges into the existing secret', async () => {
    await client.kvPatch('secret', 'webapp/db', { added_by_someone_else: 'keep-me-1234' });
    await seedVault(client, plan, loaded.passwords, { rotate: true });
    const db = (await client.kvRead('secret', 'webapp/db'))!.data;
    expect(db.added_by_someone_else).toBe('keep-me-1234');
    expect(Object.keys(db).sort()).toEqual(['added_by_someone_else', 'password', 'username']);
  });

  it('--rotate regenerates random values and restores changed literals; bcrypt is re-hashed only when it no longer verifies', async () => {
    const before = (await client.kvRead('secret', 'webapp/api'))!.data.api_key;
    const hashBefore = (await client.kvRead('secret', 'argocd/admin'))!.data['admin.password'];
    await client.kvPatch('secret', 'webapp/db', { username: 'tampered' });
    const r = await seedVault(client, plan, loaded.passwords, { rotate: true });
    expect(r.entries.find((e) => e.key === 'api_key')!.action).toBe('rotated');
    expect(r.entries.find((e) => e.path === 'webapp/db' && e.key === 'username')!.action).toBe('updated');
    expect(r.entries.find((e) => e.key === 'admin.password')!.action).toBe('unchanged');
    expect((await client.kvRead('secret', 'webapp/api'))!.data.api_key).not.toBe(before);
    expect((await client.kvRead('secret', 'webapp/db'))!.data.username).toBe(loaded.passwords.webapp_db_user);
    expect((await client.kvRead('secret', 'argocd/admin'))!.data['admin.password']).toBe(hashBefore);
  });

  it('a changed literal re-hashes bcrypt; --only limits the run', async () => {
    const changed = { ...loaded.passwords, argocd_admin: 'a-new-admin-password' };
    const r = await seedVault(client, plan, changed, { only: ['argocd/admin:admin.password'] });
    expect(r.entries).toEqual([{ path: 'argocd/admin', key: 'admin.password', action: 'updated', verified: true }]);
    const argo = (await client.kvRead('secret', 'argocd/admin'))!.data;
    expect(await bcrypt.compare('a-new-admin-password', argo['admin.password']!)).toBe(true);
    expect(argo['admin.password.plain']).toBe('a-new-admin-password');
    await expect(seedVault(client, plan, loaded.passwords, { only: ['nope/x'] })).rejects.toThrow(/matches no \[\[secrets\]\] entry/);
  });

  it('entries sharing a random [passwords] name get one value, reused when one already exists', async () => {
    const text = `
[passwords]
shared = ""
[[secrets]]
path = "shared/one"
key = "pw"
password = "shared"
[[secrets]]
path = "shared/two"
key = "pw"
password = "shared"
format = "hex"
`;
    const l = loadConfigText(text, 'c', { env: {} });
    const p = buildPlan(l);
    await seedVault(client, p, l.passwords);
    const one = (await client.kvRead('secret', 'shared/one'))!.data.pw;
    expect((await client.kvRead('secret', 'shared/two'))!.data.pw).toBe(one);
    await client.delete('secret/metadata/shared/two');
    await seedVault(client, p, l.passwords);
    expect((await client.kvRead('secret', 'shared/two'))!.data.pw).toBe(one);
  });

  it('a shared value is reused from a bcrypt entry\'s plaintext, also for a path outside --only', async () => {
    const text = `
[passwords]
ui_admin = ""
[[secrets]]
path = "shared/hashed"
key = "hash"
password = "ui_admin"
hash = "bcrypt"
bcrypt_cost = 4
plaintext_key = "plain"
[[secrets]]
path = "shared/clear"
key = "pw"
password = "ui_admin"
`;
    const l = loadConfigText(text, 'c', { env: {} });
    const p = buildPlan(l);
    await seedVault(client, p, l.passwords);
    const hashed = (await client.kvRead('secret', 'shared/hashed'))!.data;
    expect((await client.kvRead('secret', 'shared/clear'))!.data.pw).toBe(hashed.plain);
    expect(await bcrypt.compare(hashed.plain!, hashed.hash!)).toBe(true);
    // The clear copy is lost; re-seeding only it takes the value from the hashed entry's plaintext.
    await client.delete('secret/metadata/shared/clear');
    const r = await seedVault(client, p, l.passwords, { only: ['shared/clear'] });
    expect(r.entries).toEqual([{ path: 'shared/clear', key: 'pw', action: 'created', verified: true }]);
    expect((await client.kvRead('secret', 'shared/clear'))!.data.pw).toBe(hashed.plain);
    expect((await client.kvMetadata('secret', 'shared/hashed'))!.current_version).toBe(1);
  });

  it('a path that does not exist yet is created (404 -> create with cas=0)', async () => {
    const text = '[[secrets]]\npath = "brand/new"\nkey = "k"\nformat = "hex"\nbytes = 8\n';
    const l = loadConfigText(text, 'c', { env: {} });
    expect(await client.kvMetadata('secret', 'brand/new')).toBeUndefined();
    const r = await seedVault(client, buildPlan(l), l.passwords);
    expect(r.counts.created).toBe(1);
    expect((await client.kvMetadata('secret', 'brand/new'))!.current_version).toBe(1);
  });

  it('a secret whose latest version was deleted is written as the next version', async () => {
    const text = '[[secrets]]\npath = "soft/deleted"\nkey = "k"\nformat = "hex"\nbytes = 8\n';
    const l = loadConfigText(text, 'c', { env: {} });
    const p = buildPlan(l);
    await seedVault(client, p, l.passwords);
    await client.delete('secret/data/soft/deleted'); // soft delete of version 1
    const r = await seedVault(client, p, l.passwords);
    expect(r.counts.created).toBe(1);
    expect((await client.kvMetadata('secret', 'soft/deleted'))!.current_version).toBe(2);
    expect((await client.kvRead('secret', 'soft/deleted'))!.data.k).toMatch(/^[0-9a-f]{16}$/);
  });

  it('any other write error fails loudly (a mount that does not exist)', async () => {
    const text = '[[secrets]]\npath = "x/y"\nkey = "k"\n';
    const l = loadConfigText(text, 'c', { env: {} });
    const p = buildPlan(l);
    const err = await seedVault(client, { ...p, seeding: { ...p.seeding, mount: 'no-such-mount' } }, l.passwords).catch((e) => e);
    expect(err).toBeInstanceOf(VaultApiError);
    expect(err.message).toMatch(/^Vault POST \/v1\/no-such-mount\/data\/x\/y failed \(HTTP 404\)/);
  });

  it('errors carry method, path, status and Vault\'s message, never a value', async () => {
    const err = (await client.get('sys/policies/acl/x', { token: 'not-a-token-1234' }).catch((e) => e)) as VaultApiError;
    expect(err).toBeInstanceOf(VaultApiError);
    expect(err.message).toMatch(/^Vault GET \/v1\/sys\/policies\/acl\/x failed \(HTTP 403\)/);
    expect(err.status).toBe(403);
  });

  it('regenerates a root token from the unseal keys (generate-root with a one-time password)', async () => {
    const init = readInit(state)!;
    const root = await generateRoot(client, init.keys_base64);
    expect(root).not.toBe(init.root_token);
    const self = await client.get<any>('auth/token/lookup-self', { token: root });
    expect(self.data.data.policies).toContain('root');
    await client.post('auth/token/revoke-self', {}, { token: root });
  });
});

describe('production: least privilege, setup token, audit', () => {
  let bao: BaoServer;
  let client: VaultClient;
  let state: StateDir;
  const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' });
  const plan = buildPlan(loaded);
  let auditPath: string;

  beforeAll(async () => {
    auditPath = join(mkdtempSync(join(tmpdir(), 'vaultlab-audit-')), 'audit.log');
    bao = await startBao({ auditFile: auditPath, unauthedGenerateRoot: true });
    state = tmpState();
    client = new VaultClient({ address: bao.address });
    await initVault(client, plan, state);
    const keys = readInit(state)!.keys_base64;
    await unsealVault(client, keys.slice(0, 3));
    await vaultUp(client, plan, state, { passwords: loaded.passwords, keys: keys.slice(2, 5), configure: { auditPath } });
  });
  afterAll(async () => {
    client?.close();
    await bao?.stop();
  });

  it('every value is random in production; the demo literals are not used', async () => {
    const db = (await client.get<any>('secret/data/webapp/db', { token: await rootlessToken() }).catch(() => undefined)) ?? undefined;
    expect(db).toBeUndefined(); // the setup token may not read values at all
    const keys = await client.kvSubkeys('secret', 'webapp/db');
    expect(keys!.sort()).toEqual(['password', 'username']);
  });

  it('the root token is revoked; the setup token configures but cannot read a secret', async () => {
    const init = readInit(state)!;
    expect(init.root_token).toBeNull();
    expect(init.root_token_revoked).toBeTruthy();
    const setup = await rootlessToken();
    const c = new VaultClient({ address: bao.address, token: setup, attempts: 1 });
    const before = c.writes;
    const items = await configureVault(c, plan, { auditPath });
    expect(items.every((i) => i.action === 'unchanged' || i.action === 'skipped')).toBe(true);
    expect(c.writes - before).toBe(0);
    const err = await c.get('secret/data/webapp/db').catch((e) => e);
    expect(err.status).toBe(403);
    // Seeding still works with it: existing keys are seen through subkeys.
    const r = await seedVault(c, plan, loaded.passwords);
    expect(r.counts.unchanged).toBe(plan.seeding.entries.length);
    expect(r.entries.every((e) => e.verified === false)).toBe(true);
    expect(r.writes).toBe(0);
    c.close();
  });

  it('the setup token may list detailed metadata: a re-seed with the ledger checks every path by version, values still unread', async () => {
    const c = new VaultClient({ address: bao.address, token: await rootlessToken(), attempts: 1 });
    const paths = new Set(plan.seeding.entries.map((e) => e.path));
    const before = c.requests;
    const r = await seedVault(c, plan, loaded.passwords, { ledger: state });
    expect(r.counts.unchanged).toBe(plan.seeding.entries.length);
    expect(r.writes).toBe(0);
    // production values are all random: no path needs a read, one listing per folder does.
    expect(r.checked).toMatchObject({ read: 0, byVersion: paths.size });
    expect(c.requests - before).toBe(new Set([...paths].map((p) => p.split('/').slice(0, -1).join('/'))).size);
    // `verified` is what vaultlab knew of that version when it recorded it (deploy seeds before
    // the root token is revoked), not what this token may read.
    const ledger = JSON.parse(readFileSync(state.file('seed-ledger.json'), 'utf8')).mounts.secret;
    for (const e of r.entries) expect(e.verified).toBe(ledger[e.path].verified);
    c.close();
  });

  it("a token holding namespace A's policy reads A, gets 403 on B, and cannot write A", async () => {
    // Create a token directly with the per-namespace policy, as a Kubernetes login would get.
    const setup = await rootlessToken();
    const root = await generateRoot(client, readInit(state)!.keys_base64.slice(0, 3));
    try {
      const created = await client.post<any>('auth/token/create', { policies: ['eso-webapp-policy'], ttl: '5m', no_default_policy: true }, { token: root });
      const a = new VaultClient({ address: bao.address, token: created.data.auth.client_token, attempts: 1 });
      expect((await a.kvRead('secret', 'webapp/db'))!.data.password).toBeTruthy();
      expect(((await a.get('secret/data/argocd/admin').catch((e) => e)) as VaultApiError).status).toBe(403);
      expect(((await a.kvPatch('secret', 'webapp/db', { password: 'x' }).catch((e) => e)) as VaultApiError).status).toBe(403);
      a.close();
      expect(plan.vault.policies.find((p) => p.name === 'eso-webapp-policy')!.hcl).toBe(policyHcl('secret', 'webapp'));
    } finally {
      await client.post('auth/token/revoke-self', {}, { token: root });
    }
    expect(setup).toBeTruthy();
  });

  it('the file audit device records requests with values hashed, never in clear', async () => {
    const log = readFileSync(auditPath, 'utf8');
    expect(log.split('\n').filter(Boolean).length).toBeGreaterThan(10);
    expect(log).toContain('"path":"secret/data/webapp/db"');
    const setup = await rootlessToken();
    expect(log).not.toContain(setup);
  });

  it('an expired or revoked setup token is replaced through a root token regenerated from the keys, then revoked', async () => {
    const old = await rootlessToken();
    await client.post('auth/token/revoke-self', {}, { token: old });
    const c = new VaultClient({ address: bao.address });
    const r = await vaultUp(c, plan, state, { passwords: loaded.passwords, keys: readInit(state)!.keys_base64.slice(0, 3), configure: { auditPath } });
    expect(r.token).toBe('regenerated-root');
    expect(r.setupToken).toBe('created');
    const fresh = await rootlessToken();
    expect(fresh).not.toBe(old);
    const self = await c.get<any>('auth/token/lookup-self', { token: fresh });
    expect(self.data.data.policies).toContain('vaultlab-setup');
    // The regenerated root token was revoked again: the client's token is the new setup token.
    const mine = await c.get<any>('auth/token/lookup-self');
    expect(mine.data.data.policies).not.toContain('root');
    // Without keys at hand (moved offline), the same situation is explained instead.
    const offline = tmpState();
    offline.writeJson('setup-token.json', { token: old, accessor: 'x', policies: ['vaultlab-setup'], created_at: 'then' });
    const err = await vaultUp(new VaultClient({ address: bao.address }), plan, offline, { passwords: loaded.passwords }).catch((e) => e);
    expect(err.message).toMatch(/setup token no longer works/);
    expect(err.hint).toMatch(/--keys-file/);
    c.close();
  });

  async function rootlessToken(): Promise<string> {
    return JSON.parse(readFileSync(state.file('setup-token.json'), 'utf8')).token as string;
  }
});
