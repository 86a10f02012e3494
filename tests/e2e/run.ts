// `npm run test:e2e`: the kind suite, for real, on this machine.
//
// Where a Docker engine is yours to use (a laptop, a CI runner with Docker and a registry):
// VAULTLAB_E2E_DOCKER=host runs the suites against it as it is.
//
// Otherwise (the default on Linux as root, and what .ci/run does): a private dockerd in its own
// network namespace (tests/harness/kind/dockerd.ts), the offline image set in its data root
// (npm run e2e:images), the charts from their sources on disk (npm run e2e:charts). The suites
// run inside that namespace (kind publishes the API server and the NodePorts on its loopback)
// with every image and chart overridden to the local ones through vaultlab's own [images] and
// [charts] settings, as an air-gapped user would deploy. Nothing is pulled.
//
// What is missing (no dockerd, image set not built, charts not cached, too little time left)
// is said as `skipped: <reason>`, and the run exits 0 having run nothing: it never pretends.
// VAULTLAB_E2E_BUDGET_S: seconds this run may take (.ci/run passes what its limit leaves);
// each suite checks it before it starts (tests/e2e/kind-env.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { binDir, cacheDir, ensureTool } from '../harness/kube/build.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const skip = (why: string): never => {
  console.log(`skipped: kind suite (npm run test:e2e): ${why}`);
  process.exit(0);
};

const budget = Number(process.env.VAULTLAB_E2E_BUDGET_S ?? '');
const deadline = Number.isFinite(budget) && budget > 0 ? Date.now() + budget * 1000 : undefined;
if (deadline !== undefined && budget < 600) skip(`only ${Math.round(budget)} s of the time budget left; a demo deploy alone needs about 10 minutes here`);

const vitest = (env: NodeJS.ProcessEnv, prefix: string[] = []) => {
  const args = [...prefix, process.execPath, join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'tests/e2e/vitest.config.ts', ...process.argv.slice(2)];
  return spawnSync(args[0]!, args.slice(1), { cwd: ROOT, stdio: 'inherit', env });
};

if (process.env.VAULTLAB_E2E_DOCKER === 'host') {
  const r = vitest({ ...process.env, ...(deadline ? { VAULTLAB_E2E_DEADLINE: String(deadline) } : {}) });
  process.exit(r.status ?? 1);
}

const { privateDockerUnavailable, startPrivateDocker } = await import('../harness/kind/dockerd.ts');
const why = privateDockerUnavailable();
if (why) skip(`${why}; VAULTLAB_E2E_DOCKER=host runs it against your own Docker`);

const { missingCharts, chartPath, pinnedCharts } = await import('../harness/kind/charts.ts');
const missing = missingCharts();
if (missing.length) skip(`charts not cached: ${missing.join('; ')}. Bring them once with \`npm run e2e:charts -- --from DIR\` (git checkouts of the chart repositories; README, Kind suite)`);

// kind and helm the suites run; go-installed and cached, built here on first use (a few minutes).
let tools: Record<string, string> = {};
try {
  tools = { kind: ensureTool('kind'), helm: ensureTool('helm') };
} catch (err) {
  skip(`cannot build kind/helm from their Go modules: ${(err as Error).message}`);
}

const docker = await startPrivateDocker();
let code = 1;
try {
  process.env.DOCKER_HOST = docker.host;
  const { imageSetStatus, productImages, NODE_IMAGE } = await import('../harness/kind/images.ts');
  const set = imageSetStatus();
  if (!set.complete) {
    docker.stop();
    skip(`the offline image set is incomplete (missing ${set.missing.join(', ')}): build it once with \`npm run e2e:images\` (20-40 min cold; README, Kind suite)`);
  }
  const images = productImages();
  const charts = Object.fromEntries(pinnedCharts().map((c) => [c.chart, chartPath(c.chart, c.version)]));
  const kubectl = join(cacheDir(), 'e2e', 'bin');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...docker.env,
    PATH: [binDir(), ...(existsSync(join(kubectl, 'kubectl')) ? [kubectl] : []), process.env.PATH].join(delimiter),
    VAULTLAB_E2E_OFFLINE: JSON.stringify({ node: NODE_IMAGE, images, charts, vault: set.vault }),
    // No registry: testcontainers' reaper image cannot be pulled; the suites stop what they start.
    TESTCONTAINERS_RYUK_DISABLED: 'true',
    ...(set.vault ? { VAULTLAB_E2E_VAULT_IMAGE: images.vault } : { VAULTLAB_E2E_NO_VAULT: `${images.vault} was not built: no HashiCorp Vault release builds from the Go module proxy here` }),
    ...(deadline ? { VAULTLAB_E2E_DEADLINE: String(deadline) } : {}),
  };
  console.log(`e2e: private dockerd ${docker.host} (pid ${docker.pid}); kind ${tools.kind}; node image ${NODE_IMAGE}; Vault image ${set.vault ? images.vault : 'absent'}`);
  code = vitest(env, docker.nsenter).status ?? 1;
} finally {
  docker.stop();
}
process.exit(code);
