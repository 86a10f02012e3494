// Reaching an existing environment: config -> plan, state dir, the Kubernetes API (if the
// cluster is there and answers) and Vault (NodePort in demo, port-forward in production, or
// --vault-addr).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandContext } from '../commands/types.ts';
import { loadOptions } from '../commands/types.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { buildPlan } from '../plan/build.ts';
import type { Plan } from '../plan/types.ts';
import { stateDirFor, type StateDir } from '../lib/state.ts';
import { VaultClient, vaultEnv } from '../adapters/vault.ts';
import { Kube } from '../adapters/kube.ts';
import type { PortForward } from '../adapters/portforward.ts';
import { exec } from '../adapters/exec.ts';
import { DOCKER_FIX } from '../adapters/docker.ts';
import { VaultlabError } from '../lib/errors.ts';
import { resolveToken } from '../vault/token.ts';

export interface Environment {
  loaded: LoadedConfig;
  plan: Plan;
  state: StateDir;
  kube: Kube | undefined;
  /** Why the cluster could not be reached. */
  kubeProblem: string | undefined;
  /** The command or step that fixes kubeProblem. */
  kubeFix?: string | undefined;
  vault: VaultClient;
  forwards: PortForward[];
  close(): Promise<void>;
}

export type KindList =
  | { ok: true; clusters: string[] }
  | { ok: false; reason: 'no-kind' | 'no-docker' | 'other'; problem: string; fix: string };

/** `kind get clusters`, telling "kind is not installed" and "Docker is not running" apart. */
export async function listKindClusters(): Promise<KindList> {
  const r = await exec('kind', ['get', 'clusters'], { allowFail: true, timeoutMs: 30_000 }).catch((err: Error) => ({ code: 127, stdout: '', stderr: err.message }));
  if (r.code === 0) return { ok: true, clusters: r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^No kind clusters/.test(l)) };
  const text = `${r.stderr}\n${r.stdout}`;
  if (r.code === 127 || /command not found|ENOENT/.test(text)) return { ok: false, reason: 'no-kind', problem: 'kind is not installed', fix: 'Install kind >= 0.30: https://kind.sigs.k8s.io/docs/user/quick-start/#installation' };
  if (/Cannot connect to the Docker daemon|docker daemon|Is the docker daemon running|permission denied.*docker\.sock|error during connect/i.test(text)) {
    return { ok: false, reason: 'no-docker', problem: 'Docker is not running, so kind cannot reach its clusters', fix: DOCKER_FIX };
  }
  const line = text.trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit ${r.code}`;
  return { ok: false, reason: 'other', problem: `\`kind get clusters\` failed: ${line}`, fix: 'Run `kind get clusters` to see why; `vaultlab doctor` checks the machine.' };
}

