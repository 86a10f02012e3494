// Before touching anything: Docker, tools, host ports, memory. Each failure says how to fix it.
import { createServer } from 'node:net';
import type { TaskStep } from '../lib/tasks.ts';
import type { DeployContext } from './context.ts';
import { VaultlabError } from '../lib/errors.ts';
import { dockerInfo, DOCKER_FIX } from '../adapters/docker.ts';
import { checkTool } from '../adapters/tools.ts';
import { kindClusters } from '../adapters/kind.ts';

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export interface Finding {
  ok: boolean;
  severity: 'error' | 'warning';
  what: string;
  fix?: string;
}

/** Every machine check, as findings (deploy stops on the first error; doctor lists them all). */
export async function machineFindings(ctx: Pick<DeployContext, 'plan'>): Promise<Finding[]> {
  const findings: Finding[] = [];
  const { plan } = ctx;
  if (plan.cluster.provider !== 'kind') {
    const helm = await checkTool('helm');
    findings.push({ ok: helm.ok, severity: 'error', what: helm.found ? `helm ${helm.version} (need >= ${helm.minimum})` : 'helm not found', fix: helm.fix });
    return findings;
  }
  const docker = await dockerInfo();
  findings.push({ ok: docker.reachable, severity: 'error', what: docker.reachable ? `Docker ${docker.serverVersion ?? ''} is running` : `Docker is not running: ${docker.reason}`, fix: DOCKER_FIX });
  for (const name of ['kind', 'helm'] as const) {
    const t = await checkTool(name);
    findings.push({ ok: t.ok, severity: 'error', what: t.found ? `${name} ${t.version} (need >= ${t.minimum})` : `${name} not found`, fix: t.fix });
  }
  if (docker.reachable) {
    const ours = (await kindClusters().catch((): string[] => [])).includes(plan.cluster.name);
    for (const [what, port] of Object.entries(plan.cluster.hostPorts)) {
      if (plan.profile === 'production' && what === 'vault') continue; // no NodePort in production
      const free = ours || (await portFree(port));
      findings.push({ ok: free, severity: 'error', what: free ? `host port ${port} (${what}) is available` : `port ${port} (cluster.ports.${what}) is already in use`, fix: `Stop what listens there (\`lsof -i :${port}\`), run \`vaultlab destroy\` if it is an older vaultlab cluster, or set [cluster.ports] ${what} = <another port>.` });
    }
    const need = plan.profile === 'production' ? 6 : 4;
    if (docker.memoryBytes !== undefined) {
      const gib = docker.memoryBytes / 2 ** 30;
      findings.push({ ok: gib >= need, severity: 'warning', what: `Docker has ${gib.toFixed(1)} GiB of memory (${need} GiB recommended for ${plan.profile})`, fix: 'Give Docker more memory (Docker Desktop: Settings > Resources).' });
    }
  }
  return findings;
}

export const preflight: TaskStep<DeployContext> = {
  name: 'preflight',
  title: 'Preflight checks',
  async run(ctx) {
    const findings = await machineFindings(ctx);
    for (const f of findings.filter((x) => !x.ok && x.severity === 'warning')) ctx.out.warn(`${f.what}. ${f.fix ?? ''}`);
    const failed = findings.find((f) => !f.ok && f.severity === 'error');
    if (failed) throw new VaultlabError(failed.what, { ...(failed.fix ? { hint: failed.fix } : {}) });
    return `${findings.filter((f) => f.ok).length} checks passed`;
  },
};
