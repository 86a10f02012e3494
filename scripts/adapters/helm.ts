// helm: repositories (added once, refreshed only when an install needs them), `upgrade
// --install` with a pinned --version and values from a 0600 temp file (never --set, so no value
// reaches argv), status, and recovery from a release left pending by an interrupted run.
import { gunzipSync } from 'node:zlib';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import type { HelmChart } from '../plan/types.ts';
import { exec } from './exec.ts';
import { VaultlabError } from '../lib/errors.ts';
import type { Kube } from './kube.ts';

/** Which cluster helm talks to: a kubeconfig file and, optionally, one of its contexts. */
export interface HelmTarget {
  kubeconfig: string;
  context?: string | undefined;
}

const targetArgs = (t: HelmTarget) => ['--kubeconfig', t.kubeconfig, ...(t.context ? ['--kube-context', t.context] : [])];

export async function helmRepoList(): Promise<{ name: string; url: string }[]> {
  const r = await exec('helm', ['repo', 'list', '-o', 'json'], { allowFail: true, timeoutMs: 30_000 });
  if (r.code !== 0) return []; // "no repositories to show"
  return (JSON.parse(r.stdout || '[]') as { name: string; url: string }[]) ?? [];
}

/**
 * The chart's repository, idempotently: added when missing (or pointing elsewhere), else its
 * index refreshed, so a pinned version published after the last `helm repo update` is found.
 */
export async function helmRepoEnsure(chart: HelmChart): Promise<'added' | 'updated'> {
  const same = (await helmRepoList()).find((r) => r.name === chart.repoName);
  if (same && same.url.replace(/\/+$/, '') === chart.repoUrl.replace(/\/+$/, '')) {
    await exec('helm', ['repo', 'update', chart.repoName], { timeoutMs: 120_000 });
    return 'updated';
  }
  await exec('helm', ['repo', 'add', chart.repoName, chart.repoUrl, '--force-update'], { timeoutMs: 120_000 });
  return 'added';
}

export interface ReleaseStatus {
  status: string;
  /** "<chart>-<version>" */
  chart: string;
  revision: number;
}

/**
 * One release from `helm list -o json` ([{name, namespace, revision: "1", status, chart:
 * "external-secrets-1.3.2", ...}]). `helm status -o json` is no use here: it carries no chart
 * name or version.
 */
