// Image references: parsing, the registry mirror rewrite, and the chart values that point each
// component at its image. Pure. The list of images a deploy runs is read from the rendered charts
// (lifecycle/images.ts), never kept by hand; this file only decides what vaultlab overrides.
import type { Config } from '../config/schema.ts';

export interface ImageRef {
  /** Registry host (with port), "docker.io" when the reference names none. */
  registry: string;
  /** Path below the registry: "hashicorp/vault", "library/busybox". */
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

const looksLikeHost = (part: string) => part.includes('.') || part.includes(':') || part === 'localhost';

/** Docker's normalization: no registry -> docker.io, a one-part Docker Hub path -> library/<name>. */
export function parseImage(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && looksLikeHost(parts[0]!)) registry = parts.shift()!;
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  return { registry, path: parts.join('/'), tag, digest };
}

export function formatImage(i: ImageRef): string {
  return `${i.registry}/${i.path}${i.tag ? `:${i.tag}` : ''}${i.digest ? `@${i.digest}` : ''}`;
}

/** The same image through a registry mirror: its registry replaced, its path kept. */
export function mirrored(ref: string, mirror: string | undefined): string {
  if (!mirror) return ref;
  const i = parseImage(ref);
  const [host, ...prefix] = mirror.split('/');
  return formatImage({ ...i, registry: host!, path: [...prefix, i.path].join('/') });
}

/** Short form Docker prints and `kind load` accepts: docker.io/library/x:1 -> x:1, docker.io/a/b -> a/b. */
export function shortImage(ref: string): string {
  const i = parseImage(ref);
  if (i.registry !== 'docker.io') return formatImage(i);
  const path = i.path.startsWith('library/') ? i.path.slice('library/'.length) : i.path;
  return `${path}${i.tag ? `:${i.tag}` : ''}${i.digest ? `@${i.digest}` : ''}`;
}

/** Same image, whichever way each reference is written. */
export const sameImage = (a: string, b: string) => formatImage(parseImage(a)) === formatImage(parseImage(b));

export interface ImagesPlan {
  mirror: string | undefined;
  /** Vault/OpenBao server: always set by vaultlab (distribution default, image_tag, override, mirror). */
  vault: string;
  /** Overrides of chart defaults; undefined = the chart's own image (through the mirror, if any). */
  injector: string | undefined;
  agent: string | undefined;
  eso: string | undefined;
  vso: string | undefined;
  vsoRbacProxy: string | undefined;
  /** The sample apps' image. */
  samples: string;
  /** The sample Postgres of [[databases]] (where = "sample"). */
  postgres: string;
  /** The kind node image (cluster.node_image, through the mirror). */
  node: string;
}

export const SAMPLES_IMAGE = 'busybox:1.37';
export const POSTGRES_IMAGE = 'postgres:15-alpine';

export function buildImages(config: Config, defaultVault: string): ImagesPlan {
  const m = config.images.mirror;
  const pick = (override: string | undefined, fallback: string) => override ?? mirrored(fallback, m);
  return {
    mirror: m,
    vault: pick(config.images.vault, defaultVault),
    injector: config.images.injector,
    agent: config.images.agent,
    eso: config.images.eso,
    vso: config.images.vso,
    vsoRbacProxy: config.images.vso_rbac_proxy,
    samples: pick(config.images.samples, SAMPLES_IMAGE),
    postgres: pick(config.images.postgres, POSTGRES_IMAGE),
    node: mirrored(config.cluster.node_image, m),
  };
}

/** {repository, tag} as most charts take them (the registry stays in the repository). */
function repoTag(ref: string): { repository: string; tag?: string } {
  const i = parseImage(ref);
  const repository = shortImage(formatImage({ ...i, tag: undefined, digest: undefined }));
  const tag = i.digest ? `${i.tag ?? 'latest'}@${i.digest}` : i.tag;
  return { repository, ...(tag ? { tag } : {}) };
}

/** {registry, repository, tag} for the OpenBao chart, which writes "<registry>/<repository>:<tag>". */
function registryRepoTag(ref: string): { registry: string; repository: string; tag?: string } {
  const i = parseImage(ref);
  const tag = i.digest ? `${i.tag ?? 'latest'}@${i.digest}` : i.tag;
  return { registry: i.registry, repository: i.path, ...(tag ? { tag } : {}) };
}

/** The chart's own default image of a component, rewritten for the mirror (repository only: the chart keeps its tag). */
function mirroredDefault(distribution: 'vault' | 'openbao', chartDefault: string, mirror: string): Record<string, string> {
  const ref = mirrored(chartDefault, mirror);
  if (distribution === 'openbao') {
    const { registry, repository } = registryRepoTag(ref);
    return { registry, repository };
  }
  return { repository: repoTag(ref).repository };
}

/** Chart defaults vaultlab rewrites for a mirror (their tags stay the chart's). */
const CHART_DEFAULTS = {
  vault: { injector: 'hashicorp/vault-k8s', agent: 'hashicorp/vault' },
  openbao: { injector: 'docker.io/hashicorp/vault-k8s', agent: 'quay.io/openbao/openbao' },
  eso: 'ghcr.io/external-secrets/external-secrets',
  vso: 'hashicorp/vault-secrets-operator',
  vsoRbacProxy: 'quay.io/brancz/kube-rbac-proxy',
} as const;

/** Values for the Vault or OpenBao chart: server image, and injector/agent when overridden or mirrored. */
export function vaultImageValues(distribution: 'vault' | 'openbao', images: ImagesPlan): Record<string, any> {
  const split = distribution === 'openbao' ? registryRepoTag : repoTag;
  const component = (override: string | undefined, chartDefault: string) =>
    override ? split(override) : images.mirror ? mirroredDefault(distribution, chartDefault, images.mirror) : undefined;
  const defaults = CHART_DEFAULTS[distribution];
  const injector = component(images.injector, defaults.injector);
  const agent = component(images.agent, defaults.agent);
  return {
    server: { image: split(images.vault) },
    ...(injector || agent ? { injector: { ...(injector ? { image: injector } : {}), ...(agent ? { agentImage: agent } : {}) } } : {}),
  };
}

/** An image as the Vault or OpenBao chart takes it ({repository, tag}, or {registry, repository, tag} for OpenBao). */
export function vaultChartImage(distribution: 'vault' | 'openbao', ref: string): Record<string, string> {
  return distribution === 'openbao' ? registryRepoTag(ref) : repoTag(ref);
}

/** Values for the ESO chart: one image for the controller, the webhook and the cert controller. */
export function esoImageValues(images: ImagesPlan): Record<string, any> {
  const image = images.eso ? repoTag(images.eso) : images.mirror ? { repository: repoTag(mirrored(CHART_DEFAULTS.eso, images.mirror)).repository } : undefined;
  return image ? { image, webhook: { image }, certController: { image } } : {};
}

/** Values for the VSO chart: the controller (manager) and its kube-rbac-proxy sidecar, when overridden or mirrored. */
export function vsoImageValues(images: ImagesPlan): Record<string, any> {
  const image = (override: string | undefined, chartDefault: string) =>
    override ? repoTag(override) : images.mirror ? { repository: repoTag(mirrored(chartDefault, images.mirror)).repository } : undefined;
  const manager = image(images.vso, CHART_DEFAULTS.vso);
  const proxy = image(images.vsoRbacProxy, CHART_DEFAULTS.vsoRbacProxy);
  if (!manager && !proxy) return {};
  return { controller: { ...(manager ? { manager: { image: manager } } : {}), ...(proxy ? { kubeRbacProxy: { image: proxy } } : {}) } };
}
