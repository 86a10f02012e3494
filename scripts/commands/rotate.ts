// `vaultlab rotate [PATH[:KEY]...]`: new random values, and every pod that reads them made to see
// them (re-synced, restarted, re-rendered), each compared with Vault by digest. `seed --rotate`
// stays the Vault-only primitive.
import type { Command, CommandContext } from './types.ts';
import { loadOptions } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';
import { UsageError } from '../lib/errors.ts';
import type { DeliveryConvergence } from '../lifecycle/converge.ts';

/** One line per consumer: what was done, and when its pod held the value. */
export function printConsumers(ctx: CommandContext, consumers: readonly DeliveryConvergence[]): void {
  for (const c of consumers) ctx.out.info(`  ${c.delivery.padEnd(8)} ${`${c.namespace}/${c.target}`.padEnd(44)} ${c.action.padEnd(20)} ${c.seconds.toFixed(1)} s`);
}

export const commands: Command[] = [
  {
    name: 'rotate',
    summary: 'Rotate random secret values and wait until every pod that reads them holds the new ones',
    args: '[PATH[:KEY]...]',
    description: [
      'New random values (Vault\'s CSPRNG) for the given [[secrets]] paths or keys (none: every random',
      'value), bcrypt hashes regenerated with their plaintext, a value shared by name rotated everywhere',
      'it lives. Then each delivery makes its consumers see them: ESO re-syncs the ExternalSecrets that',
      'read them (annotation force-sync) until each Secret equals Vault by digest, and restarts the',
      'Deployments whose pods read a changed key through env or a Secret volume (annotation',
      'kubectl.kubernetes.io/restartedAt) until their new pods hold it; the Vault Agent re-renders the',
      'injected files (every 15 s) until they match. Reports per consumer what was done and how long it',
      'took. A known value from config.toml cannot be rotated (edit it and run `vaultlab seed`).',
      'Examples: vaultlab rotate   |   vaultlab rotate webapp/api   |   vaultlab rotate reports/api:token',
    ].join('\n'),
    options: {
      ...VAULT_OPTIONS,
      timeout: { type: 'string', value: 'SECONDS', description: 'how long the consumers may take to see the new values (default 120)' },
    },
    async run(ctx) {
      const raw = ctx.options.timeout;
      const timeoutMs = raw === undefined ? 120_000 : Number(raw) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout takes a number of seconds', 'e.g. --timeout 120');
      const { rotateSecrets, selectRotation } = await import('../lifecycle/rotate.ts');
      // Argument errors (exit 2) before any cluster or Vault is reached.
      const { loadConfig } = await import('../config/load.ts');
      const { buildPlan } = await import('../plan/build.ts');
      const loaded = loadConfig(loadOptions(ctx.flags));
      selectRotation(buildPlan(loaded), ctx.positionals, loaded.file);
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { printSeed } = await import('../vault/cli-helpers.ts');
      const env = await connectEnvironment(ctx);
      try {
        const selection = selectRotation(env.plan, ctx.positionals, env.loaded.file);
        const release = env.state.lock('rotate');
        const t0 = performance.now();
        try {
          if (!env.kube) ctx.out.warn(`the cluster is not reachable (${env.kubeProblem}): Vault's values are rotated, but no pod can be made to see them`);
          const r = await rotateSecrets(env, selection, { timeoutMs });
          const ms = Math.round(performance.now() - t0);
          if (ctx.flags.json) ctx.out.result({ ok: true, action: 'rotate', ms, cluster: env.plan.cluster.name, clusterReachable: !!env.kube, ...r });
          else {
            if (r.unsealed) ctx.out.info('Vault was sealed (restart?); unsealed it from the stored key first.');
            printSeed(ctx, r.seed);
            printConsumers(ctx, r.consumers);
            const restarted = r.consumers.filter((c) => c.action.startsWith('restarted')).length;
            ctx.out.info(`rotated ${r.seed.counts.rotated} value(s) in Vault; ${r.consumers.length} consumer(s) checked, ${restarted} Deployment(s) restarted; ${env.kube ? 'every pod holds the new values' : 'no pod checked (no cluster)'}; ${(ms / 1000).toFixed(1)} s`);
          }
          return 0;
        } finally {
          release();
        }
      } finally {
        await env.close();
      }
    },
  },
];
