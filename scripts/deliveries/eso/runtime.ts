// ESO at deploy and status time: its objects applied (through its admission webhook), the
// SecretStores Ready; verify: every ExternalSecret synced and each target Secret equal to Vault by
// digest, read with ESO's own identity; status: the operator, SecretStores and ExternalSecrets.
import type { Check } from '../../lifecycle/status.ts';
import type { Environment } from '../../lifecycle/connect.ts';
import { compactEsoMessage, latestEsoWarning } from '../../lifecycle/eso-diagnose.ts';
import { need, type DeployContext } from '../../steps/context.ts';
import type { NamespacePlan, Plan } from '../../plan/types.ts';
import type { KubeObject } from '../../plan/objects.ts';
import type { DeliveryRuntime, EsoAppPlan } from '../types.ts';
import { esoManifestsOf } from './render.ts';
import { applyWithRetry, checkSecret, esoIdentityClient, waitStoreReady, waitSynced, type SecretCheck } from './sync.ts';

export const ESO_CRDS = ['secretstores.external-secrets.io', 'externalsecrets.external-secrets.io'];
const ORDER = ['ServiceAccount', 'SecretStore', 'ExternalSecret'];

/** The namespaces whose apps use ESO. */
export function esoNamespaces(plan: Plan, apps: EsoAppPlan[]): NamespacePlan[] {
  const names = new Set(apps.map((a) => a.namespace));
  return plan.namespaces.filter((ns) => names.has(ns.name));
}

/**
 * ESO's objects of every namespace it serves, validated, in dependency order. The validators
 * (kubernetes-models) load here, on apply: `status` runs this module without them (~80 ms).
 */
export async function esoObjects(plan: Plan, apps: EsoAppPlan[]): Promise<KubeObject[]> {
  const { validated } = await import('../../plan/validate.ts');
  return esoNamespaces(plan, apps)
    .flatMap((ns) => esoManifestsOf(plan, ns).map((o) => validated(o)))
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
}

const condition = (o: any, type: string) => (o?.status?.conditions ?? []).find((c: any) => c.type === type);
const conditionText = (c: any) => (c ? `${c.reason ?? c.status}${c.message && c.status !== 'True' ? `: ${c.message}` : ''}` : 'no condition yet');
const short = (s: string, max = 160) => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

