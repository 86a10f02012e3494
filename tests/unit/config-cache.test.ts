// The validated-config cache (scripts/config/validated-cache.ts): a hit gives exactly what
// validating gives, never holds a [passwords] value, and anything unusable is a miss.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { cacheDir } from '../../scripts/config/validated-cache.ts';
import { ConfigErrors } from '../../scripts/lib/errors.ts';

const TEXT = `
[cluster]
name = "cache-test"
[production]
allow_literals = ["admin"]
[passwords]
admin = "a-literal-nobody-may-find"
rnd = ""
[[secrets]]
path = "web/admin"
key = "password"
password = "admin"
[[secrets]]
path = "web/rnd"
key = "token"
format = "hex"
bytes = 8
[[apps]]
name = "web"
sample = "env"
[[apps.secrets]]
name = "web-secrets"
data = [{ secret_key = "TOKEN", path = "web/rnd", key = "token" }]
`;

function setup(text = TEXT) {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-cfgcache-'));
  const file = join(dir, 'config.toml');
  writeFileSync(file, text);
  const env = { XDG_CACHE_HOME: join(dir, 'cache') };
  const entries = () => {
    try {
      return readdirSync(cacheDir(env)).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
  };
  return { dir, file, env, entries };
}

const comparable = (l: ReturnType<typeof loadConfig>) => JSON.parse(JSON.stringify({ ...l, file: undefined }));

describe('validated-config cache', () => {
  it('a hit loads exactly what validation does, and the entry (0600) holds no [passwords] value', () => {
    const s = setup();
    const first = loadConfig({ file: s.file, env: s.env });
    expect(s.entries()).toHaveLength(1);
    const path = join(cacheDir(s.env), s.entries()[0]!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).not.toContain('a-literal-nobody-may-find');
    const hit = loadConfig({ file: s.file, env: s.env });
    const fresh = loadConfig({ file: s.file, env: { ...s.env, VAULTLAB_CONFIG_CACHE: '0' } });
    expect(comparable(hit)).toEqual(comparable(fresh));
    expect(comparable(first)).toEqual(comparable(fresh));
    expect(hit.passwords.admin).toBe('a-literal-nobody-may-find');
    // The bundled config too.
    const b = { XDG_CACHE_HOME: join(s.dir, 'cache-b') };
    loadConfig({ file: BUNDLED_CONFIG, env: b });
    expect(comparable(loadConfig({ file: BUNDLED_CONFIG, env: b }))).toEqual(comparable(loadConfig({ file: BUNDLED_CONFIG, env: { VAULTLAB_CONFIG_CACHE: '0' } })));
  });

  it('overrides apply to a hit as to a fresh load: profile, cluster name, VAULTLAB_PASSWORD_<NAME>; and the cached entry is not changed by them', () => {
    const s = setup();
    loadConfig({ file: s.file, env: s.env });
    const over = loadConfig({ file: s.file, env: { ...s.env, VAULTLAB_PASSWORD_ADMIN: 'from-env' }, profile: 'production', clusterName: 'other' });
    expect(over.passwords.admin).toBe('from-env');
    expect(over.profile).toBe('production');
    expect(over.config.cluster.name).toBe('other');
    const plain = loadConfig({ file: s.file, env: s.env });
    expect(plain.profile).toBe('demo');
    expect(plain.config.cluster.name).toBe('cache-test');
    expect(plain.passwords.admin).toBe('a-literal-nobody-may-find');
    expect(s.entries()).toHaveLength(1);
  });

  it('an edited text is a miss; a damaged entry is a miss and replaced; VAULTLAB_CONFIG_CACHE=0 writes nothing', () => {
    const s = setup();
    loadConfig({ file: s.file, env: s.env });
    writeFileSync(s.file, TEXT.replace('name = "cache-test"', 'name = "cache-test-2"'));
    expect(loadConfig({ file: s.file, env: s.env }).config.cluster.name).toBe('cache-test-2');
    expect(s.entries()).toHaveLength(2);
    for (const f of s.entries()) writeFileSync(join(cacheDir(s.env), f), '{ damaged');
    expect(loadConfig({ file: s.file, env: s.env }).config.cluster.name).toBe('cache-test-2');
    const parses = (f: string) => {
      try {
        return JSON.parse(readFileSync(join(cacheDir(s.env), f), 'utf8')).format === 1;
      } catch {
        return false;
      }
    };
    expect(s.entries().filter(parses)).toHaveLength(1); // the current text's entry, written again
    const off = setup();
    loadConfig({ file: off.file, env: { ...off.env, VAULTLAB_CONFIG_CACHE: '0' } });
    expect(off.entries()).toHaveLength(0);
  });

  it('an invalid config is never cached and still fails with file:line; cross-entry checks run on a hit', () => {
    const bad = setup(TEXT.replace('bytes = 8', 'bytes = "eight"'));
    expect(() => loadConfig({ file: bad.file, env: bad.env })).toThrow(ConfigErrors);
    expect(bad.entries()).toHaveLength(0);
    // Valid for the schema, wrong across entries (an app reads a path nothing seeds): cached, and refused every time.
    const cross = setup(TEXT.replace('path = "web/rnd", key = "token"', 'path = "web/none", key = "token"'));
    for (let i = 0; i < 2; i++) {
      let err: unknown;
      try {
        loadConfig({ file: cross.file, env: cross.env });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigErrors);
      expect((err as Error).message).toMatch(/config\.toml:\d+/);
    }
    expect(cross.entries()).toHaveLength(1);
  });
});
