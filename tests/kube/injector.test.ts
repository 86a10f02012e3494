// The injector delivery against the real Vault Agent Injector: vault-k8s (built from the Go module
// proxy at an exact version) runs out of cluster as a real mutating webhook, served over loopback
// TLS (a certificate from scripts/tls) and registered with clientConfig.url; a pod created through
// the real kube-apiserver with the annotations vaultlab renders comes back mutated.
//
// vault-k8s only loads an in-cluster Kubernetes config (fixed paths under
// /var/run/secrets/kubernetes.io/serviceaccount): it runs in a private mount namespace where a
// temporary directory is bound over /run, holding the API server's CA and a token, so nothing on
// the machine changes. Needs Go and the module proxy (the build), and root for the mount namespace.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, freePort, type KubeServer } from '../harness/kube/server.ts';
import { ensureVaultK8s, VAULT_K8S_VERSION } from '../harness/kube/build.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { allManifests } from '../../scripts/plan/manifests.ts';
import { certPem, issueCertificate, keyPem, newKey } from '../../scripts/tls/x509.ts';
import { AGENT, AGENT_INIT, injectorRuntime } from '../../scripts/deliveries/injector/runtime.ts';
import { appsOf } from '../../scripts/deliveries/index.ts';
import type { Environment } from '../../scripts/lifecycle/connect.ts';

const CONFIG = `
[[secrets]]
path = "shop/db"
key = "password"
[[secrets]]
path = "shop/api"
key = "token"
[[apps]]
name = "shop"
delivery = "injector"
sample = "vault-files"
[[apps.secrets]]
name = "db"
data = [{ secret_key = "DB_PASSWORD", path = "shop/db", key = "password" }]
file_template = "postgresql://shop:{{ .DB_PASSWORD }}@db/shop"
[[apps.secrets]]
name = "api"
data = [{ secret_key = "API_TOKEN", path = "shop/api", key = "token" }]
`;
const AGENT_IMAGE = 'hashicorp/vault:2.0.4';

