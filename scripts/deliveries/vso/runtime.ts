// Vault Secrets Operator at deploy and status time. apply: the CRDs Established, each namespace's
// VaultConnection, each app's ServiceAccount, VaultAuth and VaultStaticSecrets, then every
// VaultStaticSecret synced (status.secretMAC for the current generation, the target Secret there),
// so the samples that follow find their Secrets. verify: each target Secret compared with Vault
// by digest, read with the app's own identity (its role), and what the app's Ready pod holds (env
// or file, sha256 in the pod: the value never leaves it). status: the controller, the
// VaultConnections, VaultAuths and VaultStaticSecrets (their last Warning Event when failing).
// converge: after a rotation, VSO is made to re-read Vault (an annotation VSO reconciles on), its
// rolloutRestartTargets roll the Deployment, and it resolves once the new pod holds the value.
import { need, type DeployContext } from '../../steps/context.ts';
import type { ConvergeResult, DeliveryCheck, DeliveryRuntime, VsoAppPlan, VsoSecretPlan } from '../types.ts';
import type { Plan } from '../../plan/types.ts';
import type { KubeObject } from '../../plan/objects.ts';
import type { Check } from '../../lifecycle/status.ts';
import type { Environment } from '../../lifecycle/connect.ts';
import type { ApplyResult, Kube } from '../../adapters/kube.ts';
import type { VaultClient } from '../../adapters/vault.ts';
import { VaultlabError } from '../../lib/errors.ts';
import { sha256 } from '../../lib/digest.ts';
import { durationSeconds } from '../../config/duration.ts';
import { latestEsoWarning as latestWarning } from '../../lifecycle/eso-diagnose.ts';
import { execInPod, podReady, RESTARTED_AT_ANNOTATION, rolloutComplete, settle } from '../pods.ts';
import { CONNECTION, VSO_API, vsoManifests, vsoOperatorManifests } from './render.ts';
import { CACHE_COMPONENT, checkClientCache } from './client-cache.ts';
import { secretPath } from './plan.ts';

export const VSO_CRDS = ['vaultconnections.secrets.hashicorp.com', 'vaultauths.secrets.hashicorp.com', 'vaultstaticsecrets.secrets.hashicorp.com'];
const ORDER = ['ServiceAccount', 'VaultConnection', 'VaultAuth', 'VaultStaticSecret'];
/** The annotation converge sets on a VaultStaticSecret: VSO reconciles on annotation changes, and re-reads Vault. */
export const FORCE_SYNC = 'vaultlab.dev/force-sync';
/** Where VSO's rollout restart records itself in the Deployment's pod template. */
export const RESTARTED_AT = 'vso.secrets.hashicorp.com/restartedAt';


/** Its objects, validated (the validators load here, on apply, not for `status`), in dependency order. */
export async function vsoObjects(plan: Plan, apps: VsoAppPlan[]): Promise<KubeObject[]> {
  const { validated } = await import('../../plan/validate.ts');
  return plan.namespaces
    .flatMap((ns) => {
      const here = apps.filter((a) => a.namespace === ns.name);
      return here.length ? vsoManifests(plan, ns, here).map((o) => validated(o)) : [];
    })
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
}

/** Synced for its current spec: VSO wrote the Secret and recorded its MAC for this generation. */
export const synced = (o: any): boolean => !!o?.status?.secretMAC && o.status.lastGeneration === o.metadata?.generation;

