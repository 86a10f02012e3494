// `reset --secrets` with the bundled config against a real OpenBao: how long, how many writes.
// Target: seconds, not minutes (a presenter runs it between two talks): under 2 s here.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao } from '../harness/bao.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { vaultUp } from '../../scripts/vault/up.ts';
import { resetSecrets } from '../../scripts/lifecycle/reset.ts';

export async function bench(): Promise<{ name: string; line: string; ok: boolean }[]> {
  const bao = await startBao();
  try {
    const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
    const plan = buildPlan(loaded);
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-bench-')), 'state'));
    const client = new VaultClient({ address: bao.address });
    await vaultUp(client, plan, state, { passwords: loaded.passwords });
    const before = client.writes;
    const t0 = performance.now();
    const r = await resetSecrets({ loaded, plan, state, kube: undefined, kubeProblem: 'benchmark without a cluster', vault: client, forwards: [], close: async () => {} });
    const ms = performance.now() - t0;
    const writes = client.writes - before;
    client.close();
    return [{ name: 'reset', line: `reset --secrets (bundled config, ${plan.seeding.entries.length} keys): ${ms.toFixed(0)} ms, ${writes} write request(s) (${r.seed.counts.rotated} rotated, ${r.seed.counts.updated} restored) (target < 2000 ms)`, ok: ms < 2000 }];
  } finally {
    await bao.stop();
  }
}

if (import.meta.main) for (const r of await bench()) console.log(`${r.ok ? 'ok  ' : 'MISS'} ${r.name}: ${r.line}`);
