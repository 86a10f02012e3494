// The Kubernetes API: server-side apply with a field manager, condition waits with watches (no
// sleeps), TokenRequest, Secrets read as bytes. Errors name kind/namespace/name and the API's
// message, never data. Requests go over Node's https for the kubeconfigs kind and most local
// clusters write (kube-http.ts); @kubernetes/client-node (slow to load: 0.3-0.8 s here) is
// imported only for a kubeconfig that needs its auth plugins, and for pods/exec and port-forward.
import { readFileSync } from 'node:fs';
import type * as K8s from '@kubernetes/client-node';
import { readKubeconfig } from './kubeconfig.ts';
import { httpTransport, type ExecResult, type KubeTransport, type RequestOptions } from './kube-http.ts';
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
const NOT_SERVED = /no matches for kind|could not find the requested resource|Unrecognized API version and kind|does not serve|^404 page not found/i;
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

/** Discovery does not list the kind (its CRD is not installed, or not Established yet). */
export class NotServedError extends VaultlabError {
  constructor(apiVersion: string, kind: string) {
    super(`the API server does not serve ${kind} (${apiVersion})`, { hint: notServedHint(apiVersion) });
    this.name = 'NotServedError';
  }
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

/** client-node's KubeConfig for a kubeconfig file (or the default) and context. */
async function loadClientNode(opts: { kubeconfig?: string | undefined; context?: string | undefined }): Promise<{ k8s: typeof K8s; kc: K8s.KubeConfig }> {
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
  return { k8s, kc };
}

/** Requests and watches through client-node: for kubeconfigs whose users need its auth plugins (exec, OIDC, cloud providers, proxies). */
function clientNodeTransport(k8s: typeof K8s, kc: K8s.KubeConfig): KubeTransport {
  const cfg = (k8s.KubernetesObjectApi.makeApiClient(kc) as unknown as { configuration: RawConfiguration }).configuration;
  return {
    async request(method, path, opts = {}) {
      const ctx = cfg.baseServer.makeRequestContext(path, method as never);
      ctx.setHeaderParam('Accept', opts.accept ?? 'application/json');
      for (const [k, v] of Object.entries(opts.query ?? {})) ctx.setQueryParam(k, v);
      if (opts.body !== undefined) {
        ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
        ctx.setBody(opts.body);
      }
      if (opts.signal) (ctx as unknown as { setSignal?: (s: AbortSignal) => void }).setSignal?.(opts.signal);
      await cfg.authMethods.default?.applySecurityAuthentication(ctx);
      const sent = cfg.httpApi.send(ctx).toPromise();
      const aborted = opts.signal ? new Promise<never>((_, reject) => opts.signal!.addEventListener('abort', () => reject(opts.signal!.reason), { once: true })) : undefined;
      const res = await (aborted ? Promise.race([sent, aborted]) : sent);
      return { status: res.httpStatusCode, text: await res.body.text() };
    },
    async watch(path, query, onEvent, done) {
      const c = await new k8s.Watch(kc).watch(path, query, (phase, obj) => onEvent(phase, obj), (err) => done(err ?? undefined));
      return { abort: () => c.abort() };
    },
    async exec(namespace, pod, container, command) {
      const { Writable } = await import('node:stream');
      const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
      const sink = (into: Buffer[]) => new Writable({ write(c, _e, cb) { into.push(Buffer.from(c)); cb(); } });
      const status = await new Promise<ExecResult['status']>((resolve, reject) => {
        new k8s.Exec(kc).exec(namespace, pod, container, command, sink(chunks.out), sink(chunks.err), null, false, (s) => resolve(s as never)).catch(reject);
      });
      return { stdout: Buffer.concat(chunks.out), stderr: Buffer.concat(chunks.err), status };
    },
  };
}

/** A resource as discovery lists it. */
interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

export class Kube {
  /** The kubeconfig context in use. */
  readonly context: string;
  /** The API server's URL. */
  readonly server: string;
  private readonly transport: KubeTransport;
  private readonly caPem: string | undefined;
  private readonly source: { kubeconfig?: string | undefined; context?: string | undefined };
  private clientNode: Promise<{ k8s: typeof K8s; kc: K8s.KubeConfig }> | undefined;
  private readonly discovery = new Map<string, Promise<ApiResource[]>>();

