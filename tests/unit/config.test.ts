import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { editDistance, suggest } from '../../scripts/lib/suggest.ts';
import { configErrors as configError } from '../harness/config-errors.ts';

const seeded = `
[passwords]
db = ""
[[secrets]]
path = "app/db"
key = "password"
password = "db"
`;

describe('config loading', () => {
  it('loads the bundled demo config with every section', () => {
    const c = loadConfig({ file: BUNDLED_CONFIG, env: {} });
    expect(c.profile).toBe('demo');
    expect(c.config.cluster.name).toBe('vaultlab');
    expect(c.config.vault.kv_mount).toBe('secret');
    expect(c.config.vault.engines).toEqual(['kv-v2', 'database', 'transit']);
    expect(c.config.vault.kubernetes_auth.audience).toBe('vault');
    expect(c.config.secrets.length).toBeGreaterThanOrEqual(8);
    expect(c.config.apps.map((a) => a.sample).sort()).toEqual(['argocd', 'dashboard', 'db-client', 'env', 'env', 'files', 'registry', 'vault-files']);
    expect(c.config.databases.map((d) => [d.name, d.where, d.roles.map((r) => `${r.name}:${r.app}`)])).toEqual([['shop', 'sample', ['shop-app:shop']]]);
  });

  it('uses the bundled demo environment when there is no config.toml', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-cfg-'));
    const c = loadConfig({ cwd: dir, env: {} });
    expect(c.bundled).toBe(true);
    expect(c.file).toContain('bundled');
    expect(c.config.apps.length).toBeGreaterThan(0);
  });

  it('reads ./config.toml from the working directory when present', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-cfg-'));
    writeFileSync(join(dir, 'config.toml'), '[cluster]\nname = "mine"\n');
    const c = loadConfig({ cwd: dir, env: {} });
    expect(c.bundled).toBe(false);
    expect(c.config.cluster.name).toBe('mine');
  });

  it('an empty file gives every default', () => {
    const c = loadConfigText('', 'config.toml', { env: {} });
    expect(c.config.cluster.provider).toBe('kind');
    expect(c.config.vault.distribution).toBe('vault');
    expect(c.config.production.key_shares).toBe(5);
    expect(c.config.production.key_threshold).toBe(3);
    expect(c.warnings.join()).toContain('no enabled [[apps]]');
  });

  it('TOML syntax errors name file:line:column', () => {
    const [e] = configError('[cluster]\nname = "x"\nworkers = \n');
    expect(e!.message).toMatch(/^config\.toml:3:\d+: TOML syntax error/);
    expect(e!.exitCode).toBe(2);
  });

  it('a wrong type names line, dotted field path, what was found and what is allowed', () => {
    const [e] = configError('[cluster]\nworkers = "two"\n');
    expect(e!.message).toBe('config.toml:2: cluster.workers: found the string "two"; must be number');
  });

  it('an enum error lists the allowed values', () => {
    const [e] = configError(`${seeded}format = "b64"\n`);
    expect(e!.message).toMatch(/config\.toml:8: secrets\[0\]\.format: found the string "b64"; must be one of "base64", "hex"/);
  });

  it('unknown keys are errors with a did-you-mean and the allowed keys', () => {
    const [e] = configError('[vault]\nkv_mont = "kv"\n');
    expect(e!.message).toBe('config.toml:2: vault.kv_mont: unknown key "kv_mont" in [vault]; did you mean "kv_mount"?');
    expect(e!.hint).toContain('kv_mount');
  });

  it('unknown keys inside arrays of tables are located on their line', () => {
    const [e] = configError(`${seeded}formt = "hex"\n`);
    expect(e!.message).toContain('config.toml:8: secrets[0].formt: unknown key "formt" in [secrets[0]]; did you mean "format"?');
  });

  it('an unknown top-level table is an error', () => {
    const [e] = configError('[valt]\naddress = "x"\n');
    expect(e!.message).toContain('unknown key "valt" in the top level; did you mean "vault"?');
  });

  it('a dangling ExternalSecret reference names the field and the fix', () => {
    const errs = configError(`${seeded}
[[apps]]
name = "app"
namespace = "app"
[[apps.external_secrets]]
name = "creds"
data = [{ secret_key = "PW", path = "app/db", key = "pasword" }]
`);
    expect(errs).toHaveLength(1);
    expect(errs[0]!.message).toBe(
      'config.toml:14: apps[0].external_secrets[0].data[0].key: ExternalSecret "creds" reads path "app/db" key "pasword", which no [[secrets]] entry seeds; did you mean "password"?',
    );
    expect(errs[0]!.hint).toContain('[[secrets]]');
  });

  it('duplicate path+key is an error', () => {
    const errs = configError(`${seeded}
[[secrets]]
path = "app/db"
key = "password"
`);
    expect(errs[0]!.message).toMatch(/secrets\[1\]\.key: duplicate seeding entry for path "app\/db" key "password" \(also secrets\[0\]\)/);
  });

  it('contradicting options are errors', () => {
    expect(configError(`${seeded}always_random = true\n`)[0]!.message).toContain('always_random = true contradicts password');
    expect(configError('[production]\nkey_shares = 3\nkey_threshold = 4\n')[0]!.message).toContain('threshold 4 is greater than key_shares 3');
    expect(configError(`${seeded}plaintext_key = "plain"\n`)[0]!.message).toContain('plaintext_key only makes sense with hash = "bcrypt"');
    const esoPolicy = configError(`${seeded}
[[apps]]
name = "app"
namespace = "app"
[[apps.external_secrets]]
name = "creds"
creation_policy = "Merge"
deletion_policy = "Delete"
data = [{ secret_key = "PW", path = "app/db", key = "password" }]
`);
    expect(esoPolicy[0]!.message).toContain('deletion_policy = "Delete" contradicts creation_policy = "Merge"');
    expect(configError('[cluster]\ncontext = "x"\n')[0]!.message).toContain('only used with provider = "existing"');
  });

  it('a password reference must exist in [passwords] or the environment', () => {
    const text = '[[secrets]]\npath = "a/b"\nkey = "k"\npassword = "tok"\n';
    expect(configError(text)[0]!.message).toContain('VAULTLAB_PASSWORD_TOK');
    const ok = loadConfigText(text, 'config.toml', { env: { VAULTLAB_PASSWORD_TOK: 'from-env-123' } });
    expect(ok.passwords.tok).toBe('from-env-123');
    expect(ok.passwordsFromEnv).toEqual(['tok']);
  });

  it('VAULTLAB_PASSWORD_<NAME> overrides the file', () => {
    const c = loadConfigText('[passwords]\nadmin = "file-value"\n', 'config.toml', { env: { VAULTLAB_PASSWORD_ADMIN: 'env-value' } });
    expect(c.passwords.admin).toBe('env-value');
  });

  it('profile precedence: --profile > VAULTLAB_PROFILE > [profile]', () => {
    expect(loadConfigText('[profile]\nname = "demo"\n', 'c', { env: { VAULTLAB_PROFILE: 'production' } }).profile).toBe('production');
    expect(loadConfigText('[profile]\nname = "production"\n', 'c', { env: { VAULTLAB_PROFILE: 'production' }, profile: 'demo' }).profile).toBe('demo');
    expect(() => loadConfigText('', 'c', { env: {}, profile: 'prod' })).toThrow(/--profile: unknown profile "prod"/);
  });

  it('production rejects ExternalSecrets reading outside their namespace', () => {
    const text = `${seeded}
[[apps]]
name = "other"
namespace = "other"
[[apps.external_secrets]]
name = "creds"
data = [{ secret_key = "PW", path = "app/db", key = "password" }]
`;
    expect(() => loadConfigText(text, 'c', { env: {} })).not.toThrow();
    expect(configError(text, { profile: 'production' })[0]!.message).toContain('in production each namespace may read only "other/…"');
  });
});

