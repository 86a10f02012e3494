// Vault and ESO from their official Helm charts, in parallel. ESO waits (--wait gates on its
// webhook and cert controller); Vault cannot be Ready before it is unsealed, so it does not.
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { vaultValues, renderArtifacts } from '../plan/render.ts';
import { helmRepo, helmUpgradeInstall } from '../adapters/helm.ts';
import { parse as parseYaml } from 'yaml';
import { ensureVaultTls, tlsSecrets } from '../tls/certs.ts';

export const install: TaskStep<DeployContext> = {
  name: 'install',
  title: 'Install Vault and External Secrets Operator (Helm)',
  async run(ctx) {
    const kube = need(ctx.kube, 'kube');
    const kubeconfig = need(ctx.kubeconfigPath, 'kubeconfig');
    const { plan } = ctx;
    const esoValues = parseYaml(renderArtifacts(plan).get('helm/eso-values.yaml')!) as Record<string, unknown>;
    const jobs: Promise<string>[] = [];
    if (!plan.vault.external) {
      jobs.push(
        (async () => {
          await helmRepo(plan.vault.chart);
          await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.vault.namespace } }]);
          if (plan.vault.tls) {
            const tls = ensureVaultTls(plan, ctx.state);
            await kube.apply(tlsSecrets(plan, tls).filter((s) => s.metadata.namespace === plan.vault.namespace));
          }
          const r = await helmUpgradeInstall({ name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values: vaultValues(plan), kubeconfig });
          return `Vault ${r}`;
        })(),
      );
    }
    jobs.push(
      (async () => {
        await helmRepo(plan.eso.chart);
        const r = await helmUpgradeInstall({ name: plan.eso.release, namespace: plan.eso.namespace, chart: plan.eso.chart, values: esoValues, kubeconfig, wait: true, timeoutSeconds: Math.round(ctx.options.timeoutMs / 1000) });
        return `ESO ${r}`;
      })(),
    );
    return (await Promise.all(jobs)).join(', ');
  },
};
