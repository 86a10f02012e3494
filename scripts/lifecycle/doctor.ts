// doctor: the machine before a deploy, the environment after one. Every finding has a fix.
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import type { Finding } from '../steps/preflight.ts';
import { machineFindings } from '../steps/preflight.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import type { StatusReport } from './status.ts';
import { decodeEsoError } from '../steps/verify.ts';

/** kind's documented minimums for many nodes' worth of file watches. */
export const INOTIFY = { max_user_watches: 524288, max_user_instances: 512 };

export function inotifyFindings(procRoot = '/proc'): Finding[] {
  const out: Finding[] = [];
  for (const [name, min] of Object.entries(INOTIFY)) {
    const file = `${procRoot}/sys/fs/inotify/${name}`;
    if (!existsSync(file)) continue;
    const value = Number(readFileSync(file, 'utf8').trim());
    out.push({ ok: value >= min, severity: 'warning', what: `fs.inotify.${name} = ${value} (kind recommends >= ${min})`, fix: `sudo sysctl fs.inotify.${name}=${min} (persist it in /etc/sysctl.d/99-kind.conf)` });
  }
  return out;
}

export function diskFinding(path: string, minGiB = 10): Finding {
  const s = statfsSync(path);
  const gib = (s.bavail * s.bsize) / 2 ** 30;
  return { ok: gib >= minGiB, severity: 'warning', what: `${gib.toFixed(1)} GiB free on ${path} (${minGiB} GiB recommended for images)`, fix: 'Free disk space: `docker system prune` removes unused images.' };
}

export async function doctorMachine(plan: Plan, state: StateDir): Promise<Finding[]> {
  const findings = await machineFindings({ plan });
  findings.push(...inotifyFindings());
  findings.push(diskFinding(existsSync('/var/lib/docker') ? '/var/lib/docker' : process.cwd()));
  for (const p of state.checkPermissions()) findings.push({ ok: false, severity: 'error', what: `state file not private: ${p}`, fix: p.split('; run: ')[1] ?? 'chmod 600 it' });
  return findings;
}

/** The environment's status checks as findings, ESO error reasons decoded into causes. */
export function doctorEnvironment(plan: Plan, status: StatusReport): Finding[] {
  return status.checks.map((c) => {
    const es = /^ExternalSecret ([^/]+)\//.exec(c.name);
    const ns = es && plan.namespaces.find((n) => n.name === es[1]);
    if (!c.ok && ns) {
      const d = decodeEsoError(c.detail, ns, plan);
      return { ok: false, severity: 'error' as const, what: `${c.name}: ${d.cause}`, fix: d.fix };
    }
    return { ok: c.ok, severity: 'error' as const, what: `${c.name}: ${c.detail}`, ...(c.fix ? { fix: c.fix } : {}) };
  });
}
