// The Kubernetes API, over @kubernetes/client-node (imported lazily: it is slow to load).
// Server-side apply with a field manager, condition waits with watches (no sleeps), TokenRequest,
// Secrets read as bytes. Errors name kind/namespace/name and the API's message, never data.
import { readFileSync } from 'node:fs';
import type * as K8s from '@kubernetes/client-node';
import { VaultlabError } from '../lib/errors.ts';
import { currentSignal } from '../lib/tasks.ts';
import { pool } from '../lib/pool.ts';
import { applyChangedNothing, applyIsNoop } from './ssa-noop.ts';
import type { KubeObject } from '../plan/manifests.ts';

/** Objects of one kind applied at once (a re-deploy's no-op patches; the API server takes them in parallel). */
const APPLY_CONCURRENCY = 8;

export type ApplyAction = 'created' | 'configured' | 'unchanged';
export interface ApplyResult {
  kind: string;
  namespace: string | undefined;
  name: string;
  action: ApplyAction;
}

export const FIELD_MANAGER = 'vaultlab';

/** The API server does not serve this apiVersion/kind (its CRD is missing or not Established). */
const NOT_SERVED = /no matches for kind|could not find the requested resource|Unrecognized API version and kind|^404 page not found/i;
const notServedHint = (apiVersion: string) => `The API server does not serve ${apiVersion}: is its CRD installed and Established?`;

