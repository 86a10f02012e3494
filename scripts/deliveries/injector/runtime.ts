// Vault Agent Injector at deploy and status time. apply: each app's ServiceAccount, and (when
// workloads follow) the injector's webhook answering, so no pod is created unmutated (the chart's
// failurePolicy is Ignore). verify: in each app's pod the file the agent rendered, compared by
// digest (sha256sum runs in the pod: the value never leaves it) with the file built from Vault's
// values, read with the app's own identity. status: webhook registered, Service endpoints, agent
// containers' errors decoded.
import { need, type DeployContext } from '../../steps/context.ts';
import type { ChangedValue, ConvergeResult, DeliveryCheck, DeliveryRuntime, InjectorAppPlan, InjectorFilePlan, SecretDataPlan } from '../types.ts';
import type { Plan } from '../../plan/types.ts';
import type { KubeObject } from '../../plan/objects.ts';
import type { Check } from '../../lifecycle/status.ts';
import type { Environment } from '../../lifecycle/connect.ts';
import { guardPods, PodProblemError, type Kube } from '../../adapters/kube.ts';
import type { VaultClient } from '../../adapters/vault.ts';
import { VaultlabError } from '../../lib/errors.ts';
import { sha256 } from '../../lib/digest.ts';
import { injectorManifests, STATIC_RENDER_INTERVAL_S } from './render.ts';
import { execInPod, podReady } from '../pods.ts';
import { expectedDefaultFile, renderSimpleTemplate } from './plan.ts';

export const AGENT_INIT = 'vault-agent-init';
export const AGENT = 'vault-agent';

/** The chart's names for the injector (fullnameOverride = the release). */
export const injectorNames = (plan: Plan) => ({
  deployment: `${plan.vault.release}-agent-injector`,
  service: `${plan.vault.release}-agent-injector-svc`,
  webhook: `${plan.vault.release}-agent-injector-cfg`,
  selector: `app.kubernetes.io/name=${plan.vault.chart.chart}-agent-injector`,
});

/** Its objects, validated (the validators load here, on apply, not for `status`). */
export async function injectorObjects(plan: Plan, apps: InjectorAppPlan[]): Promise<KubeObject[]> {
  const { validated } = await import('../../plan/validate.ts');
  return plan.namespaces.flatMap((ns) => {
    const here = apps.filter((a) => a.namespace === ns.name);
    return here.length ? injectorManifests(plan, ns, here).map((o) => validated(o)) : [];
  });
}

/**
 * The agent's log (its init container's, mostly) turned into a cause and a fix. Vault's 403 on
 * login is the common one: the role does not bind the pod's ServiceAccount or namespace, the
 * token's audience is not the role's, or the policy does not cover the path.
 */
export function decodeAgentError(log: string, app: InjectorAppPlan, plan: Plan): { cause: string; fix: string } {
  const role = plan.vault.kubernetesAuth.roles.find((r) => r.name === app.role);
  const who = `role ${app.role} (ServiceAccount ${app.serviceAccount} in "${app.namespace}", policy ${role?.policies.join(', ') ?? '?'}, audience "${plan.vault.kubernetesAuth.audience}")`;
  if (/invalid audience|aud\) claim/i.test(log)) return { cause: `Vault refused the agent's token audience for ${who}`, fix: 'Keep [vault.kubernetes_auth] audience as the pod\'s projected token has it (vaultlab renders both), then `vaultlab vault configure` and restart the pod.' };
  if (/service account name not authorized|namespace not authorized/i.test(log)) return { cause: `Vault refused the agent's login: ${who} does not bind this pod's ServiceAccount or namespace`, fix: `Run \`vaultlab vault configure\` to restore role ${app.role}, and check the pod runs as ServiceAccount ${app.serviceAccount}.` };
  if (/invalid role name|role .* not found/i.test(log)) return { cause: `Vault has no role ${app.role}`, fix: '`vaultlab vault configure` creates it.' };
  if (/permission denied|\b403\b/i.test(log)) {
    return { cause: `Vault refused the agent: ${who}`, fix: `Check that role ${app.role} binds ServiceAccount ${app.serviceAccount} in "${app.namespace}" with audience "${plan.vault.kubernetesAuth.audience}" and that its policy covers ${plan.vault.kvMount}/${app.namespace}/... (\`vaultlab vault configure\` repairs drift).` };
  }
  if (/x509|certificate|tls/i.test(log)) return { cause: `the agent does not trust Vault's certificate at ${plan.vault.inClusterAddress}`, fix: 'Check Secret vault-ca in the app\'s namespace (`vaultlab deploy` writes it).' };
  if (/connection refused|no such host|i\/o timeout|dial tcp/i.test(log)) return { cause: `the agent cannot reach Vault at ${plan.vault.inClusterAddress}`, fix: 'Check `vaultlab status` (is Vault up and unsealed?), and NetworkPolicies.' };
  if (/no secret exists|secret .* not found|missing/i.test(log)) return { cause: 'a path the template reads is not in Vault', fix: 'Run `vaultlab seed`, and check [[secrets]] against the app\'s data mappings.' };
  return { cause: log.split('\n').slice(-3).join(' ').trim() || 'unknown', fix: `\`kubectl -n ${app.namespace} logs <pod> -c ${AGENT_INIT}\` shows the agent's log.` };
}

