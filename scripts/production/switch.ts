// Switching an environment between the demo and the production profile in place is refused:
// the two Vaults differ in what cannot change after init (standalone vs HA Raft storage, 1/1 vs
// 5/3 key shares, plain HTTP vs TLS, the root token kept vs revoked, keys in the cluster vs
// offline). Only `reset --full` (destroy, then deploy) may change the profile; it wipes the
// state dir, so its deploy finds nothing recorded.
//
// The profile is recorded twice in the state dir: cluster.json (written by deploy's cluster
// step) and vault-init.json (written when vaultlab initialized Vault). Either one counts.
import type { ProfileName } from '../config/schema.ts';
import type { StateDir } from '../lib/state.ts';
import { VaultlabError, EXIT_USAGE } from '../lib/errors.ts';

export interface RecordedProfile {
  profile: ProfileName | string;
  /** The state file that says so. */
  file: string;
  what: string;
}

const CLUSTER_FILE = 'cluster.json';
const INIT_FILE = 'vault-init.json';

/** What the state dir says this environment was deployed with (the init result first: it is what cannot change). */
export function recordedProfiles(state: StateDir): RecordedProfile[] {
  const out: RecordedProfile[] = [];
  const init = state.readJson<{ profile?: string; initialized_at?: string }>(INIT_FILE);
  if (init?.profile) out.push({ profile: init.profile, file: state.file(INIT_FILE), what: `Vault was initialized${init.initialized_at ? ` on ${init.initialized_at.slice(0, 10)}` : ''} with the ${init.profile} profile` });
  const cluster = state.readJson<{ profile?: string; name?: string }>(CLUSTER_FILE);
  if (cluster?.profile) out.push({ profile: cluster.profile, file: state.file(CLUSTER_FILE), what: `the environment was deployed with the ${cluster.profile} profile` });
  return out;
}

const WHY: Record<string, string> = {
  production:
    'a production Vault is a fresh one: HA Raft storage over three pods, TLS, 5 key shares with threshold 3 kept offline, ' +
    'the root token revoked, per-namespace policies; a demo Vault\'s storage, single key and root token cannot be carried over',
  demo: 'the demo profile needs what production removed: the root token (revoked), a single key share stored in the cluster, plain HTTP',
};

export interface SwitchCheckOptions {
  /** The caller is `reset --full`, which destroys the environment (state dir included) first. */
  resetFull?: boolean;
  /** The cluster name, for the commands in the hint. */
  cluster?: string;
  /**
   * The address of an external Vault (config vault.address). `reset --full` keeps such a Vault's
   * init result (it is not vaultlab's to wipe), so its recorded profile still counts there.
   */
  externalVault?: string;
}

/**
 * undefined when `target` may be deployed with this state dir; otherwise the error to stop
 * with, naming the recorded profile, where it is recorded, and the ways forward.
 */
export function profileSwitchError(state: StateDir, target: ProfileName, opts: SwitchCheckOptions = {}): VaultlabError | undefined {
  const recorded = recordedProfiles(state).filter((r) => !opts.resetFull || (opts.externalVault && r.file === state.file(INIT_FILE)));
  const other = recorded.find((r) => r.profile !== target);
  if (!other) return undefined;
  const name = opts.cluster ? ` "${opts.cluster}"` : '';
  const why = WHY[target] ?? `the ${target} profile needs a Vault set up for it from the start`;
  if (opts.externalVault && other.file === state.file(INIT_FILE)) {
    return new VaultlabError(
      `the external Vault at ${opts.externalVault} was initialized by vaultlab with the ${other.profile} profile (${other.file}); it cannot become a ${target} Vault in place`,
      {
        exitCode: EXIT_USAGE,
        hint:
          `Switching needs a fresh Vault: ${why}. vaultlab does not wipe a Vault it did not install: ` +
          `point vault.address at a new, uninitialized Vault, or re-create that one yourself, then move ${other.file} away and deploy again.`,
      },
    );
  }
  return new VaultlabError(
    `environment${name} is a ${other.profile} environment (${other.what}; ${other.file}); switching it to ${target} in place is refused`,
    {
      exitCode: EXIT_USAGE,
      hint:
        `Switching needs a fresh Vault: ${why}. ` +
        `Rebuild it with \`vaultlab reset --full --profile ${target}\` (destroys this environment and its Vault data${target === 'production' ? '; the demo secrets are regenerated' : ''}), ` +
        `or keep it and deploy ${target} as another environment: \`vaultlab deploy --profile ${target} --name NAME\` (with its own [cluster] ports on kind).`,
    },
  );
}

/** Throws profileSwitchError's error, if any. */
export function assertProfileSwitchAllowed(state: StateDir, target: ProfileName, opts: SwitchCheckOptions = {}): void {
  const err = profileSwitchError(state, target, opts);
  if (err) throw err;
}
