// Builds the third-party binaries the test suite runs for real, from the Go module proxy, into
// ~/.cache/vaultlab/bin (VAULTLAB_CACHE overrides ~/.cache/vaultlab):
//   etcd, kube-apiserver (pinned Kubernetes), and on request kind, helm and task.
// kube-apiserver and etcd cannot be `go install`ed directly (their go.mod files carry replace
// directives), so a tiny wrapper module is generated in the cache at build time (never
// committed) that requires the published modules and runs their command entry point.
// Idempotent: a binary with the expected version stamp is reused; builds go to a temp file
// and are renamed into place.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const KUBERNETES_VERSION = 'v1.36.3';
export const ETCD_VERSION = 'v3.6.16';
export const TOOL_VERSIONS = {
  kind: { module: 'sigs.k8s.io/kind', version: 'v0.30.0' },
  helm: { module: 'helm.sh/helm/v3/cmd/helm', version: 'v3.19.0' },
  // Helm 4, installed as `helm4`: the helm adapter's suite runs with both majors.
  helm4: { module: 'helm.sh/helm/v4/cmd/helm', version: 'v4.3.2' },
  task: { module: 'github.com/go-task/task/v3/cmd/task', version: 'v3.45.4' },
} as const;
export type ToolName = keyof typeof TOOL_VERSIONS;

export const cacheDir = (): string => process.env.VAULTLAB_CACHE ?? join(homedir(), '.cache', 'vaultlab');
export const binDir = (): string => join(cacheDir(), 'bin');
export const binPath = (name: string): string => join(binDir(), name);

