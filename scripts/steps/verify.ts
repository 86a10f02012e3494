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
    // Every delivery at once, and every sample's Available beside them (each waits on its own
    // objects and pods; a warm re-deploy waits for the slowest, not for the sum). The checks and
    // counts keep the deliveries' order.
    const used = (usedDeliveries(plan) as Delivery<DeliveryName>[]).map((d) => ({ d, apps: appsOf(plan.apps, d.name) })).filter((x) => x.apps.length > 0);
    // A delivery that fails ends the samples' waits too (nothing is left watching).
    const done = new AbortController();
    const samplesAvailable = ctx.options.skipSamples
      ? Promise.resolve()
      : Promise.all(
          plan.namespaces.flatMap((ns) =>
            ns.samples
              .filter((x) => x.kind !== 'argocd')
              .map((s) => guardPods(kube, ns.name, `app.kubernetes.io/name=${s.app}`, (sig) => kube.waitForCondition('apps/v1', 'Deployment', ns.name, s.app, 'Available', { timeoutMs: ctx.options.timeoutMs, signal: AbortSignal.any([sig, done.signal]) }))),
          ),
        );
    samplesAvailable.catch(() => undefined);
    let perDelivery: DeliveryCheck[][];
    try {
      perDelivery = await Promise.all(used.map(async ({ d, apps }) => (await d.runtime()).verify(ctx, apps as never[], report, signal)));
    } catch (err) {
      done.abort();
      throw err;
    }
    used.forEach(({ d }, i) => {
      const mine = perDelivery[i]!;
      checks.push(...mine.map((c) => ({ ...c, delivery: c.delivery ?? d.name })));
      if (mine.length || d.name === 'eso') counts.push(`${mine.length} ${WHAT[d.name]}`);
    });
    await samplesAvailable;
    ctx.summary.verify = checks;
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) {
      throw new VaultlabError(`${bad.length} ${bad.every((b) => b.delivery === 'eso') ? 'Secret(s) do' : 'delivered secret(s) do'} not match Vault: ${bad.map((b) => `${b.namespace}/${b.target} (${b.problems.join('; ')})`).join(', ')}`, { hint: 'Force a re-sync with `vaultlab reset --secrets`, then check `vaultlab status`.' });
    }
    return `${counts.join(', ') || '0 Secret(s)'} match Vault`;
  },
};
