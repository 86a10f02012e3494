// A real Kubernetes API for the tests (the controller-runtime "envtest" approach): etcd and
// kube-apiserver on loopback, with its own CA and serving certificate, ServiceAccount token
// issuance (TokenRequest / TokenReview) and RBAC; an admin authenticated by a static token.
// Binaries come from build.ts (cached in ~/.cache/vaultlab/bin).
//
// There is no controller-manager or scheduler: nothing creates the "default" ServiceAccount,
// finalizes namespace deletion or runs pods. Tests apply the objects they need.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKubeBinaries, binPath } from './build.ts';

export interface KubeServer {
  /** https://127.0.0.1:<port> */
  host: string;
  /** The CA that signed the API server's serving certificate (PEM). */
  caPem: string;
  /** A bearer token in group system:masters. */
  adminToken: string;
  kubeconfigPath: string;
  /** The server's working directory: PKI, etcd data, kubeconfig, etcd.log, kube-apiserver.log. */
  dir: string;
  /** [kube-apiserver, etcd] */
  pids: number[];
  /** Stops both processes and removes the directory (unless the caller chose it). */
  stop(): Promise<void>;
}

/** The ServiceAccount token issuer (the `iss` claim; Vault's kubernetes auth can check it). */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run openssl (needed for the test API server's certificates): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/**
 * A CA and a serving certificate for 127.0.0.1/localhost signed by it (openssl), and the
 * ServiceAccount token signing key pair (node:crypto).
 */
function makePki(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=vaultlab-test-ca'], dir);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '7', '-extfile', 'san.cnf'], dir);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey);
}

function readyz(host: string, caPem: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${host}/readyz`, { ca: caPem, headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
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

function tail(file: string, bytes = 4000): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(bytes, size));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

function terminate(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (exited(p)) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

class StartError extends Error {
  readonly portClash: boolean;
  constructor(message: string, portClash: boolean) {
    super(message);
    this.portClash = portClash;
  }
}

/**
 * Starts etcd and kube-apiserver and waits for /readyz. `dir` (default: a new temp dir) holds
 * everything; `detached` leaves both running after this process exits (for `npm run k8s:up`).
 * Both processes log to files in `dir` (a pipe would kill them with SIGPIPE once a detached
 * parent is gone).
 */
export async function startKube(opts: { dir?: string; detached?: boolean; timeoutMs?: number } = {}): Promise<KubeServer> {
  const bins = await ensureKubeBinaries();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vaultlab-kube-'));
  try {
    const pki = join(dir, 'pki');
    mkdirSync(pki, { recursive: true, mode: 0o700 });
    if (!existsSync(join(pki, 'sa.pub'))) makePki(pki);
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(pki, 'tokens.csv'), `${adminToken},admin,admin,system:masters\n`, { mode: 0o600 });
    // freePort() releases the port before etcd/kube-apiserver bind it; another process can take
    // it meanwhile (parallel test workers), so a clash is retried with new ports.
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce(bins, dir, pki, adminToken, opts);
      } catch (err) {
        if (!(err instanceof StartError && err.portClash) || attempt >= 3) throw err;
        rmSync(join(dir, 'etcd'), { recursive: true, force: true });
      }
    }
  } catch (err) {
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startOnce(
  bins: { etcd: string; apiserver: string },
  dir: string,
  pki: string,
  adminToken: string,
  opts: { dir?: string; detached?: boolean; timeoutMs?: number },
): Promise<KubeServer> {
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdLog = join(dir, 'etcd.log');
  const apiLog = join(dir, 'kube-apiserver.log');
  const logFd = (f: string) => openSync(f, 'w', 0o600);
  const launch = (bin: string, args: string[], log: string): ChildProcess => {
    const fd = logFd(log);
    try {
      return spawn(bin, args, { stdio: ['ignore', fd, fd], detached: !!opts.detached });
    } finally {
      closeSync(fd);
    }
  };

  const etcd = launch(
    bins.etcd,
    [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
      '--unsafe-no-fsync',
    ],
    etcdLog,
  );
  const host = `https://127.0.0.1:${apiPort}`;
  const apiserver = launch(
    bins.apiserver,
    [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(pki, 'server.crt')}`,
      `--tls-private-key-file=${join(pki, 'server.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--enable-priority-and-fairness=false',
      // The loopback advertise address is not a valid Endpoints IP; nothing here needs the
      // in-cluster "kubernetes" Service endpoints.
      '--endpoint-reconciler-type=none',
      // No controller-manager creates the "default" ServiceAccount that this admission plugin
      // would require for every pod.
      '--disable-admission-plugins=ServiceAccount',
      `--cert-dir=${join(dir, 'certs')}`,
      '--v=0',
    ],
    apiLog,
  );
  const caPem = readFileSync(join(pki, 'ca.crt'), 'utf8');

  // Test processes that die without stop() must not leave servers behind.
  const killOnExit = () => {
    for (const p of [apiserver, etcd]) if (!exited(p)) p.kill('SIGKILL');
  };
  if (!opts.detached) process.once('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    await terminate(apiserver);
    await terminate(etcd);
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  };

  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      for (const [p, name, log] of [[etcd, 'etcd', etcdLog], [apiserver, 'kube-apiserver', apiLog]] as const) {
        if (exited(p)) {
          const logs = tail(log);
          throw new StartError(`${name} exited with ${p.exitCode ?? p.signalCode} while starting:\n${logs}`, /address already in use/.test(logs));
        }
      }
      if (await readyz(host, caPem, adminToken)) break;
      if (Date.now() > deadline) {
        throw new StartError(`kube-apiserver ${host} not ready after ${timeoutMs / 1000} s:\n--- etcd.log\n${tail(etcdLog, 1500)}\n--- kube-apiserver.log\n${tail(apiLog)}`, false);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    process.off('exit', killOnExit);
    await terminate(apiserver, 1000);
    await terminate(etcd, 1000);
    throw err;
  }

  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(host, caPem, adminToken), { mode: 0o600 });
  if (opts.detached) {
    etcd.unref();
    apiserver.unref();
  }
  return { host, caPem, adminToken, kubeconfigPath, dir, pids: [apiserver.pid!, etcd.pid!], stop };
}

export { binPath };
