// HashiCorp Vault for the kind suite, built from its Go module (see VAULT_BUILD.note).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../kube/build.ts';

export const VAULT_BUILD = { version: 'unknown', note: 'no Vault release is known to build from the Go module proxy yet' };

export function ensureVaultBinary(): boolean {
  return existsSync(join(cacheDir(), 'e2e', 'bin', 'vault'));
}
