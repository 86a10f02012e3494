// Local sources for everything a deploy pulls: [charts] (repository mirror, local path, OCI) and
// [images] (a registry mirror, per-component overrides), from config to plan to chart values.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { esoValues, kindConfig, vaultValues } from '../../scripts/plan/render.ts';
import { allManifests } from '../../scripts/plan/manifests.ts';
import { mirrored, parseImage, formatImage, shortImage } from '../../scripts/plan/images.ts';
import { ConfigErrors } from '../../scripts/lib/errors.ts';

const bundled = readFileSync(BUNDLED_CONFIG, 'utf8');
const plan = (extra: string, opts: { distribution?: 'openbao'; profile?: 'production' } = {}) => {
  let text = `${bundled}\n${extra}\n`;
  if (opts.distribution) text = text.replace(/^distribution = "vault"/m, 'distribution = "openbao"');
  return buildPlan(loadConfigText(text, '/srv/env/config.toml', { env: {}, ...(opts.profile ? { profile: opts.profile } : {}) }));
};
const errors = (extra: string): string[] => {
  try {
    loadConfigText(`${bundled}\n${extra}\n`, 'config.toml', { env: {} });
    return [];
  } catch (err) {
    return (err as ConfigErrors).errors.map((e) => e.message);
  }
};
const sampleImages = (p: ReturnType<typeof plan>) =>
  allManifests(p).flatMap((o: any) => (o.kind === 'Deployment' ? o.spec.template.spec.containers.map((c: any) => c.image) : []));

describe('image references', () => {
  it('parse like Docker: default registry docker.io, one-part Hub names under library/', () => {
    expect(parseImage('busybox:1.37')).toEqual({ registry: 'docker.io', path: 'library/busybox', tag: '1.37', digest: undefined });
    expect(parseImage('quay.io/openbao/openbao:2.7.2')).toMatchObject({ registry: 'quay.io', path: 'openbao/openbao', tag: '2.7.2' });
    expect(parseImage('localhost:5000/a/b')).toMatchObject({ registry: 'localhost:5000', path: 'a/b', tag: undefined });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(formatImage(parseImage(`kindest/node:v1.36.4@${digest}`))).toBe(`docker.io/kindest/node:v1.36.4@${digest}`);
    expect(shortImage('docker.io/library/busybox:1.37')).toBe('busybox:1.37');
    expect(shortImage('quay.io/openbao/openbao:2.7.2')).toBe('quay.io/openbao/openbao:2.7.2');
  });

  it('a mirror replaces the registry and keeps the path (with the mirror\'s own path prefix)', () => {
    expect(mirrored('quay.io/openbao/openbao:2.7.2', 'mirror.example:5000')).toBe('mirror.example:5000/openbao/openbao:2.7.2');
    expect(mirrored('busybox:1.37', 'mirror.example:5000')).toBe('mirror.example:5000/library/busybox:1.37');
    expect(mirrored('hashicorp/vault:2.0.4', 'harbor.example/proxy')).toBe('harbor.example/proxy/hashicorp/vault:2.0.4');
    expect(mirrored('busybox:1.37', undefined)).toBe('busybox:1.37');
  });
});

