// kind: list, create from a rendered config, delete, kubeconfig, image preload. Every command
// line is built here; steps call these functions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exec } from './exec.ts';
import { dockerImagePresent } from './docker.ts';

/** `kind get clusters` output -> names ("No kind clusters found." goes to stderr, but be safe). */
export function parseKindClusters(stdout: string): string[] {
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^No kind clusters/.test(l));
}

export async function kindClusters(): Promise<string[]> {
  const r = await exec('kind', ['get', 'clusters'], { timeoutMs: 60_000 });
  return parseKindClusters(r.stdout);
}

/** Creates the cluster from `config` (the rendered kind Cluster object), written to a 0600 temp file. */
export async function kindCreate(name: string, config: Record<string, unknown>, waitSeconds = 180): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kind-'));
  try {
    const file = join(dir, 'cluster.yaml');
    writeFileSync(file, stringify(config), { mode: 0o600 });
    await exec('kind', ['create', 'cluster', '--name', name, '--config', file, '--wait', `${waitSeconds}s`], { timeoutMs: (waitSeconds + 600) * 1000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function kindDelete(name: string): Promise<void> {
  await exec('kind', ['delete', 'cluster', '--name', name], { timeoutMs: 180_000 });
}

/** The cluster's kubeconfig, written 0600 to `path` (vaultlab never edits ~/.kube/config). */
export async function kindKubeconfig(name: string, path: string): Promise<string> {
  const r = await exec('kind', ['get', 'kubeconfig', '--name', name], { timeoutMs: 60_000 });
  writeFileSync(path, r.stdout, { mode: 0o600 });
  return path;
}

export interface PreloadReport {
  loaded: string[];
  /** Not on the host: the nodes pull them as usual. */
  absent: string[];
}

/** Images already on the host, loaded into the nodes (skips registry pulls). */
export async function kindLoadImages(name: string, images: string[]): Promise<PreloadReport> {
  const report: PreloadReport = { loaded: [], absent: [] };
  for (const image of [...new Set(images)]) {
    if (!(await dockerImagePresent(image))) {
      report.absent.push(image);
      continue;
    }
    await exec('kind', ['load', 'docker-image', image, '--name', name], { timeoutMs: 600_000 });
    report.loaded.push(image);
  }
  return report;
}
