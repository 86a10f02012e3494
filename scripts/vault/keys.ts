// Where Vault's init result lives, and how the token for a run is found.
import { readFileSync } from 'node:fs';
import type { StateDir } from '../lib/state.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';

export const INIT_FILE = 'vault-init.json';
export const SETUP_TOKEN_FILE = 'setup-token.json';
/** An external Vault's TokenReview account whose token Vault holds ({ uid }): a recreated account needs a new token. */
export const REVIEWER_FILE = 'token-reviewer.json';

export interface InitResult {
  keys: string[];
  keys_base64: string[];
  root_token: string | null;
  /** Set when vaultlab revoked the root token (production). */
  root_token_revoked?: string;
  shares: number;
  threshold: number;
  /** Keys are PGP-encrypted: vaultlab cannot use them itself. */
  pgp?: boolean;
  initialized_at: string;
  profile: string;
}

export function registerInit(init: InitResult): InitResult {
  for (const k of [...init.keys, ...init.keys_base64]) registerSecret(k);
  registerSecret(init.root_token);
  return init;
}

export function readInit(state: StateDir): InitResult | undefined {
  const init = state.readJson<InitResult>(INIT_FILE);
  return init ? registerInit(init) : undefined;
}

/** The stored key shares vaultlab itself can use: none when missing or PGP-encrypted (only their owners can decrypt them). */
export function storedPlaintextKeys(state: StateDir): string[] | undefined {
  const init = readInit(state);
  return init && !init.pgp ? init.keys_base64 : undefined;
}

export interface SetupToken {
  token: string;
  accessor: string;
  policies: string[];
  created_at: string;
}

export function readSetupToken(state: StateDir): SetupToken | undefined {
  const t = state.readJson<SetupToken>(SETUP_TOKEN_FILE);
  if (t) registerSecret(t.token);
  return t;
}

/**
 * Unseal keys from a file: a vaultlab/`vault operator init -format=json` result
 * ({"keys_base64": [...]} or {"unseal_keys_b64": [...]}) or one key per line.
 */
export function parseKeys(text: string, source: string): string[] {
  const trimmed = text.trim();
  let keys: string[];
  if (trimmed.startsWith('{')) {
    let json: any;
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new VaultlabError(`${source}: not valid JSON`, { exitCode: 2 });
    }
    keys = json.keys_base64 ?? json.unseal_keys_b64 ?? json.keys ?? json.unseal_keys_hex ?? [];
  } else {
    keys = trimmed.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  }
  if (!Array.isArray(keys) || keys.length === 0) throw new VaultlabError(`${source}: no unseal keys found`, { exitCode: 2, hint: 'Give a vault-init.json, or one key per line.' });
  for (const k of keys) registerSecret(k);
  return keys;
}

export function readKeysFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new VaultlabError(`cannot read keys file ${path}: ${(err as Error).message}`, { exitCode: 2 });
  }
  return parseKeys(text, path);
}
