// The child-process adapter and the shell it goes through (zx runs commands with bash): bash's
// rsh/sshd detection reads ~/.bashrc when stdin is a socket (Node's pipes are) and SHLVL is
// unset or 0, as when vaultlab is started from systemd, cron, an IDE or `env -i`. What that rc
// file prints must never reach the output vaultlab parses, nor its time every call.
import { describe, it, expect, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, exec } from '../../scripts/adapters/exec.ts';

const saved = { HOME: process.env.HOME, SHLVL: process.env.SHLVL };
const dirs: string[] = [];
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function homeWithNoisyRc(): string {
  const home = mkdtempSync(join(tmpdir(), 'vaultlab-home-'));
  dirs.push(home);
  writeFileSync(join(home, '.bashrc'), 'echo "RC-RAN"\n');
  return home;
}

describe('exec', () => {
  it("a user's ~/.bashrc neither runs nor prints into a child's output when SHLVL is unset or 0", async () => {
    const home = homeWithNoisyRc();
    // The trap is real on this machine's bash: with a socket for stdin and SHLVL=0 it reads the rc file.
    const bare = spawnSync('bash', ['-c', 'printf ok'], { env: { ...process.env, HOME: home, SHLVL: '0' }, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' });
    const socketStdin = spawnSync(process.execPath, ['-e', `require('node:child_process').spawn('bash', ['-c', 'printf ok'], { stdio: 'pipe' }).stdout.pipe(process.stdout)`], { env: { ...process.env, HOME: home, SHLVL: '0' }, encoding: 'utf8' });
    expect(bare.status).toBe(0);
    expect(socketStdin.stdout).toBe('RC-RAN\nok');

    for (const level of ['0', undefined]) {
      process.env.HOME = home;
      if (level === undefined) delete process.env.SHLVL;
      else process.env.SHLVL = level;
      const r = await exec('printf', ['%s', 'ok']);
      expect(r.stdout).toBe('ok');
    }
  });

  it('keeps a SHLVL that is already set, and what the caller adds', () => {
    expect(childEnv({}, { SHLVL: '3' }).SHLVL).toBe('3');
    expect(childEnv({}, {}).SHLVL).toBe('1');
    expect(childEnv({ A: 'b' }, { SHLVL: '0' })).toEqual({ A: 'b', SHLVL: '1' });
  });
});
