// helm: repositories and `upgrade --install` with values from a 0600 temp file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { HelmChart } from '../plan/types.ts';
import { exec } from './exec.ts';

export async function helmRepo(chart: HelmChart): Promise<void> {
  await exec('helm', ['repo', 'add', chart.repoName, chart.repoUrl, '--force-update'], { timeoutMs: 120_000 });
}

export interface HelmRelease {
  name: string;
  namespace: string;
  chart: HelmChart;
  values: Record<string, unknown>;
  kubeconfig: string;
  wait?: boolean;
  timeoutSeconds?: number;
}

export async function helmStatus(name: string, namespace: string, kubeconfig: string): Promise<{ status: string; chart: string; revision: number } | undefined> {
  const r = await exec('helm', ['status', name, '-n', namespace, '--kubeconfig', kubeconfig, '-o', 'json'], { allowFail: true });
  if (r.code !== 0) return undefined;
  const j = JSON.parse(r.stdout);
  return { status: j.info?.status, chart: `${j.chart?.metadata?.name}-${j.chart?.metadata?.version}`, revision: j.version };
}

export async function helmValues(name: string, namespace: string, kubeconfig: string): Promise<Record<string, unknown> | undefined> {
  const r = await exec('helm', ['get', 'values', name, '-n', namespace, '--kubeconfig', kubeconfig, '-o', 'json'], { allowFail: true });
  return r.code === 0 ? JSON.parse(r.stdout) ?? {} : undefined;
}

/**
 * Installs or upgrades a release. Skipped when the deployed release already runs this chart
 * version with exactly these values: a re-deploy then restarts nothing.
 */
export async function helmUpgradeInstall(rel: HelmRelease): Promise<'installed' | 'upgraded' | 'unchanged'> {
  const current = await helmStatus(rel.name, rel.namespace, rel.kubeconfig);
  if (current?.status === 'deployed' && current.chart === `${rel.chart.chart}-${rel.chart.version}`) {
    const values = await helmValues(rel.name, rel.namespace, rel.kubeconfig);
    if (values && JSON.stringify(sortKeys(values)) === JSON.stringify(sortKeys(rel.values))) return 'unchanged';
  }
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-helm-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, stringify(rel.values), { mode: 0o600 });
    const timeout = rel.timeoutSeconds ?? 600;
    await exec(
      'helm',
      ['upgrade', '--install', rel.name, `${rel.chart.repoName}/${rel.chart.chart}`, '--version', rel.chart.version, '-n', rel.namespace, '--create-namespace', '-f', file, '--kubeconfig', rel.kubeconfig, ...(rel.wait ? ['--wait', '--timeout', `${timeout}s`] : [])],
      { timeoutMs: (timeout + 120) * 1000 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return current ? 'upgraded' : 'installed';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

export async function helmUninstall(name: string, namespace: string, kubeconfig: string): Promise<boolean> {
  const r = await exec('helm', ['uninstall', name, '-n', namespace, '--kubeconfig', kubeconfig, '--wait'], { allowFail: true, timeoutMs: 300_000 });
  return r.code === 0;
}
