// Verify: each used delivery checks what it delivered against Vault (SHA-256 digests compared,
// values never printed): ESO every ExternalSecret synced and its target Secret equal to Vault,
// read with ESO's own identity; the injector the file each pod holds. Sample apps Available.
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { guardPods } from '../adapters/kube.ts';
import { VaultlabError } from '../lib/errors.ts';
import { appsOf, usedDeliveries } from '../deliveries/index.ts';
import type { Delivery, DeliveryCheck, DeliveryName } from '../deliveries/types.ts';

export { sha256 } from '../lib/digest.ts';

const WHAT: Record<DeliveryName, string> = { eso: 'Secret(s)', injector: 'file(s)', vso: 'VSO Secret(s)' };

export const verify: TaskStep<DeployContext> = {
  name: 'verify',
  title: 'Verify: delivered secrets match Vault (ExternalSecrets synced, injected files), apps available',
  async run(ctx, report, signal) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    const checks: DeliveryCheck[] = [];
    const counts: string[] = [];
    for (const d of usedDeliveries(plan) as Delivery<DeliveryName>[]) {
      const apps = appsOf(plan.apps, d.name);
      if (apps.length === 0) continue;
      const mine = await (await d.runtime()).verify(ctx, apps as never[], report, signal);
      checks.push(...mine.map((c) => ({ ...c, delivery: c.delivery ?? d.name })));
      if (mine.length || d.name === 'eso') counts.push(`${mine.length} ${WHAT[d.name]}`);
    }
    if (!ctx.options.skipSamples) {
      for (const ns of plan.namespaces) {
        for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
          await guardPods(kube, ns.name, `app.kubernetes.io/name=${s.app}`, (signal) =>
            kube.waitForCondition('apps/v1', 'Deployment', ns.name, s.app, 'Available', { timeoutMs: ctx.options.timeoutMs, signal }),
          );
        }
      }
    }
    ctx.summary.verify = checks;
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) {
      throw new VaultlabError(`${bad.length} ${bad.every((b) => b.delivery === 'eso') ? 'Secret(s) do' : 'delivered secret(s) do'} not match Vault: ${bad.map((b) => `${b.namespace}/${b.target} (${b.problems.join('; ')})`).join(', ')}`, { hint: 'Force a re-sync with `vaultlab reset --secrets`, then check `vaultlab status`.' });
    }
    return `${counts.join(', ') || '0 Secret(s)'} match Vault`;
  },
};