  private constructor(init: { context: string; server: string; caPem: string | undefined; transport: KubeTransport; source: Kube['source']; clientNode?: { k8s: typeof K8s; kc: K8s.KubeConfig } }) {
    this.context = init.context;
    this.server = init.server;
    this.caPem = init.caPem;
    this.transport = init.transport;
    this.source = init.source;
    if (init.clientNode) this.clientNode = Promise.resolve(init.clientNode);
  }

  /**
   * From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config) and optional context. A
   * client certificate, a token or no user is spoken directly (Node's https, a few ms); any
   * other kubeconfig goes through client-node, loaded only then.
   */
  static async connect(opts: { kubeconfig?: string | undefined; context?: string | undefined } = {}): Promise<Kube> {
    const read = readKubeconfig(opts);
    if ('target' in read) {
      const t = read.target;
      return new Kube({ context: t.context, server: t.server, caPem: t.ca, transport: await httpTransport(t), source: { kubeconfig: t.file, context: t.context } });
    }
    const cn = await loadClientNode(opts);
    const cluster = cn.kc.getCurrentCluster();
    if (!cluster) throw new VaultlabError(`cannot load kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: no current cluster`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
    let caPem: string | undefined;
    if (cluster.caData) caPem = Buffer.from(cluster.caData, 'base64').toString('utf8');
    else if (cluster.caFile) caPem = readFileSync(cluster.caFile, 'utf8');
    return new Kube({ context: cn.kc.getCurrentContext(), server: cluster.server, caPem, transport: clientNodeTransport(cn.k8s, cn.kc), source: opts, clientNode: cn });
  }

  /**
   * client-node for what only it does here (pods/exec, port-forward, typed API clients in
   * tests), loaded on first use, on the same kubeconfig and context.
   */
  client(): Promise<{ k8s: typeof K8s; kc: K8s.KubeConfig }> {
    this.clientNode ??= loadClientNode(this.source);
    return this.clientNode;
  }

  async core(): Promise<K8s.CoreV1Api> {
    const { k8s, kc } = await this.client();
    return kc.makeApiClient(k8s.CoreV1Api);
  }

  /** The API server and the CA it serves with (for Vault's Kubernetes auth config). */
  clusterInfo(): { server: string; caPem: string | undefined } {
    return { server: this.server, caPem: this.caPem };
  }

  /** One request; a status outside 2xx throws an error carrying `code` and `body` (what apiMessage reads). */
  private async call(method: string, path: string, opts: RequestOptions = {}): Promise<string> {
    const res = await this.transport.request(method, path, opts);
    if (res.status < 200 || res.status > 299) throw Object.assign(new Error(`HTTP ${res.status}`), { code: res.status, body: res.text });
    return res.text;
  }

  /** Reads an object; undefined when it does not exist; raw client errors otherwise. */
  private async read(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<any> {
    try {
      return await this.rawJson('GET', await this.objectPath(apiVersion, kind, namespace, name), {});
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
      // Sent as rendered, never through a typed serializer (client-node's drops every field its
      // model names differently: a NetworkPolicy's ingress `from` is `_from` there, so the policy
      // once went out allowing every source; and every field its model does not know).
      after = await this.rawJson('PATCH', path, { fieldManager, force: 'true' }, obj, 'application/apply-patch+yaml');
    } catch (err) {
      throw new KubeError(`applying ${ref(obj)}`, err, NOT_SERVED.test(apiMessage(err).message) ? notServedHint(obj.apiVersion) : undefined);
    }
    const action: ApplyAction = !before ? 'created' : applyChangedNothing(obj, before, after, fieldManager) ? 'unchanged' : 'configured';
    return { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, action };
  }

  /** One request with a JSON body and a JSON answer, exactly as sent and received. Errors carry `code` and `body`. */
  private async rawJson<T = any>(method: 'GET' | 'PATCH' | 'POST' | 'DELETE', path: string, query: Record<string, string>, body?: unknown, contentType = 'application/json'): Promise<T> {
    return JSON.parse(await this.call(method, path, { query, ...(body !== undefined ? { body: JSON.stringify(body), contentType } : {}) })) as T;
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
      await this.rawJson('DELETE', await this.objectPath(apiVersion, kind, namespace, name), { propagationPolicy: 'Background' });
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

  /** Every object of a kind (in `namespace`, or everywhere), as stored; [] when the kind is not served. */
  async list<T = any>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<T[]> {
    try {
      const path = await this.collectionPath(apiVersion, kind, namespace);
      const r = await this.rawJson<{ items?: T[] }>('GET', path, labelSelector ? { labelSelector } : {});
      // A list's items carry no apiVersion/kind of their own: given back as a get would.
      return (r.items ?? []).map((o) => ({ apiVersion, kind, ...(o as object) }) as T);
    } catch (err) {
      if (apiMessage(err).status === 404) return [];
      throw new KubeError(`listing ${kind}${namespace ? ` in ${namespace}` : ''}`, err);
    }
  }

  /**
   * A resource's REST name and scope, from the API's discovery (GET /api/v1, /apis/<group>/<version>),
   * asked once per group version; a kind not found is asked again on the next call (a CRD just
   * installed appears there once Established).
   */
  private async resource(apiVersion: string, kind: string): Promise<ApiResource | undefined> {
    const find = async () => (await this.discovery.get(apiVersion)!).find((r) => r.kind === kind && !r.name.includes('/'));
    if (this.discovery.has(apiVersion)) {
      const hit = await find().catch(() => undefined);
      if (hit) return hit;
    }
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const asked = this.call('GET', path).then((text) => (JSON.parse(text) as { resources?: ApiResource[] }).resources ?? []);
    this.discovery.set(apiVersion, asked);
    asked.catch(() => this.discovery.delete(apiVersion));
    try {
      return await find();
    } catch (err) {
      if (apiMessage(err).status === 404) return undefined;
      throw err;
    }
  }

  /** REST path of a resource collection, from the API's discovery. */
  private async collectionPath(apiVersion: string, kind: string, namespace: string | undefined): Promise<string> {
    const resource = await this.resource(apiVersion, kind);
    if (!resource) throw new NotServedError(apiVersion, kind);
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
    let last: any = current;
    return new Promise((resolve, reject) => {
      let controller: { abort(): void } | undefined;
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
          controller = await this.transport.watch(
            path,
            { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: 'true' },
            (phase, obj) => {
              if (phase === 'BOOKMARK' || phase === 'ERROR') return;
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

  private async readyz(signal: AbortSignal): Promise<boolean> {
    return (await this.transport.request('GET', '/readyz', { accept: '*/*', signal })).status === 200;
  }

  /** One GET /readyz: true when the server answers 200 within `timeoutMs` (TLS, auth and all). */
  async isReady(timeoutMs = 3000): Promise<boolean> {
    try {
      return await this.readyz(AbortSignal.timeout(timeoutMs));
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
    const server = this.server;
    let last = '';
    let told = false;
    for (;;) {
      if (signal?.aborted) throw new VaultlabError(`the wait for ${server} to be ready was cancelled`);
      try {
        if (await this.readyz(signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000))) return;
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
      const r = await this.rawJson<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`, {}, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences, expirationSeconds },
      });
      if (!r.status?.token) throw new Error('the API server returned no token');
      return r.status.token;
    } catch (err) {
      throw new KubeError(`requesting a token for ServiceAccount ${namespace}/${serviceAccount}`, err);
    }
  }

  /** Runs a command in a container through the API server (pods/exec); what it printed, never echoed. */
  async exec(namespace: string, pod: string, container: string, command: string[]): Promise<{ stdout: string; stderr: string; ok: boolean }> {
    const r = await this.transport.exec(namespace, pod, container, command);
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), ok: r.status.status === 'Success' };
  }

  /** The last `tailLines` lines of a container's log (`previous`: of its last run). */
  async podLog(namespace: string, pod: string, container: string, opts: { tailLines?: number; previous?: boolean } = {}): Promise<string> {
    const query: Record<string, string> = { container };
    if (opts.tailLines !== undefined) query.tailLines = String(opts.tailLines);
    if (opts.previous) query.previous = 'true';
    try {
      return await this.call('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`, { query, accept: 'text/plain' });
    } catch (err) {
      throw new KubeError(`reading the log of pod ${namespace}/${pod}, container ${container}`, err);
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
    const log = await kube.podLog(p.namespace, p.pod, p.container, { previous: p.restarts > 0, tailLines: lines });
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
