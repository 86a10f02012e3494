// The cluster: reuse the kind cluster of that name or create it from the rendered config; or
// use an existing kubeconfig context. Marks ownership (ConfigMap kube-system/vaultlab-owner and
// the state dir) so `destroy` never deletes a cluster vaultlab did not create.
import type { TaskStep } from '../lib/tasks.ts';
import { cachedKindClusters, forgetKindClusters, type DeployContext, type ImageFacts } from './context.ts';
import { kindConfig } from '../plan/render.ts';
import { containerdRef, kindClusters, kindCreate, kindDelete, kindKubeconfig, kindLoadImages, kindLoadImagesDuringCreate, kindNodeContainers, nodeImageIds, presenceFromRecord, recordOf, type ImagePresence, type PreloadRecord, type PreloadReport } from '../adapters/kind.ts';
import { dockerImageIds } from '../adapters/docker.ts';
import { Kube } from '../adapters/kube.ts';
import { VaultlabError } from '../lib/errors.ts';
import { MANAGED_BY, type KubeObject } from '../plan/objects.ts';
import { assertProfileSwitchAllowed } from '../production/switch.ts';
import { storedKindKubeconfig } from '../lifecycle/connect.ts';

export const OWNER_CONFIGMAP = 'vaultlab-owner';
export const CLUSTER_STATE = 'cluster.json';

export interface ClusterState {
  name: string;
  provider: 'kind' | 'existing';
  profile: string;
  createdByVaultlab: boolean;
  /** false while `kind create` runs: a cluster found in that state was cut short (Ctrl-C). */
  complete?: boolean;
}

/**
 * Switching a deployed environment's profile needs a fresh Vault: refused when the state dir
 * records another profile, in cluster.json or in vault-init.json (see production/switch.ts).
 */
export function checkProfileSwitch(ctx: Pick<DeployContext, 'state' | 'plan'>): void {
  const { plan } = ctx;
  assertProfileSwitchAllowed(ctx.state, plan.profile, { cluster: plan.cluster.name, ...(plan.vault.external ? { externalVault: plan.vault.hostAddress } : {}) });
}

/** What `kind create` must do given the clusters that exist and what the state dir recorded. */
export function clusterAction(name: string, existing: string[], recorded: ClusterState | undefined): 'create' | 'reuse' | 'recreate' {
  if (!existing.includes(name)) return 'create';
  if (recorded?.name === name && recorded.createdByVaultlab && recorded.complete === false) return 'recreate';
  return 'reuse';
}

/** What --preload loads: every image the deploy runs, except the node image itself (once per run). */
export function preloadImages(ctx: Pick<DeployContext, 'plan' | 'cache'>): Promise<string[]> {
  ctx.cache.preloadImages ??= import('../lifecycle/images.ts').then(async ({ deployImages }) => (await deployImages(ctx.plan)).filter((i) => !i.usedBy.includes('kind node')).map((i) => i.image));
  return ctx.cache.preloadImages;
}

/** The host's image IDs and the node containers of the cluster (two `docker` calls at once), once per run. */
function imageFacts(ctx: Pick<DeployContext, 'plan' | 'cache'>): Promise<ImageFacts> {
  ctx.cache.imageFacts ??= preloadImages(ctx).then(async (images) => {
    const [hostIds, containers] = await Promise.all([dockerImageIds(images), kindNodeContainers(ctx.plan.cluster.name)]);
    return { images, hostIds, containers };
  });
  return ctx.cache.imageFacts;
}

/**
 * Started by preflight while its own child processes run: the images to preload (rendered then),
 * and, when the kind cluster exists already, the host's image IDs and its node containers. The
 * cluster step uses them only for a cluster it reuses.
 */
export function prefetchPreload(ctx: Pick<DeployContext, 'plan' | 'cache' | 'options'>, clusterExists: boolean): void {
  if (!ctx.options.preload || ctx.plan.cluster.provider !== 'kind') return;
  preloadImages(ctx).catch(() => {});
  if (clusterExists) imageFacts(ctx).catch(() => {});
}

const PRELOAD_RECORD = 'preload.json';

/** Every image the host holds is reported on its node by the kubelet (Node status.images), under the name containerd gives it. */
async function kubeletsReport(kube: Kube, presence: ImagePresence): Promise<boolean> {
  const nodes = await kube.list<any>('v1', 'Node').catch((): any[] => []);
  return presence.nodes.every((name) => {
    const names = new Set<string>((nodes.find((n) => n.metadata?.name === name)?.status?.images ?? []).flatMap((i: any) => i.names ?? []));
    return [...presence.hostIds.keys()].every((image) => names.has(containerdRef(image)));
  });
}

/**
 * --preload on a reused cluster: what the nodes hold, from the record of the last run when the
 * node containers, the host's image IDs and the kubelets' reports agree with it; else asked
 * with crictl in each node (and recorded). Then only what is missing is loaded.
 */
