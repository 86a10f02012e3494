// The Vault access of a delivery whose apps each log in with their own ServiceAccount (the
// injector, VSO): one role per app, bound to the app's ServiceAccount; demo one broad read policy
// "<delivery>-policy", production "<delivery>-<ns>-policy" reading only <kv_mount>/<ns>/*; each
// policy plus the dynamic credentials of its namespace. Pure.
import type { PolicyPlan, RolePlan } from '../plan/types.ts';
import { broadEsoPolicyHcl, policyHcl } from '../plan/policies.ts';
import { deliveryPolicyName, type AppPlan, type DeliveryName, type PlanContext } from './types.ts';

export function perAppVaultAccess(delivery: DeliveryName, apps: AppPlan[], c: PlanContext): { roles: RolePlan[]; policies: PolicyPlan[] } {
  const mount = c.vault.kvMount;
  const namespaces = [...new Set(apps.map((a) => a.namespace))].sort();
  const policies: PolicyPlan[] = c.production
    ? namespaces.map((ns) => ({ name: deliveryPolicyName(delivery, ns), hcl: policyHcl(mount, ns) + c.dynamicCredsHcl(ns) }))
    : [{ name: deliveryPolicyName(delivery), hcl: broadEsoPolicyHcl(mount) + c.dynamicCredsHcl(undefined) }];
  const roles: RolePlan[] = [...apps]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((a) => ({
      name: a.role,
      namespace: a.namespace,
      serviceAccount: a.serviceAccount,
      audience: c.vault.audience,
      policies: [c.production ? deliveryPolicyName(delivery, a.namespace) : deliveryPolicyName(delivery)],
      ttl: c.vault.tokenTtl,
    }));
  return { roles, policies };
}
