// Child of deploy.bench.ts, run where the kind clusters live (inside the private dockerd's
// network namespace, or against the host Docker): cycles of cold deploy -> warm re-deploys ->
// reset --secrets (until every consumer holds the values; and --no-wait) -> rotate -> status ->
// destroy on the bundled demo config with the offline sources, as
// a person runs them (the CLI as a process, wall time), plus the cluster's memory once. Prints
// one JSON document on stdout.
import { spawnSync } from 'node:child_process';
import { json, offline, removeLeftoverCluster, suiteEnv } from '../e2e/kind-env.ts';

const cycles = Number(process.env.VAULTLAB_BENCH_DEPLOY_CYCLES ?? '3');
const distribution = (process.env.VAULTLAB_BENCH_DISTRIBUTION as 'vault' | 'openbao' | undefined) ?? (offline && !offline.vault ? 'openbao' : 'vault');
const env = suiteEnv({ name: `e2e-bench-${distribution}`, profile: 'demo', distribution });
const samples: Record<string, { ms: number; steps?: Record<string, number> }[]> = { cold: [], warm: [], reset: [], resetNoWait: [], rotate: [], status: [], destroy: [] };
const deployArgs = ['deploy', '--json', ...(offline ? ['--preload'] : [])];

function run(what: keyof typeof samples, args: string[]): any {
  const t0 = performance.now();
  const r = env.vaultlab(args);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const j = json(r);
  samples[what]!.push({ ms, ...(j.steps ? { steps: Object.fromEntries(j.steps.map((s: any) => [s.name, s.ms])) } : {}) });
  return j;
}

/** Memory of every container in the node (crictl stats), with the pod it belongs to and its request. */
function memory(): { nodeMiB: number; components: { pod: string; container: string; mib: number; requestMiB?: number }[] } {
  const node = `${env.name}-control-plane`;
  const stats = spawnSync('docker', ['stats', '--no-stream', '--format', '{{json .}}', node], { encoding: 'utf8' });
  const usage = JSON.parse(stats.stdout.trim().split('\n')[0] ?? '{}').MemUsage as string | undefined;
  const nodeMiB = usage ? parseSize(usage.split('/')[0]!.trim()) : NaN;
  const crictl = (args: string[]) => JSON.parse(spawnSync('docker', ['exec', node, 'crictl', ...args, '-o', 'json'], { encoding: 'utf8' }).stdout || '{}');
  const containers = new Map<string, any>((crictl(['ps']).containers ?? []).map((c: any) => [c.id, c]));
  const pods = JSON.parse(spawnSync('docker', ['exec', node, 'kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', 'get', 'pods', '-A', '-o', 'json'], { encoding: 'utf8' }).stdout || '{"items":[]}').items as any[];
  const request = (ns: string, pod: string, container: string) => {
    const spec = pods.find((p) => p.metadata.namespace === ns && p.metadata.name === pod)?.spec.containers.find((c: any) => c.name === container);
    const r = spec?.resources?.requests?.memory as string | undefined;
    return r ? parseSize(r) : undefined;
  };
  const components = (crictl(['stats']).stats ?? []).map((s: any) => {
    const c = containers.get(s.attributes.id);
    const ns = c?.labels?.['io.kubernetes.pod.namespace'] ?? '?';
    const pod = c?.labels?.['io.kubernetes.pod.name'] ?? '?';
    const container = c?.labels?.['io.kubernetes.container.name'] ?? s.attributes.metadata?.name ?? '?';
    const mib = Number(s.memory?.workingSetBytes?.value ?? 0) / 2 ** 20;
    const req = request(ns, pod, container);
    return { pod: `${ns}/${pod}`, container, mib: Math.round(mib * 10) / 10, ...(req !== undefined ? { requestMiB: req } : {}) };
  });
  return { nodeMiB, components: components.sort((a: any, b: any) => b.mib - a.mib) };
}

function parseSize(s: string): number {
  const m = /^([\d.]+)\s*([KMGT]i?B?|[kMGT]|B)?$/i.exec(s.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'B').toUpperCase().replace(/B$/, '');
  const pow = { '': 0, K: 1, KI: 1, M: 2, MI: 2, G: 3, GI: 3, T: 4, TI: 4 }[unit] ?? 0;
  const base = unit.endsWith('I') || ['KI', 'MI', 'GI', 'TI'].includes(unit) ? 1024 : unit === '' ? 1 : 1000;
  return (n * base ** pow) / 2 ** 20;
}

removeLeftoverCluster(env);
let mem: ReturnType<typeof memory> | undefined;
try {
  for (let i = 0; i < cycles; i++) {
    run('cold', deployArgs);
    for (let w = 0; w < 2; w++) run('warm', deployArgs);
    run('reset', ['reset', '--secrets', '--yes', '--json']);
    run('resetNoWait', ['reset', '--secrets', '--no-wait', '--yes', '--json']);
    // An ESO env consumer (restarted) and the injector's file (re-rendered), as the kind suite does.
    run('rotate', ['rotate', 'webapp/api', 'reports/api', '--json']);
    for (let s = 0; s < 2; s++) run('status', ['status', '--json']);
    if (i === 0) mem = memory();
    run('destroy', ['destroy', '--yes', '--json']);
  }
} finally {
  env.vaultlab(['destroy', '--yes']);
}
process.stdout.write(JSON.stringify({ distribution, cycles, samples, memory: mem }));
