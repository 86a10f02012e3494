// Vault Agent Injector, pure side: config -> the files the agent renders, the app's role
// (injector-<app>-role, bound to the ServiceAccount named after the app) and its policy.
import type { AppConfig, AppSecretConfig } from '../../config/schema.ts';
import type { PolicyPlan, RolePlan } from '../../plan/types.ts';
import { perAppVaultAccess } from '../per-app-access.ts';
import { deliveryRoleName, type CheckContext, type InjectorAppPlan, type InjectorDatabasePlan, type InjectorFilePlan, type PlanContext, type SecretDataPlan } from '../types.ts';
import { suggest } from '../../lib/suggest.ts';
import { DATABASE_MOUNT } from '../../config/databases.ts';
import { hostPort, sampleTable } from '../../plan/databases.ts';

export const SECRETS_DIR = '/vault/secrets';
/** The projected ServiceAccount token (audience = the role's) the agent logs in with. */
export const TOKEN_VOLUME = 'vault-token';

const quote = (s: string) => JSON.stringify(s);

/**
 * vaultlab's default file: one "<secret_key>=<value>" line per data mapping, in order. Each value is
 * read with `secret "<mount>/data/<path>"` (KV v2) and `index .Data.data "<key>"`, so keys with dots work.
 */
export function defaultTemplate(mount: string, data: SecretDataPlan[]): string {
  return data.map((d) => `{{ with secret ${quote(`${mount}/data/${d.path}`)} }}${d.secretKey}={{ index .Data.data ${quote(d.key)} }}{{ end }}\n`).join('');
}

/**
 * The config's file_template, run with the data mappings as its dot: "{{ .DB_PASSWORD }}", or
 * {{ index . "db-password" }}. The values are collected first into a map (sprig's dict, which
 * Vault Agent's template engine includes), then the file_template is rendered over it.
 */
export function customTemplate(mount: string, data: SecretDataPlan[], fileTemplate: string): string {
  const collect = data.map((d) => `{{- with secret ${quote(`${mount}/data/${d.path}`)} }}{{ $_ := sprig_set $vaultlab ${quote(d.secretKey)} (index .Data.data ${quote(d.key)}) }}{{ end -}}\n`).join('');
  return `{{- $vaultlab := sprig_dict -}}\n${collect}{{- with $vaultlab }}${fileTemplate}{{ end }}`;
}

/** The value vaultlab's default template renders, from Vault's values (for verify's digest). */
export function expectedDefaultFile(data: SecretDataPlan[], value: (d: SecretDataPlan) => string): string {
  return data.map((d) => `${d.secretKey}=${value(d)}\n`).join('');
}

/** The variables a database_role file defines, in order (libpq's own names, so `. file && psql` connects). */
export const DATABASE_FILE_KEYS = ['PGUSER', 'PGPASSWORD', 'PGHOST', 'PGPORT', 'PGDATABASE', 'VAULT_LEASE_ID'] as const;

/**
 * A database_role file: the lease's user and password (Vault's database/creds/<role>), where to
 * connect, and the lease id (no secret: `vaultlab status` lists the same), one shell assignment a
 * line, single-quoted. The agent renews the lease and renders a new user when it re-issues one.
 */
export function databaseTemplate(db: InjectorDatabasePlan): string {
  return (
    `{{- with secret ${quote(db.credsPath)} -}}\n` +
    `PGUSER='{{ .Data.username }}'\nPGPASSWORD='{{ .Data.password }}'\n` +
    `PGHOST='${db.host}'\nPGPORT='${db.port}'\nPGDATABASE='${db.database}'\n` +
    `VAULT_LEASE_ID='{{ .LeaseID }}'\n` +
    `{{- end }}\n`
  );
}

/** [[databases.roles]] <name> -> where its leases connect (undefined: no such role). */
function databaseFile(c: PlanContext, role: string): InjectorDatabasePlan | undefined {
  for (const d of c.config.databases) {
    const r = d.roles.find((x) => x.name === role);
    if (!r) continue;
    const { host, port } = hostPort(d);
    return { role, credsPath: `${DATABASE_MOUNT}/creds/${role}`, host, port, database: r.database ?? d.database, table: sampleTable(r.group_role) };
  }
  return undefined;
}

