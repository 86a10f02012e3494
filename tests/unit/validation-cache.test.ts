// Rendered objects validated once per content (scripts/plan/validate.ts): a second process
// rendering the same plan loads no model class and gives the same bytes; anything else is still
// validated; Secrets with data leave no trace in the cache.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'vaultlab-validation-'));
const script = join(dir, 'render.ts');
writeFileSync(
  script,
  [
    "import module from 'node:module';",
    'const models: string[] = [];',
    "module.registerHooks({ load(url, ctx, next) { if (url.includes('/node_modules/kubernetes-models/') || url.includes('/node_modules/@kubernetes-models/')) models.push(url); return next(url, ctx); } });",
    `const { loadConfig, BUNDLED_CONFIG } = await import(${JSON.stringify(join(PROJECT_ROOT, 'scripts/config/load.ts'))});`,
    `const { buildPlan } = await import(${JSON.stringify(join(PROJECT_ROOT, 'scripts/plan/build.ts'))});`,
    `const { allManifests } = await import(${JSON.stringify(join(PROJECT_ROOT, 'scripts/plan/manifests.ts'))});`,
    `const { validated } = await import(${JSON.stringify(join(PROJECT_ROOT, 'scripts/plan/validate.ts'))});`,
    "const out: any = { objects: allManifests(buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: process.argv[2] }))) };",
    'out.loadedModels = models.length;',
    "try { validated({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 42 } } as any); out.invalid = 'accepted'; } catch (e) { out.invalid = (e as Error).message; }",
    "validated({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n' }, data: { k: Buffer.from('short').toString('base64') } } as any);",
    'console.log(JSON.stringify(out));',
  ].join('\n'),
);
const render = (profile: string, env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync(process.execPath, [script, profile], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache'), ...env }, timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
};

describe('the validation cache', () => {
  it('a second render of the same plan loads no model class and gives the same objects; an invalid object is still refused', () => {
    for (const profile of ['demo', 'production']) {
      const first = render(profile);
      expect(first.loadedModels).toBeGreaterThan(0);
      const second = render(profile);
      expect(second.loadedModels, 'the model classes are loaded only to refuse the invalid Namespace and check the Secret').toBeLessThan(first.loadedModels);
      expect(second.objects).toEqual(first.objects);
      const off = render(profile, { VAULTLAB_VALIDATION_CACHE: '0' });
      expect(off.objects).toEqual(first.objects);
      for (const r of [first, second, off]) expect(r.invalid).toMatch(/^rendered Namespace 42 is not valid: .*must be string/);
    }
  });

  it('holds only empty files named by digests; a Secret with data is never remembered', async () => {
    const markers = readdirSync(join(dir, 'cache', 'vaultlab', 'validated'));
    expect(markers.length).toBeGreaterThan(10);
    for (const m of markers) expect(m).toMatch(/^[0-9a-f]{64}$/);
    for (const m of markers) expect(statSync(join(dir, 'cache', 'vaultlab', 'validated', m)).size).toBe(0);

    process.env.XDG_CACHE_HOME = join(dir, 'fresh');
    const { validated } = await import('../../scripts/plan/validate.ts');
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n' }, data: { k: Buffer.from('short').toString('base64') } };
    expect(validated(secret as any)).toEqual(secret);
    expect(existsSync(join(dir, 'fresh', 'vaultlab', 'validated'))).toBe(false);
    validated({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'no-data', namespace: 'n' }, type: 'Opaque' } as any);
    expect(readdirSync(join(dir, 'fresh', 'vaultlab', 'validated'))).toHaveLength(1);
  });
});