export { execInPod } from '../pods.ts';

/** The app's identity: a token for its ServiceAccount, logged in as its role (what the agent does). */
async function appIdentity(kube: Kube, plan: Plan, vault: VaultClient, app: InjectorAppPlan): Promise<VaultClient> {
  const jwt = await kube.createServiceAccountToken(app.namespace, app.serviceAccount, [plan.vault.kubernetesAuth.audience], 600);
  const r = await vault.post<any>(`auth/${plan.vault.kubernetesAuth.mount}/login`, { role: app.role, jwt }, { anonymous: true, retry: false });
  return vault.withToken(r.data.auth.client_token);
}

const ready = podReady;
const readsChanged = (data: SecretDataPlan[], changed: ChangedValue[]) => data.some((d) => changed.some((c) => c.path === d.path && c.key === d.key));

/** One app's files: what its Ready pod holds against what Vault's values make. */
export async function checkAppFiles(kube: Kube, plan: Plan, app: InjectorAppPlan, pod: any, vault: VaultClient, renderWaitMs = 2 * STATIC_RENDER_INTERVAL_S * 1000, intervalMs = 2000, only?: (f: InjectorFilePlan) => boolean): Promise<DeliveryCheck[]> {
  const containers: string[] = (pod.spec?.containers ?? []).map((c: any) => c.name);
  const initContainers: string[] = (pod.spec?.initContainers ?? []).map((c: any) => c.name);
  const appContainer = containers.find((c) => c !== AGENT) ?? containers[0]!;
  const mutated = initContainers.includes(AGENT_INIT) || containers.includes(AGENT);
  const asApp = mutated ? await appIdentity(kube, plan, vault, app) : undefined;
  try {
    // Every file at once: their reads in the pod go out as one exec (pods.ts execInPod).
    return await Promise.all(app.files.filter((x) => !only || only(x)).map(async (f): Promise<DeliveryCheck> => {
      const problems: string[] = [];
      if (mutated && f.database) problems.push(...(await checkDatabaseFile(kube, app, pod.metadata.name, appContainer, f, vault)));
      else if (!mutated) problems.push(`pod ${pod.metadata.name} has no Vault Agent: the injector's webhook did not mutate it (is it registered and answering? \`vaultlab status\`)`);
      else {
        // A value changed in Vault (reset, rotation) reaches the file at the agent's next static
        // render: a mismatch is asked again until then, so what passes is what the pod holds now.
        const until = Date.now() + renderWaitMs;
        for (;;) {
          const r = await execInPod(kube, app.namespace, pod.metadata.name, appContainer, ['sha256sum', f.file]);
          const digest = /^([0-9a-f]{64})\s/.exec(r.stdout)?.[1];
          if (!r.ok || !digest) {
            problems.push(`${f.file} is not in pod ${pod.metadata.name}${r.stderr ? ` (${r.stderr.trim().split('\n')[0]})` : ''}`);
            break;
          }
          const values = new Map<string, string | undefined>();
          for (const d of f.data) {
            if (!values.has(`${d.path}\u0000${d.key}`)) values.set(`${d.path}\u0000${d.key}`, (await asApp!.kvRead(plan.vault.kvMount, d.path))?.data[d.key]);
          }
          const missing = f.data.filter((d) => values.get(`${d.path}\u0000${d.key}`) === undefined);
          if (missing.length) {
            problems.push(`${missing.map((d) => `${d.path}:${d.key}`).join(', ')} not in Vault`);
            break;
          }
          const value = (d: SecretDataPlan) => values.get(`${d.path}\u0000${d.key}`)!;
          // A file_template only the agent can render (functions, pipelines): its presence is what is checked.
          const expected = f.fileTemplate === undefined ? expectedDefaultFile(f.data, value) : renderSimpleTemplate(f.fileTemplate, Object.fromEntries(f.data.map((d) => [d.secretKey, value(d)])));
          if (expected === undefined || sha256(expected) === digest) break;
          if (Date.now() >= until) {
            problems.push(`${f.file} differs from Vault's values (digest mismatch after ${Math.round(renderWaitMs / 1000)} s: the agent has not rendered Vault's current values; \`kubectl -n ${app.namespace} logs ${pod.metadata.name} -c ${AGENT}\`)`);
            break;
          }
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      }
      return { namespace: app.namespace, target: `${app.name}:${f.file}`, ok: problems.length === 0, problems, delivery: 'injector', app: app.name };
    }));
  } finally {
    asApp?.close();
  }
}

/** What a database_role file and a connection with it say, read in the pod (argv holds no secret: the file is sourced there). */
export interface DatabaseFileProbe {
  /** PGUSER of the rendered file. */
  fileUser: string;
  leaseId: string;
  /** current_user of a connection made with the file's credentials; undefined when it failed. */
  dbUser: string | undefined;
  error: string | undefined;
}

export async function probeDatabaseFile(kube: Kube, namespace: string, pod: string, container: string, file: string): Promise<DatabaseFileProbe | undefined> {
  const script = `. '${file}' || exit 3; export PGUSER PGPASSWORD PGHOST PGPORT PGDATABASE; printf 'file_user=%s\\nlease_id=%s\\n' "$PGUSER" "$VAULT_LEASE_ID"; if u=$(psql -XqtA -c 'SELECT current_user' 2>&1); then printf 'db_user=%s\\n' "$u"; else printf 'error=%s\\n' "$(echo "$u" | head -n 1)"; fi`;
  const r = await execInPod(kube, namespace, pod, container, ['sh', '-c', script]);
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1]?.trim();
  const fileUser = field('file_user');
  if (!fileUser) return undefined;
  return { fileUser, leaseId: field('lease_id') ?? '', dbUser: field('db_user') || undefined, error: field('error') };
}

