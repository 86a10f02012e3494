// Vault up inside the cluster: wait for the pod to run (it is not Ready while sealed), then
// init / unseal / configure / seed over the HTTP API (NodePort in demo, a port-forward in
// production or when the NodePort does not answer), never `kubectl exec` with a token in argv.
// Then wait for Ready.
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { VaultClient, vaultEnv } from '../adapters/vault.ts';
import { portForward } from '../adapters/portforward.ts';
import { vaultUp, type UpOptions, type UpReport } from '../vault/up.ts';
import { haUp, unsealMember } from '../production/ha.ts';
import { findStalePods, replaceStalePods } from './vault-rollout.ts';
import { INIT_FILE, REVIEWER_FILE, readInit, registerInit, storedPlaintextKeys, type InitResult } from '../vault/keys.ts';
import { vaultCaPem } from './install.ts';
import { MANAGED_BY, TOKEN_REVIEWER } from '../plan/objects.ts';
import type { KubernetesAuthTarget } from '../vault/configure.ts';
import { guardPods, type Kube } from '../adapters/kube.ts';

/** The server pods' names: the chart names them after the release (fullnameOverride). */
export const vaultPods = (plan: DeployContext['plan']): string[] => Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${plan.vault.release}-${i}`);

export const IN_CLUSTER_API = 'https://kubernetes.default.svc';
const VAULT_PORT = 8200;

/** How vaultlab reaches Vault from the host: 'direct' (NodePort or external) or a port-forward. */
export function vaultRoute(plan: DeployContext['plan']): 'direct' | 'nodeport-or-forward' | 'forward' {
  if (plan.vault.external) return 'direct';
  if (plan.vault.tls || plan.cluster.provider !== 'kind') return 'forward'; // no NodePort mapped to this host
  return 'nodeport-or-forward';
}

/** Does anything answer Vault's API at `address` within `ms`? */
async function answers(address: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const probe = new VaultClient({ address, attempts: 1, timeoutMs: 2000 });
    try {
      await probe.sealStatus();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      probe.close();
    }
  }
  return false;
}

async function clientFor(ctx: DeployContext, kube: Kube, pod: string): Promise<VaultClient> {
  const { plan } = ctx;
  const route = vaultRoute(plan);
  if (route === 'direct') return new VaultClient({ address: plan.vault.hostAddress });
  if (route === 'nodeport-or-forward') {
    if (await answers(plan.vault.hostAddress, 20_000)) return new VaultClient({ address: plan.vault.hostAddress });
    ctx.out.warn(`Vault does not answer at ${plan.vault.hostAddress} (the kind port mapping); using a port-forward to ${plan.vault.namespace}/${pod} instead`);
  }
  const fwd = await portForward(kube, plan.vault.namespace, pod, VAULT_PORT);
  ctx.forwards.push(fwd);
  return new VaultClient({
    address: `${plan.vault.tls ? 'https' : 'http'}://127.0.0.1:${fwd.port}`,
    ...(plan.vault.tls ? { caPem: vaultCaPem(ctx) } : {}),
    unreachableHint: `Vault in pod ${plan.vault.namespace}/${pod} does not answer on port ${VAULT_PORT} (reached through vaultlab's port-forward). Is it running? \`kubectl -n ${plan.vault.namespace} logs ${pod}\`; \`vaultlab status\` shows restarts.`,
  });
}

/** The Vault server pods: their phase is Running and every container runs (a crash loop's phase is Running too). */
export const serverRunning = (p: { status?: { phase?: string; containerStatuses?: { state?: { running?: unknown } }[] } }) =>
  p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).length > 0 && (p.status.containerStatuses ?? []).every((c) => !!c.state?.running);

export const serverSelector = (plan: DeployContext['plan']) => `app.kubernetes.io/instance=${plan.vault.release},component=server`;

