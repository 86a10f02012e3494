// CLI start-up: `vaultlab --help` against `node -e 0`, interleaved in one run so machine load
// hits both alike. Target: under 4x.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'vaultlab.js');

function time(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: 'ignore', env });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Warm = Node's compile cache populated (every run after the first); cold = cache disabled. */
export function benchStartup(rounds = 15): { baselineMs: number; cliMs: number; coldMs: number; ratio: number } {
  const cold = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' };
  time(['-e', '0']);
  time([CLI, '--help']); // populate the file and compile caches
  const base: number[] = [];
  const cli: number[] = [];
  const uncached: number[] = [];
  for (let i = 0; i < rounds; i++) {
    base.push(time(['-e', '0']));
    cli.push(time([CLI, '--help']));
    uncached.push(time([CLI, '--help'], cold));
  }
  const baselineMs = median(base);
  const cliMs = median(cli);
  return { baselineMs, cliMs, coldMs: median(uncached), ratio: cliMs / baselineMs };
}

if (import.meta.main) {
  const r = benchStartup();
  console.log(`startup: node -e 0 ${r.baselineMs.toFixed(1)} ms, vaultlab --help ${r.cliMs.toFixed(1)} ms (no compile cache: ${r.coldMs.toFixed(1)} ms), ratio ${r.ratio.toFixed(2)}x (target < 4x)`);
}
