// What every kind suite shares: is there a Docker engine, how much time is left, the config a
// suite deploys (the bundled demo environment, with the offline image and chart sources when the
// runner provides them: tests/e2e/run.ts), and running the vaultlab CLI as a user would.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import { dockerInfo } from '../../scripts/adapters/docker.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { BUNDLED_CONFIG, PROJECT_ROOT, loadConfig } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import type { Plan } from '../../scripts/plan/types.ts';

export interface Offline {
  node: string;
  images: { openbao: string; vault: string; eso: string; injector: string; vso: string; vsoRbacProxy: string; busybox: string; networkPolicies: string; postgres: string };
  charts: Record<'vault' | 'openbao' | 'external-secrets' | 'vault-secrets-operator', string>;
  vault: boolean;
}
export const offline: Offline | undefined = process.env.VAULTLAB_E2E_OFFLINE ? (JSON.parse(process.env.VAULTLAB_E2E_OFFLINE) as Offline) : undefined;

const docker = await dockerInfo();

/**
 * Why a suite cannot run here (printed as `skipped: <reason>`), or undefined. `minutes`: what it
 * needs here at most; refused when the runner's deadline leaves less.
 */
export function skipReason(suite: string, minutes: number, needs: { vault?: boolean } = {}): string | undefined {
  let reason: string | undefined;
  if (!docker.reachable) reason = `no Docker engine (${docker.reason})`;
  else if (needs.vault && offline && !offline.vault) reason = process.env.VAULTLAB_E2E_NO_VAULT ?? 'no HashiCorp Vault image';
  else {
    const deadline = Number(process.env.VAULTLAB_E2E_DEADLINE ?? '');
    if (deadline && Date.now() + minutes * 60_000 > deadline) reason = `the time budget has ${Math.max(0, Math.round((deadline - Date.now()) / 60_000))} min left; this suite needs up to ${minutes} min`;
  }
  if (reason) console.log(`skipped: ${suite}: ${reason}`);
  return reason;
}

export interface SuiteEnv {
  name: string;
  profile: 'demo' | 'production';
  cwd: string;
  configFile: string;
  plan: Plan;
  /** Known demo values: none may reach any output. */
  knownValues: string[];
  vaultlab(args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): { code: number | null; stdout: string; stderr: string };
  /** The same, not waited for (Ctrl-C tests). */
  start(args: string[]): ReturnType<typeof spawn>;
  kube(): Promise<Kube>;
}

/**
 * A working directory with a config.toml: the bundled demo environment, `distribution`, and with
 * the runner's offline sources: [images] overrides for every component, [charts] paths, the
 * locally built node image. `edit` changes the parsed TOML further.
 */
export function suiteEnv(opts: { name: string; profile: 'demo' | 'production'; distribution: 'vault' | 'openbao'; edit?: (toml: any) => void }): SuiteEnv {
  const cwd = mkdtempSync(join(tmpdir(), `vaultlab-e2e-${opts.name}-`));
  const toml: any = parse(readFileSync(BUNDLED_CONFIG, 'utf8'));
  toml.cluster.name = opts.name;
  toml.vault.distribution = opts.distribution;
  if (offline) {
    toml.cluster.node_image = offline.node;
    toml.images = {
      vault: opts.distribution === 'openbao' ? offline.images.openbao : offline.images.vault,
      eso: offline.images.eso,
      injector: offline.images.injector,
      vso: offline.images.vso,
      vso_rbac_proxy: offline.images.vsoRbacProxy,
      samples: offline.images.busybox,
      // The sample Postgres and the db-client app's psql: Debian's postgresql behind the official image's interface.
      postgres: offline.images.postgres,
    };
    toml.charts = {
      vault: { path: offline.charts[opts.distribution === 'openbao' ? 'openbao' : 'vault'] },
      eso: { path: offline.charts['external-secrets'] },
      vso: { path: offline.charts['vault-secrets-operator'] },
    };
  }
  opts.edit?.(toml);
  const configFile = join(cwd, 'config.toml');
  writeFileSync(configFile, stringify(toml));
  const loaded = loadConfig({ file: configFile, profile: opts.profile, env: {} });
  const plan = buildPlan(loaded);
  const common = ['--name', opts.name, '--config', configFile, '--profile', opts.profile];
  const childEnv = (extra?: NodeJS.ProcessEnv) => ({ ...process.env, CI: 'true', ...extra });
  return {
    name: opts.name,
    profile: opts.profile,
    cwd,
    configFile,
    plan,
    knownValues: Object.values(loaded.passwords).filter((v) => v.length >= 6),
    vaultlab(args, o = {}) {
      const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, ...common], { cwd, encoding: 'utf8', env: childEnv(o.env), timeout: o.timeoutMs ?? 1_500_000 });
      // Progress and errors for the log (never a value: vaultlab redacts, and the suites check).
      process.stderr.write(r.stderr ?? '');
      return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    start(args) {
      return spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), ...args, ...common], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    },
    kube: () =>
      toml.cluster.provider === 'existing'
        ? Kube.connect({ kubeconfig: toml.cluster.kubeconfig, context: toml.cluster.context })
        : Kube.connect({ kubeconfig: join(cwd, '.vaultlab', opts.name, 'kubeconfig') }),
  };
}

/** Deploy flags: --preload when the images come from the local Docker (nothing can be pulled). */
export const deployArgs = (json = true) => ['deploy', ...(json ? ['--json'] : []), ...(offline ? ['--preload'] : [])];

/** uid and restart count of every pod vaultlab deployed or installed. */
export async function podFingerprints(env: SuiteEnv): Promise<Record<string, string>> {
  const kube = await env.kube();
  const namespaces = [env.plan.vault.namespace, env.plan.eso.namespace, ...(env.plan.apps.some((a) => a.delivery === 'vso') ? [env.plan.vso.namespace] : []), ...env.plan.namespaces.map((n) => n.name)];
  const out: Record<string, string> = {};
  for (const ns of namespaces) {
    for (const p of await kube.list<any>('v1', 'Pod', ns)) {
      if (p.status?.phase === 'Succeeded') continue;
      const restarts = (p.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0);
      out[`${ns}/${p.metadata.name}`] = `${p.metadata.uid} restarts=${restarts}`;
    }
  }
  return out;
}

export const json = (r: { stdout: string }) => JSON.parse(r.stdout);

/** Docker, with the runner's DOCKER_HOST (the private dockerd). */
export const dockerCli = (args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 300_000 });

/**
 * A suite starts from no cluster: one left by an earlier run that was cut short (a killed CI
 * job, a machine restart: Docker restarts its node container) is deleted first, with its state,
 * so "cold deploy" means cold. Only the suite's own e2e-* names are ever touched.
 */
export function removeLeftoverCluster(env: SuiteEnv): void {
  if (!/^e2e-/.test(env.name)) throw new Error(`refusing to delete cluster ${env.name}: not a suite cluster`);
  const list = spawnSync('kind', ['get', 'clusters'], { encoding: 'utf8', timeout: 60_000 });
  if (!list.stdout.split('\n').map((l) => l.trim()).includes(env.name)) return;
  console.log(`e2e: deleting kind cluster ${env.name} left by an earlier run`);
  const r = spawnSync('kind', ['delete', 'cluster', '--name', env.name], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`cannot delete the leftover cluster ${env.name}: ${r.stderr}`);
}
