// What `deploy --preload` and `vaultlab images` load: the images the charts render, through a
// real `helm template` of the charts on disk. Remembered per machine (a warm deploy --preload
// asks on every run): a second ask runs no helm; an edit to the chart or other values run it again.
import { describe, it, expect } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { deployImages } from '../../scripts/lifecycle/images.ts';
import { binPath } from '../harness/kube/build.ts';
import { chartPath } from '../harness/kind/charts.ts';

const helm = binPath('helm');
const vaultChart = chartPath('vault', '0.34.1');
const esoChart = chartPath('external-secrets', '2.9.0');
const missing = [vaultChart, esoChart].find((c) => !existsSync(join(c, 'Chart.yaml')));
const reason = !existsSync(helm) ? `helm is not built (${helm}; node tests/harness/kube/build.ts helm)` : missing ? `a chart is not in the cache (${missing}; node tests/harness/kind/charts.ts --from <mirror>)` : undefined;
if (reason) console.log(`skipped: chart images through helm template: ${reason}`);

describe.skipIf(!!reason)('chart images (helm template), remembered per machine', () => {
  it('a second ask runs no helm; an edited chart, or other values, run it again', async () => {
    const chart = join(mkdtempSync(join(tmpdir(), 'vaultlab-chart-')), 'vault');
    cpSync(vaultChart, chart, { recursive: true });
    const cache = mkdtempSync(join(tmpdir(), 'vaultlab-xdg-'));
    const text = `[charts.vault]\npath = "${chart}"\n[charts.eso]\npath = "${esoChart}"\n[[secrets]]\npath = "a/b"\nkey = "c"\n`;
    const plan = buildPlan(loadConfigText(text, 'config.toml', { env: {} }));
    // The real helm behind a wrapper that counts its runs.
    const bin = mkdtempSync(join(tmpdir(), 'vaultlab-helm-bin-'));
    const log = join(bin, 'runs');
    writeFileSync(log, '');
    writeFileSync(join(bin, 'helm'), `#!/bin/sh\necho "$1" >> ${log}\nexec ${helm} "$@"\n`, { mode: 0o755 });
    const runs = () => readFileSync(log, 'utf8').split('\n').filter((l) => l === 'template').length;
    const saved = { PATH: process.env.PATH, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };
    process.env.XDG_CACHE_HOME = cache;
    process.env.PATH = `${bin}:${saved.PATH}`;
    try {
      const first = await deployImages(plan);
      const vault = first.find((i) => i.usedBy.some((u) => u.startsWith('vault StatefulSet/')));
      expect(vault?.image).toBe(`${plan.vault.image.repository}:${plan.vault.image.tag}`);
      expect(first.find((i) => i.usedBy.some((u) => u.startsWith('eso Deployment/')))).toBeDefined();
      expect(runs()).toBe(2); // Vault's chart and ESO's
      // The same question again: answered from the cache, identically, no helm run.
      expect(await deployImages(plan)).toEqual(first);
      expect(runs()).toBe(2);
      // An edit to the chart on disk: a miss for that chart only.
      const values = join(chart, 'values.yaml');
      writeFileSync(values, `${readFileSync(values, 'utf8')}\n# edited\n`);
      expect(await deployImages(plan)).toEqual(first);
      expect(runs()).toBe(3);
      // Other values (another image tag): a miss, and the new image.
      const other = buildPlan(loadConfigText(`${text}[vault]\nimage_tag = "9.9.9"\n`, 'config.toml', { env: {} }));
      expect((await deployImages(other)).find((i) => i.usedBy.some((u) => u.startsWith('vault StatefulSet/')))?.image).toBe(`${plan.vault.image.repository}:9.9.9`);
      expect(runs()).toBe(4);
      // Turned off: helm every time.
      process.env.VAULTLAB_IMAGE_CACHE = '0';
      await deployImages(plan);
      expect(runs()).toBe(6);
    } finally {
      delete process.env.VAULTLAB_IMAGE_CACHE;
      process.env.PATH = saved.PATH;
      if (saved.XDG_CACHE_HOME === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved.XDG_CACHE_HOME;
    }
  }, 120_000);
});
