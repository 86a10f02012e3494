// [[databases]]: strict config with file:line errors, the pure plan (connection, roles, SQL,
// policies), the sample Postgres's manifests, and that no editor password reaches the plan.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts } from '../../scripts/plan/render.ts';
import { summarize } from '../../scripts/plan/output.ts';
import { samplePostgresManifests } from '../../scripts/plan/postgres-sample.ts';
import { configErrors as errorsOf } from '../harness/config-errors.ts';
import { main } from '../../scripts/cli.ts';

/** `vaultlab plan --config <file>` in this process on `text`: its exit code and what it wrote to stderr. */
async function planCli(text: string): Promise<{ code: number; stderr: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'vaultlab-dbcfg-')), 'config.toml');
  writeFileSync(file, text);
  const stderr: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (stderr.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(['plan', '--config', file], {}), stderr: stderr.join('') };
  } finally {
    process.stderr.write = orig;
  }
}

const APPS = `
[[apps]]
name = "orders"
namespace = "shop"
[[apps]]
name = "billing"
namespace = "finance"
[[apps]]
name = "legacy"
namespace = "old"
enabled = false
`;

const DB = `
[passwords]
shop_editor = "editor-original-pw-123"

[[databases]]
name = "shop"
where = "sample"
database = "shop"
editor_password = "shop_editor"
[[databases.roles]]
name = "orders-app"
app = "orders"
group_role = "orders_app"
default_ttl = "1h"
max_ttl = "4h"
[[databases.roles]]
name = "billing-app"
app = "billing"
group_role = "billing_app"
`;

/** Line of the first occurrence of `needle` in `text`, 1-based. */
const lineOf = (text: string, needle: string, from = 0) => text.slice(0, text.indexOf(needle, from)).split('\n').length;

