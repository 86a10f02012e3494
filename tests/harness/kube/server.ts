// A real Kubernetes API for the tests (the controller-runtime "envtest" approach): etcd and
// kube-apiserver on loopback, with its own CA and serving certificate, ServiceAccount token
// issuance (TokenRequest / TokenReview) and RBAC; an admin authenticated by a static token.
// Binaries come from build.ts (cached in ~/.cache/vaultlab/bin).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { ensureKubeBinaries, binPath } from './build.ts';
import { freePort } from '../bao.ts';

export interface KubeServer {
  host: string;
  caPem: string;
  adminToken: string;
  kubeconfigPath: string;
  dir: string;
  pids: number[];
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** CA, serving certificate for 127.0.0.1/localhost, and the ServiceAccount signing key. */
function makePki(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=vaultlab-test-ca'], dir);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.cnf'], dir);
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function waitFor(check: () => Promise<boolean>, what: string, timeoutMs: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return (async () => {
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} not ready after ${timeoutMs} ms:\n${logs().slice(-3000)}`);
  })();
}

function readyz(host: string, caPem: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${host}/readyz`, { ca: caPem, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

export function kubeconfigYaml(host: string, caPem: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: vaultlab-test',
    '  cluster:',
    `    server: ${host}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: vaultlab-test',
    '  context:',
    '    cluster: vaultlab-test',
    '    user: admin',
    'current-context: vaultlab-test',
    '',
  ].join('\n');
}

export async function startKube(opts: { dir?: string; detached?: boolean } = {}): Promise<KubeServer> {
  const bins = await ensureKubeBinaries();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vaultlab-kube-'));
  mkdirSync(join(dir, 'pki'), { recursive: true, mode: 0o700 });
  const pki = join(dir, 'pki');
  if (!existsSync(join(pki, 'ca.crt'))) makePki(pki);
  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(join(pki, 'tokens.csv'), `${adminToken},admin,admin,system:masters\n`, { mode: 0o600 });

  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  let logs = '';
  const spawnOpts: import('node:child_process').SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], detached: !!opts.detached };
  const etcd: ChildProcess = spawn(
    bins.etcd,
    [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--log-level=error',
      '--unsafe-no-fsync',
    ],
    spawnOpts,
  );
  etcd.stdout!.on('data', (d) => (logs += d));
  etcd.stderr!.on('data', (d) => (logs += d));

  const host = `https://127.0.0.1:${apiPort}`;
  const apiserver: ChildProcess = spawn(
    bins.apiserver,
    [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(pki, 'server.crt')}`,
      `--tls-private-key-file=${join(pki, 'server.key')}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--enable-priority-and-fairness=false',
      '--disable-admission-plugins=ServiceAccount',
      `--cert-dir=${join(dir, 'certs')}`,
      '--v=0',
    ],
    spawnOpts,
  );
  apiserver.stdout!.on('data', (d) => (logs += d));
  apiserver.stderr!.on('data', (d) => (logs += d));
  const caPem = readFileSync(join(pki, 'ca.crt'), 'utf8');

  const stop = async () => {
    for (const p of [apiserver, etcd]) {
      if (p.exitCode === null && p.signalCode === null) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => p.kill('SIGKILL'), 5000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGTERM');
        });
      }
    }
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (apiserver.exitCode !== null) throw new Error(`kube-apiserver exited with ${apiserver.exitCode}:\n${logs.slice(-3000)}`);
      return readyz(host, caPem, adminToken);
    }, 'kube-apiserver /readyz', 120_000, () => logs);
  } catch (err) {
    await stop();
    throw err;
  }
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(host, caPem, adminToken), { mode: 0o600 });
  if (opts.detached) {
    etcd.unref();
    apiserver.unref();
    etcd.stdout!.destroy();
    etcd.stderr!.destroy();
    apiserver.stdout!.destroy();
    apiserver.stderr!.destroy();
  }
  return { host, caPem, adminToken, kubeconfigPath, dir, pids: [apiserver.pid!, etcd.pid!], stop };
}

export { binPath };
