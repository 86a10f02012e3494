// vaultlab's Vault engine against the official hashicorp/vault image (the tag the plan pins),
// started by testcontainers as a real server (file storage, real init and unseal), the same
// checks tests/vault/engine.test.ts runs against OpenBao. Where no Docker engine answers, the
// suite says so at run time (`skipped: <reason>`) and runs nothing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { dockerInfo } from '../../scripts/adapters/docker.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { initVault } from '../../scripts/vault/init.ts';
import { unsealVault, waitForActive } from '../../scripts/vault/seal.ts';
import { configureVault } from '../../scripts/vault/configure.ts';
import { seedVault } from '../../scripts/vault/seed.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { generateRoot } from '../../scripts/vault/token.ts';
import { startVaultContainer, vaultImage, type VaultContainer } from '../harness/vault-container.ts';

const IMAGE = vaultImage();
const docker = await dockerInfo();
const reason = !docker.reachable ? `no Docker engine (${docker.reason})` : process.env.VAULTLAB_E2E_NO_VAULT ? `no HashiCorp Vault image here (${process.env.VAULTLAB_E2E_NO_VAULT})` : undefined;
if (reason) console.log(`skipped: Vault engine against ${IMAGE} (testcontainers): ${reason}`);

const tmpState = () => new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-state-')), '.vaultlab', 'test'));
// The chart mounts an audit volume at /vault/audit; the bare image has /vault/logs (owned by vault).
const AUDIT_PATH = '/vault/logs/vault-audit.log';

/** One Vault container per describe block, with the profile's config, plan and a fresh state dir. */
function containerSuite(profile: 'demo' | 'production') {
  const loaded = loadConfig({ file: BUNDLED_CONFIG, profile, env: {} });
  const suite = { state: tmpState(), loaded, plan: buildPlan(loaded), client: undefined as unknown as VaultClient };
  let vault: VaultContainer | undefined;
  beforeAll(async () => {
    vault = await startVaultContainer();
    suite.client = new VaultClient({ address: vault.address });
  });
  afterAll(async () => {
    suite.client?.close();
    await vault?.stop();
  });
  return suite;
}

