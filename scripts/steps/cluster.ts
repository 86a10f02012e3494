// The cluster: reuse the kind cluster of that name or create it from the rendered config; or
// use an existing kubeconfig context. Marks ownership so `destroy` never deletes a cluster
// vaultlab did not create.
import type { TaskStep } from '../lib/tasks.ts';
import type { DeployContext } from './context.ts';
import { kindConfig } from '../plan/render.ts';
import { kindClusters, kindCreate, kindKubeconfig, kindLoadImages } from '../adapters/kind.ts';
import { Kube } from '../adapters/kube.ts';
import { VaultlabError } from '../lib/errors.ts';
import { MANAGED_BY } from '../plan/manifests.ts';

export const OWNER_CONFIGMAP = 'vaultlab-owner';
export const CLUSTER_STATE = 'cluster.json';

export interface ClusterState {
  name: string;
  provider: 'kind' | 'existing';
  profile: string;
  createdByVaultlab: boolean;
}

/** Switching a deployed environment's profile needs a fresh Vault (issue: production switch). */
export function checkProfileSwitch(ctx: Pick<DeployContext, 'state' | 'plan'>): void {
  const recorded = ctx.state.readJson<ClusterState>(CLUSTER_STATE);
  if (recorded && recorded.profile !== ctx.plan.profile) {
    throw new VaultlabError(
      `cluster "${ctx.plan.cluster.name}" was deployed with the ${recorded.profile} profile; switching it to ${ctx.plan.profile} in place is refused`,
      {
        exitCode: 2,
        hint: `A ${ctx.plan.profile} Vault needs a fresh start (other storage, key shares, TLS). Run \`vaultlab reset --full --profile ${ctx.plan.profile}\` to rebuild, or use another cluster name (--name).`,
      },
    );
  }
}

export const cluster: TaskStep<DeployContext> = {
  name: 'cluster',
  title: 'Cluster',
  async run(ctx) {
    const c = ctx.plan.cluster;
    checkProfileSwitch(ctx);
    let detail: string;
    let created = false;
    if (c.provider === 'kind') {
      const exists = (await kindClusters()).includes(c.name);
      if (!exists) {
        await kindCreate(c.name, kindConfig(ctx.plan));
        created = true;
      }
      ctx.kubeconfigPath = await kindKubeconfig(c.name, ctx.state.ensure().file('kubeconfig'));
      ctx.kube = await Kube.connect({ kubeconfig: ctx.kubeconfigPath });
      detail = exists ? `reused kind cluster "${c.name}"` : `created kind cluster "${c.name}"`;
      if (ctx.options.preload) {
        const images = [`${ctx.plan.vault.image.repository}:${ctx.plan.vault.image.tag}`, 'busybox:1.37', `ghcr.io/external-secrets/external-secrets:v${ctx.plan.eso.chart.version}`];
        const loaded = await kindLoadImages(c.name, images);
        detail += `; preloaded ${loaded.length ? loaded.join(', ') : 'nothing (no image on the host yet)'}`;
      }
    } else {
      ctx.kube = await Kube.connect({ kubeconfig: c.kubeconfig, context: c.context });
      ctx.kubeconfigPath = c.kubeconfig ?? process.env.KUBECONFIG ?? `${process.env.HOME}/.kube/config`;
      detail = `using context "${ctx.kube.kc.getCurrentContext()}"`;
    }
    const previous = ctx.state.readJson<ClusterState>(CLUSTER_STATE);
    await ctx.kube.apply([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: OWNER_CONFIGMAP, namespace: 'kube-system', labels: { ...MANAGED_BY } },
        data: { cluster: c.name, provider: c.provider, createdByVaultlab: String(created || (previous?.createdByVaultlab ?? false)) },
      },
    ]);
    ctx.state.writeJson(CLUSTER_STATE, { name: c.name, provider: c.provider, profile: ctx.plan.profile, createdByVaultlab: created || (previous?.createdByVaultlab ?? false) } satisfies ClusterState);
    return detail;
  },
};
