// `vaultlab status`: health of the whole environment; exit 1 when anything is unhealthy.
import type { Command } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';

export const commands: Command[] = [
  {
    name: 'status',
    summary: 'Show the health of cluster, Vault, ESO, SecretStores, ExternalSecrets and sample apps',
    description: [
      'Cluster; Vault initialized/sealed/version, active or standby, HA members; engines and auth mounts;',
      'ESO; each SecretStore and ExternalSecret with its condition reason; sample apps and their pods; URLs.',
      'A demo Vault found sealed after a Docker or laptop restart is unsealed from the stored key',
      '(--no-unseal only reports it). Exits 1 when anything is unhealthy, so CI can gate on it;',
      '--json gives the same checks, with the time they took.',
    ].join('\n'),
    options: { ...VAULT_OPTIONS, 'no-unseal': { type: 'boolean', description: 'report a sealed Vault without unsealing it' } },
    async run(ctx) {
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { collectStatus, formatStatus } = await import('../lifecycle/status.ts');
      const env = await connectEnvironment(ctx);
      try {
        const report = await collectStatus(env, { unseal: !ctx.options['no-unseal'] });
        if (ctx.flags.json) ctx.out.result({ ok: report.healthy, exitCode: report.healthy ? 0 : 1, ...report });
        else for (const l of formatStatus(report)) ctx.out.info(l);
        return report.healthy ? 0 : 1;
      } finally {
        await env.close();
      }
    },
  },
];
