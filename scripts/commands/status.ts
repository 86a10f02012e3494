// `vaultlab status`: health of the whole environment; exit 1 when anything is unhealthy.
import type { Command } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';

export const commands: Command[] = [
  {
    name: 'status',
    summary: 'Show the health of cluster, Vault, ESO, SecretStores, ExternalSecrets and sample apps',
    description: 'Cluster; Vault initialized/sealed/version and HA members; engines and auth mounts; ESO; each SecretStore and ExternalSecret with its condition reason; sample apps; URLs. A demo Vault found sealed after a restart is unsealed from the stored key. Exits 1 when anything is unhealthy, so CI can gate on it.',
    options: { ...VAULT_OPTIONS },
    async run(ctx) {
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { collectStatus, formatStatus } = await import('../lifecycle/status.ts');
      const env = await connectEnvironment(ctx);
      try {
        const report = await collectStatus(env);
        if (ctx.flags.json) ctx.out.result({ ok: report.healthy, ...report });
        else for (const l of formatStatus(report)) ctx.out.info(l);
        return report.healthy ? 0 : 1;
      } finally {
        await env.close();
      }
    },
  },
];
