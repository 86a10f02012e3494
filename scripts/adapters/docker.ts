// The Docker engine behind kind: reachable, and how much memory it has.
import { exec } from './exec.ts';

export interface DockerInfo {
  reachable: boolean;
  /** Why not, in Docker's words. */
  reason: string | undefined;
  memoryBytes: number | undefined;
  serverVersion: string | undefined;
}

export async function dockerInfo(): Promise<DockerInfo> {
  const r = await exec('docker', ['info', '--format', '{{json .}}'], { allowFail: true, timeoutMs: 20_000 }).catch((err: Error) => ({ code: 127, stdout: '', stderr: err.message }));
  if (r.code !== 0) {
    const reason = (r.stderr || r.stdout).trim().split('\n').find((l) => /cannot connect|daemon|permission|not found|ENOENT/i.test(l)) ?? (r.stderr.trim().split('\n')[0] || `docker info exited ${r.code}`);
    return { reachable: false, reason: reason.trim(), memoryBytes: undefined, serverVersion: undefined };
  }
  try {
    const j = JSON.parse(r.stdout);
    if (j.ServerErrors?.length) return { reachable: false, reason: String(j.ServerErrors[0]), memoryBytes: undefined, serverVersion: undefined };
    return { reachable: true, reason: undefined, memoryBytes: j.MemTotal, serverVersion: j.ServerVersion };
  } catch {
    return { reachable: true, reason: undefined, memoryBytes: undefined, serverVersion: undefined };
  }
}

export const DOCKER_FIX = 'Start Docker (Docker Desktop, or `sudo systemctl start docker`), then re-run. `vaultlab doctor` checks the machine.';