const ref = (o: { kind: string; metadata: { name?: string; namespace?: string } }) =>
  `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

function apiMessage(err: unknown): { status: number | undefined; message: string } {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body: any = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* plain text */
    }
  }
  const message: string = body?.message ?? (typeof body === 'string' && body ? body : e.message ?? String(err));
  return { status: e.code, message: message.trim() };
}

export class KubeError extends VaultlabError {
  readonly status: number | undefined;
  constructor(what: string, err: unknown, hint?: string) {
    const { status, message } = apiMessage(err);
    super(`${what}: ${message}${status ? ` (HTTP ${status})` : ''}`, { ...(hint ? { hint } : {}), cause: err });
    this.name = 'KubeError';
    this.status = status;
  }
}

export interface WaitOptions {
  status?: 'True' | 'False';
  reason?: string;
  timeoutMs?: number;
  /** Ends the wait at once (Ctrl-C); default: the running step's signal. */
  signal?: AbortSignal | undefined;
  /** Called on each observed object, e.g. to surface a failing condition's message early. */
  onUpdate?: (obj: any) => void;
}

/** The parts of client-node's generated Configuration a raw request uses. */
interface RawConfiguration {
  baseServer: { makeRequestContext(path: string, method: never): K8s.RequestContext };
  authMethods: { default?: { applySecurityAuthentication(ctx: K8s.RequestContext): Promise<void> } };
  httpApi: { send(ctx: K8s.RequestContext): { toPromise(): Promise<K8s.ResponseContext> } };
}

/**
 * client-node (2.0) builds a new undici Agent for every request it authenticates, so every API
 * request opened its own TLS connection (a handshake with the client certificate each time: on a
 * warm re-deploy of ~60 requests, most of the CPU it spent). One Agent per cluster and TLS
 * identity keeps the connections alive between requests. undici unrefs idle sockets, so they
 * never hold the process open.
 */
function reuseConnections(kc: K8s.KubeConfig): void {
  const target = kc as unknown as { createDispatcher?: (cluster: unknown, agentOptions: unknown) => unknown };
  const original = target.createDispatcher;
  if (typeof original !== 'function') return; // another client-node: its own behaviour
  const agents = new Map<string, unknown>();
  target.createDispatcher = function (this: unknown, cluster: unknown, agentOptions: unknown) {
    const c = cluster as { name?: string; server?: string; proxyUrl?: string } | undefined;
    const key = JSON.stringify([c?.name, c?.server, c?.proxyUrl, agentOptions]);
    if (!agents.has(key)) agents.set(key, original.call(this, cluster, agentOptions));
    return agents.get(key);
  };
}

export class Kube {
  readonly k8s: typeof K8s;
  readonly kc: K8s.KubeConfig;
  readonly objects: K8s.KubernetesObjectApi;
  private constructor(k8s: typeof K8s, kc: K8s.KubeConfig, objects: K8s.KubernetesObjectApi) {
    this.k8s = k8s;
    this.kc = kc;
    this.objects = objects;
  }

  /**
   * Starts loading client-node (about 0.3 s here) without waiting for it, so a caller that is
   * about to wait on something else (preflight's child processes) overlaps the two; connect()
   * then finds it loaded. A load failure surfaces in connect(), not here.
   */
  static preload(): Promise<unknown> {
    return import('@kubernetes/client-node').catch(() => undefined);
  }

  /** From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config) and optional context. */
  static async connect(opts: { kubeconfig?: string | undefined; context?: string | undefined } = {}): Promise<Kube> {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    try {
      if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
      else kc.loadFromDefault();
    } catch (err) {
      throw new VaultlabError(`cannot load kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${(err as Error).message}`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
    }
    if (opts.context) {
      if (!kc.getContexts().some((c) => c.name === opts.context)) {
        throw new VaultlabError(`kubeconfig has no context "${opts.context}"`, { hint: `Contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'}.` });
      }
      kc.setCurrentContext(opts.context);
    }
    reuseConnections(kc);
    return new Kube(k8s, kc, k8s.KubernetesObjectApi.makeApiClient(kc));
  }

  core(): K8s.CoreV1Api {
    return this.kc.makeApiClient(this.k8s.CoreV1Api);
  }

  /** The API server and the CA it serves with (for Vault's Kubernetes auth config). */
  clusterInfo(): { server: string; caPem: string | undefined } {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new VaultlabError('kubeconfig has no current cluster');
    let caPem: string | undefined;
    if (cluster.caData) caPem = Buffer.from(cluster.caData, 'base64').toString('utf8');
    else if (cluster.caFile) caPem = readFileSync(cluster.caFile, 'utf8');
    return { server: cluster.server, caPem };
  }

  /** Reads an object; undefined when it does not exist; raw client errors otherwise. */
  private async read(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<any> {
    try {
      return await this.objects.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } });
    } catch (err) {
      if (apiMessage(err).status === 404) return undefined;
      throw err;
    }
  }

  async get<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return (await this.read(apiVersion, kind, namespace, name)) as T | undefined;
    } catch (err) {
      throw new KubeError(`reading ${kind} ${namespace ? `${namespace}/` : ''}${name}`, err, NOT_SERVED.test(apiMessage(err).message) ? notServedHint(apiVersion) : undefined);
    }
  }

  /**
   * Server-side apply, field manager "vaultlab", forced (vaultlab owns these fields). Objects are
   * applied in the order given, a run of consecutive objects of one kind at once (callers list
   * them in dependency order: Namespaces, then what lives in them): a re-deploy's reads and
   * no-op patches overlap instead of queueing. The first failure stops what has not started
   * and is thrown once the run's requests in flight have settled.
   */
  async apply(objects: KubeObject[], opts: { fieldManager?: string } = {}): Promise<ApplyResult[]> {
    const results: ApplyResult[] = [];
    for (let start = 0; start < objects.length; ) {
      let end = start + 1;
      while (end < objects.length && objects[end]!.kind === objects[start]!.kind) end++;
      let failed: { err: unknown } | undefined;
      const run = await pool(objects.slice(start, end), APPLY_CONCURRENCY, async (obj) => {
        if (failed) return undefined;
        try {
          return await this.applyOne(obj, opts.fieldManager ?? FIELD_MANAGER);
        } catch (err) {
          failed ??= { err };
          return undefined;
        }
      });
      if (failed) throw failed.err;
      results.push(...(run as ApplyResult[]));
      start = end;
    }
    return results;
  }

  private async applyOne(obj: KubeObject, fieldManager: string): Promise<ApplyResult> {
    let before: any;
    let after: any;
    try {
      const path = await this.objectPath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
      before = await this.rawJson('GET', path, {}).catch((err) => {
        if (apiMessage(err).status === 404) return undefined;
        throw err;
      });
      // A re-deploy: what the API server holds already is what this apply would make of it.
      if (before && applyIsNoop(obj, before, fieldManager)) return { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, action: 'unchanged' };
      // Sent as rendered, never through client-node's typed serializer: it drops every field
      // its model names differently (a NetworkPolicy's ingress `from` is `_from` there, so the
      // policy went out allowing every source) and every field its model does not know.
      after = await this.rawJson('PATCH', path, { fieldManager, force: 'true' }, obj, 'application/apply-patch+yaml');
    } catch (err) {
      throw new KubeError(`applying ${ref(obj)}`, err, NOT_SERVED.test(apiMessage(err).message) ? notServedHint(obj.apiVersion) : undefined);
    }
    const action: ApplyAction = !before ? 'created' : applyChangedNothing(obj, before, after, fieldManager) ? 'unchanged' : 'configured';
    return { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, action };
  }

  /**
   * One request with a JSON body and a JSON answer, exactly as sent and received (client-node's
   * transport and authentication, none of its model (de)serialization). Errors carry `code` and
   * `body` as the client's own do.
   */
  private async rawJson<T = any>(method: 'GET' | 'PATCH', path: string, query: Record<string, string>, body?: unknown, contentType = 'application/json'): Promise<T> {
    const cfg = (this.objects as unknown as { configuration: RawConfiguration }).configuration;
    const ctx = cfg.baseServer.makeRequestContext(path, method as never);
    ctx.setHeaderParam('Accept', 'application/json');
    for (const [k, v] of Object.entries(query)) ctx.setQueryParam(k, v);
    if (body !== undefined) {
      ctx.setHeaderParam('Content-Type', contentType);
      ctx.setBody(JSON.stringify(body));
    }
    await cfg.authMethods.default?.applySecurityAuthentication(ctx);
    const res = await cfg.httpApi.send(ctx).toPromise();
    const text = await res.body.text();
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) throw Object.assign(new Error(`HTTP ${res.httpStatusCode}`), { code: res.httpStatusCode, body: text });
    return JSON.parse(text) as T;
  }

  /** An object as the API server stores it (plain JSON: field names as in the API, no Dates); undefined when absent. */
  async getJson<T = any>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.rawJson<T>('GET', await this.objectPath(apiVersion, kind, namespace, name), {});
    } catch (err) {
      if (apiMessage(err).status === 404) return undefined;
      throw new KubeError(`reading ${kind} ${namespace ? `${namespace}/` : ''}${name}`, err, NOT_SERVED.test(apiMessage(err).message) ? notServedHint(apiVersion) : undefined);
    }
  }

  async delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<boolean> {
    try {
      await this.objects.delete({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } }, undefined, undefined, undefined, undefined, 'Background');
      return true;
    } catch (err) {
      if (apiMessage(err).status === 404) return false;
      throw new KubeError(`deleting ${kind} ${namespace ? `${namespace}/` : ''}${name}`, err);
    }
  }

  /** Merge-patch (annotations, restarts) without taking field ownership through apply. */
  async mergePatch(apiVersion: string, kind: string, namespace: string | undefined, name: string, patch: Record<string, unknown>): Promise<void> {
    try {
      await this.rawJson('PATCH', await this.objectPath(apiVersion, kind, namespace, name), { fieldManager: FIELD_MANAGER }, patch, 'application/merge-patch+json');
    } catch (err) {
      throw new KubeError(`patching ${kind} ${namespace ? `${namespace}/` : ''}${name}`, err);
    }
  }

  async list<T = any>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<T[]> {
    try {
      const r = await this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
      return r.items as unknown as T[];
    } catch (err) {
      if (apiMessage(err).status === 404) return [];
      throw new KubeError(`listing ${kind}${namespace ? ` in ${namespace}` : ''}`, err);
    }
  }

  /** REST path of a resource collection, from the API's discovery (via the object API's resource lookup). */
  private async collectionPath(apiVersion: string, kind: string, namespace: string | undefined): Promise<string> {
    const resource = await (this.objects as any).resource(apiVersion, kind);
    if (!resource) throw new VaultlabError(`the API server does not serve ${kind} (${apiVersion})`, { hint: 'Is its CRD installed?' });
    const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return resource.namespaced && namespace ? `${prefix}/namespaces/${namespace}/${resource.name}` : `${prefix}/${resource.name}`;
  }

  /** REST path of one object (its collection's path, from discovery, and its name). */
  private async objectPath(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<string> {
    return `${await this.collectionPath(apiVersion, kind, namespace)}/${encodeURIComponent(name)}`;
  }

  /**
   * Waits, with a watch, until `pred(obj)` holds for the named object. Re-establishes the watch
   * when the server closes it. Times out with a message naming the object and its last state.
   * An aborted signal (Ctrl-C in a deploy step) ends it at once, watch closed and timer cleared.
   */
  async waitFor(apiVersion: string, kind: string, namespace: string | undefined, name: string, pred: (obj: any) => boolean, describe: string, opts: WaitOptions = {}): Promise<any> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const signal = opts.signal ?? currentSignal();
    const what = `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
    const cancelled = () => new VaultlabError(`the wait for ${what} to be ${describe} was cancelled`);
    if (signal?.aborted) throw cancelled();
    const current = await this.get(apiVersion, kind, namespace, name);
    if (current) opts.onUpdate?.(current);
    if (current && pred(current)) return current;
    const path = await this.collectionPath(apiVersion, kind, namespace);
    const watch = new this.k8s.Watch(this.kc);
    let last: any = current;
    return new Promise((resolve, reject) => {
      let controller: AbortController | undefined;
      let finished = false;
      const finish = (fn: () => void) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        controller?.abort();
        fn();
      };
      const onAbort = () => finish(() => reject(cancelled()));
      const timer = setTimeout(() => {
        const conditions = last?.status?.conditions?.map((c: any) => `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`).join(', ');
        finish(() =>
          reject(new VaultlabError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} to be ${describe}${last ? `; last seen: ${conditions || 'no conditions'}` : '; it does not exist'}`)),
        );
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const start = async () => {
        if (finished) return;
        try {
          controller = await watch.watch(
            path,
            { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: true },
            (phase, obj) => {
              if (phase === 'BOOKMARK') return;
              last = phase === 'DELETED' ? undefined : obj;
              if (last) opts.onUpdate?.(last);
              if (last && pred(last)) finish(() => resolve(last));
            },
            () => {
              if (!finished) setTimeout(start, 200);
            },
          );
          // Finished (or cancelled) while the watch was being set up: close it, never leak it.
          if (finished) return controller.abort();
          // An update between the first read and the watch start must not be missed.
          const now = await this.get(apiVersion, kind, namespace, name);
          if (now && pred(now)) finish(() => resolve(now));
        } catch (err) {
          if (!finished) setTimeout(start, 500);
          void err;
        }
      };
      void start();
    });
  }

  /** One GET /readyz: true when the server answers 200 within `timeoutMs` (TLS, auth and all). */
  async isReady(timeoutMs = 3000): Promise<boolean> {
    try {
      return await new this.k8s.Health(this.kc).readyz({ signal: AbortSignal.timeout(timeoutMs) } as never);
    } catch {
      return false;
    }
  }

  /**
   * Waits until the API server says it is ready (GET /readyz is 200). Right after a node or
   * Docker restart the server answers before its RBAC bootstrap has loaded: every request is
   * then forbidden, even the admin's (`cannot get path "/api/v1"`), for a few seconds. One
   * request when the server is ready; `onWait` is called once when it is not, so a caller can
   * say what it waits for. Times out with the last answer, and ends at once on `signal`.
   */
  async waitReady(opts: { timeoutMs?: number; signal?: AbortSignal | undefined; onWait?: () => void; intervalMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const signal = opts.signal ?? currentSignal();
    const deadline = Date.now() + timeoutMs;
    const server = this.kc.getCurrentCluster()?.server ?? 'the API server';
    let last = '';
    let told = false;
    for (;;) {
      if (signal?.aborted) throw new VaultlabError(`the wait for ${server} to be ready was cancelled`);
      try {
        if (await new this.k8s.Health(this.kc).readyz({ signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000) } as never)) return;
        last = 'GET /readyz did not answer 200';
      } catch (err) {
        if (signal?.aborted) continue;
        const cause = (err as { cause?: Error }).cause;
        last = cause?.message ?? (err as Error).message;
      }
      if (Date.now() >= deadline) {
        throw new VaultlabError(`the API server ${server} is not ready after ${Math.round(timeoutMs / 1000)} s (${last})`, {
          hint: 'A cluster that just (re)started needs a minute; `kubectl get --raw /readyz?verbose` says which check fails.',
        });
      }
      if (!told) {
        told = true;
        opts.onWait?.();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, opts.intervalMs ?? 1000);
        function done() {
          signal?.removeEventListener('abort', done);
          clearTimeout(t);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Condition `type` has `status` (default True) and, if given, `reason`. */
  waitForCondition(apiVersion: string, kind: string, namespace: string | undefined, name: string, type: string, opts: WaitOptions = {}): Promise<any> {
    const status = opts.status ?? 'True';
    return this.waitFor(
      apiVersion,
      kind,
      namespace,
      name,
      (o) => (o.status?.conditions ?? []).some((c: any) => c.type === type && c.status === status && (!opts.reason || c.reason === opts.reason)),
      `${type}=${status}${opts.reason ? ` (${opts.reason})` : ''}`,
      opts,
    );
  }

  async waitForCrdsEstablished(names: string[], timeoutMs = 120_000): Promise<void> {
    await Promise.all(names.map((n) => this.waitForCondition('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, n, 'Established', { timeoutMs })));
  }

  /** TokenRequest: a short-lived, audience-bound ServiceAccount token. */
  async createServiceAccountToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds = 600): Promise<string> {
    try {
      const r = await this.core().createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences, expirationSeconds } } as any,
      });
      return r.status!.token!;
    } catch (err) {
      throw new KubeError(`requesting a token for ServiceAccount ${namespace}/${serviceAccount}`, err);
    }
  }

  /** A Secret's data as bytes (never logged). */
  async readSecret(namespace: string, name: string): Promise<{ type: string | undefined; data: Record<string, Buffer> } | undefined> {
    const s = await this.get<any>('v1', 'Secret', namespace, name);
    if (!s) return undefined;
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries((s.data ?? {}) as Record<string, string>)) data[k] = Buffer.from(v, 'base64');
    return { type: s.type, data };
  }
}