/** demo: the copy of the init result the init hook keeps in Vault's namespace. */
async function initCopyInCluster(kube: Kube, plan: DeployContext['plan']): Promise<InitResult | undefined> {
  if (!plan.vault.init.storeInCluster) return undefined;
  const raw = (await kube.readSecret(plan.vault.namespace, plan.vault.init.secretName))?.data[INIT_FILE];
  if (!raw) return undefined;
  try {
    return registerInit(JSON.parse(raw.toString('utf8')) as InitResult);
  } catch {
    return undefined;
  }
}

export { TOKEN_REVIEWER };
const REVIEWER_TTL_SECONDS = 365 * 24 * 3600;

/**
 * Where Vault's Kubernetes auth checks ESO's tokens. A Vault in the cluster: the in-cluster API
 * address, and its own pod token as the reviewer. An external Vault cannot resolve
 * kubernetes.default.svc and has no pod token: the API server address from the kubeconfig, and a
 * token of a ServiceAccount allowed to call TokenReview (system:auth-delegator). Vault keeps that
 * token; configure replaces it only when the account was recreated since (destroy removes it,
 * and a new account's tokens are not the old one's), which the recorded uid tells.
 */
export async function kubernetesAuthTarget(ctx: Pick<DeployContext, 'plan' | 'state'>, kube: Kube): Promise<(KubernetesAuthTarget & { reviewerUid?: string }) | undefined> {
  const info = kube.clusterInfo();
  if (!info.caPem) return undefined;
  if (!ctx.plan.vault.external) return { host: IN_CLUSTER_API, caPem: info.caPem };
  const { namespace, serviceAccount } = TOKEN_REVIEWER;
  await kube.apply([
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace, labels: { ...MANAGED_BY } } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: serviceAccount, labels: { ...MANAGED_BY } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
    },
  ]);
  const uid = ((await kube.get('v1', 'ServiceAccount', namespace, serviceAccount))?.metadata as { uid?: string } | undefined)?.uid;
  const reviewerJwt = await kube.createServiceAccountToken(namespace, serviceAccount, [], REVIEWER_TTL_SECONDS);
  const recorded = ctx.state.readJson<{ uid?: string }>(REVIEWER_FILE);
  return { host: info.server, caPem: info.caPem, reviewerJwt, reviewerStale: recorded?.uid !== uid, ...(uid ? { reviewerUid: uid } : {}) };
}

/**
 * Vault pods on an old StatefulSet revision (a changed configuration, image or certificate, which
 * the chart's OnDelete strategy never rolls out by itself) are replaced one at a time. HA: each
 * replaced member is unsealed before the next goes, which needs the key shares; without them the
 * pods are left as they are, with a warning saying how to roll them.
 */
async function rollOut(ctx: DeployContext, kube: Kube, ha: boolean, report: (line: string) => void): Promise<string[]> {
  const { plan } = ctx;
  const keys = ctx.options.keys ?? storedPlaintextKeys(ctx.state);
  if (ha && !keys) {
    const stale = await findStalePods(kube, plan);
    if (stale.length) ctx.out.warn(`Vault pod(s) ${stale.join(', ')} still run the previous configuration: replacing them needs the unseal key shares (vaultlab deploy --keys-file FILE)`);
    return [];
  }
  const timeoutMs = ctx.options.timeoutMs;
  return replaceStalePods(kube, plan, {
    timeoutMs,
    report,
    ...(ha && keys
      ? {
          afterReplace: async (pod: string) => {
            const member = await clientFor(ctx, kube, pod);
            try {
              if ((await member.sealStatus()).initialized) await unsealMember(member, keys, Date.now() + timeoutMs);
            } finally {
              member.close();
            }
          },
        }
      : {}),
  });
}

