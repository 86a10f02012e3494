// `vault configure`, the database engine part ([[databases]]): one connection per entry and one
// Vault role per [[databases.roles]]. Read first, written only on a difference, so a re-run writes
// nothing. Vault never returns a connection's password: the readable fields are compared, and an
// update leaves the stored (rotated) password alone. Right after a connection is created its root
// credential is rotated (`rotate-root`): the editor's original password stops working, and from
// then on only Vault knows it. The mount itself is one of the plan's engines (configure's step 1).
import { VaultApiError, type VaultClient } from '../adapters/vault.ts';
import type { DatabaseConnectionPlan, Plan } from '../plan/types.ts';
import { connectionBody, databaseRoleBody, databaseRoles } from '../plan/databases.ts';
import { durationSeconds } from '../config/duration.ts';
import { passwordEnvName } from '../config/load.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import type { ConfigureItem, ConfigureOptions } from './configure.ts';
import { pruneMountRoles } from './prune-roles.ts';

const sameList = (a: unknown, b: string[]) => Array.isArray(a) && a.length === b.length && a.every((x, i) => String(x) === b[i]);
const sameSet = (a: unknown, b: string[]) => Array.isArray(a) && sameList([...a].map(String).sort(), [...b].sort());

/** Is what Vault holds for this connection what the plan wants (password aside)? */
function sameConnection(cur: any, c: DatabaseConnectionPlan): boolean {
  const details = cur?.connection_details ?? {};
  return (
    cur?.plugin_name === c.plugin &&
    details.connection_url === c.connectionUrl &&
    details.username === c.username &&
    sameSet(cur?.allowed_roles, c.allowedRoles)
  );
}

/** Vault's answer when nothing listens behind the address yet (a Service whose endpoint kube-proxy has not programmed). */
export const notListeningYet = (errors: string[]) => errors.some((e) => /connection refused|no such host|i\/o timeout/i.test(e));

/** How long a just-started sample Postgres may take to be reachable through its Service once its pod is Ready. */
export const SAMPLE_REACH_MS = 30_000;

async function writeConnection(client: VaultClient, path: string, body: Record<string, unknown>, c: DatabaseConnectionPlan): Promise<void> {
  const deadline = Date.now() + SAMPLE_REACH_MS;
  try {
    for (;;) {
      try {
        await client.post(path, body, { retry: false });
        return;
      } catch (err) {
        // The sample was started by this deploy: its pod is Ready, and the Service reaches it a
        // moment later (the EndpointSlice, then kube-proxy's rules). Anything else fails at once.
        if (!(c.sample && err instanceof VaultApiError && err.status === 400 && notListeningYet(err.vaultErrors) && Date.now() < deadline)) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } catch (err) {
    if (err instanceof VaultApiError && err.status === 400) {
      throw new VaultlabError(`Vault could not connect to database "${c.name}" at ${c.host}:${c.port} as "${c.username}": ${err.vaultErrors.join('; ')}`, {
        hint: c.sample
          ? 'The sample Postgres must be running before Vault is configured for it (deploy starts it first); check `kubectl -n vaultlab-postgres get pods`.'
          : `Check that Vault reaches ${c.host}:${c.port}, that "${c.username}" exists with CREATEROLE, and its password (${passwordEnvName(c.passwordName)}). After the first configuration Vault has rotated it: a new editor account (or its password reset by a DBA) is then needed.`,
        cause: err,
      });
    }
    throw err;
  }
}

export async function configureDatabases(client: VaultClient, plan: Plan, opts: ConfigureOptions): Promise<ConfigureItem[]> {
  const dp = plan.vault.databases;
  if (!dp) return [];
  const items: ConfigureItem[] = [];
  const passwords = opts.passwords ?? {};

  // Roles first would fail (a role names its connection); connections first, each with its roles allowed.
  for (const c of dp.connections) {
    const path = `${dp.mount}/config/${c.name}`;
    const detail = `${c.host}:${c.port}/${c.database} as ${c.username}`;
    const r = await client.get<any>(path, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    if (cur && sameConnection(cur, c)) {
      items.push({ kind: 'db-connection', name: c.name, action: 'unchanged', detail });
      continue;
    }
    // A new connection, or a different editor account: Vault needs that account's password once.
    const needsPassword = !cur || cur.connection_details?.username !== c.username;
    if (needsPassword) {
      const password = passwords[c.passwordName] ?? '';
      if (password === '') {
        items.push({ kind: 'db-connection', name: c.name, action: 'skipped', detail: `no editor password: set ${passwordEnvName(c.passwordName)} or [passwords].${c.passwordName}` });
        continue;
      }
      registerSecret(password);
      await writeConnection(client, path, { ...connectionBody(c), password }, c);
      // The original password stops working now; only Vault holds the new one.
      try {
        await client.post(`${dp.mount}/rotate-root/${c.name}`, {}, { retry: false });
      } catch (err) {
        // Not rotated, the connection would look finished to the next run: remove it, so the next
        // run starts over (with the original password, which still works).
        await client.delete(path).catch(() => undefined);
        throw new VaultlabError(`Vault could not rotate the editor's password of database "${c.name}": ${(err as Error).message}`, {
          hint: `"${c.username}" must be able to change its own password (ALTER ROLE). The connection was removed again; fix that and re-run \`vaultlab vault configure\`.`,
          cause: err,
        });
      }
      items.push({ kind: 'db-connection', name: c.name, action: cur ? 'updated' : 'created', detail: `${detail}; root rotated` });
    } else {
      // Same account: the stored (rotated) password is kept, as Vault merges an update into what it holds.
      await writeConnection(client, path, connectionBody(c), c);
      items.push({ kind: 'db-connection', name: c.name, action: 'updated', detail });
    }
  }

  const skipped = new Set(items.filter((i) => i.kind === 'db-connection' && i.action === 'skipped').map((i) => i.name));
  for (const role of databaseRoles(dp)) {
    const path = `${dp.mount}/roles/${role.name}`;
    const detail = `${role.dbName}, group ${role.groupRole}, ttl ${role.defaultTtl}/${role.maxTtl}`;
    if (skipped.has(role.dbName)) {
      items.push({ kind: 'db-role', name: role.name, action: 'skipped', detail: `connection ${role.dbName} not configured` });
      continue;
    }
    const r = await client.get<any>(path, { accept: [404] });
    const cur = r.status === 404 ? undefined : r.data?.data;
    const same =
      cur &&
      cur.db_name === role.dbName &&
      sameList(cur.creation_statements, role.creationStatements) &&
      sameList(cur.revocation_statements, role.revocationStatements) &&
      Number(cur.default_ttl) === durationSeconds(role.defaultTtl) &&
      Number(cur.max_ttl) === durationSeconds(role.maxTtl);
    if (same) items.push({ kind: 'db-role', name: role.name, action: 'unchanged', detail });
    else {
      await client.post(path, databaseRoleBody(role, durationSeconds));
      items.push({ kind: 'db-role', name: role.name, action: cur ? 'updated' : 'created', detail });
    }
  }

  // Prune: roles on the mount the config no longer has (vaultlab enabled the mount for [[databases]]).
  if (opts.prune) items.push(...(await pruneMountRoles(client, dp.mount, new Set(databaseRoles(dp).map((r) => r.name)), 'db-role')));
  return items;
}
