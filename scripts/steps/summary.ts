// What a user reads at the end: where things are, what synced, how to log in. The summary step
// puts the same facts into the --json report; summaryLines() prints them for people.
import type { TaskStep } from '../lib/tasks.ts';
import type { DeployContext } from './context.ts';
import type { DeliveryCheck } from '../deliveries/types.ts';

export interface Access {
  /** Vault's UI from this machine, or how to open it (production: port-forward). */
  vaultUi: string;
  vaultUiHint?: string;
  dashboard?: string;
  synced: string[];
  kubeconfig?: string;
  login: string;
}

export function accessFacts(ctx: Pick<DeployContext, 'plan' | 'state' | 'summary' | 'kubeconfigPath'>): Access {
  const { plan } = ctx;
  const checks = (ctx.summary.verify as DeliveryCheck[] | undefined) ?? [];
  const init = ctx.state.file('vault-init.json');
  const direct = plan.vault.external || (!plan.vault.tls && plan.cluster.provider === 'kind');
  const hasDashboard = plan.namespaces.some((n) => n.samples.some((s) => s.kind === 'dashboard'));
  return {
    vaultUi: direct ? `${plan.vault.hostAddress}/ui` : `https://127.0.0.1:8200/ui`,
    ...(direct
      ? {}
      : { vaultUiHint: `kubectl -n ${plan.vault.namespace} port-forward svc/${plan.vault.release} 8200${plan.vault.tls ? ` (CA: ${ctx.state.file('tls/ca.crt')})` : ''}` }),
    ...(hasDashboard && plan.cluster.provider === 'kind' ? { dashboard: `http://localhost:${plan.cluster.hostPorts.http}` } : {}),
    synced: checks.filter((c) => c.ok).map((c) => `${c.namespace}/${c.target}`),
    ...(ctx.kubeconfigPath ? { kubeconfig: ctx.kubeconfigPath } : {}),
    login:
      plan.profile === 'demo'
        ? `root token in ${init} (0600): export VAULT_TOKEN=$(jq -r .root_token ${init})`
        : `${init} holds the ${plan.vault.init.shares} key shares: move it offline now. Day-2 runs use the vaultlab-setup token.`,
  };
}

export const summary: TaskStep<DeployContext> = {
  name: 'summary',
  title: 'Summary',
  async run(ctx) {
    const a = accessFacts(ctx);
    ctx.summary.access = a;
    return `${a.synced.length} Secret(s) synced; Vault UI ${a.vaultUi}${a.dashboard ? `; dashboard ${a.dashboard}` : ''}`;
  },
};

export function summaryLines(ctx: Pick<DeployContext, 'plan' | 'state' | 'summary' | 'kubeconfigPath'>): string[] {
  const { plan } = ctx;
  const a = (ctx.summary.access as Access | undefined) ?? accessFacts(ctx);
  return [
    '',
    `vaultlab ${plan.profile} environment "${plan.cluster.name}" is ready.`,
    `  Vault UI:   ${a.vaultUi}${a.vaultUiHint ? ` after: ${a.vaultUiHint}` : ''}`,
    ...(a.dashboard ? [`  Dashboard:  ${a.dashboard}`] : []),
    `  Synced:     ${a.synced.join(', ') || '-'}`,
    `  kubeconfig: ${a.kubeconfig ?? '-'}${a.kubeconfig && plan.cluster.provider === 'kind' ? `  (export KUBECONFIG=${a.kubeconfig})` : ''}`,
    `  ${plan.profile === 'demo' ? 'Log in:' : 'Keys:  '}     ${a.login}`,
  ];
}
