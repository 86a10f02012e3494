// `vault init`: initialize Vault once and persist the result before anything else happens.
import { existsSync, readFileSync } from 'node:fs';
import type { VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { VaultlabError } from '../lib/errors.ts';
import { INIT_FILE, readInit, registerInit, type InitResult } from './keys.ts';

export interface InitOutcome {
  action: 'initialized' | 'already-initialized';
  /** Where the result was written. */
  stored: string[];
  init: InitResult | undefined;
}

export interface InitHooks {
  /** demo: also store the result in the cluster (Secret vault-init-keys); runs right after the file write. */
  persistInCluster?: (init: InitResult) => Promise<string>;
}

/**
 * production.pgp_keys entries: base64 of a binary public key (what Vault takes), or a path to a
 * key file, binary or ASCII-armored (`gpg --export [--armor]`).
 */
export function pgpKeyBase64(entry: string): string {
  if (!existsSync(entry)) return entry.trim();
  const raw = readFileSync(entry);
  const text = raw.toString('utf8');
  if (text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
    const body = text.split(/\r?\n/);
    const start = body.findIndex((l) => l.trim() === '') + 1;
    const end = body.findIndex((l) => l.startsWith('-----END'));
    return body.slice(start, end).filter((l) => !l.startsWith('=')).join('').trim();
  }
  return raw.toString('base64');
}

export async function initVault(client: VaultClient, plan: Plan, state: StateDir, hooks: InitHooks = {}): Promise<InitOutcome> {
  if (await client.initStatus()) {
    return { action: 'already-initialized', stored: [], init: readInit(state) };
  }
  const existing = readInit(state);
  if (existing && plan.profile === 'production') {
    throw new VaultlabError(
      `Vault at ${client.address} is not initialized, but ${state.file(INIT_FILE)} holds the keys of an earlier one`,
      { hint: 'vaultlab writes production keys once and never overwrites them: move that file somewhere safe (it may be the only copy), then re-run.' },
    );
  }
  const v = plan.vault.init;
  const body: Record<string, unknown> = { secret_shares: v.shares, secret_threshold: v.threshold };
  if (v.pgpKeys.length) body.pgp_keys = v.pgpKeys.map(pgpKeyBase64);
  const r = await client.put<{ keys: string[]; keys_base64: string[]; root_token: string }>('sys/init', body, { anonymous: true, retry: false });
  const init = registerInit({
    keys: r.data.keys,
    keys_base64: r.data.keys_base64,
    root_token: r.data.root_token,
    shares: v.shares,
    threshold: v.threshold,
    ...(v.pgpKeys.length ? { pgp: true } : {}),
    initialized_at: new Date().toISOString(),
    profile: plan.profile,
  });
  // Persist first: the keys exist nowhere else yet. A demo re-init (fresh Vault after
  // `reset --full`) keeps the previous file as a backup instead of overwriting it.
  if (existing) state.write(`${INIT_FILE}.${Date.now()}.bak`, `${JSON.stringify(existing, null, 2)}\n`);
  const stored = [state.writeJson(INIT_FILE, init)];
  if (hooks.persistInCluster && v.storeInCluster) stored.push(await hooks.persistInCluster(init));
  return { action: 'initialized', stored, init };
}
