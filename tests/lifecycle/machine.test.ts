// doctor, status and destroy with the bundled (kind) config on this very machine: what they
// say about Docker, kind, helm, inotify, disk and host ports. The assertions follow what the
// machine has: without a Docker engine the findings must say so, with their fix; with one,
// they must pass. kind comes from the test tool cache (tests/harness/kube/build.ts).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { dockerInfo, DOCKER_FIX } from '../../scripts/adapters/docker.ts';
import { INOTIFY, readInotify } from '../../scripts/lifecycle/doctor.ts';
import { ensureTool, binDir } from '../harness/kube/build.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');
ensureTool('kind');
const docker = await dockerInfo();
if (!docker.reachable) console.log(`note: no Docker engine here (${docker.reason}): the Docker-less behaviour is what these tests check`);

/** PATH with the cached kind (or without any kind: PATH entries holding one are dropped). */
function pathWith(kind: boolean): string {
  const entries = (process.env.PATH ?? '').split(delimiter).filter((p) => kind || !existsSync(join(p, 'kind')));
  return (kind ? [binDir(), ...entries] : entries).join(delimiter);
}

function vaultlab(args: string[], opts: { kind?: boolean; cwd?: string; env?: Record<string, string>; vaultPort?: number } = {}) {
  const cwd = opts.cwd ?? mkdtempSync(join(tmpdir(), 'vaultlab-machine-'));
  const name = `vaultlab-machine-${process.pid}`;
  let config = BUNDLED_CONFIG;
  if (opts.vaultPort) {
    config = join(cwd, 'config.toml');
    writeFileSync(config, readFileSync(BUNDLED_CONFIG, 'utf8').replace(/^vault = 8200 /m, `vault = ${opts.vaultPort} `));
  }
  const r = spawnSync(process.execPath, [CLI, ...args, '--config', config, '--name', name], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', CI: '', VAULT_ADDR: '', VAULT_TOKEN: '', PATH: pathWith(opts.kind ?? true), ...opts.env },
  });
  return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr, cwd, name };
}
const json = (r: { stdout: string; out: string }) => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON:\n${r.out}`);
  }
};

describe('this machine, with the bundled kind config', () => {
  it('doctor --machine: Docker, kind, helm, inotify (read from /proc), disk; each finding that is not ok with its fix', async () => {
    const r = vaultlab(['doctor', '--machine', '--json']);
    const j = json(r);
    const find = (re: RegExp) => j.machine.find((f: any) => re.test(f.what));
    if (docker.reachable) expect(find(/^Docker .* is running/)).toMatchObject({ ok: true });
    else {
      expect(find(/^Docker is not running/)).toMatchObject({ ok: false, severity: 'error', fix: DOCKER_FIX });
      expect(r.code).toBe(1);
    }
    expect(find(/^kind /)).toMatchObject({ ok: true, what: expect.stringMatching(/^kind \d+\.\d+\.\d+ \(need >= 0\.30\.0\)/) });
    // helm as the CLI sees it (the PATH it runs with).
    const helm = pathWith(true).split(delimiter).some((d) => existsSync(join(d, 'helm')));
    expect(find(/^helm/)).toMatchObject(helm ? { what: expect.stringMatching(/^helm \d/) } : { ok: false, what: 'helm not found', fix: expect.stringMatching(/Install helm/) });
    // inotify: the values in /proc, compared with kind's minimums.
    const values = readInotify();
    expect(values.map((v) => v.name)).toEqual(['max_user_watches', 'max_user_instances']);
    for (const v of values) {
      expect(v.value).toBe(Number(readFileSync(`/proc/sys/fs/inotify/${v.name}`, 'utf8')));
      expect(find(new RegExp(`^fs\\.inotify\\.${v.name} = ${v.value} `))).toMatchObject({ ok: v.value >= INOTIFY[v.name], severity: 'warning', fix: expect.stringContaining(`sysctl fs.inotify.${v.name}=${INOTIFY[v.name]}`) });
    }
    expect(find(/GiB free on /)).toMatchObject({ severity: 'warning' });
    // Host ports, with or without Docker: a port taken here is an error with its fix.
    expect(j.machine.filter((f: any) => /port (8200|8080)\b/.test(f.what))).toHaveLength(2);
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as AddressInfo).port;
    const taken = json(vaultlab(['doctor', '--machine', '--json'], { vaultPort: port }));
    busy.close();
    expect(taken.machine.find((f: any) => f.what === `port ${port} (cluster.ports.vault) is already in use`)).toMatchObject({ ok: false, severity: 'error', fix: expect.stringContaining(`lsof -i :${port}`) });
    expect(j.machine.filter((f: any) => !f.ok && !f.fix)).toEqual([]);
    expect(j.ok).toBe(j.machine.every((f: any) => f.ok || f.severity === 'warning'));
    expect(r.code).toBe(j.ok ? 0 : 1);
    // Human output: a fix line under every finding that is not ok.
    const human = vaultlab(['doctor', '--machine']);
    expect(human.stdout).toMatch(/^Machine \(kind\):/);
    if (!docker.reachable) expect(human.stdout).toContain(`FAIL Docker is not running`);
    expect(human.stdout).toMatch(/\n {7}fix: /);
  });

  it('status without the cluster: unhealthy (exit 1), the cluster check says why and how to fix it', () => {
    const r = vaultlab(['status', '--json']);
    expect(r.code).toBe(1);
    const j = json(r);
    const cluster = j.checks.find((c: any) => c.name === 'cluster');
    if (docker.reachable) expect(cluster).toMatchObject({ ok: false, detail: `kind cluster "${r.name}" does not exist`, fix: 'vaultlab deploy' });
    else expect(cluster).toMatchObject({ ok: false, detail: 'Docker is not running, so kind cannot reach its clusters', fix: DOCKER_FIX });
    expect(j.checks.find((c: any) => c.name === 'vault')).toMatchObject({ ok: false, detail: expect.stringMatching(/^unreachable/) });
  });

  it('destroy when the cluster cannot be there: exit 0 with a note when kind is missing (CI cleanup), state kept', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'vaultlab-machine-'));
    const stateDir = join(cwd, '.vaultlab', `vaultlab-machine-${process.pid}`);
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'cluster.json'), '{}');
    const r = vaultlab(['destroy', '--ci', '--json'], { kind: false, cwd });
    expect(r.code, r.out).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, action: 'nothing-to-do', removed: [], notes: [expect.stringMatching(/kind is not installed/), expect.stringMatching(/^kept /)] });
    expect(existsSync(stateDir)).toBe(true);
  });

  it(docker.reachable ? 'destroy of a cluster that does not exist: exit 0 and the state dir goes' : 'destroy while Docker is down: exit 1, nothing deleted, state kept, the fix named', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'vaultlab-machine-'));
    const stateDir = join(cwd, '.vaultlab', `vaultlab-machine-${process.pid}`);
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, 'cluster.json'), '{}');
    const r = vaultlab(['destroy', '--json'], { cwd });
    const j = json(r);
    if (docker.reachable) {
      expect(r.code).toBe(0);
      expect(j).toMatchObject({ action: 'nothing-to-do', notes: [expect.stringMatching(/does not exist/)] });
      expect(existsSync(stateDir)).toBe(false);
    } else {
      expect(r.code).toBe(1);
      expect(j).toMatchObject({ ok: false, error: expect.stringMatching(/cannot tell whether kind cluster .* exists: Docker is not running.*nothing was deleted/), hint: expect.stringContaining('Start Docker') });
      expect(existsSync(stateDir)).toBe(true);
    }
  });

  it('reset --full: refused without a terminal (exit 2), never asks in CI', () => {
    const refused = vaultlab(['reset', '--full']);
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/there is no terminal to ask\n {2}fix: Pass --yes/);
    if (docker.reachable) {
      console.log('skipped: reset --full in CI mode would deploy a kind cluster on this Docker machine (the e2e suite covers it)');
      return;
    }
    // Docker-less: no question asked; the destroy half cannot tell whether the cluster exists, and stops there.
    const ci = vaultlab(['reset', '--full', '--json'], { env: { CI: 'true' } });
    expect(ci.code).toBe(1);
    expect(ci.out).not.toMatch(/\[y\/N\]/);
    expect(json(ci)).toMatchObject({ ok: false, error: expect.stringMatching(/Docker is not running/) });
  });
});
