// The command-line tools vaultlab drives: where they are, their versions and the minimums it
// needs (kind >= 0.30, helm >= 3.14; kubectl is optional: vaultlab talks to the API itself).
import { accessSync, constants, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { exec } from './exec.ts';
import { vaultlabCacheDir } from '../lib/cache-dir.ts';

export interface ToolCheck {
  name: string;
  /** Absolute path of the binary on PATH, if any. */
  path: string | undefined;
  found: boolean;
  /** x.y.z, or undefined when the binary is missing or prints no version we can read. */
  version: string | undefined;
  minimum: string;
  optional: boolean;
  ok: boolean;
  /** One line for a report: "helm 3.19.0 (need >= 3.14.0)", "kind not found", ... */
  what: string;
  fix: string;
}

export interface ToolSpec {
  args: string[];
  minimum: string;
  fix: string;
  optional?: boolean;
}

export const TOOLS: Record<'kind' | 'helm' | 'kubectl' | 'docker', ToolSpec> = {
  kind: { args: ['version'], minimum: '0.30.0', fix: 'Install kind >= 0.30: https://kind.sigs.k8s.io/docs/user/quick-start/#installation' },
  helm: { args: ['version', '--short'], minimum: '3.14.0', fix: 'Install helm >= 3.14: https://helm.sh/docs/intro/install/' },
  kubectl: { args: ['version', '--client'], minimum: '1.28.0', fix: 'Optional: install kubectl to look around (vaultlab itself talks to the API directly).', optional: true },
  docker: { args: ['--version'], minimum: '20.10.0', fix: 'Install Docker: https://docs.docker.com/get-docker/' },
};
export type ToolName = keyof typeof TOOLS;

/**
 * The first version in a tool's output, as x.y.z. Accepts "v3.19" (helm built without release
 * ldflags prints only major.minor) as 3.19.0.
 */
export function parseVersion(text: string): string | undefined {
  const m = /\bv?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? `${m[1]}.${m[2]}.${m[3] ?? '0'}` : undefined;
}

export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/** The executable `name` on PATH (like `command -v`), or undefined. */
export function findBinary(name: string, path: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Judges a tool from where it was found and what it printed (pure: tests feed real outputs). */
export function judgeTool(name: ToolName, path: string | undefined, output: string | undefined): ToolCheck {
  const spec = TOOLS[name];
  const optional = !!spec.optional;
  const version = output === undefined ? undefined : parseVersion(output);
  const base = { name, path, found: !!path, version, minimum: spec.minimum, optional, fix: spec.fix };
  if (!path) return { ...base, ok: optional, what: `${name} not found${optional ? ' (optional)' : ''}` };
  if (!version) return { ...base, ok: true, what: `${name} at ${path} (version unknown: \`${name} ${spec.args.join(' ')}\` printed none; need >= ${spec.minimum})` };
  const ok = versionAtLeast(version, spec.minimum) || optional;
  return { ...base, ok, what: `${name} ${version}${ok ? '' : ' is too old'} (need >= ${spec.minimum})` };
}

export async function checkTool(name: ToolName): Promise<ToolCheck> {
  const path = findBinary(name);
  if (!path) return judgeTool(name, undefined, undefined);
  const known = versionCache.get(path);
  if (known !== undefined) return judgeTool(name, path, known);
  const r = await exec(path, TOOLS[name].args, { allowFail: true, timeoutMs: 15_000 }).catch(() => undefined);
  const output = r ? r.stdout + r.stderr : undefined;
  if (r?.code === 0 && output !== undefined && parseVersion(output)) versionCache.set(path, output);
  return judgeTool(name, path, output);
}

/**
 * What each tool binary printed for its version, keyed by the file it resolves to and that file's
 * identity (device, inode, size, mtime): the same binary prints the same version, so preflight
 * runs `kind version`, `helm version` and `kubectl version` once per installed binary, not on
 * every deploy (each is a process start, 50-150 ms here). Any change to the file (an upgrade, a
 * re-pointed symlink) is a miss. ~/.cache/vaultlab/tool-versions.json (XDG_CACHE_HOME), 0600;
 * unreadable or unwritable is a miss, never an error. VAULTLAB_TOOL_CACHE=0 turns it off.
 */
export const versionCache = {
  file(): string {
    return join(vaultlabCacheDir(), 'tool-versions.json');
  },
  identity(path: string): string | undefined {
    try {
      const st = statSync(path);
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  },
  read(): Record<string, { identity: string; output: string }> {
    try {
      const j = JSON.parse(readFileSync(this.file(), 'utf8')) as unknown;
      return j && typeof j === 'object' ? (j as Record<string, { identity: string; output: string }>) : {};
    } catch {
      return {};
    }
  },
  get(path: string): string | undefined {
    if (process.env.VAULTLAB_TOOL_CACHE === '0') return undefined;
    const e = this.read()[path];
    const id = this.identity(path);
    return e && id && e.identity === id && typeof e.output === 'string' ? e.output : undefined;
  },
  set(path: string, output: string): void {
    if (process.env.VAULTLAB_TOOL_CACHE === '0') return;
    const id = this.identity(path);
    if (!id) return;
    try {
      const file = this.file();
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const all = { ...this.read(), [path]: { identity: id, output } };
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // Only a shortcut: the next preflight asks the tool again.
    }
  },
};
