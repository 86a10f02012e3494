// ESO, rotation that reaches the pod: the ExternalSecrets that read a changed value are forced to
// re-sync (annotation force-sync), each target Secret is awaited until it matches Vault by digest,
// then every Deployment of the namespace whose pod template reads a changed key of it (env,
// envFrom or a Secret volume) and whose pods do not hold it yet is restarted the way
// `kubectl rollout restart` does (pod template annotation kubectl.kubernetes.io/restartedAt),
// and its new pods are asked, by digest, for what they hold.
//
// Why restart file consumers too: the kubelet refreshes a mounted Secret only at its next sync
// (up to a minute and its cache TTL); a restart is proven within seconds. A pod that already holds
// the new values (a refreshed volume, an unchanged key) is left alone ("unchanged").
import type { Kube } from '../../adapters/kube.ts';
import type { Environment } from '../../lifecycle/connect.ts';
import type { ExternalSecretPlan, NamespacePlan, Plan } from '../../plan/types.ts';
import { VaultlabError } from '../../lib/errors.ts';
import { sha256 } from '../../lib/digest.ts';
import type { ChangedValue, ConvergeOptions, ConvergeResult, EsoAppPlan } from '../types.ts';
import { podReady, probeDigest, RESTARTED_AT_ANNOTATION, rolloutComplete, secretProbes, settle, type SecretProbe } from '../pods.ts';
import { decodeEsoError, esoIdentityClient, expectedKeys } from './sync.ts';

export const FORCE_SYNC_ANNOTATION = 'force-sync';
export { RESTARTED_AT_ANNOTATION } from '../pods.ts';
const ES = 'external-secrets.io/v1';

const reads = (changed: readonly ChangedValue[], path: string, key: string) => changed.some((c) => c.path === path && c.key === key);

export interface ChangedExternalSecret {
  app: EsoAppPlan;
  es: ExternalSecretPlan;
  /** Keys of the target Secret that carry a changed value (templated: every key the template makes). */
  keys: string[];
}

/** The ExternalSecrets of `apps` reading a changed value, and which of their target's keys change. */
export function changedExternalSecrets(apps: readonly EsoAppPlan[], changed: readonly ChangedValue[]): ChangedExternalSecret[] {
  const out: ChangedExternalSecret[] = [];
  for (const app of apps) {
    for (const es of app.externalSecrets) {
      const hit = es.data.filter((d) => reads(changed, d.path, d.key));
      if (hit.length === 0) continue;
      const templated = !!es.template && Object.keys(es.template.data).length > 0;
      out.push({ app, es, keys: templated ? expectedKeys(es) : [...new Set(hit.map((d) => d.secretKey))] });
    }
  }
  return out;
}

/** The merge patches: ESO re-syncs an ExternalSecret whose annotations change; a Deployment rolls when its pod template does. */
export const forceSyncPatch = (stamp: string) => ({ metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: stamp } } });
export const restartPatch = (stamp: string) => ({ spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: stamp } } } } });

