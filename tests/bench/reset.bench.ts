// `reset --secrets` with the bundled config against a real OpenBao: how long, how many writes.
// A presenter runs it between two talks, after the audience has changed a literal: each round
// tampers one literal first, so every round restores one and regenerates every random value.
// Target: seconds, not minutes: under 2 s (median of 5 rounds) here.
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

const ROUNDS = 5;

export async function bench(): Promise<{ name: string; line: string; ok: boolean }[]> {
  const bao = await startBao();
  try {
    const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
    const plan = buildPlan(loaded);
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-bench-')), 'state'));
    const client = new VaultClient({ address: bao.address });
    await vaultUp(client, plan, state, { passwords: loaded.passwords });
    const env = { loaded, plan, state, kube: undefined, kubeProblem: 'benchmark without a cluster', vault: client, forwards: [], close: async () => {} };
    const times: number[] = [];
    let writes = 0;
    let paths = 0;
    let counts = { rotated: 0, updated: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      await client.kvPatch(plan.seeding.mount, 'registry/creds', { username: `tampered-${i}` });
      const before = client.writes;
      const t0 = performance.now();
      const r = await resetSecrets(env);
      times.push(performance.now() - t0);
      writes = client.writes - before;
      paths = new Set(r.seed.entries.filter((e) => e.action !== 'unchanged').map((e) => e.path)).size;
      counts = { rotated: r.seed.counts.rotated, updated: r.seed.counts.updated };
    }
    client.close();
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(ROUNDS / 2)]!;
    const randoms = writes - paths;
    return [
      {
        name: 'reset',
        line: `reset --secrets (bundled config, ${plan.seeding.entries.length} keys): median ${median.toFixed(0)} ms, max ${sorted[ROUNDS - 1]!.toFixed(0)} ms over ${ROUNDS} rounds; ${writes} write request(s) per round = ${paths} KV path write(s) + ${randoms} random draw(s) (${counts.rotated} rotated, ${counts.updated} restored) (target < 2000 ms)`,
        ok: median < 2000,
      },
    ];
  } finally {
    await bao.stop();
  }
}

if (import.meta.main) for (const r of await bench()) console.log(`${r.ok ? 'ok  ' : 'MISS'} ${r.name}: ${r.line}`);