/** VSO's Warning Events (VaultStaticSecret or VaultAuth) turned into a cause and a fix. */
export function decodeVsoError(message: string, app: VsoAppPlan, plan: Plan): { cause: string; fix: string } {
  const role = plan.vault.kubernetesAuth.roles.find((r) => r.name === app.role);
  const who = `role ${app.role} (ServiceAccount ${app.serviceAccount} in "${app.namespace}", policy ${role?.policies.join(', ') ?? '?'}, audience "${plan.vault.kubernetesAuth.audience}")`;
  if (/invalid audience|aud\) claim/i.test(message)) return { cause: `Vault refused the token audience VSO sent for ${who}`, fix: 'Keep [vault.kubernetes_auth] audience as the VaultAuth has it (vaultlab renders both), then `vaultlab vault configure`.' };
  if (/service account name not authorized|namespace not authorized/i.test(message)) return { cause: `Vault refused VSO's login: ${who} does not bind this ServiceAccount or namespace`, fix: `Run \`vaultlab vault configure\` to restore role ${app.role}.` };
  if (/invalid role name|role .* not found/i.test(message)) return { cause: `Vault has no role ${app.role}`, fix: '`vaultlab vault configure` creates it.' };
  if (/permission denied|\b403\b/i.test(message)) return { cause: `Vault refused VSO: ${who}`, fix: `Check that role ${app.role} binds ServiceAccount ${app.serviceAccount} in "${app.namespace}" and that its policy covers ${plan.vault.kvMount}/${app.namespace}/... (\`vaultlab vault configure\` repairs drift).` };
  if (/serviceaccounts? .* not found|failed to get service account/i.test(message)) return { cause: `ServiceAccount ${app.namespace}/${app.serviceAccount} is missing (VSO requests its tokens)`, fix: '`vaultlab deploy` creates it.' };
  if (/x509|certificate/i.test(message)) return { cause: `VSO does not trust Vault's certificate at ${plan.vault.inClusterAddress}`, fix: `Check Secret vault-ca in "${app.namespace}" (VaultConnection ${CONNECTION}'s caCertSecretRef; \`vaultlab deploy\` writes it).` };
  if (/connection refused|no such host|i\/o timeout|dial tcp|sealed/i.test(message)) return { cause: `VSO cannot reach Vault at ${plan.vault.inClusterAddress}`, fix: 'Check `vaultlab status` (is Vault up and unsealed?), and NetworkPolicies.' };
  if (/\b404\b|not found|no secret/i.test(message)) return { cause: `a path a VaultStaticSecret reads is not in Vault (${plan.vault.kvMount}/)`, fix: 'Run `vaultlab seed`, and check [[secrets]] against the app\'s data mappings.' };
  return { cause: message, fix: `See \`kubectl -n ${app.namespace} describe vaultstaticsecret\`.` };
}

async function failure(kube: Kube, plan: Plan, app: VsoAppPlan, s: VsoSecretPlan, why: string): Promise<VaultlabError> {
  const event = (await latestWarning(kube, 'VaultStaticSecret', app.namespace, s.name)) ?? (await latestWarning(kube, 'VaultAuth', app.namespace, app.name));
  const d = decodeVsoError(event ?? why, app, plan);
  return new VaultlabError(`VaultStaticSecret ${app.namespace}/${s.name} is not synced: ${d.cause}`, { hint: d.fix });
}

/** Waits until VSO synced the VaultStaticSecret; a permanent refusal (403) ends the wait after `settleMs`. */
export async function waitVsoSynced(kube: Kube, plan: Plan, app: VsoAppPlan, s: VsoSecretPlan, opts: { timeoutMs: number; settleMs?: number; signal?: AbortSignal }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const started = Date.now();
  for (;;) {
    const slice = Math.max(1000, Math.min(10_000, deadline - Date.now()));
    try {
      await kube.waitFor(VSO_API, 'VaultStaticSecret', app.namespace, s.name, synced, 'synced (status.secretMAC)', { timeoutMs: slice, ...(opts.signal ? { signal: opts.signal } : {}) });
      return;
    } catch (err) {
      if (!/^timed out after/.test((err as Error).message)) throw err;
      if (Date.now() >= deadline) throw await failure(kube, plan, app, s, (err as Error).message);
      if (Date.now() - started >= (opts.settleMs ?? 45_000)) {
        const event = await latestWarning(kube, 'VaultStaticSecret', app.namespace, s.name);
        if (event && /permission denied|Code: 403|invalid audience|not authorized|invalid role/i.test(event)) throw await failure(kube, plan, app, s, event);
      }
    }
  }
}

/** The app's identity: a token for its ServiceAccount, logged in as its role (what VSO does). */
async function appIdentity(kube: Kube, plan: Plan, vault: VaultClient, app: VsoAppPlan): Promise<VaultClient> {
  const jwt = await kube.createServiceAccountToken(app.namespace, app.serviceAccount, [plan.vault.kubernetesAuth.audience], 600);
  const r = await vault.post<any>(`auth/${plan.vault.kubernetesAuth.mount}/login`, { role: app.role, jwt }, { anonymous: true, retry: false });
  return vault.withToken(r.data.auth.client_token);
}

/** Vault's values of one VaultStaticSecret's path, by key (undefined: not in Vault). */
async function vaultValues(vault: VaultClient, plan: Plan, s: VsoSecretPlan): Promise<Record<string, string> | undefined> {
  return (await vault.kvRead(plan.vault.kvMount, secretPath(s)))?.data as Record<string, string> | undefined;
}

