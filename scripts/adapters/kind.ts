// kind: list, create from a rendered config, delete, kubeconfig, image preload.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exec } from './exec.ts';

export async function kindClusters(): Promise<string[]> {
  const r = await exec('kind', ['get', 'clusters']);
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^No kind clusters/.test(l));
}

export async function kindCreate(name: string, config: Record<string, unknown>, waitSeconds = 120): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kind-'));
  try {
    const file = join(dir, 'cluster.yaml');
    writeFileSync(file, stringify(config), { mode: 0o600 });
    await exec('kind', ['create', 'cluster', '--name', name, '--config', file, '--wait', `${waitSeconds}s`], { timeoutMs: (waitSeconds + 300) * 1000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function kindDelete(name: string): Promise<void> {
  await exec('kind', ['delete', 'cluster', '--name', name], { timeoutMs: 180_000 });
}

/** The cluster's kubeconfig, written 0600 to `path` (vaultlab never edits ~/.kube/config). */
export async function kindKubeconfig(name: string, path: string): Promise<string> {
  const r = await exec('kind', ['get', 'kubeconfig', '--name', name]);
  writeFileSync(path, r.stdout, { mode: 0o600 });
  return path;
}

/** Images already on the host, loaded into the nodes (skips Docker Hub pulls). */
export async function kindLoadImages(name: string, images: string[]): Promise<string[]> {
  const loaded: string[] = [];
  for (const image of images) {
    const present = await exec('docker', ['image', 'inspect', image], { allowFail: true });
    if (present.code !== 0) continue;
    await exec('kind', ['load', 'docker-image', image, '--name', name], { timeoutMs: 300_000 });
    loaded.push(image);
  }
  return loaded;
}