/** Container states that waiting alone will not fix. */
const TRANSIENT_CONFIG = /failed to sync (secret|configmap) cache/i;
const STUCK = /^(ErrImagePull|ImagePullBackOff|ErrImageNeverPull|InvalidImageName|CreateContainerConfigError|CreateContainerError|RunContainerError|CrashLoopBackOff)$/;

export interface PodProblem {
  pod: string;
  namespace: string;
  container: string;
  image: string | undefined;
  reason: string;
  message: string;
  restarts: number;
  /** How the last run of the container ended (crash loops). */
  lastExit: string | undefined;
}

/**
 * A pod that will not become Running or Ready by waiting: an image that cannot be pulled, a
 * container crash-looping (Running as a phase, restarting underneath), a config it cannot
 * start with. ErrImagePull counts once it repeats as ImagePullBackOff; a crash loop after 2 restarts.
 */
export function podProblem(pod: any): PodProblem | undefined {
  const statuses = [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])];
  for (const cs of statuses) {
    const waiting = cs.state?.waiting;
    const reason: string = waiting?.reason ?? '';
    if (!STUCK.test(reason) || reason === 'ErrImagePull') continue;
    if (reason === 'CrashLoopBackOff' && (cs.restartCount ?? 0) < 2) continue;
    // The kubelet's own Secret/ConfigMap cache not synced yet (a busy node, a pod just rolled):
    // it retries at its next sync, so this one passes by itself.
    if (reason === 'CreateContainerConfigError' && TRANSIENT_CONFIG.test(waiting?.message ?? '')) continue;
    const term = cs.lastState?.terminated;
    return {
      pod: pod.metadata?.name ?? '?',
      namespace: pod.metadata?.namespace ?? '?',
      container: cs.name,
      image: cs.image,
      reason,
      message: (waiting?.message ?? '').trim(),
      restarts: cs.restartCount ?? 0,
      lastExit: term ? `exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}` : undefined,
    };
  }
  return undefined;
}

