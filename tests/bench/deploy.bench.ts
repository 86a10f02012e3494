// The deploy section of `npm run bench`, on real kind clusters (the same offline image set and
// charts as the kind suite): cold deploy, warm re-deploy, reset --secrets (with its consumers, and
// --no-wait), rotate, status and destroy,
// each the median of several runs with min and max, the per-step breakdown of the --json
// reports, and the cluster's memory, printed beside the targets of issue #15. Where kind cannot
// run here it says `skipped:` with the reason.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { prepareKindRun } from '../e2e/runner-env.ts';

interface Result {
  name: string;
  line: string;
  ok: boolean;
  skipped?: boolean;
}
type Sample = { ms: number; steps?: Record<string, number> };

const TARGETS: Record<string, { ms: number; what: string }> = {
  cold: { ms: 60_000, what: 'cold deploy (no cluster yet, images present)' },
  warm: { ms: 1_000, what: 'warm re-deploy (nothing changed)' },
  reset: { ms: 15_000, what: 'reset --secrets, until every consumer holds the reset values (Deployments restarted, injected files re-rendered)' },
  resetNoWait: { ms: 1_000, what: 'reset --secrets --no-wait (Vault reset, re-syncs forced)' },
  rotate: { ms: 15_000, what: 'rotate webapp/api reports/api, until the env pod (restarted) and the injected file hold the new values' },
  status: { ms: 500, what: 'status (healthy)' },
  destroy: { ms: 3_000, what: 'destroy' },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

export async function bench(): Promise<Result[]> {
  if (process.env.VAULTLAB_BENCH_DEPLOY === '0') return [{ name: 'deploy', line: 'skipped: VAULTLAB_BENCH_DEPLOY=0', ok: true, skipped: true }];
  const run = await prepareKindRun();
  if ('skip' in run) return [{ name: 'deploy', line: `skipped: deploy benchmarks on kind: ${run.skip}`, ok: true, skipped: true }];
  let out;
  try {
    const args = [...run.prefix, process.execPath, join(import.meta.dirname, 'deploy-runner.ts')];
    out = spawnSync(args[0]!, args.slice(1), { env: run.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 });
  } finally {
    run.stop();
  }
  if (out.status !== 0) return [{ name: 'deploy', line: `the deploy benchmark failed (exit ${out.status}); see its log above`, ok: false }];
  const r = JSON.parse(out.stdout) as { distribution: string; cycles: number; samples: Record<string, Sample[]>; memory?: { nodeMiB: number; components: { pod: string; container: string; mib: number; requestMiB?: number }[] } };
  const results: Result[] = [];
  for (const [key, t] of Object.entries(TARGETS)) {
    const xs = r.samples[key] ?? [];
    if (!xs.length) continue;
    const ms = xs.map((x) => x.ms);
    const m = median(ms);
    const steps = xs[0]!.steps ? Object.keys(xs[0]!.steps).map((s) => `${s} ${secs(median(xs.map((x) => x.steps?.[s] ?? 0)))}`).join(', ') : '';
    results.push({
      name: `deploy:${key}`,
      line: `${t.what}: median ${secs(m)} (min ${secs(Math.min(...ms))}, max ${secs(Math.max(...ms))}, ${xs.length} runs) vs target ${secs(t.ms)}: ${(m / t.ms).toFixed(2)}x${steps ? `; steps (median): ${steps}` : ''}`,
      ok: m <= t.ms,
    });
  }
  if (r.memory) {
    const over = r.memory.components.filter((c) => c.requestMiB !== undefined && c.mib > c.requestMiB);
    const top = r.memory.components.slice(0, 6).map((c) => `${c.pod}/${c.container} ${c.mib} MiB${c.requestMiB !== undefined ? ` (request ${Math.round(c.requestMiB)})` : ''}`);
    results.push({
      name: 'deploy:memory',
      line: `demo cluster (${r.distribution}) node container ${Math.round(r.memory.nodeMiB)} MiB (docker stats); largest: ${top.join(', ')}; above their request: ${over.length ? over.map((c) => `${c.pod}/${c.container} ${c.mib}/${Math.round(c.requestMiB!)} MiB`).join(', ') : 'none'}`,
      ok: true,
    });
  }
  for (const x of results) x.line = `[${r.distribution}, ${r.cycles} cycles] ${x.line}`;
  return results;
}

if (import.meta.main) for (const r of await bench()) console.log(`${r.skipped ? 'skip' : r.ok ? 'ok  ' : 'MISS'} ${r.name}: ${r.line}`);
