// Vault Agent Injector at deploy and status time.
import { need } from '../../steps/context.ts';
import type { DeliveryRuntime, InjectorAppPlan } from '../types.ts';
import type { Plan } from '../../plan/types.ts';
import type { KubeObject } from '../../plan/objects.ts';
import { injectorManifests } from './render.ts';
import { validated } from '../../plan/validate.ts';

export function injectorObjects(plan: Plan, apps: InjectorAppPlan[]): KubeObject[] {
  return plan.namespaces.flatMap((ns) => {
    const here = apps.filter((a) => a.namespace === ns.name);
    return here.length ? injectorManifests(plan, ns, here).map((o) => validated(o)) : [];
  });
}

export const injectorRuntime: DeliveryRuntime<'injector'> = {
  async apply(ctx, apps) {
    const kube = need(ctx.kube, 'kube');
    const results = await kube.apply(injectorObjects(ctx.plan, apps));
    return { applied: results.length, changed: results.filter((r) => r.action !== 'unchanged').length, detail: `${apps.length} injector app ServiceAccount(s)` };
  },
  async verify() {
    return [];
  },
  async status() {
    return [];
  },
};
