// A kubeconfig read for the API connection vaultlab makes itself (adapters/kube-http.ts): the
// context, its cluster (server, CA, TLS name) and its user when that user is a client
// certificate, a bearer token or nothing. Anything else (exec or auth-provider plugins, basic
// auth, impersonation, a proxy, several KUBECONFIG files to merge) is client-node's job, so the
// answer then says why and the caller loads client-node (adapters/kube.ts). Loading client-node
// costs 0.3-0.8 s of every command that talks to the cluster here; reading the file costs a few ms.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { VaultlabError } from '../lib/errors.ts';

export interface KubeTarget {
  /** The kubeconfig file read. */
  file: string;
  context: string;
  server: string;
  /** PEM; undefined: the system's roots. */
  ca: string | undefined;
  insecureSkipTlsVerify: boolean;
  tlsServerName: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  token: string | undefined;
}

export type KubeconfigRead = { target: KubeTarget } | { clientNode: string; file: string | undefined; context: string | undefined };

interface Named<T> {
  name?: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

/** The file `Kube.connect` reads: the given one, else $KUBECONFIG (one file), else ~/.kube/config. */
export function kubeconfigFile(file: string | undefined, env: NodeJS.ProcessEnv = process.env): { file: string } | { several: string } {
  if (file) return { file };
  const paths = (env.KUBECONFIG ?? '').split(process.platform === 'win32' ? ';' : ':').filter(Boolean);
  if (paths.length > 1) return { several: env.KUBECONFIG! };
  return { file: paths[0] ?? resolve(env.HOME ?? homedir(), '.kube', 'config') };
}

const USER_AUTH = new Set(['client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'token', 'tokenFile']);
const CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions']);

/**
 * What `file` (or the default) says for `context` (or its current context). Errors name the
 * file and what is missing; a shape vaultlab does not speak itself comes back as `clientNode`.
 */
export function readKubeconfig(opts: { kubeconfig?: string | undefined; context?: string | undefined }, env: NodeJS.ProcessEnv = process.env): KubeconfigRead {
  const which = kubeconfigFile(opts.kubeconfig, env);
  if ('several' in which) return { clientNode: `KUBECONFIG names several files (${which.several})`, file: undefined, context: opts.context };
  const file = which.file;
  let doc: any;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new VaultlabError(`cannot load kubeconfig ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
  }
  if (!doc || typeof doc !== 'object') throw new VaultlabError(`cannot load kubeconfig ${file}: it is empty or not a kubeconfig`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
  const list = <T,>(k: string): Named<T>[] => (Array.isArray(doc[k]) ? doc[k] : []);
  const contexts = list<{ cluster?: string; user?: string; namespace?: string }>('contexts');
  const name: string | undefined = opts.context ?? doc['current-context'];
  if (opts.context && !contexts.some((c) => c.name === opts.context)) {
    throw new VaultlabError(`kubeconfig has no context "${opts.context}"`, { hint: `Contexts: ${contexts.map((c) => c.name).join(', ') || 'none'}.` });
  }
  const ctx = contexts.find((c) => c.name === name)?.context;
  if (!name || !ctx) throw new VaultlabError(`cannot load kubeconfig ${file}: ${name ? `its current context "${name}" is not defined` : 'it has no current context'}`, { hint: 'Set one with `kubectl config use-context`, or name it in [cluster] context.' });
  const cluster = list<Record<string, any>>('clusters').find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new VaultlabError(`cannot load kubeconfig ${file}: context "${name}" names cluster "${ctx.cluster ?? ''}", which has no server`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
  const user: Record<string, any> = (ctx.user ? list<Record<string, any>>('users').find((u) => u.name === ctx.user)?.user : undefined) ?? {};
  const other = [...Object.keys(user).filter((k) => !USER_AUTH.has(k) && user[k] !== undefined && user[k] !== null && k !== 'extensions'), ...Object.keys(cluster).filter((k) => !CLUSTER_FIELDS.has(k))];
  if (other.length) return { clientNode: `kubeconfig ${file}, context "${name}" uses ${other.join(', ')}`, file, context: opts.context };

  const base = dirname(file);
  const read = (path: string, what: string) => {
    try {
      return readFileSync(resolve(base, path), 'utf8');
    } catch (err) {
      throw new VaultlabError(`cannot load kubeconfig ${file}: its ${what} ${path}: ${(err as Error).message}`, { hint: 'Check --kubeconfig / KUBECONFIG.' });
    }
  };
  const b64 = (s: unknown) => Buffer.from(String(s), 'base64').toString('utf8');
  const pick = (data: unknown, path: unknown, what: string) => (data ? b64(data) : path ? read(String(path), what) : undefined);
  return {
    target: {
      file,
      context: name,
      server: String(cluster.server).replace(/\/+$/, ''),
      ca: pick(cluster['certificate-authority-data'], cluster['certificate-authority'], 'certificate-authority'),
      insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
      tlsServerName: cluster['tls-server-name'] ? String(cluster['tls-server-name']) : undefined,
      cert: pick(user['client-certificate-data'], user['client-certificate'], 'client-certificate'),
      key: pick(user['client-key-data'], user['client-key'], 'client-key'),
      token: user.token ? String(user.token) : user.tokenFile ? read(String(user.tokenFile), 'tokenFile').trim() : undefined,
    },
  };
}
