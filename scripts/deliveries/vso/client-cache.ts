// VSO's client cache, persisted and encrypted with a Vault transit key ([vso] client_cache =
// "transit", the default when the transit engine is enabled). VSO stores each Vault client it
// logged in with (one per VaultAuth: the app's token) as an immutable Secret vso-cc-<key> in its
// own namespace, its data the transit ciphertext of the token, so a restarted VSO resumes its
// logins and leases instead of starting over, and the Secret alone discloses nothing. It encrypts
// and decrypts as vso-client-cache-role through the chart's <fullname>-default-transit-auth
// VaultAuth, which reaches Vault through the VaultConnection vaultlab applies in VSO's namespace.
//
// Checked here: per app, its cached client is there, labelled encrypted by that VaultAuth, and its
// data is transit ciphertext ("vault:v<n>:..."), never the token in the clear. Nothing is
// decrypted: vaultlab's own token (production's setup token) may not.
import type { Kube } from '../../adapters/kube.ts';
import type { Plan } from '../../plan/types.ts';
import type { DeliveryCheck, VsoAppPlan } from '../types.ts';
import { latestEsoWarning as latestWarning } from '../../lifecycle/eso-diagnose.ts';
import { settle } from '../pods.ts';
import { VSO_API } from './render.ts';

/** VSO's labels on its client cache Secrets (vault/cache_storage.go). */
export const CACHE_COMPONENT = 'app.kubernetes.io/component=client-cache-storage';
const TRANSIT_CIPHERTEXT = /^(vault|bao):v[0-9]+:/;

/** One app's cached client, as VSO stored it: missing, in the clear, or transit-encrypted. */
export function cacheEntryProblems(plan: Plan, app: VsoAppPlan, authUid: string | undefined, secrets: any[]): string[] {
  const cache = plan.vso.clientCache;
  if (!cache) return [];
  if (!authUid) return [`VaultAuth ${app.namespace}/${app.name} does not exist`];
  const mine = secrets.filter((s) => s.metadata?.labels?.['auth/UID'] === authUid);
  if (mine.length === 0) return [`VSO has no cached client for VaultAuth ${app.namespace}/${app.name} in namespace ${plan.vso.namespace}`];
  const problems: string[] = [];
  for (const s of mine) {
    const labels = s.metadata?.labels ?? {};
    if (labels.encrypted !== 'true' || labels.vaultTransitRef !== cache.vaultAuth) {
      problems.push(`Secret ${plan.vso.namespace}/${s.metadata.name} is not marked encrypted by VaultAuth ${cache.vaultAuth}`);
      continue;
    }
    let ciphertext: unknown;
    try {
      ciphertext = JSON.parse(Buffer.from(s.data?.secret ?? '', 'base64').toString('utf8'))?.ciphertext;
    } catch {
      /* not JSON: not what EncryptWithTransit writes */
    }
    if (typeof ciphertext !== 'string' || !TRANSIT_CIPHERTEXT.test(ciphertext)) problems.push(`Secret ${plan.vso.namespace}/${s.metadata.name} does not hold transit ciphertext`);
  }
  return problems;
}

/** Why VSO could not encrypt: the chart's VaultAuth's state and its last Warning, decoded. */
async function whyNotEncrypted(kube: Kube, plan: Plan): Promise<string> {
  const cache = plan.vso.clientCache!;
  const auth = await kube.get<any>(VSO_API, 'VaultAuth', plan.vso.namespace, cache.vaultAuth).catch(() => undefined);
  if (!auth) return `the chart's VaultAuth ${plan.vso.namespace}/${cache.vaultAuth} is missing (helm values controller.manager.clientCache)`;
  const event = await latestWarning(kube, 'VaultAuth', plan.vso.namespace, cache.vaultAuth);
  const detail = event ?? auth.status?.error ?? (auth.status?.valid === true ? '' : 'not validated yet');
  if (/permission denied|403/i.test(detail)) return `Vault refused ${cache.role} (policy ${cache.policy}: update on ${cache.transitMount}/encrypt|decrypt/${cache.keyName})`;
  return detail ? `VaultAuth ${cache.vaultAuth}: ${detail}` : '';
}

/**
 * One check per app: its client is cached in VSO's namespace, transit-encrypted. VSO stores a
 * client when it logs in (before it syncs), so a synced app has one. The settle (it ends as soon
 * as every entry is there) covers the controller's write racing the caller, and one restart of
 * VSO v0.10.0 by the kubelet: its setEncryptionClient can panic (a double send on a channel it
 * closes, vault/client_factory.go) when it first sets up its transit client.
 */
export async function checkClientCache(kube: Kube, plan: Plan, apps: VsoAppPlan[], signal?: AbortSignal, settleMs = 60_000): Promise<DeliveryCheck[]> {
  const cache = plan.vso.clientCache;
  if (!cache || apps.length === 0) return [];
  const uids = new Map<string, string | undefined>();
  const problemsByApp = new Map<string, string[]>();
  await settle(Date.now() + settleMs, signal, async () => {
    const secrets = await kube.list<any>('v1', 'Secret', plan.vso.namespace, CACHE_COMPONENT);
    for (const app of apps) {
      if (!uids.get(app.name)) uids.set(app.name, (await kube.get<any>(VSO_API, 'VaultAuth', app.namespace, app.name))?.metadata?.uid);
      problemsByApp.set(app.name, cacheEntryProblems(plan, app, uids.get(app.name), secrets));
    }
    return [...problemsByApp.values()].flat();
  }, 1000);
  const why = [...problemsByApp.values()].some((p) => p.length) ? await whyNotEncrypted(kube, plan) : '';
  return apps.map((app) => {
    const problems = problemsByApp.get(app.name) ?? [];
    return {
      namespace: plan.vso.namespace,
      target: `client cache of ${app.namespace}/${app.name} (${cache.transitMount}/keys/${cache.keyName})`,
      ok: problems.length === 0,
      problems: problems.length && why ? [...problems, why] : problems,
      delivery: 'vso' as const,
      app: app.name,
    };
  });
}
