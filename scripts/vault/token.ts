// Tokens for a run, and the production setup token: a limited token for day-2 runs, after
// which the root token is revoked. Root is regenerated from unseal keys only when truly needed.
import { randomBytes } from 'node:crypto';
import type { VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import { INIT_FILE, SETUP_TOKEN_FILE, readInit, readSetupToken, type SetupToken } from './keys.ts';

export type TokenSource = 'flag' | 'env' | 'setup-token' | 'root-token';

/** --token > VAULT_TOKEN/BAO_TOKEN > setup token (production) > root token from the init file. */
export function resolveToken(state: StateDir, explicit: { flag?: string | undefined; env?: string | undefined }): { token: string; source: TokenSource } | undefined {
  if (explicit.flag) return { token: explicit.flag, source: 'flag' };
  if (explicit.env) return { token: explicit.env, source: 'env' };
  const setup = readSetupToken(state);
  if (setup) return { token: setup.token, source: 'setup-token' };
  const init = readInit(state);
  if (init?.root_token) return { token: init.root_token, source: 'root-token' };
  return undefined;
}

/**
 * production: create the `vaultlab-setup` token (orphan, renewable), store it 0600, then revoke
 * the root token the client holds and record that in the init file. Idempotent: with a working
 * setup token already stored, does nothing.
 */
export async function establishSetupToken(client: VaultClient, plan: Plan, state: StateDir): Promise<'created' | 'unchanged'> {
  const existing = readSetupToken(state);
  if (existing) {
    const r = await client.get('auth/token/lookup-self', { token: existing.token, accept: [403] });
    if (r.status !== 403) return 'unchanged';
  }
  const policy = plan.vault.setupToken.policy.name;
  const created = await client.post<any>('auth/token/create-orphan', {
    policies: [policy],
    display_name: 'vaultlab-setup',
    ttl: '768h',
    renewable: true,
    no_default_policy: false,
  });
  const token: SetupToken = {
    token: created.data.auth.client_token,
    accessor: created.data.auth.accessor,
    policies: created.data.auth.policies,
    created_at: new Date().toISOString(),
  };
  registerSecret(token.token);
  state.writeJson(SETUP_TOKEN_FILE, token);
  await revokeRoot(client, state);
  client.setToken(token.token);
  return 'created';
}

/** Revokes the token the client holds if it is a root token, and blanks it in the init file. */
export async function revokeRoot(client: VaultClient, state: StateDir): Promise<boolean> {
  const self = await client.get<any>('auth/token/lookup-self');
  if (!(self.data?.data?.policies ?? []).includes('root')) return false;
  await client.post('auth/token/revoke-self', {});
  const init = readInit(state);
  if (init) state.writeJson(INIT_FILE, { ...init, root_token: null, root_token_revoked: new Date().toISOString() });
  return true;
}

/**
 * Regenerates a root token from unseal key shares with a one-time password. Used only when the
 * setup token cannot do the job; the caller revokes the new root token when done.
 * HashiCorp Vault serves this unauthenticated at sys/generate-root; OpenBao 2.x at
 * sys/generate-root-token, and only to an authenticated caller (the setup policy allows it).
 */
export async function generateRoot(client: VaultClient, keys: string[]): Promise<string> {
  let base = 'sys/generate-root-token';
  const auth = client.hasToken() ? {} : { anonymous: true };
  let attempt = await client.get<any>(`${base}/attempt`, { ...auth, accept: [403, 404, 405] });
  if (attempt.status !== 200) {
    // HashiCorp Vault, or an OpenBao caller without a working token: the unauthenticated endpoint.
    base = 'sys/generate-root';
    attempt = await client.get<any>(`${base}/attempt`, { anonymous: true, accept: [404, 405] });
    if (attempt.status !== 200) {
      throw new VaultlabError('this server serves root token generation only to an authenticated caller, and vaultlab has no working token', {
        hint: 'OpenBao: set disable_unauthed_generate_root_endpoints = false on the listener for the few minutes this takes, then remove it again.',
      });
    }
  }
  const opts = base === 'sys/generate-root' ? { anonymous: true } : auth;
  // Vault answers with top-level fields, OpenBao inside "data".
  const body = (r: { data: any }) => r.data?.data ?? r.data;
  if (body(attempt).started) await client.delete(`${base}/attempt`, opts);
  const otpLength: number = body(attempt).otp_length || 28;
  const otp = randomBytes(otpLength * 2).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, otpLength);
  const start = await client.put<any>(`${base}/attempt`, { otp }, { ...opts, retry: false });
  const nonce: string = body(start).nonce;
  let encoded: string | undefined;
  for (const key of keys) {
    const r = await client.put<any>(`${base}/update`, { key, nonce }, { ...opts, retry: false });
    if (body(r).complete) {
      encoded = body(r).encoded_token || body(r).encoded_root_token;
      break;
    }
  }
  if (!encoded) {
    await client.delete(`${base}/attempt`, opts);
    throw new VaultlabError('not enough unseal key shares to generate a root token', { hint: 'Give at least the threshold number of shares.' });
  }
  const enc = Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  const pad = Buffer.from(otp, 'utf8');
  const token = Buffer.from(enc.map((b, i) => b ^ pad[i]!)).toString('utf8');
  registerSecret(token);
  return token;
}