/** Why this suite cannot run here, or undefined. */
function unavailable(): string | undefined {
  if (spawnSync('go', ['version']).status !== 0) return 'Go is not installed (vault-k8s is built from the Go module proxy)';
  if (process.getuid?.() !== 0 || spawnSync('unshare', ['-m', 'true']).status !== 0) return 'no private mount namespace (needs root and unshare) to give vault-k8s its in-cluster config';
  try {
    ensureVaultK8s();
  } catch (err) {
    return `vault-k8s ${VAULT_K8S_VERSION} cannot be built (Go module proxy unreachable?): ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

const reason = unavailable();
if (reason) console.log(`skipped: ${reason}`);

describe.skipIf(reason !== undefined)(`the Vault Agent Injector (vault-k8s ${VAULT_K8S_VERSION}) mutates pods rendered by vaultlab`, () => {
  let server: KubeServer;
  let kube: Kube;
  let injector: ChildProcess | undefined;
  let dir: string;
  let log = '';
  const plan = buildPlan(loadConfigText(CONFIG, 'config.toml', { env: {} }));

  setupOrFail(async () => {
    server = await startKube();
    kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
    dir = mkdtempSync(join(tmpdir(), 'vaultlab-injector-'));

    // The webhook's serving certificate for 127.0.0.1, signed by a CA the API server is given.
    const caKey = newKey();
    const now = Date.now();
    const caDer = issueCertificate({ subject: { commonName: 'vaultlab test injector CA' }, publicKey: createPublicKey(caKey), selfKey: caKey, ca: true, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) });
    const key = newKey();
    const certDer = issueCertificate({ subject: { commonName: 'vault-agent-injector' }, publicKey: createPublicKey(key), issuer: { certDer: caDer, key: caKey }, sans: ['127.0.0.1'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) });
    writeFileSync(join(dir, 'tls.crt'), certPem(certDer));
    writeFileSync(join(dir, 'tls.key'), keyPem(key), { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), certPem(caDer));

    // In-cluster config for vault-k8s: /run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}.
    const fakeRun = join(dir, 'run');
    const sa = join(fakeRun, 'secrets', 'kubernetes.io', 'serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), server.adminToken, { mode: 0o600 });
    writeFileSync(join(sa, 'ca.crt'), server.caPem);
    writeFileSync(join(sa, 'namespace'), 'vault');
    // /var/run is /run on this machine's layout; bind over whichever /var/run resolves to.
    const runDir = existsSync('/var/run') ? realpathSync('/var/run') : '/run';

    const port = await freePort();
    const apiPort = new URL(server.host).port;
    const script = `mount --make-rprivate / && mount --bind "$FAKE_RUN" "$RUN_DIR" && exec "$INJECTOR" agent-inject -listen=127.0.0.1:${port} -tls-cert-file="$CERT" -tls-key-file="$KEY" -vault-image=${AGENT_IMAGE} -vault-address=http://injector-default.invalid:8200 -use-leader-elector=false -log-level=debug`;
    injector = spawn('unshare', ['-m', 'sh', '-c', script], {
      env: { ...process.env, FAKE_RUN: fakeRun, RUN_DIR: runDir, INJECTOR: ensureVaultK8s(), CERT: join(dir, 'tls.crt'), KEY: join(dir, 'tls.key'), KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: apiPort, NAMESPACE: 'vault', POD_NAME: 'vault-agent-injector-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    injector.stdout!.on('data', (d) => (log += d));
    injector.stderr!.on('data', (d) => (log += d));
    // Ready when its health endpoint answers over TLS.
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (injector.exitCode !== null) throw new Error(`vault-k8s exited ${injector.exitCode}:\n${log}`);
      const r = spawnSync('curl', ['-sf', '--cacert', join(dir, 'ca.crt'), `https://127.0.0.1:${port}/health/ready`]);
      if (r.status === 0) break;
      if (Date.now() > deadline) throw new Error(`vault-k8s did not answer on 127.0.0.1:${port}:\n${log}`);
      await new Promise((r) => setTimeout(r, 300));
    }

    // Registered as the chart registers it (rules, sideEffects), with the URL instead of a Service.
    await kube.apply([
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'vault-agent-injector-cfg' },
        webhooks: [
          {
            name: 'vault.hashicorp.com',
            admissionReviewVersions: ['v1', 'v1beta1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 10,
            clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(certPem(caDer)).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
            namespaceSelector: { matchLabels: { 'vaultlab.dev/vault-client': 'true' } },
          },
        ],
      },
    ]);
    // vaultlab's own objects for the app: Namespace (labelled as a Vault client), ServiceAccount.
    await kube.apply(allManifests(plan).filter((o) => o.kind === 'Namespace' || o.kind === 'ServiceAccount'));
  }, 900_000);

  afterAll(async () => {
    injector?.kill('SIGTERM');
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a pod with the rendered template comes back with the agent init and sidecar containers, the role, the secret files and the template', async () => {
    const deployment = allManifests(plan).find((o) => o.kind === 'Deployment') as any;
    const template = deployment.spec.template;
    const created = await (await kube.core()).createNamespacedPod({ namespace: 'shop', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shop-test', namespace: 'shop', labels: template.metadata.labels, annotations: template.metadata.annotations }, spec: template.spec } });
    const pod = created as any;
    const init = pod.spec.initContainers ?? [];
    const containers = pod.spec.containers;
    expect(init.map((c: any) => c.name), log.slice(-2000)).toEqual([AGENT_INIT]);
    expect(containers.map((c: any) => c.name)).toEqual(['app', AGENT]);
    for (const c of [init[0], containers[1]]) {
      expect(c.image).toBe(AGENT_IMAGE);
      // The agent logs in with the projected token of the role's audience that vaultlab added.
      expect(c.volumeMounts).toEqual(expect.arrayContaining([
        expect.objectContaining({ name: 'vault-token', mountPath: '/var/run/secrets/vault.hashicorp.com/serviceaccount' }),
        expect.objectContaining({ name: 'vault-secrets', mountPath: '/vault/secrets' }),
      ]));
    }
    // The app container gets the rendered files' volume at /vault/secrets.
    expect(containers[0].volumeMounts).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'vault-secrets', mountPath: '/vault/secrets' })]));
    expect(pod.metadata.annotations['vault.hashicorp.com/agent-inject-status']).toBe('injected');
    expect(pod.metadata.annotations['vault.hashicorp.com/role']).toBe('injector-shop-role');

    // The agent's configuration (base64 JSON in VAULT_CONFIG): Kubernetes auth with the role and
    // the token file, and one template per file with vaultlab's text, rendered to /vault/secrets/<name>.
    const config = JSON.parse(Buffer.from(init[0].env.find((e: any) => e.name === 'VAULT_CONFIG').value, 'base64').toString('utf8'));
    const auth = config.auto_auth.method;
    expect(auth).toMatchObject({ type: 'kubernetes', mount_path: 'auth/kubernetes', config: { role: 'injector-shop-role', token_path: expect.stringMatching(/^\/var\/run\/secrets\/vault\.hashicorp\.com\/serviceaccount\/token$/) } });
    const templates = Object.fromEntries(config.template.map((t: any) => [t.destination, t.contents]));
    const app = plan.apps[0]!;
    if (app.delivery !== 'injector') throw new Error('expected the injector app');
    expect(templates).toEqual(Object.fromEntries(app.files.map((f) => [f.file, f.template])));
    expect(templates['/vault/secrets/api']).toBe('{{ with secret "secret/data/shop/api" }}API_TOKEN={{ index .Data.data "token" }}{{ end }}\n');
    expect(config.exit_after_auth).toBe(true);
    // The address from vaultlab's vault.hashicorp.com/service annotation, not the injector's default.
    expect(config.vault.address).toBe('http://vault.vault.svc:8200');
  });

  it('production: the agent trusts Vault\'s CA from the namespace\'s vault-ca Secret and talks https', async () => {
    const prod = buildPlan(loadConfigText(CONFIG, 'config.toml', { env: {}, profile: 'production' }));
    const template = (allManifests(prod).find((o) => o.kind === 'Deployment') as any).spec.template;
    const pod = (await (await kube.core()).createNamespacedPod({ namespace: 'shop', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shop-tls', annotations: template.metadata.annotations }, spec: template.spec } })) as any;
    const init = pod.spec.initContainers[0];
    expect(pod.spec.volumes).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'vault-tls-secrets', secret: expect.objectContaining({ secretName: 'vault-ca' }) })]));
    expect(init.volumeMounts).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'vault-tls-secrets', mountPath: '/vault/tls' })]));
    const config = JSON.parse(Buffer.from(init.env.find((e: any) => e.name === 'VAULT_CONFIG').value, 'base64').toString('utf8'));
    expect(config.vault).toMatchObject({ address: 'https://vault.vault.svc:8200', ca_cert: '/vault/tls/ca.crt' });
    expect(config.auto_auth.method.config.role).toBe('injector-shop-role');
  });

  it('status: the webhook registered with its CA, no endpoints (no Service in front of this out-of-cluster webhook), the pod\'s agent injected', async () => {
    const checks = await injectorRuntime.status({ plan, kube } as unknown as Environment, appsOf(plan.apps, 'injector'));
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName['injector webhook']).toMatchObject({ ok: true, detail: 'vault-agent-injector-cfg registered (vault.hashicorp.com, failurePolicy Fail)' });
    expect(byName['injector endpoints']).toMatchObject({ ok: false, detail: expect.stringMatching(/^Service vault\/vault-agent-injector-svc has no ready endpoint/) });
    expect(byName['agent shop/shop-test']).toMatchObject({ ok: true, detail: 'role injector-shop-role; /vault/secrets/db, /vault/secrets/api' });
  });

  it('status after a node restart: an agent running again is healthy whatever its last exit; one waiting after an error is failing', async () => {
    const core = await kube.core();
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const agentOf = () => appsOf(plan.apps, 'injector');
    const status = async (sidecar: Record<string, unknown>) => {
      // What the kubelet writes (no kubelet here): the init agent done, the sidecar as given.
      const pod = await core.readNamespacedPod({ name: 'shop-test', namespace: 'shop' });
      const body = { ...pod, status: { phase: 'Running', initContainerStatuses: [{ name: AGENT_INIT, image: 'x', imageID: '', ready: true, restartCount: 1, state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at, finishedAt: at } } }], containerStatuses: [{ name: AGENT, image: 'x', imageID: '', restartCount: 1, ...sidecar }] } };
      await core.replaceNamespacedPodStatus({ name: 'shop-test', namespace: 'shop', body: body as any });
      const checks = await injectorRuntime.status({ plan, kube } as unknown as Environment, agentOf());
      return checks.find((c) => c.name === 'agent shop/shop-test')!;
    };
    // docker restart of the node: the sidecar was stopped (143) and runs again.
    expect(await status({ ready: true, state: { running: { startedAt: at } }, lastState: { terminated: { exitCode: 143, reason: 'Error', startedAt: at, finishedAt: at } } })).toMatchObject({ ok: true });
    // A crash loop, and a wait after a failed run: failing, with the container named.
    expect(await status({ ready: false, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: at, finishedAt: at } } })).toMatchObject({ ok: false, detail: expect.stringMatching(/^vault-agent fails/) });
    expect(await status({ ready: false, state: { waiting: { reason: 'ContainerCreating' } }, lastState: { terminated: { exitCode: 2, reason: 'Error', startedAt: at, finishedAt: at } } })).toMatchObject({ ok: false });
    expect(await status({ ready: false, state: { terminated: { exitCode: 1, reason: 'Error', startedAt: at, finishedAt: at } } })).toMatchObject({ ok: false });
  });

  it('a namespace that is not a Vault client is left alone (the webhook selects by vaultlab\'s label)', async () => {
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } }]);
    const template = (allManifests(plan).find((o) => o.kind === 'Deployment') as any).spec.template;
    const pod = (await (await kube.core()).createNamespacedPod({ namespace: 'plain', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain', annotations: template.metadata.annotations }, spec: template.spec } })) as any;
    expect(pod.spec.containers.map((c: any) => c.name)).toEqual(['app']);
    expect(pod.spec.initContainers ?? []).toEqual([]);
  });
});
