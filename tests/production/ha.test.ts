// The production profile end to end on real OpenBao, without pods: three `bao server`s on
// loopback, each with TLS from vaultlab's generated certificate (127.0.0.1 and the pod names in
// its SANs) and the storage "raft" block render.ts writes for the chart (retry_join to every
// member, leader_ca_cert_file, leader_tls_servername), only with loopback addresses and temp
// paths. vaultlab initializes the first member 5/3, unseals every member with 3 of the 5 shares
// (scripts/production/ha.ts, the sequence deploy runs for the pods), revokes root behind the
// vaultlab-setup token, and the tests check the cluster, the tokens, the policies and the audit log.
import { describe, it, expect, afterAll } from 'vitest';
import { startForBlock } from './servers.ts';
import { mkdtempSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, freePort, type BaoServer } from '../harness/bao.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan, nsPolicyName, SETUP_POLICY } from '../../scripts/plan/build.ts';
import { raftConfig, TLS_DIR } from '../../scripts/plan/render.ts';
import { policyHcl } from '../../scripts/plan/policies.ts';
import { deliveryPolicyName } from '../../scripts/deliveries/types.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { ensureVaultTls, type TlsFiles } from '../../scripts/tls/certs.ts';
import { initVault } from '../../scripts/vault/init.ts';
import { configureVault } from '../../scripts/vault/configure.ts';
import { readInit, readSetupToken } from '../../scripts/vault/keys.ts';
import { generateRoot } from '../../scripts/vault/token.ts';
import { haUp, formHaCluster, plaintextKeys, raftPeers, type HaUpReport } from '../../scripts/production/ha.ts';

const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' });
const plan = buildPlan(loaded);
const MOUNT = plan.vault.kvMount;

/**
 * render.ts's storage "raft" block (what each pod runs), moved onto loopback: pod i's API
 * address becomes 127.0.0.1:<port i>, the chart's paths become temp paths; the TLS server
 * names stay, so Go verifies them against the certificate as it does in the cluster.
 */
export function loopbackRaftStorage(tls: TlsFiles, dataDir: string, nodeId: string, apiPorts: number[]): string {
  const block = /storage "raft" \{\n[\s\S]*?\n\}/.exec(raftConfig(plan))?.[0];
  if (!block) throw new Error('raftConfig has no storage "raft" block');
  let out = block
    .replace('path = "/vault/data"', `path = "${dataDir}"\n  node_id = "${nodeId}"`)
    .replaceAll(`${TLS_DIR}/ca.crt`, tls.caCert);
  apiPorts.forEach((port, i) => {
    out = out.replace(`"https://${plan.vault.release}-${i}.${plan.vault.release}-internal:8200"`, `"https://127.0.0.1:${port}"`);
  });
  if (out.includes('/vault/') || out.includes('-internal:8200')) throw new Error(`unmapped path or address left in:\n${out}`);
  return out;
}