/** The target Secret against Vault's values: exactly the mapped keys, each equal by digest. */
export function compareSecret(app: VsoAppPlan, s: VsoSecretPlan, secret: Record<string, Buffer> | undefined, values: Record<string, string> | undefined): string[] {
  const problems: string[] = [];
  if (!secret) return [`Secret ${app.namespace}/${s.target} does not exist`];
  const want = s.data.map((d) => d.secretKey);
  const have = Object.keys(secret);
  const missing = want.filter((k) => !have.includes(k));
  const extra = have.filter((k) => !want.includes(k));
  if (missing.length) problems.push(`missing key(s) ${missing.join(', ')}`);
  if (extra.length) problems.push(`unexpected key(s) ${extra.join(', ')}`);
  for (const d of s.data) {
    const got = secret[d.secretKey];
    if (!got) continue;
    const expected = values?.[d.key];
    if (expected === undefined) problems.push(`${d.path}:${d.key} is not in Vault`);
    else if (sha256(got) !== sha256(expected)) problems.push(`${d.secretKey} differs from Vault's ${d.path}:${d.key} (digest mismatch)`);
  }
  return problems;
}

/**
 * What the app's pod holds, by digest, against Vault's values: an env variable (the shell expands
 * it and pipes it to sha256sum: the value is in no argv; busybox has no printenv) or the mounted
 * file /etc/secrets/<target>/<key>. The command runs in the pod.
 */
