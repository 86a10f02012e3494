// The two ways vaultlab reaches an API server, both against a real kube-apiserver + etcd: its
// own https requests for a client certificate or a token (what kind writes), and client-node
// for a kubeconfig whose user is an exec plugin. The same calls give the same answers either
// way, and the first never loads client-node.
import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { PROJECT_ROOT } from '../../scripts/config/load.ts';

describe('Kube transports on a real API server', () => {
  let server: KubeServer;
  let dir: string;
  const kubeconfigs: Record<'cert' | 'exec', string> = { cert: '', exec: '' };

  setupOrFail(async () => {
    server = await startKube();
    dir = mkdtempSync(join(tmpdir(), 'vaultlab-transport-'));
    // A client certificate from the API server's client CA, in group system:masters, as files
    // named relative to the kubeconfig (kubectl resolves them against its directory).
    const pki = join(server.dir, 'pki');
    execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'admin.key'), '-out', join(dir, 'admin.csr'), '-subj', '/O=system:masters/CN=cert-admin'], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'admin.csr'), '-CA', join(pki, 'ca.crt'), '-CAkey', join(pki, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'admin.crt'), '-days', '1'], { stdio: 'ignore' });
    writeFileSync(join(dir, 'ca.crt'), server.caPem);
    const cluster = { name: 'c', cluster: { server: server.host, 'certificate-authority': 'ca.crt' } };
    const context = (user: string) => ({ name: user, context: { cluster: 'c', user } });
    kubeconfigs.cert = join(dir, 'cert.kubeconfig');
    writeFileSync(kubeconfigs.cert, JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'cert', clusters: [cluster], contexts: [context('cert')], users: [{ name: 'cert', user: { 'client-certificate': 'admin.crt', 'client-key': 'admin.key' } }] }), { mode: 0o600 });
    // An exec credential plugin (as cloud CLIs and OIDC helpers are): only client-node runs those.
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(plugin, `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: ${JSON.stringify(server.adminToken)} } }));\n`, { mode: 0o600 });
    kubeconfigs.exec = join(dir, 'exec.kubeconfig');
    writeFileSync(
      kubeconfigs.exec,
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'exec', clusters: [{ name: 'c', cluster: { server: server.host, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }], contexts: [context('exec')], users: [{ name: 'exec', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never' } } }] }),
      { mode: 0o600 },
    );
  });
  afterAll(async () => server?.stop());

  for (const how of ['cert', 'exec'] as const) {
    it(`${how === 'cert' ? 'a client certificate (own https)' : 'an exec plugin (client-node)'}: read, list, apply, a watched wait, TokenRequest, readyz, delete`, async () => {
      const kube = await Kube.connect({ kubeconfig: kubeconfigs[how] });
      expect(kube.context).toBe(how);
      expect(kube.clusterInfo()).toEqual({ server: server.host, caPem: server.caPem });
      expect(await kube.isReady()).toBe(true);
      const ns = `transport-${how}`;
      expect(await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }])).toEqual([{ kind: 'Namespace', namespace: undefined, name: ns, action: 'created' }]);
      expect((await kube.get('v1', 'Namespace', undefined, ns))?.metadata.name).toBe(ns);
      expect(await kube.get('v1', 'ConfigMap', ns, 'absent')).toBeUndefined();
      const cm = (v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: ns, labels: { t: how } }, data: { v } });
      await kube.apply([cm('1')]);
      expect((await kube.list('v1', 'ConfigMap', ns, `t=${how}`)).map((o: any) => [o.kind, o.metadata.name, o.data.v])).toEqual([['ConfigMap', 'cm', '1']]);
      // A wait that only a watch event ends: the change comes after the wait has started.
      const waited = kube.waitFor('v1', 'ConfigMap', ns, 'cm', (o) => o.data?.v === '2', 'at v=2', { timeoutMs: 20_000 });
      setTimeout(() => void kube.apply([cm('2')]), 300);
      expect((await waited).data.v).toBe('2');
      await kube.apply([{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa', namespace: ns } }]);
      const token = await kube.createServiceAccountToken(ns, 'sa', ['vault'], 600);
      expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub).toBe(`system:serviceaccount:${ns}:sa`);
      expect(await kube.delete('v1', 'ConfigMap', ns, 'cm')).toBe(true);
      expect(await kube.delete('v1', 'ConfigMap', ns, 'cm')).toBe(false);
      // An API error names the object and says what the server said.
      await expect(kube.createServiceAccountToken(ns, 'no-such-sa', ['vault'])).rejects.toThrow(new RegExp(`requesting a token for ServiceAccount ${ns}/no-such-sa: .*not found.*\\(HTTP 404\\)`));
    });
  }

  it('a certificate or token kubeconfig never loads client-node (it costs 0.3-0.8 s of every command); an exec plugin loads it', () => {
    // In a process of its own, every module load recorded.
    const script = join(dir, 'probe.ts');
    writeFileSync(
      script,
      [
        "import module from 'node:module';",
        'const loaded: string[] = [];',
        'module.registerHooks({ load(url, ctx, next) { loaded.push(url); return next(url, ctx); } });',
        `const { Kube } = await import(${JSON.stringify(join(PROJECT_ROOT, 'scripts/adapters/kube.ts'))});`,
        'const kube = await Kube.connect({ kubeconfig: process.argv[2] });',
        "await kube.list('v1', 'Namespace');",
        "await kube.apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'probe', namespace: 'default' }, data: { a: '1' } }]);",
        "await kube.waitFor('v1', 'ConfigMap', 'default', 'probe', () => true, 'there');",
        "console.log(JSON.stringify(loaded.some((u) => u.includes('/@kubernetes/client-node/'))));",
      ].join('\n'),
    );
    const probe = (file: string) => {
      const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    expect(probe(kubeconfigs.cert)).toBe(false);
    expect(probe(server.kubeconfigPath)).toBe(false);
    expect(probe(kubeconfigs.exec)).toBe(true);
  });
});
