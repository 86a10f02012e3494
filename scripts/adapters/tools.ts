// The command-line tools vaultlab drives, their versions and the minimums it needs.
import { exec } from './exec.ts';

export interface ToolCheck {
  name: string;
  found: boolean;
  version: string | undefined;
  minimum: string;
  ok: boolean;
  fix: string;
}

const TOOLS: Record<string, { args: string[]; minimum: string; fix: string; optional?: boolean }> = {
  kind: { args: ['version'], minimum: '0.30.0', fix: 'Install kind >= 0.30: https://kind.sigs.k8s.io/docs/user/quick-start/#installation' },
  helm: { args: ['version', '--short'], minimum: '3.14.0', fix: 'Install helm >= 3.14: https://helm.sh/docs/intro/install/' },
  kubectl: { args: ['version', '--client'], minimum: '1.28.0', fix: 'Optional: install kubectl to look around (vaultlab itself talks to the API directly).', optional: true },
  docker: { args: ['--version'], minimum: '20.10.0', fix: 'Install Docker: https://docs.docker.com/get-docker/' },
};

export function parseVersion(text: string): string | undefined {
  return /v?(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

export async function checkTool(name: keyof typeof TOOLS | string): Promise<ToolCheck> {
  const spec = TOOLS[name]!;
  const r = await exec(name, spec.args, { allowFail: true, timeoutMs: 15_000 }).catch(() => undefined);
  const version = r && r.code === 0 ? parseVersion(r.stdout + r.stderr) : undefined;
  const found = version !== undefined;
  return { name, found, version, minimum: spec.minimum, ok: found ? versionAtLeast(version, spec.minimum) : !!spec.optional, fix: spec.fix };
}
