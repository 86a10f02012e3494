// `vaultlab vault init | unseal | configure | up`: the Vault lifecycle against any reachable
// Vault (--vault-addr / VAULT_ADDR), no cluster needed.
import type { Command, CommandContext } from './types.ts';
import { VAULT_OPTIONS, openSession, keysFromUser, type VaultSession } from '../vault/session.ts';
import type { UnsealOutcome } from '../vault/seal.ts';

async function withSession<T>(ctx: CommandContext, fn: (s: VaultSession) => Promise<T>): Promise<T> {
  const s = openSession(ctx);
  const release = s.state.lock(`vault ${ctx.positionals.join(' ')}`.trim());
  try {
    return await fn(s);
  } finally {
    release();
    s.client.close();
  }
}

const KEY_OPTIONS = {
  'keys-file': { type: 'string', value: 'FILE', description: 'unseal key shares: a vault-init.json, or one share per line' },
  stdin: { type: 'boolean', description: 'read key shares from stdin, one per line' },
  member: { type: 'string', multiple: true, value: 'URL', description: 'HA: another member to unseal after --vault-addr, once it has joined' },
} as const;

/** Clients for the other HA members (--member), trusting the same CA. */
async function memberClients(ctx: CommandContext, s: VaultSession) {
  const { VaultClient } = await import('../adapters/vault.ts');
  return ((ctx.options.member as string[] | undefined) ?? []).map((address) => new VaultClient({ address, caPem: s.caPem }));
}
const CONFIGURE_OPTIONS = {
  'kube-host': { type: 'string', value: 'URL', description: 'Kubernetes API server as Vault reaches it' },
  'kube-ca-file': { type: 'string', value: 'FILE', description: 'its CA certificate (PEM)' },
  'audit-path': { type: 'string', value: 'PATH', description: 'file audit device path (production; default on the audit volume)' },
} as const;

const tableLine = (i: { kind: string; name: string; action: string; detail?: string }) =>
  `  ${i.action.padEnd(9)} ${i.kind.padEnd(11)} ${i.name}${i.detail ? `  (${i.detail})` : ''}`;

