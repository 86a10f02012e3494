// Vault Secrets Operator, pure side: config -> one VaultStaticSecret per [[apps.secrets]] entry,
// the app's role (vso-<app>-role, bound to the ServiceAccount named after the app, which VSO
// requests tokens for) and its policy.
import type { AppConfig, AppSecretConfig } from '../../config/schema.ts';
import type { Config } from '../../config/schema.ts';
import type { PolicyPlan, RolePlan, TransitKeyPlan, VsoClientCachePlan } from '../../plan/types.ts';
import { TRANSIT_MOUNT, VSO_CACHE_NAME, vsoClientCache } from '../../config/model.ts';
import { pathBlock } from '../../plan/policies.ts';
import { perAppVaultAccess } from '../per-app-access.ts';
import { deliveryRoleName, type CheckContext, type PlanContext, type VsoAppPlan, type VsoSecretPlan } from '../types.ts';

export const DEFAULT_REFRESH_AFTER = '1h';
/** Samples whose workload is a Deployment named after the app (what rolloutRestartTargets names). */
export const RESTARTABLE_SAMPLES: readonly string[] = ['env', 'files', 'dashboard'];
/** VSO's own pattern for spec.refreshAfter (one number and one unit; no "1h30m", no "ms"). */
const VSO_DURATION = /^[0-9]+(\.[0-9]+)?(s|m|h)$/;

export function planVsoApp(app: AppConfig, secrets: AppSecretConfig[]): VsoAppPlan {
  const list: VsoSecretPlan[] = secrets.map((s) => ({
    name: s.name,
    target: s.target ?? s.name,
    data: s.data.map((d) => ({ secretKey: d.secret_key, path: d.path, key: d.key })),
    refreshAfter: s.refresh_after ?? DEFAULT_REFRESH_AFTER,
    // Default: restart the app's Deployment when its sample has one (a Secret read as env needs it).
    rolloutRestart: s.rollout_restart ?? RESTARTABLE_SAMPLES.includes(app.sample),
  }));
  return { delivery: 'vso', name: app.name, namespace: app.namespace, serviceAccount: app.name, role: deliveryRoleName('vso', app.name), sample: app.sample, secrets: list };
}

/** The one KV path a VaultStaticSecret reads (check() makes sure there is one). */
export const secretPath = (s: VsoSecretPlan): string => s.data[0]!.path;

/** The chart's fullname (its _helpers.tpl): the release, or "<release>-vault-secrets-operator" when the release does not contain the chart's name. */
export function vsoFullname(release: string): string {
  const name = 'vault-secrets-operator';
  return (release.includes(name) ? release : `${release}-${name}`).slice(0, 63).replace(/-+$/, '');
}

/** VSO's client cache, persisted and encrypted with transit key [vso] client_cache_key; undefined when kept in memory. */
export function vsoClientCachePlan(config: Config): VsoClientCachePlan | undefined {
  if (vsoClientCache(config) !== 'transit') return undefined;
  const fullname = vsoFullname(config.vso.release);
  return {
    transitMount: TRANSIT_MOUNT,
    keyName: config.vso.client_cache_key,
    role: deliveryRoleName('vso', VSO_CACHE_NAME),
    policy: `vso-${VSO_CACHE_NAME}-policy`,
    serviceAccount: `${fullname}-controller-manager`,
    vaultAuth: `${fullname}-default-transit-auth`,
  };
}

/** What VSO's client cache may do: encrypt and decrypt with its one key, nothing else (not even read the key). */
export function clientCacheHcl(cache: VsoClientCachePlan): string {
  return [
    `# vaultlab: VSO's client cache (Secrets in VSO's namespace) encrypted with transit key ${cache.keyName}\n`,
    pathBlock(`${cache.transitMount}/encrypt/${cache.keyName}`, ['update']),
    pathBlock(`${cache.transitMount}/decrypt/${cache.keyName}`, ['update']),
  ].join('\n');
}

/**
 * One role per app (its own ServiceAccount); demo: one broad read policy, production: vso-<ns>-policy
 * reads only <kv_mount>/<ns>/*; each plus its dynamic credentials. With the transit client cache,
 * the controller's own role (vso-client-cache-role, bound to its ServiceAccount in VSO's namespace)
 * with a policy for its key, and the key.
 */
export function vsoVaultAccess(apps: VsoAppPlan[], c: PlanContext): { roles: RolePlan[]; policies: PolicyPlan[]; transitKeys: TransitKeyPlan[] } {
  const access = perAppVaultAccess('vso', apps, c);
  const cache = vsoClientCachePlan(c.config);
  if (!cache) return { ...access, transitKeys: [] };
  return {
    roles: [...access.roles, { name: cache.role, namespace: c.config.vso.namespace, serviceAccount: cache.serviceAccount, audience: c.vault.audience, policies: [cache.policy], ttl: c.vault.tokenTtl }],
    policies: [...access.policies, { name: cache.policy, hcl: clientCacheHcl(cache) }],
    transitKeys: [{ mount: cache.transitMount, name: cache.keyName, type: 'aes256-gcm96', purpose: "VSO's client cache" }],
  };
}

/** VSO-only checks: one KV path per entry, VSO's duration syntax, the app's ServiceAccount name, VSO's namespace, the client cache's role and policy names. */
export function checkVsoApp(app: AppConfig, secrets: AppSecretConfig[], c: CheckContext): void {
  if (app.name === 'external-secrets') {
    c.error(['apps', c.appIndex, 'name'], 'a VSO app\'s ServiceAccount is named after it, and "external-secrets" is ESO\'s', 'Rename the app.');
  }
  if (app.namespace === c.config.vso.namespace) {
    c.error(['apps', c.appIndex, 'namespace'], `"${app.namespace}" is the Vault Secrets Operator's namespace ([vso] namespace); apps need their own namespace`);
  }
  // vso-client-cache-role / -policy are the client cache's; an app or namespace of that name would share them.
  if (app.name === VSO_CACHE_NAME) c.error(['apps', c.appIndex, 'name'], `"${VSO_CACHE_NAME}" names VSO's client cache role (vso-${VSO_CACHE_NAME}-role); a VSO app cannot be called that`, 'Rename the app.');
  else if (app.namespace === VSO_CACHE_NAME) c.error(['apps', c.appIndex, 'namespace'], `"${VSO_CACHE_NAME}" names VSO's client cache policy (vso-${VSO_CACHE_NAME}-policy); a VSO app's namespace cannot be called that`, 'Give the app another namespace.');
  secrets.forEach((s, i) => {
    const base: (string | number)[] = ['apps', c.appIndex, c.secretsKey, i];
    const paths = [...new Set(s.data.map((d) => d.path))];
    if (paths.length > 1) {
      c.error([...base, 'data'], `a VaultStaticSecret reads one KV path, but entry "${s.name}" reads ${paths.map((p) => `"${p}"`).join(', ')}`,
        `Split it into one [[apps.secrets]] entry per path (each its own target Secret), or seed the keys under one path.`);
    }
    if (s.refresh_after !== undefined && !VSO_DURATION.test(s.refresh_after)) {
      c.error([...base, 'refresh_after'], `"${s.refresh_after}" is not a duration VSO accepts (one number and one unit: s, m or h)`, 'Write it as one unit, like "90m" for 1h30m or "1s" for less.');
    }
  });
}