/**
 * A database_role file: inside the pod, the rendered user connects and is current_user, and the
 * rendered lease is one of Vault's for database/creds/<role>. The agent may be replacing the
 * lease right then (its init container's lease, then the sidecar's own): asked again for a while.
 */
async function checkDatabaseFile(kube: Kube, app: InjectorAppPlan, pod: string, container: string, f: InjectorAppPlan['files'][number], vault: VaultClient, waitMs = 60_000): Promise<string[]> {
  const db = f.database!;
  const until = Date.now() + waitMs;
  for (;;) {
    const problems: string[] = [];
    const p = await probeDatabaseFile(kube, app.namespace, pod, container, f.file);
    if (!p) problems.push(`${f.file} in pod ${pod} has no PGUSER (the agent has not rendered database/creds/${db.role})`);
    else {
      if (p.dbUser === undefined) problems.push(`user "${p.fileUser}" of ${f.file} cannot connect to ${db.host}:${db.port}/${db.database}: ${p.error ?? 'psql failed'}`);
      else if (p.dbUser !== p.fileUser) problems.push(`connected as "${p.dbUser}", but ${f.file} names "${p.fileUser}"`);
      if (!p.leaseId.startsWith(`${db.credsPath}/`)) problems.push(`${f.file} names no lease of ${db.credsPath} (VAULT_LEASE_ID "${p.leaseId}")`);
      else {
        // 400 "invalid lease": not (or no longer) one of Vault's leases.
        const lease = await vault.put<any>('sys/leases/lookup', { lease_id: p.leaseId }, { accept: [400] });
        if (lease.status === 400 || !lease.data?.data?.expire_time) problems.push(`lease ${p.leaseId} of ${f.file} is not active in Vault`);
      }
    }
    if (problems.length === 0 || Date.now() >= until) return problems;
    await new Promise((r) => setTimeout(r, 3000));
  }
}

