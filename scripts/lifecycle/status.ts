// The health of a whole environment, as data: cluster, Vault, engines and auth, ESO, every
// SecretStore and ExternalSecret with its condition reason, sample pods, URLs. `healthy` is
// false when anything is wrong, so CI can gate on the exit code.
import type { Environment } from './connect.ts';
import { ensureUnsealed, type UnsealState } from './after-restart.ts';
import { raftPeers } from '../vault/ha.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface StatusReport {
  healthy: boolean;
  profile: string;
  cluster: string;
  checks: Check[];
  vault: { address: string; initialized?: boolean; sealed?: boolean; version?: string; unseal: UnsealState; members?: { id: string; address: string; leader: boolean }[]; engines?: string[]; auth?: string[] };
  urls: Record<string, string>;
}

const condition = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);

export async function collectStatus(env: Environment): Promise<StatusReport> {
  const { plan, kube, vault } = env;
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  add(kube ? { name: 'cluster', ok: true, detail: `${plan.cluster.provider === 'kind' ? `kind "${plan.cluster.name}"` : `context "${kube.kc.getCurrentContext()}"`} reachable` } : { name: 'cluster', ok: false, detail: env.kubeProblem ?? 'unreachable', fix: 'Run `vaultlab deploy` (or check Docker with `vaultlab doctor`).' });

  // Vault: restart-sealed demo Vaults are unsealed here, automatically.
  const unseal = await ensureUnsealed(vault, plan, env.state);
  const v: StatusReport['vault'] = { address: vault.address, unseal: unseal.state };
  if (unseal.state !== 'unreachable') {
    const seal = await vault.sealStatus();
    Object.assign(v, { initialized: seal.initialized, sealed: seal.sealed, version: seal.version });
  }
  const vaultOk = unseal.state === 'unsealed' || unseal.state === 'was-sealed-now-unsealed';
  add({
    name: 'vault',
    ok: vaultOk,
    detail: unseal.state === 'was-sealed-now-unsealed' ? `was sealed (restart?), unsealed from the stored key; ${v.version}` : unseal.state === 'unsealed' ? `initialized, unsealed, ${v.version}` : `${unseal.state}${unseal.detail ? `: ${unseal.detail}` : ''}`,
    ...(vaultOk ? {} : { fix: unseal.state === 'sealed' ? 'vaultlab vault unseal' : unseal.state === 'uninitialized' ? 'vaultlab deploy (or vaultlab vault up)' : 'vaultlab deploy; check the Vault pod' }),
  });
  if (vaultOk && vault.hasToken()) {
    try {
      const mounts = (await vault.get<any>('sys/mounts')).data;
      const auths = (await vault.get<any>('sys/auth')).data;
      v.engines = Object.keys(mounts.data ?? mounts).filter((k) => k.endsWith('/')).sort();
      v.auth = Object.keys(auths.data ?? auths).filter((k) => k.endsWith('/')).sort();
      const missing = plan.vault.engines.map((e) => `${e.path}/`).filter((p) => !v.engines!.includes(p));
      add({ name: 'vault engines', ok: missing.length === 0 && v.auth.includes(`${plan.vault.kubernetesAuth.mount}/`), detail: `engines ${v.engines.join(' ')}; auth ${v.auth.join(' ')}`, ...(missing.length ? { fix: 'vaultlab vault configure' } : {}) });
      if (plan.vault.ha.enabled) {
        const peers = await raftPeers(vault);
        v.members = peers.map((p) => ({ id: p.node_id, address: p.address, leader: p.leader }));
        add({ name: 'vault HA', ok: peers.length === plan.vault.ha.replicas && peers.some((p) => p.leader), detail: `${peers.length}/${plan.vault.ha.replicas} Raft members; leader ${peers.find((p) => p.leader)?.node_id ?? 'none'}` });
      }
    } catch (err) {
      add({ name: 'vault engines', ok: false, detail: (err as Error).message, fix: 'Give a token: VAULT_TOKEN, or the state dir of this environment.' });
    }
  }

  if (kube) {
    const eso = await kube.get<any>('apps/v1', 'Deployment', plan.eso.namespace, plan.eso.release).catch(() => undefined);
    const avail = eso && condition(eso, 'Available')?.status === 'True';
    add({ name: 'eso', ok: !!avail, detail: eso ? (avail ? 'External Secrets Operator available' : 'ESO not available yet') : `ESO deployment ${plan.eso.namespace}/${plan.eso.release} not found`, ...(avail ? {} : { fix: 'vaultlab deploy' }) });
    for (const ns of plan.namespaces) {
      const store = await kube.get<any>('external-secrets.io/v1', 'SecretStore', ns.name, ns.secretStore.name).catch(() => undefined);
      const ready = store && condition(store, 'Ready');
      add({ name: `SecretStore ${ns.name}/${ns.secretStore.name}`, ok: ready?.status === 'True', detail: store ? `${ready?.reason ?? 'no condition yet'}${ready?.message && ready.status !== 'True' ? `: ${ready.message}` : ''}` : 'missing' });
      for (const es of ns.externalSecrets) {
        const obj = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name).catch(() => undefined);
        const r = obj && condition(obj, 'Ready');
        add({ name: `ExternalSecret ${ns.name}/${es.name}`, ok: r?.status === 'True', detail: obj ? `${r?.reason ?? 'no condition yet'}${r?.message && r.status !== 'True' ? `: ${r.message}` : ''}` : 'missing', ...(r?.status === 'True' ? {} : { fix: 'vaultlab doctor decodes the cause' }) });
      }
      for (const s of ns.samples.filter((x) => x.kind !== 'argocd')) {
        const d = await kube.get<any>('apps/v1', 'Deployment', ns.name, s.app).catch(() => undefined);
        const a = d && condition(d, 'Available');
        add({ name: `app ${ns.name}/${s.app}`, ok: a?.status === 'True', detail: d ? `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1} ready` : 'missing' });
      }
    }
  }
  const urls: Record<string, string> = plan.vault.tls ? {} : { vault: `${plan.vault.hostAddress}/ui` };
  if (plan.namespaces.some((n) => n.samples.some((s) => s.kind === 'dashboard'))) urls.dashboard = `http://localhost:${plan.cluster.hostPorts.http}`;
  return { healthy: checks.every((c) => c.ok), profile: plan.profile, cluster: plan.cluster.name, checks, vault: v, urls };
}

export function formatStatus(r: StatusReport): string[] {
  return [
    `${r.healthy ? 'healthy' : 'UNHEALTHY'}: ${r.profile} environment "${r.cluster}"`,
    ...r.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(36)} ${c.detail}${!c.ok && c.fix ? `\n       fix: ${c.fix}` : ''}`),
    ...(r.vault.members ? [`  Raft: ${r.vault.members.map((m) => `${m.id}${m.leader ? ' (leader)' : ''}`).join(', ')}`] : []),
    ...Object.entries(r.urls).map(([k, u]) => `  ${k}: ${u}`),
  ];
}
