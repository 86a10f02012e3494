// [[databases]]: strict config with file:line errors, the pure plan (connection, roles, SQL,
// policies), the sample Postgres's manifests, and that no editor password reaches the plan.
import { describe, it, expect } from 'vitest';
import { loadConfigText } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts } from '../../scripts/plan/render.ts';
import { summarize } from '../../scripts/plan/output.ts';
import { samplePostgresManifests } from '../../scripts/plan/postgres-sample.ts';
import { configErrors as errorsOf } from '../harness/config-errors.ts';
import { main } from '../../scripts/cli.ts';

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
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'vaultlab-dbcfg-')), 'config.toml');
    writeFileSync(file, text);
    const stderr: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['plan', '--config', file], {})).toBe(2);
    } finally {
      process.stderr.write = orig;
    }
    expect(stderr.join('')).toMatch(/databases\[0\]\.roles\[1\]\.app: "biling" is not the name/);
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

describe('the commented [[databases]] example in the bundled config.toml', () => {
  it('uncommented, it loads and plans: a connection to the sample Postgres, the dashboard policy reads its creds', async () => {
    const { readFileSync } = await import('node:fs');
    const { BUNDLED_CONFIG } = await import('../../scripts/config/load.ts');
    const text = readFileSync(BUNDLED_CONFIG, 'utf8');
    const begin = text.indexOf('# --- databases example: begin');
    const end = text.indexOf('# --- databases example: end');
    expect(begin).toBeGreaterThan(0);
    const block = text.slice(begin, end).split('\n').slice(1).map((l) => l.replace(/^# ?/, '')).join('\n');
    const enabled = text.slice(0, begin).replace('# shop_editor = ""', 'shop_editor = ""') + block;
    // Without the example, the bundled config has no databases.
    expect(buildPlan(loadConfigText(text, 'config.toml', { env: {} })).vault.databases).toBeUndefined();
    const plan = buildPlan(loadConfigText(enabled, 'config.toml', { env: {} }));
    expect(plan.vault.databases!.connections[0]).toMatchObject({ name: 'shop', sample: true, allowedRoles: ['dashboard-db'] });
    expect(plan.vault.policies[0]!.hcl).toContain('path "database/creds/dashboard-db"');
    expect(samplePostgresManifests(plan).map((o) => o.kind)).toEqual(['Namespace', 'ConfigMap', 'Service', 'StatefulSet']);
    const prod = buildPlan(loadConfigText(enabled, 'config.toml', { env: {}, profile: 'production' }));
    expect(prod.vault.policies.find((p) => p.name === 'eso-dashboard-policy')!.hcl).toContain('path "database/creds/dashboard-db"');
    expect(prod.vault.policies.find((p) => p.name === 'eso-webapp-policy')!.hcl).not.toContain('database/creds');
  });
});
