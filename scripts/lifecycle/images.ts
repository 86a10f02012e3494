// Every image a deploy runs, read from what it renders: the Vault/OpenBao and ESO charts through
// `helm template` with vaultlab's values (so a chart's own defaults, a mirror and the overrides
// all show as the pods will get them), the sample apps' manifests and the kind node image. Then,
// which of them the host's Docker holds (what `deploy --preload` can load into kind).
import { parseAllDocuments } from 'yaml';
import type { Plan } from '../plan/types.ts';
import { allManifests, type KubeObject } from '../plan/manifests.ts';
import { samplePostgresManifests } from '../plan/postgres-sample.ts';
import { vaultChartValues } from '../plan/render.ts';
import { usedDeliveries } from '../deliveries/index.ts';
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

/** The agent image an Agent Injector adds to pods (vault-k8s's AGENT_INJECT_VAULT_IMAGE): no pod spec names it until a pod is mutated. */
export function injectedAgentImages(objects: unknown[], component: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const o of objects as KubeObject[]) {
    for (const spec of podSpecs(o)) {
      for (const c of (spec.containers ?? []) as { env?: { name: string; value?: string }[] }[]) {
        const image = c.env?.find((e) => e.name === 'AGENT_INJECT_VAULT_IMAGE')?.value;
        if (image) out.set(image, [`${component} agent (injected by ${o.kind}/${o.metadata?.name ?? '?'})`]);
      }
    }
  }
  return out;
}

const docs = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);

/** The images the deploy runs, in a stable order (node, Vault and its injector's agent, the deliveries' charts, samples). Runs `helm template`. */
export async function deployImages(plan: Plan): Promise<DeployImage[]> {
  const all = new Map<string, string[]>();
  const add = (m: Map<string, string[]>) => {
    for (const [image, users] of m) all.set(image, [...(all.get(image) ?? []), ...users]);
  };
  if (plan.cluster.provider === 'kind') all.set(plan.cluster.nodeImage, ['kind node']);
  const vaultChart = vaultChartValues(plan);
  const releases = usedDeliveries(plan).flatMap((d) => (d.release ? [d.release(plan)] : []));
  const [vault, ...charts] = await Promise.all([
    vaultChart ? helmTemplate({ name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values: vaultChart }) : Promise.resolve(''),
    ...releases.map((r) => helmTemplate({ name: r.release, namespace: r.namespace, chart: r.chart, values: r.values })),
  ]);
  add(imagesOf(docs(vault), plan.vault.distribution));
  add(injectedAgentImages(docs(vault), plan.vault.distribution));
  releases.forEach((r, i) => add(imagesOf(docs(charts[i]!), r.title.toLowerCase())));
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
