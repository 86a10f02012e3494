// production.pgp_keys: Vault returns every key share encrypted to its PGP key; vaultlab stores
// only ciphertext, cannot unseal by itself, and unseals with decrypted shares given on stdin.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { readInit } from '../../scripts/vault/keys.ts';

function gpg(home: string, args: string[], input?: string | Buffer) {
  const r = spawnSync('gpg', ['--homedir', home, '--batch', '--yes', ...args], { input, env: { ...process.env, GNUPGHOME: home } });
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('PGP-encrypted key shares', () => {
  let bao: BaoServer;
  afterAll(async () => bao?.stop());

  it('init stores only encrypted shares; unseal works with 3 decrypted shares on stdin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-pgp-'));
    const home = join(dir, 'gnupg');
    spawnSync('mkdir', ['-m', '700', home]);
    gpg(home, ['--passphrase', '', '--quick-gen-key', 'vaultlab-test <keys@vaultlab.test>', 'rsa2048', 'encrypt', 'never']);
    writeFileSync(join(dir, 'key.asc'), gpg(home, ['--armor', '--export', 'keys@vaultlab.test']));
    const config = join(dir, 'config.toml');
    const keyPath = join(dir, 'key.asc');
    writeFileSync(config, `[production]\npgp_keys = [${Array(5).fill(`"${keyPath}"`).join(', ')}]\n`);
    bao = await startBao();
    const state = join(dir, 'state');
    const run = (args: string[], input?: string) =>
      spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, '--config', config, '--profile', 'production', '--vault-addr', bao.address, '--state-dir', state], { input, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', CI: 'true' } });

    const init = run(['vault', 'init']);
    expect(init.status, init.stderr).toBe(0);
    const stored = readInit(new StateDir(state))!;
    expect(stored.pgp).toBe(true);
    expect(stored.keys_base64).toHaveLength(5);

    // Without plaintext shares vaultlab cannot unseal (and says how).
    const refused = run(['vault', 'unseal']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('--keys-file');

    const plain = stored.keys_base64.slice(0, 3).map((k) => gpg(home, ['--decrypt'], Buffer.from(k, 'base64')).toString('utf8').trim());
    const unseal = run(['vault', 'unseal', '--stdin'], plain.join('\n'));
    expect(unseal.status, unseal.stderr).toBe(0);
    expect(unseal.stdout).toContain('unsealed with 3 key share(s)');
    for (const k of plain) expect(unseal.stdout + unseal.stderr).not.toContain(k);
    expect(readFileSync(join(state, 'vault-init.json'), 'utf8')).not.toContain(plain[0]!);
  });
});
