// The list of deliveries, in one place: a new way for secrets to reach pods (the Secrets Store
// CSI driver, say) is one module in scripts/deliveries/<name>/ and one line here (and its name in
// DELIVERY_NAMES, types.ts). Everything else (plan, render, deploy, verify, status) goes through
// this list and the `Delivery` interface.
import type { Plan } from '../plan/types.ts';
import { DELIVERY_NAMES, type AppPlan, type AppPlanOf, type Delivery, type DeliveryName } from './types.ts';
import { eso } from './eso/index.ts';
import { injector } from './injector/index.ts';
import { vso } from './vso/index.ts';

export const DELIVERIES: { readonly [N in DeliveryName]: Delivery<N> } = { eso, injector, vso };

export function deliveryOf<N extends DeliveryName>(name: N): Delivery<N> {
  return DELIVERIES[name] as Delivery<N>;
}

/** The enabled apps of one delivery (plan order). */
export function appsOf<N extends DeliveryName>(apps: readonly AppPlan[], name: N): AppPlanOf<N>[] {
  return apps.filter((a): a is AppPlanOf<N> => a.delivery === name);
}

/**
 * The deliveries some enabled app uses, in DELIVERY_NAMES order. With no enabled app at all the
 * default one (ESO) stays: vaultlab installed Vault and ESO for such a config before deliveries
 * existed, and still does.
 */
export function usedDeliveryNames(apps: readonly AppPlan[]): DeliveryName[] {
  if (apps.length === 0) return ['eso'];
  return DELIVERY_NAMES.filter((n) => apps.some((a) => a.delivery === n));
}

export function usedDeliveries(plan: Pick<Plan, 'apps'>): Delivery[] {
  return usedDeliveryNames(plan.apps).map((n) => DELIVERIES[n] as unknown as Delivery);
}

/** Calls `f` with each used delivery and its apps, typed together. */
export function eachUsed<R>(plan: Pick<Plan, 'apps'>, f: <N extends DeliveryName>(d: Delivery<N>, apps: AppPlanOf<N>[]) => R): R[] {
  return usedDeliveryNames(plan.apps).map((n) => f(DELIVERIES[n] as Delivery<typeof n>, appsOf(plan.apps, n)));
}
