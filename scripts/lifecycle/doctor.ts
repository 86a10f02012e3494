// doctor: the machine before a deploy (Docker and its memory, tool versions, free host ports,
// inotify limits, disk, private state files), the environment after one (status checks with
// ESO's error reasons decoded into causes). Every finding that is not ok carries its fix.
import { dockerInfo } from '../adapters/docker.ts';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import type { Finding } from '../steps/preflight.ts';
import { machineFindings, portFree } from '../steps/preflight.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import type { StatusReport } from './status.ts';
import type { Kube } from '../adapters/kube.ts';
import type { VaultClient } from '../adapters/vault.ts';
import { diagnoseEso, latestEsoWarning } from './eso-diagnose.ts';

export type { Finding };

/** What kind's "known issues" page asks for: enough inotify watches and instances for the nodes. */
export const INOTIFY = { max_user_watches: 524288, max_user_instances: 512 } as const;

export interface InotifyValue {
  name: keyof typeof INOTIFY;
  value: number;
  minimum: number;
}

export function readInotify(procRoot = '/proc'): InotifyValue[] {
  const out: InotifyValue[] = [];
  for (const [name, minimum] of Object.entries(INOTIFY) as [keyof typeof INOTIFY, number][]) {
    const file = `${procRoot}/sys/fs/inotify/${name}`;
    if (!existsSync(file)) continue;
    const value = Number(readFileSync(file, 'utf8').trim());
    if (Number.isFinite(value)) out.push({ name, value, minimum });
  }
  return out;
}

export function inotifyFindings(procRoot = '/proc'): Finding[] {
  return readInotify(procRoot).map(({ name, value, minimum }) => ({
    ok: value >= minimum,
    severity: 'warning',
    what: `fs.inotify.${name} = ${value} (kind needs >= ${minimum}; too few makes pods fail with "too many open files")`,
    fix: `sudo sysctl fs.inotify.${name}=${minimum}, and persist it: echo fs.inotify.${name}=${minimum} | sudo tee -a /etc/sysctl.d/99-kind.conf`,
  }));
}

export function diskFinding(path: string, minGiB = 10): Finding {
  const s = statfsSync(path);
  const gib = (s.bavail * s.bsize) / 2 ** 30;
  return { ok: gib >= minGiB, severity: 'warning', what: `${gib.toFixed(1)} GiB free on ${path} (${minGiB} GiB recommended for the node and app images)`, fix: 'Free disk space: `docker system prune` removes unused images and stopped containers.' };
}

export async function doctorMachine(plan: Plan, state: StateDir): Promise<Finding[]> {
  const findings = await machineFindings({ plan });
  if (plan.cluster.provider === 'kind') {
    // preflight checks the host ports only once Docker answers (a running kind cluster of this
    // name holds them legitimately); before a deploy they matter either way.
    if (!findings.some((f) => /port \d+/.test(f.what))) {
      for (const [what, port] of Object.entries(plan.cluster.hostPorts)) {
        if (plan.profile === 'production' && what === 'vault') continue; // no NodePort in production
        const free = await portFree(port);
        findings.push({ ok: free, severity: 'error', what: free ? `host port ${port} (${what}) is available` : `port ${port} (cluster.ports.${what}) is already in use`, fix: `Stop what listens there (\`lsof -i :${port}\`), or set [cluster.ports] ${what} = <another port>.` });
      }
    }
    findings.push(...inotifyFindings());
    // Docker's own data root (DockerRootDir: /var/lib/docker by default, often moved), where the
    // node and app images go; the working directory when Docker does not answer.
    const docker = await dockerInfo();
    findings.push(diskFinding(docker.rootDir && existsSync(docker.rootDir) ? docker.rootDir : process.cwd()));
    if (docker.reachable) findings.push(await imagesFinding(plan));
  }
  for (const p of state.checkPermissions()) findings.push({ ok: false, severity: 'error', what: `state file not private: ${p.split('; run: ')[0]}`, fix: p.split('; run: ')[1] ?? 'chmod 600 it' });
  return findings.map(withFix);
}

/** Images a deploy runs that the host's Docker does not hold: pulled at deploy time, or (offline) never. */
export async function imagesFinding(plan: Plan): Promise<Finding> {
  try {
    const { imageStatus } = await import('./images.ts');
    const images = await imageStatus(plan);
    const missing = images.filter((i) => !i.present).map((i) => i.image);
    return missing.length
      ? {
          ok: false,
          severity: 'warning',
          what: `${missing.length} of ${images.length} image(s) a deploy runs are not in the local Docker: ${missing.join(', ')} (the nodes pull them; a machine without a registry cannot)`,
          fix: 'With a registry: nothing to do (or `docker pull` them, then `vaultlab deploy --preload`). Offline: `docker load -i <file>` each, or set [images] mirror / overrides; `vaultlab images` lists them.',
        }
      : { ok: true, severity: 'warning', what: `all ${images.length} image(s) a deploy runs are in the local Docker (\`vaultlab deploy --preload\` loads them into kind)` };
  } catch (err) {
    return { ok: false, severity: 'warning', what: `cannot list the images a deploy runs: ${(err as Error).message}`, fix: 'Check helm and the [charts] sources: `vaultlab images`.' };
  }
}

/**
 * The environment's status checks as findings. A failing SecretStore or ExternalSecret is
 * decoded from ESO's latest Warning Event into its cause (role, policy, audience, path, key).
 */
export async function doctorEnvironment(plan: Plan, status: StatusReport, opts: { kube?: Kube | undefined; vault?: VaultClient | undefined } = {}): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const c of status.checks) {
    const m = /^(ExternalSecret|SecretStore) ([^/]+)\/(.+)$/.exec(c.name);
    const ns = m && plan.namespaces.find((n) => n.name === m[2]);
    // "missing" and "no condition yet" are not ESO errors: ESO is absent or has not run.
    if (!c.ok && m && ns && !/^(missing|no condition yet)/.test(c.detail)) {
      const kind = m[1] as 'ExternalSecret' | 'SecretStore';
      const event = opts.kube ? await latestEsoWarning(opts.kube, kind, ns.name, m[3]!) : undefined;
      const d = await diagnoseEso({ plan, ns, kind, name: m[3]!, condition: c.detail.replace(/; last error: .*$/, ''), event, vault: opts.vault });
      out.push({ ok: false, severity: 'error', what: `${c.name}: ${d.cause} [ESO: ${d.evidence.length > 240 ? `${d.evidence.slice(0, 240)}...` : d.evidence}]`, fix: d.fix });
      continue;
    }
    out.push(withFix({ ok: c.ok, severity: c.severity ?? 'error', what: `${c.name}: ${c.detail}`, ...(c.fix ? { fix: c.fix } : {}) }));
  }
  return out;
}

function withFix(f: Finding): Finding {
  return f.ok || f.fix ? f : { ...f, fix: 'Re-run `vaultlab deploy`; `vaultlab status` shows the details.' };
}

export function formatFindings(findings: Finding[]): string[] {
  return findings.map((f) => `  ${f.ok ? 'ok  ' : f.severity === 'error' ? 'FAIL' : 'warn'} ${f.what}${f.ok || !f.fix ? '' : `\n       fix: ${f.fix}`}`);
}