export function parseList(json: string, name: string): ReleaseStatus | undefined {
  const rows = (JSON.parse(json || '[]') as { name?: string; status?: string; chart?: string; revision?: string | number }[] | null) ?? [];
  const row = rows.find((r) => r.name === name);
  return row ? { status: row.status ?? 'unknown', chart: row.chart ?? 'unknown', revision: Number(row.revision ?? 0) } : undefined;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const ALL_STATES = ['--deployed', '--failed', '--pending', '--superseded', '--uninstalling', '--uninstalled'];

export async function helmStatus(name: string, namespace: string, target: HelmTarget | string): Promise<ReleaseStatus | undefined> {
  const t = typeof target === 'string' ? { kubeconfig: target } : target;
  // Every state, pending and failed included (an interrupted run leaves them). Helm 3 needs
  // --all for that, Helm 4 shows every state by default and has no --all; the state filters,
  // all of them together, mean the same in both.
  const r = await exec('helm', ['list', '-n', namespace, ...ALL_STATES, '--filter', `^${escapeRegex(name)}$`, '-o', 'json', ...targetArgs(t)], { allowFail: true, timeoutMs: 60_000 });
  if (r.code !== 0) {
    // Cluster unreachable and the like must not look like "not installed".
    throw new VaultlabError(`\`helm list -n ${namespace}\` failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`, { hint: 'Is the cluster reachable? `vaultlab status` shows it.' });
  }
  return parseList(r.stdout, name);
}

export async function helmValues(name: string, namespace: string, target: HelmTarget | string): Promise<Record<string, unknown> | undefined> {
  const t = typeof target === 'string' ? { kubeconfig: target } : target;
  const r = await exec('helm', ['get', 'values', name, '-n', namespace, ...targetArgs(t), '-o', 'json'], { allowFail: true, timeoutMs: 60_000 });
  return r.code === 0 ? ((JSON.parse(r.stdout) as Record<string, unknown> | null) ?? {}) : undefined;
}

export interface HelmRelease extends HelmTarget {
  name: string;
  namespace: string;
  chart: HelmChart;
  values: Record<string, unknown>;
  /** `--wait` for the release's workloads (not for Vault: it is not Ready while sealed). */
  wait?: boolean;
  timeoutSeconds?: number;
  /** Stops helm (e.g. a pod of the release is stuck: see guardPods). Default: the step's signal. */
  signal?: AbortSignal;
  /** The cluster's API: a re-run reads the release record itself instead of asking two helm processes. */
  kube?: Kube | undefined;
  /** Called once it is known that helm must run (the release is not unchanged), before it does. */
  onRun?: () => void;
}

/** The latest revision of a release as Helm's storage (the default `secret` driver) keeps it. */
export interface StoredRelease {
  revision: number;
  status: string;
  /** "<chart>-<version>", as `helm list` prints it. */
  chart: string;
  /** The values given to helm (what `helm get values` prints). */
  values: Record<string, unknown>;
}

/**
 * Helm 3 and 4 keep each revision in a Secret `sh.helm.release.v1.<name>.v<revision>` labelled
 * owner=helm, name, status, version; its `release` key is the release as JSON, gzipped, base64
 * (inside the Secret's own base64). One list answers what `helm list` + `helm get values` would,
 * without two processes that each load a kubeconfig and run discovery. Undefined when the
 * storage is another driver (HELM_DRIVER), the release is absent, or a record cannot be read:
 * callers then ask helm.
 */
export async function storedRelease(kube: Kube, name: string, namespace: string, env: NodeJS.ProcessEnv = process.env): Promise<StoredRelease | undefined> {
  if (env.HELM_DRIVER && !['secret', 'secrets'].includes(env.HELM_DRIVER)) return undefined;
  const secrets = await kube.list<{ metadata: { labels?: Record<string, string> }; type?: string; data?: Record<string, string> }>('v1', 'Secret', namespace, `owner=helm,name=${name}`);
  const latest = secrets
    .filter((s) => s.type === 'helm.sh/release.v1' && s.data?.release)
    .sort((a, b) => Number(b.metadata.labels?.version ?? 0) - Number(a.metadata.labels?.version ?? 0))[0];
  if (!latest) return undefined;
  try {
    const packed = Buffer.from(Buffer.from(latest.data!.release!, 'base64').toString('latin1'), 'base64');
    const json = packed[0] === 0x1f && packed[1] === 0x8b ? gunzipSync(packed).toString('utf8') : packed.toString('utf8');
    const r = JSON.parse(json) as { name?: string; version?: number; info?: { status?: string }; chart?: { metadata?: { name?: string; version?: string } }; config?: Record<string, unknown> | null };
    if (r.name !== name || !r.chart?.metadata?.name) return undefined;
    return { revision: Number(r.version ?? 0), status: r.info?.status ?? 'unknown', chart: `${r.chart.metadata.name}-${r.chart.metadata.version}`, values: r.config ?? {} };
  } catch {
    return undefined;
  }
}

export interface HelmOutcome {
  action: 'installed' | 'upgraded' | 'unchanged';
  /** What was repaired first: a release an interrupted run left pending. */
  recovered?: string;
}

/** Same keys and values, key order ignored (how `helm get values -o json` compares with ours). */
export function sameValues(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/** The version in a chart directory's Chart.yaml, or a packaged chart's (helm show chart). */
async function localChartVersion(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  const text = statSync(path).isDirectory()
    ? readFileSync(join(path, 'Chart.yaml'), 'utf8')
    : (await exec('helm', ['show', 'chart', path], { timeoutMs: 60_000 })).stdout;
  const v = (parseYaml(text) as { version?: unknown } | null)?.version;
  return v === undefined ? undefined : String(v);
}

/**
 * The chart reference and version arguments helm takes for `chart`, whatever its source: the
 * repository (added or refreshed first), a local directory or archive (its version checked
 * against the pin: the release's chart version is how a re-run knows nothing changed), or OCI.
 */
export async function chartArgs(chart: HelmChart): Promise<string[]> {
  switch (chart.source.type) {
    case 'path': {
      const found = await localChartVersion(chart.source.path);
      const key = chart.chart === 'external-secrets' ? 'eso.chart_version' : chart.chart === 'vault-secrets-operator' ? 'vso.chart_version' : 'vault.chart_version';
      if (found === undefined) {
        throw new VaultlabError(`chart ${chart.chart}: ${chart.source.path} is not a chart directory or archive`, { hint: 'Point [charts] path at a folder with Chart.yaml, or a .tgz made by `helm package`.', exitCode: 2 });
      }
      if (found !== chart.version) {
        throw new VaultlabError(`chart ${chart.chart} at ${chart.source.path} is version ${found}, but ${chart.version} is pinned`, { hint: `Set ${key} = "${found}" in config.toml, or use the ${chart.version} chart.`, exitCode: 2 });
      }
      return [chart.source.path];
    }
    case 'oci':
      return [chart.source.ref, '--version', chart.version];
    case 'repo':
      await helmRepoEnsure(chart);
      return [`${chart.repoName}/${chart.chart}`, '--version', chart.version];
  }
}

/** Renders a chart with values (no cluster needed), as `helm template` prints it. */
export async function helmTemplate(rel: { name: string; namespace: string; chart: HelmChart; values: Record<string, unknown>; kubeVersion?: string }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-helm-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, stringify(rel.values), { mode: 0o600 });
    const r = await exec('helm', ['template', rel.name, ...(await chartArgs(rel.chart)), '-n', rel.namespace, '-f', file, '--kube-version', rel.kubeVersion ?? DEFAULT_KUBE_VERSION], { timeoutMs: 120_000 });
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What `helm template` assumes of the cluster (the OpenBao chart refuses helm's old default). */
export const DEFAULT_KUBE_VERSION = '1.34.0';

/**
 * Installs or upgrades a release. Nothing happens (not even a repository refresh) when the
 * deployed release already runs this chart version with exactly these values, so a re-deploy
 * restarts nothing and needs no network. With `kube`, that is read from the release record
 * through the API (no helm process); anything else goes through helm, which checks again.
 */
export async function helmUpgradeInstall(rel: HelmRelease): Promise<HelmOutcome> {
  if (rel.kube) {
    const stored = await storedRelease(rel.kube, rel.name, rel.namespace).catch(() => undefined);
    if (stored?.status === 'deployed' && stored.chart === `${rel.chart.chart}-${rel.chart.version}` && sameValues(stored.values, rel.values)) return { action: 'unchanged' };
  }
  let current = await helmStatus(rel.name, rel.namespace, rel);
  if (current?.status === 'deployed' && current.chart === `${rel.chart.chart}-${rel.chart.version}`) {
    const values = await helmValues(rel.name, rel.namespace, rel);
    if (values && sameValues(values, rel.values)) return { action: 'unchanged' };
  }
  rel.onRun?.();
  let recovered: string | undefined;
  if (current?.status.startsWith('pending-')) {
    // An interrupted helm leaves the release locked ("another operation is in progress").
    if (current.status === 'pending-install' || current.revision <= 1) {
      await helmUninstall(rel.name, rel.namespace, rel);
      recovered = `removed the ${current.status} release an interrupted run left`;
      current = undefined;
    } else {
      await exec('helm', ['rollback', rel.name, '-n', rel.namespace, ...targetArgs(rel)], { timeoutMs: 300_000 });
      recovered = `rolled back the ${current.status} revision ${current.revision} an interrupted run left`;
    }
  }
  const chart = await chartArgs(rel.chart);
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-helm-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, stringify(rel.values), { mode: 0o600 });
    const timeout = rel.timeoutSeconds ?? 600;
    await exec(
      'helm',
      [
        'upgrade', '--install', rel.name, ...chart,
        '-n', rel.namespace, '--create-namespace',
        '-f', file,
        ...targetArgs(rel),
        ...(rel.wait ? ['--wait', '--timeout', `${timeout}s`] : []),
      ],
      { timeoutMs: (timeout + 120) * 1000, ...(rel.signal ? { signal: rel.signal } : {}) },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { action: current ? 'upgraded' : 'installed', ...(recovered ? { recovered } : {}) };
}

export async function helmUninstall(name: string, namespace: string, target: HelmTarget | string): Promise<boolean> {
  const t = typeof target === 'string' ? { kubeconfig: target } : target;
  const r = await exec('helm', ['uninstall', name, '-n', namespace, ...targetArgs(t), '--wait'], { allowFail: true, timeoutMs: 300_000 });
  return r.code === 0;
}