describe('[[databases]] config', () => {
  it('loads a valid entry with its defaults', () => {
    const c = loadConfigText(APPS + DB, 'config.toml', { env: {} }).config;
    expect(c.databases[0]).toMatchObject({ name: 'shop', engine: 'postgres', where: 'sample', editor_username: 'vaultlab_editor', ssl_mode: 'disable' });
    expect(c.databases[0]!.roles[1]).toMatchObject({ default_ttl: '1h', max_ttl: '24h' });
  });

  it('an unknown key names file:line and the allowed keys', () => {
    const text = APPS + DB.replace('group_role = "billing_app"', 'group_role = "billing_app"\ngroup_rol = "x"');
    const [e] = errorsOf(text);
    expect(e!.message).toContain(`config.toml:${lineOf(text, 'group_rol = "x"')}: databases[0].roles[1].group_rol`);
    expect(e!.message).toMatch(/unknown key "group_rol" in \[databases\[0\]\.roles\[1\]\]; did you mean "group_role"\?/);
    expect(e!.hint).toMatch(/Allowed keys there: name, app, group_role, database, default_ttl, max_ttl/);
  });

  it('a role whose app does not exist, or is disabled: file:line, a suggestion, exit 2 from the CLI', async () => {
    const text = APPS + DB.replace('app = "billing"', 'app = "biling"').replace('app = "orders"', 'app = "legacy"');
    const errors = errorsOf(text);
    expect(errors.map((e) => e.message)).toEqual([
      `config.toml:${lineOf(text, 'app = "legacy"')}: databases[0].roles[0].app: app "legacy" is disabled (enabled = false)`,
      `config.toml:${lineOf(text, 'app = "biling"')}: databases[0].roles[1].app: "biling" is not the name of an [[apps]] entry; did you mean "billing"?`,
    ].map((m) => expect.stringContaining(m.split(': ').slice(2).join(': '))));
    expect(errors[1]!.where).toBe(`config.toml:${lineOf(text, 'app = "biling"')}: databases[0].roles[1].app`);
    const cli = await planCli(text);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/databases\[0\]\.roles\[1\]\.app: "biling" is not the name/);
  });

  it('max_ttl below default_ttl, a bad where, a missing password, duplicates: each a located error', () => {
    const text = APPS + DB.replace('max_ttl = "4h"', 'max_ttl = "30m"').replace('name = "billing-app"', 'name = "orders-app"').replace('editor_password = "shop_editor"', 'editor_password = "shop_editr"');
    const msgs = errorsOf(text).map((e) => `${e.where} | ${e.message}`);
    expect(msgs).toEqual([
      expect.stringMatching(new RegExp(`^config.toml:${lineOf(text, 'editor_password')}: databases\\[0\\]\\.editor_password \\| .*"shop_editr", which is neither in \\[passwords\\].*did you mean "shop_editor"`)),
      expect.stringMatching(new RegExp(`^config.toml:${lineOf(text, 'max_ttl = "30m"')}: databases\\[0\\]\\.roles\\[0\\]\\.max_ttl \\| .*30m is shorter than default_ttl 1h`)),
      expect.stringMatching(/databases\[0\]\.roles\[1\]\.name \| .*duplicate database role "orders-app"/),
    ]);
    const where = errorsOf(APPS + DB.replace('where = "sample"', 'where = "db.example.com"'));
    expect(where[0]!.message).toMatch(/databases\[0\]\.where: .*must be "sample" .* or an external "host:port"/);
    // An external database needs the editor's password (from the environment, preferably).
    const ext = errorsOf(APPS + DB.replace('where = "sample"', 'where = "db.example.com:5432"').replace('shop_editor = "editor-original-pw-123"', 'shop_editor = ""'));
    expect(ext[0]!.message).toMatch(/"shop_editor" is empty/);
    expect(ext[0]!.hint).toMatch(/VAULTLAB_PASSWORD_SHOP_EDITOR/);
    expect(() => loadConfigText(APPS + DB.replace('where = "sample"', 'where = "db.example.com:5432"').replace('shop_editor = "editor-original-pw-123"', 'shop_editor = ""'), 'config.toml', { env: { VAULTLAB_PASSWORD_SHOP_EDITOR: 'from-env-1234' } })).not.toThrow();
    // Only in the environment: also fine (the name is referenced, so the env var is read).
    expect(() => loadConfigText(APPS + DB.replace(/\[passwords\]\nshop_editor = "[^"]*"\n/, ''), 'config.toml', { env: { VAULTLAB_PASSWORD_SHOP_EDITOR: 'from-env-1234' } })).not.toThrow();
    expect(errorsOf(APPS + DB.replace('engines', '') + '\n[vault]\nengines = ["kv-v2"]\n')[0]!.message).toMatch(/vault\.engines: must include "database"/);
    expect(errorsOf(APPS + DB + '\n[vault]\naddress = "https://vault.example.com"\n')[0]!.message).toMatch(/sample Postgres runs in the cluster, which an external Vault/);
    expect(errorsOf(APPS + DB.replace('engine = "postgres"', '').replace('name = "shop"\n', 'name = "shop"\nengine = "mysql"\n'))[0]!.message).toMatch(/databases\[0\]\.engine: .*must be one of "postgres"/);
  });
});

describe('[[databases]] plan', () => {
  const loaded = (profile: 'demo' | 'production') => loadConfigText(APPS + DB, 'config.toml', { env: {}, profile });

  it('the connection: templated URL, the editor, allowed_roles exactly the configured roles', () => {
    const db = buildPlan(loaded('demo')).vault.databases!;
    const c = db.connections[0]!;
    expect(c).toMatchObject({
      name: 'shop',
      plugin: 'postgresql-database-plugin',
      sample: true,
      connectionUrl: 'postgresql://{{username}}:{{password}}@postgres.vaultlab-postgres.svc:5432/shop?sslmode=disable',
      username: 'vaultlab_editor',
      passwordName: 'shop_editor',
      allowedRoles: ['orders-app', 'billing-app'],
    });
    expect(c.allowedRoles).not.toContain('*');
    expect(c.roles[0]).toMatchObject({
      name: 'orders-app',
      namespace: 'shop',
      creationStatements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, 'GRANT "orders_app" TO "{{name}}";'],
      revocationStatements: ['GRANT "{{name}}" TO CURRENT_USER;', 'REASSIGN OWNED BY "{{name}}" TO "orders_app";', 'DROP OWNED BY "{{name}}";', 'DROP ROLE IF EXISTS "{{name}}";'],
    });
  });

  it("production: each app's namespace policy gains read on exactly its own database/creds paths; the setup policy manages but issues nothing", () => {
    const plan = buildPlan(loaded('production'));
    const shop = plan.vault.policies.find((p) => p.name === 'eso-shop-policy')!.hcl;
    const finance = plan.vault.policies.find((p) => p.name === 'eso-finance-policy')!.hcl;
    expect(shop).toContain('path "database/creds/orders-app" {\n  capabilities = ["read"]\n}');
    expect(shop).not.toContain('billing-app');
    expect(finance).toContain('path "database/creds/billing-app" {\n  capabilities = ["read"]\n}');
    expect(finance).not.toContain('orders-app');
    const setup = plan.vault.setupToken.policy.hcl;
    expect(setup).toContain('path "database/rotate-root/*"');
    expect(setup).toContain('path "sys/leases/lookup/database/creds/*" {\n  capabilities = ["list", "sudo"]');
    expect(setup).not.toMatch(/database\/creds\/\*" \{\n {2}capabilities = \["read"/);
  });

  it('demo: the shared policy reads every role', () => {
    const hcl = buildPlan(loaded('demo')).vault.policies[0]!.hcl;
    expect(hcl).toContain('path "database/creds/orders-app"');
    expect(hcl).toContain('path "database/creds/billing-app"');
  });

  it('plan output and every artifact name the password by its [passwords] entry, never its value', () => {
    const plan = buildPlan(loaded('demo'));
    const artifacts = renderArtifacts(plan);
    const all = [...artifacts.values()].join('\n') + summarize(plan, artifacts);
    expect(all).not.toContain('editor-original-pw-123');
    expect(artifacts.get('vault/databases.yaml')).toContain('[passwords].shop_editor');
    expect(summarize(plan, artifacts)).toMatch(/Database: shop \(sample Postgres postgres:15-alpine in "vaultlab-postgres"\/shop, editor vaultlab_editor, root rotated by Vault\); roles orders-app -> orders/);
  });
});

describe('the sample Postgres (where = "sample")', () => {
  it('renders Namespace, init ConfigMap, Service and StatefulSet; the password only as a Secret reference', () => {
    const plan = buildPlan(loadConfigText(APPS + DB, 'config.toml', { env: {} }));
    const objs = samplePostgresManifests(plan);
    expect(objs.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'Namespace /vaultlab-postgres',
      'ConfigMap vaultlab-postgres/postgres-init',
      'Service vaultlab-postgres/postgres',
      'StatefulSet vaultlab-postgres/postgres',
    ]);
    const sts = objs[3] as any;
    const c = sts.spec.template.spec.containers[0];
    expect(c.image).toBe('postgres:15-alpine');
    expect(c.env).toContainEqual({ name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: 'shop-editor', key: 'password' } } });
    expect(c.env).toContainEqual({ name: 'POSTGRES_USER', value: 'vaultlab_editor' });
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('1Gi');
    const sql = (objs[1] as any).data['10-vaultlab-group-roles.sql'] as string;
    expect(sql).toContain('CREATE ROLE "orders_app" NOLOGIN;');
    expect(sql).toContain('CREATE TABLE "orders_app_items"');
    expect(sql).toContain('GRANT SELECT, INSERT ON TABLE "billing_app_items" TO "billing_app";');
    expect(JSON.stringify(objs)).not.toContain('editor-original-pw-123');
    expect(renderArtifacts(plan).get('manifests/vaultlab-postgres.yaml')).toContain('kind: StatefulSet');
  });

  it('the image follows [images]: a mirror, or the postgres override', () => {
    const mirrored = buildPlan(loadConfigText(APPS + DB + '\n[images]\nmirror = "mirror.example.com:5000"\n', 'config.toml', { env: {} }));
    expect((samplePostgresManifests(mirrored)[3] as any).spec.template.spec.containers[0].image).toBe('mirror.example.com:5000/library/postgres:15-alpine');
    const over = buildPlan(loadConfigText(APPS + DB + '\n[images]\npostgres = "registry.example.com/db/postgres:15.8"\n', 'config.toml', { env: {} }));
    expect((samplePostgresManifests(over)[3] as any).spec.template.spec.containers[0].image).toBe('registry.example.com/db/postgres:15.8');
  });

  it('an external database renders no sample', () => {
    const plan = buildPlan(loadConfigText(APPS + DB.replace('where = "sample"', 'where = "db.example.com:5432"'), 'config.toml', { env: {} }));
    expect(samplePostgresManifests(plan)).toEqual([]);
    expect(plan.vault.databases!.connections[0]!.connectionUrl).toBe('postgresql://{{username}}:{{password}}@db.example.com:5432/shop?sslmode=disable');
  });
});

