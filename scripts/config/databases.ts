// [[databases]]: dynamic database credentials from Vault's `database` secrets engine. One table per
// connection (a privileged "editor" account Vault logs in with, its password rotated by Vault
// after the first configuration) and [[databases.roles]] per app: each lease is a LOGIN role of
// its own, granted the app's non-login group role. Strict like every table; checks that span
// entries (apps that exist, TTL order, names unique across connections) live in crossCheckDatabases.
//
// The zod schema is in databases-schema.ts; this module does not load zod.
import type { Config } from './schema.ts';
import { ConfigError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';
import { durationSeconds } from './duration.ts';
import type { DatabaseConfig, DatabaseRoleConfig } from './databases-schema.ts';

export type { DatabaseConfig, DatabaseRoleConfig };

/** Where vaultlab mounts the database engine (one of vault.engines). */
export const DATABASE_MOUNT = 'database';

type Where = (path: (string | number)[]) => string;

/** The [passwords] names [[databases]] refer to (so VAULTLAB_PASSWORD_<NAME> alone may supply them). */
export const databasePasswordNames = (config: Config): string[] => [...new Set(config.databases.map((d) => d.editor_password))];

export function crossCheckDatabases(config: Config, passwords: Record<string, string>, where: Where): ConfigError[] {
  const errors: ConfigError[] = [];
  const err = (path: (string | number)[], message: string, hint?: string) => errors.push(new ConfigError(where(path), message, hint));
  if (config.databases.length === 0) return errors;
  if (!config.vault.engines.includes('database')) {
    err(['vault', 'engines'], 'must include "database": [[databases]] are served by Vault\'s database secrets engine', 'Add "database" to vault.engines, or remove the [[databases]] tables.');
  }
  const apps = config.apps.filter((a) => a.enabled).map((a) => a.name);
  const disabled = new Set(config.apps.filter((a) => !a.enabled).map((a) => a.name));
  const connections = new Map<string, number>();
  const roles = new Map<string, string>();
  let samples = 0;
  config.databases.forEach((d, i) => {
    const at = (...p: (string | number)[]) => ['databases', i, ...p];
    if (connections.has(d.name)) err(at('name'), `duplicate database "${d.name}" (also databases[${connections.get(d.name)}])`);
    else connections.set(d.name, i);
    if (d.where === 'sample' && ++samples > 1) err(at('where'), 'only one [[databases]] entry can use the sample Postgres', 'Point the others at an external "host:port".');
    if (d.where === 'sample' && config.vault.address !== undefined) {
      err(at('where'), 'the sample Postgres runs in the cluster, which an external Vault (vault.address) cannot reach', 'Point where at a "host:port" that Vault reaches, or use the in-cluster Vault.');
    }
    if (d.where !== 'sample') {
      const port = Number(d.where.slice(d.where.lastIndexOf(':') + 1));
      if (port < 1 || port > 65535) err(at('where'), `port ${port} is not a TCP port (1-65535)`);
    }
    if (!(d.editor_password in passwords)) {
      const guess = suggest(d.editor_password, Object.keys(passwords));
      err(at('editor_password'), `refers to "${d.editor_password}", which is neither in [passwords] nor set as VAULTLAB_PASSWORD_${d.editor_password.toUpperCase()}${guess ? `; did you mean "${guess}"?` : ''}`,
        `Add ${d.editor_password} = "" to [passwords]${d.where === 'sample' ? ' (empty: deploy generates one for the sample Postgres)' : ' and give the editor\'s password through the environment'}.`);
    } else if (d.where !== 'sample' && passwords[d.editor_password] === '') {
      err(at('editor_password'), `"${d.editor_password}" is empty: Vault needs the external database's editor password once, to log in and rotate it`,
        `Set VAULTLAB_PASSWORD_${d.editor_password.toUpperCase()} in the environment (preferred) or a value in [passwords].`);
    }
    d.roles.forEach((r, ri) => {
      const rat = (...p: (string | number)[]) => at('roles', ri, ...p);
      if (config.kubernetes_roles.some((k) => k.name === r.name)) err(rat('name'), `"${r.name}" is also a [[kubernetes_roles]] name: \`vaultlab creds <role>\` must know which one is meant`, 'Give one of them another name.');
      if (roles.has(r.name)) err(rat('name'), `duplicate database role "${r.name}" (also ${roles.get(r.name)}): Vault's database roles share one namespace`);
      else roles.set(r.name, `databases[${i}] "${d.name}"`);
      if (!apps.includes(r.app)) {
        const guess = suggest(r.app, apps);
        err(rat('app'), disabled.has(r.app) ? `app "${r.app}" is disabled (enabled = false)` : `"${r.app}" is not the name of an [[apps]] entry${guess ? `; did you mean "${guess}"?` : ''}`,
          apps.length ? `Credentials are granted to an enabled app's policy: ${apps.join(', ')}.` : 'Add an [[apps]] entry first.');
      }
      if (r.database !== undefined && r.database !== d.database) {
        err(rat('database'), `"${r.database}" differs from the connection's database "${d.database}": a Vault role creates its users through that connection`,
          'Remove database here, or add a [[databases]] entry for that database.');
      }
      if (r.group_role === d.editor_username) err(rat('group_role'), `"${r.group_role}" is the editor account; the group role must be a non-login role of the app`);
      const def = durationSeconds(r.default_ttl);
      const max = durationSeconds(r.max_ttl);
      if (def < 1) err(rat('default_ttl'), `${r.default_ttl} is shorter than a second`, 'Use at least "1s".');
      if (max < def) err(rat('max_ttl'), `${r.max_ttl} is shorter than default_ttl ${r.default_ttl}`, 'Make max_ttl at least default_ttl: a lease is renewed up to max_ttl, then re-issued.');
    });
  });
  return errors;
}
