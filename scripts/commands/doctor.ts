// `vaultlab doctor`: the machine before a deploy, the environment after; each finding with its fix.
import type { Command } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';

export const commands: Command[] = [
  {
    name: 'doctor',
    summary: 'Check this machine before a deploy, and the environment after one; every finding with its fix',
    description: 'Machine: Docker running and its memory, kind/helm versions, free host ports, inotify limits, disk, state file permissions. Environment (when deployed): sealed Vault (a demo Vault is unsealed from the stored key), ESO errors decoded into causes. Exits 1 when a finding is an error.',
    options: { ...VAULT_OPTIONS, machine: { type: 'boolean', description: 'only the machine checks' } },
    async run(ctx) {
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { doctorMachine, doctorEnvironment } = await import('../lifecycle/doctor.ts');
      const { collectStatus } = await import('../lifecycle/status.ts');
      const env = await connectEnvironment(ctx, { needKube: !ctx.options.machine });
      try {
        const machine = await doctorMachine(env.plan, env.state);
        const deployed = !ctx.options.machine && (env.kube !== undefined || env.state.has('vault-init.json'));
        const environment = deployed ? doctorEnvironment(env.plan, await collectStatus(env)) : [];
        const all = [...machine, ...environment];
        const errors = all.filter((f) => !f.ok && f.severity === 'error');
        if (ctx.flags.json) ctx.out.result({ ok: errors.length === 0, machine, environment });
        else {
          ctx.out.info('Machine:');
          for (const f of machine) ctx.out.info(`  ${f.ok ? 'ok  ' : f.severity === 'error' ? 'FAIL' : 'warn'} ${f.what}${f.ok || !f.fix ? '' : `\n       fix: ${f.fix}`}`);
          ctx.out.info(deployed ? 'Environment:' : `Environment: not deployed yet (${env.kubeProblem ?? 'no state'}); run \`vaultlab deploy\``);
          for (const f of environment) ctx.out.info(`  ${f.ok ? 'ok  ' : 'FAIL'} ${f.what}${f.ok || !f.fix ? '' : `\n       fix: ${f.fix}`}`);
          ctx.out.info(errors.length ? `${errors.length} problem(s) found.` : 'No problems found.');
        }
        return errors.length ? 1 : 0;
      } finally {
        await env.close();
      }
    },
  },
];