export const vault: TaskStep<DeployContext> = {
  name: 'vault',
  title: 'Vault: init, unseal, configure, seed',
  async run(ctx, report) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    const pods = vaultPods(plan);
    const ha = plan.vault.ha.enabled && !plan.vault.external;
    let replaced: string[] = [];
    if (!plan.vault.external) {
      // HA: every member's pod, since a restarted cluster needs a quorum unsealed before it has a leader.
      for (const pod of ha ? pods : pods.slice(0, 1)) {
        report(`waiting for pod ${plan.vault.namespace}/${pod} to run (not Ready: it is sealed)`);
        // A pod that cannot pull its image or keeps crashing ends the wait at once, with why.
        await guardPods(kube, plan.vault.namespace, serverSelector(plan), (signal) =>
          kube.waitFor('v1', 'Pod', plan.vault.namespace, pod, serverRunning, 'Running', { timeoutMs: ctx.options.timeoutMs, signal }),
        );
      }
      replaced = await rollOut(ctx, kube, ha, report);
    }
    const leader = await clientFor(ctx, kube, pods[0]!);
    ctx.vault = leader;
    ctx.summary.vaultAddress = leader.address;
    // demo: the state dir is gone (another checkout, a cleaned workspace), the cluster's copy is not.
    if (!readInit(ctx.state)) {
      const copy = await initCopyInCluster(kube, plan);
      if (copy && (await leader.initStatus().catch(() => false))) {
        ctx.state.writeJson(INIT_FILE, copy, { exclusive: true });
        ctx.out.warn(`restored ${ctx.state.file(INIT_FILE)} from Secret ${plan.vault.namespace}/${plan.vault.init.secretName}`);
      }
    }
    report('init, unseal, configure, seed');
    const authTarget = await kubernetesAuthTarget(ctx, kube);
    const upOptions: UpOptions = {
      token: { env: vaultEnv().token },
      ...(ctx.options.keys ? { keys: ctx.options.keys } : {}),
      passwords: ctx.databasePasswords ? { ...ctx.loaded.passwords, ...ctx.databasePasswords } : ctx.loaded.passwords,
      configure: { kubernetes: authTarget },
      hooks: {
        persistInCluster: async (init) => {
          await kube.apply([
            // Helm creates it for a Vault in the cluster; an external Vault has no namespace of its own.
            { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.vault.namespace } },
            {
              apiVersion: 'v1',
              kind: 'Secret',
              type: 'Opaque',
              metadata: { name: plan.vault.init.secretName, namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
              data: { [INIT_FILE]: Buffer.from(JSON.stringify(init)).toString('base64') },
            },
          ]);
          return `Secret ${plan.vault.namespace}/${plan.vault.init.secretName}`;
        },
      },
    };
    let r: UpReport;
    if (ha) {
      // First member: init 5/3, unseal, configure, setup token, seed; the others join and are
      // unsealed; found all sealed (pods restarted), every member is unsealed first.
      const followers = await Promise.all(pods.slice(1).map((p) => clientFor(ctx, kube, p)));
      try {
        r = (await haUp(leader, followers, plan, ctx.state, { ...upOptions, timeoutMs: ctx.options.timeoutMs, report })).up;
      } finally {
        for (const f of followers) f.close();
      }
    } else r = await vaultUp(leader, plan, ctx.state, upOptions);
    if (authTarget?.reviewerUid) ctx.state.writeJson(REVIEWER_FILE, { uid: authTarget.reviewerUid });
    if (!plan.vault.external) {
      report('waiting for Vault to be Ready');
      for (const pod of pods) await kube.waitForCondition('v1', 'Pod', plan.vault.namespace, pod, 'Ready', { timeoutMs: ctx.options.timeoutMs });
    }
    const changes = r.configure.filter((i) => i.action !== 'unchanged' && i.action !== 'skipped').length;
    ctx.summary.vault = { replaced, init: r.init.action, seed: r.seed?.counts, seedWrites: r.seed?.writes, configure: changes, writes: leader.writes };
    const s = r.seed?.counts;
    return `${replaced.length ? `replaced ${replaced.join(', ')} (new revision); ` : ''}${r.init.action}; ${changes} config change(s); seed ${s ? `${s.created} created, ${s.updated} updated, ${s.unchanged} unchanged` : 'skipped'}`;
  },
};
