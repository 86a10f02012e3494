// kind: list, create from a rendered config, delete, kubeconfig, image preload. Every command
// line is built here; steps call these functions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exec } from './exec.ts';
import { dockerImageIds } from './docker.ts';
import { pool } from '../lib/pool.ts';

/** `kind get clusters` output -> names ("No kind clusters found." goes to stderr, but be safe). */
export function parseKindClusters(stdout: string): string[] {
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^No kind clusters/.test(l));
}

export async function kindClusters(): Promise<string[]> {
  const r = await exec('kind', ['get', 'clusters'], { timeoutMs: 60_000 });
  return parseKindClusters(r.stdout);
}

/** Creates the cluster from `config` (the rendered kind Cluster object), written to a 0600 temp file. */
export async function kindCreate(name: string, config: Record<string, unknown>, waitSeconds = 180): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kind-'));
  try {
    const file = join(dir, 'cluster.yaml');
    writeFileSync(file, stringify(config), { mode: 0o600 });
    await exec('kind', ['create', 'cluster', '--name', name, '--config', file, '--wait', `${waitSeconds}s`], { timeoutMs: (waitSeconds + 600) * 1000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function kindDelete(name: string): Promise<void> {
  await exec('kind', ['delete', 'cluster', '--name', name], { timeoutMs: 180_000 });
}

/** The cluster's kubeconfig, written 0600 to `path` (vaultlab never edits ~/.kube/config). */
export async function kindKubeconfig(name: string, path: string): Promise<string> {
  const r = await exec('kind', ['get', 'kubeconfig', '--name', name], { timeoutMs: 60_000 });
  writeFileSync(path, r.stdout, { mode: 0o600 });
  return path;
}

export interface PreloadReport {
  loaded: string[];
  /** Already in every node under the same image ID: not loaded again. */
  present: string[];
  /** Not on the host: the nodes pull them as usual. */
  absent: string[];
}

/** The node containers of kind cluster `name`. */
export async function kindNodes(name: string): Promise<string[]> {
  const r = await exec('kind', ['get', 'nodes', '--name', name], { timeoutMs: 60_000 });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/**
 * Preload while `kind create` runs: the node containers exist, and their containerd answers,
 * seconds into a creation that then spends most of its time in kubeadm. So the images go in
 * meanwhile, once every node (`nodes` of them) is listed and `crictl` answers in each. When the
 * creation ends first, or an early load fails, they are loaded after it, as a warm run would.
 */
export async function kindLoadImagesDuringCreate(name: string, nodes: number, images: string[], creating: Promise<void>): Promise<PreloadReport> {
  let settled = false;
  const done = creating.then(
    () => void (settled = true),
    () => void (settled = true),
  );
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  while (!settled) {
    const listed = await kindNodes(name).catch((): string[] => []);
    const infos = listed.length >= nodes ? await Promise.all(listed.map((n) => exec('docker', ['exec', n, 'crictl', 'info', '-o', 'json'], { allowFail: true, timeoutMs: 10_000 }))) : [];
    if (infos.length && infos.every((r) => r.code === 0)) {
      try {
        // What crictl answered also names each node's snapshotter: the streams need not ask again.
        return await kindLoadImages(name, images, undefined, snapshottersOf(listed, infos.map((r) => r.stdout)));
      } catch {
        break; // loaded after the creation, below
      }
    }
    await Promise.race([done, sleep(1000)]);
  }
  await creating;
  return kindLoadImages(name, images);
}

/** image ID per tag in one node's containerd (crictl, as the kubelet sees them). */
export async function nodeImageIds(node: string): Promise<Map<string, string>> {
  const r = await exec('docker', ['exec', node, 'crictl', 'images', '-o', 'json'], { allowFail: true, timeoutMs: 60_000 });
  const ids = new Map<string, string>();
  if (r.code !== 0) return ids;
  try {
    for (const img of (JSON.parse(r.stdout) as { images?: { id: string; repoTags?: string[] }[] }).images ?? []) {
      for (const tag of img.repoTags ?? []) ids.set(tag, img.id);
    }
  } catch {
    /* unreadable: everything is loaded */
  }
  return ids;
}

/** Docker's name for an image reference (docker.io/library/ implied), as containerd lists it. */
export function containerdRef(image: string): string {
  const first = image.split('/')[0]!;
  const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const ref = hasRegistry ? image : `docker.io/${image.includes('/') ? image : `library/${image}`}`;
  return /[:@][^/]*$/.test(ref.slice(ref.lastIndexOf('/'))) ? ref : `${ref}:latest`;
}

/** Which images the host holds (image ID per tag) and which each node of cluster `name` holds. */
export interface ImagePresence {
  hostIds: Map<string, string>;
  nodes: string[];
  held: Map<string, string>[];
}

/** The node containers of kind cluster `name` (kind's label), name -> full container ID. */
export async function kindNodeContainers(name: string): Promise<Map<string, string>> {
  const r = await exec('docker', ['ps', '--all', '--no-trunc', '--filter', `label=io.x-k8s.kind.cluster=${name}`, '--format', '{{.ID}} {{.Names}}'], { timeoutMs: 60_000 });
  return new Map(r.stdout.split('\n').map((l) => l.trim().split(' ')).filter((x): x is [string, string] => x.length === 2).map(([id, node]) => [node, id]));
}

/**
 * What a run found in the nodes, kept in the state dir (preload.json): each node container's ID,
 * and the host image ID every node held for each image. A later run with the same node
 * containers and the same host image IDs, whose kubelets still report those tags on their Node
 * objects, knows what crictl would say (a `docker exec` per node: 0.15-0.25 s here) without it.
 */
export interface PreloadRecord {
  nodes: Record<string, string>;
  images: Record<string, string>;
}

/** The presence a record vouches for, when the nodes and host image IDs are the ones it saw; undefined otherwise. */
export function presenceFromRecord(record: PreloadRecord | undefined, hostIds: Map<string, string>, containers: Map<string, string>, wanted: string[]): ImagePresence | undefined {
  if (!record || containers.size === 0 || containers.size !== Object.keys(record.nodes).length) return undefined;
  for (const [node, id] of containers) if (record.nodes[node] !== id) return undefined;
  const held = new Map<string, string>();
  for (const image of wanted) {
    const id = hostIds.get(image);
    if (!id) continue; // not on the host: nothing to load either way
    if (record.images[image] !== id) return undefined;
    held.set(containerdRef(image), id);
  }
  const nodes = [...containers.keys()];
  return { hostIds, nodes, held: nodes.map(() => held) };
}

/** The record of a presence after a preload: every image on the host that every node now holds under the host's ID. */
export function recordOf(p: ImagePresence, containers: Map<string, string>, loaded: string[]): PreloadRecord {
  const images: Record<string, string> = {};
  for (const [image, id] of p.hostIds) {
    if (loaded.includes(image) || (p.nodes.length > 0 && p.held.every((ids) => ids.get(containerdRef(image)) === id))) images[image] = id;
  }
  return { nodes: Object.fromEntries(containers), images };
}

/** The host's and every node's image IDs for `images`: `docker image inspect` and `kind get nodes` at once, then crictl in each node. */
export async function imagePresence(name: string, images: string[]): Promise<ImagePresence> {
  const [hostIds, nodes] = await Promise.all([dockerImageIds([...new Set(images)]), kindNodes(name)]);
  return { hostIds, nodes, held: await Promise.all(nodes.map(nodeImageIds)) };
}

/**
 * Images already on the host, loaded into the nodes (skips registry pulls). What every node
 * already holds under the same image ID is not loaded again (a warm re-deploy loads nothing);
 * the rest is streamed into them image by image, side by side (streamImages). `known`: the presence asked for
 * earlier in the run (deploy asks during preflight), for these images and this cluster.
 */
export async function kindLoadImages(name: string, images: string[], known?: Promise<ImagePresence>, snapshotters?: Map<string, string>): Promise<PreloadReport> {
  const report: PreloadReport = { loaded: [], present: [], absent: [] };
  const wanted = [...new Set(images)];
  if (!wanted.length) return report;
  const { hostIds, nodes, held } = await (known ?? imagePresence(name, wanted));
  const onHost = wanted.filter((i) => hostIds.has(i));
  report.absent = wanted.filter((i) => !hostIds.has(i));
  const toLoad = onHost.filter((i) => !nodes.length || held.some((ids) => ids.get(containerdRef(i)) !== hostIds.get(i)));
  report.present = onHost.filter((i) => !toLoad.includes(i));
  if (toLoad.length) {
    const failed = await streamImages(nodes.length ? nodes : await kindNodes(name), toLoad, snapshotters);
    // What a stream could not import goes through kind itself (its archive, its error message).
    if (failed.length) await exec('kind', ['load', 'docker-image', ...failed, '--name', name], { timeoutMs: 600_000 });
  }
  report.loaded = toLoad;
  return report;
}

/** The snapshotter a node's containerd unpacks images with, from `crictl info -o json` (its CRI config). */
export function snapshotterOf(crictlInfo: string): string | undefined {
  try {
    const s = (JSON.parse(crictlInfo) as { config?: { containerd?: { snapshotter?: unknown } } }).config?.containerd?.snapshotter;
    return typeof s === 'string' && /^[a-z0-9_.-]+$/i.test(s) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Each node's snapshotter from its `crictl info -o json` output (same order); nodes whose output names none are left out. */
export function snapshottersOf(nodes: string[], crictlInfos: string[]): Map<string, string> {
  return new Map(nodes.flatMap((n, i) => {
    const s = snapshotterOf(crictlInfos[i] ?? '');
    return s ? [[n, s] as const] : [];
  }));
}

/** At most this many `docker save | ctr import` streams at once (measured: 7 images into one fresh node, 2 cores: 19 s, against 33 s for `kind load`). */
export const IMPORT_STREAMS = 8;

/** Every (node, image) pair, in the images' order, each image for every node before the next. */
export function importPairs(nodes: string[], images: string[]): { node: string; image: string }[] {
  return images.flatMap((image) => nodes.map((node) => ({ node, image })));
}

/**
 * Images from the host's Docker into the nodes' containerd, each image streamed on its own:
 * `docker save <image> | docker exec -i <node> ctr images import -` (what `kind load docker-image`
 * runs, without first writing every image into one archive on disk and then reading it back, and
 * with the images imported side by side rather than one after another). Blobs two images share
 * are written once: containerd's writer waits on a blob another import holds. Returns the images
 * some stream failed for.
 */
export async function streamImages(nodes: string[], images: string[], known: Map<string, string> = new Map()): Promise<string[]> {
  const unknown = nodes.filter((n) => !known.has(n));
  const asked = snapshottersOf(unknown, await Promise.all(unknown.map(async (n) => (await exec('docker', ['exec', n, 'crictl', 'info', '-o', 'json'], { allowFail: true, timeoutMs: 30_000 })).stdout)));
  const snapshotter = (node: string) => known.get(node) ?? asked.get(node) ?? 'overlayfs';
  const script = 'set -o pipefail; docker save "$1" | docker exec -i "$2" ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter="$3" -';
  const codes = await pool(importPairs(nodes, images), IMPORT_STREAMS, async ({ node, image }) => ({ image, code: (await exec('bash', ['-c', script, 'vaultlab-preload', image, node, snapshotter(node)], { allowFail: true, timeoutMs: 600_000 })).code }));
  const failed = new Set(codes.filter((r) => r.code !== 0).map((r) => r.image));
  return images.filter((i) => failed.has(i));
}
