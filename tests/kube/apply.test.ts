// vaultlab's Kubernetes layer against a real kube-apiserver + etcd (no kind, no mocks).
import { describe, it, expect, afterAll } from 'vitest';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { installEsoCrds } from '../harness/kube/eso.ts';
import { Kube, guardPods } from '../../scripts/adapters/kube.ts';
import { applyChangedNothing, applyIsNoop } from '../../scripts/adapters/ssa-noop.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { namespaceManifests } from '../../scripts/plan/manifests.ts';
import { installVsoCrds } from '../harness/kube/vso.ts';

describe('Kubernetes adapter on a real API server', () => {
  let server: KubeServer;
  let kube: Kube;
  let crds: string[];
  const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));

  setupOrFail(async () => {
    server = await startKube();
    kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
    crds = await installEsoCrds(kube);
    // The bundled config's VSO app renders VaultConnection, VaultAuth and VaultStaticSecret.
    await installVsoCrds(kube);
  });
  afterAll(async () => server?.stop());

  it('keeps its TLS connections: 30 requests (reads, raw reads, applies) open at most a few, not one each', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    let connected = 0;
    const count = () => connected++;
    subscribe('net.client.socket', count);
    try {
      const fresh = await Kube.connect({ kubeconfig: server.kubeconfigPath });
      for (let i = 0; i < 10; i++) await fresh.get('v1', 'Namespace', undefined, 'default');
      for (let i = 0; i < 10; i++) await fresh.getJson('v1', 'Namespace', undefined, 'kube-system');
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'conn-reuse', namespace: 'default' }, data: { a: '1' } };
      for (let i = 0; i < 10; i++) await fresh.apply([cm]);
      // One Agent with keep-alive: the same socket again and again (client-node 2.0 opened one per request).
      expect(connected).toBeGreaterThan(0);
      expect(connected).toBeLessThanOrEqual(3);
    } finally {
      unsubscribe('net.client.socket', count);
    }
  });

  it('installs ESO CRDs that serve external-secrets.io/v1 and become Established', async () => {
    expect(crds).toEqual(expect.arrayContaining(['externalsecrets.external-secrets.io', 'secretstores.external-secrets.io']));
    const crd = await kube.get<any>('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, 'externalsecrets.external-secrets.io');
    const served = (crd.spec.versions as any[]).filter((v) => v.served).map((v) => v.name);
    expect(served).toContain('v1');
    for (const name of crds) {
      const c = await kube.get<any>('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, name);
      expect(c.status.conditions.find((x: any) => x.type === 'Established')?.status, name).toBe('True');
    }
    // Already Established: the wait returns at once.
    await kube.waitForCrdsEstablished(crds, 2000);
  });

  it('server-side applies a Namespace, ServiceAccount, vault SecretStore and ExternalSecret (external-secrets.io/v1)', async () => {
    const objects = [
      // With labels, as vaultlab applies them. (An apply that sets no field at all records no
      // manager; the next apply then adds a "before-first-apply" entry and moves the
      // resourceVersion once: the API server's behaviour, reported as "configured".)
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ssa', labels: { 'app.kubernetes.io/managed-by': 'vaultlab' } } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'external-secrets', namespace: 'ssa', labels: { 'app.kubernetes.io/managed-by': 'vaultlab' } } },
      {
        apiVersion: 'external-secrets.io/v1',
        kind: 'SecretStore',
        metadata: { name: 'vault', namespace: 'ssa' },
        spec: {
          provider: {
            vault: {
              server: 'http://vault.vault.svc:8200',
              path: 'secret',
              version: 'v2',
              auth: { kubernetes: { mountPath: 'kubernetes', role: 'eso-ssa-role', serviceAccountRef: { name: 'external-secrets', audiences: ['vault'] } } },
            },
          },
        },
      },
      {
        apiVersion: 'external-secrets.io/v1',
        kind: 'ExternalSecret',
        metadata: { name: 'db', namespace: 'ssa' },
        spec: {
          refreshInterval: '1h',
          secretStoreRef: { kind: 'SecretStore', name: 'vault' },
          target: { name: 'db', creationPolicy: 'Owner' },
          data: [{ secretKey: 'password', remoteRef: { key: 'ssa/db', property: 'password' } }],
        },
      },
    ] as any[];
    expect((await kube.apply(objects, { fieldManager: 'vaultlab' })).map((r) => `${r.kind}:${r.action}`)).toEqual([
      'Namespace:created',
      'ServiceAccount:created',
      'SecretStore:created',
      'ExternalSecret:created',
    ]);
    const rvs = await Promise.all(objects.map((o) => kube.get<any>(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name)));
    expect((await kube.apply(objects)).map((r) => r.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    const after = await Promise.all(objects.map((o) => kube.get<any>(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name)));
    expect(after.map((o) => o.metadata.resourceVersion)).toEqual(rvs.map((o) => o.metadata.resourceVersion));
    const store = after[2];
    expect(store.spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences).toEqual(['vault']);
    expect(store.metadata.managedFields.find((m: any) => m.manager === 'vaultlab')?.operation).toBe('Apply');
    // delete: true when it existed, false when it did not.
    expect(await kube.delete('external-secrets.io/v1', 'ExternalSecret', 'ssa', 'db')).toBe(true);
    expect(await kube.delete('external-secrets.io/v1', 'ExternalSecret', 'ssa', 'db')).toBe(false);
    expect(await kube.get('external-secrets.io/v1', 'ExternalSecret', 'ssa', 'db')).toBeUndefined();
  });

  it('server-side applies every manifest of the plan; a re-apply changes nothing', async () => {
    const objects = plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns));
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Namespace', 'ServiceAccount', 'SecretStore', 'ExternalSecret', 'Deployment', 'Service', 'Secret']));
    const first = await kube.apply(objects);
    expect(first.every((r) => r.action === 'created')).toBe(true);
    const rv = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db');
    const second = await kube.apply(objects);
    expect(second.filter((r) => r.action !== 'unchanged')).toEqual([]);
    const again = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db');
    expect(again.metadata.resourceVersion).toBe(rv.metadata.resourceVersion);
    expect(again.metadata.managedFields.map((m: any) => m.manager)).toContain('vaultlab');
    expect(again.spec.secretStoreRef).toEqual({ kind: 'SecretStore', name: 'vault-backend' });
  });

  it('a bare object (a Namespace that only has to exist, made by another manager) is unchanged without a PATCH', async () => {
    const bare = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'made-by-helm' } };
    await kube.apply([{ ...bare, metadata: { ...bare.metadata, labels: { owner: 'helm' } } }], { fieldManager: 'helm' });
    expect(await kube.apply([bare])).toEqual([{ kind: 'Namespace', namespace: undefined, name: 'made-by-helm', action: 'unchanged' }]);
    // What the server holds after that apply: no entry of vaultlab's (it owns no field), so the
    // next run proves the no-op from the object alone and sends nothing.
    const live = await kube.getJson('v1', 'Namespace', undefined, 'made-by-helm');
    expect(live.metadata.managedFields.map((e: any) => e.manager)).not.toContain('vaultlab');
    expect(applyIsNoop(bare, live, 'vaultlab')).toBe(true);
    // Anything vaultlab renders on it is still applied.
    expect(applyIsNoop({ ...bare, metadata: { ...bare.metadata, labels: { a: 'b' } } }, live, 'vaultlab')).toBe(false);
    expect(applyIsNoop({ ...bare, kind: 'ConfigMap' }, live, 'vaultlab')).toBe(false);
  });

  it('a re-apply that changes nothing sends no PATCH (a read-only token applies every manifest); a change, a dropped field or a value another manager set still goes to the API', async () => {
    const objects = plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns));
    // A ServiceAccount that may read everything and write nothing: any PATCH it sends is refused.
    await kube.apply([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reader', namespace: 'default' } },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'test-reader' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] }] },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'test-reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'default' }] },
    ] as any[]);
    const token = await kube.createServiceAccountToken('default', 'reader', [], 600);
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-reader-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'reader',
      clusters: [{ name: 'test', cluster: { server: server.host, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }],
      users: [{ name: 'reader', user: { token } }],
      contexts: [{ name: 'reader', context: { cluster: 'test', user: 'reader' } }],
    }), { mode: 0o600 });
    const reader = await Kube.connect({ kubeconfig });
    try {
      // This ESO CRD defaults fields inside each element of an ExternalSecret's `data`, an atomic
      // list: what vaultlab set cannot be told from a default, so those are applied (the API's own
      // verdict: unchanged). Everything else is proven from what the server holds.
      const provable = objects.filter((o) => o.kind !== 'ExternalSecret');
      for (const o of objects.filter((x) => x.kind === 'ExternalSecret')) {
        expect(applyIsNoop(o, await kube.getJson(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name), 'vaultlab'), o.metadata.name).toBe(false);
      }
      expect((await kube.apply(objects)).filter((r) => r.action !== 'unchanged')).toEqual([]);
      expect((await reader.apply(provable)).filter((r) => r.action !== 'unchanged')).toEqual([]);

      const clone = <T,>(o: T): T => JSON.parse(JSON.stringify(o));
      const deployment = clone(objects.find((o) => o.kind === 'Deployment')!) as any;
      deployment.spec.replicas = 2; // a changed value
      await expect(reader.apply([deployment])).rejects.toThrow(/forbidden|403/i);
      const service = clone(objects.find((o) => o.kind === 'Service')!) as any;
      delete service.metadata.labels['app.kubernetes.io/part-of']; // a field vaultlab owned and no longer sets: the apply removes it
      await expect(reader.apply([service])).rejects.toThrow(/forbidden|403/i);
      const selector = clone(objects.find((o) => o.kind === 'Deployment')!) as any;
      selector.spec.selector.matchLabels = { ...selector.spec.selector.matchLabels, extra: 'x' }; // an atomic map: replaced whole
      await expect(reader.apply([selector])).rejects.toThrow(/forbidden|403/i);

      // Another manager sets a field vaultlab applies: vaultlab's apply takes it back.
      const original = objects.find((o) => o.kind === 'Deployment')! as any;
      await kube.apply([{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: original.metadata.name, namespace: original.metadata.namespace, labels: { 'app.kubernetes.io/part-of': 'someone-else' } } }] as any[], { fieldManager: 'someone-else' });
      await expect(reader.apply([original])).rejects.toThrow(/forbidden|403/i);
      expect((await kube.apply([original]))[0]!.action).toBe('configured');
      expect((await kube.getJson('apps/v1', 'Deployment', original.metadata.namespace, original.metadata.name)).metadata.labels['app.kubernetes.io/part-of']).toBe(original.metadata.labels['app.kubernetes.io/part-of']);
      expect((await reader.apply(provable)).filter((r) => r.action !== 'unchanged')).toEqual([]);

      // What cannot be read with certainty is applied, never assumed: two Apply entries for the manager, a null.
      const live = await kube.getJson('v1', 'Service', service.metadata.namespace, service.metadata.name);
      const svc = objects.find((o) => o.kind === 'Service')!;
      expect(applyIsNoop(svc, live, 'vaultlab')).toBe(true);
      const mine = live.metadata.managedFields.find((m: any) => m.manager === 'vaultlab');
      expect(applyIsNoop(svc, { ...live, metadata: { ...live.metadata, managedFields: [...live.metadata.managedFields, { ...mine, apiVersion: 'v2' }] } }, 'vaultlab')).toBe(false);
      expect(applyIsNoop({ ...clone(svc), spec: { ...(svc as any).spec, externalName: null } } as any, live, 'vaultlab')).toBe(false);
      expect(applyIsNoop(svc, live, 'another-manager')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a status a controller writes between the read and the apply is not counted as the apply\'s change; a changed value is', async () => {
    const objects = plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns));
    const es = objects.filter((o) => o.kind === 'ExternalSecret').at(-1)! as any;
    await kube.apply([es]);
    const at = () => kube.getJson(es.apiVersion, es.kind, es.metadata.namespace, es.metadata.name);
    const before = await at();
    // What ESO does after each sync: a status write, through the status subresource.
    const { request } = await import('node:https');
    const url = new URL(`${server.host}/apis/external-secrets.io/v1/namespaces/${es.metadata.namespace}/externalsecrets/${es.metadata.name}/status`);
    const code = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'PATCH', ca: server.caPem, headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/merge-patch+json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ status: { refreshTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), syncedResourceVersion: '1-abc' } }));
    });
    expect(code).toBe(200);
    await kube.apply([es]);
    const after = await at();
    expect(after.metadata.resourceVersion).not.toBe(before.metadata.resourceVersion);
    expect(applyChangedNothing(es, before, after, 'vaultlab')).toBe(true);
    // vaultlab's own change: configured, whatever else moved.
    const changed = { ...JSON.parse(JSON.stringify(es)), spec: { ...es.spec, refreshInterval: '7m' } };
    await kube.apply([changed]);
    const afterChange = await at();
    expect(applyChangedNothing(changed, after, afterChange, 'vaultlab')).toBe(false);
    // Another manager's label in between is a change too (not only the status is set aside).
    await kube.apply([{ apiVersion: es.apiVersion, kind: es.kind, metadata: { name: es.metadata.name, namespace: es.metadata.namespace, labels: { 'example.com/x': 'y' } } }] as any[], { fieldManager: 'someone-else' });
    expect(applyChangedNothing(changed, afterChange, await at(), 'vaultlab')).toBe(false);
    await kube.apply([es]);
  });

  it('a changed manifest is reported as configured; a field another manager owns survives', async () => {
    const [ns] = plan.namespaces.filter((n) => n.name === 'argocd');
    // ESO (another field manager) merges keys into argocd-secret.
    await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'argocd-secret', namespace: 'argocd' }, data: { 'admin.password': Buffer.from('hash').toString('base64') } }], { fieldManager: 'external-secrets' });
    const objects = namespaceManifests(plan, ns!);
    const es = objects.find((o) => o.kind === 'ExternalSecret')! as any;
    es.spec.refreshInterval = '5m';
    const r = await kube.apply(objects);
    expect(r.find((x) => x.kind === 'ExternalSecret')!.action).toBe('configured');
    expect(r.find((x) => x.kind === 'Secret')!.action).toBe('unchanged');
    const secret = await kube.readSecret('argocd', 'argocd-secret');
    expect(secret!.data['admin.password']!.toString()).toBe('hash');
  });

  it('waits on conditions with a watch and resolves when the condition appears', async () => {
    const waiting = kube.waitForCondition('external-secrets.io/v1', 'SecretStore', 'webapp', 'vault-backend', 'Ready', { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    // Play the controller: set the status subresource, as ESO does.
    const { request } = await import('node:https');
    await new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Valid', message: 'store validated', lastTransitionTime: new Date().toISOString() }] } });
      const req = request(`${server.host}/apis/external-secrets.io/v1/namespaces/webapp/secretstores/vault-backend/status`, { method: 'PATCH', ca: server.caPem, headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/merge-patch+json' } }, (res) => {
        res.resume();
        if (res.statusCode === 200) resolve();
        else reject(new Error(`status patch ${res.statusCode}`));
      });
      req.on('error', reject);
      req.end(body);
    });
    const obj = await waiting;
    expect(obj.status.conditions[0].reason).toBe('Valid');
  });

  it('a condition that never comes times out with a message naming the object and its last state', async () => {
    const err = await kube.waitForCondition('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db', 'Ready', { reason: 'SecretSynced', timeoutMs: 1500 }).catch((e) => e);
    expect(err.message).toMatch(/timed out after 2 s waiting for ExternalSecret webapp\/webapp-db to be Ready=True \(SecretSynced\); last seen: no conditions/);
  });

  it('a wait ends at once when its signal aborts (Ctrl-C), and by default follows the running step\'s signal', async () => {
    const controller = new AbortController();
    const t0 = Date.now();
    const waiting = kube.waitForCondition('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db', 'Ready', { reason: 'SecretSynced', timeoutMs: 60_000, signal: controller.signal }).catch((e) => e);
    setTimeout(() => controller.abort(), 300);
    const err = await waiting;
    expect(err.message).toBe('the wait for ExternalSecret webapp/webapp-db to be Ready=True (SecretSynced) was cancelled');
    expect(Date.now() - t0).toBeLessThan(5000);
    // Inside a deploy step: the runner's signal, without passing it.
    const { runSteps } = await import('../../scripts/lib/tasks.ts');
    const { Output } = await import('../../scripts/lib/output.ts');
    const run = new AbortController();
    let inner: Promise<unknown> | undefined;
    const step = { name: 'wait', title: 'Wait', run: () => (inner = kube.waitForCondition('external-secrets.io/v1', 'ExternalSecret', 'webapp', 'webapp-db', 'Ready', { timeoutMs: 60_000 })) };
    setTimeout(() => run.abort(), 300);
    const t1 = Date.now();
    const stepped = await runSteps([step as any], {}, new Output({ json: true, verbose: false, plain: true }), { handleSigint: false, signal: run.signal }).catch((e) => e);
    expect(stepped.name).toBe('InterruptedError');
    // The wait itself ended too (its watch closed), not left running until its timeout.
    expect(((await inner!.catch((e) => e)) as Error).message).toMatch(/was cancelled$/);
    expect(Date.now() - t1).toBeLessThan(5000);
  });

  it('TokenRequest issues an audience-bound JWT that TokenReview accepts', async () => {
    const token = await kube.createServiceAccountToken('webapp', 'external-secrets', ['vault'], 600);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(payload.aud).toEqual(['vault']);
    expect(payload.sub).toBe('system:serviceaccount:webapp:external-secrets');
    const { k8s, kc } = await kube.client();
    const review = await kc.makeApiClient(k8s.AuthenticationV1Api).createTokenReview({ body: { spec: { token, audiences: ['vault'] } } as any });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe('system:serviceaccount:webapp:external-secrets');
    const wrongAudience = await kc.makeApiClient(k8s.AuthenticationV1Api).createTokenReview({ body: { spec: { token, audiences: ['other'] } } as any });
    expect(wrongAudience.status?.authenticated).toBeFalsy();
  });

  it('a kind the API server does not serve fails naming the object, with a CRD hint', async () => {
    const err = await kube.apply([{ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'webapp' } } as any]).catch((e) => e);
    expect(err.message).toMatch(/^applying Widget webapp\/w: /);
    expect(err.hint).toMatch(/does not serve example\.com\/v1: is its CRD installed/);
  });

  it('a rejected Secret is reported by name and API message, never with its data', async () => {
    const value = 'TOP-SECRET-VALUE-1234';
    for (const data of [{ 'bad key!': Buffer.from(value).toString('base64') }, { ok: `${value}!!` }]) {
      const err = await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'leaky', namespace: 'webapp' }, data } as any]).catch((e) => e);
      expect(err.message).toMatch(/^applying Secret webapp\/leaky: .+\(HTTP (422|500)\)$/);
      const everything = `${err.message} ${err.hint ?? ''} ${String(err.cause)} ${JSON.stringify(err.cause?.body ?? '')}`;
      expect(everything).not.toContain(value);
      expect(everything).not.toContain(Buffer.from(value).toString('base64'));
    }
  });

  it('a run of one kind is applied at once, in order of the runs; a failure in a run stops the runs after it', async () => {
    const cms = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${prefix}-${i}`, namespace: 'par' }, data: { i: String(i) } }));
    const objects = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'par', labels: { 'app.kubernetes.io/managed-by': 'vaultlab' } } }, ...cms('a', 12)] as any[];
    const first = await kube.apply(objects);
    expect(first.map((r) => `${r.kind}/${r.name}`)).toEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    expect(first.every((r) => r.action === 'created')).toBe(true);
    expect((await kube.apply(objects)).every((r) => r.action === 'unchanged')).toBe(true);
    // The bad Secret fails its run; the ServiceAccount run after it is never applied.
    const err = await kube
      .apply([...cms('b', 3), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bad', namespace: 'par' }, data: { 'bad key!': 'eA==' } }, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'after', namespace: 'par' } }] as any[])
      .catch((e) => e);
    expect(err.message).toMatch(/^applying Secret par\/bad: /);
    expect(await kube.get('v1', 'ConfigMap', 'par', 'b-2')).toBeDefined();
    expect(await kube.get('v1', 'ServiceAccount', 'par', 'after')).toBeUndefined();
  });

  it('readSecret returns the data as bytes', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'binary', namespace: 'webapp' }, data: { blob: bytes.toString('base64') } } as any]);
    const s = await kube.readSecret('webapp', 'binary');
    expect(Buffer.isBuffer(s!.data.blob)).toBe(true);
    expect(s!.data.blob!.equals(bytes)).toBe(true);
    expect(s!.type).toBe('Opaque');
    expect(await kube.readSecret('webapp', 'absent')).toBeUndefined();
  });

  it('server-side apply sends what vaultlab rendered: the production NetworkPolicy keeps its `from` peers (client-node\'s model calls it `_from` and dropped it)', async () => {
    const { vaultNetworkPolicy } = await import('../../scripts/plan/manifests.ts');
    const prod = buildPlan(loadConfig({ file: BUNDLED_CONFIG, profile: 'production', env: {} }));
    const policy = vaultNetworkPolicy(prod);
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: prod.vault.namespace } }]);
    expect((await kube.apply([policy]))[0]!.action).toBe('created');
    const stored = await kube.getJson<any>('networking.k8s.io/v1', 'NetworkPolicy', prod.vault.namespace, policy.metadata.name);
    expect(stored.spec).toEqual((policy as any).spec);
    // ESO's namespace, VSO's (the bundled config has a VSO app), the labelled client namespaces.
    expect(stored.spec.ingress[0].from).toHaveLength(3);
    // Applied again: unchanged.
    expect((await kube.apply([policy]))[0]!.action).toBe('unchanged');
  });

  it('waitReady: the real API server, ready, answers /readyz at once', async () => {
    let waits = 0;
    await kube.waitReady({ timeoutMs: 5000, onWait: () => waits++ });
    expect(waits).toBe(0);
  });

  it('errors name the object and the API message', async () => {
    const err = await kube.createServiceAccountToken('nope', 'external-secrets', ['vault']).catch((e) => e);
    expect(err.message).toMatch(/requesting a token for ServiceAccount nope\/external-secrets: .*not found/);
    expect(kube.clusterInfo()).toEqual({ server: server.host, caPem: server.caPem });
  });

  it("guardPods: a pod missing its Secret waits when a delivery will write it or it exists by now, and fails at once when nothing makes it", async () => {
    const ns = 'guard-pods';
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }]);
    const core = await kube.core();
    // A pod as the kubelet reports it when it was created before its Secret (what ESO or VSO writes).
    async function podMissing(name: string, secret: string) {
      await kube.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'busybox', envFrom: [{ secretRef: { name: secret } }] }] } }]);
      const p = await core.readNamespacedPod({ name, namespace: ns });
      p.status = { phase: 'Pending', containerStatuses: [{ name: 'app', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: `secret "${secret}" not found` } } }] };
      await core.replaceNamespacedPodStatus({ name, namespace: ns, body: p });
    }
    const guarded = (app: string) => guardPods(kube, ns, `app=${app}`, () => new Promise((r) => setTimeout(() => r('work done'), 1500)), 200);

    await podMissing('typo', 'no-such-secret');
    await expect(guarded('typo')).rejects.toThrow(/pod guard-pods\/typo, container app cannot start: CreateContainerConfigError \(secret "no-such-secret" not found\)/);

    // An ExternalSecret targets it: ESO's own wait reports when it fails; the pod guard waits.
    await podMissing('by-eso', 'eso-target');
    await kube.apply([{ apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', metadata: { name: 'eso-es', namespace: ns }, spec: { secretStoreRef: { name: 'vault-backend', kind: 'SecretStore' }, target: { name: 'eso-target' }, data: [{ secretKey: 'k', remoteRef: { key: 'p', property: 'k' } }] } }]);
    await expect(guarded('by-eso')).resolves.toBe('work done');

    // A VaultStaticSecret's destination counts the same.
    await podMissing('by-vso', 'vso-target');
    await kube.apply([{ apiVersion: 'secrets.hashicorp.com/v1beta1', kind: 'VaultStaticSecret', metadata: { name: 'vso-s', namespace: ns }, spec: { type: 'kv-v2', mount: 'secret', path: 'p', destination: { name: 'vso-target', create: true } } }]);
    await expect(guarded('by-vso')).resolves.toBe('work done');

    // The Secret exists by now; the kubelet's status is from before it did (it retries at its next sync).
    await podMissing('late', 'late-secret');
    await kube.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'late-secret', namespace: ns }, type: 'Opaque', data: { k: Buffer.from('v').toString('base64') } }]);
    await expect(guarded('late')).resolves.toBe('work done');
  });
});

describe('Kube.waitReady: an API server that just started', () => {
  // kube-apiserver answers before its RBAC bootstrap is loaded (every request forbidden, /readyz
  // 500): what a kind node restarted by Docker shows for a few seconds. This server answers
  // /readyz as such a server does, 500 `notReady` times, then 200.

  async function starting(notReady: number) {
    let asked = 0;
    const srv = createServer((req, res) => {
      if (req.url?.startsWith('/readyz')) {
        asked++;
        res.statusCode = asked > notReady ? 200 : 500;
        res.end(asked > notReady ? 'ok' : '[-]poststarthook/rbac/bootstrap-roles failed: not finished');
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-readyz-'));
    const file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    return { kube: await Kube.connect({ kubeconfig: file }), asked: () => asked, close: () => srv.close() };
  }

  it('on a ready server: one request, no wait announced', async () => {
    const s = await starting(0);
    let waits = 0;
    await s.kube.waitReady({ onWait: () => waits++ });
    expect(s.asked()).toBe(1);
    expect(waits).toBe(0);
    s.close();
  });

  it('waits until /readyz says 200, announcing the wait once', async () => {
    const s = await starting(3);
    let waits = 0;
    await s.kube.waitReady({ intervalMs: 50, onWait: () => waits++ });
    expect(s.asked()).toBe(4);
    expect(waits).toBe(1);
    s.close();
  });

  it('times out naming the server and what it answered; a cancelled wait ends at once', async () => {
    const s = await starting(1_000_000);
    await expect(s.kube.waitReady({ timeoutMs: 300, intervalMs: 50 })).rejects.toThrow(/API server http:\/\/127\.0\.0\.1:\d+ is not ready after 0 s \(GET \/readyz did not answer 200\)/);
    const ac = new AbortController();
    const t0 = Date.now();
    const p = s.kube.waitReady({ timeoutMs: 60_000, intervalMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toThrow(/cancelled/);
    expect(Date.now() - t0).toBeLessThan(5000);
    s.close();
  });
});
