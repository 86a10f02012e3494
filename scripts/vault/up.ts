// `vault up`: init -> unseal -> (production: setup token, root revoked) -> configure -> seed.
// Every stage is safe to repeat, so `up` on a finished Vault only reads. One server; an HA
// cluster's members are brought up around this by haUp (scripts/production/ha.ts).
import type { VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { VaultlabError } from '../lib/errors.ts';
import { initVault, type InitHooks, type InitOutcome } from './init.ts';
import { unsealVault, waitForActive, type UnsealOutcome } from './seal.ts';
import { configureVault, type ConfigureItem, type ConfigureOptions } from './configure.ts';
import { seedVault, type SeedOptions, type SeedReport } from './seed.ts';
import { establishSetupToken, generateRoot, resolveToken, type TokenSource } from './token.ts';
import { storedPlaintextKeys } from './keys.ts';

export interface UpOptions {
  /** Unseal keys given by the user (production: the file is kept offline). */
  keys?: string[];
  token?: { flag?: string | undefined; env?: string | undefined };
  hooks?: InitHooks;
  configure?: ConfigureOptions;
  seed?: SeedOptions | false;
  passwords: Readonly<Record<string, string>>;
}

export interface UpReport {
  init: InitOutcome;
  unseal: UnsealOutcome[];
  token: TokenSource | 'regenerated-root';
  setupToken?: 'created' | 'unchanged';
  configure: ConfigureItem[];
  seed?: SeedReport;
}

export function noKeysError(address: string, stateFile: string): VaultlabError {
  return new VaultlabError(
    `Vault at ${address} is initialized and sealed, but vaultlab has no keys for it (${stateFile} is missing)`,
    {
      hint:
        'Usually a Vault data volume left from an earlier install. Start over with `vaultlab reset --full` ' +
        '(destroys that Vault\'s data), or unseal with the keys you kept: `vaultlab vault unseal --keys-file FILE`.',
    },
  );
}

export async function vaultUp(client: VaultClient, plan: Plan, state: StateDir, opts: UpOptions): Promise<UpReport> {
  const init = await initVault(client, plan, state, opts.hooks);
  const keys = opts.keys ?? storedPlaintextKeys(state);

  const first = await client.sealStatus();
  if (first.sealed && !keys) throw noKeysError(client.address, state.file('vault-init.json'));
  const unseal: UnsealOutcome[] = [first.sealed ? await unsealVault(client, keys!) : { address: client.address, action: 'already-unsealed', sharesUsed: 0 }];
  await waitForActive(client);

  const tok = resolveToken(state, opts.token ?? {});
  if (!tok) {
    throw new VaultlabError(`no token for Vault at ${client.address}`, {
      hint: 'Give --token (or VAULT_TOKEN), or run with the state dir that holds this Vault\'s init result (--state-dir).',
    });
  }
  client.setToken(tok.token);
  let token = tok.source as TokenSource | 'regenerated-root';
  if (tok.source === 'setup-token') {
    // Day-2 runs use the setup token. If it expired or was revoked, and only then, a root token
    // is regenerated from the unseal keys; establishSetupToken below replaces the setup token
    // and revokes that root token again.
    const alive = await client.get('auth/token/lookup-self', { accept: [403] });
    if (alive.status === 403) {
      if (!keys) {
        throw new VaultlabError('the stored vaultlab-setup token no longer works (expired or revoked), and no unseal keys are at hand to regenerate a root token', {
          hint: 'Run `vaultlab vault up --keys-file FILE` (or --stdin) with the threshold number of key shares.',
        });
      }
      client.setToken(await generateRoot(client, keys));
      state.remove('setup-token.json');
      token = 'regenerated-root';
    }
  }

  const configure = await configureVault(client, plan, { passwords: opts.passwords, ...opts.configure });
  let setupToken: UpReport['setupToken'];
  if (plan.vault.setupToken.enabled) setupToken = await establishSetupToken(client, plan, state);
  const seed = opts.seed === false ? undefined : await seedVault(client, plan, opts.passwords, { ledger: state, ...opts.seed });
  return { init, unseal, token, ...(setupToken ? { setupToken } : {}), configure, ...(seed ? { seed } : {}) };
}
