// Starts a real PostgreSQL server for the tests: Debian's `postgresql` binaries (initdb,
// postgres, psql), a temporary data directory, loopback only, a free port; stop() kills it and
// removes its files. Postgres refuses to run as root: when the tests run as root the server runs
// as `nobody` (setpriv), its directory owned by that user. Passwords reach psql and initdb
// through the environment or a 0600 file, never argv. Without the binaries, postgresBinDir()
// says why, and the suite prints `skipped: <reason>`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './bao.ts';

/** Where Debian's postgresql package puts the server binaries (one folder per major version). */
const DEBIAN_ROOT = '/usr/lib/postgresql';

/** The binaries' folder (VAULTLAB_PG_BIN, else the newest /usr/lib/postgresql/<major>/bin), or why there is none. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): { dir: string } | { skip: string } {
  const want = ['initdb', 'postgres', 'psql'];
  const has = (dir: string) => want.every((b) => existsSync(join(dir, b)));
  if (env.VAULTLAB_PG_BIN) return has(env.VAULTLAB_PG_BIN) ? { dir: env.VAULTLAB_PG_BIN } : { skip: `VAULTLAB_PG_BIN=${env.VAULTLAB_PG_BIN} lacks ${want.join('/')}` };
  if (!existsSync(DEBIAN_ROOT)) return { skip: `no PostgreSQL server binaries (${DEBIAN_ROOT} missing): apt-get install postgresql (.ci/run does)` };
  const majors = readdirSync(DEBIAN_ROOT).filter((d) => /^[0-9]+$/.test(d)).sort((a, b) => Number(b) - Number(a));
  for (const m of majors) if (has(join(DEBIAN_ROOT, m, 'bin'))) return { dir: join(DEBIAN_ROOT, m, 'bin') };
  return { skip: `no PostgreSQL server binaries under ${DEBIAN_ROOT}/<major>/bin: apt-get install postgresql (.ci/run does)` };
}

const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = () => process.getuid?.() === 0;

/** Runs a Postgres binary as a non-root user when we are root (Postgres refuses root). */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  return asRoot() ? ['setpriv', [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--', bin, ...args]] : [bin, args];
}

export interface SqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PostgresServer {
  host: string;
  port: number;
  /** The bootstrap superuser and its password (the tests' own administration, not vaultlab's). */
  superuser: string;
  superPassword: string;
  /** psql as `user` (password through PGPASSWORD, SQL on stdin), unaligned tuples only; stops at the first error. */
  sql(user: string, password: string, sql: string, database?: string): SqlResult;
  /** psql as the superuser; throws on failure. */
  admin(sql: string, database?: string): string;
  stop(): Promise<void>;
  logs(): string;
}

export async function startPostgres(opts: { binDir: string; timeoutMs?: number }): Promise<PostgresServer> {
  const bin = (b: string) => join(opts.binDir, b);
  const dir = mkdtempSync(join(tmpdir(), 'vaultlab-pg-'));
  const data = join(dir, 'data');
  const superuser = 'postgres';
  const superPassword = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${superPassword}\n`, { mode: 0o600 });
  if (asRoot()) {
    chownSync(dir, NOBODY.uid, NOBODY.gid);
    chownSync(pwfile, NOBODY.uid, NOBODY.gid);
  }
  chmodSync(dir, 0o700);
  const [initCmd, initArgs] = asServerUser(bin('initdb'), ['-D', data, '-U', superuser, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--no-instructions']);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
  rmSync(pwfile, { force: true });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}):\n${init.stderr}${init.stdout}`);
  }
  const port = await freePort();
  const [cmd, args] = asServerUser(bin('postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']);
  let output = '';
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));

  const sql = (user: string, password: string, text: string, database = 'postgres'): SqlResult => {
    // The SQL goes on stdin (it may hold a password: CREATE ROLE ... PASSWORD), never argv.
    const r = spawnSync(bin('psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-f', '-'], {
      encoding: 'utf8',
      input: text,
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5', PGSSLMODE: 'disable' },
    });
    return { code: r.status ?? 1, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  };
  const admin = (text: string, database?: string) => {
    const r = sql(superuser, superPassword, text, database);
    if (r.code !== 0) throw new Error(`psql as ${superuser} failed: ${r.stderr}`);
    return r.stdout;
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postgres exited with ${child.exitCode}:\n${output}`);
    }
    if (sql(superuser, superPassword, 'SELECT 1').code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres on 127.0.0.1:${port} did not accept connections:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    host: '127.0.0.1',
    port,
    superuser,
    superPassword,
    sql,
    admin,
    logs: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          // SIGINT: "fast" shutdown (disconnect clients, no wait for them).
          child.kill('SIGINT');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