describe.skipIf(!!reason)(`Vault engine against ${IMAGE} (testcontainers)`, () => {
  beforeAll(() => {
    expect(docker.reachable).toBe(true);
  });

  describe('demo: init 1/1, configure, seed', () => {
    const c = containerSuite('demo');
    const { state, loaded, plan } = c;

    it('initializes with one share, keeps the result in a 0600 file, and unseals', async () => {
      expect(plan.vault.image.repository).toBe('hashicorp/vault');
      expect((await c.client.sealStatus()).initialized).toBe(false);
      const r = await initVault(c.client, plan, state);
      expect(r.action).toBe('initialized');
      expect(statSync(state.file('vault-init.json')).mode & 0o777).toBe(0o600);
      expect(statSync(state.path).mode & 0o777).toBe(0o700);
      const init = readInit(state)!;
      expect(init.keys_base64).toHaveLength(1);
      expect(init.threshold).toBe(1);
      expect(await c.client.sealStatus()).toMatchObject({ initialized: true, sealed: true, t: 1, n: 1 });
      expect(await unsealVault(c.client, init.keys_base64)).toMatchObject({ action: 'unsealed', sharesUsed: 1 });
      expect((await unsealVault(c.client, init.keys_base64)).action).toBe('already-unsealed');
      await waitForActive(c.client);
      expect(await c.client.health()).toMatchObject({ initialized: true, sealed: false, standby: false });
      expect((await initVault(c.client, plan, state)).action).toBe('already-initialized');
    });

    it('vault up configures engines, auth, policies and roles; a second configure performs zero writes', async () => {
      const up = await vaultUp(c.client, plan, state, { passwords: loaded.passwords, seed: false });
      expect(up.init.action).toBe('already-initialized');
      expect(up.token).toBe('root-token');
      expect(up.configure.filter((i) => i.action === 'created').map((i) => i.name)).toEqual(
        expect.arrayContaining(['secret/', 'database/', 'transit/', 'kubernetes/', 'eso-policy', 'eso-webapp-role', 'eso-argocd-role']),
      );
      const before = c.client.writes;
      const items = await configureVault(c.client, plan);
      expect(items.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped')).toEqual([]);
      expect(c.client.writes - before).toBe(0);
      const mounts = (await c.client.get<any>('sys/mounts')).data.data;
      expect(mounts['secret/']).toMatchObject({ type: 'kv', options: { version: '2' } });
      const role = await c.client.get<any>('auth/kubernetes/role/eso-webapp-role');
      expect(role.data.data).toMatchObject({ bound_service_account_names: ['external-secrets'], bound_service_account_namespaces: ['webapp'], audience: 'vault', token_policies: ['eso-policy'] });
    });

    it('seeds base64, hex, literal and bcrypt values; a re-seed writes nothing and rotates nothing', async () => {
      const first = await seedVault(c.client, plan, loaded.passwords);
      expect(first.counts.created).toBe(plan.seeding.entries.length);
      const db = (await c.client.kvRead('secret', 'webapp/db'))!.data;
      expect(db.username).toBe(loaded.passwords.webapp_db_user); // literal
      expect(Buffer.from(db.password!, 'base64')).toHaveLength(24); // random, base64, 24 bytes
      expect((await c.client.kvRead('secret', 'webapp/api'))!.data.api_key).toMatch(/^[0-9a-f]{64}$/); // random, hex, 32 bytes
      const argo = (await c.client.kvRead('secret', 'argocd/admin'))!.data;
      expect(argo['admin.password']!.startsWith('$2')).toBe(true);
      expect(argo['admin.password']).toMatch(/^\$2[ab]\$10\$/);
      expect(await bcrypt.compare(loaded.passwords.argocd_admin!, argo['admin.password']!)).toBe(true);
      expect(argo['admin.password.plain']).toBe(loaded.passwords.argocd_admin);

      const paths = [...new Set(plan.seeding.entries.map((e) => e.path))];
      const versions = async () => Object.fromEntries(await Promise.all(paths.map(async (p) => [p, (await c.client.kvMetadata('secret', p))!.current_version])));
      const v1 = await versions();
      const before = c.client.writes;
      const second = await seedVault(c.client, plan, loaded.passwords);
      expect(second.counts).toEqual({ created: 0, updated: 0, rotated: 0, unchanged: plan.seeding.entries.length });
      expect(second.writes).toBe(0);
      expect(c.client.writes - before).toBe(0);
      expect(await versions()).toEqual(v1);
      expect((await c.client.kvRead('secret', 'webapp/db'))!.data.password).toBe(db.password);
    });

    it('with a seed ledger, a re-seed on HashiCorp Vault (no detailed-metadata listing) reads every path and writes nothing', async () => {
      const ledger = tmpState();
      const paths = new Set(plan.seeding.entries.map((e) => e.path));
      const first = await seedVault(c.client, plan, loaded.passwords, { ledger });
      expect(first.writes).toBe(0);
      expect(first.checked).toMatchObject({ read: paths.size, byVersion: 0 });
      const again = await seedVault(c.client, plan, loaded.passwords, { ledger });
      expect(again.counts.unchanged).toBe(plan.seeding.entries.length);
      expect(again.writes).toBe(0);
      expect(again.checked).toMatchObject({ read: paths.size, byVersion: 0 });
      expect(ledger.has('seed-ledger.json')).toBe(true);
    });

    it('rotate: true regenerates every random value and leaves literals and a verifying hash alone', async () => {
      const before = (await c.client.kvRead('secret', 'webapp/api'))!.data.api_key;
      const hashBefore = (await c.client.kvRead('secret', 'argocd/admin'))!.data['admin.password'];
      const r = await seedVault(c.client, plan, loaded.passwords, { rotate: true });
      const random = plan.seeding.entries.filter((e) => e.source.type === 'random').map((e) => `${e.path}:${e.key}`);
      expect(random.length).toBeGreaterThan(0);
      expect(r.entries.filter((e) => e.action === 'rotated').map((e) => `${e.path}:${e.key}`).sort()).toEqual(random.sort());
      expect(r.counts.rotated).toBe(random.length);
      expect(r.counts.unchanged).toBe(plan.seeding.entries.length - random.length);
      expect((await c.client.kvRead('secret', 'webapp/api'))!.data.api_key).not.toBe(before);
      expect((await c.client.kvRead('secret', 'argocd/admin'))!.data['admin.password']).toBe(hashBefore);
    });

    it('two keys on one path never clobber each other, nor a key someone else added', async () => {
      const twoKeyPaths = paths2();
      expect(twoKeyPaths).toContain('webapp/db');
      for (const p of twoKeyPaths) {
        const keys = Object.keys((await c.client.kvRead('secret', p))!.data);
        for (const e of plan.seeding.entries.filter((x) => x.path === p)) expect(keys).toContain(e.key);
      }
      await c.client.kvPatch('secret', 'webapp/db', { added_by_someone_else: 'keep-me-1234' });
      const dbBefore = (await c.client.kvRead('secret', 'webapp/db'))!.data;
      const r = await seedVault(c.client, plan, loaded.passwords, { rotate: true, only: ['webapp/db:password'] });
      expect(r.entries).toEqual([{ path: 'webapp/db', key: 'password', action: 'rotated', verified: true }]);
      const db = (await c.client.kvRead('secret', 'webapp/db'))!.data;
      expect(Object.keys(db).sort()).toEqual(['added_by_someone_else', 'password', 'username']);
      expect(db.added_by_someone_else).toBe('keep-me-1234');
      expect(db.username).toBe(dbBefore.username);
      expect(db.password).not.toBe(dbBefore.password);
    });

    /** Paths that more than one [[secrets]] entry writes to. */
    function paths2(): string[] {
      const count = new Map<string, number>();
      for (const e of plan.seeding.entries) count.set(e.path, (count.get(e.path) ?? 0) + 1);
      return [...count].filter(([, n]) => n > 1).map(([p]) => p);
    }
  });

  describe('production: init 5/3, unseal with 3 shares, least privilege', () => {
    const c = containerSuite('production');
    const { state, loaded, plan } = c;

    it('initializes with 5 shares, threshold 3, and unseals with 3 of them', async () => {
      await initVault(c.client, plan, state);
      const init = readInit(state)!;
      expect(init.keys_base64).toHaveLength(5);
      expect(init.threshold).toBe(3);
      expect(statSync(state.file('vault-init.json')).mode & 0o777).toBe(0o600);
      expect(await c.client.sealStatus()).toMatchObject({ sealed: true, t: 3, n: 5 });
      await expect(unsealVault(c.client, init.keys_base64.slice(0, 2))).rejects.toThrow(/needs 3 key shares to unseal, 2 given/);
      const u = await unsealVault(c.client, [init.keys_base64[0]!, init.keys_base64[2]!, init.keys_base64[4]!]);
      expect(u).toMatchObject({ action: 'unsealed', sharesUsed: 3 });
      expect((await c.client.sealStatus()).sealed).toBe(false);
    });

    it('vault up revokes the root token, leaves a setup token, enables the audit device and seeds', async () => {
      const keys = readInit(state)!.keys_base64;
      const up = await vaultUp(c.client, plan, state, { passwords: loaded.passwords, keys: keys.slice(1, 4), configure: { auditPath: AUDIT_PATH } });
      expect(up.setupToken).toBe('created');
      expect(up.configure).toContainEqual({ kind: 'audit', name: 'file/', action: 'created', detail: AUDIT_PATH });
      expect(up.seed!.counts.created).toBe(plan.seeding.entries.length);
      const init = readInit(state)!;
      expect(init.root_token).toBeNull();
      expect(init.root_token_revoked).toBeTruthy();
      const before = c.client.writes;
      const items = await configureVault(c.client, plan, { auditPath: AUDIT_PATH });
      expect(items.every((i) => i.action === 'unchanged' || i.action === 'skipped')).toBe(true);
      expect(c.client.writes - before).toBe(0);
    });

    it("a token holding namespace A's policy reads A, gets 403 on B, and cannot write A", async () => {
      const root = await generateRoot(c.client, readInit(state)!.keys_base64.slice(0, 3));
      try {
        const created = await c.client.post<any>('auth/token/create', { policies: ['eso-webapp-policy'], ttl: '5m', no_default_policy: true }, { token: root });
        const a = new VaultClient({ address: c.client.address, token: created.data.auth.client_token, attempts: 1 });
        try {
          expect((await a.kvRead('secret', 'webapp/db'))!.data.password).toBeTruthy();
          const other = (await a.get('secret/data/argocd/admin').catch((e) => e)) as VaultApiError;
          expect(other).toBeInstanceOf(VaultApiError);
          expect(other.status).toBe(403);
          expect(((await a.kvPatch('secret', 'webapp/db', { password: 'x' }).catch((e) => e)) as VaultApiError).status).toBe(403);
        } finally {
          a.close();
        }
      } finally {
        await c.client.post('auth/token/revoke-self', {}, { token: root });
      }
    });
  });
});