describe('production on a three-member HA Raft cluster over TLS (real OpenBao)', () => {
  const servers: BaoServer[] = [];
  let clients: VaultClient[] = [];
  const extra: VaultClient[] = [];
  const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-ha-')), '.vaultlab', 'vaultlab'));
  const auditDir = mkdtempSync(join(tmpdir(), 'vaultlab-audit-'));
  const auditFile = (i: number) => join(auditDir, `vault-${i}`, 'vault-audit.log');
  let tls: TlsFiles;
  let rootAtInit: string;
  let up: HaUpReport;
  /** Every value vaultlab seeded, read back through the namespaces' own policies. */
  const seeded: string[] = [];
  const tokensSeen: string[] = [];

  startForBlock(async () => {
    tls = ensureVaultTls(plan, state);
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const api = ports.slice(0, 3);
    servers.push(
      ...(await Promise.all(
        [0, 1, 2].map(async (i) => {
          const dir = mkdtempSync(join(tmpdir(), `vaultlab-raft-${i}-`));
          mkdirSync(join(auditDir, `vault-${i}`));
          return startBao({
            dir,
            port: api[i]!,
            clusterPort: ports[3 + i]!,
            tls: { certFile: tls.serverCert, keyFile: tls.serverKey },
            auditFile: auditFile(i),
            storage: { raw: loopbackRaftStorage(tls, join(dir, 'data'), `vault-${i}`, api) },
          });
        }),
      )),
    );
    clients = servers.map((s) => new VaultClient({ address: s.address, caPem: tls.caPem }));
  });
  afterAll(async () => {
    for (const c of [...clients, ...extra]) c.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('vaultlab initializes the first member 5/3, unseals every member with 3 of the 5 shares, and the Raft cluster forms', async () => {
    const [active, ...followers] = clients;
    // Keep the root token Vault hands out at init, to prove later that it was revoked.
    const put = active!.put.bind(active!);
    active!.put = (async (path: string, body?: unknown, o?: object) => {
      const r = await put(path, body, o);
      if (path === 'sys/init') rootAtInit = (r.data as { root_token: string }).root_token;
      return r;
    }) as VaultClient["put"];
    const lines: string[] = [];
    up = await haUp(active!, followers, plan, state, {
      passwords: loaded.passwords,
      configure: { auditPath: auditFile(0) },
      report: (l) => lines.push(l),
    });
    active!.put = put;
    tokensSeen.push(rootAtInit);
    expect(up.up.init.action).toBe('initialized');
    const stored = readInit(state)!;
    expect(stored).toMatchObject({ shares: 5, threshold: 3, profile: 'production' });
    expect(stored.keys_base64).toHaveLength(5);
    // The threshold of shares, from the state dir (later runs below use other subsets of three).
    expect(up.up.unseal[0]).toMatchObject({ action: 'unsealed', sharesUsed: 3 });
    expect(up.up.setupToken).toBe('created');
    // The report says what each member went through: the first was unsealed by vaultUp.
    expect(up.ha.members.map((m) => [m.address, m.unseal, m.sharesUsed])).toEqual([
      [active!.address, 'unsealed', 3],
      [followers[0]!.address, 'unsealed', 3],
      [followers[1]!.address, 'unsealed', 3],
    ]);
    expect(lines).toContain(`HA: waiting for ${followers[0]!.address} to join, then unsealing it`);

    // Proven through the Raft configuration (read with the setup token): 3 voters, one leader.
    expect(up.ha.checkedBy).toBe('raft-configuration');
    const peers = await raftPeers(active!);
    expect(peers.map((p) => p.node_id).sort()).toEqual(['vault-0', 'vault-1', 'vault-2']);
    expect(peers.every((p) => p.voter)).toBe(true);
    expect(peers.filter((p) => p.leader).map((p) => p.node_id)).toEqual(['vault-0']);
    // sys/leader on every member: one leader, the first member, named by all.
    const leaders = await Promise.all(clients.map((c) => c.leader()));
    expect(new Set(leaders.map((l) => l.leader_address))).toEqual(new Set([active!.address]));
    expect(leaders.map((l) => l.is_self)).toEqual([true, false, false]);
    expect(up.ha.leaderAddress).toBe(active!.address);
    for (const c of clients) expect((await c.sealStatus()).sealed).toBe(false);
  });

  it('the root token is revoked after setup; the vaultlab-setup token configures, but gets 403 reading a secret or minting a token', async () => {
    const init = readInit(state)!;
    expect(init.root_token).toBeNull();
    expect(init.root_token_revoked).toBeTruthy();
    const active = clients[0]!;
    const rootLookup = await active.get('auth/token/lookup-self', { token: rootAtInit, accept: [403] });
    expect(rootLookup.status).toBe(403);

    const setup = readSetupToken(state)!;
    tokensSeen.push(setup.token);
    expect(setup.policies).toContain(SETUP_POLICY);
    expect(setup.policies).not.toContain('root');
    const c = new VaultClient({ address: active.address, caPem: tls.caPem, token: setup.token });
    extra.push(c);
    // Configuring works, and a re-run over the whole plan changes nothing.
    const again = await configureVault(c, plan, { auditPath: auditFile(0) });
    expect(again.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped')).toEqual([]);
    await c.put('sys/policies/acl/vaultlab-probe', { policy: 'path "secret/data/probe/*" { capabilities = ["read"] }' });
    await c.delete('sys/policies/acl/vaultlab-probe');
    // Writing a secret is allowed (seeding), reading one is not, on the leader and via a follower.
    for (const via of [c, new VaultClient({ address: clients[1]!.address, caPem: tls.caPem, token: setup.token })]) {
      if (via !== c) extra.push(via);
      const read = await via.get(`${MOUNT}/data/webapp/db`).catch((e) => e);
      expect(read).toBeInstanceOf(VaultApiError);
      expect(read.status).toBe(403);
      expect((await via.kvSubkeys(MOUNT, 'webapp/db'))?.sort()).toEqual(['password', 'username']);
    }
    const mint = await c.post('auth/token/create', { policies: ['root'] }).catch((e) => e);
    expect(mint.status).toBe(403);
    const orphan = await c.post('auth/token/create-orphan', { policies: [nsPolicyName('webapp')] }).catch((e) => e);
    expect(orphan.status).toBe(403);
  });

  it("policy isolation: a token with namespace A's policy (the plan's policyHcl) reads A, gets 403 on B, and cannot write A", async () => {
    const active = clients[0]!;
    const setup = readSetupToken(state)!;
    const c = new VaultClient({ address: active.address, caPem: tls.caPem, token: setup.token });
    extra.push(c);
    // What Vault holds is the plan's text for every namespace, for each delivery it uses
    // (eso-<ns>-policy; the injector's "reports": injector-reports-policy).
    const policyOf = (ns: string) => deliveryPolicyName(plan.namespaces.find((n) => n.name === ns)!.deliveries[0]!, ns);
    for (const ns of plan.namespaces) {
      for (const d of ns.deliveries) {
        const r = await c.get<any>(`sys/policies/acl/${deliveryPolicyName(d, ns.name)}`);
        // KV: exactly the namespace's own paths; the shop namespace's also reads its dynamic database user (database/creds/shop-app).
        const dynamic = ns.name === 'shop' ? '\npath "database/creds/shop-app" {\n  capabilities = ["read"]\n}\n' : '';
        expect(r.data.data.policy).toBe(policyHcl(MOUNT, ns.name) + dynamic);
      }
    }
    // Break glass: a root token regenerated from 3 shares, only to mint the test tokens, then revoked.
    const root = await generateRoot(c, readInit(state)!.keys_base64.slice(0, 3));
    tokensSeen.push(root);
    const nsToken = async (ns: string) => {
      const r = await active.post<any>('auth/token/create', { policies: [policyOf(ns)], ttl: '10m' }, { token: root });
      tokensSeen.push(r.data.auth.client_token);
      return new VaultClient({ address: active.address, caPem: tls.caPem, token: r.data.auth.client_token });
    };
    try {
      const a = await nsToken('webapp');
      extra.push(a);
      const db = await a.kvRead(MOUNT, 'webapp/db');
      expect(Object.keys(db!.data).sort()).toEqual(['password', 'username']);
      const other = await a.get(`${MOUNT}/data/argocd/admin`).catch((e) => e);
      expect(other.status).toBe(403);
      const write = await a.kvPatch(MOUNT, 'webapp/db', { password: 'overwritten' }).catch((e) => e);
      expect(write.status).toBe(403);
      const create = await a.post(`${MOUNT}/data/webapp/new`, { data: { k: 'v' } }).catch((e) => e);
      expect(create.status).toBe(403);
      expect((await a.get<any>(`${MOUNT}/metadata/webapp/db`)).status).toBe(200);
      // A follower forwards to the active node, under the same policy.
      const viaFollower = new VaultClient({ address: clients[2]!.address, caPem: tls.caPem });
      extra.push(viaFollower);
      viaFollower.setToken((a as any).token);
      expect((await viaFollower.kvRead(MOUNT, 'webapp/api'))?.data).toHaveProperty('api_key');
      expect((await viaFollower.get(`${MOUNT}/data/registry/creds`).catch((e) => e)).status).toBe(403);

      // Every seeded value, each read with its own namespace's token (for the audit check).
      for (const ns of plan.namespaces) {
        const t = ns.name === 'webapp' ? a : await nsToken(ns.name);
        if (t !== a) extra.push(t);
        for (const e of plan.seeding.entries.filter((x) => x.path.startsWith(`${ns.name}/`))) {
          const v = (await t.kvRead(MOUNT, e.path))!.data;
          seeded.push(v[e.key]!);
          if (e.plaintextKey) seeded.push(v[e.plaintextKey]!);
        }
      }
    } finally {
      await active.post('auth/token/revoke-self', {}, { token: root });
    }
    expect((await active.get('auth/token/lookup-self', { token: root, accept: [403] })).status).toBe(403);
    expect(seeded.length).toBeGreaterThanOrEqual(plan.seeding.entries.length);
  });

  it('the file audit device records every request with values hashed: no seeded value and no token in clear', () => {
    const text = readFileSync(auditFile(0), 'utf8');
    const entries = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(entries.length).toBeGreaterThan(50);
    expect(entries.some((e) => e.type === 'request' && e.request?.path === `${MOUNT}/data/webapp/db`)).toBe(true);
    const reads = entries.filter((e) => e.type === 'response' && e.request?.path === `${MOUNT}/data/webapp/db` && e.response?.data?.data);
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) for (const v of Object.values(r.response.data.data)) expect(String(v)).toMatch(/^hmac-sha256:/);
    expect(text).toContain('hmac-sha256:');
    for (const v of seeded) expect(text.includes(v), 'a seeded value in clear in the audit log').toBe(false);
    for (const t of tokensSeen) expect(text.includes(t), 'a token in clear in the audit log').toBe(false);
  });

  it('a member restarted (sealed again) is unsealed by a re-run, which leaves the others alone; a formed cluster is only read', async () => {
    const setup = readSetupToken(state)!;
    const active = new VaultClient({ address: clients[0]!.address, caPem: tls.caPem, token: setup.token });
    extra.push(active);
    const followers = clients.slice(1);
    const keys = plaintextKeys(state).slice(0, 3);

    const writes = () => [active, ...followers].map((c) => c.writes);
    const before = writes();
    const idle = await formHaCluster(active, followers, { keys });
    expect(idle.members.map((m) => m.unseal)).toEqual(['already-unsealed', 'already-unsealed', 'already-unsealed']);
    expect(writes()).toEqual(before);

    await servers[2]!.restart();
    expect((await clients[2]!.sealStatus()).sealed).toBe(true);
    const healed = await formHaCluster(active, followers, { keys, timeoutMs: 120_000 });
    expect(healed.members.map((m) => [m.unseal, m.sharesUsed])).toEqual([
      ['already-unsealed', 0],
      ['already-unsealed', 0],
      ['unsealed', 3],
    ]);
    expect(healed.checkedBy).toBe('raft-configuration');
    expect((await raftPeers(active)).filter((p) => p.voter)).toHaveLength(3);
  });

  it('every member restarted at once (all sealed, no leader without a quorum): a re-run of haUp unseals them all, the cluster is back, nothing is rewritten', async () => {
    await Promise.all(servers.map((s) => s.restart()));
    for (const c of clients) expect((await c.sealStatus()).sealed).toBe(true);
    // As deploy re-runs it: fresh clients, no token given (the state dir's setup token is used).
    const fresh = servers.map((s) => new VaultClient({ address: s.address, caPem: tls.caPem }));
    extra.push(...fresh);
    const again = await haUp(fresh[0]!, fresh.slice(1), plan, state, { passwords: loaded.passwords, keys: plaintextKeys(state).slice(1, 4), configure: { auditPath: auditFile(0) }, timeoutMs: 120_000 });
    expect(again.ha.members.map((m) => [m.unseal, m.sharesUsed])).toEqual([
      ['unsealed', 3],
      ['unsealed', 3],
      ['unsealed', 3],
    ]);
    expect(again.up.init.action).toBe('already-initialized');
    expect(again.up.token).toBe('setup-token');
    expect(again.up.configure.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped')).toEqual([]);
    expect(again.up.seed?.counts).toMatchObject({ created: 0, updated: 0 });
    expect(again.ha.checkedBy).toBe('raft-configuration');
    const peers = await raftPeers(fresh[0]!);
    expect(peers.filter((p) => p.voter)).toHaveLength(3);
    expect(peers.filter((p) => p.leader)).toHaveLength(1);
    expect((await fresh[0]!.kvSubkeys(MOUNT, 'webapp/db'))?.sort()).toEqual(['password', 'username']);
  });
});

describe('HA orchestration: members that cannot join, and keys vaultlab cannot use', () => {
  let lone: BaoServer;
  let first: BaoServer;
  const clients: VaultClient[] = [];
  const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-ha-')), 'state'));
  const oneShare = { ...plan, vault: { ...plan.vault, init: { ...plan.vault.init, shares: 1, threshold: 1 } } };
  const client = (address: string) => {
    const c = new VaultClient({ address });
    clients.push(c);
    return c;
  };
  startForBlock(async () => {
    [lone, first] = await Promise.all([startBao(), startBao()]);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([lone?.stop(), first?.stop()]);
  });

  it('a member that never reaches the leader is named, with what to check, once the time is up', async () => {
    const active = client(first.address);
    await initVault(active, oneShare, state);
    const t0 = Date.now();
    const err = await formHaCluster(active, [client(lone.address)], { keys: plaintextKeys(state), timeoutMs: 3000 }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(err.message).toMatch(new RegExp(`HA member ${lone.address} has not joined the Raft cluster \\(last seen: not initialized`));
    expect(err.hint).toMatch(/retry_join .*leader_api_addr.*leader_ca_cert_file.*leader_tls_servername/);
    // The first member was unsealed on the way.
    expect((await active.sealStatus()).sealed).toBe(false);
  });

  it('a member initialized on its own (other keys, e.g. a volume from an earlier install) is refused at once, not retried', async () => {
    const member = client(lone.address);
    await initVault(member, oneShare, new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-ha-')), 'state')));
    const t0 = Date.now();
    const err = await formHaCluster(client(first.address), [member], { keys: plaintextKeys(state), timeoutMs: 30_000 }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err.message).toContain(lone.address.replace(/^http:\/\//, ''));
    expect(err.hint).toMatch(/do not belong to this Vault|another install|volume/i);
  });
});

describe('HA unseal keys', () => {
  it('plaintextKeys: the given shares first, else the stored ones; PGP-encrypted or missing shares are explained', () => {
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-ha-')), 'state'));
    expect(() => plaintextKeys(state)).toThrow(/no unseal keys: .*vault-init\.json is missing/);
    const base = { keys: ['a'], keys_base64: ['YQ=='], root_token: null, shares: 1, threshold: 1, initialized_at: '', profile: 'production' };
    state.writeJson('vault-init.json', { ...base, pgp: true });
    const err = (() => {
      try {
        plaintextKeys(state);
      } catch (e) {
        return e as { message: string; hint: string };
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/PGP-encrypted/);
    expect(err?.hint).toMatch(/--keys-file FILE or --stdin/);
    expect(plaintextKeys(state, ['given'])).toEqual(['given']);
    state.writeJson('vault-init.json', base);
    expect(plaintextKeys(state)).toEqual(['YQ==']);
  });
});
