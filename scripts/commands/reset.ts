// `vaultlab reset`: --secrets puts every secret back to its configured state in seconds;
// --full destroys and redeploys everything, Vault's data included, after one confirmation.
import type { Command, CommandContext } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';
import { UsageError } from '../lib/errors.ts';

async function confirm(ctx: CommandContext, question: string): Promise<boolean> {
  if (ctx.flags.yes || ctx.flags.ci) return true;
  if (!process.stdin.isTTY) throw new UsageError('reset --full needs a confirmation and there is no terminal to ask', 'Pass --yes.');
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

export const commands: Command[] = [
  {
    name: 'reset',
    summary: 'Put secrets back to their configured state (--secrets) or rebuild everything (--full)',
    description: [
      '--secrets: demo literals back to their values, random values regenerated, every ExternalSecret',
      'forced to re-sync (annotation force-sync); --restart also restarts the sample apps. No cluster recreation.',
      '--full: destroy and deploy again from scratch, Vault\'s data volume included. Asks once (not with --yes or in CI).',
    ].join('\n'),
    options: {
      ...VAULT_OPTIONS,
      secrets: { type: 'boolean', description: 'reset the secrets only (seconds)' },
      full: { type: 'boolean', description: 'destroy and redeploy everything' },
      restart: { type: 'boolean', description: 'with --secrets: restart the workloads that consume the Secrets' },
    },
    async run(ctx) {
      if (!!ctx.options.secrets === !!ctx.options.full) throw new UsageError('reset needs exactly one of --secrets or --full', 'vaultlab reset --secrets   (seconds), or vaultlab reset --full   (rebuild)');
      if (ctx.options.full) {
        if (!(await confirm(ctx, `Destroy and redeploy the whole environment, Vault data included?`))) {
          ctx.out.info('Nothing done.');
          return 0;
        }
        const destroy = (await import('./destroy.ts')).commands[0]!;
        const deploy = (await import('./deploy.ts')).commands[0]!;
        const code = await destroy.run({ ...ctx, flags: { ...ctx.flags, yes: true }, options: {} });
        if (code !== 0) return code;
        return deploy.run({ ...ctx, options: {} });
      }
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { resetSecrets } = await import('../lifecycle/reset.ts');
      const { printSeed } = await import('../vault/cli-helpers.ts');
      const env = await connectEnvironment(ctx);
      const release = env.state.lock('reset --secrets');
      const t0 = performance.now();
      try {
        const r = await resetSecrets(env, { restart: !!ctx.options.restart });
        const ms = Math.round(performance.now() - t0);
        if (ctx.flags.json) ctx.out.result({ ok: true, ms, ...r });
        else {
          printSeed(ctx, r.seed);
          ctx.out.info(`re-sync forced on ${r.resynced.length} ExternalSecret(s)${r.restarted.length ? `; restarted ${r.restarted.join(', ')}` : ''}${env.kube ? '' : ` (cluster not reachable: ${env.kubeProblem})`} in ${(ms / 1000).toFixed(1)} s`);
        }
        return 0;
      } finally {
        release();
        await env.close();
      }
    },
  },
];