/** A PodProblem as an error that says what to do. */
export class PodProblemError extends VaultlabError {
  readonly problem: PodProblem;
  constructor(p: PodProblem, logTail?: string) {
    const pull = /Image|ImageName/.test(p.reason);
    const what = `pod ${p.namespace}/${p.pod}, container ${p.container}`;
    const message = pull
      ? `${what} cannot get its image ${p.image ?? ''}: ${p.reason}${p.message ? ` (${p.message.split('\n')[0]})` : ''}`
      : `${what} ${p.reason === 'CrashLoopBackOff' ? `keeps crashing (${p.restarts} restarts${p.lastExit ? `, last ${p.lastExit}` : ''})` : `cannot start: ${p.reason}${p.message ? ` (${p.message})` : ''}`}${logTail ? `; its log ends:\n${logTail}` : ''}`;
    const hint = pull
      ? `This machine cannot pull ${p.image ?? 'the image'}. \`vaultlab images\` lists every image a deploy needs; bring them into Docker (docker pull, or docker load offline) and deploy with --preload, or point [images] at a mirror.`
      : `\`kubectl -n ${p.namespace} logs ${p.pod} -c ${p.container} --previous\` shows the whole log.`;
    super(message, { hint });
    this.name = 'PodProblemError';
    this.problem = p;
  }
}

