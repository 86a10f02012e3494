// ESO at deploy time: applying through its admission webhook (retried while it comes up), waiting
// for SecretStores and ExternalSecrets with their failures decoded, ESO's own Vault identity, and
// the digest comparison of a target Secret with Vault (values never printed).
import { currentSignal } from '../../lib/tasks.ts';
import type { ExternalSecretPlan, NamespacePlan, Plan } from '../../plan/types.ts';
import type { KubeObject } from '../../plan/objects.ts';
import { VaultApiError, VaultClient } from '../../adapters/vault.ts';
import type { ApplyResult, Kube } from '../../adapters/kube.ts';
import { VaultlabError } from '../../lib/errors.ts';
import { sha256 } from '../../lib/digest.ts';
import type { DeliveryCheck } from '../types.ts';

/** ESO's admission webhook not answering yet (just installed, CA not injected): retry, not fail. */
export function webhookNotReady(message: string): boolean {
  return /failed calling webhook|failed to call webhook|connection refused|no endpoints available|context deadline exceeded|x509|service unavailable|\(HTTP 50[23]\)/i.test(message);
}

export async function applyWithRetry(kube: Pick<Kube, 'apply'>, objects: KubeObject[], timeoutMs = 120_000): Promise<ApplyResult[]> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await kube.apply(objects);
    } catch (err) {
      if (currentSignal()?.aborted) throw err;
      const msg = (err as Error).message;
      const transient = webhookNotReady(msg);
      if (!transient || Date.now() > deadline) {
        if (transient) throw new VaultlabError(`ESO's admission webhook is still not answering: ${msg}`, { hint: `Check the ESO pods: kubectl -n external-secrets get pods. Then re-run deploy.` });
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** SecretStore Ready=True; when not, ESO's reason (its Warning Event), decoded. */
export async function waitStoreReady(kube: Kube, plan: Plan, ns: NamespacePlan, opts: EsoWaitOptions): Promise<void> {
  await waitEso(kube, plan, ns, 'SecretStore', ns.secretStore.name, (c) => c?.status === 'True', 'Ready=True', opts);
}

export interface SecretCheck extends DeliveryCheck {
  externalSecret: string;
}

/** Keys the target Secret must have: the template's keys when templated, else the data mappings. */
export function expectedKeys(es: ExternalSecretPlan): string[] {
  return es.template && Object.keys(es.template.data).length ? Object.keys(es.template.data) : es.data.map((d) => d.secretKey);
}

/**
 * Compares a target Secret with Vault. `vaultValue(path, key)` returns Vault's value.
 * Owner/Orphan Secrets must hold exactly the expected keys; Merge ones at least them.
 */
export async function checkSecret(ns: string, es: ExternalSecretPlan, secret: Record<string, Buffer> | undefined, vaultValue: (path: string, key: string) => Promise<string | undefined>): Promise<SecretCheck> {
  const problems: string[] = [];
  const want = expectedKeys(es);
  if (!secret) problems.push(`Secret ${ns}/${es.target} does not exist`);
  else {
    const have = Object.keys(secret);
    const missing = want.filter((k) => !have.includes(k));
    const extra = have.filter((k) => !want.includes(k));
    if (missing.length) problems.push(`missing key(s) ${missing.join(', ')}`);
    if (extra.length && es.creationPolicy !== 'Merge') problems.push(`unexpected key(s) ${extra.join(', ')}`);
    if (!es.template || Object.keys(es.template.data).length === 0) {
      for (const d of es.data) {
        const got = secret[d.secretKey];
        if (!got) continue;
        const expected = await vaultValue(d.path, d.key);
        if (expected === undefined) problems.push(`${d.path}:${d.key} is not in Vault`);
        else if (sha256(got) !== sha256(expected)) problems.push(`${d.secretKey} differs from Vault's ${d.path}:${d.key} (digest mismatch)`);
      }
    }
  }
  return { namespace: ns, externalSecret: es.name, target: es.target, ok: problems.length === 0, problems, delivery: 'eso', app: es.app };
}

/**
 * Turns ESO's condition messages (SecretStore or ExternalSecret) into a cause and a fix. The
 * most specific rule wins: Vault's 403 carries the audience and binding complaints too.
 */
export function decodeEsoError(message: string, ns: NamespacePlan, plan: Plan): { cause: string; fix: string } {
  const role = ns.secretStore.role;
  const policy = plan.vault.kubernetesAuth.roles.find((r) => r.name === role)?.policies.join(', ') ?? '?';
  const audience = plan.vault.kubernetesAuth.audience;
  const who = `role ${role}, policy ${policy}, audience "${ns.secretStore.audiences.join(',')}"`;
  if (/CreationPolicy=Merge|SecretMissing/i.test(message)) {
    const es = ns.externalSecrets.find((e) => message.includes(`target ${e.target}`)) ?? ns.externalSecrets.find((e) => e.creationPolicy === 'Merge');
    const target = es?.target ?? '?';
    return {
      cause: `its target Secret ${ns.name}/${target} does not exist, and with creationPolicy Merge ESO only adds keys to a Secret its owner created`,
      fix: `Create ${ns.name}/${target} first (its owner, e.g. ArgoCD, does); \`vaultlab deploy\` re-creates the demo's stand-in for it.`,
    };
  }
  if (/invalid audience|aud\) claim/i.test(message)) {
    return { cause: `Vault refused the ServiceAccount token's audience (${who}); role ${role} expects "${audience}"`, fix: 'Keep [vault.kubernetes_auth] audience and the SecretStore serviceAccountRef.audiences equal, then `vaultlab vault configure`.' };
  }
  if (/service account name not authorized|namespace not authorized/i.test(message)) {
    return { cause: `Vault refused ESO in namespace "${ns.name}": ${who} does not bind ServiceAccount ${ns.serviceAccount} in "${ns.name}"`, fix: `Run \`vaultlab vault configure\` to restore role ${role}'s bound ServiceAccount and namespace.` };
  }
  if (/permission denied|\b403\b/i.test(message)) {
    return {
      cause: `Vault refused ESO in namespace "${ns.name}": ${who}`,
      fix: `Check that role ${role} binds ServiceAccount ${ns.serviceAccount} in "${ns.name}" with audience "${audience}" and that policy ${policy} covers the path (\`vaultlab vault configure\` repairs drift).`,
    };
  }
  if (/SecretStore .*(not ready|does not exist|not found)|could not get (Cluster)?SecretStore/i.test(message)) {
    return { cause: `the ExternalSecret's SecretStore ${ns.name}/${ns.secretStore.name} is not Ready`, fix: `See \`kubectl -n ${ns.name} describe secretstore ${ns.secretStore.name}\`; \`vaultlab doctor\` decodes its message.` };
  }
  if (/secret not found|secret does not exist|cannot find secret data|key .* does not exist|not found|\b404\b/i.test(message)) {
    return { cause: `a referenced path/key is not in Vault (${plan.seeding.mount}/)`, fix: 'Run `vaultlab seed`, and check [[secrets]] against the ExternalSecret data mappings.' };
  }
  if (/sealed|connection refused|no such host|i\/o timeout|x509|certificate|context deadline exceeded/i.test(message)) {
    return { cause: `ESO cannot reach Vault at ${ns.secretStore.server}`, fix: 'Check `vaultlab status` (sealed Vault? TLS CA?), then re-run deploy.' };
  }
  return { cause: message, fix: `See \`kubectl -n ${ns.name} describe externalsecret\`; \`vaultlab doctor\` decodes common causes.` };
}

/**
 * Vault answers a bare "permission denied" (no audience or binding complaint) when its own
 * TokenReview call fails: the Kubernetes API refusing Vault's reviewer, or unreachable from
 * the pod. Right after a node restart that lasts a few seconds (the Service network and RBAC
 * come back after /readyz answers), so such a refusal is retried until `waitMs` is spent.
 */
export const isReviewRefusal = (err: unknown) =>
  err instanceof VaultApiError && err.status === 403 && err.vaultErrors.length > 0 && err.vaultErrors.every((e) => /^permission denied$/i.test(e.trim()));

export interface EsoLoginOptions {
  /** How long a TokenReview refusal is retried (default 60 s). */
  waitMs?: number;
  /** Pause between attempts (default 2 s). */
  intervalMs?: number;
  signal?: AbortSignal;
}

export async function esoIdentityClient(kube: Kube, plan: Plan, vault: VaultClient, ns: NamespacePlan, opts: EsoLoginOptions = {}): Promise<VaultClient> {
  const mount = plan.vault.kubernetesAuth.mount;
  const role = ns.secretStore.role;
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  const jwt = await kube.createServiceAccountToken(ns.name, ns.serviceAccount, ns.secretStore.audiences, 600);
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await vault.post<any>(`auth/${mount}/login`, { role, jwt }, { anonymous: true, retry: false });
      // Same address and CA as vaultlab's own client: under TLS the CA must come along.
      return vault.withToken(r.data.auth.client_token);
    } catch (err) {
      if (!isReviewRefusal(err)) throw err;
      if (Date.now() + (opts.intervalMs ?? 2000) > deadline || opts.signal?.aborted) {
        throw new VaultlabError(
          `Vault refused ESO's identity in "${ns.name}" (role ${role}, ServiceAccount ${ns.serviceAccount}) for ${attempt} attempt(s): Vault could not check the token with the Kubernetes TokenReview API`,
          {
            hint: `Vault checks ESO's tokens with its own ServiceAccount, which needs system:auth-delegator and a route to the API server: see \`vaultlab status\` (kubernetes auth reviewer) and the Vault pod's log; \`vaultlab vault configure\` rewrites auth/${mount}/config.`,
            cause: err,
          },
        );
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 2000));
    }
  }
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
const readyOf = (o: { status?: { conditions?: Condition[] } }) => (o.status?.conditions ?? []).find((c) => c.type === 'Ready');

