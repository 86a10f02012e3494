// The command-line tools vaultlab drives: where they are, their versions and the minimums it
// needs (kind >= 0.30, helm >= 3.14; kubectl is optional: vaultlab talks to the API itself).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { exec } from './exec.ts';

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
  const r = await exec(path, TOOLS[name].args, { allowFail: true, timeoutMs: 15_000 }).catch(() => undefined);
  return judgeTool(name, path, r ? r.stdout + r.stderr : undefined);
}
