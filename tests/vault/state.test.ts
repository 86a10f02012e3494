// The state dir: private modes, atomic writes, git-ignored, one run at a time (real processes).
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDir, stateDirFor } from '../../scripts/lib/state.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

const newRoot = () => mkdtempSync(join(tmpdir(), 'vaultlab-statedir-'));
const STATE_MODULE = join(PROJECT_ROOT, 'scripts', 'lib', 'state.ts');

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('state dir', () => {
  it('defaults to .vaultlab/<cluster> (0700) with a .gitignore of *, or --state-dir', () => {
    const root = newRoot();
    const s = stateDirFor('demo', undefined, root).ensure();
    expect(s.path).toBe(join(root, '.vaultlab', 'demo'));
    expect(statSync(s.path).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(root, '.vaultlab', '.gitignore'), 'utf8').split('\n')).toContain('*');
    expect(stateDirFor('demo', 'elsewhere/st', root).path).toBe(join(root, 'elsewhere', 'st'));
    // git agrees that nothing in it would be committed.
    spawnSync('git', ['init', '-q', root]);
    s.writeJson('vault-init.json', { keys: [] });
    const status = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });
    expect(status.stdout).not.toContain('vault-init.json');
  });

  it('writes files 0600 through a temp file and rename: no partial file, no leftovers, replaced whole', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    s.write('a.json', 'first');
    s.write('a.json', 'second');
    expect(s.read('a.json')).toBe('second');
    expect(statSync(s.file('a.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(s.path)).toEqual(['a.json']);
    // Written into a subdirectory (tls/) too, still private.
    s.write('tls/ca.crt', 'pem');
    expect(statSync(s.file('tls/ca.crt')).mode & 0o777).toBe(0o600);
  });

  it('an exclusive write never replaces an existing file', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    s.writeJson('vault-init.json', { keys: ['one'] }, { exclusive: true });
    expect(() => s.writeJson('vault-init.json', { keys: ['two'] }, { exclusive: true })).toThrow(/already exists and vaultlab never overwrites it/);
    expect(s.readJson<{ keys: string[] }>('vault-init.json')!.keys).toEqual(['one']);
  });

  it('reports key files others may read, with the chmod that fixes it', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    s.write('vault-init.json', '{}');
    expect(s.checkPermissions()).toEqual([]);
    chmodSync(s.file('vault-init.json'), 0o644);
    expect(s.checkPermissions()[0]).toMatch(/has mode 644; run: chmod 600/);
  });

  it('checks every file and folder, the TLS keys under tls/ and the kubeconfig too', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    s.write('tls/ca.key', 'key');
    s.write('kubeconfig', 'client-key-data: x');
    expect(s.checkPermissions()).toEqual([]);
    chmodSync(s.file('tls/ca.key'), 0o640);
    chmodSync(s.file('kubeconfig'), 0o644);
    chmodSync(s.file('tls'), 0o755);
    expect(s.checkPermissions().sort()).toEqual(
      [
        `${s.file('kubeconfig')} has mode 644; run: chmod 600 ${s.file('kubeconfig')}`,
        `${s.file('tls')} has mode 755; run: chmod 700 ${s.file('tls')}`,
        `${s.file('tls/ca.key')} has mode 640; run: chmod 600 ${s.file('tls/ca.key')}`,
      ].sort(),
    );
  });

  it('a lock held by a live process is refused with who holds it; released, it can be taken again', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(s.ensure().file('lock'), JSON.stringify({ pid: sleeper.pid, command: 'deploy', since: '2026-01-01T00:00:00Z' }));
      expect(() => s.lock('seed')).toThrow(new RegExp(`another vaultlab run \\(pid ${sleeper.pid}, \`deploy\` since 2026-01-01T00:00:00Z\\) holds`));
    } finally {
      sleeper.kill('SIGKILL');
    }
    s.remove('lock');
    const release = s.lock('seed');
    expect(JSON.parse(readFileSync(s.file('lock'), 'utf8'))).toMatchObject({ pid: process.pid, command: 'seed' });
    expect(statSync(s.file('lock')).mode & 0o777).toBe(0o600);
    release();
    expect(existsSync(s.file('lock'))).toBe(false);
    expect(readdirSync(s.path)).toEqual([]);
  });

  it('a lock that made the state dir (and .vaultlab) removes them on release when the run left nothing; a dir with state stays', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'vaultlab-lock-fresh-'));
    const s = stateDirFor('fresh', undefined, cwd);
    s.lock('deploy')();
    expect(readdirSync(cwd)).toEqual([]);
    const kept = stateDirFor('kept', undefined, cwd);
    const release = kept.lock('deploy');
    kept.write('kubeconfig', 'apiVersion: v1\n');
    release();
    expect(readdirSync(kept.path)).toEqual(['kubeconfig']);
    // An existing .vaultlab (another cluster's state beside it) is never removed.
    stateDirFor('other', undefined, cwd).lock('status')();
    expect(readdirSync(join(cwd, '.vaultlab')).sort()).toEqual(['.gitignore', 'kept']);
  });

  it('a stale lock (its process is gone) is taken over', () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    writeFileSync(s.ensure().file('lock'), JSON.stringify({ pid: deadPid(), command: 'deploy', since: 'earlier' }));
    const release = s.lock('vault up');
    expect(JSON.parse(readFileSync(s.file('lock'), 'utf8'))).toMatchObject({ pid: process.pid, command: 'vault up' });
    release();
  });

  it('of several processes racing for a stale lock, exactly one gets it', async () => {
    const s = new StateDir(join(newRoot(), '.vaultlab', 'c'));
    writeFileSync(s.ensure().file('lock'), JSON.stringify({ pid: deadPid(), command: 'deploy', since: 'earlier' }));
    const go = join(s.path, '..', 'go');
    // Each contender waits for the same signal, tries once, and holds a lock it got for 3 s.
    const script = `
      import { existsSync, writeFileSync } from 'node:fs';
      const { StateDir } = await import(${JSON.stringify(STATE_MODULE)});
      writeFileSync(${JSON.stringify(go)} + '.ready-' + process.pid, '');
      while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 5));
      try {
        const release = new StateDir(${JSON.stringify(s.path)}).lock('contender');
        console.log('got');
        await new Promise((r) => setTimeout(r, 3000));
        release();
      } catch (e) {
        console.log(/another vaultlab run/.test(e.message) ? 'refused' : 'error ' + e.message);
      }`;
    const contenders = Array.from({ length: 6 }, () => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const outputs = contenders.map((c) => new Promise<string>((resolve) => {
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      c.on('exit', () => resolve(out.trim()));
    }));
    // All started and waiting at the line.
    while (readdirSync(join(s.path, '..')).filter((f) => f.startsWith('go.ready-')).length < contenders.length) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(go, '');
    const results = await Promise.all(outputs);
    expect(results.filter((r) => r === 'got')).toHaveLength(1);
    expect(results.filter((r) => r === 'refused')).toHaveLength(5);
    expect(existsSync(s.file('lock'))).toBe(false);
  });
});