describe('the bundled config.toml: the sample Postgres and the shop app with its own dynamic user', () => {
  it('plans a connection to the sample Postgres; only the shop app\'s policy reads its creds (demo: the shared injector policy)', async () => {
    const { readFileSync } = await import('node:fs');
    const { BUNDLED_CONFIG } = await import('../../scripts/config/load.ts');
    const { withoutSampleDatabase } = await import('../harness/synced.ts');
    const text = readFileSync(BUNDLED_CONFIG, 'utf8');
    const plan = buildPlan(loadConfigText(text, 'config.toml', { env: {} }));
    expect(plan.vault.databases!.connections[0]).toMatchObject({ name: 'shop', sample: true, allowedRoles: ['shop-app'] });
    expect(plan.vault.policies.find((p) => p.name === 'injector-policy')!.hcl).toContain('path "database/creds/shop-app"');
    expect(samplePostgresManifests(plan).map((o) => o.kind)).toEqual(['Namespace', 'ConfigMap', 'Service', 'StatefulSet']);
    const prod = buildPlan(loadConfigText(text, 'config.toml', { env: {}, profile: 'production' }));
    expect(prod.vault.policies.find((p) => p.name === 'injector-shop-policy')!.hcl).toContain('path "database/creds/shop-app"');
    expect(prod.vault.policies.find((p) => p.name === 'eso-webapp-policy')!.hcl).not.toContain('database/creds');
    // Cut for harnesses with an external Vault: no databases and no shop app are left.
    const cut = buildPlan(loadConfigText(withoutSampleDatabase(text), 'config.toml', { env: {} }));
    expect(cut.vault.databases).toBeUndefined();
    expect(cut.apps.map((a) => a.name)).not.toContain('shop');
  });
});

