// Every image a deploy runs, read from what it renders: the Vault/OpenBao and ESO charts through
// `helm template` with vaultlab's values (so a chart's own defaults, a mirror and the overrides
// all show as the pods will get them), the sample apps' manifests and the kind node image. Then,
// which of them the host's Docker holds (what `deploy --preload` can load into kind).
import { parseAllDocuments } from 'yaml';
import type { Plan } from '../plan/types.ts';
import { allManifests, type KubeObject } from '../plan/manifests.ts';
import { samplePostgresManifests } from '../plan/postgres-sample.ts';
import { esoValues, vaultValues } from '../plan/render.ts';
import { helmTemplate } from '../adapters/helm.ts';
import { dockerImageIds } from '../adapters/docker.ts';

export interface DeployImage {
  /** As the pod spec names it. */
  image: string;
  /** Who runs it: "kind node", "vault StatefulSet/vault", "eso Deployment/external-secrets-webhook", "sample Deployment/dashboard". */
  usedBy: string[];
}

interface PodSpecLike {
  containers?: { image?: string }[];
  initContainers?: { image?: string }[];
}

/** Pod specs of a workload object (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod). */
function podSpecs(o: any): PodSpecLike[] {
  if (!o || typeof o !== 'object') return [];
  if (o.kind === 'Pod') return [o.spec ?? {}];
  if (o.kind === 'CronJob') return [o.spec?.jobTemplate?.spec?.template?.spec ?? {}];
  return o.spec?.template?.spec ? [o.spec.template.spec] : [];
}

/** Images of rendered objects, each with the objects that run it. */
export function imagesOf(objects: unknown[], component: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const o of objects as KubeObject[]) {
    for (const spec of podSpecs(o)) {
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        if (!c.image) continue;
        const users = out.get(c.image) ?? [];
        const who = `${component} ${o.kind}/${o.metadata?.name ?? '?'}`;
        if (!users.includes(who)) users.push(who);
        out.set(c.image, users);
      }
    }
  }
  return out;
}

const docs = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);

/** The images the deploy runs, in a stable order (node, Vault, ESO, samples). Runs `helm template`. */
export async function deployImages(plan: Plan): Promise<DeployImage[]> {
  const all = new Map<string, string[]>();
  const add = (m: Map<string, string[]>) => {
    for (const [image, users] of m) all.set(image, [...(all.get(image) ?? []), ...users]);
  };
  if (plan.cluster.provider === 'kind') all.set(plan.cluster.nodeImage, ['kind node']);
  const [vault, eso] = await Promise.all([
    plan.vault.external ? Promise.resolve('') : helmTemplate({ name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values: vaultValues(plan) }),
    helmTemplate({ name: plan.eso.release, namespace: plan.eso.namespace, chart: plan.eso.chart, values: esoValues(plan) }),
  ]);
  add(imagesOf(docs(vault), plan.vault.distribution));
  add(imagesOf(docs(eso), 'eso'));
  add(imagesOf([...allManifests(plan), ...samplePostgresManifests(plan)], 'sample'));
  return [...all].map(([image, usedBy]) => ({ image, usedBy }));
}

export interface ImageStatus extends DeployImage {
  /** In the host's Docker image store (what --preload loads). */
  present: boolean;
}

export async function imageStatus(plan: Plan): Promise<ImageStatus[]> {
  const images = await deployImages(plan);
  const ids = await dockerImageIds(images.map((i) => i.image));
  return images.map((i) => ({ ...i, present: ids.has(i.image) }));
}