/** The Deployments whose pod template reads one of `keysOf` (Secret -> changed keys), with where. */
export function consumingDeployments(deployments: readonly any[], keysOf: ReadonlyMap<string, readonly string[]>): { name: string; probes: SecretProbe[] }[] {
  return deployments
    .map((d) => ({ name: d.metadata.name as string, probes: secretProbes(d.spec?.template?.spec, keysOf) }))
    .filter((d) => d.probes.length > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `kubectl rollout status` for one restart: the template carrying `stamp`, rolled out completely. */
export function rolledOut(d: any, stamp: string): boolean {
  return d?.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] === stamp && rolloutComplete(d);
}

/** A label selector string from a Deployment's matchLabels. */
export const selectorOf = (d: any): string => Object.entries(d?.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');

/** ESO's refreshTime (one-second precision) at or after the stamp's second, and Ready. */
export function refreshedAfter(obj: any, notBefore: number, previous: string | undefined): boolean {
  const t = obj?.status?.refreshTime as string | undefined;
  const ready = (obj?.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  return !!t && t !== previous && Date.parse(t) >= notBefore && ready?.status === 'True';
}

const digestsOf = (data: Record<string, string> | undefined) => new Map(Object.entries(data ?? {}).map(([k, v]) => [k, sha256(Buffer.from(v, 'base64'))]));

/** What each probe of each Ready pod shows, against the Secret's digests: mismatches (empty: every pod holds them). */
async function podMismatches(kube: Kube, ns: string, dep: any, probes: SecretProbe[], want: ReadonlyMap<string, ReadonlyMap<string, string>>): Promise<{ pods: number; problems: string[] }> {
  const pods = (await kube.list<any>('v1', 'Pod', ns, selectorOf(dep))).filter(podReady);
  const problems: string[] = [];
  await Promise.all(
    pods.flatMap((pod) =>
      probes.map(async (p) => {
        const r = await probeDigest(kube, ns, pod.metadata.name, p);
        const where = p.via === 'env' ? `$${p.name}` : p.file;
        if (r.problem) problems.push(r.problem);
        else if (r.digest !== want.get(p.secret)?.get(p.key)) problems.push(`${where} in pod ${pod.metadata.name} differs from Secret ${ns}/${p.secret} key ${p.key} (digest mismatch)`);
      }),
    ),
  );
  if (pods.length === 0) problems.push(`no Ready pod of Deployment ${ns}/${dep.metadata.name}`);
  return { pods: pods.length, problems: problems.sort() };
}

/** Until the pods hold the Secret's values, or the deadline: the last mismatches when it passed. */
async function untilPodsHold(kube: Kube, ns: string, dep: any, probes: SecretProbe[], want: ReadonlyMap<string, ReadonlyMap<string, string>>, deadline: number, signal?: AbortSignal): Promise<string[]> {
  return settle(deadline, signal, async () => (await podMismatches(kube, ns, dep, probes, want)).problems, 500);
}

/**
 * Env consumers in the pods, for verify: each Deployment of the namespace reading one of its
 * Secrets through env/envFrom, its Ready pods asked for the variables' digests (against the
 * Secret's, which verify compared with Vault).
 */
export async function checkEnvConsumers(kube: Kube, ns: NamespacePlan, secrets: readonly ExternalSecretPlan[]): Promise<{ deployment: string; problems: string[] }[]> {
  const keysOf = new Map<string, string[]>();
  const want = new Map<string, Map<string, string>>();
  for (const es of secrets) {
    const s = await kube.get<any>('v1', 'Secret', ns.name, es.target);
    if (!s) continue;
    keysOf.set(es.target, Object.keys(s.data ?? {}));
    want.set(es.target, digestsOf(s.data));
  }
  const all = await kube.list<any>('apps/v1', 'Deployment', ns.name);
  const deps = consumingDeployments(all, keysOf).map((d) => ({ ...d, probes: d.probes.filter((p) => p.via === 'env') })).filter((d) => d.probes.length);
  return Promise.all(deps.map(async (d) => ({ deployment: d.name, problems: (await podMismatches(kube, ns.name, all.find((x) => x.metadata.name === d.name), d.probes, want)).problems })));
}

export async function esoConverge(env: Environment, apps: EsoAppPlan[], changed: ChangedValue[], signal: AbortSignal, opts: ConvergeOptions = {}): Promise<ConvergeResult[]> {
  const { plan, vault } = env;
  const kube = env.kube;
  if (!kube) throw new VaultlabError(`the cluster is not reachable (${env.kubeProblem}): ESO cannot be told to re-sync`, { hint: env.kubeFix ?? 'vaultlab status' });
  const t0 = performance.now();
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const seconds = () => Math.round(performance.now() - t0) / 1000;
  const concerned = changedExternalSecrets(apps, changed);
  if (concerned.length === 0) return [];
  const now = opts.now ?? new Date();
  const stamp = now.toISOString();
  const notBefore = Math.floor(now.getTime() / 1000) * 1000;

  const results: ConvergeResult[] = [];
  const byNs = new Map<string, ChangedExternalSecret[]>();
  for (const c of concerned) byNs.set(c.app.namespace, [...(byNs.get(c.app.namespace) ?? []), c]);

  await Promise.all(
    [...byNs].map(async ([nsName, list]) => {
      const ns = plan.namespaces.find((n) => n.name === nsName)!;
      // Vault's values, read once with ESO's own identity in this namespace (production's setup
      // token may write values but not read them): what each target Secret must hold (by digest).
      const vaultValues = new Map<string, Record<string, string> | undefined>();
      const asEso = await esoIdentityClient(kube, plan, vault, ns, { waitMs: Math.min(60_000, Math.max(1000, deadline - Date.now())), signal });
      try {
        await Promise.all([...new Set(list.flatMap((c) => c.es.data.map((d) => d.path)))].map(async (p) => vaultValues.set(p, (await asEso.kvRead(plan.seeding.mount, p))?.data)));
      } finally {
        asEso.close();
      }
      // 1. Force the re-sync of each, then wait for its Secret to match Vault.
      await Promise.all(
        list.map(async ({ app, es }) => {
          const obj = await kube.get<any>(ES, 'ExternalSecret', nsName, es.name);
          if (!obj) throw new VaultlabError(`ExternalSecret ${nsName}/${es.name} does not exist`, { hint: 'vaultlab deploy' });
          const previous = obj.status?.refreshTime as string | undefined;
          await kube.mergePatch(ES, 'ExternalSecret', nsName, es.name, forceSyncPatch(stamp));
          await waitSecretMatches(kube, plan, ns, es, vaultValues, { notBefore, previous, deadline, signal });
          results.push({ namespace: nsName, app: app.name, target: `ExternalSecret ${es.name}`, action: 're-synced', seconds: seconds() });
        }),
      );
      if (opts.secretsOnly) return;
      // 2. The Deployments reading a changed key: left alone when their pods hold it, else restarted.
      const keysOf = new Map<string, string[]>();
      for (const c of list) keysOf.set(c.es.target, [...new Set([...(keysOf.get(c.es.target) ?? []), ...c.keys])]);
      const want = new Map<string, Map<string, string>>();
      for (const target of keysOf.keys()) want.set(target, digestsOf((await kube.get<any>('v1', 'Secret', nsName, target))?.data));
      const deployments = await kube.list<any>('apps/v1', 'Deployment', nsName);
      const appOf = (dep: any) => dep.metadata.labels?.['vaultlab.dev/app'] ?? dep.metadata.name;
      await Promise.all(
        consumingDeployments(deployments, keysOf).map(async ({ name, probes }) => {
          const dep = deployments.find((d) => d.metadata.name === name)!;
          const via = [...new Set(probes.map((p) => p.via))].join('+');
          if ((dep.spec?.replicas ?? 1) === 0) {
            results.push({ namespace: nsName, app: appOf(dep), target: `Deployment ${name}`, action: 'unchanged (0 replicas)', seconds: seconds() });
            return;
          }
          const before = await podMismatches(kube, nsName, dep, probes, want);
          if (before.pods > 0 && before.problems.length === 0) {
            results.push({ namespace: nsName, app: appOf(dep), target: `Deployment ${name}`, action: `unchanged (${via})`, seconds: seconds() });
            return;
          }
          await kube.mergePatch('apps/v1', 'Deployment', nsName, name, restartPatch(stamp));
          const rolled = await kube
            .waitFor('apps/v1', 'Deployment', nsName, name, (d) => rolledOut(d, stamp), `rolled out (restartedAt ${stamp})`, { timeoutMs: Math.max(1000, deadline - Date.now()), signal })
            .catch((err) => {
              throw new VaultlabError(`Deployment ${nsName}/${name} did not roll out after its restart: ${(err as Error).message}`, { hint: `kubectl -n ${nsName} rollout status deployment ${name}; kubectl -n ${nsName} get pods`, cause: err });
            });
          const problems = await untilPodsHold(kube, nsName, rolled, probes, want, deadline, signal);
          if (problems.length) throw new VaultlabError(`Deployment ${nsName}/${name} restarted, but its pods do not hold the new values: ${problems.join('; ')}`, { hint: `kubectl -n ${nsName} describe deployment ${name}` });
          results.push({ namespace: nsName, app: appOf(dep), target: `Deployment ${name}`, action: `restarted (${via})`, seconds: seconds() });
        }),
      );
    }),
  );
  return results.sort((a, b) => (a.namespace + a.target < b.namespace + b.target ? -1 : 1));
}

/** The target Secret equal to Vault by digest (templated: ESO refreshed it after the stamp); ESO's error decoded when not. */
async function waitSecretMatches(
  kube: Kube,
  plan: Plan,
  ns: NamespacePlan,
  es: ExternalSecretPlan,
  vaultValues: ReadonlyMap<string, Record<string, string> | undefined>,
  o: { notBefore: number; previous: string | undefined; deadline: number; signal: AbortSignal },
): Promise<void> {
  const templated = !!es.template && Object.keys(es.template.data).length > 0;
  let lastError = '';
  const onUpdate = (obj: any) => {
    const r = (obj.status?.conditions ?? []).find((c: any) => c.type === 'Ready' && c.status === 'False');
    if (r?.message) lastError = r.message;
  };
  const expected = new Map<string, string>();
  for (const d of es.data) {
    const v = vaultValues.get(d.path)?.[d.key];
    if (v === undefined) throw new VaultlabError(`${plan.seeding.mount}/${d.path}:${d.key} is not in Vault (ExternalSecret ${ns.name}/${es.name} reads it)`, { hint: 'vaultlab seed' });
    expected.set(d.secretKey, sha256(v));
  }
  const matches = (s: any) => [...expected].every(([k, digest]) => s?.data?.[k] !== undefined && sha256(Buffer.from(s.data[k], 'base64')) === digest);
  const timeoutMs = Math.max(1000, o.deadline - Date.now());
  const wait = templated
    ? kube.waitFor(ES, 'ExternalSecret', ns.name, es.name, (obj) => refreshedAfter(obj, o.notBefore, o.previous), 're-synced', { timeoutMs, signal: o.signal, onUpdate })
    : kube.waitFor('v1', 'Secret', ns.name, es.target, matches, "equal to Vault's values (by digest)", { timeoutMs, signal: o.signal });
  await wait.catch(async (err) => {
    if (!templated) onUpdate((await kube.get<any>(ES, 'ExternalSecret', ns.name, es.name).catch(() => undefined)) ?? {});
    const d = lastError ? decodeEsoError(lastError, ns, plan) : undefined;
    throw new VaultlabError(`ExternalSecret ${ns.name}/${es.name} did not re-sync: ${d ? d.cause : (err as Error).message}`, { hint: d?.fix ?? 'Is ESO running? `vaultlab status` shows it.', cause: err });
  });
}