const SHOP = `
[[apps]]
name = "shop"
delivery = "injector"
sample = "db-client"
[[apps.secrets]]
name = "db"
database_role = "shop-app"
`;
const SHOP_DB = `
[passwords]
shop_editor = ""
[[databases]]
name = "shop"
where = "sample"
database = "shop"
editor_password = "shop_editor"
[[databases.roles]]
name = "shop-app"
app = "shop"
group_role = "shop_app"
`;

describe('an injector file of dynamic database credentials ([[apps.secrets]] database_role)', () => {
  it('renders database/creds/<role> as libpq variables and the lease id; the db-client sample gets the file and the table', async () => {
    const { allManifests } = await import('../../scripts/plan/manifests.ts');
    const plan = buildPlan(loadConfigText(SHOP + SHOP_DB, 'config.toml', { env: {} }));
    const app = plan.apps.find((a) => a.name === 'shop')! as any;
    expect(app.files).toHaveLength(1);
    expect(app.files[0]).toMatchObject({ file: '/vault/secrets/db', data: [], database: { role: 'shop-app', credsPath: 'database/creds/shop-app', host: 'postgres.vaultlab-postgres.svc', port: 5432, database: 'shop', table: 'shop_app_items' } });
    const deploy = allManifests(plan).find((o: any) => o.kind === 'Deployment' && o.metadata.name === 'shop') as any;
    const ann = deploy.spec.template.metadata.annotations;
    expect(ann['vault.hashicorp.com/agent-inject-secret-db']).toBe('database/creds/shop-app');
    const tpl = ann['vault.hashicorp.com/agent-inject-template-db'] as string;
    expect(tpl).toContain('{{- with secret "database/creds/shop-app" -}}');
    for (const line of ["PGUSER='{{ .Data.username }}'", "PGPASSWORD='{{ .Data.password }}'", "PGHOST='postgres.vaultlab-postgres.svc'", "PGPORT='5432'", "PGDATABASE='shop'", "VAULT_LEASE_ID='{{ .LeaseID }}'"]) expect(tpl).toContain(line);
    const app0 = deploy.spec.template.spec.containers.find((c: any) => c.name === 'app');
    expect(app0.image).toBe(plan.images.postgres);
    expect(app0.args[0]).toContain('. "/vault/secrets/db"');
    expect(app0.args[0]).toContain('FROM shop_app_items');
    // Never the password: the app logs current_user, the status page masks it.
    expect(app0.args[0]).not.toMatch(/echo[^\n]*\$PGPASSWORD/);
    expect(plan.vault.policies.find((p) => p.name === 'injector-policy')!.hcl).toContain('path "database/creds/shop-app"');
  });

  it('an unknown role, another app\'s role, data or file_template beside it, a db-client without one: located errors, exit 2', async () => {
    const unknown = SHOP.replace('database_role = "shop-app"', 'database_role = "shop-ap"') + SHOP_DB;
    const [e] = errorsOf(unknown);
    expect(e!.message).toContain(`config.toml:${lineOf(unknown, 'database_role = "shop-ap"')}: apps[0].secrets[0].database_role`);
    expect(e!.message).toMatch(/"shop-ap" is not the name of a \[\[databases\.roles\]\] entry; did you mean "shop-app"\?/);
    const other = SHOP + SHOP_DB + '\n[[apps]]\nname = "other"\ndelivery = "injector"\nsample = "db-client"\n[[apps.secrets]]\nname = "db"\ndatabase_role = "shop-app"\n';
    expect(errorsOf(other).map((x) => x.message).join('\n')).toMatch(/apps\[1\]\.secrets\[0\]\.database_role: database role "shop-app" belongs to app "shop"/);
    const mixed = SHOP.replace('database_role = "shop-app"', 'database_role = "shop-app"\nfile_template = "x"\ndata = [{ secret_key = "A", path = "p", key = "k" }]') + SHOP_DB + '\n[[secrets]]\npath = "p"\nkey = "k"\n';
    const mixedErrors = errorsOf(mixed).map((x) => x.message).join('\n');
    expect(mixedErrors).toMatch(/apps\[0\]\.secrets\[0\]\.data: an entry with database_role renders dynamic database credentials/);
    expect(mixedErrors).toMatch(/apps\[0\]\.secrets\[0\]\.file_template: a database_role file has a fixed form/);
    const none = SHOP.replace('database_role = "shop-app"', 'data = [{ secret_key = "A", path = "p", key = "k" }]') + '\n[[secrets]]\npath = "p"\nkey = "k"\n';
    expect(errorsOf(none).map((x) => x.message).join('\n')).toMatch(/apps\[0\]\.sample: sample "db-client" connects to Postgres with the app's dynamic user, but app "shop" has no \[\[apps\.secrets\]\] entry with database_role/);
    const empty = SHOP.replace('database_role = "shop-app"\n', '') + SHOP_DB;
    expect(errorsOf(empty).map((x) => x.message).join('\n')).toMatch(/apps\[0\]\.secrets\[0\]\.data: secrets entry "db" reads nothing/);
    const eso = SHOP.replace('delivery = "injector"\nsample = "db-client"\n', '') + SHOP_DB;
    expect(errorsOf(eso).map((x) => x.message).join('\n')).toMatch(/database_role is a field of delivery "injector", but app "shop" uses delivery "eso"/);
    const cli = await planCli(unknown);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/apps\[0\]\.secrets\[0\]\.database_role: "shop-ap" is not the name/);
  });
});

describe('the sample Postgres reached through its Service a moment after its pod is Ready', () => {
  it('Vault\'s "connection refused" (no endpoint programmed yet) is waited out for the sample; a refused login or a wrong database is not', async () => {
    const { notListeningYet } = await import('../../scripts/vault/database.ts');
    // As Vault answered a cold deploy here, the pod Ready and kube-proxy not yet routing its Service.
    expect(notListeningYet(['error creating database object: error verifying connection: ping failed: failed to connect to `host=postgres.vaultlab-postgres.svc user=vaultlab_editor database=shop`: dial error (dial tcp 10.96.236.254:5432: connect: connection refused)'])).toBe(true);
    expect(notListeningYet(['error creating database object: error verifying connection: ping failed: failed to connect to `host=postgres.vaultlab-postgres.svc user=vaultlab_editor database=shop`: server error (FATAL: password authentication failed for user "vaultlab_editor" (SQLSTATE 28P01))'])).toBe(false);
    expect(notListeningYet(['error creating database object: error verifying connection: ping failed: failed to connect to `host=postgres.vaultlab-postgres.svc user=vaultlab_editor database=shop`: server error (FATAL: database "shop" does not exist (SQLSTATE 3D000))'])).toBe(false);
  });
});
