// The sample apps that consume the delivered secrets.
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { namespaceManifests } from '../plan/manifests.ts';
import { SAMPLE_KINDS } from './deliveries.ts';

export const samples: TaskStep<DeployContext> = {
  name: 'samples',
  title: 'Sample apps',
  skip: (ctx) => (ctx.options.skipSamples ? '--skip-samples' : ctx.plan.namespaces.every((n) => n.samples.length === 0) ? 'no sample enabled' : false),
  async run(ctx) {
    const kube = need(ctx.kube, 'kube');
    // Grouped by kind (Services, then Deployments: neither needs the other), so each group is applied at once.
    const objects = ctx.plan.namespaces
      .flatMap((ns) => namespaceManifests(ctx.plan, ns))
      .filter((o) => SAMPLE_KINDS.has(o.kind))
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'Service' ? -1 : b.kind === 'Service' ? 1 : 0));
    const r = await kube.apply(objects);
    return `${objects.filter((o) => o.kind === 'Deployment').length} app(s), ${r.filter((x) => x.action !== 'unchanged').length} changed`;
  },
};
