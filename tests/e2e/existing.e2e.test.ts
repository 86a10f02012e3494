// provider = "existing": vaultlab deploys into a cluster it did not create (here a kind cluster
// made with plain `kind create cluster`, no port mappings, standing in for a team's cluster),
// through its kubeconfig and context: Vault reached over vaultlab's own port-forward (no
// NodePort answers), every ExternalSecret synced, a re-deploy that changes nothing, status and
// reset --secrets; destroy removes what vaultlab installed and leaves the cluster.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployArgs, json, offline, podFingerprints, removeLeftoverCluster, skipReason, suiteEnv, type SuiteEnv } from './kind-env.ts';

const NAME = 'e2e-existing';
const suite = 'kind suite: provider = "existing"';
const reason = skipReason(suite, 15);
const kind = (args: string[], timeout = 600_000) => spawnSync('kind', args, { encoding: 'utf8', timeout });
let kubeconfig = '';
const env: SuiteEnv | undefined = reason
  ? undefined
  : suiteEnv({
      name: NAME,
      profile: 'demo',
      distribution: 'openbao',
      edit: (toml) => {
        kubeconfig = join(process.env.TMPDIR ?? '/tmp', `vaultlab-${NAME}-${process.pid}.kubeconfig`);
        toml.cluster.provider = 'existing';
        toml.cluster.kubeconfig = kubeconfig;
        toml.cluster.context = `kind-${NAME}`;
      },
    });

describe.skipIf(!!reason)(suite, () => {
  const e = env!;
  const { plan } = e;

  beforeAll(() => {
    removeLeftoverCluster(e);
    // The team's cluster: made without vaultlab, and without its port mappings.
    const cfg = join(e.cwd, 'kind.yaml');
    writeFileSync(cfg, `kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n${offline ? `  image: ${offline.node}\n` : ''}`);
    const c = kind(['create', 'cluster', '--name', NAME, '--config', cfg, '--kubeconfig', kubeconfig, '--wait', '180s']);
    expect(c.status, c.stderr).toBe(0);
    // Nothing can be pulled here: the images a deploy runs are loaded the way such a cluster's
    // admin would bring them, from the list `vaultlab images` derives from the rendered charts.
    if (offline) {
      const list = json(e.vaultlab(['images', '--json']));
      // `vaultlab images` sees every one of them in the local Docker.
      expect(list.missing).toEqual([]);
      const images: string[] = list.images.filter((i: any) => !i.usedBy.includes('kind node')).map((i: any) => i.image);
      expect(images.length).toBeGreaterThan(2);
      for (const image of images) {
        const l = kind(['load', 'docker-image', image, '--name', NAME]);
        expect(l.status, `${image}: ${l.stderr}`).toBe(0);
      }
    }
  }, 900_000);
  afterAll(() => {
    kind(['delete', 'cluster', '--name', NAME, '--kubeconfig', kubeconfig]);
  });

  it('deploys into it through the kubeconfig context: Vault over the port-forward, every ExternalSecret synced, every sample Ready', () => {
    const r = e.vaultlab(['deploy', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j.ok).toBe(true);
    expect(j.steps.find((s: any) => s.name === 'cluster').detail).toBe(`using context "kind-${NAME}"`);
    expect(j.summary.verify.length).toBeGreaterThan(0);
    expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
    // No NodePort is mapped to this machine: vaultlab went through its own port-forward.
    expect(j.summary.vaultAddress).not.toBe(plan.vault.hostAddress);
    expect(j.summary.vaultAddress).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a re-deploy changes nothing; status is green; reset --secrets re-syncs', async () => {
    const before = await podFingerprints(e);
    const d = json(e.vaultlab(['deploy', '--json']));
    expect(d.ok).toBe(true);
    expect(d.summary.vault.seedWrites).toBe(0);
    expect(d.summary.deliveries.changed).toBe(0);
    expect(await podFingerprints(e)).toEqual(before);
    const s = e.vaultlab(['status', '--json']);
    expect(s.code, s.stdout).toBe(0);
    expect(json(s).ok).toBe(true);
    const r = e.vaultlab(['reset', '--secrets', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('destroy removes what vaultlab installed and leaves the cluster', async () => {
    const r = e.vaultlab(['destroy', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).action).toBe('removed-installed');
    expect(kind(['get', 'clusters']).stdout.split('\n')).toContain(NAME);
    const k = await e.kube();
    // The app namespaces vaultlab labelled as its own: deleted.
    for (const ns of plan.namespaces.map((n) => n.name)) {
      const o = await k.get<any>('v1', 'Namespace', undefined, ns);
      expect(!o || !!o.metadata.deletionTimestamp, ns).toBe(true);
    }
    // Vault's and ESO's namespaces may predate vaultlab: kept, but the releases and Vault's data are gone.
    expect(await k.get('apps/v1', 'StatefulSet', plan.vault.namespace, plan.vault.release)).toBeUndefined();
    // PVCs go once the pod using them is gone (pvc-protection): deleted or being deleted.
    for (const pvc of await k.list<any>('v1', 'PersistentVolumeClaim', plan.vault.namespace)) expect(pvc.metadata.deletionTimestamp, pvc.metadata.name).toBeTruthy();
    expect(await k.list('apps/v1', 'Deployment', plan.eso.namespace, `app.kubernetes.io/instance=${plan.eso.release}`)).toEqual([]);
    expect(json(r).notes.join(' ')).toMatch(/kept: not labelled as vaultlab's/);
    expect(await k.get('v1', 'ConfigMap', 'kube-system', 'vaultlab-owner')).toBeUndefined();
    expect(await k.get('v1', 'Namespace', undefined, 'kube-system')).toBeDefined();
  });
});