describe('[images]: a mirror and per-component overrides reach every chart value and manifest', () => {
  it('without [images], the charts keep their own defaults and the plan names the server image', () => {
    const p = plan('');
    expect(p.images).toMatchObject({ mirror: undefined, vault: 'hashicorp/vault:2.0.4', eso: undefined, samples: 'busybox:1.37' });
    expect(vaultValues(p).server.image).toEqual({ repository: 'hashicorp/vault', tag: '2.0.4' });
    // The injector (an app of the bundled config uses it) keeps the chart's image; its agent runs the server image.
    expect(vaultValues(p).injector).toMatchObject({ enabled: true, replicas: 1, agentImage: { repository: 'hashicorp/vault', tag: '2.0.4' } });
    expect(vaultValues(p).injector.image).toBeUndefined();
    expect(esoValues(p).image).toBeUndefined();
    expect(new Set(sampleImages(p))).toEqual(new Set(['busybox:1.37', 'postgres:15-alpine']));
  });

  it('a mirror rewrites the server, injector, agent, ESO, sample and node images', () => {
    const p = plan('[images]\nmirror = "mirror.example:5000"');
    expect(vaultValues(p).server.image).toEqual({ repository: 'mirror.example:5000/hashicorp/vault', tag: '2.0.4' });
    expect(vaultValues(p).injector).toMatchObject({ image: { repository: 'mirror.example:5000/hashicorp/vault-k8s' }, agentImage: { repository: 'mirror.example:5000/hashicorp/vault' } });
    const eso = esoValues(p);
    for (const key of ['image', 'webhook', 'certController']) {
      const image = key === 'image' ? eso.image : eso[key].image;
      expect(image).toEqual({ repository: 'mirror.example:5000/external-secrets/external-secrets' }); // the tag stays the chart's
    }
    expect(new Set(sampleImages(p))).toEqual(new Set(['mirror.example:5000/library/busybox:1.37', 'mirror.example:5000/library/postgres:15-alpine']));
    expect(kindConfig(p).nodes[0].image).toMatch(/^mirror\.example:5000\/kindest\/node:v1\.36\.4@sha256:/);
  });

  it('OpenBao: its chart takes registry and repository apart, defaults included', () => {
    const p = plan('[images]\nmirror = "mirror.example:5000"', { distribution: 'openbao' });
    expect(p.images.vault).toBe('mirror.example:5000/openbao/openbao:2.7.2');
    expect(vaultValues(p).server.image).toEqual({ registry: 'mirror.example:5000', repository: 'openbao/openbao', tag: '2.7.2' });
    expect(vaultValues(p).injector).toMatchObject({ image: { registry: 'mirror.example:5000', repository: 'hashicorp/vault-k8s' }, agentImage: { registry: 'mirror.example:5000', repository: 'openbao/openbao' } });
    const direct = plan('', { distribution: 'openbao' });
    expect(vaultValues(direct).server.image).toEqual({ registry: 'quay.io', repository: 'openbao/openbao', tag: '2.7.2' });
  });

  it('an override is used as given, beside the mirror', () => {
    const p = plan('[images]\nmirror = "mirror.example:5000"\nvault = "local/vault:1.21.0"\neso = "ghcr.io/external-secrets/external-secrets:v0.17.0"\nsamples = "local/busybox:1.35"');
    expect(vaultValues(p).server.image).toEqual({ repository: 'local/vault', tag: '1.21.0' });
    expect(esoValues(p).image).toEqual({ repository: 'ghcr.io/external-secrets/external-secrets', tag: 'v0.17.0' });
    expect(new Set(sampleImages(p))).toEqual(new Set(['local/busybox:1.35', 'mirror.example:5000/library/postgres:15-alpine']));
    // vault.image_tag is for the default image; an [images] vault override names the whole reference.
    expect(plan('[images]\nvault = "r.example/v/vault:9"').vault.image).toEqual({ repository: 'r.example/v/vault', tag: '9' });
  });

  it('bad references and unknown keys are config errors naming the field', () => {
    expect(errors('[images]\nvault = "Not An Image"').join('\n')).toMatch(/images\.vault: .*must be an image reference/);
    expect(errors('[images]\nmirorr = "x"').join('\n')).toMatch(/unknown key "mirorr" in \[images\]; did you mean "mirror"\?/);
  });
});

