// Before touching anything: Docker, tools, host ports, memory. Each failure says how to fix it;
// deploy reports every failed check at once, doctor lists all findings.
import { createServer } from 'node:net';
import type { TaskStep } from '../lib/tasks.ts';
import { cachedKindClusters, type DeployContext } from './context.ts';
import { VaultlabError } from '../lib/errors.ts';
import { dockerInfo, DOCKER_FIX } from '../adapters/docker.ts';
import { checkTool } from '../adapters/tools.ts';
import { kindClusters } from '../adapters/kind.ts';
import { prefetchPreload } from './cluster.ts';

/** Can we bind `port` on 127.0.0.1 (where kind maps it)? */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export interface Finding {
  ok: boolean;
  severity: 'error' | 'warning';
  what: string;
  fix?: string;
}

export const MEMORY_GIB = { demo: 4, production: 6 } as const;

/** Every machine check, as findings (deploy stops on errors; doctor lists them all). */
export async function machineFindings(ctx: Pick<DeployContext, 'plan'> & Partial<Pick<DeployContext, 'cache'>>): Promise<Finding[]> {
  const findings: Finding[] = [];
  const { plan } = ctx;
  // Every probe at once (each is a child process): the findings keep their order.
  const tools = (names: ('kind' | 'helm' | 'kubectl')[]) => Promise.all(names.map((n) => checkTool(n)));
  const toolFindings = (ts: Awaited<ReturnType<typeof checkTool>>[]) =>
    ts.map((t): Finding => ({ ok: t.ok && t.found, severity: t.optional ? 'warning' : 'error', what: t.what, fix: t.fix }));
  if (plan.cluster.provider !== 'kind') return toolFindings(await tools(['helm', 'kubectl']));
  // Our own cluster holds its ports: a re-deploy must not trip over them.
  const load = () => kindClusters().catch((): string[] => []);
  const [docker, ts, clusters] = await Promise.all([dockerInfo(), tools(['kind', 'helm', 'kubectl']), ctx.cache ? cachedKindClusters({ cache: ctx.cache }, load) : load()]);
  findings.push({ ok: docker.reachable, severity: 'error', what: docker.reachable ? `Docker ${docker.serverVersion ?? ''} is running`.replace('  ', ' ') : `Docker is not running: ${docker.reason}`, fix: DOCKER_FIX });
  findings.push(...toolFindings(ts));
  const ours = docker.reachable && clusters.includes(plan.cluster.name);
  for (const [what, port] of Object.entries(plan.cluster.hostPorts)) {
    if (plan.profile === 'production' && what === 'vault') continue; // no NodePort in production
    const free = ours || (await portFree(port));
    findings.push({
      ok: free,
      severity: 'error',
      what: free ? `host port ${port} (${what}) is ${ours ? `held by kind cluster "${plan.cluster.name}"` : 'available'}` : `port ${port} (cluster.ports.${what}) is already in use`,
      fix: `Stop what listens there (\`lsof -i :${port}\`), run \`vaultlab destroy\` if it is an older vaultlab cluster, or set [cluster.ports] ${what} = <another port> in config.toml.`,
    });
  }
  if (docker.reachable && docker.memoryBytes) {
    const need = MEMORY_GIB[plan.profile];
    const gib = docker.memoryBytes / 2 ** 30;
    findings.push({ ok: gib >= need, severity: 'warning', what: `Docker has ${gib.toFixed(1)} GiB of memory (${need} GiB recommended for ${plan.profile})`, fix: 'Give Docker more memory (Docker Desktop: Settings > Resources > Memory).' });
  }
  return findings;
}

/** Failed error findings -> one error naming each problem and each fix. */
export function preflightError(findings: Finding[]): VaultlabError | undefined {
  const failed = findings.filter((f) => !f.ok && f.severity === 'error');
  if (failed.length === 0) return undefined;
  if (failed.length === 1) return new VaultlabError(failed[0]!.what, failed[0]!.fix ? { hint: failed[0]!.fix } : {});
  return new VaultlabError(`preflight found ${failed.length} problems: ${failed.map((f) => f.what).join('; ')}`, {
    hint: failed.map((f, i) => `(${i + 1}) ${f.fix ?? f.what}`).join(' '),
  });
}

export const preflight: TaskStep<DeployContext> = {
  name: 'preflight',
  title: 'Preflight checks',
  async run(ctx) {
    const probes = machineFindings(ctx); // child processes: Docker, kind, helm, kubectl
    // Meanwhile (once they are spawned) the images --preload needs are rendered, and, for a
    // cluster that exists, what its nodes hold is asked: the cluster step finds both done.
    const prefetch = new Promise<void>((resolve) =>
      setImmediate(() => {
        void (ctx.cache.kindClusters ?? Promise.resolve([])).then((clusters) => prefetchPreload(ctx, clusters.includes(ctx.plan.cluster.name)), () => undefined);
        resolve();
      }),
    );
    const findings = await probes;
    await prefetch;
    for (const f of findings.filter((x) => !x.ok && x.severity === 'warning')) ctx.out.warn(`${f.what}. ${f.fix ?? ''}`);
    const err = preflightError(findings);
    if (err) throw err;
    return `${findings.filter((f) => f.ok).length} checks passed`;
  },
};
