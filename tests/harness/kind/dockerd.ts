// A private Docker engine for the kind suite, so a test never touches the host's docker0,
// iptables or containers:
//   - its own network namespace (`unshare --net`): its bridges, iptables rules and FORWARD policy
//     live there, and kind's published ports (the API server, Vault's NodePort) are on that
//     namespace's loopback, so kind, kubectl, helm and vaultlab run inside it (`nsenter`);
//   - its own data root under the cache (the offline image set stays there between runs), exec
//     root and socket;
//   - on a VM whose capability bounding set lacks CAP_SYS_RESOURCE, the runc wrapper next to this
//     file as its default runtime (kind always runs nodes `--privileged`).
// Never `"bridge": "none"`: dockerd then deletes the host's docker0 at start-up.
// The kubelet sets a few sysctls host-wide (they are not namespaced); `stop()` restores them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../kube/build.ts';

export const RUN_DIR = '/run/vaultlab-e2e';
export const dockerRoot = (): string => join(cacheDir(), 'e2e', 'docker');
export const socketPath = (): string => join(RUN_DIR, 'docker.sock');
export const DOCKER_HOST = (): string => `unix://${socketPath()}`;
const pidFile = () => join(RUN_DIR, 'dockerd.pid');
const logFile = () => join(cacheDir(), 'e2e', 'dockerd.log');

/** Host-wide sysctls the kubelet changes when it starts; restored after a run. */
const KUBELET_SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory'];

/** Is bit 24 (CAP_SYS_RESOURCE) missing from this process's capability bounding set? */
export function lacksSysResource(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapBnd:'));
  if (!line) return false;
  return (BigInt(`0x${line.split(/\s+/)[1]}`) & (1n << 24n)) === 0n;
}

/** Why a private dockerd cannot run here, or undefined when it can. */
export function privateDockerUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `a private dockerd needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'a private dockerd in its own network namespace needs root (set VAULTLAB_E2E_DOCKER=host to use your own Docker)';
  for (const tool of ['dockerd', 'docker', 'unshare', 'nsenter', 'jq', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (apt-get install docker.io jq iproute2 util-linux)`;
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function runningPid(): number | undefined {
  if (!existsSync(pidFile())) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile(), 'utf8'), 10);
  return Number.isFinite(pid) && alive(pid) ? pid : undefined;
}

export const docker = (args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}) =>
  spawnSync('docker', ['-H', DOCKER_HOST(), ...args], { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 << 20 });

const answers = () => docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 }).status === 0;

export interface PrivateDocker {
  /** unix:// address of its socket (DOCKER_HOST). */
  host: string;
  pid: number;
  /** Its network namespace, for nsenter --net. */
  netns: string;
  /** The environment a child needs to use it: DOCKER_HOST. */
  env: Record<string, string>;
  /** argv prefix that runs a command inside its network namespace. */
  nsenter: string[];
  /** Stops the daemon (its containers stop with it) and restores the host sysctls. */
  stop(): void;
}

function describe(pid: number, saved: Map<string, string>): PrivateDocker {
  const netns = `/proc/${pid}/ns/net`;
  return {
    host: DOCKER_HOST(),
    pid,
    netns,
    env: { DOCKER_HOST: DOCKER_HOST() },
    nsenter: ['nsenter', `--net=${netns}`, '--'],
    stop() {
      stopPrivateDocker();
      for (const [k, v] of saved) {
        try {
          writeFileSync(`/proc/sys/${k}`, v);
        } catch {
          /* not ours to fail on */
        }
      }
    },
  };
}

/**
 * Starts the private dockerd (or reuses the one already running) and waits until it answers.
 * `stop()` on the result stops it and puts back the sysctls as they were before this call.
 */
export async function startPrivateDocker(): Promise<PrivateDocker> {
  const why = privateDockerUnavailable();
  if (why) throw new Error(why);
  const saved = new Map(KUBELET_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()] as const));
  const running = runningPid();
  if (running && answers()) return describe(running, saved);

  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  mkdirSync(dockerRoot(), { recursive: true });
  const config = {
    'data-root': dockerRoot(),
    'exec-root': join(RUN_DIR, 'exec'),
    pidfile: pidFile(),
    hosts: [DOCKER_HOST()],
    'storage-driver': 'overlay2',
    'cgroup-parent': '/vaultlab-e2e',
    // No registry can be reached from here; never wait on one.
    'max-concurrent-downloads': 1,
    ...(lacksSysResource()
      ? { runtimes: { 'runc-nosysres': { path: join(import.meta.dirname, 'runc-nosysres') } }, 'default-runtime': 'runc-nosysres' }
      : {}),
  };
  const configFile = join(RUN_DIR, 'daemon.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  rmSync(pidFile(), { force: true });
  const log = openSync(logFile(), 'a');
  const child = spawn('unshare', ['--net', '--', 'sh', '-c', `ip link set lo up && exec dockerd --config-file ${configFile}`], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const pid = runningPid();
    if (pid && answers()) return describe(pid, saved);
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const tail = readFileSync(logFile(), 'utf8').split('\n').slice(-15).join('\n');
  throw new Error(`the private dockerd did not answer within 60 s; ${logFile()} ends:\n${tail}`);
}

/** Stops the private dockerd, if it runs, and waits for it to exit. */
export function stopPrivateDocker(): void {
  const pid = runningPid();
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (alive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.5']);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

// node tests/harness/kind/dockerd.ts start|stop|status
if (import.meta.main) {
  const cmd = process.argv[2];
  if (cmd === 'start') {
    const d = await startPrivateDocker();
    console.log(`private dockerd pid ${d.pid}; export DOCKER_HOST=${d.host}; run kind/kubectl with: ${d.nsenter.join(' ')} <cmd>`);
  } else if (cmd === 'stop') stopPrivateDocker();
  else if (cmd === 'status') console.log(runningPid() ? `running, pid ${runningPid()}, ${DOCKER_HOST()}` : 'not running');
  else {
    console.error('usage: node tests/harness/kind/dockerd.ts start|stop|status');
    process.exit(2);
  }
}
