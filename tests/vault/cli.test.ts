// The Vault commands as a user runs them (child processes), against a real OpenBao: output
// never contains a seeded value; a Vault killed mid-seed is completed by a re-run.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, freePort, type BaoServer } from '../harness/bao.ts';
import { ensureVaultTls } from '../../scripts/tls/certs.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import { unsealVault, waitForActive } from '../../scripts/vault/seal.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');

function vaultlab(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: PROJECT_ROOT, env: { ...process.env, NO_COLOR: '1', VAULT_ADDR: '', VAULT_TOKEN: '', BAO_ADDR: '', BAO_TOKEN: '', ...env } });
  return { code: r.status, out: r.stdout + r.stderr, stdout: r.stdout };
}

describe('vault commands as child processes', () => {
  let bao: BaoServer;
  let stateDir: string;
  beforeAll(async () => {
    bao = await startBao();
    stateDir = join(mkdtempSync(join(tmpdir(), 'vaultlab-cli-')), 'state');
  });
  afterAll(async () => bao?.stop());

  it('vault up, seed, seed --rotate and vault configure never print a seeded value, even with DEBUG=* (node-vault\'s own debug log)', async () => {
    const flags = ['--vault-addr', bao.address, '--state-dir', stateDir];
    const outputs: string[] = [];
    for (const args of [['vault', 'up'], ['seed'], ['seed', '--json'], ['seed', '--rotate', '--verbose'], ['vault', 'configure', '--json'], ['vault', 'unseal']]) {
      // DEBUG=* turns on every `debug` logger in the dependencies, node-vault's included, which
      // logs request bodies (values) unless vaultlab silences it.
      const r = vaultlab([...args, ...flags], { DEBUG: '*' });
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
      outputs.push(r.out);
    }
    // Every value in Vault now, and every value it held before rotation (KV versions), is absent from all output.
    const init = readInit(new StateDir(stateDir))!;
    const client = new VaultClient({ address: bao.address, token: init.root_token! });
    const values: string[] = [init.root_token!, ...init.keys_base64];
    for (const path of ['webapp/db', 'webapp/api', 'webapp/worker', 'argocd/admin', 'registry/creds', 'dashboard/config', 'reports/db', 'reports/api']) {
      const meta = (await client.kvMetadata('secret', path))!;
      for (let v = 1; v <= meta.current_version; v++) {
        const r = await client.get<any>(`secret/data/${path}?version=${v}`);
        values.push(...(Object.values(r.data.data.data) as string[]));
      }
    }
    client.close();
    expect(values.length).toBeGreaterThan(15);
    const all = outputs.join('\n');
    for (const v of values) expect(all.includes(v), `a value leaked into the output`).toBe(false);
    // The re-seed: the five paths holding only random values are checked by version (seed
    // ledger; two of them the injector app "reports"'s, one the VSO app "billing"'s), the four
    // with a literal or a bcrypt hash of one are read and compared.
    expect(outputs[1]).toContain('0 created, 0 updated, 0 rotated, 14 unchanged (0 write request(s); 5 path(s) checked by version, 4 read; 1 bcrypt hash(es) known to verify at their version)');
    expect(JSON.parse(outputs[2]!.slice(outputs[2]!.indexOf('{'))).writes).toBe(0);
    expect(outputs[3]).toMatch(/9 rotated/); // every random value: 5, the two of "reports" and the two of "billing"
  });

  it('without a token or a state dir, seed fails with exit 1 and says how to fix it', () => {
    const r = vaultlab(['seed', '--vault-addr', bao.address, '--state-dir', join(stateDir, 'nothing-here')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('no token for Vault');
    expect(r.out).toContain('fix: Set VAULT_TOKEN');
  });

  it('an unreachable Vault is a clear error naming the address', () => {
    const r = vaultlab(['vault', 'init', '--vault-addr', 'http://127.0.0.1:1', '--state-dir', stateDir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('Is Vault running at http://127.0.0.1:1?');
  });

  it('a second run holding the same state dir is refused while the first is alive', () => {
    const state = new StateDir(stateDir);
    writeFileSync(state.file('lock'), JSON.stringify({ pid: process.pid, command: 'test', since: 'now' }));
    try {
      const r = vaultlab(['seed', '--vault-addr', bao.address, '--state-dir', stateDir]);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/another vaultlab run \(pid \d+, `test`/);
    } finally {
      state.remove('lock');
    }
  });
});

describe('TLS: the client verifies Vault\'s certificate against VAULT_CACERT / BAO_CACERT / --ca-cert', () => {
  let bao: BaoServer;
  afterAll(async () => bao?.stop());

  it('trusts the given CA and refuses without it', async () => {
    const certs = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-tls-')), '.vaultlab', 'certs'));
    const tls = ensureVaultTls(buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' })), certs);
    bao = await startBao({ tls: { certFile: tls.serverCert, keyFile: tls.serverKey } });
    const stateDir = join(mkdtempSync(join(tmpdir(), 'vaultlab-cli-tls-')), 'state'); // holds no CA of its own
    const withoutCa = vaultlab(['vault', 'init', '--state-dir', stateDir], { BAO_ADDR: bao.address });
    expect(withoutCa.code).toBe(1);
    expect(withoutCa.out).toContain("Vault's certificate is not signed by the CA vaultlab was given");
    const viaEnv = vaultlab(['vault', 'init', '--state-dir', stateDir], { BAO_ADDR: bao.address, BAO_CACERT: tls.caCert });
    expect(viaEnv.code, viaEnv.out).toBe(0);
    expect(viaEnv.out).toContain(`Vault at ${bao.address} initialized`);
    const viaVaultEnv = vaultlab(['vault', 'unseal', '--state-dir', stateDir], { VAULT_ADDR: bao.address, VAULT_CACERT: tls.caCert });
    expect(viaVaultEnv.code, viaVaultEnv.out).toBe(0);
    const viaFlag = vaultlab(['vault', 'up', '--no-seed', '--state-dir', stateDir, '--vault-addr', bao.address, '--ca-cert', tls.caCert]);
    expect(viaFlag.code, viaFlag.out).toBe(0);
  });
});

describe('HA: vault up --member unseals every Raft member', () => {
  const servers: BaoServer[] = [];
  afterAll(async () => Promise.all(servers.map((s) => s.stop())));

  it('initializes and unseals the first, then each member once it has joined; a second unseal is a no-op', async () => {
    const ports = await Promise.all(Array.from({ length: 4 }, () => freePort()));
    for (let i = 0; i < 2; i++) {
      const dir = mkdtempSync(join(tmpdir(), `vaultlab-ha-${i}-`));
      const join_ = i === 0 ? '' : `\n  retry_join {\n    leader_api_addr = "http://127.0.0.1:${ports[0]}"\n  }`;
      servers.push(await startBao({ dir, port: ports[i]!, clusterPort: ports[2 + i]!, storage: { raw: `storage "raft" {\n  path = "${join(dir, 'data')}"\n  node_id = "node-${i}"${join_}\n}` } }));
    }
    const stateDir = join(mkdtempSync(join(tmpdir(), 'vaultlab-ha-state-')), 'state');
    const flags = ['--vault-addr', servers[0]!.address, '--member', servers[1]!.address, '--state-dir', stateDir];
    const up = vaultlab(['vault', 'up', '--no-seed', ...flags]);
    expect(up.code, up.out).toBe(0);
    expect(up.out).toMatch(new RegExp(`unseal: +${servers[0]!.address} unsealed, ${servers[1]!.address} (unsealed|already-unsealed)`));
    for (const s of servers) {
      const c = new VaultClient({ address: s.address });
      expect((await c.sealStatus()).sealed).toBe(false);
      c.close();
    }
    const init = readInit(new StateDir(stateDir))!;
    const leader = new VaultClient({ address: servers[0]!.address, token: init.root_token! });
    const peers = (await leader.get<any>('sys/storage/raft/configuration')).data.data.config.servers.map((p: { node_id: string }) => p.node_id);
    expect(peers.sort()).toEqual(['node-0', 'node-1']);
    leader.close();

    // Restarted, both are sealed again: vault unseal --member unseals each with the stored key.
    for (const s of servers) await s.restart();
    const again = vaultlab(['vault', 'unseal', '--json', ...flags]);
    expect(again.code, again.out).toBe(0);
    const report = JSON.parse(again.stdout);
    expect(report.members.map((m: { address: string }) => m.address)).toEqual(servers.map((s) => s.address));
    expect(report.members[0].action).toBe('unsealed');
    for (const s of servers) {
      const c = new VaultClient({ address: s.address });
      expect((await c.sealStatus()).sealed).toBe(false);
      c.close();
    }
    const noop = vaultlab(['vault', 'unseal', ...flags]);
    expect(noop.out.match(/is already unsealed/g)).toHaveLength(2);
  });
});

describe('a Vault killed in the middle of a seed', () => {
  let bao: BaoServer;
  afterAll(async () => bao?.stop());

  it('a re-run after restart and unseal completes, with nothing lost', async () => {
    bao = await startBao();
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kill-'));
    const stateDir = join(dir, 'state');
    // Many paths, so the kill lands mid-way.
    const entries = Array.from({ length: 150 }, (_, i) => `[[secrets]]\npath = "bulk/p${i}"\nkey = "k"\nformat = "hex"\nbytes = 16\n`).join('\n');
    const config = join(dir, 'config.toml');
    writeFileSync(config, entries);
    const flags = ['--config', config, '--vault-addr', bao.address, '--state-dir', stateDir];
    expect(vaultlab(['vault', 'up', '--no-seed', ...flags]).code).toBe(0);
    const init = readInit(new StateDir(stateDir))!;
    const client = new VaultClient({ address: bao.address, token: init.root_token!, attempts: 1 });

    const seeding = spawn(process.execPath, [CLI, 'seed', ...flags], { cwd: PROJECT_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' });
    // Kill Vault as soon as some, but not all, paths exist.
    const deadline = Date.now() + 30_000;
    let written = 0;
    while (Date.now() < deadline) {
      const list = await client.get<any>('secret/metadata/bulk?list=true', { accept: [404] });
      written = list.status === 404 ? 0 : list.data.data.keys.length;
      if (written > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await bao.kill();
    const exit = await new Promise<number | null>((r) => seeding.on('exit', r));
    expect(exit).not.toBe(0); // the interrupted seed failed loudly
    expect(written).toBeGreaterThan(0);

    await bao.restart();
    await unsealVault(client, init.keys_base64);
    await waitForActive(client);
    // Raft replays its log after unseal: list until two reads a second apart agree.
    let before = await client.get<any>('secret/metadata/bulk?list=true');
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const again = await client.get<any>('secret/metadata/bulk?list=true');
      const same = again.data.data.keys.length === before.data.data.keys.length;
      before = again;
      if (same) break;
    }
    const survived = before.data.data.keys.length as number;
    expect(survived).toBeLessThan(150);
    const valuesBefore = new Map<string, string>();
    for (const p of before.data.data.keys as string[]) valuesBefore.set(p, (await client.kvRead('secret', `bulk/${p}`))!.data.k!);

    const rerun = vaultlab(['seed', '--json', ...flags]);
    expect(rerun.code, rerun.out).toBe(0);
    const report = JSON.parse(rerun.stdout);
    expect(report.counts.created + report.counts.unchanged).toBe(150);
    expect(report.counts.unchanged).toBe(survived);
    const after = await client.get<any>('secret/metadata/bulk?list=true');
    expect(after.data.data.keys).toHaveLength(150);
    // Nothing lost or rotated: what was written before the crash is still there, unchanged.
    for (const [p, v] of valuesBefore) expect((await client.kvRead('secret', `bulk/${p}`))!.data.k).toBe(v);
    client.close();
  });
});
