// Vault Secrets Operator's CRDs, from its pinned Go module's chart (downloaded at test time into
// the Go module cache, never committed), installed into the test API server.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Kube } from '../../../scripts/adapters/kube.ts';
import type { KubeObject } from '../../../scripts/plan/manifests.ts';
import { vsoModuleDir } from './build.ts';

export function vsoCrds(): KubeObject[] {
  const dir = join(vsoModuleDir(), 'chart', 'crds');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as KubeObject))
    .filter((o) => o?.kind === 'CustomResourceDefinition');
}

export async function installVsoCrds(kube: Kube): Promise<string[]> {
  const crds = vsoCrds();
  await kube.apply(crds);
  const names = crds.map((c) => c.metadata.name);
  await kube.waitForCrdsEstablished(names);
  return names;
}
