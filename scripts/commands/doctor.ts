// `vaultlab doctor`: the machine before a deploy, the environment after; each finding with its fix.
import type { Command } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';

export const commands: Command[] = [
  {
    name: 'doctor',
    summary: 'Check this machine before a deploy, and the environment after one; every finding with its fix',
    description: [
      'Machine: Docker running and its memory, kind/helm versions, free host ports, inotify limits',
      '(kind needs raised ones), disk space, private state files.',
      'Environment (once deployed): a sealed Vault (a demo Vault is unsealed from the stored key; production',
      'says which command unseals it), ESO errors decoded into causes (permission denied: the role, policy',
      'and audience; secret not found: the path and key). Exits 1 when a finding is an error.',
    ].join('\n'),
    options: { ...VAULT_OPTIONS, machine: { type: 'boolean', description: 'only the machine checks' } },
    async run(ctx) {
      const t0 = performance.now();
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { doctorMachine, doctorEnvironment, formatFindings } = await import('../lifecycle/doctor.ts');
      const { collectStatus } = await import('../lifecycle/status.ts');
      const env = await connectEnvironment(ctx, { needKube: !ctx.options.machine });
      try {
        const machine = await doctorMachine(env.plan, env.state);
        // Deployed: the cluster answers, or this machine holds its state (then an unreachable cluster is a finding).
        const deployed = !ctx.options.machine && (env.kube !== undefined || env.state.has('vault-init.json') || env.state.has('cluster.json'));
        const status = deployed ? await collectStatus(env) : undefined;
        const environment = status ? await doctorEnvironment(env.plan, status, { kube: env.kube, vault: env.vault }) : [];
        const all = [...machine, ...environment];
        const errors = all.filter((f) => !f.ok && f.severity === 'error');
        const warnings = all.filter((f) => !f.ok && f.severity === 'warning');
        const ms = Math.round(performance.now() - t0);
        if (ctx.flags.json) {
          ctx.out.result({ ok: errors.length === 0, exitCode: errors.length ? 1 : 0, errors: errors.length, warnings: warnings.length, ms, machine, environment, deployed, ...(status ? { vault: status.vault } : {}) });
        } else {
          ctx.out.info(`Machine (${env.plan.cluster.provider === 'kind' ? 'kind' : 'existing cluster'}):`);
          for (const l of formatFindings(machine)) ctx.out.info(l);
          if (ctx.options.machine) ctx.out.info('Environment: not checked (--machine)');
          else if (!deployed) ctx.out.info(`Environment: not deployed yet (${env.kubeProblem ?? 'no state'}); run \`vaultlab deploy\``);
          else {
            ctx.out.info(`Environment "${env.plan.cluster.name}":`);
            for (const l of formatFindings(environment)) ctx.out.info(l);
          }
          ctx.out.info(errors.length || warnings.length ? `${errors.length} error(s), ${warnings.length} warning(s).` : 'No problems found.');
        }
        return errors.length ? 1 : 0;
      } finally {
        await env.close();
      }
    },
  },
];
