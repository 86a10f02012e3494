// An enforcing NetworkPolicy implementation for the kind suite's production run:
// sigs.k8s.io/kube-network-policies (kindnet's own enforcer), its DaemonSet from the module's
// install.yaml (module cache, never committed), its binary and image from the offline image set
// (images.ts).
//
// How it enforces: the first packet of each new connection is queued to userspace (netfilter
// queue), where the controller evaluates it against the NetworkPolicies, Pods and Namespaces it
// watches, and accepts or drops it. It installs that hook as an nftables `queue` rule; this VM's
// kernel has no nftables queue expression (CONFIG_NFT_QUEUE is off: `nft add rule ... queue`
// answers "No such file or directory"), while iptables' NFQUEUE target is built in. The
// controller logs the failed nftables sync and keeps serving its queue, so the harness installs
// the same hook with iptables in each node: new forwarded connections -> NFQUEUE. Every verdict
// is still the module's own evaluation; only the hook differs. Where neither can be had, the
// caller gets the reason and prints `skipped:`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Kube } from '../../../scripts/adapters/kube.ts';
import type { KubeObject } from '../../../scripts/plan/manifests.ts';
import { goModuleDir } from '../kube/build.ts';
import { PINS } from './images.ts';

export const NETWORK_POLICIES_MODULE = 'sigs.k8s.io/kube-network-policies';
const QUEUE = 98;

const docker = (args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 60_000 });

/** The module's install.yaml, with the locally built image and the flags this machine needs. */
export function networkPolicyManifests(image: string): KubeObject[] {
  const dir = goModuleDir(NETWORK_POLICIES_MODULE, PINS.networkPolicies);
  const docs = parseAllDocuments(readFileSync(join(dir, 'install.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject & { spec?: any });
  return docs.filter(Boolean).map((o) => {
    if (o.kind !== 'DaemonSet') return o;
    const c = o.spec.template.spec.containers[0];
    c.image = image;
    c.imagePullPolicy = 'Never';
    // The image's entrypoint is the binary (images.ts); install.yaml names it /bin/netpol.
    delete c.command;
    c.args = [
      '--hostname-override=$(MY_NODE_NAME)',
      '--v=2',
      `--nfqueue-id=${QUEUE}`,
      // No NRI socket in the suite's containerd; pod IPs come from the API (the race NRI closes
      // does not matter to connections made after the policy exists).
      '--disable-nri',
      // Kernel 6.12+ does not need the DNS workaround (more nftables rules it cannot install).
      '--netfilter-bug-1766-fix=false',
    ];
    return o;
  });
}

/** The nodes' containers of a kind cluster. */
export function nodeContainers(cluster: string): string[] {
  const r = docker(['ps', '--filter', `label=io.x-k8s.kind.cluster=${cluster}`, '--format', '{{.Names}}']);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/**
 * Installs the enforcer and the queue hook in every node; resolves when the DaemonSet is ready.
 * Returns why it cannot enforce here, or undefined when it does.
 */
export async function installNetworkPolicies(kube: Kube, cluster: string, image: string): Promise<string | undefined> {
  const nodes = nodeContainers(cluster);
  if (!nodes.length) return `no node containers for kind cluster ${cluster}`;
  // Nothing can be pulled: the image goes into the nodes from the local Docker.
  const load = spawnSync('kind', ['load', 'docker-image', image, '--name', cluster], { encoding: 'utf8', timeout: 300_000 });
  if (load.status !== 0) return `cannot load ${image} into kind cluster ${cluster}: ${(load.stderr || load.stdout).trim()}`;
  for (const node of nodes) {
    const rule = ['FORWARD', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'NFQUEUE', '--queue-num', String(QUEUE), '--queue-bypass'];
    const has = docker(['exec', node, 'iptables', '-w', '-C', ...rule]);
    if (has.status === 0) continue;
    const add = docker(['exec', node, 'iptables', '-w', '-I', ...rule]);
    if (add.status !== 0) return `cannot install the NFQUEUE hook in ${node}: ${(add.stderr || add.stdout).trim()}`;
  }
  await kube.apply(networkPolicyManifests(image));
  await kube.waitFor(
    'apps/v1',
    'DaemonSet',
    'kube-system',
    'kube-network-policies',
    (d) => d.status?.desiredNumberScheduled > 0 && d.status?.numberReady === d.status?.desiredNumberScheduled && d.status?.observedGeneration >= d.metadata.generation,
    'ready on every node',
    { timeoutMs: 120_000 },
  );
  // Its queue must be bound: /proc/net/netfilter/nfnetlink_queue lists queue 98 with a listener.
  for (const node of nodes) {
    const q = docker(['exec', node, 'cat', '/proc/net/netfilter/nfnetlink_queue']);
    if (!q.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === String(QUEUE))) return `kube-network-policies runs but no process listens on netfilter queue ${QUEUE} in ${node}`;
  }
  return undefined;
}
