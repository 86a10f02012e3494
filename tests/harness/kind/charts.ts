// The charts the kind suite deploys, from their official sources on disk (no chart repository is
// reachable here), into a cache outside the repo: ~/.cache/vaultlab/charts/<chart>-<version>/.
// vaultlab then installs them through [charts.*] path, as an air-gapped user would.
//
//   npm run e2e:charts -- --from DIR
//
// DIR holds git checkouts or bare snapshots of the three chart repositories, either as
// <owner>+<name>/repo (what the workplace's snapshot fetch brings) or <name>/ (a plain clone):
// hashicorp/vault-helm, openbao/openbao-helm, external-secrets/external-secrets. Each chart is
// taken at its release tag, and its version checked against vaultlab's pin.
//
// What a packaged chart has that its git source lacks, made here the way the project's release
// does it, nothing more:
//   vault-secrets-operator: not from a chart repository but from VSO's Go module (the module
//     cache, `go mod download` of the pinned release), whose chart/ folder is the chart with its
//     CRDs, copied as it is (prepareVsoChart; no --from needed).
//   external-secrets: the CRDs (config/crds/bases, generated into the packaged chart by its
//     release) go to the chart's crds/ folder; its optional bitwarden-sdk-server dependency
//     (an OCI chart, disabled by default) gets an empty stand-in, so helm's dependency check
//     passes offline.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { cacheDir, vsoModuleDir } from '../kube/build.ts';
import { BUNDLED_CONFIG, loadConfig } from '../../../scripts/config/load.ts';
import { buildPlan } from '../../../scripts/plan/build.ts';

export const chartsDir = (): string => join(cacheDir(), 'charts');

interface ChartSource {
  chart: string;
  version: string;
  repo: string;
  tag: string;
  subdir: string;
}

/** The three charts at the versions vaultlab pins (the plan's defaults). */
export function pinnedCharts(): ChartSource[] {
  const plan = (distribution: 'vault' | 'openbao') => {
    const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
    loaded.config.vault.distribution = distribution;
    return buildPlan(loaded);
  };
  const vault = plan('vault');
  const bao = plan('openbao');
  return [
    { chart: 'vault', version: vault.vault.chart.version, repo: 'hashicorp/vault-helm', tag: `v${vault.vault.chart.version}`, subdir: '' },
    { chart: 'openbao', version: bao.vault.chart.version, repo: 'openbao/openbao-helm', tag: `openbao-${bao.vault.chart.version}`, subdir: 'charts/openbao' },
    { chart: 'external-secrets', version: vault.eso.chart.version, repo: 'external-secrets/external-secrets', tag: `helm-chart-${vault.eso.chart.version}`, subdir: 'deploy/charts/external-secrets' },
  ];
}

export const chartPath = (chart: string, version: string): string => join(chartsDir(), `${chart}-${version}`);

/** The VSO chart version vaultlab pins (the plan's default). */
export function vsoChartVersion(): string {
  return buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} })).vso.chart.version;
}

/** Which pinned charts the cache lacks (empty: the kind suite can run). */
export function missingCharts(): string[] {
  const vso = vsoChartVersion();
  return [
    ...pinnedCharts()
      .filter((c) => !existsSync(join(chartPath(c.chart, c.version), 'Chart.yaml')))
      .map((c) => `${c.chart} ${c.version} (${c.repo} ${c.tag})`),
    ...(existsSync(join(chartPath('vault-secrets-operator', vso), 'Chart.yaml')) ? [] : [`vault-secrets-operator ${vso} (Go module github.com/hashicorp/vault-secrets-operator, chart/)`]),
  ];
}

/** VSO's chart, from its Go module's chart/ folder (CRDs included), into the cache. */
export function prepareVsoChart(): string {
  const version = vsoChartVersion();
  const src = join(vsoModuleDir(), 'chart');
  const meta = parseYaml(readFileSync(join(src, 'Chart.yaml'), 'utf8')) as { version: string };
  if (String(meta.version) !== version) throw new Error(`${src}: Chart.yaml says version ${meta.version}, vaultlab pins ${version}`);
  const target = chartPath('vault-secrets-operator', version);
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  cpSync(src, tmp, { recursive: true });
  // The module cache is read-only: the copy must not be.
  spawnSync('chmod', ['-R', 'u+w', tmp]);
  rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
  return `vault-secrets-operator ${version} -> ${target} (${readdirSync(join(target, 'crds')).length} CRDs)`;
}

