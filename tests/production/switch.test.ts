// Switching a deployed environment between demo and production in place is refused, with the
// way forward; `reset --full` (which wipes the state dir before its deploy) is the way.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDir } from '../../scripts/lib/state.ts';
import { VaultlabError, EXIT_USAGE } from '../../scripts/lib/errors.ts';
import { assertProfileSwitchAllowed, profileSwitchError, recordedProfiles } from '../../scripts/production/switch.ts';

const newState = () => new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-switch-')), '.vaultlab', 'vaultlab'));
const cluster = (profile: string) => ({ name: 'vaultlab', provider: 'kind', profile, createdByVaultlab: true, complete: true });
const init = (profile: string) => ({ keys: ['k'], keys_base64: ['aw=='], root_token: 'r', shares: 1, threshold: 1, initialized_at: '2026-11-01T10:00:00.000Z', profile });

describe('profile switch check', () => {
  it('a fresh state dir, or the same profile again, is fine', () => {
    const state = newState();
    expect(profileSwitchError(state, 'production')).toBeUndefined();
    state.writeJson('cluster.json', cluster('production'));
    state.writeJson('vault-init.json', init('production'));
    expect(profileSwitchError(state, 'production')).toBeUndefined();
    expect(() => assertProfileSwitchAllowed(state, 'production')).not.toThrow();
  });

  it('demo -> production is refused (exit 2): it names the recorded profile, the state file, why, and the commands that work', () => {
    const state = newState();
    state.writeJson('cluster.json', cluster('demo'));
    state.writeJson('vault-init.json', init('demo'));
    const err = profileSwitchError(state, 'production', { cluster: 'vaultlab' })!;
    expect(err).toBeInstanceOf(VaultlabError);
    expect(err.exitCode).toBe(EXIT_USAGE);
    expect(err.message).toBe(
      `environment "vaultlab" is a demo environment (Vault was initialized on 2026-11-01 with the demo profile; ${state.file('vault-init.json')}); switching it to production in place is refused`,
    );
    expect(err.hint).toMatch(/^Switching needs a fresh Vault: a production Vault is a fresh one: HA Raft storage .*TLS, 5 key shares/);
    expect(err.hint).toContain('`vaultlab reset --full --profile production`');
    expect(err.hint).toContain('`vaultlab deploy --profile production --name NAME`');
    expect(() => assertProfileSwitchAllowed(state, 'production')).toThrow(err.message.replace(' "vaultlab"', ''));
  });

  it('either record is enough: a deploy that stopped before Vault was initialized still recorded its profile', () => {
    const state = newState();
    state.writeJson('cluster.json', cluster('demo'));
    const err = profileSwitchError(state, 'production')!;
    expect(err.message).toContain(`(the environment was deployed with the demo profile; ${state.file('cluster.json')})`);
    const vaultOnly = newState();
    vaultOnly.writeJson('vault-init.json', init('demo')); // `vaultlab vault up` against a Vault, no deploy
    expect(profileSwitchError(vaultOnly, 'production')?.message).toContain('Vault was initialized on 2026-11-01 with the demo profile');
    expect(recordedProfiles(vaultOnly).map((r) => r.profile)).toEqual(['demo']);
  });

  it('production -> demo is refused too, with what demo would need that production removed', () => {
    const state = newState();
    state.writeJson('cluster.json', cluster('production'));
    state.writeJson('vault-init.json', { ...init('production'), root_token: null, root_token_revoked: '2026-11-01T10:01:00Z' });
    const err = profileSwitchError(state, 'demo')!;
    expect(err.message).toMatch(/is a production environment .* switching it to demo in place is refused/);
    expect(err.hint).toMatch(/the root token \(revoked\), a single key share stored in the cluster/);
    expect(err.hint).toContain('`vaultlab reset --full --profile demo`');
  });

  it('reset --full may switch: it destroys the environment before deploying', () => {
    const state = newState();
    state.writeJson('cluster.json', cluster('demo'));
    state.writeJson('vault-init.json', init('demo'));
    expect(profileSwitchError(state, 'production', { resetFull: true })).toBeUndefined();
  });

  it('an external Vault keeps its init record through reset --full: vaultlab cannot wipe it, and says what to do', () => {
    const state = newState();
    state.writeJson('vault-init.json', init('demo'));
    const err = profileSwitchError(state, 'production', { resetFull: true, externalVault: 'https://vault.example:8200' })!;
    expect(err.message).toBe(`the external Vault at https://vault.example:8200 was initialized by vaultlab with the demo profile (${state.file('vault-init.json')}); it cannot become a production Vault in place`);
    expect(err.hint).toMatch(/vaultlab does not wipe a Vault it did not install: point vault.address at a new, uninitialized Vault/);
    // An external Vault vaultlab did not initialize (no init record) is only the profile's policies: allowed after reset --full.
    const noInit = newState();
    noInit.writeJson('cluster.json', cluster('demo'));
    expect(profileSwitchError(noInit, 'production', { resetFull: true, externalVault: 'https://vault.example:8200' })).toBeUndefined();
  });

  it('an unreadable state file is its own error, not a silent pass', () => {
    const state = newState();
    state.write('cluster.json', '{ not json');
    expect(() => profileSwitchError(state, 'production')).toThrow(/cluster\.json is not valid JSON/);
  });
});
