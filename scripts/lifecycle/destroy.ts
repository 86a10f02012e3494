// destroy: the kind cluster and vaultlab's state for it, never a cluster vaultlab did not
// create; with provider = "existing", only what vaultlab installed (its Helm releases, Vault's
// data volumes and init Secret, its labelled namespaces, an external Vault's TokenReview
// account, the ownership marker). A cluster that is already gone is success, so it is safe in
// an always-run CI cleanup step.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import type { Kube } from '../adapters/kube.ts';
import { exec } from '../adapters/exec.ts';
import { checkTool } from '../adapters/tools.ts';
import { VaultlabError } from '../lib/errors.ts';
import { INIT_FILE, SETUP_TOKEN_FILE } from '../vault/keys.ts';
import { CLUSTER_STATE, OWNER_CONFIGMAP, type ClusterState } from '../steps/cluster.ts';
import { connectKube, listKindClusters } from './connect.ts';
import { MANAGED_BY, TOKEN_REVIEWER } from '../plan/objects.ts';

export interface DestroyReport {
  action: 'deleted-cluster' | 'removed-installed' | 'nothing-to-do';
  removed: string[];
  /** What is left on purpose, or could not be removed, and why. */
  notes: string[];
  /** Where the time went (--json): e.g. the checks, then `kind delete cluster` itself. */
  steps?: { name: string; ms: number }[];
}

export interface Ownership {
  owned: boolean;
  /** Which marker says so, or why neither does. */
  reason: string;
}

/**
 * Did vaultlab create this cluster? The state dir's cluster.json or the in-cluster marker
 * (ConfigMap kube-system/vaultlab-owner, written by deploy's cluster step) must say so. A
 * cluster deploy found already there (and reused) is marked createdByVaultlab = false.
 */
