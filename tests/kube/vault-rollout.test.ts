// The Vault step's rollout of pods left on an old StatefulSet revision (the chart's OnDelete
// strategy), on a real API server. No StatefulSet controller or kubelet runs here, so the test
// plays them, as the controllers would: a deleted Vault pod is re-created on the StatefulSet's
// update revision and reported Running through the status subresource.
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDir } from '../../scripts/lib/state.ts';
import { statusCheck } from '../harness/synced.ts';
import { loadConfig, loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { vaultValues } from '../../scripts/plan/render.ts';
import { stalePods, findStalePods, replaceStalePods } from '../../scripts/steps/vault-rollout.ts';
import { withCertificateDigest, TLS_DIGEST_ANNOTATION } from '../../scripts/steps/install.ts';

const pod = (name: string, revision: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels: { 'controller-revision-hash': revision, ...labels } } });

describe('which Vault pods are stale, and in which order', () => {
  it('pods on an older revision than the StatefulSet\'s, standbys first, the active node last', () => {
    const sts = { status: { updateRevision: 'vault-b' } };
    const pods = [pod('vault-0', 'vault-a', { 'vault-active': 'true' }), pod('vault-1', 'vault-b'), pod('vault-2', 'vault-a', { 'vault-active': 'false' })];
    expect(stalePods(sts, pods)).toEqual(['vault-2', 'vault-0']);
    expect(stalePods(sts, [pod('openbao-0', 'x', { 'openbao-active': 'true' }), pod('openbao-1', 'x')])).toEqual(['openbao-1', 'openbao-0']);
  });

  it('nothing when every pod is on the revision, or the StatefulSet reports none yet', () => {
    expect(stalePods({ status: { updateRevision: 'r' } }, [pod('vault-0', 'r')])).toEqual([]);
    expect(stalePods({ status: {} }, [pod('vault-0', 'old')])).toEqual([]);
    expect(stalePods(undefined, [pod('vault-0', 'old')])).toEqual([]);
  });

  it('a new certificate or configuration changes the pod template (so it is a new revision); the same one does not', () => {
    const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, profile: 'production', env: {} }));
    const values = vaultValues(plan);
    expect(values.server.includeConfigAnnotation).toBe(true);
    const a = withCertificateDigest(values, Buffer.from('certificate one'));
    const b = withCertificateDigest(values, Buffer.from('certificate two'));
    expect(a.server.annotations[TLS_DIGEST_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    expect(a.server.annotations[TLS_DIGEST_ANNOTATION]).not.toBe(b.server.annotations[TLS_DIGEST_ANNOTATION]);
    expect(withCertificateDigest(values, Buffer.from('certificate one'))).toEqual(a);
    const openbao = buildPlan(loadConfigText(readFileSync(BUNDLED_CONFIG, 'utf8').replace(/^distribution = "vault"/m, 'distribution = "openbao"'), 'config.toml', { profile: 'production', env: {} }));
    expect(openbao.vault.distribution).toBe('openbao');
    expect(vaultValues(openbao).server.configAnnotation).toBe(true);
  });
});

