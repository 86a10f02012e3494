// `npm run k8s:up` / `npm run k8s:down`: a real kube-apiserver + etcd on loopback for poking
// around by hand (kubectl --kubeconfig <path>), the same harness the tests use.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './build.ts';
import { startKube } from './server.ts';

const stateFile = join(cacheDir(), 'k8s-up.json');
const cmd = process.argv[2];

if (cmd === 'up') {
  if (existsSync(stateFile)) {
    const s = JSON.parse(readFileSync(stateFile, 'utf8'));
    console.log(`already running (pids ${s.pids.join(', ')})`);
    console.log(s.kubeconfigPath);
    process.exit(0);
  }
  mkdirSync(cacheDir(), { recursive: true });
  const dir = join(cacheDir(), 'k8s-up');
  rmSync(dir, { recursive: true, force: true });
  const k = await startKube({ dir, detached: true });
  writeFileSync(stateFile, JSON.stringify({ pids: k.pids, kubeconfigPath: k.kubeconfigPath, dir, host: k.host }), { mode: 0o600 });
  console.log(`kube-apiserver ${k.host} is up`);
  console.log(k.kubeconfigPath);
  process.exit(0);
} else if (cmd === 'down') {
  if (!existsSync(stateFile)) {
    console.log('not running');
    process.exit(0);
  }
  const s = JSON.parse(readFileSync(stateFile, 'utf8'));
  for (const pid of s.pids as number[]) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  rmSync(s.dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  console.log('stopped and cleaned up');
} else {
  console.error('usage: node tests/harness/kube/cli.ts up|down');
  process.exit(2);
}
