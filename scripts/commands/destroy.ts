// `vaultlab destroy`: the kind cluster and vaultlab's state for it; safe to run twice.
import type { Command } from './types.ts';

export const commands: Command[] = [
  {
    name: 'destroy',
    summary: "Delete the kind cluster and vaultlab's state for it",
    description: 'Refuses to delete a cluster vaultlab did not create (ownership marker). With provider = "existing", removes only what vaultlab installed (its Helm releases and namespaces). A cluster that is already gone is success: safe in an always-run CI cleanup step.',
    options: {},
    async run(ctx) {
      const { loadConfig } = await import('../config/load.ts');
      const { loadOptions } = await import('./types.ts');
      const { buildPlan } = await import('../plan/build.ts');
      const { stateDirFor } = await import('../lib/state.ts');
      const { connectKube } = await import('../lifecycle/connect.ts');
      const { destroyEnvironment } = await import('../lifecycle/destroy.ts');
      const plan = buildPlan(loadConfig(loadOptions(ctx.flags)));
      const state = stateDirFor(plan.cluster.name);
      const { kube } = await connectKube(plan, state);
      const kubeconfig = plan.cluster.provider === 'kind' ? state.file('kubeconfig') : plan.cluster.kubeconfig ?? process.env.KUBECONFIG;
      const r = await destroyEnvironment(plan, state, kube, kubeconfig);
      if (ctx.flags.json) ctx.out.result({ ok: true, ...r });
      else ctx.out.info(r.action === 'nothing-to-do' ? `Nothing to destroy: cluster "${plan.cluster.name}" does not exist.` : `Removed: ${r.removed.join(', ')}`);
      return 0;
    },
  },
];