async function preloadReused(ctx: DeployContext, kube: Kube): Promise<PreloadReport> {
  const name = ctx.plan.cluster.name;
  const facts = await imageFacts(ctx);
  const recorded = presenceFromRecord(ctx.state.readJson<PreloadRecord>(PRELOAD_RECORD), facts.hostIds, facts.containers, facts.images);
  const presence = recorded && (await kubeletsReport(kube, recorded)) ? recorded : { hostIds: facts.hostIds, nodes: [...facts.containers.keys()], held: await Promise.all([...facts.containers.keys()].map(nodeImageIds)) };
  const report = await kindLoadImages(name, facts.images, Promise.resolve(presence));
  if (presence !== recorded || report.loaded.length) ctx.state.writeJson(PRELOAD_RECORD, recordOf(presence, facts.containers, report.loaded));
  return report;
}

export const cluster: TaskStep<DeployContext> = {
  name: 'cluster',
  title: 'Cluster',
  async run(ctx, report) {
    const c = ctx.plan.cluster;
    checkProfileSwitch(ctx);
    const previous = ctx.state.readJson<ClusterState>(CLUSTER_STATE);
    const record = (s: Partial<ClusterState>) =>
      ctx.state.writeJson(CLUSTER_STATE, { name: c.name, provider: c.provider, profile: ctx.plan.profile, createdByVaultlab: false, ...previous, ...s } satisfies ClusterState);
    let detail: string;
    let created = false;
    let stored: Kube | undefined;
    if (c.provider === 'kind') {
      const action = clusterAction(c.name, await cachedKindClusters(ctx, kindClusters), previous);
      if (action === 'recreate') {
        report(`deleting kind cluster "${c.name}": its creation was interrupted`);
        await kindDelete(c.name);
      }
      let preloaded: Promise<PreloadReport> | undefined;
      if (action !== 'reuse') {
        report(`creating kind cluster "${c.name}" (${c.workers + 1} node(s), ${c.nodeImage})${ctx.options.preload ? '; loading images into the nodes meanwhile' : ''}`);
        // Recorded first: a cluster left by Ctrl-C during create is ours, and incomplete.
        record({ createdByVaultlab: true, complete: false });
        forgetKindClusters(ctx);
        const creating = kindCreate(c.name, kindConfig(ctx.plan));
        // --preload overlaps the creation (kubeadm's part); a creation failure is the one reported.
        if (ctx.options.preload) preloaded = preloadImages(ctx).then((images) => kindLoadImagesDuringCreate(c.name, c.workers + 1, images, creating));
        preloaded?.catch(() => {});
        await creating;
        created = true;
      }
      // A reused cluster that answers through the kubeconfig of the last run needs no `kind get kubeconfig`.
      stored = action === 'reuse' ? await storedKindKubeconfig(ctx.state) : undefined;
      ctx.kubeconfigPath = stored ? ctx.state.file('kubeconfig') : await kindKubeconfig(c.name, ctx.state.ensure().file('kubeconfig'));
      ctx.kube = stored ?? (await Kube.connect({ kubeconfig: ctx.kubeconfigPath }));
      detail = action === 'reuse' ? `reused kind cluster "${c.name}"` : `${action}d kind cluster "${c.name}"`;
      if (ctx.options.preload) {
        report('loading images from the host into the nodes');
        const p = await (preloaded ?? (action === 'reuse' ? preloadReused(ctx, ctx.kube) : preloadImages(ctx).then((images) => kindLoadImages(c.name, images))));
        ctx.summary.preload = p;
        detail += `; preloaded ${p.loaded.length} image(s)${p.present.length ? `, ${p.present.length} already in the nodes` : ''}${p.absent.length ? `, ${p.absent.length} not on the host` : ''}`;
      }
    } else {
      ctx.kube = await Kube.connect({ kubeconfig: c.kubeconfig, context: c.context });
      ctx.kubeconfigPath = c.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0] ?? `${process.env.HOME}/.kube/config`;
      ctx.kubeContext = ctx.kube.context;
      detail = `using context "${ctx.kubeContext}"`;
    }
    // A reused cluster may have just restarted (Docker, laptop): its API server denies every
    // request until RBAC has loaded. One request when it is ready.
    // (A stored kubeconfig was accepted only because /readyz just said 200: not asked twice.)
    if (!stored) await ctx.kube.waitReady({ onWait: () => report('waiting for the API server to be ready (the cluster just started)') });
    // Keep an ownership claim made earlier (state dir lost, or another working directory).
    const marker = await ctx.kube.get<KubeObject & { data?: Record<string, string> }>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP);
    if (marker?.data?.cluster && marker.data.cluster !== c.name) {
      throw new VaultlabError(`this cluster already belongs to vaultlab environment "${marker.data.cluster}", not "${c.name}"`, {
        hint: `Deploy with --name ${marker.data.cluster}, or point [cluster] at another cluster.`,
      });
    }
    const owned = created || (previous?.name === c.name && previous.createdByVaultlab) || marker?.data?.createdByVaultlab === 'true';
    await ctx.kube.apply([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: OWNER_CONFIGMAP, namespace: 'kube-system', labels: { ...MANAGED_BY } },
        data: { cluster: c.name, provider: c.provider, createdByVaultlab: String(owned) },
      },
    ]);
    record({ createdByVaultlab: owned, complete: true });
    return detail;
  },
};
