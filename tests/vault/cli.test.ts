// The Vault commands as a user runs them (child processes), against a real OpenBao: output
// never contains a seeded value; a Vault killed mid-seed is completed by a re-run.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, type BaoServer } from '../harness/bao.ts';
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

  it('vault up, seed, seed --rotate and vault configure never print a seeded value', async () => {
    const flags = ['--vault-addr', bao.address, '--state-dir', stateDir];
    const outputs: string[] = [];
    for (const args of [['vault', 'up'], ['seed'], ['seed', '--json'], ['seed', '--rotate', '--verbose'], ['vault', 'configure', '--json'], ['vault', 'unseal']]) {
      const r = vaultlab([...args, ...flags]);
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
      outputs.push(r.out);
    }
    // Every value in Vault now, and every value it held before rotation (KV versions), is absent from all output.
    const init = readInit(new StateDir(stateDir))!;
    const client = new VaultClient({ address: bao.address, token: init.root_token! });
    const values: string[] = [init.root_token!, ...init.keys_base64];
    for (const path of ['webapp/db', 'webapp/api', 'webapp/worker', 'argocd/admin', 'registry/creds', 'dashboard/config']) {
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
    expect(outputs[1]).toContain('0 created, 0 updated, 0 rotated, 10 unchanged (0 write request(s))');
    expect(JSON.parse(outputs[2]!.slice(outputs[2]!.indexOf('{'))).writes).toBe(0);
    expect(outputs[3]).toMatch(/5 rotated/);
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