async function podProblems(kube: Kube, app: VsoAppPlan, pod: any, s: VsoSecretPlan, values: Record<string, string>): Promise<string[]> {
  const container = pod.spec.containers[0].name as string;
  // Every key at once: their reads in the pod go out as one exec (pods.ts execInPod).
  const found = await Promise.all(s.data.map(async (d): Promise<string | undefined> => {
    const expected = values[d.key];
    if (expected === undefined) return undefined;
    const env = app.sample === 'env';
    // envFrom skips keys that are not variable names: nothing to compare for those.
    if (env && !ENV_NAME.test(d.secretKey)) return undefined;
    const cmd = env ? ['sh', '-c', 'eval "test -n \\"\\${$0+x}\\"" || exit 3; eval "v=\\"\\${$0}\\""; printf %s "$v" | sha256sum', d.secretKey] : ['sha256sum', `/etc/secrets/${s.target}/${d.secretKey}`];
    const r = await execInPod(kube, app.namespace, pod.metadata.name, container, cmd);
    const digest = /^([0-9a-f]{64})\s/.exec(r.stdout)?.[1];
    const want = sha256(expected);
    if (!r.ok || !digest) return `pod ${pod.metadata.name} has no ${env ? `variable ${d.secretKey}` : `file /etc/secrets/${s.target}/${d.secretKey}`}`;
    if (digest !== want) return `pod ${pod.metadata.name}'s ${env ? `$${d.secretKey}` : `/etc/secrets/${s.target}/${d.secretKey}`} differs from Vault's ${d.path}:${d.key} (digest mismatch)`;
    return undefined;
  }));
  return found.filter((p): p is string => p !== undefined);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Ready pods of the app's Deployment whose pod template carries `stamp` (annotation and value: the restart they came from), when given. */
async function currentPods(kube: Kube, app: VsoAppPlan, stamp?: { annotation: string; value: string }): Promise<any[]> {
  const pods = (await kube.list<any>('v1', 'Pod', app.namespace, `app.kubernetes.io/name=${app.name}`)).filter(podReady);
  return stamp ? pods.filter((p) => p.metadata?.annotations?.[stamp.annotation] === stamp.value) : pods;
}

export const vsoRuntime: DeliveryRuntime<'vso'> = {
  async apply(ctx, apps, report) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    report('waiting for the VSO CRDs');
    await kube.waitForCrdsEstablished(VSO_CRDS, ctx.options.timeoutMs);
    const results: ApplyResult[] = [];
    // The transit client cache: VSO's own VaultConnection (production: and Vault's CA) in its
    // namespace, valid before any app logs in, so the first client VSO caches is encrypted.
    const own = vsoOperatorManifests(plan);
    if (own.length) {
      report('client cache: VSO\'s VaultConnection');
      // Loaded here, on apply: the TLS modules (cert-manager's models among them) are not for `status`.
      const ca = plan.vault.tls ? [(await import('../../tls/certs.ts')).caSecret(plan.vso.namespace, (await import('../../steps/install.ts')).vaultCaPem(ctx))] : [];
      results.push(...(await kube.apply([...ca, ...own])));
      await kube.waitFor(VSO_API, 'VaultConnection', plan.vso.namespace, CONNECTION, (o) => o?.status?.valid === true, 'valid', { timeoutMs: ctx.options.timeoutMs });
    }
    report('applying');
    results.push(...(await kube.apply(await vsoObjects(plan, apps))));
    report('waiting for the VaultStaticSecrets to sync');
    await Promise.all(apps.flatMap((a) => a.secrets.map((s) => waitVsoSynced(kube, plan, a, s, { timeoutMs: ctx.options.timeoutMs }))));
    const n = apps.reduce((k, a) => k + a.secrets.length, 0);
    return { applied: results.length, changed: results.filter((r) => r.action !== 'unchanged').length, detail: `${n} VaultStaticSecret(s) synced${plan.vso.clientCache ? `, client cache encrypted with ${plan.vso.clientCache.transitMount}/keys/${plan.vso.clientCache.keyName}` : ''}` };
  },

  async verify(ctx: DeployContext, apps, report, signal) {
    const kube = need(ctx.kube, 'kube');
    const vault = need(ctx.vault, 'vault');
    const { plan } = ctx;
    const checks: DeliveryCheck[] = [];
    for (const app of apps) {
      const asApp = await appIdentity(kube, plan, vault, app);
      try {
        for (const s of app.secrets) {
          report(`${app.namespace}/${s.name}`);
          await waitVsoSynced(kube, plan, app, s, { timeoutMs: ctx.options.timeoutMs, signal });
          const values = await vaultValues(asApp, plan, s);
          // VSO re-reads Vault every refreshAfter (with jitter): a value changed since (reset, rotation) may take that long.
          const refreshMs = Math.min(150_000, Math.max(30_000, durationSeconds(s.refreshAfter) * 1500));
          const problems = await settle(Date.now() + refreshMs, signal, async () => compareSecret(app, s, (await kube.readSecret(app.namespace, s.target))?.data, values));
          if (problems.length === 0 && !ctx.options.skipSamples && app.sample !== 'none' && values) {
            const until = Date.now() + 90_000;
            problems.push(...(await settle(until, signal, async () => {
              const pods = await currentPods(kube, app);
              if (pods.length === 0) return [`no Ready pod of ${app.namespace}/${app.name}`];
              return (await Promise.all(pods.map((p) => podProblems(kube, app, p, s, values)))).flat();
            })));
          }
          checks.push({ namespace: app.namespace, target: s.target, ok: problems.length === 0, problems, delivery: 'vso', app: app.name });
        }
      } finally {
        asApp.close();
      }
    }
    // Each app's cached client: in VSO's namespace, transit ciphertext only.
    if (plan.vso.clientCache) {
      report('client cache');
      checks.push(...(await checkClientCache(kube, plan, apps, signal)));
    }
    return checks;
  },

  async status(env: Environment, apps) {
    const { plan, kube } = env;
    if (!kube) return [];
    const list = (kind: string, ns: string, apiVersion = VSO_API) => kube.list<any>(apiVersion, kind, ns).catch((): any[] => []);
    const byName = (items: any[]) => new Map(items.map((o) => [o.metadata.name as string, o]));
    const namespaces = [...new Set(apps.map((a) => a.namespace))].sort();
    const [deps, perNs] = await Promise.all([
      kube.list<any>('apps/v1', 'Deployment', plan.vso.namespace, `app.kubernetes.io/instance=${plan.vso.release}`).catch((): any[] => []),
      Promise.all(namespaces.map(async (ns) => [ns, byName(await list('VaultConnection', ns)), byName(await list('VaultAuth', ns)), byName(await list('VaultStaticSecret', ns))] as const)),
    ]);
    const checks: Check[] = [];
    const available = (d: any) => (d.status?.conditions ?? []).some((c: any) => c.type === 'Available' && c.status === 'True');
    if (deps.length === 0) checks.push({ name: 'vso', ok: false, detail: `no Vault Secrets Operator deployment (release ${plan.vso.release}) in namespace ${plan.vso.namespace}`, fix: 'vaultlab deploy' });
    else {
      const down = deps.filter((d) => !available(d));
      checks.push({
        name: 'vso',
        ok: down.length === 0,
        detail: down.length ? `not available: ${down.map((d) => d.metadata.name).join(', ')}` : `available: ${deps.map((d) => d.metadata.name).sort().join(', ')}`,
        ...(down.length ? { fix: `kubectl -n ${plan.vso.namespace} get pods; \`vaultlab deploy\` reinstalls it` } : {}),
      });
    }
    const cache = plan.vso.clientCache;
    if (cache) {
      const stored = await kube.list<any>('v1', 'Secret', plan.vso.namespace, CACHE_COMPONENT).catch((): any[] => []);
      const clear = stored.filter((s) => s.metadata?.labels?.encrypted !== 'true');
      checks.push({
        name: 'VSO client cache',
        ok: clear.length === 0 && stored.length > 0,
        detail: clear.length
          ? `${clear.length} of ${stored.length} cached client(s) not encrypted`
          : stored.length === 0
            ? `no cached client in ${plan.vso.namespace}: VSO could not encrypt them with ${cache.transitMount}/keys/${cache.keyName}`
          : `${stored.length} cached client(s) in ${plan.vso.namespace}, encrypted with ${cache.transitMount}/keys/${cache.keyName}`,
        ...(clear.length || stored.length === 0 ? { fix: `kubectl -n ${plan.vso.namespace} describe vaultauth ${cache.vaultAuth}; \`vaultlab vault configure\` restores role ${cache.role}` } : {}),
      });
    }
    for (const [ns, connections, auths, statics] of perNs) {
      const conn = connections.get(CONNECTION);
      const connOk = conn?.status?.valid === true;
      checks.push({ name: `VaultConnection ${ns}/${CONNECTION}`, ok: connOk, detail: conn ? (connOk ? `valid (${conn.spec?.address})` : `not valid (${conn.spec?.address})`) : 'missing', ...(connOk ? {} : { fix: conn ? `kubectl -n ${ns} describe vaultconnection ${CONNECTION}` : 'vaultlab deploy' }) });
      for (const app of apps.filter((a) => a.namespace === ns)) {
        const auth = auths.get(app.name);
        const authOk = auth?.status?.valid === true;
        const authWhy = auth && !authOk ? (auth.status?.error || (await latestWarning(kube, 'VaultAuth', ns, app.name)) || 'not validated yet') : '';
        checks.push({
          name: `VaultAuth ${ns}/${app.name}`,
          ok: authOk,
          detail: !auth ? 'missing' : authOk ? `valid (role ${app.role}, ServiceAccount ${app.serviceAccount})` : `not valid: ${decodeVsoError(authWhy, app, plan).cause}`,
          ...(authOk ? {} : { fix: auth ? decodeVsoError(authWhy, app, plan).fix : 'vaultlab deploy' }),
        });
        for (const s of app.secrets) {
          const o = statics.get(s.name);
          const ok = synced(o);
          const why = o && !ok ? (await latestWarning(kube, 'VaultStaticSecret', ns, s.name)) ?? 'not synced yet' : '';
          checks.push({
            name: `VaultStaticSecret ${ns}/${s.name}`,
            ok,
            detail: !o ? 'missing' : ok ? `synced -> Secret ${s.target}${s.rolloutRestart ? `, restarts Deployment ${app.name}` : ''}` : `not synced: ${decodeVsoError(why, app, plan).cause}`,
            ...(ok ? {} : { fix: o ? decodeVsoError(why, app, plan).fix : 'vaultlab deploy' }),
          });
        }
      }
    }
    return checks;
  },

  async converge(env, apps, changed, signal) {
    const kube = env.kube;
    if (!kube) throw new VaultlabError(`cannot reach the cluster to bring the rotated values to the VSO apps: ${env.kubeProblem ?? 'no connection'}`, env.kubeFix ? { hint: env.kubeFix } : {});
    const { plan } = env;
    const t0 = Date.now();
    const reads = (s: VsoSecretPlan) => s.data.some((d) => changed.some((c) => c.path === d.path && c.key === d.key));
    const out: ConvergeResult[] = [];
    await Promise.all(
      apps.map(async (app) => {
        const touched = app.secrets.filter(reads);
        for (const s of app.secrets.filter((x) => !reads(x))) out.push({ namespace: app.namespace, app: app.name, target: s.target, action: 'unchanged', seconds: 0 });
        if (touched.length === 0) return;
        const deadline = Date.now() + 240_000;
        const before = (await kube.get<any>('apps/v1', 'Deployment', app.namespace, app.name).catch(() => undefined))?.spec?.template?.metadata?.annotations?.[RESTARTED_AT];
        // VSO reconciles a VaultStaticSecret when its annotations change: it re-reads Vault, and a
        // new MAC means a sync and (rolloutRestartTargets) a rollout restart of the Deployment.
        const stamp = new Date().toISOString();
        for (const s of touched) await kube.mergePatch(VSO_API, 'VaultStaticSecret', app.namespace, s.name, { metadata: { annotations: { [FORCE_SYNC]: stamp } } });
        // Read as the app's own role (what VSO reads): production's setup token may write values, not read them.
        const values = new Map<string, Record<string, string> | undefined>();
        const asApp = await appIdentity(kube, plan, env.vault, app);
        try {
          for (const s of touched) values.set(s.name, await vaultValues(asApp, plan, s));
        } finally {
          asApp.close();
        }
        for (const s of touched) {
          const problems = await settle(deadline, signal, async () => compareSecret(app, s, (await kube.readSecret(app.namespace, s.target))?.data, values.get(s.name)));
          if (problems.length) throw new VaultlabError(`VSO did not re-sync Secret ${app.namespace}/${s.target} after the rotation: ${problems.join('; ')}`, { hint: `kubectl -n ${app.namespace} describe vaultstaticsecret ${s.name}; \`vaultlab status\`` });
        }
        if (app.sample === 'none') {
          for (const s of touched) out.push({ namespace: app.namespace, app: app.name, target: s.target, action: 're-synced', seconds: Math.round((Date.now() - t0) / 1000) });
          return;
        }
        const rolledByVso = touched.some((s) => s.rolloutRestart);
        // The restart the new pods come from: VSO's own (its annotation), or vaultlab's (kubectl's, as ESO's converge writes it).
        let restartedAt: { annotation: string; value: string } | undefined;
        if (rolledByVso) {
          const dep = await kube.waitFor('apps/v1', 'Deployment', app.namespace, app.name, (d) => {
            const now = d.spec?.template?.metadata?.annotations?.[RESTARTED_AT];
            return !!now && now !== before && rolloutComplete(d);
          }, "VSO's rollout restart complete", { timeoutMs: Math.max(1000, deadline - Date.now()), signal });
          restartedAt = { annotation: RESTARTED_AT, value: dep.spec.template.metadata.annotations[RESTARTED_AT] };
        } else if (app.sample === 'env') {
          // No rolloutRestartTargets, and env is read once at start: vaultlab restarts the
          // Deployment itself, as `kubectl rollout restart` does (its annotation, not VSO's).
          const stamp = { annotation: RESTARTED_AT_ANNOTATION, value: new Date().toISOString() };
          restartedAt = stamp;
          await kube.mergePatch('apps/v1', 'Deployment', app.namespace, app.name, { spec: { template: { metadata: { annotations: { [stamp.annotation]: stamp.value } } } } });
          await kube.waitFor('apps/v1', 'Deployment', app.namespace, app.name, (d) => d.spec?.template?.metadata?.annotations?.[stamp.annotation] === stamp.value && rolloutComplete(d), 'rollout restart complete', { timeoutMs: Math.max(1000, deadline - Date.now()), signal });
        }
        for (const s of touched) {
          const v = values.get(s.name) ?? {};
          const problems = await settle(deadline, signal, async () => {
            const pods = await currentPods(kube, app, restartedAt);
            if (pods.length === 0) return [`no Ready pod of ${app.namespace}/${app.name}${restartedAt ? ' from the restart' : ''}`];
            return (await Promise.all(pods.map((p) => podProblems(kube, app, p, s, v)))).flat();
          });
          if (problems.length) throw new VaultlabError(`the rotated value did not reach ${app.namespace}/${app.name}: ${problems.join('; ')}`, { hint: `kubectl -n ${app.namespace} get pods -l app.kubernetes.io/name=${app.name}` });
          out.push({ namespace: app.namespace, app: app.name, target: s.target, action: rolledByVso ? 'rolled by VSO' : app.sample === 'env' ? 'restarted' : 're-synced', seconds: Math.round((Date.now() - t0) / 1000) });
        }
      }),
    );
    return out;
  },
};
