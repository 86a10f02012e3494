// Small pieces the Vault commands share.
import { readFileSync } from 'node:fs';
import type { CommandContext } from '../commands/types.ts';
import type { KubernetesAuthTarget } from './configure.ts';
import type { SeedReport } from './seed.ts';
import { UsageError } from '../lib/errors.ts';

export function kubeTarget(ctx: CommandContext): KubernetesAuthTarget | undefined {
  const host = ctx.options['kube-host'] as string | undefined;
  const caFile = ctx.options['kube-ca-file'] as string | undefined;
  if (!host && !caFile) return undefined;
  if (!host || !caFile) throw new UsageError('--kube-host and --kube-ca-file go together');
  return { host, caPem: readFileSync(caFile, 'utf8') };
}

export function printSeed(ctx: CommandContext, r: SeedReport): void {
  for (const e of r.entries) ctx.out.info(`  ${e.action.padEnd(9)} ${r.mount}/${e.path}  ${e.key}${e.verified ? '' : '  (exists; value not readable with this token)'}`);
  ctx.out.info(`seed: ${r.counts.created} created, ${r.counts.updated} updated, ${r.counts.rotated} rotated, ${r.counts.unchanged} unchanged (${r.writes} write request(s); ${checked(r)})`);
}

function checked(r: SeedReport): string {
  const { read, byVersion, hashesVouched } = r.checked;
  const paths = byVersion === 0 ? `${read} path(s) read` : `${byVersion} path(s) checked by version${read ? `, ${read} read` : ''}`;
  return hashesVouched ? `${paths}; ${hashesVouched} bcrypt hash(es) known to verify at their version` : paths;
}