export const commands: Command[] = [
  {
    name: 'vault init',
    summary: 'Initialize Vault and store the keys before anything else',
    description: [
      'Initializes an uninitialized Vault with the profile\'s key shares (demo 1/1, production 5/3) and',
      'writes the result to <state-dir>/vault-init.json (0600) before anything else happens.',
      'A Vault that is already initialized is left alone.',
    ].join('\n'),
    options: { ...VAULT_OPTIONS },
    async run(ctx) {
      return withSession(ctx, async (s) => {
        const { initVault } = await import('../vault/init.ts');
        const r = await initVault(s.client, s.plan, s.state);
        if (ctx.flags.json) ctx.out.result({ ok: true, action: r.action, stored: r.stored, shares: s.plan.vault.init.shares, threshold: s.plan.vault.init.threshold });
        else if (r.action === 'initialized') {
          ctx.out.info(`Vault at ${s.client.address} initialized: ${s.plan.vault.init.shares} key share(s), threshold ${s.plan.vault.init.threshold}.`);
          ctx.out.info(`Keys and root token written to ${r.stored.join(', ')} (mode 0600).`);
          if (s.plan.profile === 'production') ctx.out.info('Move that file somewhere offline once setup is done: it is the only copy of the key shares.');
        } else ctx.out.info(`Vault at ${s.client.address} is already initialized; nothing to do.`);
        return 0;
      });
    },
  },
  {
    name: 'vault unseal',
    summary: 'Unseal Vault from stored keys, a file, stdin or a prompt',
    description: 'Demo: uses the stored key automatically. Production: give the shares with --keys-file, --stdin, or type them at the prompt. A no-op when Vault is unsealed.',
    options: { ...VAULT_OPTIONS, ...KEY_OPTIONS },
    async run(ctx) {
      return withSession(ctx, async (s) => {
        const { unsealVault, waitForActive } = await import('../vault/seal.ts');
        const { storedPlaintextKeys } = await import('../vault/keys.ts');
        const { noKeysError } = await import('../vault/up.ts');
        const members = await memberClients(ctx, s);
        try {
          const status = await s.client.sealStatus();
          const sealed = status.sealed || (await Promise.all(members.map((m) => m.sealStatus()))).some((m) => m.sealed);
          let keys: string[] | undefined;
          if (sealed) {
            keys = (await keysFromUser(ctx, status.t)) ?? storedPlaintextKeys(s.state);
            if (!keys) throw noKeysError(s.client.address, s.state.file('vault-init.json'));
          }
          let outcomes: UnsealOutcome[];
          if (members.length && keys) {
            // Every member, restarted ones too (a leader needs a quorum), then the cluster formed.
            const { formHaCluster } = await import('../production/ha.ts');
            const ha = await formHaCluster(s.client, members, { keys });
            outcomes = ha.members.map((m) => ({ address: m.address, action: m.unseal, sharesUsed: m.sharesUsed }));
          } else {
            outcomes = [status.sealed ? await unsealVault(s.client, keys!) : { address: s.client.address, action: 'already-unsealed', sharesUsed: 0 }];
            await waitForActive(s.client);
            outcomes.push(...members.map((m) => ({ address: m.address, action: 'already-unsealed' as const, sharesUsed: 0 })));
          }
          if (ctx.flags.json) ctx.out.result(members.length ? { ok: true, members: outcomes } : { ok: true, ...outcomes[0] });
          else {
            for (const o of outcomes) {
              ctx.out.info(o.action === 'unsealed' ? `Vault at ${o.address} unsealed with ${o.sharesUsed} key share(s).` : `Vault at ${o.address} is already unsealed.`);
            }
          }
          return 0;
        } finally {
          for (const m of members) m.close();
        }
      });
    },
  },
  {
    name: 'vault configure',
    summary: 'Reconcile engines, Kubernetes auth, roles, policies and audit with the config',
    description: [
      'Declarative: reads every item and writes only what differs; a second run writes nothing.',
      'With --kube-host and --kube-ca-file, configures which API server validates ServiceAccount tokens',
      '(deploy passes the cluster\'s own). --prune deletes vaultlab-named policies and roles the config no longer has.',
    ].join('\n'),
    options: {
      ...VAULT_OPTIONS,
      ...CONFIGURE_OPTIONS,
      prune: { type: 'boolean', description: 'delete vaultlab policies (eso-*) and roles (eso-*-role) no longer in the config' },
    },
    async run(ctx) {
      return withSession(ctx, async (s) => {
        const { configureVault, countActions } = await import('../vault/configure.ts');
        const { resolveToken } = await import('../vault/token.ts');
        const { kubeTarget } = await import('../vault/cli-helpers.ts');
        const tok = resolveToken(s.state, { flag: s.tokenFlag, env: s.tokenEnv });
        if (tok) s.client.setToken(tok.token);
        const items = await configureVault(s.client, s.plan, {
          kubernetes: kubeTarget(ctx),
          auditPath: ctx.options['audit-path'] as string | undefined,
          passwords: s.loaded.passwords,
          prune: !!ctx.options.prune,
        });
        const counts = countActions(items);
        if (ctx.flags.json) ctx.out.result({ ok: true, counts, items, writes: s.client.writes });
        else {
          for (const i of items) ctx.out.info(tableLine(i));
          ctx.out.info(`configure: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}`);
        }
        return 0;
      });
    },
  },
  {
    name: 'vault up',
    summary: 'init + unseal + configure + seed against any reachable Vault',
    description: 'Each stage is idempotent: `vault up` on a finished Vault only reads. Production also creates the limited vaultlab-setup token and revokes the root token.',
    options: {
      ...VAULT_OPTIONS,
      ...KEY_OPTIONS,
      ...CONFIGURE_OPTIONS,
      'no-seed': { type: 'boolean', description: 'stop after configure' },
    },
    async run(ctx) {
      return withSession(ctx, async (s) => {
        const { vaultUp } = await import('../vault/up.ts');
        const { kubeTarget, printSeed } = await import('../vault/cli-helpers.ts');
        const members = await memberClients(ctx, s);
        let r: Awaited<ReturnType<typeof vaultUp>>;
        try {
          const status = await s.client.sealStatus();
          const memberSealed = (await Promise.all(members.map((m) => m.sealStatus()))).some((m) => m.sealed);
          const keys = status.initialized && (status.sealed || memberSealed) ? await keysFromUser(ctx, status.t) : undefined;
          const upOptions = {
            ...(keys ? { keys } : {}),
            token: { flag: s.tokenFlag, env: s.tokenEnv },
            configure: { kubernetes: kubeTarget(ctx), auditPath: ctx.options['audit-path'] as string | undefined },
            seed: ctx.options['no-seed'] ? (false as const) : {},
            passwords: s.loaded.passwords,
          };
          if (members.length) {
            const { haUp } = await import('../production/ha.ts');
            const { up, ha } = await haUp(s.client, members, s.plan, s.state, upOptions);
            r = { ...up, unseal: ha.members.map((m) => ({ address: m.address, action: m.unseal, sharesUsed: m.sharesUsed })) };
          } else r = await vaultUp(s.client, s.plan, s.state, upOptions);
        } finally {
          for (const m of members) m.close();
        }
        if (ctx.flags.json) ctx.out.result({ ok: true, ...r, init: { action: r.init.action, stored: r.init.stored } });
        else {
          ctx.out.info(`init:      ${r.init.action}${r.init.stored.length ? ` (keys in ${r.init.stored.join(', ')})` : ''}`);
          ctx.out.info(`unseal:    ${r.unseal.map((u) => `${u.address} ${u.action}`).join(', ')}`);
          if (r.setupToken) ctx.out.info(`token:     vaultlab-setup ${r.setupToken}; root token revoked`);
          for (const i of r.configure) ctx.out.info(tableLine(i));
          if (r.seed) printSeed(ctx, r.seed);
        }
        return 0;
      });
    },
  },
];
