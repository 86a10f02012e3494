// Seal status and `vault unseal`: submit key shares until Vault reports unsealed (a no-op when
// it is), and wait for an active node afterwards.
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

/**
 * After unseal, Raft storage elects a leader before the node serves writes ("local node not
 * active"); a single node answers as a standby for a moment. Waits until the node is active, or
 * is a standby that knows its active leader (an HA follower).
 */
export async function waitForActive(client: VaultClient, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const h = await client.health({ retry: false }).catch(() => undefined);
    if (h) {
      last = !h.initialized ? 'not initialized' : h.sealed ? 'sealed' : h.standby ? 'standby without a leader' : 'active';
      if (h.initialized && !h.sealed) {
        if (!h.standby) return;
        const l = await client.leader({ retry: false }).catch(() => undefined);
        if (l && !l.is_self && l.leader_address) return;
      }
    }
    if (Date.now() > deadline) {
      throw new VaultlabError(`Vault at ${client.address} has no active node after ${Math.round(timeoutMs / 1000)} s (last seen: ${last})`, {
        hint: last === 'sealed'
          ? 'Unseal it: vaultlab vault unseal'
          : 'HA: check that the Raft peers reach each other (retry_join addresses, TLS); `vaultlab status` shows the members.',
      });
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}
