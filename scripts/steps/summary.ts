// What a user reads at the end: where things are, what synced, how to log in.
import type { DeployContext } from './context.ts';
import type { SecretCheck } from './verify.ts';

export function summaryLines(ctx: DeployContext): string[] {
  const { plan } = ctx;
  const checks = (ctx.summary.verify as SecretCheck[] | undefined) ?? [];
  const lines = [
    '',
    `vaultlab ${plan.profile} environment "${plan.cluster.name}" is ready.`,
    plan.vault.tls
      ? `  Vault:      no NodePort in production; open the UI with a port-forward: kubectl -n ${plan.vault.namespace} port-forward svc/${plan.vault.release} 8200 (CA: ${ctx.state.file('tls/ca.crt')})`
      : `  Vault UI:   ${plan.vault.hostAddress}/ui`,
    ...(plan.namespaces.some((n) => n.samples.some((s) => s.kind === 'dashboard')) ? [`  Dashboard:  http://localhost:${plan.cluster.hostPorts.http}`] : []),
    `  Synced:     ${checks.map((c) => `${c.namespace}/${c.target}`).join(', ') || '-'}`,
    `  kubeconfig: ${ctx.kubeconfigPath ?? '-'}`,
  ];
  if (plan.profile === 'demo') {
    lines.push(`  Log in:     root token and unseal key in ${ctx.state.file('vault-init.json')} (0600): VAULT_TOKEN=$(jq -r .root_token ${ctx.state.file('vault-init.json')})`);
  } else {
    lines.push(`  Keys:       ${ctx.state.file('vault-init.json')} holds the 5 key shares: move it offline now. Day-2 runs use the vaultlab-setup token.`);
  }
  return lines;
}
