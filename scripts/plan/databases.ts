// [[databases]] -> the plan of Vault's `database` engine: one connection per entry (templated URL,
// allowed_roles exactly its roles), one Vault role per [[databases.roles]] with its creation and
// revocation SQL, and the sample Postgres vaultlab deploys for where = "sample". Pure: no I/O, and
// no secret value (the editor's password is referenced by its [passwords] name only).
import type { Config } from '../config/schema.ts';
import { DATABASE_MOUNT, type DatabaseConfig } from '../config/databases.ts';
import type { DatabaseConnectionPlan, DatabaseRolePlan, DatabasesPlan, SamplePostgresPlan } from './types.ts';

/** The sample Postgres: its namespace and StatefulSet/Service name. */
export const SAMPLE_POSTGRES = { namespace: 'vaultlab-postgres', name: 'postgres', port: 5432 } as const;
export const samplePasswordSecret = (connection: string): string => `${connection}-editor`;
/** The table the sample's init step creates for a group role (the app's data). */
export const sampleTable = (groupRole: string): string => `${groupRole}_items`;

const q = (ident: string) => `"${ident}"`;

/** CREATE ROLE per lease: a LOGIN role valid until the lease ends, granted the app's group role. */
export function creationStatements(groupRole: string): string[] {
  return [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT ${q(groupRole)} TO "{{name}}";`];
}

/**
 * What a lease user owns goes to the group role; then the user is dropped. REASSIGN OWNED needs
 * the privileges of both roles, and an editor with CREATEROLE (not a superuser) is not a member
 * of the users it creates: it grants itself the lease user first (Postgres: "permission denied
 * to reassign objects" otherwise; DROP ROLE ends that membership).
 */
export function revocationStatements(groupRole: string): string[] {
  return [`GRANT "{{name}}" TO CURRENT_USER;`, `REASSIGN OWNED BY "{{name}}" TO ${q(groupRole)};`, `DROP OWNED BY "{{name}}";`, `DROP ROLE IF EXISTS "{{name}}";`];
}

/** Where a connection's database listens (the sample: its Service in the cluster). */
export function hostPort(d: Pick<DatabaseConfig, 'where'>): { host: string; port: number } {
  if (d.where === 'sample') return { host: `${SAMPLE_POSTGRES.name}.${SAMPLE_POSTGRES.namespace}.svc`, port: SAMPLE_POSTGRES.port };
  const i = d.where.lastIndexOf(':');
  return { host: d.where.slice(0, i), port: Number(d.where.slice(i + 1)) };
}

export function connectionUrl(host: string, port: number, database: string, sslMode: string): string {
  return `postgresql://{{username}}:{{password}}@${host}:${port}/${database}?sslmode=${sslMode}`;
}

function connectionPlan(config: Config, d: DatabaseConfig): DatabaseConnectionPlan {
  const { host, port } = hostPort(d);
  const namespaceOf = (app: string) => config.apps.find((a) => a.name === app)?.namespace ?? '';
  const roles: DatabaseRolePlan[] = d.roles.map((r) => ({
    name: r.name,
    dbName: d.name,
    app: r.app,
    namespace: namespaceOf(r.app),
    groupRole: r.group_role,
    database: r.database ?? d.database,
    defaultTtl: r.default_ttl,
    maxTtl: r.max_ttl,
    creationStatements: creationStatements(r.group_role),
    revocationStatements: revocationStatements(r.group_role),
  }));
  return {
    name: d.name,
    plugin: 'postgresql-database-plugin',
    sample: d.where === 'sample',
    host,
    port,
    database: d.database,
    connectionUrl: connectionUrl(host, port, d.database, d.ssl_mode),
    username: d.editor_username,
    passwordName: d.editor_password,
    allowedRoles: roles.map((r) => r.name),
    roles,
  };
}

export function buildDatabases(config: Config, postgresImage: string): DatabasesPlan | undefined {
  if (config.databases.length === 0) return undefined;
  const connections = config.databases.map((d) => connectionPlan(config, d));
  const s = connections.find((c) => c.sample);
  const sample: SamplePostgresPlan | undefined = s && {
    connection: s.name,
    namespace: SAMPLE_POSTGRES.namespace,
    name: SAMPLE_POSTGRES.name,
    image: postgresImage,
    database: s.database,
    editorUsername: s.username,
    passwordSecret: samplePasswordSecret(s.name),
    groupRoles: [...new Set(s.roles.map((r) => r.groupRole))].map((role) => ({ role, table: sampleTable(role) })),
  };
  return { mount: DATABASE_MOUNT, connections, sample };
}

/** Every database role, across connections. */
export const databaseRoles = (dp: DatabasesPlan | undefined): DatabaseRolePlan[] => dp?.connections.flatMap((c) => c.roles) ?? [];

/** The roles a namespace's policy may read credentials of (demo's shared policy: every role). */
export function databaseGrants(dp: DatabasesPlan | undefined, ns: string | undefined): string[] {
  return databaseRoles(dp)
    .filter((r) => ns === undefined || r.namespace === ns)
    .map((r) => r.name);
}

/** The connection's readable fields as written to <mount>/config/<name> (the password is added once, on creation). */
export function connectionBody(c: DatabaseConnectionPlan): Record<string, unknown> {
  return {
    plugin_name: c.plugin,
    connection_url: c.connectionUrl,
    username: c.username,
    allowed_roles: c.allowedRoles,
    verify_connection: true,
  };
}

/** The role's fields, as written to <mount>/roles/<name>. */
export function databaseRoleBody(r: DatabaseRolePlan, seconds: (d: string) => number): Record<string, unknown> {
  return {
    db_name: r.dbName,
    creation_statements: r.creationStatements,
    revocation_statements: r.revocationStatements,
    default_ttl: seconds(r.defaultTtl),
    max_ttl: seconds(r.maxTtl),
  };
}

/**
 * The init step of the sample Postgres, run once by the image's entrypoint as the editor (its
 * POSTGRES_USER) on an empty data directory: each group role (NOLOGIN), a table it may read
 * and write with one row, and nothing for PUBLIC. Group roles exist before Vault's first lease
 * (a GRANT of a missing role fails the lease).
 */
export function sampleInitSql(s: SamplePostgresPlan): string {
  const lines = [
    '-- Managed by vaultlab: the sample Postgres of [[databases]] (where = "sample").',
    `REVOKE ALL ON SCHEMA public FROM PUBLIC;`,
    `REVOKE ALL ON DATABASE ${q(s.database)} FROM PUBLIC;`,
  ];
  for (const g of s.groupRoles) {
    lines.push(
      `CREATE ROLE ${q(g.role)} NOLOGIN;`,
      `GRANT CONNECT ON DATABASE ${q(s.database)} TO ${q(g.role)};`,
      `GRANT USAGE ON SCHEMA public TO ${q(g.role)};`,
      `CREATE TABLE ${q(g.table)} (id serial PRIMARY KEY, note text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());`,
      `INSERT INTO ${q(g.table)} (note) VALUES ('hello from ${g.role}');`,
      `GRANT SELECT, INSERT ON TABLE ${q(g.table)} TO ${q(g.role)};`,
      `GRANT USAGE ON SEQUENCE ${q(`${g.table}_id_seq`)} TO ${q(g.role)};`,
    );
  }
  return `${lines.join('\n')}\n`;
}