/** The last lines a container printed before it ended (crash loops), or undefined. */
export async function containerLogTail(kube: Kube, p: PodProblem, lines = 15): Promise<string | undefined> {
  try {
    const log = await kube.core().readNamespacedPodLog({ name: p.pod, namespace: p.namespace, container: p.container, previous: p.restarts > 0, tailLines: lines });
    const text = String(log ?? '').trimEnd();
    return text ? text.split('\n').map((l) => `  ${l}`).join('\n') : undefined;
  } catch {
    return undefined;
  }
}

/** What makes a Secret in a namespace: ESO's ExternalSecrets and VSO's secrets name their target. */
const SECRET_PRODUCERS: { apiVersion: string; kind: string; target: (o: any) => string | undefined }[] = [
  { apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', target: (o) => o?.spec?.target?.name ?? o?.metadata?.name },
  { apiVersion: 'secrets.hashicorp.com/v1beta1', kind: 'VaultStaticSecret', target: (o) => o?.spec?.destination?.name },
  { apiVersion: 'secrets.hashicorp.com/v1beta1', kind: 'VaultDynamicSecret', target: (o) => o?.spec?.destination?.name },
];

/**
 * Whether a pod's CreateContainerConfigError over a missing Secret or ConfigMap is only a matter
 * of time: the object exists by now (the kubelet saw it missing and retries the container at its
 * next sync, with a back-off: a pod applied before ESO or VSO wrote its Secret keeps that status
 * for seconds after the Secret appears), or a delivery in the namespace is there to write it (an
 * ExternalSecret or a VSO secret naming it as its target; their own waits say why when they fail).
 * A Secret nothing makes stays a problem at once.
 */
export async function dependencyPending(kube: Kube, p: PodProblem): Promise<boolean> {
  if (p.reason !== 'CreateContainerConfigError') return false;
  const m = /\b(secret|configmap) "([^"]+)" not found/i.exec(p.message);
  if (!m) return false;
  const kind = m[1]!.toLowerCase() === 'secret' ? 'Secret' : 'ConfigMap';
  const name = m[2]!;
  if (await kube.get('v1', kind, p.namespace, name)) return true;
  if (kind !== 'Secret') return false;
  const found = await Promise.all(
    SECRET_PRODUCERS.map(async (producer) => (await kube.list<any>(producer.apiVersion, producer.kind, p.namespace).catch((): any[] => [])).some((o) => producer.target(o) === name)),
  );
  return found.includes(true);
}

