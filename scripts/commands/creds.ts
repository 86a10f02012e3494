// `vaultlab creds <role>`: one short-lived credential for a human (a demo presenter, a debugging
// session): a Postgres user from a [[databases.roles]] role, or a ServiceAccount token from a
// [[kubernetes_roles]] role. Prints who it is, the lease id and its expiry; the password or token
// only with --show-secret, and then on stdout only (never in a log: everything else is redacted).
// `--revoke <lease-id>` ends a lease at once.
import type { Command, CommandContext } from './types.ts';
import { VAULT_OPTIONS, openSession, type VaultSession } from '../vault/session.ts';
import { UsageError, VaultlabError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';

type Found = { kind: 'database'; mount: string; name: string } | { kind: 'kubernetes'; mount: string; name: string; namespaces: string[] };

/** The role by name, among [[databases.roles]] and [[kubernetes_roles]]. */
export function findRole(s: Pick<VaultSession, 'plan'>, name: string): Found {
  const db = s.plan.vault.databases;
  const ks = s.plan.vault.kubernetesSecrets;
  const dbRole = db?.connections.flatMap((c) => c.roles).find((r) => r.name === name);
  if (dbRole) return { kind: 'database', mount: db!.mount, name };
  const kRole = ks?.roles.find((r) => r.name === name);
  if (kRole) return { kind: 'kubernetes', mount: ks!.mount, name, namespaces: kRole.namespaces };
  const all = [...(db?.connections.flatMap((c) => c.roles.map((r) => r.name)) ?? []), ...(ks?.roles.map((r) => r.name) ?? [])];
  const guess = suggest(name, all);
  throw new UsageError(`no role "${name}" in [[databases.roles]] or [[kubernetes_roles]]${guess ? `; did you mean "${guess}"?` : ''}`,
    all.length ? `Roles in this config: ${all.join(', ')}.` : 'Add a [[databases]] entry with [[databases.roles]], or a [[kubernetes_roles]] entry, to config.toml.');
}

const inWords = (seconds: number) => (seconds >= 3600 ? `${Math.round((seconds / 3600) * 10) / 10}h` : seconds >= 60 ? `${Math.round(seconds / 60)}m` : `${seconds}s`);

/** --show-secret: the value itself, deliberately past the redactor, on stdout only. */
function writeUnredacted(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function run(ctx: CommandContext, s: VaultSession): Promise<number> {
  const { resolveToken } = await import('../vault/token.ts');
  const tok = resolveToken(s.state, { flag: s.tokenFlag, env: s.tokenEnv });
  if (!tok) throw new VaultlabError(`no token for Vault at ${s.client.address}`, { hint: 'Set VAULT_TOKEN (a token whose policy may read the role\'s creds path), or run `vaultlab vault up` first.' });
  s.client.setToken(tok.token);
  const show = !!ctx.options['show-secret'];

  const revoke = ctx.options.revoke as string | undefined;
  if (revoke !== undefined) {
    if (ctx.positionals.length) throw new UsageError('--revoke takes a lease id and no role', 'Run `vaultlab creds --revoke <lease-id>`.');
    const { revokeDatabaseLease } = await import('../vault/database-creds.ts');
    await revokeDatabaseLease(s.client, revoke);
    if (ctx.flags.json) ctx.out.result({ ok: true, revoked: revoke });
    else ctx.out.info(`revoked ${revoke}`);
    return 0;
  }

  if (ctx.positionals.length !== 1) throw new UsageError('creds needs exactly one role', 'Run `vaultlab creds <role>`, or `vaultlab creds --revoke <lease-id>`.');
  const role = findRole(s, ctx.positionals[0]!);
  const ttl = ctx.options.ttl as string | undefined;
  if (ttl !== undefined && !/^([0-9]+(s|m|h))+$|^[0-9]+$/.test(ttl)) throw new UsageError(`--ttl "${ttl}" is not a duration`, 'Use e.g. --ttl 15m, --ttl 1h or --ttl 90 (seconds).');

  if (role.kind === 'database') {
    if (ctx.options.namespace !== undefined) throw new UsageError('--namespace applies to kubernetes roles only', `"${role.name}" is a database role.`);
    const { issueDatabaseCredentials, renewDatabaseLease } = await import('../vault/database-creds.ts');
    let c = await issueDatabaseCredentials(s.client, { role: role.name, mount: role.mount });
    if (ttl !== undefined) c = { ...c, ...(await renewDatabaseLease(s.client, c.leaseId, ttl)) };
    const facts = { ok: true, kind: 'database', role: role.name, username: c.username, leaseId: c.leaseId, leaseDuration: c.leaseDuration, renewable: c.renewable, expiresAt: c.expiresAt };
    if (ctx.flags.json) {
      if (show) writeUnredacted(JSON.stringify({ ...facts, password: c.password }, null, 2));
      else ctx.out.result(facts);
    } else {
      ctx.out.info(`database role ${role.name}: user ${c.username}`);
      ctx.out.info(`  lease    ${c.leaseId}`);
      ctx.out.info(`  expires  ${c.expiresAt} (in ${inWords(c.leaseDuration)}${c.renewable ? ', renewable up to the role\'s max_ttl' : ''})`);
      if (show) writeUnredacted(c.password);
      else ctx.out.info(`  password not shown (--show-secret prints it); revoke: vaultlab creds --revoke ${c.leaseId}`);
    }
    return 0;
  }

  const namespace = (ctx.options.namespace as string | undefined) ?? (role.namespaces.length === 1 ? role.namespaces[0] : undefined);
  if (!namespace) throw new UsageError(`kubernetes role "${role.name}" allows several namespaces: give --namespace`, `One of: ${role.namespaces.join(', ')}.`);
  const { issueKubernetesToken } = await import('../vault/kubernetes-creds.ts');
  const t = await issueKubernetesToken(s.client, { role: role.name, namespace, mount: role.mount, ...(ttl !== undefined ? { ttl: /^[0-9]+$/.test(ttl) ? Number(ttl) : ttl } : {}) });
  const facts = { ok: true, kind: 'kubernetes', role: role.name, serviceAccount: `${t.serviceAccountNamespace}/${t.serviceAccountName}`, leaseId: t.leaseId, leaseDuration: t.leaseDuration, expiresAt: t.expiresAt };
  if (ctx.flags.json) {
    if (show) writeUnredacted(JSON.stringify({ ...facts, token: t.token }, null, 2));
    else ctx.out.result(facts);
  } else {
    ctx.out.info(`kubernetes role ${role.name}: ServiceAccount ${t.serviceAccountNamespace}/${t.serviceAccountName}`);
    ctx.out.info(`  lease    ${t.leaseId}`);
    ctx.out.info(`  expires  ${t.expiresAt} (in ${inWords(t.leaseDuration)})`);
    for (const w of t.warnings) ctx.out.warn(w);
    if (show) writeUnredacted(t.token);
    else ctx.out.info(`  token not shown (--show-secret prints it); revoke: vaultlab creds --revoke ${t.leaseId}`);
  }
  return 0;
}

export const commands: Command[] = [
  {
    name: 'creds',
    summary: 'Issue one short-lived credential (database user or ServiceAccount token) from Vault; --revoke ends one',
    description: [
      'A [[databases.roles]] role: Vault creates a Postgres user of its own, valid until the lease ends.',
      'A [[kubernetes_roles]] role: Vault issues a ServiceAccount token (--namespace picks the namespace).',
      'Prints the user or ServiceAccount, the lease id and the expiry; the password or token only with',
      '--show-secret, on stdout. --revoke LEASE_ID ends a lease at once (the database user is dropped,',
      'a generated ServiceAccount deleted). The token used must be allowed to read the role\'s creds path.',
      '',
      'Examples:',
      '  vaultlab creds orders-app',
      '  vaultlab creds orders-app --ttl 10m --show-secret',
      '  vaultlab creds pod-reader --namespace team-a --json',
      '  vaultlab creds --revoke database/creds/orders-app/AbC123',
    ].join('\n'),
    args: '<role>',
    options: {
      ...VAULT_OPTIONS,
      namespace: { type: 'string', value: 'NS', description: 'kubernetes roles: the namespace of the token (default: the role\'s only one)' },
      ttl: { type: 'string', value: 'DURATION', description: 'lifetime instead of the role\'s default (capped by its max TTL)' },
      revoke: { type: 'string', value: 'LEASE_ID', description: 'end this lease now instead of issuing one' },
      'show-secret': { type: 'boolean', description: 'also print the password or token (stdout only)' },
    },
    async run(ctx) {
      const s = openSession(ctx);
      try {
        return await run(ctx, s);
      } finally {
        s.client.close();
      }
    },
  },
];