/**
 * Why an ESO object is not ready, as a VaultlabError. The Ready condition only says "could not
 * get secret data from provider" or "unable to create client"; the cause is in the object's
 * latest Warning Event, which the lifecycle diagnosis decodes (comparing roles, policies and
 * paths with Vault when a token is at hand).
 */
export async function esoFailure(kube: Kube, plan: Plan, ns: NamespacePlan, kind: 'ExternalSecret' | 'SecretStore', name: string, condition: string, vault?: VaultClient, cause?: unknown): Promise<VaultlabError> {
  const { diagnoseEso, latestEsoWarning } = await import('../../lifecycle/eso-diagnose.ts');
  const event = await latestEsoWarning(kube, kind, ns.name, name);
  const d = await diagnoseEso({ plan, ns, kind, name, condition, event, vault }).catch(() => ({ ...decodeEsoError(event ?? condition, ns, plan), evidence: event ?? condition }));
  return new VaultlabError(`${kind} ${ns.name}/${name} is not ${kind === 'SecretStore' ? 'Ready' : 'synced'}: ${d.cause}`, { hint: d.fix, ...(cause ? { cause } : {}) });
}

/** ESO errors that retrying will not fix: fail at once (after a grace period), not at the deadline. */
export const PERMANENT_ESO_ERROR = /permission denied|Code: 403|invalid audience|audience claim|not authorized|invalid role|Secret does not exist|cannot find secret data/i;

