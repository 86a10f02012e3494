// `vaultlab rotate`'s Vault side against a real OpenBao: only the named random values change, a
// bcrypt hash is regenerated together with its plaintext (and verifies against it), and the
// changes handed to the deliveries name exactly those keys. (With no cluster, no consumer is asked;
// the pods' side runs on kind: tests/e2e/demo-journey.ts.)
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startBaoDev, type BaoDevServer } from '../harness/bao.ts';
import { tempState } from '../harness/synced.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { seedVault } from '../../scripts/vault/seed.ts';
import { rotateSecrets, selectRotation } from '../../scripts/lifecycle/rotate.ts';
import type { Environment } from '../../scripts/lifecycle/connect.ts';

describe('rotate on OpenBao (production profile: every value random, argocd\'s admin password bcrypt-hashed)', () => {
  let bao: BaoDevServer;
  let client: VaultClient;
  const loaded = loadConfigText(readFileSync(BUNDLED_CONFIG, 'utf8'), 'config.toml', { env: {}, profile: 'production' });
  const plan = buildPlan(loaded);
  const state = tempState();

  setupOrFail(async () => {
    bao = await startBaoDev();
    client = new VaultClient({ address: bao.address, token: bao.token });
    await seedVault(client, plan, loaded.passwords, { ledger: state });
  });
  afterAll(async () => {
    client?.close();
    await bao?.stop();
  });

  const read = async (p: string) => (await client.kvRead(plan.seeding.mount, p))!;
  const env = () => ({ plan, loaded, state, vault: client, kube: undefined, kubeProblem: 'no cluster in this test' }) as unknown as Environment;

  it('the plaintext key names the hash: both regenerated together, the hash verifies, the sibling key and other paths untouched', async () => {
    const before = await read('argocd/admin');
    const others = await read('webapp/api');
    const r = await rotateSecrets(env(), selectRotation(plan, ['argocd/admin:admin.password.plain']));
    expect(r.changed).toEqual([
      { path: 'argocd/admin', key: 'admin.password' },
      { path: 'argocd/admin', key: 'admin.password.plain' },
    ]);
    expect(r.consumers).toEqual([]);
    expect(r.seed.counts.rotated).toBe(1);
    expect(r.seed.writes).toBeGreaterThanOrEqual(1);
    const after = await read('argocd/admin');
    expect(after.version).toBe(before.version + 1);
    expect(after.data['admin.password.plain']).not.toBe(before.data['admin.password.plain']);
    expect(after.data['admin.password']).not.toBe(before.data['admin.password']);
    expect(await bcrypt.compare(after.data['admin.password.plain']!, after.data['admin.password']!)).toBe(true);
    expect(after.data['server.secretkey']).toBe(before.data['server.secretkey']);
    expect((await read('webapp/api')).version).toBe(others.version);
  });

  it('no argument: every random value rotated, each path written once', async () => {
    const paths = [...new Set(plan.seeding.entries.map((e) => e.path))];
    const before = Object.fromEntries(await Promise.all(paths.map(async (p) => [p, await read(p)] as const)));
    const r = await rotateSecrets(env(), selectRotation(plan, []));
    expect(r.seed.counts.rotated).toBe(plan.seeding.entries.length);
    expect(r.changed.length).toBe(plan.seeding.entries.length + plan.seeding.entries.filter((e) => e.plaintextKey).length);
    for (const p of paths) {
      const after = await read(p);
      expect(after.version, p).toBe(before[p]!.version + 1);
      for (const k of Object.keys(before[p]!.data)) expect(after.data[k], `${p}:${k}`).not.toBe(before[p]!.data[k]);
    }
  });
});
