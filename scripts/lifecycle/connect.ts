// Reaching an existing environment: config -> plan, state dir, the Kubernetes API (if the
// cluster is there) and Vault (NodePort in demo, port-forward in production, or --vault-addr).
import { existsSync, readFileSync } from 'node:fs';
import type { CommandContext } from '../commands/types.ts';
import { loadOptions } from '../commands/types.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { buildPlan } from '../plan/build.ts';
import type { Plan } from '../plan/types.ts';
import { stateDirFor, type StateDir } from '../lib/state.ts';
import { VaultClient, vaultEnv } from '../adapters/vault.ts';
import { Kube } from '../adapters/kube.ts';
import type { PortForward } from '../adapters/portforward.ts';
import { resolveToken } from '../vault/token.ts';

export interface Environment {
  loaded: LoadedConfig;
  plan: Plan;
  state: StateDir;
  kube: Kube | undefined;
  /** Why the cluster could not be reached. */
  kubeProblem: string | undefined;
  vault: VaultClient;
  forwards: PortForward[];
  close(): Promise<void>;
}

export async function connectKube(plan: Plan, state: StateDir): Promise<{ kube?: Kube; problem?: string }> {
  try {
    if (plan.cluster.provider === 'kind') {
      const file = state.file('kubeconfig');
      if (!existsSync(file)) {
        const { kindClusters, kindKubeconfig } = await import('../adapters/kind.ts');
        const clusters = await kindClusters();
        if (!clusters.includes(plan.cluster.name)) return { problem: `kind cluster "${plan.cluster.name}" does not exist` };
        await kindKubeconfig(plan.cluster.name, state.ensure().file('kubeconfig'));
      }
      return { kube: await Kube.connect({ kubeconfig: file }) };
    }
    return { kube: await Kube.connect({ kubeconfig: plan.cluster.kubeconfig, context: plan.cluster.context }) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

export async function connectEnvironment(ctx: CommandContext, opts: { needKube?: boolean } = {}): Promise<Environment> {
  const loaded = loadConfig(loadOptions(ctx.flags));
  const plan = buildPlan(loaded);
  const state = stateDirFor(plan.cluster.name, ctx.options['state-dir'] as string | undefined);
  const { kube, problem } = opts.needKube === false ? { kube: undefined, problem: 'not needed' } : await connectKube(plan, state);
  const env = vaultEnv();
  const forwards: PortForward[] = [];
  let address = (ctx.options['vault-addr'] as string | undefined) ?? env.address;
  let caPem: string | undefined;
  const caFile = (ctx.options['ca-cert'] as string | undefined) ?? env.caCertFile ?? (state.has('tls/ca.crt') ? state.file('tls/ca.crt') : undefined);
  if (caFile) caPem = readFileSync(caFile, 'utf8');
  if (!address) {
    if (plan.vault.tls && kube && !plan.vault.external) {
      const { portForward } = await import('../adapters/portforward.ts');
      const fwd = await portForward(kube, plan.vault.namespace, `${plan.vault.release}-0`, 8200).catch(() => undefined);
      if (fwd) {
        forwards.push(fwd);
        address = `https://127.0.0.1:${fwd.port}`;
      }
    }
    address ??= plan.vault.hostAddress;
  }
  const vault = new VaultClient({ address, caPem, attempts: 2, timeoutMs: 5000 });
  const tok = resolveToken(state, { flag: ctx.options.token as string | undefined, env: env.token });
  if (tok) vault.setToken(tok.token);
  return {
    loaded,
    plan,
    state,
    kube,
    kubeProblem: problem,
    vault,
    forwards,
    async close() {
      vault.close();
      await Promise.all(forwards.map((f) => f.close()));
    },
  };
}