export interface EsoWaitOptions {
  timeoutMs: number;
  /** A token-bearing client: the diagnosis compares roles, policies and paths with Vault. */
  vault?: VaultClient | undefined;
  /** How long an object may fail with a permanent error before we stop waiting (default 45 s). */
  settleMs?: number;
}

/**
 * Waits until `settled(Ready condition)`, watching in slices of 10 s. Between slices: an object
 * failing for `settleMs` with a permanent error (its latest Warning Event says so) ends the wait
 * early, with the decoded cause; the deadline ends it with whatever ESO said last.
 */
export async function waitEso(kube: Kube, plan: Plan, ns: NamespacePlan, kind: 'ExternalSecret' | 'SecretStore', name: string, settled: (c: Condition | undefined) => boolean, describe: string, opts: EsoWaitOptions): Promise<Condition | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  const settle = opts.settleMs ?? 45_000;
  let last: Condition | undefined;
  let failingSince: number | undefined;
  const onUpdate = (o: { status?: { conditions?: Condition[] } }) => {
    const c = readyOf(o);
    if (!c) return;
    if (c.status === 'False') {
      last = c;
      failingSince ??= Date.now();
    } else {
      failingSince = undefined;
      if (c.reason !== 'SecretSynced') last = c;
    }
  };
  for (;;) {
    const slice = Math.max(1000, Math.min(10_000, deadline - Date.now()));
    try {
      return readyOf(await kube.waitFor('external-secrets.io/v1', kind, ns.name, name, (o) => settled(readyOf(o)), describe, { timeoutMs: slice, onUpdate }));
    } catch (err) {
      if (!/^timed out after/.test((err as Error).message)) throw err;
      if (Date.now() >= deadline) throw await esoFailure(kube, plan, ns, kind, name, last?.message || (err as Error).message, opts.vault, err);
      if (failingSince !== undefined && Date.now() - failingSince >= settle) {
        const { latestEsoWarning } = await import('../../lifecycle/eso-diagnose.ts');
        const event = await latestEsoWarning(kube, kind, ns.name, name);
        if (event && PERMANENT_ESO_ERROR.test(event)) throw await esoFailure(kube, plan, ns, kind, name, last?.message ?? event, opts.vault);
      }
    }
  }
}