/** Does the API server answer? A quick read every account may do. */
async function probe(kube: Kube): Promise<string | undefined> {
  try {
    await kube.list('v1', 'Namespace');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The state dir's kind kubeconfig, when the API server it names is ready and trusts it. */
export async function storedKindKubeconfig(state: StateDir): Promise<Kube | undefined> {
  if (!state.has('kubeconfig')) return undefined;
  const kube = await Kube.connect({ kubeconfig: state.file('kubeconfig') }).catch(() => undefined);
  return kube && (await kube.isReady()) ? kube : undefined;
}

export interface KubeConnection {
  kube?: Kube;
  problem?: string;
  fix?: string;
  /** kind: the cluster does not exist (as opposed to: cannot tell). */
  missing?: boolean;
}

/**
 * kind: the cluster must exist; its kubeconfig is refreshed into the state dir (or, with
 * `persist: false`, a temporary file: destroy must not create state for a cluster it refuses).
 * existing: the configured kubeconfig and context. Either way the API server must answer.
 */
export async function connectKube(
  plan: Plan,
  state: StateDir,
  opts: { persist?: boolean; readyTimeoutMs?: number; onWait?: () => void } = {},
): Promise<KubeConnection> {
  try {
    let kube: Kube;
    if (plan.cluster.provider === 'kind' && opts.persist !== false) {
      // The kubeconfig kind gave the last run, if its cluster still answers with the same CA:
      // two `kind` processes (each a `docker` call) saved. A recreated cluster has a new CA and
      // port, a deleted one does not answer: then the kubeconfig is refreshed below.
      const stored = await storedKindKubeconfig(state);
      if (stored) return { kube: stored };
    }
    if (plan.cluster.provider === 'kind') {
      const list = await listKindClusters();
      if (!list.ok) return { problem: list.problem, fix: list.fix };
      if (!list.clusters.includes(plan.cluster.name)) return { missing: true, problem: `kind cluster "${plan.cluster.name}" does not exist`, fix: 'vaultlab deploy' };
      const { kindKubeconfig } = await import('../adapters/kind.ts');
      if (opts.persist === false && !state.has('kubeconfig')) {
        const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kubeconfig-'));
        try {
          const file = await kindKubeconfig(plan.cluster.name, join(dir, 'kubeconfig'));
          kube = await Kube.connect({ kubeconfig: file });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      } else {
        // Refreshed every time: a cluster recreated under the same name has a new CA and port.
        const file = await kindKubeconfig(plan.cluster.name, state.ensure().file('kubeconfig'));
        kube = await Kube.connect({ kubeconfig: file });
      }
    } else {
      if (plan.cluster.kubeconfig && !existsSync(plan.cluster.kubeconfig)) return { problem: `kubeconfig ${plan.cluster.kubeconfig} does not exist`, fix: 'Set [cluster] kubeconfig to an existing file (or KUBECONFIG).' };
      kube = await Kube.connect({ kubeconfig: plan.cluster.kubeconfig, context: plan.cluster.context });
    }
    const down = await kube.waitReady({ timeoutMs: opts.readyTimeoutMs ?? 90_000, onWait: opts.onWait }).then(
      () => probe(kube),
      (err: Error) => err.message,
    );
    if (down) {
      return {
        problem: `the API server ${kube.server} does not answer: ${down}`,
        fix: plan.cluster.provider === 'kind' ? `Docker restarted? \`docker start ${plan.cluster.name}-control-plane\`, or \`vaultlab deploy\`.` : `Check the context "${kube.context}" (kubectl get ns).`,
      };
    }
    return { kube };
  } catch (err) {
    return { problem: (err as Error).message, fix: (err as VaultlabError).hint ?? 'vaultlab doctor' };
  }
}

export async function connectEnvironment(ctx: CommandContext, opts: { needKube?: boolean } = {}): Promise<Environment> {
  const loaded = loadConfig(loadOptions(ctx.flags));
  const plan = buildPlan(loaded);
  const state = stateDirFor(plan.cluster.name, ctx.options['state-dir'] as string | undefined);
  const conn: KubeConnection = opts.needKube === false ? { problem: 'not checked (--machine)' } : await connectKube(plan, state, { onWait: () => ctx.out.warn('the API server is not ready yet (the cluster just started?); waiting up to 90 s') });
  const kube = conn.kube;
  const env = vaultEnv();
  const forwards: PortForward[] = [];
  let address = (ctx.options['vault-addr'] as string | undefined) ?? env.address;
  let caPem: string | undefined;
  const caFile = (ctx.options['ca-cert'] as string | undefined) ?? env.caCertFile ?? (state.has('tls/ca.crt') ? state.file('tls/ca.crt') : undefined);
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new VaultlabError(`cannot read the CA certificate ${caFile}: ${(err as Error).message}`, { exitCode: 2 });
    }
  }
  if (!address) {
    // production has no NodePort, and an existing cluster has no kind port mapping: forward to
    // the first Vault pod through the API server (when it exists; otherwise status says so).
    const pod = `${plan.vault.release}-0`;
    if (kube && !plan.vault.external && (plan.vault.tls || plan.cluster.provider === 'existing') && (await kube.get('v1', 'Pod', plan.vault.namespace, pod).catch(() => undefined))) {
      const { portForward } = await import('../adapters/portforward.ts');
      const fwd = await portForward(kube, plan.vault.namespace, pod, 8200).catch(() => undefined);
      if (fwd) {
        forwards.push(fwd);
        address = `${plan.vault.tls ? 'https' : 'http'}://127.0.0.1:${fwd.port}`;
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
    kubeProblem: conn.problem,
    kubeFix: conn.fix,
    vault,
    forwards,
    async close() {
      vault.close();
      await Promise.all(forwards.map((f) => f.close()));
    },
  };
}
