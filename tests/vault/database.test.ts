// Vault's database engine for real: OpenBao configured by vaultlab ([[databases]]) against a real
// PostgreSQL server (tests/harness/postgres.ts). A lease is a Postgres user of its own that can
// read its app's table and nothing else; revocation and expiry end it; the editor's original
// password stops working after rotate-root; a re-run of configure writes nothing. No mocks.
// Without Postgres binaries the suite prints `skipped: <reason>` and runs nothing.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setupOrFail } from '../harness/kube/setup.ts';
import { startBaoDev, type BaoDevServer } from '../harness/bao.ts';
import { startPostgres, postgresBinDir, type PostgresServer } from '../harness/postgres.ts';
import { VaultClient, VaultApiError } from '../../scripts/adapters/vault.ts';
import { loadConfigText, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { sampleInitSql, sampleTable } from '../../scripts/plan/databases.ts';
import { renderArtifacts } from '../../scripts/plan/render.ts';
import { configureVault, type ConfigureItem } from '../../scripts/vault/configure.ts';
import { issueDatabaseCredentials, revokeDatabaseLease, renewDatabaseLease, listLeases } from '../../scripts/vault/database-creds.ts';
import { redact } from '../../scripts/lib/redact.ts';
import { leaseReport, nearMaxTtl } from '../../scripts/lifecycle/lease-status.ts';
import type { VaultlabError } from '../../scripts/lib/errors.ts';

const bin = postgresBinDir();
if ('skip' in bin) console.log(`skipped: database engine against PostgreSQL: ${bin.skip}`);

const EDITOR = 'vaultlab_editor';
const configText = (port: number) => `
[profile]
name = "production"
[production]
audit = false
[passwords]
shop_editor = ""
[[apps]]
name = "orders"
namespace = "shop"
[[apps]]
name = "billing"
namespace = "finance"

[[databases]]
name = "shop"
where = "127.0.0.1:${port}"
database = "shop"
editor_username = "${EDITOR}"
editor_password = "shop_editor"
[[databases.roles]]
name = "orders-app"
app = "orders"
group_role = "orders_app"
default_ttl = "1h"
max_ttl = "2h"
[[databases.roles]]
name = "billing-app"
app = "billing"
group_role = "billing_app"
[[databases.roles]]
name = "orders-short"
app = "orders"
group_role = "orders_app"
default_ttl = "5s"
max_ttl = "10s"
`;

const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf('skip' in bin)('database engine against a real PostgreSQL', () => {
  let pg: PostgresServer;
  let bao: BaoDevServer;
  let vault: VaultClient;
  /** Tokens with exactly one app namespace's policy, as that app's Vault login would get. */
  let shop: VaultClient;
  let finance: VaultClient;
  let setup: VaultClient;
  let first: ConfigureItem[];
  let configFile: string;
  const editorPassword = randomBytes(18).toString('base64url');
  const env = { VAULTLAB_PASSWORD_SHOP_EDITOR: editorPassword };
  let loaded: ReturnType<typeof loadConfigText>;
  let plan: ReturnType<typeof buildPlan>;

  const tokenWith = async (policy: string) => {
    const r = await vault.post<any>('auth/token/create', { policies: [policy], no_default_policy: false, ttl: '1h' });
    return new VaultClient({ address: bao.address, token: r.data.auth.client_token, attempts: 1 });
  };
  const pgRole = (name: string) => pg.admin(`SELECT rolname || '|' || rolcanlogin || '|' || coalesce(rolvaliduntil::text, '') FROM pg_roles WHERE rolname = '${name}'`);
  const loginAs = (user: string, password: string, sql = 'SELECT current_user') => pg.sql(user, password, sql, 'shop');

  setupOrFail(async () => {
    [pg, bao] = await Promise.all([startPostgres({ binDir: (bin as { dir: string }).dir }), startBaoDev()]);
    // What a DBA does once: the database, the editor (CREATEROLE, not a superuser), and the
    // group roles with their tables (the sample Postgres's init step, run here as the DBA).
    pg.admin(`CREATE ROLE ${EDITOR} WITH LOGIN CREATEROLE PASSWORD '${editorPassword}'`);
    pg.admin(`CREATE DATABASE shop OWNER ${EDITOR}`);
    pg.admin(sampleInitSql({
      connection: 'shop', namespace: '', name: '', image: '', database: 'shop', editorUsername: EDITOR, passwordSecret: '',
      groupRoles: ['orders_app', 'billing_app'].map((role) => ({ role, table: sampleTable(role) })),
    }), 'shop');
    // Revocation hands a lease user's objects to the group role: the editor needs its privileges.
    pg.admin(`GRANT orders_app, billing_app TO ${EDITOR} WITH ADMIN OPTION`);
    loaded = loadConfigText(configText(pg.port), 'config.toml', { env });
    plan = buildPlan(loaded);
    vault = new VaultClient({ address: bao.address, token: bao.token });
    first = await configureVault(vault, plan, { passwords: loaded.passwords });
    [shop, finance, setup] = await Promise.all([tokenWith('eso-shop-policy'), tokenWith('eso-finance-policy'), tokenWith('vaultlab-setup')]);
    configFile = join(mkdtempSync(join(tmpdir(), 'vaultlab-db-')), 'config.toml');
    writeFileSync(configFile, configText(pg.port));
  });
  afterAll(async () => {
    for (const c of [vault, shop, finance, setup]) c?.close();
    await Promise.all([bao?.stop(), pg?.stop()]);
  });

  it('configure created the connection (allowed_roles exactly the configured roles) and the roles, and rotated the root credential', async () => {
    expect(first.filter((i) => i.kind.startsWith('db-')).map((i) => `${i.kind} ${i.name} ${i.action}`)).toEqual([
      'db-connection shop created',
      'db-role orders-app created',
      'db-role billing-app created',
      'db-role orders-short created',
    ]);
    const cfg = (await vault.get<any>('database/config/shop')).data.data;
    expect(cfg.plugin_name).toBe('postgresql-database-plugin');
    expect([...cfg.allowed_roles].sort()).toEqual(['billing-app', 'orders-app', 'orders-short']);
    expect(cfg.connection_details.connection_url).toBe(`postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/shop?sslmode=disable`);
    expect(cfg.connection_details.username).toBe(EDITOR);
    expect(JSON.stringify(cfg)).not.toContain(editorPassword);
    const role = (await vault.get<any>('database/roles/orders-app')).data.data;
    expect(role.db_name).toBe('shop');
    expect(role.default_ttl).toBe(3600);
    expect(role.max_ttl).toBe(7200);
    expect(role.creation_statements).toEqual([`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, 'GRANT "orders_app" TO "{{name}}";']);
    // rotate-root: the editor's original password no longer logs in; Vault still can (it issues leases below).
    const r = loginAs(EDITOR, editorPassword);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/password authentication failed for user "vaultlab_editor"/);
  });

  it('a re-run of configure writes nothing, with the root token and with the production setup token', async () => {
    for (const client of [vault, setup]) {
      const before = client.writes;
      const items = await configureVault(client, plan, { passwords: loaded.passwords });
      expect(client.writes - before).toBe(0);
      expect(items.filter((i) => i.kind.startsWith('db-')).map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    }
  });

  it('a changed role or allowed_roles is written once, and the rotated password is kept (no second rotate, the engine still issues)', async () => {
    const changed = buildPlan(loadConfigText(configText(pg.port).replace('max_ttl = "2h"', 'max_ttl = "3h"').replace(/\[\[databases\.roles\]\]\nname = "billing-app"[^[]*/, ''), 'config.toml', { env }));
    const items = await configureVault(vault, changed, { passwords: loaded.passwords });
    expect(items.filter((i) => i.kind.startsWith('db-') && i.action !== 'unchanged').map((i) => `${i.kind} ${i.name} ${i.action}`)).toEqual(['db-connection shop updated', 'db-role orders-app updated']);
    expect([...(await vault.get<any>('database/config/shop')).data.data.allowed_roles].sort()).toEqual(['orders-app', 'orders-short']);
    // --prune: the role the config dropped goes from the mount, the others stay.
    const pruned = await configureVault(vault, changed, { passwords: loaded.passwords, prune: true });
    expect(pruned.filter((i) => i.kind === 'db-role' && i.action === 'deleted').map((i) => i.name)).toEqual(['billing-app']);
    expect((await vault.get<any>('database/roles/billing-app', { accept: [404] })).status).toBe(404);
    expect((await vault.get<any>('database/roles/orders-app', { accept: [404] })).status).toBe(200);
    // The password Vault rotated to is still the one it uses: a lease works.
    const c = await issueDatabaseCredentials(vault, { role: 'orders-app' });
    expect(loginAs(c.username, c.password).code).toBe(0);
    await revokeDatabaseLease(vault, c.leaseId);
    // Back to the configured state.
    await configureVault(vault, plan, { passwords: loaded.passwords });
    expect([...(await vault.get<any>('database/config/shop')).data.data.allowed_roles].sort()).toEqual(['billing-app', 'orders-app', 'orders-short']);
  });

  it('without the editor password (a sample whose Secret deploy has not made yet) the connection and its roles are skipped, nothing written', async () => {
    const other = loadConfigText(configText(pg.port).replace(`name = "shop"\nwhere = "127.0.0.1:${pg.port}"`, 'name = "later"\nwhere = "sample"').replace(/name = "(orders-app|billing-app|orders-short)"/g, 'name = "later-$1"'), 'config.toml', { env: {} });
    const p = buildPlan(other);
    const before = vault.writes;
    const items = (await configureVault(vault, p, { passwords: other.passwords })).filter((i) => i.kind.startsWith('db-'));
    expect(items.map((i) => `${i.kind} ${i.name} ${i.action}`)).toEqual(['db-connection later skipped', 'db-role later-orders-app skipped', 'db-role later-billing-app skipped', 'db-role later-orders-short skipped']);
    expect(items[0]!.detail).toMatch(/VAULTLAB_PASSWORD_SHOP_EDITOR/);
    // Only its policies changed (other creds paths); nothing on database/.
    expect((await vault.get<any>('database/config/later', { accept: [404] })).status).toBe(404);
    expect((await vault.get<any>('database/roles/later-orders-app', { accept: [404] })).status).toBe(404);
    expect(vault.writes - before).toBe(2); // eso-shop-policy and eso-finance-policy: their creds paths changed
    await configureVault(vault, plan, { passwords: loaded.passwords });
  });

  it("a lease is a LOGIN user of its own: it reads its app's table, and is refused another app's", async () => {
    const c = await issueDatabaseCredentials(shop, { role: 'orders-app' });
    expect(c.leaseId).toMatch(/^database\/creds\/orders-app\//);
    expect(c.leaseDuration).toBe(3600);
    expect(c.renewable).toBe(true);
    expect(redact(`password=${c.password}`)).toBe('password=***');
    const [name, canLogin, validUntil] = pgRole(c.username).split('|');
    expect(name).toBe(c.username);
    expect(canLogin).toBe('true');
    // VALID UNTIL is the lease's end (to the second or so).
    expect(Math.abs(new Date(validUntil!).getTime() - new Date(c.expiresAt).getTime())).toBeLessThan(5000);
    expect(pg.admin(`SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '${c.username}'`)).toBe('orders_app');

    const read = loginAs(c.username, c.password, 'SELECT note FROM orders_app_items');
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toBe('hello from orders_app');
    expect(loginAs(c.username, c.password, "INSERT INTO orders_app_items (note) VALUES ('from a lease')").code).toBe(0);
    const denied = loginAs(c.username, c.password, 'SELECT note FROM billing_app_items');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/permission denied for table billing_app_items/);
    const other = loginAs(c.username, c.password, 'CREATE TABLE mine (x int)');
    expect(other.stderr).toMatch(/permission denied for schema public/);
    await revokeDatabaseLease(vault, c.leaseId);
  });

  it("each app's policy reads only its own creds paths; the setup token issues none; a role outside allowed_roles gets nothing", async () => {
    const message = async (p: Promise<unknown>) => ((await p.catch((e) => e)) as VaultlabError).message;
    expect(await message(issueDatabaseCredentials(finance, { role: 'orders-app' }))).toMatch(/may not read database\/creds\/orders-app/);
    expect(await message(issueDatabaseCredentials(shop, { role: 'billing-app' }))).toMatch(/may not read database\/creds\/billing-app/);
    expect(await message(issueDatabaseCredentials(setup, { role: 'orders-app' }))).toMatch(/may not read/);
    const b = await issueDatabaseCredentials(finance, { role: 'billing-app' });
    expect(loginAs(b.username, b.password, 'SELECT note FROM billing_app_items').stdout).toBe('hello from billing_app');
    await revokeDatabaseLease(vault, b.leaseId);
    // A role written behind vaultlab's back on the same connection: Vault refuses it (allowed_roles).
    await vault.post('database/roles/rogue', { db_name: 'shop', creation_statements: ['CREATE ROLE "{{name}}" WITH LOGIN SUPERUSER PASSWORD \'{{password}}\';'] });
    try {
      const err = (await issueDatabaseCredentials(vault, { role: 'rogue' }).catch((e) => e)) as VaultlabError;
      expect(err).toBeInstanceOf(VaultApiError);
      expect(err.message).toMatch(/"rogue" is not an allowed role/);
    } finally {
      await vault.delete('database/roles/rogue');
    }
  });

  it('revocation drops the user: gone from pg_roles, its login refused, what it owned handed to the group role', async () => {
    const c = await issueDatabaseCredentials(shop, { role: 'orders-app' });
    // The group role may create in its own schema? Not in public (revoked): give the user something to own there.
    pg.admin(`GRANT CREATE ON SCHEMA public TO orders_app`, 'shop');
    try {
      expect(loginAs(c.username, c.password, 'CREATE TABLE lease_notes (x int)').code).toBe(0);
      expect(pg.admin("SELECT tableowner FROM pg_tables WHERE tablename = 'lease_notes'", 'shop')).toBe(c.username);
      await revokeDatabaseLease(vault, c.leaseId);
      expect(pgRole(c.username)).toBe('');
      expect(loginAs(c.username, c.password).stderr).toMatch(/password authentication failed/);
      // REASSIGN OWNED handed the table to the group role (the app keeps its data); DROP OWNED then had nothing left to drop.
      expect(pg.admin("SELECT tableowner FROM pg_tables WHERE tablename = 'lease_notes'", 'shop')).toBe('orders_app');
    } finally {
      pg.admin('DROP TABLE IF EXISTS lease_notes; REVOKE CREATE ON SCHEMA public FROM orders_app', 'shop');
    }
  });

  it('a lease with a 5 s TTL stops working after expiry, and Vault drops its user', async () => {
    const c = await issueDatabaseCredentials(shop, { role: 'orders-short' });
    expect(c.leaseDuration).toBe(5);
    expect(loginAs(c.username, c.password, 'SELECT count(*) FROM orders_app_items').code).toBe(0);
    await sleep(6000);
    // VALID UNTIL has passed (Postgres refuses the login even before Vault revokes the lease).
    expect(loginAs(c.username, c.password).stderr).toMatch(/password authentication failed/);
    const t0 = Date.now();
    while (pgRole(c.username) !== '' && Date.now() - t0 < 20_000) await sleep(500);
    expect(pgRole(c.username)).toBe('');
  });

  it('--ttl: a renew with a shorter increment moves VALID UNTIL with the lease', async () => {
    const c = await issueDatabaseCredentials(shop, { role: 'orders-app' });
    const r = await renewDatabaseLease(vault, c.leaseId, '5s');
    expect(r.leaseDuration).toBe(5);
    const validUntil = new Date(pgRole(c.username).split('|')[2]!).getTime();
    expect(Math.abs(validUntil - new Date(r.expiresAt).getTime())).toBeLessThan(5000);
    await revokeDatabaseLease(vault, c.leaseId);
  });

  it('status: active leases per role, listed by the setup token', async () => {
    const a = await issueDatabaseCredentials(shop, { role: 'orders-app' });
    const b = await issueDatabaseCredentials(shop, { role: 'orders-app' });
    try {
      const leases = await listLeases(setup, 'database/creds/orders-app');
      expect(leases.map((l) => l.id).sort()).toEqual([a.leaseId, b.leaseId].sort());
      for (const l of leases) expect(l.ttl).toBeGreaterThan(3500);
      expect(await listLeases(setup, 'database/creds/billing-app')).toEqual([]);
      // status: two active on orders-app, none near its 2 h max_ttl; a lease of orders-short (max 10 s) is.
      const short = await issueDatabaseCredentials(shop, { role: 'orders-short' });
      const report = await leaseReport(setup, plan);
      expect(report.roles).toEqual([
        { kind: 'database', role: 'orders-app', active: 2, nearMaxTtl: [] },
        { kind: 'database', role: 'billing-app', active: 0, nearMaxTtl: [] },
        { kind: 'database', role: 'orders-short', active: 1, nearMaxTtl: [short.leaseId] },
      ]);
      const check = report.checks.find((c) => c.name === 'leases database/orders-short')!;
      expect(check).toMatchObject({ ok: false, severity: 'warning' });
      expect(check.fix).toMatch(/fetch new credentials/);
      expect(report.checks.find((c) => c.name === 'leases database/orders-app')).toMatchObject({ ok: true, detail: expect.stringMatching(/^2 active, next expiry 20/) });
      // Two hours later the orders-app leases would be at their max_ttl too.
      expect(nearMaxTtl(leases[0]!, 7200, new Date(Date.now() + 7000 * 1000))).toBe(true);
      await revokeDatabaseLease(vault, short.leaseId);
      // A token without list+sudo on sys/leases/lookup: a warning, not a failure.
      const denied = await leaseReport(shop, plan);
      expect(denied.checks).toEqual([expect.objectContaining({ name: 'leases', ok: false, severity: 'warning', detail: 'this token may not list leases' })]);
    } finally {
      await Promise.all([a, b].map((x) => revokeDatabaseLease(vault, x.leaseId)));
    }
  });

  it('`vaultlab creds` issues a lease and prints user, lease and expiry but no password; --show-secret prints it on stdout; --revoke drops the user', () => {
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, [CLI, ...args, '--config', configFile, '--vault-addr', bao.address], {
        encoding: 'utf8',
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...env, NO_COLOR: '1', VAULT_ADDR: '', BAO_ADDR: '', BAO_TOKEN: '', VAULT_TOKEN: bao.token },
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const j = run(['creds', 'orders-app', '--json']);
    expect(j.code, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout);
    expect(out).toMatchObject({ ok: true, kind: 'database', role: 'orders-app', leaseDuration: 3600 });
    expect(out.password).toBeUndefined();
    expect(pgRole(out.username)).toMatch(/\|true\|/);
    const text = run(['creds', 'orders-app']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/database role orders-app: user v-/);
    expect(text.stdout).toMatch(/lease {4}database\/creds\/orders-app\//);
    expect(text.stdout).toMatch(/password not shown/);
    const shown = run(['creds', 'orders-app', '--json', '--show-secret', '--ttl', '10m']);
    const withSecret = JSON.parse(shown.stdout);
    expect(withSecret.leaseDuration).toBe(600);
    expect(loginAs(withSecret.username, withSecret.password).code).toBe(0);
    expect(shown.stderr).not.toContain(withSecret.password);
    for (const lease of [out.leaseId, withSecret.leaseId, /lease {4}(\S+)/.exec(text.stdout)![1]]) {
      const r = run(['creds', '--revoke', lease]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(pgRole(out.username)).toBe('');
    expect(pgRole(withSecret.username)).toBe('');
    // Unknown role: a usage error naming the ones there are.
    const bad = run(['creds', 'orders-ap']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/did you mean "orders-app"/);
  });

  it('the plan and its artifacts never hold the editor password', () => {
    const all = [...renderArtifacts(plan).values()].join('\n');
    expect(all).toContain('database/creds/orders-app');
    expect(all).not.toContain(editorPassword);
  });
});
