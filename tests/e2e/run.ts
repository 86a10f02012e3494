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
import { join } from 'node:path';
import { prepareKindRun } from './runner-env.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const skip = (why: string): never => {
  console.log(`skipped: kind suite (npm run test:e2e): ${why}`);
  process.exit(0);
};

const budget = Number(process.env.VAULTLAB_E2E_BUDGET_S ?? '');
const deadline = Number.isFinite(budget) && budget > 0 ? Date.now() + budget * 1000 : undefined;
if (deadline !== undefined && budget < 600) skip(`only ${Math.round(budget)} s of the time budget left; a demo deploy alone needs about 10 minutes here`);

const run = await prepareKindRun(deadline);
if ('skip' in run) skip(run.skip);
const { env, prefix, describe, stop } = run as Exclude<typeof run, { skip: string }>;
let code = 1;
try {
  console.log(`e2e: ${describe}`);
  const args = [...prefix, process.execPath, join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'tests/e2e/vitest.config.ts', ...process.argv.slice(2)];
  code = spawnSync(args[0]!, args.slice(1), { cwd: ROOT, stdio: 'inherit', env }).status ?? 1;
} finally {
  stop();
}
process.exit(code);
