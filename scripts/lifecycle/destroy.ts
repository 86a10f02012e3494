// destroy: the kind cluster and vaultlab's state for it, never a cluster vaultlab did not
// create; with provider = "existing", only what vaultlab installed. A cluster that is already
// gone is success, so it is safe in an always-run CI cleanup step.
import { rmSync } from 'node:fs';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import type { Kube } from '../adapters/kube.ts';
import { VaultlabError } from '../lib/errors.ts';
import { CLUSTER_STATE, OWNER_CONFIGMAP, type ClusterState } from '../steps/cluster.ts';

export interface DestroyReport {
  action: 'deleted-cluster' | 'removed-installed' | 'nothing-to-do';
  removed: string[];
}

/** Did vaultlab create this cluster? The state dir or the in-cluster marker must say so. */
export async function ownedByVaultlab(plan: Plan, state: StateDir, kube: Kube | undefined): Promise<boolean> {
  const recorded = state.readJson<ClusterState>(CLUSTER_STATE);
  if (recorded?.name === plan.cluster.name && recorded.createdByVaultlab) return true;
  if (!kube) return false;
  const marker = await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP).catch(() => undefined);
  return marker?.data?.cluster === plan.cluster.name && marker?.data?.createdByVaultlab === 'true';
}

export async function destroyEnvironment(plan: Plan, state: StateDir, kube: Kube | undefined, kubeconfigPath?: string): Promise<DestroyReport> {
  const removed: string[] = [];
  if (plan.cluster.provider === 'kind') {
    const { kindClusters, kindDelete } = await import('../adapters/kind.ts');
    const exists = (await kindClusters()).includes(plan.cluster.name);
    if (!exists) {
      rmSync(state.path, { recursive: true, force: true });
      return { action: 'nothing-to-do', removed: [`state ${state.path}`] };
    }
    if (!(await ownedByVaultlab(plan, state, kube))) {
      throw new VaultlabError(`kind cluster "${plan.cluster.name}" was not created by vaultlab (no ownership marker); refusing to delete it`, {
        hint: `Delete it yourself if you mean to (kind delete cluster --name ${plan.cluster.name}), or pick another name with --name.`,
      });
    }
    await kindDelete(plan.cluster.name);
    removed.push(`kind cluster ${plan.cluster.name}`);
  } else {
    if (!kube) return { action: 'nothing-to-do', removed };
    if (kubeconfigPath) {
      const { helmUninstall } = await import('../adapters/helm.ts');
      for (const [name, ns] of [[plan.eso.release, plan.eso.namespace], ...(plan.vault.external ? [] : [[plan.vault.release, plan.vault.namespace]])] as [string, string][]) {
        if (await helmUninstall(name, ns, kubeconfigPath).catch(() => false)) removed.push(`helm release ${ns}/${name}`);
      }
    }
    const namespaces = await kube.list<any>('v1', 'Namespace', undefined, 'app.kubernetes.io/managed-by=vaultlab');
    for (const ns of namespaces) {
      if (ns.metadata.labels?.['vaultlab.dev/cluster'] !== plan.cluster.name) continue;
      await kube.delete('v1', 'Namespace', undefined, ns.metadata.name);
      removed.push(`namespace ${ns.metadata.name}`);
    }
    if (await kube.delete('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)) removed.push(`ConfigMap kube-system/${OWNER_CONFIGMAP}`);
  }
  rmSync(state.path, { recursive: true, force: true });
  removed.push(`state ${state.path}`);
  return { action: plan.cluster.provider === 'kind' ? 'deleted-cluster' : 'removed-installed', removed };
}