describe('[charts]: repository mirror, local path, OCI', () => {
  it('default: the official repository', () => {
    const p = plan('');
    expect(p.vault.chart).toMatchObject({ repoUrl: 'https://helm.releases.hashicorp.com', source: { type: 'repo' } });
    expect(p.eso.chart).toMatchObject({ repoUrl: 'https://charts.external-secrets.io', source: { type: 'repo' } });
  });

  it('a repository mirror, a path relative to config.toml, an OCI reference', () => {
    const p = plan('[charts.vault]\nrepository = "https://charts.mirror.example/hashicorp"\n[charts.eso]\npath = "charts/external-secrets"');
    expect(p.vault.chart).toMatchObject({ repoUrl: 'https://charts.mirror.example/hashicorp', source: { type: 'repo' } });
    expect(p.eso.chart.source).toEqual({ type: 'path', path: '/srv/env/charts/external-secrets' });
    const oci = plan('[charts.vault]\noci = "oci://registry.example/charts/vault"');
    expect(oci.vault.chart.source).toEqual({ type: 'oci', ref: 'oci://registry.example/charts/vault' });
  });

  it('two sources at once, or a malformed OCI reference, are refused', () => {
    expect(errors('[charts.vault]\npath = "/x"\noci = "oci://r/x"').join('\n')).toMatch(/charts\.vault.*set one of repository, path or oci/);
    expect(errors('[charts.eso]\noci = "https://r/x"').join('\n')).toMatch(/charts\.eso\.oci: .*must be an OCI reference/);
  });
});

describe('OpenBao chart fixes', () => {
  it('objects named after the release, Raft storage in the demo (no file backend in OpenBao 2.x), Parallel pods', () => {
    const demo = vaultValues(plan('', { distribution: 'openbao' }));
    expect(demo.fullnameOverride).toBe('vault');
    expect(demo.server.standalone.config).toMatch(/storage "raft"/);
    expect(demo.server.standalone.config).not.toMatch(/storage "file"/);
    const prod = vaultValues(plan('', { distribution: 'openbao', profile: 'production' }));
    expect(prod.server.podManagementPolicy).toBe('Parallel');
    expect(vaultValues(plan('')).fullnameOverride).toBe('vault');
    expect(vaultValues(plan('')).server.standalone.config).toMatch(/storage "file"/);
  });
});

describe('containerdRef: how a node lists an image Docker names', () => {
  it('adds docker.io, library/ and :latest where Docker implies them; keeps registries and digests', async () => {
    const { containerdRef } = await import('../../scripts/adapters/kind.ts');
    expect(containerdRef('busybox')).toBe('docker.io/library/busybox:latest');
    expect(containerdRef('hashicorp/vault:1.21.1')).toBe('docker.io/hashicorp/vault:1.21.1');
    expect(containerdRef('quay.io/openbao/openbao:2.7.2')).toBe('quay.io/openbao/openbao:2.7.2');
    expect(containerdRef('localhost:5000/x/y:1')).toBe('localhost:5000/x/y:1');
    expect(containerdRef('registry.example:5000/eso')).toBe('registry.example:5000/eso:latest');
    expect(containerdRef('ghcr.io/a/b@sha256:abc')).toBe('ghcr.io/a/b@sha256:abc');
  });
});

describe('--preload streams: which node containerd, which snapshotter, which pairs', () => {
  it('the snapshotter comes from the node CRI config (crictl info -o json, as a kind v0.30 node prints it); anything unreadable is undefined (overlayfs is used)', async () => {
    const { snapshotterOf } = await import('../../scripts/adapters/kind.ts');
    const info = JSON.stringify({ status: { conditions: [{ type: 'RuntimeReady', status: true }] }, config: { containerd: { snapshotter: 'overlayfs', defaultRuntimeName: 'runc' }, sandboxImage: 'registry.k8s.io/pause:3.10' } });
    expect(snapshotterOf(info)).toBe('overlayfs');
    expect(snapshotterOf(JSON.stringify({ config: { containerd: { snapshotter: 'native' } } }))).toBe('native');
    expect(snapshotterOf('')).toBeUndefined();
    expect(snapshotterOf('{"config":{}}')).toBeUndefined();
    // Goes into a command line: only a plain name is taken.
    expect(snapshotterOf(JSON.stringify({ config: { containerd: { snapshotter: 'x"; rm -rf /' } } }))).toBeUndefined();
  });
  it('the snapshotters crictl named while kind create ran are kept per node, the unreadable left to be asked again', async () => {
    const { snapshottersOf } = await import('../../scripts/adapters/kind.ts');
    const info = (s: string) => JSON.stringify({ config: { containerd: { snapshotter: s } } });
    expect(snapshottersOf(['cp', 'w1', 'w2'], [info('overlayfs'), 'not json', info('native')])).toEqual(new Map([['cp', 'overlayfs'], ['w2', 'native']]));
  });
  it('every image for every node, each image on all nodes before the next', async () => {
    const { importPairs } = await import('../../scripts/adapters/kind.ts');
    expect(importPairs(['cp', 'w1'], ['a:1', 'b:2'])).toEqual([
      { node: 'cp', image: 'a:1' },
      { node: 'w1', image: 'a:1' },
      { node: 'cp', image: 'b:2' },
      { node: 'w1', image: 'b:2' },
    ]);
    expect(importPairs([], ['a:1'])).toEqual([]);
  });
});

