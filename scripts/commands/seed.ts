// `vaultlab seed`: the [[secrets]] matrix into Vault, idempotently.
import type { Command } from './types.ts';
import { VAULT_OPTIONS, openSession } from '../vault/session.ts';
import { VaultlabError } from '../lib/errors.ts';

export const commands: Command[] = [
  {
    name: 'seed',
    summary: 'Write the [[secrets]] matrix into Vault; idempotent, --rotate to regenerate random values',
    description: [
      'Values are the [passwords] literal (or VAULTLAB_PASSWORD_<NAME>) or random bytes from Vault\'s',
      'sys/tools/random, bcrypt-hashed where configured. All keys of a path go in one KV v2 patch, so',
      'sibling keys are never clobbered. A second run writes nothing: random values are kept unless',
      '--rotate, literals that match are not rewritten, bcrypt hashes are kept while they verify.',
      'Output lists path, key and action per entry, never a value.',
    ].join('\n'),
    options: {
      ...VAULT_OPTIONS,
      rotate: { type: 'boolean', description: 'regenerate every random value (literals are restored anyway)' },
      only: { type: 'string', multiple: true, value: 'PATH[:KEY]', description: 'only these entries' },
    },
    async run(ctx) {
      const s = openSession(ctx);
      const release = s.state.lock('seed');
      try {
        const { seedVault } = await import('../vault/seed.ts');
        const { resolveToken } = await import('../vault/token.ts');
        const { printSeed } = await import('../vault/cli-helpers.ts');
        const tok = resolveToken(s.state, { flag: s.tokenFlag, env: s.tokenEnv });
        if (!tok) throw new VaultlabError(`no token for Vault at ${s.client.address}`, { hint: 'Set VAULT_TOKEN, or run `vaultlab vault up` first (it stores the token in the state dir).' });
        s.client.setToken(tok.token);
        const report = await seedVault(s.client, s.plan, s.loaded.passwords, {
          rotate: !!ctx.options.rotate,
          only: ctx.options.only as string[] | undefined,
          ledger: s.state,
        });
        if (ctx.flags.json) ctx.out.result({ ok: true, ...report });
        else printSeed(ctx, report);
        return 0;
      } finally {
        release();
        s.client.close();
      }
    },
  },
];