describe('rolling out stale Vault pods on a real API server', () => {
  let server: KubeServer;
  let kube: Kube;
  let stopController: () => void = () => undefined;
  const loaded = loadConfig({ file: BUNDLED_CONFIG, profile: 'production', env: {} });
  const plan = buildPlan(loaded);
  const ns = plan.vault.namespace;
  const release = plan.vault.release;
  const labels = { 'app.kubernetes.io/instance': release, 'app.kubernetes.io/name': 'vault', component: 'server' };
  const core = () => kube.core();

  async function createPod(name: string, revision: string, extra: Record<string, string> = {}) {
    await kube.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { ...labels, 'controller-revision-hash': revision, ...extra } }, spec: { containers: [{ name: 'vault', image: `${plan.vault.image.repository}:${plan.vault.image.tag}` }] } }]);
    const p = await (await core()).readNamespacedPod({ name, namespace: ns });
    p.status = { phase: 'Running' };
    await (await core()).replaceNamespacedPodStatus({ name, namespace: ns, body: p });
  }
  const uid = async (name: string) => (await kube.get('v1', 'Pod', ns, name))?.metadata as { uid?: string; labels?: Record<string, string> } | undefined;

  setupOrFail(async () => {
    server = await startKube();
    kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }]);
    await kube.apply([
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: release, namespace: ns, labels },
        spec: { serviceName: `${release}-internal`, replicas: 3, selector: { matchLabels: labels }, updateStrategy: { type: 'OnDelete' }, template: { metadata: { labels }, spec: { containers: [{ name: 'vault', image: 'hashicorp/vault' }] } } },
      },
    ]);
    const { k8s, kc } = await kube.client();
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const sts = await apps.readNamespacedStatefulSet({ name: release, namespace: ns });
    sts.status = { replicas: 3, currentRevision: `${release}-old`, updateRevision: `${release}-new` };
    await apps.replaceNamespacedStatefulSetStatus({ name: release, namespace: ns, body: sts });
    await createPod(`${release}-0`, `${release}-old`, { 'vault-active': 'true' });
    await createPod(`${release}-1`, `${release}-new`, { 'vault-active': 'false' });
    await createPod(`${release}-2`, `${release}-old`, { 'vault-active': 'false' });
    // The StatefulSet controller and the kubelet, played: a deleted pod comes back on the update revision, Running.
    const watch = new k8s.Watch(kc);
    const controller = await watch.watch(`/api/v1/namespaces/${ns}/pods`, {}, (phase, obj: any) => {
      if (phase === 'DELETED') void createPod(obj.metadata.name, `${release}-new`);
    }, () => undefined);
    stopController = () => controller.abort();
  });
  afterAll(async () => {
    stopController();
    await server?.stop();
  });

  /** status's revision check, with no Vault to reach (the kube checks run regardless). */
  const revisionCheck = () => statusCheck({ loaded, plan, state: new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state')), kube }, 'http://127.0.0.1:9', 'vault revision');

  it('status warns about pods on an old revision (a warning: they work), with the fix', async () => {
    expect(await revisionCheck()).toEqual({
      name: 'vault revision',
      ok: false,
      severity: 'warning',
      detail: `${release}-2, ${release}-0 still run the previous configuration, image or certificate (StatefulSet revision ${release}-new)`,
      fix: 'vaultlab deploy replaces them one at a time (with --keys-file FILE when the key shares are kept offline)',
    });
  });

  it('replaces each pod on the old revision, standbys first and the active node last, unsealing each before the next; the up-to-date pod is left alone', async () => {
    const before = { 0: await uid(`${release}-0`), 1: await uid(`${release}-1`), 2: await uid(`${release}-2`) };
    expect(await findStalePods(kube, plan)).toEqual([`${release}-2`, `${release}-0`]);
    const order: string[] = [];
    const lines: string[] = [];
    const replaced = await replaceStalePods(kube, plan, {
      timeoutMs: 30_000,
      report: (l) => lines.push(l),
      afterReplace: async (name) => {
        // The replaced pod is back on the new revision before it is unsealed, and the next one is still the old pod.
        expect((await uid(name))?.labels?.['controller-revision-hash']).toBe(`${release}-new`);
        if (order.length === 0) expect((await uid(`${release}-0`))?.uid).toBe(before[0]!.uid);
        order.push(name);
      },
    });
    expect(replaced).toEqual([`${release}-2`, `${release}-0`]);
    expect(order).toEqual(replaced);
    expect(lines[0]).toBe(`replacing Vault pod ${ns}/${release}-2: it runs revision ${release}-old, the StatefulSet is at ${release}-new (configuration, image or certificate changed)`);
    expect((await uid(`${release}-0`))?.uid).not.toBe(before[0]!.uid);
    expect((await uid(`${release}-2`))?.uid).not.toBe(before[2]!.uid);
    expect((await uid(`${release}-1`))?.uid).toBe(before[1]!.uid);
    expect(await revisionCheck()).toBeUndefined();
  });

  it('a second run finds every pod on the revision and touches nothing', async () => {
    const uids = await Promise.all([0, 1, 2].map(async (i) => (await uid(`${release}-${i}`))?.uid));
    let called = 0;
    expect(await replaceStalePods(kube, plan, { timeoutMs: 10_000, afterReplace: async () => void called++ })).toEqual([]);
    expect(called).toBe(0);
    expect(await Promise.all([0, 1, 2].map(async (i) => (await uid(`${release}-${i}`))?.uid))).toEqual(uids);
  });
});
