// `vaultlab destroy`: the kind cluster and vaultlab's state for it; safe to run twice, and in an
// always-run CI cleanup step (a cluster that is already gone is exit 0, with a note).
import type { Command } from './types.ts';

export const commands: Command[] = [
  {
    name: 'destroy',
    summary: "Delete the kind cluster and vaultlab's state for it",
    description: [
      'Deletes the kind cluster only when vaultlab created it (its state dir\'s cluster.json or the ConfigMap',
      'kube-system/vaultlab-owner says so); any other cluster is refused, with the reason.',
      'With provider = "existing", removes only what vaultlab installed: its Helm releases, Vault\'s data',
      'volumes and init Secret, the namespaces labelled app.kubernetes.io/managed-by=vaultlab for this',
      'cluster name, the marker. A cluster that is already gone is success (exit 0), so it is safe in an',
      'always-run CI cleanup step. The keys of an external Vault are kept.',
    ].join('\n'),
    options: {
      'state-dir': { type: 'string', value: 'DIR', description: 'state directory (default .vaultlab/<cluster>)' },
    },
    async run(ctx) {
      const t0 = performance.now();
      const { existsSync } = await import('node:fs');
      const { loadConfig } = await import('../config/load.ts');
      const { loadOptions } = await import('./types.ts');
      const { buildPlan } = await import('../plan/build.ts');
      const { stateDirFor } = await import('../lib/state.ts');
      const { destroyEnvironment } = await import('../lifecycle/destroy.ts');
      const plan = buildPlan(loadConfig(loadOptions(ctx.flags)));
      const state = stateDirFor(plan.cluster.name, ctx.options['state-dir'] as string | undefined);
      // No run of this cluster's may be under way (a deploy, a reset); none creates the dir here.
      const release = existsSync(state.path) ? state.lock('destroy') : () => {};
      try {
        const r = await destroyEnvironment(plan, state, { kubeconfigPath: plan.cluster.kubeconfig ?? process.env.KUBECONFIG });
        const ms = Math.round(performance.now() - t0);
        if (ctx.flags.json) ctx.out.result({ ok: true, exitCode: 0, cluster: plan.cluster.name, provider: plan.cluster.provider, ms, ...r });
        else {
          if (r.action === 'nothing-to-do') ctx.out.info(`Nothing to destroy: ${r.notes[0] ?? `no trace of "${plan.cluster.name}"`}.`);
          else ctx.out.info(`Removed in ${(ms / 1000).toFixed(1)} s: ${r.removed.join(', ')}`);
          for (const n of r.action === 'nothing-to-do' ? r.notes.slice(1) : r.notes) ctx.out.info(`note: ${n}`);
          if (r.action === 'nothing-to-do' && r.removed.length) ctx.out.info(`Removed: ${r.removed.join(', ')}`);
        }
        return 0;
      } finally {
        release();
      }
    },
  },
];
