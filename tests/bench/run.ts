// `npm run bench`: every benchmark, each measured side by side with its baseline in one run,
// printed as ratios against the targets. Exits 1 when a target is missed.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchStartup } from './startup.bench.ts';

interface Result {
  name: string;
  line: string;
  ok: boolean;
  /** Could not run here (said as `skipped:` in line); not a miss. */
  skipped?: boolean;
}
const results: Result[] = [];

const s = benchStartup();
results.push({
  name: 'startup',
  line: `node -e 0 ${s.baselineMs.toFixed(1)} ms | vaultlab --help ${s.cliMs.toFixed(1)} ms (without compile cache ${s.coldMs.toFixed(1)} ms, ${(s.coldMs / s.baselineMs).toFixed(2)}x) | ratio ${s.ratio.toFixed(2)}x (target < 4x)`,
  ok: s.ratio < 4,
});

// Benchmarks that need a real OpenBao; each module exports `bench(): Promise<Result[]>`.
// deploy.bench.ts: on real kind clusters (VAULTLAB_BENCH_DEPLOY=0 leaves it out).
for (const file of ['seed.bench.ts', 'reset.bench.ts', 'creds.bench.ts', 'sa-tokens.bench.ts', 'deploy.bench.ts']) {
  const path = join(import.meta.dirname, file);
  if (!existsSync(path)) continue;
  const mod = (await import(path)) as { bench?: () => Promise<Result[]> };
  if (typeof mod.bench === 'function') results.push(...(await mod.bench()));
}

console.log('\nvaultlab benchmarks');
for (const r of results) console.log(`  ${r.skipped ? 'skip' : r.ok ? 'ok  ' : 'MISS'} ${r.name.padEnd(14)} ${r.line}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