/**
 * Runs `work` while watching the pods of `namespace` matching `selector`: a pod that is stuck
 * (podProblem) ends it at once with a PodProblemError (its log tail included for a crash; a Secret
 * that exists by now or that a delivery is writing is waited for: dependencyPending), and
 * the signal handed to `work` is aborted so its child processes (helm --wait) stop too.
 */
export async function guardPods<T>(kube: Kube, namespace: string, selector: string | undefined, work: (signal: AbortSignal) => Promise<T>, intervalMs = 2000): Promise<T> {
  const controller = new AbortController();
  const outer = currentSignal();
  const onOuter = () => controller.abort();
  outer?.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const watch = new Promise<never>((_, reject) => {
    const tick = async () => {
      if (stopped) return;
      try {
        for (const pod of await kube.list<any>('v1', 'Pod', namespace, selector)) {
          const p = podProblem(pod);
          if (p && !(await dependencyPending(kube, p))) {
            stopped = true;
            controller.abort();
            reject(new PodProblemError(p, p.reason === 'CrashLoopBackOff' ? await containerLogTail(kube, p) : undefined));
            return;
          }
        }
      } catch {
        /* the API hiccups: the next tick tries again */
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    timer = setTimeout(() => void tick(), intervalMs);
  });
  try {
    return await Promise.race([work(controller.signal), watch]);
  } finally {
    stopped = true;
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
    watch.catch(() => undefined);
  }
}
