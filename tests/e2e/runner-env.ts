// What `npm run test:e2e` and the deploy benchmark need before anything runs on kind: a Docker
// engine (the caller's own with VAULTLAB_E2E_DOCKER=host, else a private dockerd in its own
// network namespace: tests/harness/kind/dockerd.ts), the offline image set (npm run e2e:images)
// and charts (npm run e2e:charts), kind and helm. Returns the environment and the command prefix
// (nsenter into that namespace) to run a child in, or why it cannot run (said as `skipped:`).
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { binDir, cacheDir, ensureTool } from '../harness/kube/build.ts';

export interface KindRun {
  env: NodeJS.ProcessEnv;
  /** Prepended to the child's argv: enters the private dockerd's network namespace. */
  prefix: string[];
  /** One line for the log: which Docker, kind, node image. */
  describe: string;
  stop(): void;
}

export async function prepareKindRun(deadline?: number): Promise<KindRun | { skip: string }> {
  const timing = deadline ? { VAULTLAB_E2E_DEADLINE: String(deadline) } : {};
  if (process.env.VAULTLAB_E2E_DOCKER === 'host') return { env: { ...process.env, ...timing }, prefix: [], describe: 'the host Docker (VAULTLAB_E2E_DOCKER=host)', stop() {} };

  const { privateDockerUnavailable, startPrivateDocker } = await import('../harness/kind/dockerd.ts');
  const why = privateDockerUnavailable();
  if (why) return { skip: `${why}; VAULTLAB_E2E_DOCKER=host runs it against your own Docker` };

  const { missingCharts, chartPath, pinnedCharts, vsoChartVersion } = await import('../harness/kind/charts.ts');
  const missing = missingCharts();
  if (missing.length) return { skip: `charts not cached: ${missing.join('; ')}. Bring them once with \`npm run e2e:charts -- --from DIR\` (git checkouts of the chart repositories; README, Kind suite)` };

  // kind and helm the suites run; go-installed and cached, built here on first use (a few minutes).
  let tools: Record<string, string> = {};
  try {
    tools = { kind: ensureTool('kind'), helm: ensureTool('helm') };
  } catch (err) {
    return { skip: `cannot build kind/helm from their Go modules: ${(err as Error).message}` };
  }

  const docker = await startPrivateDocker();
  process.env.DOCKER_HOST = docker.host;
  const { imageSetStatus, productImages, NODE_IMAGE } = await import('../harness/kind/images.ts');
  const set = imageSetStatus();
  if (!set.complete) {
    docker.stop();
    return { skip: `the offline image set is incomplete (missing ${set.missing.join(', ')}): build it once with \`npm run e2e:images\` (about 30 min cold, HashiCorp Vault included; README, Kind suite)` };
  }
  const images = productImages();
  const charts = { ...Object.fromEntries(pinnedCharts().map((c) => [c.chart, chartPath(c.chart, c.version)])), 'vault-secrets-operator': chartPath('vault-secrets-operator', vsoChartVersion()) };
  const kubectl = join(cacheDir(), 'e2e', 'bin');
  return {
    env: {
      ...process.env,
      ...docker.env,
      PATH: [binDir(), ...(existsSync(join(kubectl, 'kubectl')) ? [kubectl] : []), process.env.PATH].join(delimiter),
      VAULTLAB_E2E_OFFLINE: JSON.stringify({ node: NODE_IMAGE, images, charts, vault: set.vault }),
      // No registry: testcontainers' reaper image cannot be pulled; the suites stop what they start.
      TESTCONTAINERS_RYUK_DISABLED: 'true',
      ...(set.vault ? { VAULTLAB_E2E_VAULT_IMAGE: images.vault } : { VAULTLAB_E2E_NO_VAULT: `${images.vault} is not in the image set: npm run e2e:images builds it from its Go module (about 10 min warm, 20 cold), which .ci/run leaves out when its time limit cannot hold that build` }),
      ...timing,
    },
    prefix: docker.nsenter,
    describe: `private dockerd ${docker.host} (pid ${docker.pid}); kind ${tools.kind}; node image ${NODE_IMAGE}; Vault image ${set.vault ? images.vault : 'absent'}`,
    stop: () => docker.stop(),
  };
}