function gitDir(from: string, repo: string): string {
  const [owner, name] = repo.split('/') as [string, string];
  for (const candidate of [join(from, `${owner}+${name}`, 'repo'), join(from, `${owner}+${name}`), join(from, name, '.git'), join(from, name)]) {
    if (spawnSync('git', ['--git-dir', candidate, 'rev-parse', '--git-dir'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  throw new Error(`no git repository for ${repo} under ${from} (looked for ${owner}+${name}/repo and ${name}/)`);
}

function git(dir: string, args: string[]): string {
  const r = spawnSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} (in ${dir}) failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Extracts `path` at `tag` into `dest` (git archive | tar). */
function extract(dir: string, tag: string, path: string, dest: string, strip: number): void {
  mkdirSync(dest, { recursive: true });
  const r = spawnSync('sh', ['-c', `git --git-dir "$1" archive "$2" ${path ? '"$3"' : ''} | tar -x -C "$4" --strip-components=${strip}`, 'sh', dir, tag, path, dest], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`extracting ${path || '/'} at ${tag} failed: ${r.stderr.trim()}`);
}

export function prepareCharts(from: string): string[] {
  const done: string[] = [];
  // Leftovers of a run that failed half-way.
  if (existsSync(chartsDir())) for (const d of readdirSync(chartsDir()).filter((n) => /\.tmp-\d+$/.test(n))) rmSync(join(chartsDir(), d), { recursive: true, force: true });
  for (const c of pinnedCharts()) {
    const dir = gitDir(from, c.repo);
    git(dir, ['rev-parse', '--verify', `${c.tag}^{commit}`]);
    const target = chartPath(c.chart, c.version);
    const tmp = `${target}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    extract(dir, c.tag, c.subdir, tmp, c.subdir ? c.subdir.split('/').length : 0);
    const meta = parseYaml(readFileSync(join(tmp, 'Chart.yaml'), 'utf8')) as { version: string; dependencies?: { name: string; version: string; condition?: string }[] };
    if (String(meta.version) !== c.version) throw new Error(`${c.repo} ${c.tag}: Chart.yaml says version ${meta.version}, vaultlab pins ${c.version}`);
    if (c.chart === 'external-secrets') {
      const crds = join(tmp, 'crds');
      extract(dir, c.tag, 'config/crds/bases', crds, 3);
      rmSync(join(crds, 'kustomization.yaml'), { force: true });
      for (const dep of meta.dependencies ?? []) {
        // Optional, disabled by default, and only on an OCI registry: an empty stand-in.
        const stub = join(tmp, 'charts', dep.name);
        mkdirSync(stub, { recursive: true });
        writeFileSync(join(stub, 'Chart.yaml'), `apiVersion: v2\nname: ${dep.name}\nversion: ${dep.version}\ndescription: empty stand-in (vaultlab kind suite, offline; ${dep.condition ?? 'optional'} is off)\n`);
      }
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
    done.push(`${c.chart} ${c.version} -> ${target}${c.chart === 'external-secrets' ? ` (${readdirSync(join(target, 'crds')).length} CRDs)` : ''}`);
  }
  done.push(prepareVsoChart());
  return done;
}

// npm run e2e:charts -- --from DIR
if (import.meta.main) {
  const i = process.argv.indexOf('--from');
  const from = i > 0 ? process.argv[i + 1] : process.env.VAULTLAB_CHART_SOURCES;
  if (!from) {
    // VSO's chart needs no source checkout: copied from the Go module when missing.
    if (missingCharts().some((m) => m.startsWith('vault-secrets-operator '))) console.log(`e2e charts: ${prepareVsoChart()}`);
    const missing = missingCharts();
    console.log(missing.length ? `missing: ${missing.join('; ')}\nusage: npm run e2e:charts -- --from DIR (git checkouts of the chart repositories)` : `all charts cached in ${chartsDir()}`);
    process.exit(missing.length ? 1 : 0);
  }
  for (const line of prepareCharts(from)) console.log(`e2e charts: ${line}`);
}