describe('suggestions', () => {
  it('counts an adjacent swap as one edit', () => {
    expect(editDistance('plna', 'plan')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
  it('suggests only close matches', () => {
    expect(suggest('kv_mont', ['kv_mount', 'namespace'])).toBe('kv_mount');
    expect(suggest('zzz', ['kv_mount', 'namespace'])).toBeUndefined();
  });
});

describe('cluster name', () => {
  it('--name > VAULTLAB_CLUSTER_NAME > CI run id > [cluster] name', () => {
    const text = '[cluster]\nname = "lab"\n';
    expect(loadConfigText(text, 'c', { env: {} }).config.cluster.name).toBe('lab');
    expect(loadConfigText(text, 'c', { env: { GITHUB_RUN_ID: '42' } }).config.cluster.name).toBe('lab');
    expect(loadConfigText(text, 'c', { env: { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2' }, ci: true }).config.cluster.name).toBe('lab-ci-42-2');
    expect(loadConfigText(text, 'c', { env: { GITHUB_RUN_ID: '42', VAULTLAB_CLUSTER_NAME: 'x1' }, ci: true }).config.cluster.name).toBe('x1');
    expect(loadConfigText(text, 'c', { env: { VAULTLAB_CLUSTER_NAME: 'x1' }, clusterName: 'y2' }).config.cluster.name).toBe('y2');
    expect(() => loadConfigText(text, 'c', { env: {}, clusterName: 'Bad_Name' })).toThrow(/--name: "Bad_Name" is not a valid cluster name/);
  });
});