export const esoRuntime: DeliveryRuntime<'eso'> = {
  async apply(ctx, apps, report) {
    const kube = need(ctx.kube, 'kube');
    report('waiting for the ESO CRDs');
    await kube.waitForCrdsEstablished(ESO_CRDS, ctx.options.timeoutMs);
    report('applying');
    const results = await applyWithRetry(kube, await esoObjects(ctx.plan, apps), ctx.options.timeoutMs);
    const namespaces = esoNamespaces(ctx.plan, apps);
    report('waiting for the SecretStores to be Ready');
    await Promise.all(namespaces.map((ns) => waitStoreReady(kube, ctx.plan, ns, { timeoutMs: ctx.options.timeoutMs, vault: ctx.vault })));
    return { applied: results.length, changed: results.filter((r) => r.action !== 'unchanged').length, detail: `${namespaces.length} SecretStore(s) Ready` };
  },

  async verify(ctx: DeployContext, apps, report, signal) {
    const kube = need(ctx.kube, 'kube');
    const vault = need(ctx.vault, 'vault');
    const { plan } = ctx;
    // Every namespace, and every ExternalSecret in it, at once (a warm re-deploy waits for the
    // slowest one, not for the sum); the checks keep the plan's order.
    const perNs = await Promise.all(
      esoNamespaces(plan, apps).map(async (ns): Promise<SecretCheck[]> => {
        const asEso = await esoIdentityClient(kube, plan, vault, ns, { waitMs: Math.min(60_000, ctx.options.timeoutMs), signal });
        // One read per Vault path, however many keys and Secrets come from it.
        const reads = new Map<string, Promise<Record<string, string> | undefined>>();
        const readPath = (path: string) => {
          if (!reads.has(path)) reads.set(path, asEso.kvRead(plan.seeding.mount, path).then((r) => r?.data));
          return reads.get(path)!;
        };
        try {
          return await Promise.all(
            ns.externalSecrets.map(async (es) => {
              await waitSynced(kube, plan, ns, es, { timeoutMs: ctx.options.timeoutMs, vault });
              report(`${ns.name}/${es.name} synced`);
              const secret = await kube.readSecret(ns.name, es.target);
              return checkSecret(ns.name, es, secret?.data, async (path, key) => (await readPath(path))?.[key]);
            }),
          );
        } finally {
          asEso.close();
        }
      }),
    );
    return perNs.flat();
  },

  async status(env: Environment, apps) {
    const { plan } = env;
    const kube = env.kube;
    if (!kube) return [];
    const list = (apiVersion: string, kind: string, ns: string, selector?: string) => kube.list<any>(apiVersion, kind, ns, selector).catch((): any[] => []);
    const byName = (items: any[]) => new Map(items.map((o) => [o.metadata.name as string, o]));
    const namespaces = esoNamespaces(plan, apps);
    const [esoDeps, perNs] = await Promise.all([
      list('apps/v1', 'Deployment', plan.eso.namespace, `app.kubernetes.io/instance=${plan.eso.release}`),
      Promise.all(namespaces.map(async (ns) => [ns, byName(await list('external-secrets.io/v1', 'SecretStore', ns.name)), byName(await list('external-secrets.io/v1', 'ExternalSecret', ns.name))] as const)),
    ]);
    const checks: Check[] = [];
    const add = (c: Check) => checks.push(c);
    if (esoDeps.length === 0) {
      add({ name: 'eso', ok: false, detail: `no External Secrets Operator deployment (release ${plan.eso.release}) in namespace ${plan.eso.namespace}`, fix: 'vaultlab deploy' });
    } else {
      const down = esoDeps.filter((d) => condition(d, 'Available')?.status !== 'True');
      add({
        name: 'eso',
        ok: down.length === 0,
        detail: down.length ? `not available: ${down.map((d) => `${d.metadata.name} (${conditionText(condition(d, 'Available'))})`).join(', ')}` : `available: ${esoDeps.map((d) => d.metadata.name).sort().join(', ')}`,
        ...(down.length ? { fix: `kubectl -n ${plan.eso.namespace} get pods; \`vaultlab deploy\` reinstalls it` } : {}),
      });
    }
    for (const [ns, stores, externalSecrets] of perNs) {
      // ESO's condition says little ("could not get secret data from provider"); its latest
      // Warning Event says what went wrong, shortened here, decoded by doctor.
      const lastError = async (kind: string, name: string, obj: any) => {
        if (!obj || !condition(obj, 'Ready')) return '';
        const e = await latestEsoWarning(kube, kind, ns.name, name);
        return e ? `; last error: ${short(compactEsoMessage(e))}` : '';
      };
      const store = stores.get(ns.secretStore.name);
      const ready = condition(store, 'Ready');
      const storeOk = ready?.status === 'True';
      add({ name: `SecretStore ${ns.name}/${ns.secretStore.name}`, ok: storeOk, detail: store ? `${conditionText(ready)}${storeOk ? '' : await lastError('SecretStore', ns.secretStore.name, store)}` : 'missing', ...(storeOk ? {} : { fix: store ? 'vaultlab doctor decodes the cause' : 'vaultlab deploy' }) });
      for (const es of ns.externalSecrets) {
        const obj = externalSecrets.get(es.name);
        const r = condition(obj, 'Ready');
        const ok = r?.status === 'True';
        const refreshed = obj?.status?.refreshTime ? `, refreshed ${obj.status.refreshTime}` : '';
        add({ name: `ExternalSecret ${ns.name}/${es.name}`, ok, detail: obj ? `${conditionText(r)}${ok ? refreshed : await lastError('ExternalSecret', es.name, obj)}` : 'missing', ...(ok ? {} : { fix: obj ? 'vaultlab doctor decodes the cause' : 'vaultlab deploy' }) });
      }
    }
    return checks;
  },
};
