// `vault unseal`: submit key shares until Vault reports unsealed; a no-op when it is.
import type { VaultClient } from '../adapters/vault.ts';
import { VaultlabError } from '../lib/errors.ts';

export interface UnsealOutcome {
  address: string;
  action: 'unsealed' | 'already-unsealed';
  sharesUsed: number;
}

export async function unsealVault(client: VaultClient, keys: string[]): Promise<UnsealOutcome> {
  let status = await client.sealStatus();
  if (!status.initialized) {
    throw new VaultlabError(`Vault at ${client.address} is not initialized yet`, { hint: 'Run: vaultlab vault init' });
  }
  if (!status.sealed) return { address: client.address, action: 'already-unsealed', sharesUsed: 0 };
  if (keys.length < status.t) {
    throw new VaultlabError(`Vault needs ${status.t} key shares to unseal, ${keys.length} given`, {
      hint: 'Give more shares: --keys-file FILE, stdin (--stdin), or the interactive prompt.',
    });
  }
  // Start from a clean slate: a half-finished attempt by someone else would mix shares.
  if (status.progress > 0) await client.put('sys/unseal', { reset: true }, { anonymous: true, retry: false });
  let used = 0;
  for (const key of keys) {
    const r = await client.put<{ sealed: boolean; progress: number; t: number }>('sys/unseal', { key }, { anonymous: true, retry: false });
    used++;
    if (!r.data.sealed) return { address: client.address, action: 'unsealed', sharesUsed: used };
  }
  status = await client.sealStatus();
  if (status.sealed) {
    throw new VaultlabError(`Vault at ${client.address} is still sealed after ${used} key share(s)`, {
      hint: 'These shares do not belong to this Vault (a data volume from another install?). Check the keys file.',
    });
  }
  return { address: client.address, action: 'unsealed', sharesUsed: used };
}

/** HA: every member must be unsealed separately. */
export async function unsealAll(clients: VaultClient[], keys: string[]): Promise<UnsealOutcome[]> {
  const out: UnsealOutcome[] = [];
  for (const c of clients) out.push(await unsealVault(c, keys));
  return out;
}