export function planInjectorApp(app: AppConfig, secrets: AppSecretConfig[], c: PlanContext): InjectorAppPlan {
  const mount = c.vault.kvMount;
  const files: InjectorFilePlan[] = secrets.map((s) => {
    const database = s.database_role !== undefined ? databaseFile(c, s.database_role) : undefined;
    if (database) return { name: s.name, file: `${SECRETS_DIR}/${s.name}`, data: [], template: databaseTemplate(database), fileTemplate: undefined, database };
    const data = s.data.map((d) => ({ secretKey: d.secret_key, path: d.path, key: d.key }));
    return { name: s.name, file: `${SECRETS_DIR}/${s.name}`, data, template: s.file_template ? customTemplate(mount, data, s.file_template) : defaultTemplate(mount, data), fileTemplate: s.file_template };
  });
  return { delivery: 'injector', name: app.name, namespace: app.namespace, serviceAccount: app.name, role: deliveryRoleName('injector', app.name), sample: app.sample, files };
}

/** One role per app (its own ServiceAccount); demo: one broad read policy, production: injector-<ns>-policy reads only <kv_mount>/<ns>/*; each plus its dynamic credentials. */
export function injectorVaultAccess(apps: InjectorAppPlan[], c: PlanContext): { roles: RolePlan[]; policies: PolicyPlan[] } {
  return perAppVaultAccess('injector', apps, c);
}

/** Injector-only checks: the ServiceAccount name is the app's; file names are annotation suffixes. */
export function checkInjectorApp(app: AppConfig, secrets: AppSecretConfig[], c: CheckContext): void {
  if (app.name === 'external-secrets') {
    c.error(['apps', c.appIndex, 'name'], 'an injector app\'s ServiceAccount is named after it, and "external-secrets" is ESO\'s', 'Rename the app.');
  }
  if (app.sample === 'db-client' && !secrets.some((s) => s.database_role !== undefined)) {
    c.error(['apps', c.appIndex, 'sample'], `sample "db-client" connects to Postgres with the app's dynamic user, but app "${app.name}" has no [[apps.secrets]] entry with database_role`,
      'Add [[apps.secrets]] with name = "db" and database_role = "<a [[databases.roles]] name of this app>".');
  }
  secrets.forEach((s, i) => {
    const at = (field: string) => ['apps', c.appIndex, c.secretsKey, i, field];
    if (s.database_role !== undefined) {
      const roles = c.config.databases.flatMap((d) => d.roles);
      const role = roles.find((r) => r.name === s.database_role);
      if (!role) {
        const guess = suggest(s.database_role, roles.map((r) => r.name));
        c.error(at('database_role'), `"${s.database_role}" is not the name of a [[databases.roles]] entry${guess ? `; did you mean "${guess}"?` : ''}`,
          roles.length ? `Database roles: ${roles.map((r) => r.name).join(', ')}.` : 'Add a [[databases]] entry with a [[databases.roles]] for this app first.');
      } else if (role.app !== app.name) {
        c.error(at('database_role'), `database role "${role.name}" belongs to app "${role.app}": only that app's policy may read database/creds/${role.name}`, `Set app = "${app.name}" on the role, or give app "${app.name}" a role of its own.`);
      }
      if (s.data.length > 0) c.error(at('data'), 'an entry with database_role renders dynamic database credentials; data (KV values) cannot be mixed into it', 'Move the KV mappings into an [[apps.secrets]] entry of their own.');
      if (s.file_template !== undefined) c.error(at('file_template'), 'a database_role file has a fixed form (PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE, VAULT_LEASE_ID: `. /vault/secrets/<name>` then psql connects)', 'Remove file_template.');
    }
    if (s.name.includes('.')) c.error(['apps', c.appIndex, c.secretsKey, i, 'name'], `"${s.name}" becomes the annotation vault.hashicorp.com/agent-inject-secret-${s.name} and the file ${SECRETS_DIR}/${s.name}: use a DNS label (no ".")`);
  });
}

/**
 * A file_template rendered here from Vault's values, when it is only text and `{{ .KEY }}` /
 * `{{ index . "key" }}` actions (trim markers allowed), so verify and rotate compare the agent's
 * file by digest; undefined for anything else (pipelines, functions, conditionals): only the
 * agent's template engine can render those, and then the file's presence is what is checked.
 */
export function renderSimpleTemplate(template: string, values: Readonly<Record<string, string>>): string | undefined {
  let out = '';
  let last = 0;
  let trimNext = false;
  for (const m of template.matchAll(/\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}/gs)) {
    let text = template.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    out += text;
    const action = m[2]!;
    const key = /^\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(action)?.[1] ?? /^index\s+\.\s+"([^"\\]*)"$/.exec(action)?.[1];
    if (key === undefined || !(key in values)) return undefined;
    out += values[key];
    trimNext = !!m[3];
    last = m.index + m[0].length;
  }
  let tail = template.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  return out + tail;
}