/**
 * ExternalSecret Ready with reason SecretSynced. When it is not, the cause, decoded: at the
 * deadline; after the grace period for a permanent error; or at once when ESO has settled on not
 * syncing it: a Merge target that does not exist (Ready=True, reason SecretMissing: ESO waits for
 * the Secret's owner, maybe forever), or data not in Vault with deletionPolicy Delete
 * (reason SecretDeleted).
 */
export async function waitSynced(kube: Kube, plan: Plan, ns: NamespacePlan, es: ExternalSecretPlan, opts: EsoWaitOptions): Promise<void> {
  // The diagnosis looks the ExternalSecret up in its namespace plan.
  const nsWith: NamespacePlan = { ...ns, externalSecrets: [...ns.externalSecrets.filter((e) => e.name !== es.name), es] };
  const settled = ['SecretSynced', 'SecretMissing', 'SecretDeleted'];
  const ready = await waitEso(kube, plan, nsWith, 'ExternalSecret', es.name, (c) => c?.status === 'True' && settled.includes(c.reason ?? ''), 'Ready=True (SecretSynced)', opts);
  if (ready?.reason === 'SecretMissing') {
    const d = decodeEsoError(`${ready.message ?? 'SecretMissing'} (target ${es.target})`, nsWith, plan);
    throw new VaultlabError(`ExternalSecret ${ns.name}/${es.name} is not synced: ${d.cause}`, { hint: d.fix });
  }
  if (ready?.reason === 'SecretDeleted') {
    const e = await esoFailure(kube, plan, nsWith, 'ExternalSecret', es.name, 'Secret does not exist', opts.vault);
    throw new VaultlabError(`${e.message} (ESO deleted ${ns.name}/${es.target}: deletionPolicy Delete)`, e.hint ? { hint: e.hint } : {});
  }
}

