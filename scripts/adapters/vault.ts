// The Vault/OpenBao HTTP API, over node-vault's request layer: keep-alive agents, a timeout per
// request, retries with backoff only for connection errors and 5xx while Vault starts (never
// 4xx), and errors that carry method, path, status and Vault's message, never a value or token.
// node-vault sends through a lean node:http transport (vault-transport.ts) unless `transport:
// 'axios'` asks for its default one (the benchmark compares the two).
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { Module, createRequire } from 'node:module';
import { VaultlabError } from '../lib/errors.ts';
import { redact, registerSecret } from '../lib/redact.ts';
import { keepAliveTransport } from './vault-transport.ts';

const require = createRequire(import.meta.url);
// Required, not imported: see vault-transport.ts (an ESM import of node:http loads undici).
const http = require('node:http') as typeof Http;
const https = require('node:https') as typeof Https;

type NodeVault = (c: Record<string, unknown>) => { request(o: Record<string, unknown>): Promise<unknown> };

/**
 * node-vault, without loading axios until something asks for it. node-vault `require`s axios when
 * it loads (about 60 ms of a process's start here: axios, form-data, mime-db, follow-redirects,
 * proxy agents, and undici through its fetch check) but calls it only as `axios.create()` when no
 * `request-promise` transport is given, which vaultlab's default transport always is. So axios's
 * cache entry is, for node-vault's load only, a stand-in whose `create` loads the real axios on
 * first use (the `transport: 'axios'` comparison in the benchmark), and the entry is removed
 * again so anything else that requires axios gets the real module.
 */
