// Issuing 100 dynamic database leases against a real OpenBao + PostgreSQL, side by side in one run:
//   (a) vaultlab's path: issueDatabaseCredentials, one keep-alive client, one lease after another;
//   (b) the reference way: one `bao read database/creds/<role>` process per lease, address and token
//       in the environment (BAO_ADDR/VAULT_ADDR, BAO_TOKEN), never argv.
// Each lease is a real CREATE ROLE in Postgres, so both pay the same server work; the difference
// is a process start (and a TLS-less HTTP connection) per lease. `vaultlab creds` as a process is
// timed beside them (median of 5), since a human runs it once. Target: (a) at least 3x faster.
// Without Postgres binaries it says `skipped:` with the reason.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startBaoDev, baoBinary } from '../harness/bao.ts';
import { startPostgres, postgresBinDir } from '../harness/postgres.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfigText, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { sampleInitSql, sampleTable } from '../../scripts/plan/databases.ts';
import { configureVault } from '../../scripts/vault/configure.ts';
import { issueDatabaseCredentials } from '../../scripts/vault/database-creds.ts';

const N = 100;
const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  name: string;
  line: string;
  ok: boolean;
  skipped?: boolean;
}

const config = (port: number) => `
[passwords]
bench_editor = ""
[[apps]]
name = "bench"
namespace = "bench"
[[databases]]
name = "bench"
where = "127.0.0.1:${port}"
database = "bench"
editor_password = "bench_editor"
[[databases.roles]]
name = "bench-app"
app = "bench"
group_role = "bench_app"
`;

export async function bench(): Promise<Result[]> {
  const bin = postgresBinDir();
  if ('skip' in bin) return [{ name: 'db leases', line: `skipped: ${bin.skip}`, ok: true, skipped: true }];
  const [pg, bao] = await Promise.all([startPostgres({ binDir: bin.dir }), startBaoDev()]);
  const client = new VaultClient({ address: bao.address, token: bao.token });
  try {
    const password = randomBytes(18).toString('base64url');
    pg.admin(`CREATE ROLE vaultlab_editor WITH LOGIN CREATEROLE PASSWORD '${password}'`);
    pg.admin('CREATE DATABASE bench OWNER vaultlab_editor');
    pg.admin(sampleInitSql({ connection: 'bench', namespace: '', name: '', image: '', database: 'bench', editorUsername: 'vaultlab_editor', passwordSecret: '', groupRoles: [{ role: 'bench_app', table: sampleTable('bench_app') }] }), 'bench');
    pg.admin('GRANT bench_app TO vaultlab_editor WITH ADMIN OPTION');
    const env = { VAULTLAB_PASSWORD_BENCH_EDITOR: password };
    const text = config(pg.port);
    await configureVault(client, buildPlan(loadConfigText(text, 'config.toml', { env })), { passwords: { bench_editor: password } });

    // Warm both paths once (Postgres's first CREATE ROLE, the OS page cache of the bao binary).
    await issueDatabaseCredentials(client, { role: 'bench-app' });
    const baoEnv = { ...process.env, BAO_ADDR: bao.address, VAULT_ADDR: bao.address, BAO_TOKEN: bao.token, VAULT_TOKEN: bao.token };
    const baoRead = () => spawnSync(baoBinary(), ['read', '-format=json', 'database/creds/bench-app'], { env: baoEnv, encoding: 'utf8' });
    if (baoRead().status !== 0) throw new Error('bao read database/creds/bench-app failed');

    const t0 = performance.now();
    for (let i = 0; i < N; i++) await issueDatabaseCredentials(client, { role: 'bench-app' });
    const ours = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; i < N; i++) {
      const r = baoRead();
      if (r.status !== 0 || !JSON.parse(r.stdout).data?.username) throw new Error(`bao read: ${r.stderr}`);
    }
    const reference = performance.now() - t1;

    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-bench-creds-'));
    writeFileSync(join(dir, 'config.toml'), text);
    const cli: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = spawnSync(process.execPath, [CLI, 'creds', 'bench-app', '--json', '--config', join(dir, 'config.toml'), '--vault-addr', bao.address], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, ...env, NO_COLOR: '1', VAULT_TOKEN: bao.token, VAULT_ADDR: '', BAO_ADDR: '', BAO_TOKEN: '' },
      });
      if (r.status !== 0) throw new Error(`vaultlab creds: ${r.stderr}`);
      cli.push(performance.now() - t);
    }
    const users = Number(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"));
    await client.put('sys/leases/revoke-prefix/database/creds/bench-app', {});
    const ratio = reference / ours;
    return [
      {
        name: 'db leases',
        line: `${N} leases: vaultlab ${ours.toFixed(0)} ms (${(ours / N).toFixed(1)} ms each) | bao read per lease ${reference.toFixed(0)} ms (${(reference / N).toFixed(1)} ms each) | ratio ${ratio.toFixed(1)}x (target >= 3x); \`vaultlab creds\` process ${median(cli).toFixed(0)} ms; ${users} Postgres users created`,
        ok: ratio >= 3 && users >= 2 * N,
      },
    ];
  } finally {
    client.close();
    await Promise.all([bao.stop(), pg.stop()]);
  }
}

// Run alone: node tests/bench/creds.bench.ts
if (import.meta.main) {
  for (const r of await bench()) console.log(`${r.skipped ? 'skip' : r.ok ? 'ok  ' : 'MISS'} ${r.name.padEnd(14)} ${r.line}`);
}
