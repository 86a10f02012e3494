import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig, BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');

function vaultlab(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { ...process.env, NO_COLOR: '1', VAULTLAB_PROFILE: '', ...opts.env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function badConfig(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-cli-'));
  writeFileSync(join(dir, 'config.toml'), text);
  return { dir, ...vaultlab(['plan', '--out', join(dir, 'out')], { cwd: dir }) };
}

describe('vaultlab CLI', () => {
  it('--help lists every command and exits 0', () => {
    const r = vaultlab(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['deploy', 'destroy', 'reset', 'status', 'doctor', 'plan', 'vault init', 'vault unseal', 'vault configure', 'vault up', 'seed']) {
      expect(r.stdout).toContain(`  ${c} `);
    }
  });

  it('every command has its own --help', () => {
    for (const c of [['deploy'], ['destroy'], ['reset'], ['status'], ['doctor'], ['plan'], ['seed'], ['vault', 'init'], ['vault', 'unseal'], ['vault', 'configure'], ['vault', 'up']]) {
      const r = vaultlab([...c, '--help']);
      expect(r.code, `${c.join(' ')} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`Usage: vaultlab ${c.join(' ')}`);
      expect(r.stdout).toContain('--config FILE');
    }
  });

  it('no command is a usage error (exit 2); an unknown command suggests the right one', () => {
    expect(vaultlab([]).code).toBe(2);
    const r = vaultlab(['plna']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "plna"; did you mean "plan"?');
  });

  it('an unknown flag is a usage error with a suggestion', () => {
    const r = vaultlab(['plan', '--otu', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean "--out"?');
  });

  it('plan --out twice gives byte-identical artifacts containing no [passwords] value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-plan-'));
    const a = vaultlab(['plan', '--out', join(dir, 'a')]);
    const b = vaultlab(['plan', '--out', join(dir, 'b')]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const ta = tree(join(dir, 'a'));
    const tb = tree(join(dir, 'b'));
    expect([...ta.keys()].sort()).toEqual([...tb.keys()].sort());
    for (const [k, v] of ta) expect(v.equals(tb.get(k)!), k).toBe(true);
    expect(ta.size).toBeGreaterThanOrEqual(13);
    const values = Object.values(loadConfig({ file: BUNDLED_CONFIG, env: {} }).passwords).filter(Boolean);
    for (const [k, v] of ta) for (const s of values) expect(v.toString('utf8').includes(s), `${s} in ${k}`).toBe(false);
    for (const s of values) expect(a.stdout + a.stderr).not.toContain(s);
  });

  it('plan --json is valid JSON with the artifact list and no values', () => {
    const r = vaultlab(['plan', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(true);
    expect(j.artifacts).toContain('helm/vault-values.yaml');
    expect(j.plan.seeding.entries.length).toBeGreaterThan(0);
  });

  it('--profile production on the bundled config says how many demo values it ignores', () => {
    const r = vaultlab(['plan', '--profile', 'production']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ignoring 5 demo value\(s\) from \[passwords\]/);
    expect(r.stdout).toContain('HA Raft x3');
  });

  it('plan --diff shows what production changes against demo', () => {
    const r = vaultlab(['plan', '--profile', 'production', '--diff']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Differences demo -> production');
    expect(r.stdout).toContain('+   tlsDisable: false');
  });

  // The four "Done when" config errors: one line each, actionable, exit 2, nothing written.
  it.each([
    ['TOML syntax error', '[cluster]\nname = \n', /^error: config\.toml:2:\d+: TOML syntax error/],
    ['wrong type', '[cluster]\nworkers = "two"\n', /^error: config\.toml:2: cluster\.workers: found the string "two"; must be number/],
    ['unknown key', '[vault]\nkv_mont = "x"\n', /^error: config\.toml:2: vault\.kv_mont: unknown key "kv_mont" in \[vault\]; did you mean "kv_mount"\?/],
    [
      'dangling ExternalSecret reference',
      '[[secrets]]\npath = "a/b"\nkey = "k"\n[[apps]]\nname = "a"\nnamespace = "a"\n[[apps.external_secrets]]\nname = "e"\ndata = [{ secret_key = "K", path = "a/b", key = "kk" }]\n',
      /^error: config\.toml:9: apps\[0\]\.external_secrets\[0\]\.data\[0\]\.key: ExternalSecret "e" reads path "a\/b" key "kk", which no \[\[secrets\]\] entry seeds/,
    ],
  ])('%s: exit 2, file:line or field path, nothing written', (_name, text, pattern) => {
    const r = badConfig(text);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(pattern);
    expect(r.stdout).toBe('');
    expect(existsSync(join(r.dir, 'out'))).toBe(false);
  });

  it('a missing --config file is a config error (exit 2)', () => {
    const r = vaultlab(['plan', '--config', '/nonexistent/vaultlab.toml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nonexistent/vaultlab.toml: file not found');
  });

  it('config errors in --json mode are machine-readable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-cli-'));
    writeFileSync(join(dir, 'config.toml'), '[vault]\nkv_mont = "x"\n');
    const r = vaultlab(['plan', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(false);
    expect(j.errors[0].where).toBe('config.toml:2: vault.kv_mont');
  });
});
