// Every image a deploy runs, read from what it renders: the Vault/OpenBao and ESO charts through
// `helm template` with vaultlab's values (so a chart's own defaults, a mirror and the overrides
// all show as the pods will get them), the sample apps' manifests and the kind node image. Then,
// which of them the host's Docker holds (what `deploy --preload` can load into kind).
import { parseAllDocuments } from 'yaml';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findBinary, versionCache } from '../adapters/tools.ts';
import { vaultlabCacheDir } from '../lib/cache-dir.ts';
import type { HelmChart, Plan } from '../plan/types.ts';
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

/**
 * The images one chart renders with these values (`helm template`), remembered per machine: a
 * warm `deploy --preload` asks again on every run, and the answer is a pure function of the
 * chart's contents, the values, the release and helm itself. The key holds a digest of all of
 * them (for a chart on disk, every file's path, size and mtime; a repository or OCI chart is
 * named by its immutable version), so any change is a miss. Only image names are kept (no
 * values), 0600 under ~/.cache/vaultlab/chart-images (XDG_CACHE_HOME); VAULTLAB_IMAGE_CACHE=0
 * turns it off; an unreadable entry is a miss.
 */
async function chartImages(rel: { name: string; namespace: string; chart: HelmChart; values: Record<string, unknown> }, component: string, withAgent: boolean): Promise<[string, string[]][]> {
  const render = async () => {
    const objects = docs(await helmTemplate(rel));
    return [...imagesOf(objects, component), ...(withAgent ? injectedAgentImages(objects, component) : new Map<string, string[]>())];
  };
  if (process.env.VAULTLAB_IMAGE_CACHE === '0') return render();
  const file = join(vaultlabCacheDir(), 'chart-images', `${createHash('sha256').update(JSON.stringify({ v: 1, rel, component, withAgent, chart: chartIdentity(rel.chart), helm: helmIdentity() })).digest('hex')}.json`);
  try {
    const hit = JSON.parse(readFileSync(file, 'utf8')) as [string, string[]][];
    if (Array.isArray(hit)) return hit;
  } catch {
    /* a miss */
  }
  const images = await render();
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(images), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    /* unwritable: the next run renders again */
  }
  return images;
}

/** A chart on disk by every file's path, size and mtime; a repository or OCI chart by its version (in `rel`). */
function chartIdentity(chart: HelmChart): unknown {
  if (chart.source.type !== 'path') return null;
  const out: [string, number, number][] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const f of readdirSync(p).sort()) walk(join(p, f));
    else out.push([p, st.size, st.mtimeMs]);
  };
  try {
    walk(chart.source.path);
  } catch {
    return null;
  }
  return out;
}

/** The helm binary on PATH, as the tool-version cache knows a binary (path, device, inode, size, mtime). */
const helmIdentity = (): unknown => {
  const path = findBinary('helm');
  return path ? [path, versionCache.identity(path) ?? null] : null;
};

/** The images the deploy runs, in a stable order (node, Vault and its injector's agent, the deliveries' charts, samples). Runs `helm template`. */
export async function deployImages(plan: Plan): Promise<DeployImage[]> {
  const all = new Map<string, string[]>();
  const add = (m: Iterable<[string, string[]]>) => {
    for (const [image, users] of m) all.set(image, [...(all.get(image) ?? []), ...users]);
  };
  if (plan.cluster.provider === 'kind') all.set(plan.cluster.nodeImage, ['kind node']);
  const vaultChart = vaultChartValues(plan);
  const releases = usedDeliveries(plan).flatMap((d) => (d.release ? [d.release(plan)] : []));
  const [vault, ...charts] = await Promise.all([
    vaultChart ? chartImages({ name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values: vaultChart }, plan.vault.distribution, true) : Promise.resolve([]),
    ...releases.map((r) => chartImages({ name: r.release, namespace: r.namespace, chart: r.chart, values: r.values }, r.title.toLowerCase(), false)),
  ]);
  add(vault);
  for (const c of charts) add(c);
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
