// [[databases]]: dynamic database credentials from Vault's `database` secrets engine. One table per
// connection (a privileged "editor" account Vault logs in with, its password rotated by Vault
// after the first configuration) and [[databases.roles]] per app: each lease is a LOGIN role of
// its own, granted the app's non-login group role. Strict like every table; checks that span
// entries (apps that exist, TTL order, names unique across connections) live in crossCheckDatabases.
//
// The zod schema of the table; the checks across entries and the constants are in databases.ts,
// which does not load zod (a process whose config comes from the validated-config cache never does).
import { z } from 'zod';
import { duration } from './fields.ts';

/** A Postgres identifier vaultlab writes into SQL unquoted-safe: lowercase letters, digits, "_". */
const pgIdent = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a Postgres identifier: lowercase letters, digits and "_", starting with a letter or "_", at most 63 characters');
const passwordRef = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must name a [passwords] entry (letters, digits and "_"; VAULTLAB_PASSWORD_<NAME> overrides it)');
/** "sample" (the Postgres vaultlab deploys) or an external "host:port". */
const where = z.string().regex(/^(sample|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5})$/, 'must be "sample" (the Postgres vaultlab deploys in the cluster) or an external "host:port" like "db.example.com:5432"');

export const databaseRole = z.strictObject({
  /** The Vault role: database/roles/<name>, credentials at database/creds/<name>. */
  name: z.string().regex(/^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits, "-" or "_" (it is a Vault role name)'),
  /** The [[apps]] entry whose policy may read database/creds/<name>. */
  app: z.string().min(1),
  /** The non-login role each lease user is granted (it must exist in the database first). */
  group_role: pgIdent,
  /** The Postgres database; default: the connection's (a Vault role runs its SQL through that connection). */
  database: pgIdent.optional(),
  default_ttl: duration.default('1h'),
  max_ttl: duration.default('24h'),
});

export const databaseSection = z.strictObject({
  /** The Vault connection: database/config/<name>. */
  name: z.string().regex(/^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits, "-" or "_" (it is a Vault connection name)'),
  engine: z.enum(['postgres']).default('postgres'),
  where,
  /** The Postgres database the connection (and every role's lease user) logs into. */
  database: pgIdent,
  /** The privileged account Vault logs in with and rotates (CREATEROLE, and ADMIN of the group roles). */
  editor_username: pgIdent.default('vaultlab_editor'),
  /** Name of the [passwords] entry holding the editor's original password (env VAULTLAB_PASSWORD_<NAME>). */
  editor_password: passwordRef,
  /** libpq sslmode in the connection URL. */
  ssl_mode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('disable'),
  roles: z.array(databaseRole).min(1),
});

export const databases = z.array(databaseSection).default([]);
export type DatabaseConfig = z.infer<typeof databaseSection>;
export type DatabaseRoleConfig = z.infer<typeof databaseRole>;