export const injectorRuntime: DeliveryRuntime<'injector'> = {
  async apply(ctx, apps, report) {
    const kube = need(ctx.kube, 'kube');
    const { plan } = ctx;
    const results = await kube.apply(await injectorObjects(plan, apps));
    // Pods created before the webhook answers are not mutated (failurePolicy Ignore): wait for it
    // when workloads follow.
    if (!ctx.options.skipSamples && apps.some((a) => a.sample !== 'none')) {
      const n = injectorNames(plan);
      report(`waiting for ${plan.vault.namespace}/${n.deployment} to be Available`);
      await guardPods(kube, plan.vault.namespace, n.selector, (signal) => kube.waitForCondition('apps/v1', 'Deployment', plan.vault.namespace, n.deployment, 'Available', { timeoutMs: ctx.options.timeoutMs, signal }));
    }
    return { applied: results.length, changed: results.filter((r) => r.action !== 'unchanged').length, detail: `${apps.length} injector app(s)` };
  },

  async verify(ctx: DeployContext, apps, report) {
    const kube = need(ctx.kube, 'kube');
    const vault = need(ctx.vault, 'vault');
    const { plan } = ctx;
    // Files exist only in pods: --skip-samples (or sample = "none") leaves nothing to compare.
    if (ctx.options.skipSamples) return [];
    // Every app at once (each waits on its own Deployment and pod); the checks keep the apps' order.
    const perApp = await Promise.all(apps.filter((a) => a.sample !== 'none').map(async (app): Promise<DeliveryCheck[]> => {
      report(`${app.namespace}/${app.name}: files in the pod`);
      const selector = `app.kubernetes.io/name=${app.name}`;
      try {
        await guardPods(kube, app.namespace, selector, (signal) => kube.waitForCondition('apps/v1', 'Deployment', app.namespace, app.name, 'Available', { timeoutMs: ctx.options.timeoutMs, signal }));
      } catch (err) {
        if (err instanceof PodProblemError && err.problem.container.startsWith('vault-agent')) {
          const d = decodeAgentError(err.message, app, plan);
          throw new VaultlabError(`the Vault Agent in ${app.namespace}/${err.problem.pod} cannot render its files: ${d.cause}`, { hint: d.fix, cause: err });
        }
        throw err;
      }
      const pod = (await kube.list<any>('v1', 'Pod', app.namespace, selector)).find(ready);
      if (!pod) throw new VaultlabError(`no Ready pod of ${app.namespace}/${app.name}`, { hint: `kubectl -n ${app.namespace} get pods -l ${selector}` });
      return checkAppFiles(kube, plan, app, pod, vault);
    }));
    return perApp.flat();
  },

  // The agent re-renders its files at each static render (every STATIC_RENDER_INTERVAL_S): each
  // file that reads a changed value is asked for, by digest, until it holds Vault's values.
  async converge(env: Environment, apps, changed, signal, opts = {}) {
    const { plan, kube, vault } = env;
    if (!kube) throw new VaultlabError(`the cluster is not reachable (${env.kubeProblem}): the injected files cannot be checked`, { hint: env.kubeFix ?? 'vaultlab status' });
    if (opts.secretsOnly) return [];
    const t0 = performance.now();
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const results: ConvergeResult[] = [];
    await Promise.all(
      apps.map(async (app) => {
        const files = app.files.filter((f) => readsChanged(f.data, changed));
        if (files.length === 0 || app.sample === 'none') return;
        const selector = `app.kubernetes.io/name=${app.name}`;
        const pods = (await kube.list<any>('v1', 'Pod', app.namespace, selector)).filter(ready);
        if (pods.length === 0) throw new VaultlabError(`no Ready pod of ${app.namespace}/${app.name} to render the new values`, { hint: `kubectl -n ${app.namespace} get pods -l ${selector}` });
        await Promise.all(
          pods.flatMap((pod) =>
            files.map(async (f) => {
              if (signal.aborted) throw new VaultlabError('cancelled');
              const [check] = await checkAppFiles(kube, plan, app, pod, vault, Math.max(1000, timeoutMs - (performance.now() - t0)), 500, (x) => x === f);
              if (!check!.ok) throw new VaultlabError(`${app.namespace}/${pod.metadata.name}: ${check!.problems.join('; ')}`, { hint: `kubectl -n ${app.namespace} logs ${pod.metadata.name} -c ${AGENT}` });
              results.push({ namespace: app.namespace, app: app.name, target: `${pod.metadata.name}:${f.file}`, action: f.fileTemplate !== undefined && renderSimpleTemplate(f.fileTemplate, Object.fromEntries(f.data.map((d) => [d.secretKey, '']))) === undefined ? 're-rendered (custom template: presence checked)' : 're-rendered', seconds: Math.round(performance.now() - t0) / 1000 });
            }),
          ),
        );
      }),
    );
    return results.sort((a, b) => (a.namespace + a.target < b.namespace + b.target ? -1 : 1));
  },

  async status(env: Environment, apps) {
    const { plan, kube } = env;
    if (!kube) return [];
    const n = injectorNames(plan);
    const [webhook, endpoints, pods] = await Promise.all([
      kube.get<any>('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', undefined, n.webhook).catch(() => undefined),
      kube.get<any>('v1', 'Endpoints', plan.vault.namespace, n.service).catch(() => undefined),
      Promise.all(apps.map(async (a) => [a, await kube.list<any>('v1', 'Pod', a.namespace, `app.kubernetes.io/name=${a.name}`).catch((): any[] => [])] as const)),
    ]);
    const checks: Check[] = [];
    const hooks = webhook?.webhooks ?? [];
    const caOk = hooks.every((h: any) => h.clientConfig?.caBundle);
    checks.push({
      name: 'injector webhook',
      ok: !!webhook && hooks.length > 0 && caOk,
      detail: !webhook ? `MutatingWebhookConfiguration ${n.webhook} is not registered` : !caOk ? `${n.webhook} has no caBundle yet (the injector sets it at start-up)` : `${n.webhook} registered (${hooks.map((h: any) => h.name).join(', ')}, failurePolicy ${hooks[0]?.failurePolicy ?? '?'})`,
      ...(!webhook || !caOk ? { fix: `vaultlab deploy (the Vault chart installs the injector); kubectl -n ${plan.vault.namespace} logs deploy/${n.deployment}` } : {}),
    });
    const addresses = (endpoints?.subsets ?? []).flatMap((s: any) => s.addresses ?? []);
    checks.push({
      name: 'injector endpoints',
      ok: addresses.length > 0,
      detail: addresses.length ? `Service ${plan.vault.namespace}/${n.service}: ${addresses.length} ready endpoint(s)` : `Service ${plan.vault.namespace}/${n.service} has no ready endpoint: the webhook cannot answer, and new pods start without their agent`,
      ...(addresses.length ? {} : { fix: `kubectl -n ${plan.vault.namespace} get pods -l ${n.selector}` }),
    });
    for (const [app, list] of pods) {
      if (app.sample === 'none' || list.length === 0) continue;
      for (const pod of list) {
        const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
        const mutated = statuses.some((s: any) => s.name === AGENT_INIT || s.name === AGENT) || (pod.spec?.initContainers ?? []).some((c: any) => c.name === AGENT_INIT);
        // Failing: ended with an error, or waiting after one (a crash loop). A container running
        // again is not: its last exit may be the node's restart (143, 137, 255), not the agent's.
        const failing = statuses.find((s: any) => (s.name === AGENT_INIT || s.name === AGENT) && (s.state?.terminated?.exitCode > 0 || s.state?.waiting?.reason === 'CrashLoopBackOff' || (!!s.state?.waiting && s.lastState?.terminated?.exitCode > 0)));
        if (!mutated) {
          checks.push({ name: `agent ${app.namespace}/${pod.metadata.name}`, ok: false, detail: 'no Vault Agent in the pod: it was created while the injector webhook did not answer', fix: `kubectl -n ${app.namespace} rollout restart deployment ${app.name}` });
          continue;
        }
        if (!failing) {
          checks.push({ name: `agent ${app.namespace}/${pod.metadata.name}`, ok: true, detail: `role ${app.role}; ${app.files.map((f) => f.file).join(', ')}` });
          continue;
        }
        const log = await kube.podLog(app.namespace, pod.metadata.name, failing.name, { tailLines: 20, previous: !failing.state?.terminated && !!failing.lastState?.terminated }).catch(() => '');
        const d = decodeAgentError(log, app, plan);
        checks.push({ name: `agent ${app.namespace}/${pod.metadata.name}`, ok: false, detail: `${failing.name} fails: ${d.cause}`, fix: d.fix });
      }
    }
    return checks;
  },
};
