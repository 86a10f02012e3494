// After a Docker or laptop restart Vault comes back sealed. ensureUnsealed: in the demo profile,
// unseal from the stored key automatically; in production, say so, with the command (the shares
// are kept offline).
import type { VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { readInit } from '../vault/keys.ts';
import { unsealVault, waitForActive } from '../vault/seal.ts';

export type UnsealState = 'unsealed' | 'was-sealed-now-unsealed' | 'sealed' | 'uninitialized' | 'unreachable';

export async function ensureUnsealed(client: VaultClient, plan: Plan, state: StateDir): Promise<{ state: UnsealState; detail?: string }> {
  let status;
  try {
    status = await client.sealStatus();
  } catch (err) {
    return { state: 'unreachable', detail: (err as Error).message };
  }
  if (!status.initialized) return { state: 'uninitialized' };
  if (!status.sealed) return { state: 'unsealed' };
  const init = readInit(state);
  if (plan.profile === 'demo' && init && !init.pgp) {
    await unsealVault(client, init.keys_base64);
    await waitForActive(client, 30_000);
    return { state: 'was-sealed-now-unsealed' };
  }
  return { state: 'sealed', detail: `needs ${status.t} of ${status.n} key shares: vaultlab vault unseal --keys-file FILE (or type them at the prompt)` };
}
