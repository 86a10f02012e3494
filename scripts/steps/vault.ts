// Vault up inside the cluster: wait for the pod to run (it is not Ready while sealed), then
// init / unseal / configure / seed over the HTTP API (NodePort in demo, a port-forward in
// production), never `kubectl exec` with a token in argv. Then wait for Ready.
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { VaultClient, vaultEnv } from '../adapters/vault.ts';
import { portForward } from '../adapters/portforward.ts';
import { vaultUp } from '../vault/up.ts';
import { unsealFollowers } from '../vault/ha.ts';
import { readInit } from '../vault/keys.ts';
import { vaultCaPem } from './install.ts';
import { MANAGED_BY } from '../plan/manifests.ts';
import type { Kube } from '../adapters/kube.ts';

export const IN_CLUSTER_API = 'https://kubernetes.default.svc';

async function clientFor(ctx: DeployContext, kube: Kube, pod: string): Promise<VaultClient> {
  const { plan } = ctx;
  if (plan.vault.external) return new VaultClient({ address: plan.vault.hostAddress });
  if (!plan.vault.tls) return new VaultClient({ address: plan.vault.hostAddress });
  const fwd = await portForward(kube, plan.vault.namespace, pod, 8200);
  ctx.forwards.push(fwd);
  return new VaultClient({ address: `https://127.0.0.1:${fwd.port}`, caPem: vaultCaPem(ctx) });
}

export const vault: TaskStep<DeployContext> = {
  name: 'vault',
  title: 'Vault: init, unseal, configure, seed',
  async run(ctx, report) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    const pods = Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${plan.vault.release}-${i}`);
    if (!plan.vault.external) {
      report(`waiting for pod ${pods[0]} to run`);
      await kube.waitFor('v1', 'Pod', plan.vault.namespace, pods[0]!, (p) => p.status?.phase === 'Running', 'Running', { timeoutMs: ctx.options.timeoutMs });
    }
    const leader = await clientFor(ctx, kube, pods[0]!);
    ctx.vault = leader;
    const info = kube.clusterInfo();
    const env = vaultEnv();
    report('init, unseal, configure, seed');
    const r = await vaultUp(leader, plan, ctx.state, {
      token: { env: env.token },
      ...(ctx.options.keys ? { keys: ctx.options.keys } : {}),
      passwords: ctx.loaded.passwords,
      configure: { kubernetes: info.caPem ? { host: IN_CLUSTER_API, caPem: info.caPem } : undefined },
      hooks: {
        persistInCluster: async (init) => {
          await kube.apply([
            {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: { name: plan.vault.init.secretName, namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
              data: { 'vault-init.json': Buffer.from(JSON.stringify(init)).toString('base64') },
            },
          ]);
          return `Secret ${plan.vault.namespace}/${plan.vault.init.secretName}`;
        },
      },
    });
    if (plan.vault.ha.enabled && !plan.vault.external) {
      const keys = ctx.options.keys ?? readInit(ctx.state)?.keys_base64;
      if (keys) {
        report('unsealing the Raft followers');
        for (const pod of pods.slice(1)) await kube.waitFor('v1', 'Pod', plan.vault.namespace, pod, (p) => p.status?.phase === 'Running', 'Running', { timeoutMs: ctx.options.timeoutMs });
        const followers = await Promise.all(pods.slice(1).map((p) => clientFor(ctx, kube, p)));
        await unsealFollowers(followers, keys);
      }
    }
    if (!plan.vault.external) {
      for (const pod of pods) await kube.waitForCondition('v1', 'Pod', plan.vault.namespace, pod, 'Ready', { timeoutMs: ctx.options.timeoutMs });
    }
    ctx.summary.vault = { init: r.init.action, seed: r.seed?.counts, configure: r.configure.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped').length };
    const s = r.seed?.counts;
    return `${r.init.action}; ${r.configure.filter((i) => i.action === 'created' || i.action === 'updated').length} config change(s); seed ${s ? `${s.created} created, ${s.updated} updated, ${s.unchanged} unchanged` : 'skipped'}`;
  },
};