describe('--preload on a reused cluster: what the nodes hold, from the record of the last run', async () => {
  const { presenceFromRecord, recordOf } = await import('../../scripts/adapters/kind.ts');
  const host = new Map([
    ['hashicorp/vault:1.21.1', 'sha256:aaa'],
    ['vaultlab-e2e/busybox:1.35.0-4', 'sha256:bbb'],
  ]);
  const containers = new Map([
    ['demo-control-plane', 'c1'],
    ['demo-worker', 'c2'],
  ]);
  const wanted = [...host.keys(), 'not/on-the-host:1'];

  it('a crictl answer is recorded with the node containers and the host IDs every node held; a loaded image counts as held', () => {
    const crictl = { hostIds: host, nodes: [...containers.keys()], held: [new Map([['docker.io/hashicorp/vault:1.21.1', 'sha256:aaa']]), new Map([['docker.io/hashicorp/vault:1.21.1', 'sha256:aaa'], ['docker.io/vaultlab-e2e/busybox:1.35.0-4', 'sha256:old']])] };
    expect(recordOf(crictl, containers, [])).toEqual({ nodes: { 'demo-control-plane': 'c1', 'demo-worker': 'c2' }, images: { 'hashicorp/vault:1.21.1': 'sha256:aaa' } });
    expect(recordOf(crictl, containers, ['vaultlab-e2e/busybox:1.35.0-4']).images).toEqual({ 'hashicorp/vault:1.21.1': 'sha256:aaa', 'vaultlab-e2e/busybox:1.35.0-4': 'sha256:bbb' });
  });

  it('the record vouches only for the same node containers and the same host image IDs', () => {
    const record = { nodes: { 'demo-control-plane': 'c1', 'demo-worker': 'c2' }, images: { 'hashicorp/vault:1.21.1': 'sha256:aaa', 'vaultlab-e2e/busybox:1.35.0-4': 'sha256:bbb' } };
    const p = presenceFromRecord(record, host, containers, wanted)!;
    expect(p.nodes).toEqual(['demo-control-plane', 'demo-worker']);
    for (const held of p.held) expect([...held]).toEqual([['docker.io/hashicorp/vault:1.21.1', 'sha256:aaa'], ['docker.io/vaultlab-e2e/busybox:1.35.0-4', 'sha256:bbb']]);
    // A recreated node (new container), another node count, an image rebuilt on the host, no record: asked again.
    expect(presenceFromRecord(record, host, new Map([['demo-control-plane', 'c9'], ['demo-worker', 'c2']]), wanted)).toBeUndefined();
    expect(presenceFromRecord(record, host, new Map([['demo-control-plane', 'c1']]), wanted)).toBeUndefined();
    expect(presenceFromRecord(record, new Map([...host, ['vaultlab-e2e/busybox:1.35.0-4', 'sha256:new']]), containers, wanted)).toBeUndefined();
    expect(presenceFromRecord({ ...record, images: { 'hashicorp/vault:1.21.1': 'sha256:aaa' } }, host, containers, wanted)).toBeUndefined();
    expect(presenceFromRecord(undefined, host, containers, wanted)).toBeUndefined();
    expect(presenceFromRecord(record, host, new Map(), wanted)).toBeUndefined();
  });
});
