// The health of a whole environment, as data: cluster, Vault (initialized, sealed, version,
// active/standby, HA members), engines and auth mounts, each used delivery's own checks (ESO: the
// operator, every SecretStore and ExternalSecret with its condition reason; the injector: its
// webhook, agent errors), sample apps and their pods, URLs. `healthy` is false when any check
// that is an error fails, so CI can gate on the exit code. A demo Vault found sealed after a
// restart is unsealed from the stored key on the way (unless `unseal: false`).
import type { Environment } from './connect.ts';
import { ensureUnsealed, type UnsealState } from './after-restart.ts';
import { raftPeers } from '../vault/ha.ts';
import { stalePods } from '../steps/vault-rollout.ts';
import { REVIEWER_FILE } from '../vault/keys.ts';
import { TOKEN_REVIEWER } from '../plan/objects.ts';
import { appsOf, usedDeliveries } from '../deliveries/index.ts';
import type { Delivery, DeliveryName } from '../deliveries/types.ts';
import { leaseReport, type RoleLeases } from './lease-status.ts';


export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** A failed warning is reported but does not make the environment unhealthy. */
  severity?: 'error' | 'warning';
}

export interface VaultStatus {
  address: string;
  initialized?: boolean;
  sealed?: boolean;
  standby?: boolean;
  version?: string;
  unseal: UnsealState;
  keysFrom?: 'state' | 'cluster';
  members?: { id: string; address: string; leader: boolean; voter: boolean }[];
  engines?: string[];
  auth?: string[];
  /** Active leases per [[databases.roles]] / [[kubernetes_roles]] role. */
  leases?: RoleLeases[];
}

export interface StatusReport {
  healthy: boolean;
  profile: string;
  cluster: string;
  provider: string;
  checkedAt: string;
  ms: number;
  checks: Check[];
  vault: VaultStatus;
  urls: Record<string, string>;
}

const condition = (o: any, type: string) => (o?.status?.conditions ?? []).find((c: any) => c.type === type);

/** Why a pod is not ready, in the kubelet's words (ImagePullBackOff, CreateContainerConfigError...). */
export function podProblem(pod: any): string | undefined {
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const w = cs.state?.waiting;
    if (w?.reason && w.reason !== 'PodInitializing' && w.reason !== 'ContainerCreating') return `${w.reason}${w.message ? `: ${w.message}` : ''}`;
    if (cs.state?.terminated && cs.state.terminated.exitCode !== 0) return `exited ${cs.state.terminated.exitCode} (${cs.state.terminated.reason ?? 'error'})`;
  }
  const ready = condition(pod, 'Ready');
  if (pod.status?.phase !== 'Running') return `${pod.status?.phase ?? 'Pending'}${condition(pod, 'PodScheduled')?.status === 'False' ? ` (${condition(pod, 'PodScheduled').message ?? 'unschedulable'})` : ''}`;
  if (ready?.status !== 'True') return 'Running, not Ready';
  return undefined;
}

interface ClusterReads {
  vaultPods: (readonly [string, any])[];
  vaultSts: any;
  namespaces: Map<string, { deployments: Map<string, any>; pods: any[] }>;
  /** Each used delivery's checks, read beside the rest. */
  deliveries: Check[][];
}

