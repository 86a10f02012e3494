// After a Docker or laptop restart Vault comes back sealed. ensureUnsealed: in the demo profile,
// unseal from the stored key automatically (the state dir's vault-init.json, else the copy the
// demo keeps in Vault's namespace); in production, say so, with the command (the shares are kept
// offline). status, doctor, reset --secrets call it; deploy may too.
import type { VaultClient } from '../adapters/vault.ts';
import type { Kube } from '../adapters/kube.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { readInit, registerInit, type InitResult } from '../vault/keys.ts';
import { unsealVault, waitForActive } from '../vault/seal.ts';

export type UnsealState = 'unsealed' | 'was-sealed-now-unsealed' | 'sealed' | 'uninitialized' | 'unreachable';

export interface UnsealCheck {
  state: UnsealState;
  /** Why, in words (never a key). */
  detail?: string;
  /** The command that fixes a state other than unsealed. */
  fix?: string;
  /** Where the key came from when this run unsealed Vault. */
  keysFrom?: 'state' | 'cluster';
  /** Key shares Vault needs (when sealed). */
  threshold?: number;
}

export interface EnsureUnsealedOptions {
  /** Look for the demo's in-cluster copy of the init result when the state dir has none. */
  kube?: Kube | undefined;
  /** Only report: never submit a key (status --no-unseal). */
  reportOnly?: boolean;
  /** How long to wait for an active node after unsealing. */
  activeTimeoutMs?: number;
}

/** The demo's copy of the init result, kept in Secret `plan.vault.init.secretName`. */
export async function initFromCluster(kube: Kube, plan: Plan): Promise<InitResult | undefined> {
  if (!plan.vault.init.storeInCluster) return undefined;
  const secret = await kube.readSecret(plan.vault.namespace, plan.vault.init.secretName).catch(() => undefined);
  const raw = secret?.data['vault-init.json'];
  if (!raw) return undefined;
  try {
    return registerInit(JSON.parse(raw.toString('utf8')) as InitResult);
  } catch {
    return undefined;
  }
}

export async function ensureUnsealed(client: VaultClient, plan: Plan, state: StateDir, opts: EnsureUnsealedOptions = {}): Promise<UnsealCheck> {
  let status;
  try {
    status = await client.sealStatus();
  } catch (err) {
    return {
      state: 'unreachable',
      detail: (err as Error).message,
      fix: plan.vault.external ? `Check that ${client.address} is up and reachable from here.` : 'Is the cluster up (the "cluster" check)? `vaultlab deploy` repairs it; `vaultlab doctor` checks the machine.',
    };
  }
  if (!status.initialized) return { state: 'uninitialized', detail: 'Vault is not initialized', fix: 'vaultlab deploy (or vaultlab vault up)' };
  if (!status.sealed) return { state: 'unsealed' };

  const manual = `vaultlab vault unseal --keys-file FILE (or type the shares at its prompt; ${status.t} of ${status.n} needed)`;
  const sealed = (detail: string): UnsealCheck => ({ state: 'sealed', detail, fix: manual, threshold: status.t });
  if (plan.profile !== 'demo') return sealed(`sealed (restart?): needs ${status.t} of ${status.n} key shares, kept offline in the production profile`);
  if (opts.reportOnly) return { ...sealed('sealed (restart?); the demo profile unseals it from the stored key'), fix: 'vaultlab vault unseal (or run `vaultlab status` without --no-unseal)' };

  let init = readInit(state);
  let keysFrom: 'state' | 'cluster' = 'state';
  if ((!init || init.pgp) && opts.kube) {
    const fromCluster = await initFromCluster(opts.kube, plan);
    if (fromCluster && !fromCluster.pgp) {
      init = fromCluster;
      keysFrom = 'cluster';
    }
  }
  if (!init) return sealed(`sealed (restart?), and no stored key in ${state.path}${opts.kube ? ` or Secret ${plan.vault.namespace}/${plan.vault.init.secretName}` : ''}`);
  if (init.pgp) return sealed('sealed (restart?); the stored key shares are PGP-encrypted, so vaultlab cannot use them itself');
  try {
    await unsealVault(client, init.keys_base64);
  } catch (err) {
    return { ...sealed(`sealed (restart?); the stored key did not unseal it: ${(err as Error).message}`), fix: `Is ${state.path} from this Vault? Otherwise: ${manual}` };
  }
  try {
    await waitForActive(client, opts.activeTimeoutMs ?? 30_000);
  } catch (err) {
    return { state: 'was-sealed-now-unsealed', keysFrom, detail: (err as Error).message, fix: 'vaultlab status (again in a moment)' };
  }
  return { state: 'was-sealed-now-unsealed', keysFrom, detail: `was sealed (restart?), unsealed from the stored key (${keysFrom === 'state' ? state.file('vault-init.json') : `Secret ${plan.vault.namespace}/${plan.vault.init.secretName}`})` };
}
