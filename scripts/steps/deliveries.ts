// Per app namespace: the Namespace, (production) the Vault CA, the Secrets samples stand in for
// (argocd-secret, which ESO merges into), Vault's RBAC for [[kubernetes_roles]] (and its
// cluster-scoped objects), then each used delivery's objects, by server-side apply, each delivery
// waiting until its objects are ready (ESO: SecretStores Ready).
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { kubernetesSecretsClusterManifests, kubernetesSecretsRbac, namespaceManifests, sampleManifests, type KubeObject } from '../plan/manifests.ts';
import { caSecretsFromPem } from '../tls/certs.ts';
import { vaultCaPem } from './install.ts';
import type { Plan } from '../plan/types.ts';
import { appsOf, usedDeliveries } from '../deliveries/index.ts';
import type { ApplySummary, Delivery, DeliveryName } from '../deliveries/types.ts';

/** Sample workloads: applied by the samples step, after the deliveries. */
export const SAMPLE_KINDS = new Set(['Deployment', 'Service']);
const ORDER = ['Namespace', 'ServiceAccount', 'Secret', 'SecretStore', 'ExternalSecret'];
const rank = (kind: string) => (ORDER.includes(kind) ? ORDER.indexOf(kind) : ORDER.length);

/**
 * Everything but the sample workloads, in dependency order. Secrets that stand in for an app's own
 * Secret (argocd-secret, a creationPolicy Merge target) belong here, --skip-samples or not:
 * without them their ExternalSecret never syncs.
 */
export function resourceManifests(ctx: Pick<DeployContext, 'plan'> & Partial<Pick<DeployContext, 'options'>>): KubeObject[] {
  return [...kubernetesSecretsClusterManifests(ctx.plan), ...ctx.plan.namespaces.flatMap((ns) => namespaceManifests(ctx.plan, ns))]
    .filter((o) => !SAMPLE_KINDS.has(o.kind))
    .sort((a, b) => rank(a.kind) - rank(b.kind));
}

/**
 * The objects no delivery owns: Namespaces, the sample stand-in Secrets, and what Vault's
 * ServiceAccount may do for the Kubernetes secrets engine (cluster-scoped objects, a Role and
 * RoleBinding per namespace).
 */
function sharedObjects(plan: Plan): KubeObject[] {
  const namespaces = plan.namespaces.map((ns) => namespaceManifests(plan, ns).find((o) => o.kind === 'Namespace')!);
  const standIns = plan.namespaces.flatMap((ns) => ns.samples.flatMap((s) => sampleManifests(plan, ns, s))).filter((o) => !SAMPLE_KINDS.has(o.kind));
  const vaultRbac = [...kubernetesSecretsClusterManifests(plan), ...plan.namespaces.flatMap((ns) => kubernetesSecretsRbac(plan, ns.name))];
  return [...namespaces, ...standIns, ...vaultRbac];
}

export const deliveries: TaskStep<DeployContext> = {
  name: 'deliveries',
  title: 'Deliveries: namespaces, then each delivery\'s objects (ESO: SecretStores, ExternalSecrets; injector: ServiceAccounts)',
  async run(ctx, report) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    const shared = sharedObjects(plan);
    const results = [...(await kube.apply(shared.filter((o) => o.kind === 'Namespace')))];
    if (plan.vault.tls) results.push(...(await kube.apply(caSecretsFromPem(plan, vaultCaPem(ctx)))));
    results.push(...(await kube.apply(shared.filter((o) => o.kind !== 'Namespace'))));
    // The deliveries' charts the install step started (the vault step ran meanwhile): their
    // pods Ready (ESO's webhook answers) before their objects go in.
    if (ctx.releases) {
      report('waiting for the deliveries\' charts (Helm --wait: their pods Ready)');
      await ctx.releases;
    }
    // Every delivery at once: each applies and waits on its own objects (ESO's SecretStores Ready,
    // VSO's connection valid); the summaries keep the deliveries' order.
    const used = usedDeliveries(plan) as Delivery<DeliveryName>[];
    const perDelivery = await Promise.all(used.map(async (d) => (await d.runtime()).apply(ctx, appsOf(plan.apps, d.name) as never[], (m) => report(`${d.name}: ${m}`))));
    const summaries: Partial<Record<DeliveryName, ApplySummary>> = Object.fromEntries(used.map((d, i) => [d.name, perDelivery[i]!]));
    const applied = results.length + Object.values(summaries).reduce((n, s) => n + s.applied, 0);
    const changed = results.filter((r) => r.action !== 'unchanged').length + Object.values(summaries).reduce((n, s) => n + s.changed, 0);
    ctx.summary.deliveries = { applied, changed, byDelivery: summaries };
    return `${applied} objects, ${changed} changed; ${Object.values(summaries).map((s) => s.detail).join('; ')}`;
  },
};
