// Rendered objects, validated through their kubernetes-models classes and returned as plain
// objects. Every rendered object passes through here before it is used or written.
//
// The model classes and their JSON schemas are ~420 modules (0.15-0.25 s to load here); a
// warm re-deploy renders the same objects every time. So an object whose exact content
// validated before, with the same model packages, is known valid: its digest is remembered
// under ~/.cache/vaultlab/validated (XDG_CACHE_HOME; VAULTLAB_VALIDATION_CACHE=0 turns it
// off), a marker file named by the digest and holding nothing. Secrets with data are never
// remembered (a digest of a short literal can be guessed). The classes load, synchronously, on
// the first object not known valid.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from './objects.ts';
import { VaultlabError } from '../lib/errors.ts';
import { vaultlabCacheDir } from '../lib/cache-dir.ts';

interface Model {
  validate(): void;
  toJSON(): unknown;
}

/** "<apiVersion>/<kind>" -> the module of its model class (exported under the kind's name). Kinds without one (VSO's CRDs) are used as rendered. */
const MODELS: Record<string, string> = {
  'v1/Namespace': 'kubernetes-models/v1/Namespace',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'apps/v1/StatefulSet': 'kubernetes-models/apps/v1/StatefulSet',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  'rbac.authorization.k8s.io/v1/Role': 'kubernetes-models/rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'external-secrets.io/v1/ExternalSecret': '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret',
  'external-secrets.io/v1/SecretStore': '@kubernetes-models/external-secrets/external-secrets.io/v1/SecretStore',
  'cert-manager.io/v1/Certificate': '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate',
  'cert-manager.io/v1/Issuer': '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer',
};
const PACKAGES = ['kubernetes-models', '@kubernetes-models/external-secrets', '@kubernetes-models/cert-manager', '@kubernetes-models/validate'];

const require = createRequire(import.meta.url);
const classes = new Map<string, new (data: any) => Model>();

/** The model class of an apiVersion/kind, loaded on first use (require of the ES module the package exports: synchronous, as rendering is). */
function modelClass(key: string): (new (data: any) => Model) | undefined {
  const spec = MODELS[key];
  if (!spec) return undefined;
  let cls = classes.get(key);
  if (!cls) {
    const mod = require(fileURLToPath(import.meta.resolve(spec))) as Record<string, new (data: any) => Model>;
    cls = mod[spec.slice(spec.lastIndexOf('/') + 1)]!;
    classes.set(key, cls);
  }
  return cls;
}

let cache: { dir: string; salt: string } | null | undefined;
/** Where digests of valid objects are kept, and what they are salted with (the model packages' versions); null: off or unreadable. */
function validationCache(): { dir: string; salt: string } | null {
  if (cache !== undefined) return cache;
  try {
    if (process.env.VAULTLAB_VALIDATION_CACHE === '0') return (cache = null);
    const versions = PACKAGES.map((p) => {
      // A package's own package.json (not in its exports): beside its resolved entry, at node_modules/<name>.
      const entry = fileURLToPath(import.meta.resolve(p));
      const dir = entry.slice(0, entry.lastIndexOf(`/node_modules/${p}/`) + `/node_modules/${p}`.length);
      return `${p}@${(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version}`;
    });
    return (cache = { dir: join(vaultlabCacheDir(), 'validated'), salt: JSON.stringify([1, versions]) });
  } catch {
    return (cache = null);
  }
}

/** As the model class gives it back: apiVersion and kind first, no undefined field (what toJSON and a JSON round trip make). */
function asModelJson(o: KubeObject): KubeObject {
  const { apiVersion, kind, ...rest } = o;
  return JSON.parse(JSON.stringify({ apiVersion, kind, ...rest })) as KubeObject;
}

/** A plain rendered object, validated by the class of its apiVersion and kind (when there is one). */
export function validated(o: KubeObject, what = `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`): KubeObject {
  const key = `${o.apiVersion}/${o.kind}`;
  if (!MODELS[key]) return JSON.parse(JSON.stringify(o)) as KubeObject;
  const remembered = o.kind !== 'Secret' || (o.data === undefined && o.stringData === undefined) ? validationCache() : null;
  const json = asModelJson(o);
  const marker = remembered && join(remembered.dir, createHash('sha256').update(remembered.salt).update(JSON.stringify(json)).digest('hex'));
  if (marker && existsSync(marker)) return json;
  const cls = modelClass(key)!;
  const model = new cls(o);
  try {
    model.validate();
  } catch (err) {
    throw new VaultlabError(`rendered ${what} is not valid: ${(err as Error).message}`, { hint: 'This is a vaultlab bug or a sample template edited by hand; check stacks/samples.' });
  }
  const out = JSON.parse(JSON.stringify(model.toJSON())) as KubeObject;
  if (marker) {
    try {
      mkdirSync(remembered.dir, { recursive: true, mode: 0o700 });
      writeFileSync(marker, '', { mode: 0o600 });
    } catch {
      /* unwritable: validated again next time */
    }
  }
  return out;
}

/** Validated as `what` (the name errors give it). */
export const checked = (o: KubeObject, what: string): KubeObject => validated(o, what);

/** Plain objects of the kinds vaultlab renders itself, apiVersion and kind set: what `checked` validates. */
const of =
  (apiVersion: string, kind: string) =>
  (data: Record<string, unknown>): KubeObject =>
    ({ apiVersion, kind, ...data }) as KubeObject;
export const model = {
  Namespace: of('v1', 'Namespace'),
  ServiceAccount: of('v1', 'ServiceAccount'),
  ConfigMap: of('v1', 'ConfigMap'),
  Service: of('v1', 'Service'),
  Deployment: of('apps/v1', 'Deployment'),
  StatefulSet: of('apps/v1', 'StatefulSet'),
  NetworkPolicy: of('networking.k8s.io/v1', 'NetworkPolicy'),
  Role: of('rbac.authorization.k8s.io/v1', 'Role'),
  RoleBinding: of('rbac.authorization.k8s.io/v1', 'RoleBinding'),
  ClusterRole: of('rbac.authorization.k8s.io/v1', 'ClusterRole'),
  ClusterRoleBinding: of('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'),
  Issuer: of('cert-manager.io/v1', 'Issuer'),
  Certificate: of('cert-manager.io/v1', 'Certificate'),
};
