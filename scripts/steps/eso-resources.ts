// Per app namespace: Namespace, ServiceAccount, (production) the Vault CA, SecretStore and
// ExternalSecrets, by server-side apply. ESO's webhook may not answer right after install:
// retried with backoff, not failed.
import { currentSignal, type TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { kubernetesSecretsClusterManifests, namespaceManifests, type KubeObject } from '../plan/manifests.ts';
import { caSecretsFromPem } from '../tls/certs.ts';
import { vaultCaPem } from './install.ts';
import type { Kube, ApplyResult } from '../adapters/kube.ts';
import { VaultlabError } from '../lib/errors.ts';
import type { NamespacePlan, Plan } from '../plan/types.ts';
import { waitEso, type EsoWaitOptions } from './verify.ts';

export const SAMPLE_KINDS = new Set(['Deployment', 'Service']);
const ORDER = ['Namespace', 'ServiceAccount', 'Secret', 'SecretStore', 'ExternalSecret'];

/**
 * The ESO half of the manifests, in dependency order; sample workloads come later. Secrets that
 * stand in for an app's own Secret (argocd-secret, a creationPolicy Merge target) belong here,
 * --skip-samples or not: without them their ExternalSecret never syncs.
 */
export function esoManifests(ctx: Pick<DeployContext, 'plan' | 'options'>): KubeObject[] {
  const all = [...kubernetesSecretsClusterManifests(ctx.plan), ...ctx.plan.namespaces.flatMap((ns) => namespaceManifests(ctx.plan, ns))];
  return all
    .filter((o) => !SAMPLE_KINDS.has(o.kind))
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
}

/** ESO's admission webhook not answering yet (just installed, CA not injected): retry, not fail. */
export function webhookNotReady(message: string): boolean {
  return /failed calling webhook|failed to call webhook|connection refused|no endpoints available|context deadline exceeded|x509|service unavailable|\(HTTP 50[23]\)/i.test(message);
}

export async function applyWithRetry(kube: Pick<Kube, 'apply'>, objects: KubeObject[], timeoutMs = 120_000): Promise<ApplyResult[]> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await kube.apply(objects);
    } catch (err) {
      if (currentSignal()?.aborted) throw err;
      const msg = (err as Error).message;
      const transient = webhookNotReady(msg);
      if (!transient || Date.now() > deadline) {
        if (transient) throw new VaultlabError(`ESO's admission webhook is still not answering: ${msg}`, { hint: `Check the ESO pods: kubectl -n external-secrets get pods. Then re-run deploy.` });
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** SecretStore Ready=True; when not, ESO's reason (its Warning Event), decoded. */
export async function waitStoreReady(kube: Kube, plan: Plan, ns: NamespacePlan, opts: EsoWaitOptions): Promise<void> {
  await waitEso(kube, plan, ns, 'SecretStore', ns.secretStore.name, (c) => c?.status === 'True', 'Ready=True', opts);
}

export const esoResources: TaskStep<DeployContext> = {
  name: 'eso-resources',
  title: 'ESO resources: namespaces, ServiceAccounts, SecretStores, ExternalSecrets',
  async run(ctx, report) {
    const kube = need(ctx.kube, 'kube');
    report('waiting for the ESO CRDs');
    await kube.waitForCrdsEstablished(['secretstores.external-secrets.io', 'externalsecrets.external-secrets.io'], ctx.options.timeoutMs);
    const objects = esoManifests(ctx);
    const namespaces = objects.filter((o) => o.kind === 'Namespace');
    const results = [...(await kube.apply(namespaces))];
    if (ctx.plan.vault.tls) results.push(...(await kube.apply(caSecretsFromPem(ctx.plan, vaultCaPem(ctx)))));
    report('applying');
    results.push(...(await applyWithRetry(kube, objects.filter((o) => o.kind !== 'Namespace'), ctx.options.timeoutMs)));
    report('waiting for the SecretStores to be Ready');
    await Promise.all(ctx.plan.namespaces.map((ns) => waitStoreReady(kube, ctx.plan, ns, { timeoutMs: ctx.options.timeoutMs, vault: ctx.vault })));
    const changed = results.filter((r) => r.action !== 'unchanged').length;
    ctx.summary.esoResources = { applied: results.length, changed };
    return `${results.length} objects, ${changed} changed; ${ctx.plan.namespaces.length} SecretStore(s) Ready`;
  },
};
