// `npm run k8s:up` / `npm run k8s:down`: a real kube-apiserver + etcd on loopback for poking
// around by hand (kubectl --kubeconfig <path>), the same harness the tests use. `up` leaves both
// running in the background and records them in <cache>/k8s-up.json; `down` stops them and
// removes their directory. `status` tells whether it is up.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { binPath, cacheDir } from './build.ts';
import { startKube } from './server.ts';

interface State {
  pids: number[];
  kubeconfigPath: string;
  dir: string;
  host: string;
}

const stateFile = join(cacheDir(), 'k8s-up.json');

/** The pid is alive and still one of our binaries (not a recycled pid). */
function ours(pid: number): boolean {
  try {
    const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return exe === binPath('etcd') || exe === binPath('kube-apiserver');
  } catch {
    try {
      process.kill(pid, 0);
      return true; // no /proc (macOS): trust the state file
    } catch {
      return false;
    }
  }
}

function readState(): State | undefined {
  if (!existsSync(stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(ours)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * kube-apiserver first, then etcd: an API server whose etcd is already gone can hang in its
 * graceful shutdown. SIGKILL after 10 s each.
 */
async function down(s: State): Promise<void> {
  for (const pid of s.pids) {
    if (!ours(pid)) continue;
    process.kill(pid, 'SIGTERM');
    if (!(await waitGone([pid], 10_000))) {
      process.kill(pid, 'SIGKILL');
      await waitGone([pid], 10_000);
    }
  }
  rmSync(s.dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

const cmd = process.argv[2];
const state = readState();
const running = !!state && state.pids.every(ours);

if (cmd === 'up') {
  if (state && running) {
    console.log(`already running: ${state.host} (pids ${state.pids.join(', ')})`);
    console.log(state.kubeconfigPath);
    process.exit(0);
  }
  if (state) await down(state); // a half-dead leftover (one process gone, or after a reboot)
  mkdirSync(cacheDir(), { recursive: true });
  const dir = join(cacheDir(), 'k8s-up');
  rmSync(dir, { recursive: true, force: true });
  const k = await startKube({ dir, detached: true });
  const s: State = { pids: k.pids, kubeconfigPath: k.kubeconfigPath, dir, host: k.host };
  writeFileSync(stateFile, JSON.stringify(s), { mode: 0o600 });
  console.log(`kube-apiserver ${k.host} is up (pids ${k.pids.join(', ')}; logs in ${dir}); stop it with npm run k8s:down`);
  console.log(k.kubeconfigPath);
  process.exit(0);
} else if (cmd === 'down') {
  if (!state) {
    console.log('not running');
    process.exit(0);
  }
  await down(state);
  console.log('stopped and cleaned up');
} else if (cmd === 'status') {
  console.log(running ? `running: ${state!.host}\n${state!.kubeconfigPath}` : state ? 'stale state (run k8s:down)' : 'not running');
  process.exit(running ? 0 : 1);
} else {
  console.error('usage: node tests/harness/kube/cli.ts up|down|status');
  process.exit(2);
}