/** Kubernetes staging modules replaced by their published v0.X.Y versions. */
const STAGING = [
  'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider',
  'cluster-bootstrap', 'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api',
  'cri-client', 'cri-streaming', 'csi-translation-lib', 'dynamic-resource-allocation', 'endpointslice', 'externaljwt',
  'kms', 'kube-aggregator', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubectl', 'kubelet', 'metrics',
  'mount-utils', 'pod-security-admission', 'sample-apiserver', 'sample-cli-plugin', 'sample-controller', 'streaming',
];

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}${cmd === 'go' ? ' (Go 1.26 or newer is needed to build the test binaries)' : ''}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.status ?? r.signal}`);
}

const stampFile = (name: string) => `${binPath(name)}.version`;
function upToDate(name: string, stamp: string): boolean {
  return existsSync(binPath(name)) && existsSync(stampFile(name)) && readFileSync(stampFile(name), 'utf8').trim() === stamp;
}
function install(name: string, built: string, stamp: string): void {
  mkdirSync(binDir(), { recursive: true });
  const tmp = `${binPath(name)}.tmp-${process.pid}`;
  renameSync(built, tmp);
  renameSync(tmp, binPath(name));
  writeFileSync(stampFile(name), `${stamp}\n`);
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One build of `name` at a time across processes (vitest workers, `npm test`'s provisioning, a
 * second terminal): an exclusive lock file holding the builder's pid. A lock left by a dead
 * process is taken over. Whoever waited re-checks the stamp, so the work is done once.
 */
function withBuildLock<T>(name: string, fn: () => T): T {
  const dir = join(cacheDir(), 'build');
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, `${name}.lock`);
  const deadline = Date.now() + 60 * 60_000;
  let announced = false;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    let age = 0;
    try {
      holder = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if ((Number.isNaN(holder) && age > 10_000) || (!Number.isNaN(holder) && !alive(holder))) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`build: ${name} is locked by pid ${holder} for over an hour (${lock})`);
    if (!announced) console.log(`build: waiting for another build of ${name} (pid ${holder})`);
    announced = true;
    sleepSync(1000);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Size in bytes of a directory tree (du), 0 when it does not exist. */
function du(path: string): number {
  if (!path || !existsSync(path)) return 0;
  const r = spawnSync('du', ['-sk', path], { encoding: 'utf8' });
  return Number.parseInt(r.stdout, 10) * 1024 || 0;
}
function goEnvPath(v: 'GOMODCACHE' | 'GOCACHE'): string {
  return spawnSync('go', ['env', v], { encoding: 'utf8' }).stdout?.trim() ?? '';
}

export interface BuildReport {
  name: string;
  stamp: string;
  seconds: number;
  /** The installed binary. */
  binaryBytes: number;
  /** Growth of the Go module cache and build cache during the build (shared across builds). */
  modCacheBytes: number;
  buildCacheBytes: number;
  at: string;
}
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

/**
 * Runs a build, measuring wall time and disk: the binary, and how much the Go module and build
 * caches grew. Printed, and kept next to the binary as <name>.build.json.
 */
function measured(name: string, stamp: string, build: () => void): BuildReport {
  const mod = goEnvPath('GOMODCACHE');
  const gocache = goEnvPath('GOCACHE');
  const [mod0, cache0] = [du(mod), du(gocache)];
  const t0 = Date.now();
  build();
  const report: BuildReport = {
    name,
    stamp,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    binaryBytes: statSync(binPath(name)).size,
    modCacheBytes: Math.max(0, du(mod) - mod0),
    buildCacheBytes: Math.max(0, du(gocache) - cache0),
    at: new Date().toISOString(),
  };
  writeFileSync(`${binPath(name)}.build.json`, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `build: ${stamp} built in ${report.seconds.toFixed(0)} s; disk: binary ${mb(report.binaryBytes)}, ` +
      `Go module cache +${mb(report.modCacheBytes)}, Go build cache +${mb(report.buildCacheBytes)}`,
  );
  return report;
}

/** Builds `name` unless the cached binary carries `stamp`; serialized across processes. */
function ensureBuilt(name: string, stamp: string, build: () => void): string {
  if (upToDate(name, stamp)) return binPath(name);
  withBuildLock(name, () => {
    if (upToDate(name, stamp)) return;
    measured(name, stamp, build);
  });
  return binPath(name);
}

const goEnv = { CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' };

/** Builds a generated wrapper module's main package into the bin dir. */
function buildWrapper(name: string, stamp: string, goMod: string, mainGo: string, goSum?: string): void {
  const dir = join(cacheDir(), 'build', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'go.mod'), goMod);
  writeFileSync(join(dir, 'main.go'), mainGo);
  // The wrapped module's own go.sum: its dependencies are verified against the hashes it ships.
  if (goSum) writeFileSync(join(dir, 'go.sum'), goSum);
  run('go', ['mod', 'tidy'], dir, goEnv);
  const out = join(dir, `${name}.out`);
  run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, '.'], dir, goEnv);
  install(name, out, stamp);
}

export function ensureKubeApiserver(): string {
  const stamp = `kube-apiserver ${KUBERNETES_VERSION}`;
  const v0 = KUBERNETES_VERSION.replace(/^v1\./, 'v0.');
  const goMod = [
    'module vaultlab.test/kube-apiserver',
    '',
    'go 1.26.0',
    '',
    `require k8s.io/kubernetes ${KUBERNETES_VERSION}`,
    '',
    'replace (',
    ...STAGING.map((m) => `\tk8s.io/${m} => k8s.io/${m} ${v0}`),
    ')',
    '',
  ].join('\n');
  const mainGo = [
    '// Generated by vaultlab tests/harness/kube/build.ts: runs the kube-apiserver command.',
    'package main',
    '',
    'import (',
    '\t"os"',
    '',
    '\t"k8s.io/component-base/cli"',
    '\t_ "k8s.io/component-base/logs/json/register"',
    '\t"k8s.io/kubernetes/cmd/kube-apiserver/app"',
    ')',
    '',
    'func main() {',
    '\tos.Exit(cli.Run(app.NewAPIServerCommand()))',
    '}',
    '',
  ].join('\n');
  return ensureBuilt('kube-apiserver', stamp, () => {
    console.log(`build: kube-apiserver ${KUBERNETES_VERSION} from Go modules (first time only; several minutes)`);
    buildWrapper('kube-apiserver', stamp, goMod, mainGo);
  });
}

export function ensureEtcd(): string {
  const stamp = `etcd ${ETCD_VERSION}`;
  const goMod = ['module vaultlab.test/etcd', '', 'go 1.26.0', '', `require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}`, ''].join('\n');
  const mainGo = [
    '// Generated by vaultlab tests/harness/kube/build.ts: runs the etcd server.',
    'package main',
    '',
    'import (',
    '\t"os"',
    '',
    '\t"go.etcd.io/etcd/server/v3/etcdmain"',
    ')',
    '',
    'func main() {',
    '\tetcdmain.Main(os.Args)',
    '}',
    '',
  ].join('\n');
  return ensureBuilt('etcd', stamp, () => {
    console.log(`build: etcd ${ETCD_VERSION} from Go modules`);
    buildWrapper('etcd', stamp, goMod, mainGo);
  });
}

/**
 * The External Secrets Operator controller, to run out of cluster against the test API server.
 * v0.17.0 is the newest ESO that is one Go module on the module proxy and serves
 * external-secrets.io/v1; the v1.x releases split providers into untagged nested modules that
 * the proxy cannot serve.
 */
export const ESO_CONTROLLER_VERSION = 'v0.17.0';
export function ensureEsoController(): string {
  const stamp = `external-secrets ${ESO_CONTROLLER_VERSION}`;
  const goMod = [
    'module vaultlab.test/external-secrets',
    '',
    'go 1.26.0',
    '',
    `require github.com/external-secrets/external-secrets ${ESO_CONTROLLER_VERSION}`,
    '',
    'replace github.com/Masterminds/sprig/v3 => github.com/external-secrets/sprig/v3 v3.3.0',
    '',
  ].join('\n');
  const mainGo = [
    '// Generated by vaultlab tests/harness/kube/build.ts: runs the ESO controller command.',
    'package main',
    '',
    'import "github.com/external-secrets/external-secrets/cmd/controller"',
    '',
    'func main() {',
    '\tcontroller.Execute()',
    '}',
    '',
  ].join('\n');
  return ensureBuilt('external-secrets', stamp, () => {
    console.log(`build: external-secrets ${ESO_CONTROLLER_VERSION} controller from Go modules (first time only; several minutes)`);
    const dl = spawnSync('go', ['mod', 'download', '-json', `github.com/external-secrets/external-secrets@${ESO_CONTROLLER_VERSION}`], {
      encoding: 'utf8',
      cwd: cacheDir(),
      env: { ...process.env, GOTOOLCHAIN: 'local' },
    });
    if (dl.status !== 0) throw new Error(`go mod download external-secrets failed: ${dl.stderr}`);
    const esoDir = (JSON.parse(dl.stdout) as { Dir: string }).Dir;
    buildWrapper('external-secrets', stamp, goMod, mainGo, readFileSync(join(esoDir, 'go.sum'), 'utf8'));
  });
}

/**
 * The Vault Agent Injector (vault-k8s), whose mutating webhook tests/kube/injector.test.ts runs out
 * of cluster. `go install …@v1.6.2` fails here: it asks the proxy for the module's version list
 * (deprecation check), which the proxy refuses for hashicorp modules; the exact version downloads
 * fine, and its go.mod has no replace directives, so it is built in the downloaded module itself.
 */
export const VAULT_K8S_VERSION = 'v1.6.2';
export function ensureVaultK8s(): string {
  const stamp = `vault-k8s ${VAULT_K8S_VERSION}`;
  return ensureBuilt('vault-k8s', stamp, () => {
    console.log(`build: vault-k8s ${VAULT_K8S_VERSION} from the Go module proxy (first time only)`);
    const dl = spawnSync('go', ['mod', 'download', '-json', `github.com/hashicorp/vault-k8s@${VAULT_K8S_VERSION}`], { encoding: 'utf8', cwd: cacheDir(), env: { ...process.env, GOTOOLCHAIN: 'local' } });
    if (dl.error) throw new Error(`cannot run go: ${dl.error.message}`);
    if (dl.status !== 0) throw new Error(`go mod download github.com/hashicorp/vault-k8s@${VAULT_K8S_VERSION} failed: ${dl.stderr}`);
    const dir = (JSON.parse(dl.stdout) as { Dir: string }).Dir;
    const out = join(cacheDir(), 'build', `vault-k8s.out-${process.pid}`);
    run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, '.'], dir, { CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' });
    install('vault-k8s', out, stamp);
  });
}

/**
 * Vault Secrets Operator's controller, from its Go module (the proxy refuses @latest for it, serves
 * exact releases). The module also carries the chart and CRDs under chart/: vsoModuleDir() is
 * where tests/harness/kind/charts.ts copies the chart from.
 */
export const VSO_VERSION = 'v0.10.0';
export function vsoModuleDir(): string {
  return goModDownload('github.com/hashicorp/vault-secrets-operator', VSO_VERSION);
}
export function ensureVso(): string {
  const stamp = `vault-secrets-operator ${VSO_VERSION}`;
  return ensureBuilt('vault-secrets-operator', stamp, () => {
    console.log(`build: vault-secrets-operator ${VSO_VERSION} from the Go module proxy (first time only)`);
    const dir = vsoModuleDir();
    const out = join(cacheDir(), 'build', `vault-secrets-operator.out-${process.pid}`);
    const ld = `-s -w -X github.com/hashicorp/vault-secrets-operator/internal/version.GitVersion=${VSO_VERSION.replace(/^v/, '')}`;
    run('go', ['build', '-trimpath', `-ldflags=${ld}`, '-o', out, '.'], dir, { CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' });
    install('vault-secrets-operator', out, stamp);
  });
}

/** kube-rbac-proxy, the sidecar VSO's chart always runs in front of the controller's metrics. */
export const KUBE_RBAC_PROXY_VERSION = 'v0.18.1';
export function ensureKubeRbacProxy(): string {
  const stamp = `kube-rbac-proxy ${KUBE_RBAC_PROXY_VERSION}`;
  return ensureBuilt('kube-rbac-proxy', stamp, () => {
    console.log(`build: kube-rbac-proxy ${KUBE_RBAC_PROXY_VERSION} from the Go module proxy (first time only)`);
    const dir = goModDownload('github.com/brancz/kube-rbac-proxy', KUBE_RBAC_PROXY_VERSION);
    const out = join(cacheDir(), 'build', `kube-rbac-proxy.out-${process.pid}`);
    run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, './cmd/kube-rbac-proxy'], dir, { CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' });
    install('kube-rbac-proxy', out, stamp);
  });
}

/** `go mod download` of one exact module version; its directory in the module cache. */
function goModDownload(module: string, version: string): string {
  const dl = spawnSync('go', ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8', cwd: cacheDir(), env: { ...process.env, GOTOOLCHAIN: 'local' } });
  if (dl.error) throw new Error(`cannot run go: ${dl.error.message}`);
  if (dl.status !== 0) throw new Error(`go mod download ${module}@${version} failed: ${dl.stderr}`);
  return (JSON.parse(dl.stdout) as { Dir: string }).Dir;
}

/** kind, helm or task with `go install`, pinned; returns the binary's path. */
export function ensureTool(name: ToolName): string {
  const { module, version } = TOOL_VERSIONS[name];
  const stamp = `${name} ${version}`;
  return ensureBuilt(name, stamp, () => {
    const gobin = join(cacheDir(), 'build', `gobin-${name}`);
    rmSync(gobin, { recursive: true, force: true });
    console.log(`build: ${name} ${version} (go install ${module}@${version})`);
    run('go', ['install', '-trimpath', '-ldflags=-s -w', `${module}@${version}`], cacheDir(), { CGO_ENABLED: '0', GOBIN: gobin, GOTOOLCHAIN: 'local' });
    // The command's name: the last path element that is not a major-version suffix.
    install(name, join(gobin, module.split('/').filter((p) => !/^v[0-9]+$/.test(p)).pop()!), stamp);
  });
}

/** Several tools at once: `ensureTools(['kind', 'helm'])` → their paths by name. */
export function ensureTools<N extends ToolName>(names: readonly N[]): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const n of names) out[n] = ensureTool(n);
  return out;
}

export async function ensureKubeBinaries(): Promise<{ etcd: string; apiserver: string }> {
  mkdirSync(binDir(), { recursive: true });
  return { etcd: ensureEtcd(), apiserver: ensureKubeApiserver() };
}

// node tests/harness/kube/build.ts [kube] [kind] [helm] [task] [eso]   (default: kube)
if (import.meta.main) {
  const which = process.argv.slice(2);
  const unknown = which.filter((w) => w !== 'kube' && w !== 'eso' && !(w in TOOL_VERSIONS));
  if (unknown.length) {
    console.error(`usage: node tests/harness/kube/build.ts [kube] [eso] [${Object.keys(TOOL_VERSIONS).join('] [')}]; unknown: ${unknown.join(', ')}`);
    process.exit(2);
  }
  mkdirSync(cacheDir(), { recursive: true });
  const t0 = Date.now();
  if (which.length === 0 || which.includes('kube')) await ensureKubeBinaries();
  ensureTools(which.filter((w): w is ToolName => w in TOOL_VERSIONS));
  if (which.includes('eso')) ensureEsoController();
  console.log(`build: done in ${((Date.now() - t0) / 1000).toFixed(0)} s; binaries in ${binDir()}`);
}

/**
 * A Go module's source in the module cache (downloaded at test time, never committed): from the
 * cache when it is there (no network, so no proxy hiccup can fail a suite's setup), else the proxy.
 */
export function goModuleDir(module: string, version: string): string {
  const download = (env: Record<string, string>) => spawnSync('go', ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', ...env }, cwd: process.env.HOME });
  let r = download({ GOPROXY: 'off' });
  if (r.status !== 0) r = download({});
  if (r.status !== 0) throw new Error(`go mod download ${module}@${version} failed: ${r.stderr || r.stdout}`);
  return (JSON.parse(r.stdout) as { Dir: string }).Dir;
}
