// reset --secrets: every seeded secret back to its configured state (literals restored, random
// values regenerated), ESO forced to re-sync, consuming workloads optionally restarted.
import type { Environment } from './connect.ts';
import { seedVault, type SeedReport } from '../vault/seed.ts';
import { VaultlabError } from '../lib/errors.ts';

export const FORCE_SYNC_ANNOTATION = 'force-sync';
export const RESTARTED_AT_ANNOTATION = 'vaultlab.dev/restartedAt';

export interface ResetReport {
  seed: SeedReport;
  resynced: string[];
  restarted: string[];
}

export async function resetSecrets(env: Environment, opts: { restart?: boolean; now?: Date } = {}): Promise<ResetReport> {
  if (!env.vault.hasToken()) {
    throw new VaultlabError(`no token for Vault at ${env.vault.address}`, { hint: 'Set VAULT_TOKEN, or run from the directory holding .vaultlab/<cluster>/ (or --state-dir).' });
  }
  const seed = await seedVault(env.vault, env.plan, env.loaded.passwords, { rotate: true });
  const stamp = (opts.now ?? new Date()).toISOString();
  const resynced: string[] = [];
  const restarted: string[] = [];
  if (env.kube) {
    for (const ns of env.plan.namespaces) {
      for (const es of ns.externalSecrets) {
        if (!(await env.kube.get('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name))) continue;
        // ESO re-syncs an ExternalSecret whose force-sync annotation changes.
        await env.kube.mergePatch('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name, { metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: stamp } } });
        resynced.push(`${ns.name}/${es.name}`);
      }
      if (opts.restart) {
        for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
          if (!(await env.kube.get('apps/v1', 'Deployment', ns.name, s.app))) continue;
          await env.kube.mergePatch('apps/v1', 'Deployment', ns.name, s.app, { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: stamp } } } } });
          restarted.push(`${ns.name}/${s.app}`);
        }
      }
    }
  }
  return { seed, resynced, restarted };
}
