// What every Vault command needs: config -> plan, the state dir, and a client for the right
// address with the right CA and token. No cluster required.
import { readFileSync } from 'node:fs';
import type { CommandContext } from '../commands/types.ts';
import { loadOptions } from '../commands/types.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { buildPlan } from '../plan/build.ts';
import type { Plan } from '../plan/types.ts';
import { stateDirFor, type StateDir } from '../lib/state.ts';
import { VaultClient, vaultEnv } from '../adapters/vault.ts';
import { VaultlabError } from '../lib/errors.ts';
import { readKeysFile, parseKeys } from './keys.ts';

export interface VaultSession {
  loaded: LoadedConfig;
  plan: Plan;
  state: StateDir;
  client: VaultClient;
  /** The CA Vault's certificate is checked against (https), for clients of other HA members. */
  caPem: string | undefined;
  tokenFlag: string | undefined;
  tokenEnv: string | undefined;
}

export const VAULT_OPTIONS = {
  'vault-addr': { type: 'string', value: 'URL', description: 'Vault address (default VAULT_ADDR/BAO_ADDR, else the deployed Vault)' },
  token: { type: 'string', value: 'TOKEN', description: 'token (prefer VAULT_TOKEN/BAO_TOKEN: a flag shows in `ps`)' },
  'ca-cert': { type: 'string', value: 'FILE', description: 'CA certificate (PEM) to verify Vault\'s TLS certificate (default VAULT_CACERT)' },
  'state-dir': { type: 'string', value: 'DIR', description: 'state directory (default .vaultlab/<cluster>)' },
} as const;

export function openSession(ctx: CommandContext): VaultSession {
  const loaded = loadConfig(loadOptions(ctx.flags));
  const plan = buildPlan(loaded);
  const state = stateDirFor(plan.cluster.name, ctx.options['state-dir'] as string | undefined);
  const env = vaultEnv();
  const address = (ctx.options['vault-addr'] as string | undefined) ?? env.address ?? plan.vault.hostAddress;
  const caFile = (ctx.options['ca-cert'] as string | undefined) ?? env.caCertFile ?? (state.has('tls/ca.crt') ? state.file('tls/ca.crt') : undefined);
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new VaultlabError(`cannot read the CA certificate ${caFile}: ${(err as Error).message}`, { exitCode: 2 });
    }
  }
  const client = new VaultClient({ address, caPem });
  return { loaded, plan, state, client, caPem, tokenFlag: ctx.options.token as string | undefined, tokenEnv: env.token };
}

/** Unseal keys from --keys-file, --stdin, or a hidden prompt (never from argv). */
export async function keysFromUser(ctx: CommandContext, needed: number): Promise<string[] | undefined> {
  const file = ctx.options['keys-file'] as string | undefined;
  if (file) return readKeysFile(file);
  if (ctx.options.stdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return parseKeys(Buffer.concat(chunks).toString('utf8'), 'stdin');
  }
  if (ctx.flags.ci || !process.stdin.isTTY) return undefined;
  const keys: string[] = [];
  for (let i = 1; i <= needed; i++) keys.push(await promptHidden(`Unseal key share ${i} of ${needed}: `));
  return parseKeys(keys.join('\n'), 'prompt');
}

async function promptHidden(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
  let asked = false;
  out._writeToOutput = (s: string) => {
    if (!asked) {
      out.output.write(s);
      asked = true;
    }
  };
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer.trim());
    });
  });
}