function loadNodeVault(): NodeVault {
  const nodeVaultPath = require.resolve('node-vault');
  if (require.cache[nodeVaultPath]) return require(nodeVaultPath) as NodeVault;
  const nodeVaultRequire = createRequire(nodeVaultPath);
  const axiosPath = nodeVaultRequire.resolve('axios');
  if (require.cache[axiosPath]) return require(nodeVaultPath) as NodeVault;
  const standIn = new Module(axiosPath);
  standIn.filename = axiosPath;
  standIn.loaded = true;
  standIn.exports = { create: (...args: unknown[]) => (nodeVaultRequire('axios') as { create(...a: unknown[]): unknown }).create(...args) };
  require.cache[axiosPath] = standIn;
  try {
    return require(nodeVaultPath) as NodeVault;
  } finally {
    if (require.cache[axiosPath] === standIn) delete require.cache[axiosPath];
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'LIST';

export class VaultApiError extends VaultlabError {
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly vaultErrors: string[];
  constructor(method: string, path: string, status: number | undefined, vaultErrors: string[], hint?: string, cause?: unknown) {
    const what = status === undefined ? 'no response' : `HTTP ${status}`;
    const detail = vaultErrors.length ? `: ${vaultErrors.join('; ')}` : '';
    super(redact(`Vault ${method} /v1/${path} failed (${what})${detail}`), { ...(hint ? { hint } : {}), cause });
    this.name = 'VaultApiError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.vaultErrors = vaultErrors;
  }
}

export interface VaultClientOptions {
  address: string;
  token?: string | undefined;
  /** PEM of the CA that signed Vault's certificate; the client verifies against it. */
  caPem?: string | undefined;
  timeoutMs?: number;
  /** Attempts for connection errors and 5xx (Vault starting); 1 = no retry. */
  attempts?: number;
  /** node-vault's HTTP layer: 'node' (default, node:http on the keep-alive agent) or its own axios. */
  transport?: 'node' | 'axios';
  /**
   * What to tell the user when nothing answers at `address` (default: check --vault-addr). A
   * deploy reaching a pod through a port-forward names the pod instead of a temporary port.
   */
  unreachableHint?: string;
  /**
   * How long to keep asking when a standby answers 307 (default 30 s). An HA standby forwards
   * requests to the active node; right after a leader change (a rollout replacing the active pod)
   * it cannot yet, and redirects instead, to an address only the cluster resolves. The request was
   * not handled, so asking again is safe for writes too.
   */
  standbyWaitMs?: number;
}

export interface RequestOptions {
  /** Statuses returned instead of thrown (e.g. 404 for "absent"). */
  accept?: number[];
  retry?: boolean;
  headers?: Record<string, string>;
  /** Do not send the client token (sys/init, sys/unseal need none). */
  anonymous?: boolean;
  token?: string;
}

/** A KV v2 path's metadata: its current version and, per version, when it was written or deleted. */
export interface KvPathMetadata {
  current_version: number;
  versions: Record<string, { created_time?: string; deletion_time?: string; destroyed?: boolean }>;
}

export interface Response<T> {
  status: number;
  data: T;
}

const MUTATING = new Set<Method>(['POST', 'PUT', 'PATCH', 'DELETE']);
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ECONNABORTED', 'EAI_AGAIN', 'ENOTFOUND']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = () => undefined;

export class VaultClient {
  readonly address: string;
  private token: string | undefined;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly raw: { request(o: Record<string, unknown>): Promise<unknown> };
  private readonly agent: Http.Agent | Https.Agent;
  private readonly unreachableHint: string | undefined;
  private readonly options: VaultClientOptions;
  /** Requests that can change Vault's state (POST/PUT/PATCH/DELETE), for "a re-run writes nothing". */
  writes = 0;
  requests = 0;

  constructor(opts: VaultClientOptions) {
    this.address = opts.address.replace(/\/+$/, '');
    this.token = opts.token;
    if (opts.token) registerSecret(opts.token);
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.attempts = opts.attempts ?? 6;
    this.unreachableHint = opts.unreachableHint;
    this.options = opts;
    const tls = this.address.startsWith('https:');
    this.agent = tls ? new https.Agent({ keepAlive: true, ...(opts.caPem ? { ca: opts.caPem } : {}) }) : new http.Agent({ keepAlive: true });
    const nodeVault = loadNodeVault();
    const transport = opts.transport === 'axios' ? {} : { 'request-promise': keepAliveTransport(this.agent, this.timeoutMs) };
    // node-vault's own `debug` logger (DEBUG=node-vault, or DEBUG=*) prints request bodies, values
    // included, past the redactor: it is given a logger that prints nothing.
    this.raw = nodeVault({ endpoint: this.address, apiVersion: 'v1', token: '', debug: silent, ...transport, ...(opts.caPem ? { requestOptions: { ca: opts.caPem } } : {}) });
  }

  /** Another client for the same Vault (address, CA, timeouts) with its own token. */
  withToken(token: string): VaultClient {
    return new VaultClient({ ...this.options, token });
  }

  setToken(token: string | undefined): void {
    this.token = token;
    if (token) registerSecret(token);
  }

  hasToken(): boolean {
    return !!this.token;
  }

  /** Closes keep-alive sockets so a test or CLI run can exit promptly. */
  close(): void {
    this.agent.destroy();
  }

  async request<T = any>(method: Method, path: string, body?: unknown, opts: RequestOptions = {}): Promise<Response<T>> {
    const clean = path.replace(/^\/+/, '');
    const attempts = opts.retry === false ? 1 : this.attempts;
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token ?? (opts.anonymous ? undefined : this.token);
    if (token) headers['X-Vault-Token'] = token;
    let lastError: unknown;
    let standbyUntil: number | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      this.requests++;
      if (MUTATING.has(method)) this.writes++;
      let status: number | undefined;
      let data: any;
      try {
        const agentKey = this.address.startsWith('https:') ? 'httpsAgent' : 'httpAgent';
        data = await this.raw.request({
          path: `/${clean}`,
          method,
          headers,
          timeout: this.timeoutMs,
          [agentKey]: this.agent,
          ...(body !== undefined ? { json: body } : {}),
        });
        // node-vault resolves only 200/204 (which one is not kept; both mean success) and any
        // sys/health answer (see health()); everything else arrives as an error with its status.
        status = 200;
      } catch (err: any) {
        if (err?.response?.statusCode !== undefined) {
          status = err.response.statusCode as number;
          data = err.response.body;
        } else {
          lastError = err;
          const code = err?.code ?? err?.cause?.code;
          const retriable = CONNECTION_ERRORS.has(code) || /socket hang up|timeout/i.test(String(err?.message));
          if (retriable && attempt < attempts) {
            await sleep(Math.min(200 * 2 ** (attempt - 1), 3000));
            continue;
          }
          const tlsProblem = /certificate|self[- ]signed|CERT_|unable to verify/i.test(String(err?.message) + String(code));
          throw new VaultApiError(method, clean, undefined, [redact(String(err?.message ?? err))], tlsProblem
            ? 'Vault\'s certificate is not signed by the CA vaultlab was given: check --ca-cert / VAULT_CACERT.'
            : this.unreachableHint ?? `Is Vault running at ${this.address}? Check --vault-addr / VAULT_ADDR.`, err);
        }
      }
      if (status === 204 || (status >= 200 && status < 300)) return { status, data: data as T };
      if (opts.accept?.includes(status)) return { status, data: data as T };
      if (status === 307 && opts.retry !== false) {
        // A standby that could not forward: nothing was done; the same node is asked again.
        if (MUTATING.has(method)) this.writes--;
        const waitMs = this.options.standbyWaitMs ?? 30_000;
        standbyUntil ??= Date.now() + waitMs;
        if (Date.now() < standbyUntil) {
          await sleep(500);
          attempt--;
          continue;
        }
        throw new VaultApiError(method, clean, status, [], `The Vault node at ${this.address} is a standby that could not forward this request to the active node for ${Math.round(waitMs / 1000)} s (HTTP 307, a redirect to the active node). Is the HA cluster's leader elected? \`vaultlab status\` shows each member.`);
      }
      const errors: string[] = Array.isArray(data?.errors) ? data.errors.map((e: unknown) => redact(String(e))) : [];
      const sealed = errors.some((e) => /Vault is sealed/i.test(e));
      if (status >= 500 && !sealed && attempt < attempts) {
        lastError = new VaultApiError(method, clean, status, errors);
        await sleep(Math.min(200 * 2 ** (attempt - 1), 3000));
        continue;
      }
      throw new VaultApiError(method, clean, status, errors, hintFor(status, errors));
    }
    throw lastError instanceof Error ? lastError : new VaultApiError(method, clean, undefined, ['gave up']);
  }

  get<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('POST', path, body ?? {}, opts);
  }
  put<T = any>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('PUT', path, body ?? {}, opts);
  }
  delete<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('DELETE', path, undefined, opts);
  }

  // --- sys
  async sealStatus(): Promise<SealStatus> {
    return (await this.get<SealStatus>('sys/seal-status', { anonymous: true })).data;
  }
  async initStatus(): Promise<boolean> {
    return (await this.get<{ initialized: boolean }>('sys/init', { anonymous: true })).data.initialized;
  }
  /**
   * sys/health answers with a status code per state (429 standby, 501 uninitialized, 503
   * sealed...), and node-vault hands back the body of any sys/health answer without its status.
   * So every state is asked to answer 200, and the state is read from the body.
   */
  async health(opts: RequestOptions = {}): Promise<Health> {
    const r = await this.get<Health>(`sys/health?${HEALTH_AS_200}`, { anonymous: true, ...opts });
    return r.data;
  }
  /** Which node is active (HA): a standby names its leader; unauthenticated. */
  async leader(opts: RequestOptions = {}): Promise<Leader> {
    return (await this.get<Leader>('sys/leader', { anonymous: true, ...opts })).data;
  }

  // --- KV v2
  /** The latest version's data with its version number and creation time; undefined when absent. */
  async kvRead(mount: string, path: string): Promise<{ data: Record<string, string>; version: number; created: string } | undefined> {
    const r = await this.get<any>(`${mount}/data/${path}`, { accept: [404] });
    if (r.status === 404 || !r.data?.data) return undefined;
    const data = (r.data.data.data ?? {}) as Record<string, string>;
    for (const v of Object.values(data)) registerSecret(String(v));
    return { data, version: r.data.data.metadata?.version ?? 0, created: r.data.data.metadata?.created_time ?? '' };
  }
  /** Key names only, no values (KV v2 subkeys endpoint). */
  async kvSubkeys(mount: string, path: string): Promise<string[] | undefined> {
    return (await this.kvKeys(mount, path))?.keys;
  }
  /** Key names of the latest version, with its version number and creation time (subkeys endpoint). */
  async kvKeys(mount: string, path: string): Promise<{ keys: string[]; version: number; created: string } | undefined> {
    const r = await this.get<any>(`${mount}/subkeys/${path}`, { accept: [404] });
    if (r.status === 404) return undefined;
    const meta = r.data?.data?.metadata;
    return { keys: Object.keys(r.data?.data?.subkeys ?? {}), version: meta?.version ?? 0, created: meta?.created_time ?? '' };
  }
  /**
   * The metadata of every secret directly inside a folder, in one request: OpenBao's
   * `LIST <mount>/detailed-metadata/<folder>/`, read in one storage transaction. Undefined when
   * the server has no such endpoint (HashiCorp Vault) or the token may not list it; an empty
   * map for an empty folder. Keys are names relative to the folder; sub-folders are left out.
   */
  async kvListMetadata(mount: string, folder: string): Promise<Map<string, KvPathMetadata> | undefined> {
    const dir = folder === '' ? '' : `${folder.replace(/\/+$/, '')}/`;
    const r = await this.request<any>('LIST', `${mount}/detailed-metadata/${dir}`, undefined, { accept: [400, 403, 404, 405] });
    if (r.status !== 200) return undefined;
    // OpenBao answers an empty folder with 200 and no key_info.
    const info = r.data?.data?.key_info ?? {};
    const out = new Map<string, KvPathMetadata>();
    for (const [name, meta] of Object.entries(info as Record<string, any>)) {
      if (name.endsWith('/') || typeof meta?.current_version !== 'number') continue;
      out.set(name, { current_version: meta.current_version, versions: meta.versions ?? {} });
    }
    return out;
  }
  async kvMetadata(mount: string, path: string): Promise<KvPathMetadata | undefined> {
    const r = await this.get<any>(`${mount}/metadata/${path}`, { accept: [404] });
    return r.status === 404 ? undefined : r.data.data;
  }
  /** Merge-patch keys into an existing secret; other keys are untouched. */
  async kvPatch(mount: string, path: string, data: Record<string, string>, opts: RequestOptions = {}) {
    return this.request('PATCH', `${mount}/data/${path}`, { data }, { ...opts, headers: { 'Content-Type': 'application/merge-patch+json', ...opts.headers } });
  }
  /** Create only if absent (cas=0). */
  async kvCreate(mount: string, path: string, data: Record<string, string>, opts: RequestOptions = {}) {
    return this.post(`${mount}/data/${path}`, { options: { cas: 0 }, data }, opts);
  }

  /** Random bytes from Vault's CSPRNG. */
  async random(bytes: number, format: 'base64' | 'hex'): Promise<string> {
    const r = await this.post<{ data: { random_bytes: string } }>(`sys/tools/random/${bytes}`, { format });
    const value = r.data.data.random_bytes;
    registerSecret(value);
    return value;
  }
}

