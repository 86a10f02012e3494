// Vault's StatefulSet uses the chart's "OnDelete" update strategy: a changed configuration, image
// or certificate reaches a Vault pod only when that pod is deleted (Vault's own upgrade
// procedure, since a restarted pod comes back sealed). So after `helm upgrade` the Vault step
// replaces, one at a time, every pod still on an old revision: standbys first, the active node
// last; each replaced pod is unsealed (afterReplace) before the next is touched, so an HA
// cluster keeps its quorum throughout. Pods already on the StatefulSet's revision are never
// touched: a re-deploy that changed nothing restarts nothing.
import type { Kube } from '../adapters/kube.ts';
import type { Plan } from '../plan/types.ts';

const REVISION = 'controller-revision-hash';

interface PodLike {
  metadata: { name: string; uid?: string; labels?: Record<string, string> };
  status?: { phase?: string };
}

/**
 * The pods of `pods` that run an older revision than the StatefulSet's updateRevision, in the
 * order to replace them: standbys (and sealed members) first, the active node (label
 * vault-active=true, or openbao-active=true, set by the Kubernetes service registration) last.
 */
export function stalePods(statefulSet: { status?: { updateRevision?: string } } | undefined, pods: PodLike[]): string[] {
  const revision = statefulSet?.status?.updateRevision;
  if (!revision) return [];
  const stale = pods.filter((p) => p.metadata.labels?.[REVISION] !== undefined && p.metadata.labels[REVISION] !== revision);
  // Vault labels its pods vault-active, OpenBao openbao-active.
  const active = (p: PodLike) => (p.metadata.labels?.['vault-active'] === 'true' || p.metadata.labels?.['openbao-active'] === 'true' ? 1 : 0);
  return stale.sort((a, b) => active(a) - active(b) || a.metadata.name.localeCompare(b.metadata.name)).map((p) => p.metadata.name);
}

export interface RolloutOptions {
  timeoutMs: number;
  report?: (line: string) => void;
  /** After a pod is back (new uid, current revision, Running): unseal it, before the next one goes. */
  afterReplace?: (pod: string) => Promise<void>;
}

async function observe(kube: Kube, plan: Plan) {
  const ns = plan.vault.namespace;
  const sts = (await kube.get('apps/v1', 'StatefulSet', ns, plan.vault.release)) as { status?: { updateRevision?: string } } | undefined;
  const pods = await kube.list<PodLike>('v1', 'Pod', ns, `app.kubernetes.io/instance=${plan.vault.release},component=server`);
  return { ns, pods, revision: sts?.status?.updateRevision, stale: stalePods(sts, pods) };
}

/** The Vault pods on an old revision, in the order they would be replaced. */
export async function findStalePods(kube: Kube, plan: Plan): Promise<string[]> {
  return (await observe(kube, plan)).stale;
}

/** Replaces the Vault pods on an old revision, one at a time; returns their names. */
export async function replaceStalePods(kube: Kube, plan: Plan, opts: RolloutOptions): Promise<string[]> {
  const { ns, pods, revision, stale } = await observe(kube, plan);
  for (const name of stale) {
    const old = pods.find((p) => p.metadata.name === name)!;
    opts.report?.(`replacing Vault pod ${ns}/${name}: it runs revision ${old.metadata.labels?.[REVISION]}, the StatefulSet is at ${revision} (configuration, image or certificate changed)`);
    await kube.delete('v1', 'Pod', ns, name);
    await kube.waitFor('v1', 'Pod', ns, name, (p: PodLike) => p.metadata.uid !== old.metadata.uid && p.metadata.labels?.[REVISION] === revision && p.status?.phase === 'Running', `replaced on revision ${revision} and Running`, {
      timeoutMs: opts.timeoutMs,
    });
    await opts.afterReplace?.(name);
  }
  return stale;
}
