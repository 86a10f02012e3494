// ESO, pure side: config -> the app's ExternalSecrets; the per-namespace roles and policies.
// One ServiceAccount "external-secrets" and one SecretStore "vault-backend" per namespace
// (role eso-<ns>-role), shared by every ESO app of the namespace.
import type { AppConfig, AppSecretConfig } from '../../config/schema.ts';
import type { ExternalSecretPlan, PolicyPlan, RolePlan } from '../../plan/types.ts';
import { broadEsoPolicyHcl, policyHcl } from '../../plan/policies.ts';
import { deliveryPolicyName, deliveryRoleName, type CheckContext, type EsoAppPlan, type PlanContext } from '../types.ts';

export const SERVICE_ACCOUNT = 'external-secrets';
export const SECRET_STORE = 'vault-backend';
export const roleName = (ns: string): string => deliveryRoleName('eso', ns);
export const nsPolicyName = (ns: string): string => deliveryPolicyName('eso', ns);
export const BROAD_POLICY = deliveryPolicyName('eso');

export function externalSecretPlan(app: AppConfig, es: AppSecretConfig): ExternalSecretPlan {
  return {
    name: es.name,
    target: es.target ?? es.name,
    creationPolicy: es.creation_policy ?? 'Owner',
    deletionPolicy: es.deletion_policy ?? 'Retain',
    refreshInterval: es.refresh_interval ?? '1h',
    data: es.data.map((d) => ({ secretKey: d.secret_key, path: d.path, key: d.key })),
    template: es.template ? { type: es.template.type, data: es.template.data, mergePolicy: es.template.merge_policy } : undefined,
    app: app.name,
  };
}

export function planEsoApp(app: AppConfig, secrets: AppSecretConfig[]): EsoAppPlan {
  return {
    delivery: 'eso',
    name: app.name,
    namespace: app.namespace,
    serviceAccount: SERVICE_ACCOUNT,
    role: roleName(app.namespace),
    sample: app.sample,
    externalSecrets: secrets.map((es) => externalSecretPlan(app, es)),
  };
}

/** demo: one broad read policy (eso-policy); production: eso-<ns>-policy reads only <kv_mount>/<ns>/*; each plus its dynamic credentials. One role per namespace. */
export function esoVaultAccess(apps: EsoAppPlan[], c: PlanContext): { roles: RolePlan[]; policies: PolicyPlan[] } {
  const namespaces = [...new Set(apps.map((a) => a.namespace))].sort();
  const mount = c.vault.kvMount;
  const policies: PolicyPlan[] = c.production
    ? namespaces.map((ns) => ({ name: nsPolicyName(ns), hcl: policyHcl(mount, ns) + c.dynamicCredsHcl(ns) }))
    : [{ name: BROAD_POLICY, hcl: broadEsoPolicyHcl(mount) + c.dynamicCredsHcl(undefined) }];
  const roles: RolePlan[] = namespaces.map((ns) => ({
    name: roleName(ns),
    namespace: ns,
    serviceAccount: SERVICE_ACCOUNT,
    audience: c.vault.audience,
    policies: [c.production ? nsPolicyName(ns) : BROAD_POLICY],
    ttl: c.vault.tokenTtl,
  }));
  return { roles, policies };
}

/** ESO-only checks: policy combinations ESO's admission webhook rejects; what the ESO samples need. */
export function checkEsoApp(app: AppConfig, secrets: AppSecretConfig[], c: CheckContext): void {
  secrets.forEach((es, ei) => {
    const base: (string | number)[] = ['apps', c.appIndex, c.secretsKey, ei];
    if (es.deletion_policy === 'Delete' && (es.creation_policy === 'Merge' || es.creation_policy === 'None')) {
      c.error([...base, 'deletion_policy'], `deletion_policy = "Delete" contradicts creation_policy = "${es.creation_policy}": ESO only deletes Secrets it owns`, 'Use creation_policy = "Owner", or deletion_policy = "Retain".');
    }
    if (es.deletion_policy === 'Merge' && es.creation_policy === 'None') {
      c.error([...base, 'deletion_policy'], 'deletion_policy = "Merge" contradicts creation_policy = "None": there is no Secret to merge with');
    }
    if (es.template?.type === 'kubernetes.io/dockerconfigjson' && !('.dockerconfigjson' in (es.template.data ?? {}))) {
      c.error([...base, 'template', 'data'], 'a kubernetes.io/dockerconfigjson Secret needs a ".dockerconfigjson" template entry');
    }
  });
  if (!app.enabled) return;
  if (app.sample === 'registry' && !secrets.some((e) => e.template?.type === 'kubernetes.io/dockerconfigjson')) {
    c.error(['apps', c.appIndex, 'sample'], 'sample "registry" needs an ExternalSecret with template.type = "kubernetes.io/dockerconfigjson"');
  }
  if (app.sample === 'argocd' && !secrets.some((e) => e.creation_policy === 'Merge')) {
    c.error(['apps', c.appIndex, 'sample'], 'sample "argocd" merges into a Secret that ArgoCD owns: it needs an ExternalSecret with creation_policy = "Merge"');
  }
}

/** Keys the app's workload sees: the template's keys when templated, else the data mappings. */
export function esoSampleKeys(app: EsoAppPlan): string[] {
  return app.externalSecrets.flatMap((e) => (e.template?.data && Object.keys(e.template.data).length ? Object.keys(e.template.data) : e.data.map((d) => d.secretKey)));
}