function hintFor(status: number, errors: string[]): string | undefined {
  const text = errors.join(' ');
  if (/Vault is sealed/i.test(text)) return 'Unseal it: vaultlab vault unseal';
  if (status === 403) return 'The token lacks a capability for this path (or has expired): check --token / VAULT_TOKEN, or the state dir\'s token.';
  if (status === 400 && /check-and-set/i.test(text)) return 'Someone else wrote this secret at the same time; re-run the command.';
  return undefined;
}

export interface SealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  t: number;
  n: number;
  progress: number;
  version: string;
  cluster_name?: string;
}

const HEALTH_AS_200 = 'uninitcode=200&sealedcode=200&standbycode=200&performancestandbycode=200&drsecondarycode=200&haunhealthycode=200&removedcode=200';

export interface Leader {
  ha_enabled: boolean;
  is_self: boolean;
  leader_address?: string;
  leader_cluster_address?: string;
}

export interface Health {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version: string;
  cluster_name?: string;
}

/** --vault-addr > VAULT_ADDR > BAO_ADDR > the plan's address; same for token and CA. */
export function vaultEnv(env: NodeJS.ProcessEnv = process.env) {
  return {
    address: env.VAULT_ADDR || env.BAO_ADDR || undefined,
    token: env.VAULT_TOKEN || env.BAO_TOKEN || undefined,
    caCertFile: env.VAULT_CACERT || env.BAO_CACERT || undefined,
  };
}
