// The pieces of a syncing environment that several suites start the same way: a real API
// server with ESO's CRDs beside a real OpenBao, Vault brought up with Kubernetes auth against
// that API server, and the ESO controller (built from its Go module) running out of cluster.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeServer } from './kube/server.ts';
import { installEsoCrds } from './kube/eso.ts';
import { vaultReviewerToken } from './kube/reviewer.ts';
import { ensureEsoController } from './kube/build.ts';
import { startBao, type BaoServer } from './bao.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import type { Environment } from '../../scripts/lifecycle/connect.ts';
import { collectStatus, type Check } from '../../scripts/lifecycle/status.ts';
import { BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import type { Plan } from '../../scripts/plan/types.ts';
import { vaultUp, type UpReport } from '../../scripts/vault/up.ts';

export interface ApiAndBao {
  kubeServer: KubeServer;
  bao: BaoServer;
  kube: Kube;
  stop(): Promise<void>;
}

/** The API server (ESO's CRDs installed, of `esoVersion` or the default pin) and OpenBao, started side by side. */
export async function startApiAndBao(esoVersion?: string): Promise<ApiAndBao> {
  const [kubeServer, bao] = await Promise.all([startKube(), startBao()]);
  const kube = await Kube.connect({ kubeconfig: kubeServer.kubeconfigPath });
  await installEsoCrds(kube, esoVersion);
  return { kubeServer, bao, kube, stop: async () => void (await Promise.all([kubeServer.stop(), bao.stop()])) };
}

/**
 * The bundled demo config with OpenBao as an "external" Vault, so the SecretStores point at
 * its loopback address, which an out-of-cluster ESO controller reaches.
 */
export function externalVaultConfig(baoAddress: string): string {
  return withoutVso(withoutSampleDatabase(readFileSync(BUNDLED_CONFIG, 'utf8')).replace('[vault]\n', `[vault]\naddress = "${baoAddress}"\n`));
}

/**
 * The bundled config without its dynamic database credentials (the sample Postgres and the shop
 * app using it): for harnesses whose Vault is outside the cluster (it cannot reach the sample, a
 * config error) or whose API server runs no pods.
 */
export function withoutSampleDatabase(text: string): string {
  const begin = text.indexOf('# --- dynamic database credentials: begin');
  const endMarker = '# --- dynamic database credentials: end\n';
  const end = text.indexOf(endMarker);
  if (begin < 0 || end < begin) throw new Error('the bundled config.toml has no "dynamic database credentials" markers');
  return text.slice(0, begin) + text.slice(end + endMarker.length);
}

/**
 * The bundled config with its VSO app switched off: these suites run ESO's controller out of
 * cluster, and no Vault Secrets Operator (its chart's pods need a kubelet, which they have not).
 */
export function withoutVso(config: string): string {
  const out = config.replace(/^delivery = "vso"$/m, 'delivery = "vso"\nenabled = false');
  if (out === config) throw new Error('withoutVso: the bundled config has no app with delivery = "vso" any more; update tests/harness/synced.ts');
  return out;
}

export function tempState(): StateDir {
  return new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
}

/** vaultUp with Kubernetes auth against this API server, through the reviewer account the Vault chart would create. */
export async function vaultUpForApi(vault: VaultClient, kube: Kube, plan: Plan, state: StateDir, passwords: Readonly<Record<string, string>>): Promise<UpReport> {
  const info = kube.clusterInfo();
  return vaultUp(vault, plan, state, { passwords, configure: { kubernetes: { host: info.server, caPem: info.caPem!, reviewerJwt: await vaultReviewerToken(kube) } } });
}

export interface EsoController {
  /** Everything the controller printed so far (for failure messages). */
  logs(): string;
  stop(): void;
}

/** The ESO controller out of cluster, against the API server of `kubeconfigPath`. */
export function startEsoController(kubeconfigPath: string): EsoController {
  const bin = ensureEsoController();
  const child = spawn(bin, ['--enable-leader-election=false', '--metrics-addr=127.0.0.1:0', '--loglevel=info'], { env: { ...process.env, KUBECONFIG: kubeconfigPath }, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  return { logs: () => logs, stop: () => void child.kill('SIGTERM') };
}

/**
 * One named check of `vaultlab status` for this environment, with Vault at `vaultAddress` (an
 * address nothing answers still runs every Kubernetes check), never unsealing on the way.
 */
export async function statusCheck(env: Pick<Environment, 'loaded' | 'plan' | 'state' | 'kube'>, vaultAddress: string, name: string): Promise<Check | undefined> {
  const vault = new VaultClient({ address: vaultAddress, attempts: 1, timeoutMs: 2000 });
  try {
    const r = await collectStatus({ ...env, kubeProblem: undefined, vault, forwards: [], close: async () => undefined }, { unseal: false });
    return r.checks.find((c) => c.name === name);
  } finally {
    vault.close();
  }
}
