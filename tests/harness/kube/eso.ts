// External Secrets Operator's CRDs, from the pinned ESO Go module downloaded at test time into
// the Go module cache (never committed), installed into the test API server.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Kube } from '../../../scripts/adapters/kube.ts';
import type { KubeObject } from '../../../scripts/plan/manifests.ts';
import { goModuleDir } from './build.ts';

export const ESO_MODULE = 'github.com/external-secrets/external-secrets';
export const ESO_VERSION = 'v1.3.2';

export const esoModuleDir = (version: string = ESO_VERSION): string => goModuleDir(ESO_MODULE, version);

/** The external-secrets.io CRDs (SecretStore, ExternalSecret, and their cluster and push kinds). */
export function esoCrds(version: string = ESO_VERSION): KubeObject[] {
  const dir = join(esoModuleDir(version), 'config', 'crds', 'bases');
  return readdirSync(dir)
    .filter((f) => f.startsWith('external-secrets.io_') && f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as KubeObject))
    .filter((o) => o?.kind === 'CustomResourceDefinition');
}

export async function installEsoCrds(kube: Kube, version: string = ESO_VERSION): Promise<string[]> {
  const crds = esoCrds(version);
  await kube.apply(crds);
  const names = crds.map((c) => c.metadata.name);
  await kube.waitForCrdsEstablished(names);
  return names;
}