export async function ownership(plan: Plan, state: StateDir, kubeOrConnect: Kube | undefined | (() => Promise<Kube | undefined>)): Promise<Ownership> {
  const recorded = state.readJson<ClusterState>(CLUSTER_STATE);
  if (recorded?.name === plan.cluster.name && recorded.createdByVaultlab) return { owned: true, reason: `${state.file(CLUSTER_STATE)} records that vaultlab created it` };
  // Only asked when the state dir does not settle it (connecting loads the Kubernetes client).
  const kube = typeof kubeOrConnect === 'function' ? await kubeOrConnect() : kubeOrConnect;
  const marker = kube ? await kube.get<any>('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP).catch(() => undefined) : undefined;
  if (marker?.data?.cluster === plan.cluster.name && marker?.data?.createdByVaultlab === 'true') return { owned: true, reason: `ConfigMap kube-system/${OWNER_CONFIGMAP} marks it as created by vaultlab` };
  const why = [
    recorded ? `${state.file(CLUSTER_STATE)} says vaultlab ${recorded.name === plan.cluster.name ? 'reused it (it existed before)' : `created "${recorded.name}", not this one`}` : `no ${state.file(CLUSTER_STATE)}`,
    marker ? `ConfigMap kube-system/${OWNER_CONFIGMAP} says ${marker.data?.createdByVaultlab === 'true' ? `it belongs to cluster "${marker.data?.cluster}"` : 'vaultlab reused it'}` : kube ? `no ConfigMap kube-system/${OWNER_CONFIGMAP}` : 'the cluster could not be asked for its marker',
  ];
  return { owned: false, reason: why.join('; ') };
}

export async function ownedByVaultlab(plan: Plan, state: StateDir, kube: Kube | undefined): Promise<boolean> {
  return (await ownership(plan, state, kube)).owned;
}

export interface DestroyOptions {
  /** provider = "existing": the kubeconfig helm uses. */
  kubeconfigPath?: string | undefined;
  /** provider = "existing": wait this long for the namespaces to be gone (reset --full redeploys at once). */
  waitMs?: number;
}

export async function destroyEnvironment(plan: Plan, state: StateDir, opts: DestroyOptions = {}): Promise<DestroyReport> {
  return plan.cluster.provider === 'kind' ? destroyKind(plan, state) : destroyInstalled(plan, state, opts);
}

async function destroyKind(plan: Plan, state: StateDir): Promise<DestroyReport> {
  const name = plan.cluster.name;
  const t0 = performance.now();
  const list = await listKindClusters();
  if (!list.ok) {
    if (list.reason === 'no-kind') {
      // Without kind no kind cluster can be running here; the state dir may still matter, so keep it.
      return { action: 'nothing-to-do', removed: [], notes: [`kind is not installed, so there is no kind cluster "${name}" to delete`, ...(existsSync(state.path) ? [`kept ${state.path} (remove it yourself if that cluster is gone for good)`] : [])] };
    }
    throw new VaultlabError(`cannot tell whether kind cluster "${name}" exists: ${list.problem}; nothing was deleted${existsSync(state.path) ? ` (${state.path} kept)` : ''}`, {
      hint: list.reason === 'no-docker' ? 'Start Docker (Docker Desktop, or `sudo systemctl start docker`), then re-run `vaultlab destroy`.' : `${list.fix} Then re-run \`vaultlab destroy\`.`,
    });
  }
  if (!list.clusters.includes(name)) {
    const notes = [`kind cluster "${name}" does not exist`];
    return { action: 'nothing-to-do', removed: removeState(plan, state, notes), notes };
  }
  const own = await ownership(plan, state, async () => (await connectKube(plan, state, { persist: false })).kube);
  if (!own.owned) {
    throw new VaultlabError(`kind cluster "${name}" was not created by vaultlab (${own.reason}); refusing to delete it`, {
      hint: `If it is yours to delete: kind delete cluster --name ${name}. To leave it alone, give vaultlab another name: --name NAME (or [cluster] name).`,
    });
  }
  const { kindDelete } = await import('../adapters/kind.ts');
  const t1 = performance.now();
  await kindDelete(name);
  const t2 = performance.now();
  const notes: string[] = [];
  const removed = [`kind cluster ${name} (${own.reason})`, ...removeState(plan, state, notes)];
  const steps = [
    { name: 'checks', ms: Math.round(t1 - t0) },
    { name: 'kind delete', ms: Math.round(t2 - t1) },
    { name: 'state', ms: Math.round(performance.now() - t2) },
  ];
  return { action: 'deleted-cluster', removed, notes, steps };
}

/**
 * The state dir goes with the cluster, except the keys of an external Vault: that Vault lives on
 * after the cluster, and its unseal keys and token exist nowhere else.
 */
function removeState(plan: Plan, state: StateDir, notes: string[]): string[] {
  if (!existsSync(state.path)) return [];
  const keep = plan.vault.external ? [INIT_FILE, SETUP_TOKEN_FILE].filter((f) => state.has(f)) : [];
  if (keep.length === 0) {
    rmSync(state.path, { recursive: true, force: true });
    return [`state ${state.path}`];
  }
  for (const entry of readdirSync(state.path)) if (!keep.includes(entry)) rmSync(state.file(entry), { recursive: true, force: true });
  notes.push(`kept ${keep.map((f) => state.file(f)).join(', ')}: the keys of the external Vault at ${plan.vault.hostAddress}, which outlives the cluster`);
  return [`state ${state.path} (except the external Vault's keys)`];
}

/** Namespace deletion finishes in the background (finalizers): wait until each is gone. */
async function waitGone(kube: Kube, namespaces: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = namespaces;
  while (left.length) {
    const still = await Promise.all(left.map(async (n) => ((await kube.get('v1', 'Namespace', undefined, n)) ? n : undefined)));
    left = still.filter((n): n is string => !!n);
    if (!left.length) return;
    if (Date.now() > deadline) {
      throw new VaultlabError(`namespace(s) ${left.join(', ')} still terminating after ${Math.round(timeoutMs / 1000)} s`, { hint: `\`kubectl get ns ${left[0]} -o yaml\` shows what holds it (finalizers); re-run when it is gone.` });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** `helm uninstall` in the configured kubeconfig *and context* (never the current one by accident). */
async function helmUninstallIn(name: string, namespace: string, kubeconfig: string | undefined, context: string | undefined): Promise<void> {
  await exec('helm', ['uninstall', name, '-n', namespace, '--wait', ...(kubeconfig ? ['--kubeconfig', kubeconfig] : []), ...(context ? ['--kube-context', context] : [])], { timeoutMs: 300_000 });
}

/** Helm keeps each release as Secrets labelled owner=helm,name=<release> in its namespace. */
async function helmReleaseExists(kube: Kube, name: string, namespace: string): Promise<boolean> {
  return (await kube.list('v1', 'Secret', namespace, `owner=helm,name=${name}`)).length > 0;
}

async function destroyInstalled(plan: Plan, state: StateDir, opts: DestroyOptions): Promise<DestroyReport> {
  const { kube, problem, fix } = await connectKube(plan, state);
  if (!kube) {
    throw new VaultlabError(`cannot reach the cluster to remove what vaultlab installed: ${problem}; nothing was deleted`, { hint: fix ?? 'Check the kubeconfig context, then re-run `vaultlab destroy`.' });
  }
  const removed: string[] = [];
  const notes: string[] = [];
  const releases: [string, string][] = [[plan.vso.release, plan.vso.namespace], [plan.eso.release, plan.eso.namespace], ...(plan.vault.external ? [] : [[plan.vault.release, plan.vault.namespace] as [string, string]])];
  const present: [string, string][] = [];
  for (const [name, ns] of releases) if (await helmReleaseExists(kube, name, ns)) present.push([name, ns]);
  if (present.length) {
    // Before anything is deleted: without helm the releases could not go, so touch nothing.
    const helm = await checkTool('helm');
    if (!helm.found) {
      throw new VaultlabError(`Helm release(s) ${present.map(([n, ns]) => `${ns}/${n}`).join(', ')} are installed, but helm is not available to uninstall them; nothing was deleted`, { hint: `${helm.fix} Then re-run \`vaultlab destroy\`.` });
    }
    for (const [name, ns] of present) {
      await helmUninstallIn(name, ns, opts.kubeconfigPath, plan.cluster.context);
      removed.push(`helm release ${ns}/${name}`);
    }
  }
  if (!plan.vault.external) {
    // Vault's data: the StatefulSet's volumes outlive `helm uninstall` (the StatefulSet controller
    // labels them with the release's selector). A reset must start from an empty Vault.
    for (const pvc of await kube.list<any>('v1', 'PersistentVolumeClaim', plan.vault.namespace, `app.kubernetes.io/instance=${plan.vault.release}`)) {
      if (await kube.delete('v1', 'PersistentVolumeClaim', plan.vault.namespace, pvc.metadata.name)) removed.push(`volume ${plan.vault.namespace}/${pvc.metadata.name}`);
    }
  }
  // What vaultlab applied outside its own namespaces: the demo's init Secret, TLS Secrets, the NetworkPolicy.
  for (const ns of [...new Set([plan.vault.namespace, plan.eso.namespace])]) {
    for (const [apiVersion, kind] of [['v1', 'Secret'], ['networking.k8s.io/v1', 'NetworkPolicy']] as const) {
      for (const o of await kube.list<any>(apiVersion, kind, ns, 'app.kubernetes.io/managed-by=vaultlab')) {
        if (await kube.delete(apiVersion, kind, ns, o.metadata.name)) removed.push(`${kind} ${ns}/${o.metadata.name}`);
      }
    }
  }
  const labelled = await kube.list<any>('v1', 'Namespace', undefined, `app.kubernetes.io/managed-by=vaultlab,vaultlab.dev/cluster=${plan.cluster.name}`);
  const namespaces = labelled.map((n) => n.metadata.name as string);
  const terminating = labelled.filter((n) => n.metadata.deletionTimestamp).map((n) => n.metadata.name as string);
  if (terminating.length) notes.push(`namespace(s) ${terminating.join(', ')} already being deleted`);
  for (const name of namespaces.filter((n) => !terminating.includes(n))) {
    if (await kube.delete('v1', 'Namespace', undefined, name)) removed.push(`namespace ${name}`);
  }
  // An external Vault's TokenReview account (ServiceAccount + ClusterRoleBinding), when it is vaultlab's.
  const { namespace: reviewerNs, serviceAccount: reviewer } = TOKEN_REVIEWER;
  for (const [apiVersion, kind, ns] of [['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined], ['v1', 'ServiceAccount', reviewerNs]] as const) {
    const o = await kube.get(apiVersion, kind, ns, reviewer);
    if (o?.metadata.labels?.['app.kubernetes.io/managed-by'] !== MANAGED_BY['app.kubernetes.io/managed-by']) continue;
    if (await kube.delete(apiVersion, kind, ns, reviewer)) removed.push(`${kind} ${ns ? `${ns}/` : ''}${reviewer}`);
  }
  if (await kube.delete('v1', 'ConfigMap', 'kube-system', OWNER_CONFIGMAP)) removed.push(`ConfigMap kube-system/${OWNER_CONFIGMAP}`);
  if (opts.waitMs) await waitGone(kube, namespaces, opts.waitMs);
  const kept = [plan.vault.external ? undefined : plan.vault.namespace, plan.eso.namespace].filter((x): x is string => !!x);
  if (present.length) notes.push(`namespace(s) ${kept.join(', ')} kept: not labelled as vaultlab's (empty once the releases are gone)`);
  removed.push(...removeState(plan, state, notes));
  if (removed.length === 0) notes.unshift(`nothing of vaultlab's "${plan.cluster.name}" left to remove in context "${kube.context}"`);
  return { action: removed.length > 0 ? 'removed-installed' : 'nothing-to-do', removed, notes };
}