/** What status reads from the cluster, all requests in flight at once. */
async function readCluster(env: Environment, kube: NonNullable<Environment['kube']>, plan: Environment['plan']): Promise<ClusterReads> {
  const list = (apiVersion: string, kind: string, ns: string, selector?: string) => kube.list<any>(apiVersion, kind, ns, selector).catch((): any[] => []);
  const byName = (items: any[]) => new Map(items.map((o) => [o.metadata.name as string, o]));
  const members = Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${plan.vault.release}-${i}`);
  const [vaultPods, vaultSts, deliveries, namespaces] = await Promise.all([
    plan.vault.external ? [] : list('v1', 'Pod', plan.vault.namespace).then((pods) => members.map((m) => [m, pods.find((p) => p.metadata.name === m)] as const)),
    plan.vault.external ? undefined : kube.get<any>('apps/v1', 'StatefulSet', plan.vault.namespace, plan.vault.release).catch(() => undefined),
    Promise.all(
      (usedDeliveries(plan) as Delivery<DeliveryName>[]).map(async (d) =>
        (await d.runtime()).status(env, appsOf(plan.apps, d.name) as never[]).catch((err: Error): Check[] => [{ name: `${d.name}`, ok: false, detail: `status not read: ${err.message}` }]),
      ),
    ),
    Promise.all(
      plan.namespaces.map(async (ns) => {
        const [deployments, pods] = await Promise.all([list('apps/v1', 'Deployment', ns.name), list('v1', 'Pod', ns.name)]);
        return [ns.name, { deployments: byName(deployments), pods }] as const;
      }),
    ),
  ]);
  return { vaultPods, vaultSts, deliveries, namespaces: new Map(namespaces) };
}

export async function collectStatus(env: Environment, opts: { unseal?: boolean } = {}): Promise<StatusReport> {
  const t0 = performance.now();
  const { plan, kube, vault } = env;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  add(
    kube
      ? { name: 'cluster', ok: true, detail: `${plan.cluster.provider === 'kind' ? `kind "${plan.cluster.name}"` : `context "${kube.context}"`} reachable` }
      : { name: 'cluster', ok: false, detail: env.kubeProblem ?? 'unreachable', fix: env.kubeFix ?? 'vaultlab deploy (vaultlab doctor checks the machine)' },
  );

  // Every read of the cluster starts now, beside the Vault checks: one list per kind and
  // namespace instead of one request per object, all at once (the report keeps its order).
  const reads = kube ? readCluster(env, kube, plan) : undefined;
  reads?.catch(() => undefined);

  // Vault: a restart-sealed demo Vault is unsealed here, automatically.
  const unseal = await ensureUnsealed(vault, plan, env.state, { kube, reportOnly: opts.unseal === false });
  const v: VaultStatus = { address: vault.address, unseal: unseal.state, ...(unseal.keysFrom ? { keysFrom: unseal.keysFrom } : {}) };
  if (unseal.state !== 'unreachable') {
    try {
      const h = await vault.health();
      Object.assign(v, { initialized: h.initialized, sealed: h.sealed, standby: h.standby, version: h.version });
    } catch {
      /* the seal check below says enough */
    }
  }
  const vaultOk = unseal.state === 'unsealed' || unseal.state === 'was-sealed-now-unsealed';
  add({
    name: 'vault',
    ok: vaultOk,
    detail: vaultOk
      ? `${unseal.state === 'was-sealed-now-unsealed' ? `${unseal.detail}; ` : ''}initialized, unsealed, ${v.standby ? 'standby' : 'active'}, ${plan.vault.distribution === 'openbao' ? 'OpenBao' : 'Vault'} ${v.version ?? '?'} at ${vault.address}`
      : `${unseal.state}${unseal.detail ? `: ${unseal.detail}` : ''}`,
    ...(vaultOk ? {} : { fix: unseal.fix ?? 'vaultlab vault unseal' }),
  });

  if (vaultOk) {
    if (!vault.hasToken()) {
      add({ name: 'vault engines', ok: false, severity: 'warning', detail: 'no token: engines, auth mounts and HA members not checked', fix: 'Set VAULT_TOKEN, or run from the directory holding .vaultlab/<cluster>/ (or --state-dir).' });
    } else {
      try {
        const mounts = (await vault.get<any>('sys/mounts')).data;
        const auths = (await vault.get<any>('sys/auth')).data;
        v.engines = Object.keys(mounts.data ?? mounts).filter((k) => k.endsWith('/')).sort();
        v.auth = Object.keys(auths.data ?? auths).filter((k) => k.endsWith('/')).sort();
        const missing = [...plan.vault.engines.map((e) => `${e.path}/`).filter((p) => !v.engines!.includes(p)), ...(v.auth.includes(`${plan.vault.kubernetesAuth.mount}/`) ? [] : [`auth ${plan.vault.kubernetesAuth.mount}/`])];
        add({
          name: 'vault engines',
          ok: missing.length === 0,
          detail: `${missing.length ? `missing ${missing.join(', ')}; ` : ''}engines ${v.engines.join(' ')}; auth ${v.auth.join(' ')}`,
          ...(missing.length ? { fix: 'vaultlab vault configure' } : {}),
        });
      } catch (err) {
        add({ name: 'vault engines', ok: false, severity: 'warning', detail: (err as Error).message, fix: 'Give a token that may read sys/mounts and sys/auth: VAULT_TOKEN, or the state dir of this environment.' });
      }
      // Short-lived credentials: active leases per role, a warning near max_ttl.
      if (plan.vault.databases || plan.vault.kubernetesSecrets) {
        const leases = await leaseReport(vault, plan);
        v.leases = leases.roles;
        checks.push(...leases.checks);
      }
      if (plan.vault.ha.enabled) {
        try {
          const peers = await raftPeers(vault);
          v.members = peers.map((p) => ({ id: p.node_id, address: p.address, leader: p.leader, voter: p.voter }));
          const leader = peers.find((p) => p.leader);
          const ok = peers.length === plan.vault.ha.replicas && !!leader;
          add({ name: 'vault HA', ok, detail: `${peers.length}/${plan.vault.ha.replicas} Raft members (${peers.map((p) => `${p.node_id}${p.leader ? ' leader' : ''}${p.voter ? '' : ' non-voter'}`).join(', ')})`, ...(ok ? {} : { fix: 'A member is missing: check its pod (below) and its retry_join; `vaultlab deploy` unseals followers.' }) });
        } catch (err) {
          add({ name: 'vault HA', ok: false, detail: (err as Error).message, fix: 'The token may need read on sys/storage/raft/configuration (the setup policy has it).' });
        }
      }
    }
  }

  if (kube && reads) {
    const r = await reads;
    const get = <T = any>(apiVersion: string, kind: string, ns: string, name: string) => kube.get<any>(apiVersion, kind, ns, name).catch(() => undefined) as Promise<T | undefined>;

    // Vault's pods: a sealed or crashing member shows here even when the API address reaches another.
    if (!plan.vault.external) {
      let pods = r.vaultPods;
      // Unsealed by this very run: the pods turn Ready at their next readiness probe (seconds);
      // reporting them "sealed" now would contradict the line above and exit 1 for nothing.
      if (unseal.state === 'was-sealed-now-unsealed') {
        pods = await Promise.all(
          pods.map(async ([name, pod]) =>
            [name, pod && podProblem(pod) === 'Running, not Ready' ? await kube.waitForCondition('v1', 'Pod', plan.vault.namespace, name, 'Ready', { timeoutMs: 30_000 }).catch(() => pod) : pod] as const,
          ),
        );
      }
      for (const [name, pod] of pods) {
        const problem = pod ? podProblem(pod) : 'missing';
        add({
          name: `vault pod ${plan.vault.namespace}/${name}`,
          ok: !problem,
          detail: problem ? (problem === 'Running, not Ready' ? 'Running, not Ready (sealed, or not joined yet)' : problem) : 'Running, Ready',
          ...(problem ? { fix: problem === 'missing' ? 'vaultlab deploy' : problem.startsWith('Running') ? (plan.profile === 'demo' ? 'vaultlab status (unseals a demo Vault)' : 'vaultlab vault unseal --keys-file FILE (each member), or vaultlab deploy --keys-file FILE') : `kubectl -n ${plan.vault.namespace} describe pod ${name}` } : {}),
        });
      }
      // Pods the chart's OnDelete strategy left on an older revision: working, not up to date.
      const sts = r.vaultSts;
      const stale = stalePods(sts, pods.flatMap(([, pod]) => (pod ? [pod] : [])));
      if (stale.length) {
        add({
          name: 'vault revision',
          ok: false,
          severity: 'warning',
          detail: `${stale.join(', ')} still run the previous configuration, image or certificate (StatefulSet revision ${sts.status.updateRevision})`,
          fix: `vaultlab deploy replaces them one at a time${plan.vault.ha.enabled ? ' (with --keys-file FILE when the key shares are kept offline)' : ''}`,
        });
      }
    }

    // An external Vault checks ESO's tokens with vaultlab's TokenReview account: gone, or
    // recreated since Vault got its token, every ESO login is refused ("permission denied").
    const recorded = env.state.readJson<{ uid?: string }>(REVIEWER_FILE);
    if (plan.vault.external && recorded?.uid) {
      const account = await get<any>('v1', 'ServiceAccount', TOKEN_REVIEWER.namespace, TOKEN_REVIEWER.serviceAccount);
      const name = `${TOKEN_REVIEWER.namespace}/${TOKEN_REVIEWER.serviceAccount}`;
      const problem = !account ? `ServiceAccount ${name} is missing` : account.metadata.uid !== recorded.uid ? `ServiceAccount ${name} was recreated since Vault got its token` : undefined;
      add({
        name: 'vault token reviewer',
        ok: !problem,
        detail: problem ? `${problem}: Vault cannot check ESO's tokens, so every ESO login is refused` : `ServiceAccount ${name}, the one whose token Vault holds`,
        ...(problem ? { fix: 'vaultlab deploy (re-creates the account and gives Vault its new token)' } : {}),
      });
    }

    for (const c of r.deliveries.flat()) add(c);

    for (const ns of plan.namespaces) {
      const objects = r.namespaces.get(ns.name)!;
      for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
        const d = objects.deployments.get(s.app);
        if (!d) {
          add({ name: `app ${ns.name}/${s.app}`, ok: false, detail: 'missing', fix: 'vaultlab deploy' });
          continue;
        }
        const available = condition(d, 'Available')?.status === 'True';
        const pods = objects.pods.filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === s.app);
        const problems = pods.map((p) => [p.metadata.name, podProblem(p)] as const).filter(([, p]) => p);
        const podText = pods.length ? `; pods: ${pods.map((p) => `${p.metadata.name} ${podProblem(p) ?? 'Ready'}`).join(', ')}` : '; no pods';
        const secretMissing = problems.some(([, p]) => /CreateContainerConfigError|secret .* not found/i.test(p!));
        add({
          name: `app ${ns.name}/${s.app}`,
          ok: available,
          detail: `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1} ready${podText}`,
          ...(available ? {} : { fix: secretMissing ? `its Secret (${s.secrets.join(', ')}) is missing: see the ExternalSecret above; \`vaultlab reset --secrets\` forces a re-sync` : `kubectl -n ${ns.name} describe deployment ${s.app}` }),
        });
      }
    }
  }

  const urls: Record<string, string> = {};
  if (!plan.vault.tls && (plan.cluster.provider === 'kind' || plan.vault.external)) urls.vault = `${plan.vault.hostAddress}/ui`;
  if (plan.cluster.provider === 'kind' && plan.namespaces.some((n) => n.samples.some((s) => s.kind === 'dashboard'))) urls.dashboard = `http://localhost:${plan.cluster.hostPorts.http}`;
  return {
    healthy: checks.every((c) => c.ok || c.severity === 'warning'),
    profile: plan.profile,
    cluster: plan.cluster.name,
    provider: plan.cluster.provider,
    checkedAt: new Date().toISOString(),
    ms: Math.round(performance.now() - t0),
    checks,
    vault: v,
    urls,
  };
}

export function formatStatus(r: StatusReport): string[] {
  const mark = (c: Check) => (c.ok ? 'ok  ' : c.severity === 'warning' ? 'warn' : 'FAIL');
  const width = Math.min(44, Math.max(...r.checks.map((c) => c.name.length)));
  return [
    `${r.healthy ? 'healthy' : 'UNHEALTHY'}: ${r.profile} environment "${r.cluster}" (${r.provider})`,
    ...r.checks.map((c) => `  ${mark(c)} ${c.name.padEnd(width)}  ${c.detail}${!c.ok && c.fix ? `\n         fix: ${c.fix}` : ''}`),
    ...(r.vault.members ? [`  Raft: ${r.vault.members.map((m) => `${m.id}${m.leader ? ' (leader)' : ''}`).join(', ')}`] : []),
    ...Object.entries(r.urls).map(([k, u]) => `  ${k}: ${u}`),
    `  checked in ${(r.ms / 1000).toFixed(1)} s`,
  ];
}
