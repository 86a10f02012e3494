// HashiCorp Vault for the kind suite, built from its Go module (no patches): v1.21.1 is the newest
// release whose code matches published sdk/api modules (v1.21.2+ need an sdk with both the old
// 2-argument ActivationFunc and newer APIs; no published sdk has both). A wrapper module pins the
// sdk/api Vault's own go.mod asks for and repeats its replaces (Go ignores a dependency's). No
// `go mod tidy`: a main package cannot be imported, tidy would drop the requirement. BuildDate
// must be RFC 3339 (PluginEnv fails otherwise). Cold: about 20 min on 2 cores; warm: about 5.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../kube/build.ts';

export const VAULT_BUILD = {
  version: '1.21.1',
  commit: '2453aac2638a6ae243341b4e0657fd8aea1cbf18',
  date: '2025-11-18T21:04:32Z',
  sdk: 'v0.20.0',
  api: 'v1.22.0',
  note: 'HashiCorp Vault v1.21.1 built from the Go module proxy (tests/harness/kind/vault-build.ts)',
};

const bin = () => join(cacheDir(), 'e2e', 'bin', 'vault');
const stamp = () => `${bin()}.version`;

/** Builds bin/vault unless it carries this version; false when the build fails (the Vault suites then skip). */
export function ensureVaultBinary(): boolean {
  const want = JSON.stringify(VAULT_BUILD);
  if (existsSync(bin()) && existsSync(stamp()) && readFileSync(stamp(), 'utf8') === want) return true;
  // .ci/run sets it when the time left cannot hold a cold Vault build: the HashiCorp Vault suites then skip, saying so.
  if (process.env.VAULTLAB_E2E_SKIP_VAULT_BUILD === '1') {
    console.log('e2e images: not building HashiCorp Vault (VAULTLAB_E2E_SKIP_VAULT_BUILD=1); its suites will skip');
    return false;
  }
  const dir = join(cacheDir(), 'e2e', 'src', 'vault');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const v = VAULT_BUILD;
  const script = `go mod init vaultlab.e2e/vault >/dev/null 2>&1
    go mod edit -replace github.com/hashicorp/vault/sdk=github.com/hashicorp/vault/sdk@${v.sdk} -replace github.com/hashicorp/vault/api=github.com/hashicorp/vault/api@${v.api} \\
      -replace github.com/99designs/keyring=github.com/Jeffail/keyring@v1.2.3 -replace github.com/ma314smith/signedxml@v1.1.1=github.com/moov-io/signedxml@v1.1.1
    go get github.com/hashicorp/vault@v${v.version}
    go build -trimpath -ldflags "-s -w -X github.com/hashicorp/vault/version.GitCommit=${v.commit} -X github.com/hashicorp/vault/version.BuildDate=${v.date} -X github.com/hashicorp/vault/version.Version=${v.version}" -o "$OUT" github.com/hashicorp/vault`;
  console.log(`e2e images: building HashiCorp Vault v${v.version} from its Go module (cold: about 20 min)`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', OUT: `${bin()}.tmp` } });
  if (r.status !== 0) {
    console.log(`e2e images: the Vault build failed (exit ${r.status}); the HashiCorp Vault suites will skip`);
    return false;
  }
  spawnSync('mv', [`${bin()}.tmp`, bin()]);
  writeFileSync(stamp(), want);
  return true;
}
