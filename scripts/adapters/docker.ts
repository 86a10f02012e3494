// The Docker engine behind kind: reachable, how much memory it has, which images it holds.
import { exec, DOCKER_FIX, dockerDown } from './exec.ts';

export { DOCKER_FIX, dockerDown };

export interface DockerInfo {
  reachable: boolean;
  /** Why not, in Docker's words. */
  reason: string | undefined;
  memoryBytes: number | undefined;
  serverVersion: string | undefined;
  /** Where the engine keeps images and containers (DockerRootDir): what the disk check measures. */
  rootDir?: string | undefined;
}

/** `docker info` output (exit code, stdout, stderr) -> reachability, judged without guessing. */
export function parseDockerInfo(code: number, stdout: string, stderr: string): DockerInfo {
  const down = (reason: string): DockerInfo => ({ reachable: false, reason, memoryBytes: undefined, serverVersion: undefined });
  if (code !== 0) {
    const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
    return down(lines.find((l) => dockerDown(l) || /daemon|permission denied|not found|ENOENT/i.test(l)) ?? lines[0] ?? `docker info exited ${code}`);
  }
  try {
    const j = JSON.parse(stdout) as { ServerErrors?: string[]; MemTotal?: number; ServerVersion?: string; DockerRootDir?: string };
    if (j.ServerErrors?.length) return down(String(j.ServerErrors[0]));
    return { reachable: true, reason: undefined, memoryBytes: j.MemTotal, serverVersion: j.ServerVersion, rootDir: j.DockerRootDir };
  } catch {
    return { reachable: true, reason: undefined, memoryBytes: undefined, serverVersion: undefined };
  }
}

export async function dockerInfo(): Promise<DockerInfo> {
  const r = await exec('docker', ['info', '--format', '{{json .}}'], { allowFail: true, timeoutMs: 20_000 }).catch((err: Error) => ({ code: 127, stdout: '', stderr: err.message }));
  return parseDockerInfo(r.code, r.stdout, r.stderr);
}

/**
 * The image ID (sha256:...) of each of `images` the local Docker holds, in one call; absent
 * ones are left out.
 */
export async function dockerImageIds(images: string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  if (!images.length) return ids;
  // One inspect for all; it prints the found ones (in order, by tag) and fails for the rest.
  const r = await exec('docker', ['image', 'inspect', '--format', '{{.Id}} {{range .RepoTags}}{{.}},{{end}}', ...images], { allowFail: true, timeoutMs: 30_000 });
  const byTag = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [id, tags] = line.trim().split(' ');
    if (id) for (const t of (tags ?? '').split(',').filter(Boolean)) byTag.set(t, id);
  }
  for (const i of images) {
    const id = byTag.get(i) ?? byTag.get(i.replace(/^docker\.io\/(library\/)?/, ''));
    if (id) ids.set(i, id);
  }
  // An image known by digest (repo@sha256:...) has no tag to match: ask for it alone.
  for (const i of images.filter((x) => !ids.has(x) && x.includes('@'))) {
    const one = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', i], { allowFail: true, timeoutMs: 20_000 });
    if (one.code === 0) ids.set(i, one.stdout.trim());
  }
  return ids;
}
