// Per-cluster local state: `.vaultlab/<cluster>/`, directory 0700, files 0600, written
// atomically (temp file, fsync, rename), git-ignored, and locked so two runs never share it.
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync, chmodSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VaultlabError } from './errors.ts';

export class StateDir {
  readonly path: string;
  constructor(path: string) {
    this.path = resolve(path);
  }

  ensure(): this {
    mkdirSync(this.path, { recursive: true, mode: 0o700 });
    chmodSync(this.path, 0o700);
    // Keep every state file out of git, wherever the state dir lives.
    const root = dirname(this.path);
    const ignore = join(root, '.gitignore');
    if (root.endsWith('.vaultlab') && !existsSync(ignore)) writeFileSync(ignore, '# vaultlab state: keys and tokens, never commit\n*\n', { mode: 0o600 });
    return this;
  }

  file(name: string): string {
    return join(this.path, name);
  }

  has(name: string): boolean {
    return existsSync(this.file(name));
  }

  read(name: string): string | undefined {
    return this.has(name) ? readFileSync(this.file(name), 'utf8') : undefined;
  }

  readJson<T>(name: string): T | undefined {
    const text = this.read(name);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new VaultlabError(`state file ${this.file(name)} is not valid JSON`, { cause: err, hint: 'Restore it from your backup, or remove it if you know it is obsolete.' });
    }
  }

  /** Atomic, durable, 0600. With `exclusive`, refuses to replace an existing file. */
  write(name: string, content: string, opts: { exclusive?: boolean } = {}): string {
    this.ensure();
    const target = this.file(name);
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    if (opts.exclusive && existsSync(target)) {
      throw new VaultlabError(`${target} already exists and vaultlab never overwrites it`, { hint: 'Move it somewhere safe first if it belongs to an older Vault.' });
    }
    const tmp = `${target}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, target);
    const dirFd = openSync(this.path, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return target;
  }

  writeJson(name: string, value: unknown, opts: { exclusive?: boolean } = {}): string {
    return this.write(name, `${JSON.stringify(value, null, 2)}\n`, opts);
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  /**
   * Every state file must be private: a 0644 key file is a finding, not a detail. Lists every
   * file and folder of the state dir that others may read (key shares, tokens, the kubeconfig,
   * whose kind copy holds a client key, the TLS keys under tls/), each with the chmod that fixes it.
   */
  checkPermissions(): string[] {
    const problems: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          check(path, 0o700);
          walk(path);
        } else if (entry.isFile()) check(path, 0o600);
      }
    };
    const check = (path: string, want: number) => {
      const mode = statSync(path).mode & 0o777;
      if (mode & 0o077) problems.push(`${path} has mode ${mode.toString(8)}; run: chmod ${want.toString(8)} ${path}`);
    };
    if (!existsSync(this.path)) return problems;
    check(this.path, 0o700);
    walk(this.path);
    return problems;
  }

  /**
   * An exclusive lock for one run. A lock left by a dead process is taken over.
   * Returns the release function.
   */
  lock(command: string): () => void {
    // Made for this run only: removed again on release when the run left nothing in it (a
    // deploy whose preflight failed leaves no empty .vaultlab/<cluster>/ behind).
    const fresh = !existsSync(this.path);
    const root = dirname(this.path);
    const freshRoot = !existsSync(root);
    this.ensure();
    const lockFile = this.file('lock');
    const content = JSON.stringify({ pid: process.pid, command, since: new Date().toISOString() });
    for (let attempt = 0; attempt < 5; attempt++) {
      // Written in full under a private name, then linked into place: link() fails when a lock
      // exists, and a lock that exists is never half-written.
      const tmp = `${lockFile}.${process.pid}.tmp`;
      writeFileSync(tmp, content, { mode: 0o600 });
      try {
        linkSync(tmp, lockFile);
        rmSync(tmp, { force: true });
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          process.removeListener('exit', release);
          // Only our own lock: never one a later run holds.
          if (existsSync(lockFile) && readFileSync(lockFile, 'utf8') === content) rmSync(lockFile, { force: true });
          if (fresh) removeIfEmpty(this.path, freshRoot ? root : undefined);
        };
        process.once('exit', release);
        return release;
      } catch (err) {
        rmSync(tmp, { force: true });
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        let text = '';
        let holder: { pid?: number; command?: string; since?: string } = {};
        try {
          text = readFileSync(lockFile, 'utf8');
          holder = JSON.parse(text);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
          // Unreadable: a run that died between creating and writing it, or one writing it right now.
          if (Date.now() - statMtime(lockFile) < 2000) {
            sleepSync(100);
            continue;
          }
        }
        if (holder.pid && holder.pid !== process.pid && pidAlive(holder.pid)) {
          throw new VaultlabError(`another vaultlab run (pid ${holder.pid}, \`${holder.command ?? '?'}\` since ${holder.since ?? '?'}) holds ${lockFile}`, {
            hint: 'Wait for it to finish, or use another cluster name (--name) for a parallel run.',
          });
        }
        takeOverStale(lockFile, text);
      }
    }
    throw new VaultlabError(`could not take the lock ${lockFile}`);
  }
}

/**
 * Removes a stale lock, and only that one: it is first renamed to a name of our own, so of two
 * runs taking it over at once only one gets it; if what was renamed is not the stale lock that
 * was read (another run took over and locked in between), it is put back.
 */
function takeOverStale(lockFile: string, staleText: string): void {
  const mine = `${lockFile}.stale-${process.pid}`;
  try {
    renameSync(lockFile, mine);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  let got = '';
  try {
    got = readFileSync(mine, 'utf8');
  } catch {
    /* gone: nothing to put back */
  }
  if (got !== staleText) {
    try {
      linkSync(mine, lockFile); // put the live lock back, unless a newer one is already there
    } catch {
      /* EEXIST: someone holds the lock anyway */
    }
  }
  rmSync(mine, { force: true });
}

function statMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `--state-dir` or `.vaultlab/<cluster>` under the working directory. */
export function stateDirFor(cluster: string, override?: string, cwd: string = process.cwd()): StateDir {
  return new StateDir(override ? resolve(cwd, override) : join(cwd, '.vaultlab', cluster));
}

/** Removes `dir` when nothing is in it, then `root` (a .vaultlab this run made) when only its .gitignore is left. */
function removeIfEmpty(dir: string, root: string | undefined): void {
  try {
    if (readdirSync(dir).length > 0) return;
    rmSync(dir, { recursive: true, force: true });
    if (root && readdirSync(root).every((f) => f === '.gitignore')) rmSync(root, { recursive: true, force: true });
  } catch {
    /* gone already, or not ours to judge: leave it */
  }
}
