// The sample Postgres of [[databases]] (where = "sample"), started by the install step beside the
// Helm releases: the editor's Secret (its original password: [passwords], or generated once and
// then read back from the Secret, written through the Kubernetes API only), the rendered
// StatefulSet/Service/init ConfigMap, then a wait until the pod is Ready and the init SQL's group
// roles exist. Vault's database connection (the vault step) needs both: it logs in as the editor
// and every lease GRANTs a group role. A re-deploy applies the same objects (no writes) and finds
// the pod Ready.
import { randomBytes } from 'node:crypto';
import type { DeployContext } from './context.ts';
import { guardPods, PodProblemError, type Kube } from '../adapters/kube.ts';
import { samplePostgresManifests } from '../plan/postgres-sample.ts';
import { MANAGED_BY } from '../plan/objects.ts';
import { registerSecret } from '../lib/redact.ts';
import { VaultlabError } from '../lib/errors.ts';
import type { SamplePostgresPlan } from '../plan/types.ts';

/** The Secret key the StatefulSet reads POSTGRES_PASSWORD from. */
export const PASSWORD_KEY = 'password';
/** Where the official image's server (and the kind suite's) listens locally: the init step's socket. */
const SOCKET_DIR = '/var/run/postgresql';

/** The editor's original password: the configured one, else the Secret's (an earlier deploy generated it), else a new one. */
export async function samplePostgresPassword(kube: Kube, s: SamplePostgresPlan, configured: string | undefined): Promise<{ value: string; source: 'config' | 'secret' | 'generated' }> {
  if (configured) return { value: configured, source: 'config' };
  const existing = (await kube.readSecret(s.namespace, s.passwordSecret))?.data[PASSWORD_KEY]?.toString('utf8');
  if (existing) return { value: existing, source: 'secret' };
  return { value: randomBytes(24).toString('base64url'), source: 'generated' };
}

/** The group roles the init SQL creates that the server does not have (exec argv holds no secret: the local socket trusts the editor). */
async function missingGroupRoles(kube: Kube, s: SamplePostgresPlan, pod: string): Promise<string[] | undefined> {
  const { execInPod } = await import('../deliveries/injector/runtime.ts');
  const want = s.groupRoles.map((g) => g.role);
  const list = want.map((r) => `'${r}'`).join(', ');
  const r = await execInPod(kube, s.namespace, pod, 'postgres', ['psql', '-XqtA', '-h', SOCKET_DIR, '-U', s.editorUsername, '-d', s.database, '-c', `SELECT rolname FROM pg_roles WHERE rolname IN (${list})`]);
  if (!r.ok) return undefined;
  const have = new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
  return want.filter((w) => !have.has(w));
}

/**
 * What the last check found in the sample Postgres (state dir, sample-postgres.json): the pod it
 * asked, by UID, and the group roles that were there. A pod is created with its volume mounted,
 * and roles are only ever added by the init step or by hand: the same pod, asked for no role
 * beyond those, holds them still, without a `psql` in the pod (0.1-0.2 s of every re-deploy).
 * A new pod (restarted, rescheduled, recreated volume) or a new role is asked again.
 */
export interface GroupRolesRecord {
  pod: string;
  uid: string;
  roles: string[];
}
export const GROUP_ROLES_RECORD = 'sample-postgres.json';

export function rolesKnown(record: GroupRolesRecord | undefined, pod: string, uid: string | undefined, want: string[]): boolean {
  return !!record && !!uid && record.pod === pod && record.uid === uid && want.every((r) => record.roles.includes(r));
}

/**
 * The editor's Secret and the rendered objects, applied (the password resolved and kept in
 * ctx.databasePasswords for configure); how many objects changed, and where the password came from.
 */
export async function applySamplePostgres(ctx: Pick<DeployContext, 'plan' | 'loaded' | 'databasePasswords'>, kube: Kube): Promise<{ changed: number; source: 'config' | 'secret' | 'generated' }> {
  const s = ctx.plan.vault.databases!.sample!;
  const connection = ctx.plan.vault.databases!.connections.find((c) => c.name === s.connection)!;
  const pw = await samplePostgresPassword(kube, s, ctx.loaded.passwords[connection.passwordName]);
  registerSecret(pw.value);
  // The vault step hands it to configure, which uses it once (then Vault rotates it).
  ctx.databasePasswords = { ...ctx.databasePasswords, [connection.passwordName]: pw.value };
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': ctx.plan.cluster.name };
  const [namespace, ...rest] = samplePostgresManifests(ctx.plan);
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: s.passwordSecret, namespace: s.namespace, labels },
    data: { [PASSWORD_KEY]: Buffer.from(pw.value).toString('base64') },
  };
  // The namespace first; then everything in it at once (nothing there refers to an object the API server checks).
  const applied = [...(await kube.apply([namespace!])), ...(await Promise.all([secret, ...rest].map((o) => kube.apply([o])))).flat()];
  return { changed: applied.filter((a) => a.action !== 'unchanged').length, source: pw.source };
}

export async function deploySamplePostgres(ctx: DeployContext, kube: Kube, report: (line: string) => void): Promise<string> {
  const s = ctx.plan.vault.databases?.sample;
  if (!s) return '';
  const { changed, source } = await applySamplePostgres(ctx, kube);
  const pod = `${s.name}-0`;
  report(`waiting for the sample Postgres ${s.namespace}/${pod} to be Ready (its init step creates the group roles)`);
  let ready: any;
  try {
    ready = await guardPods(kube, s.namespace, `app.kubernetes.io/name=${s.name}`, (signal) => kube.waitForCondition('v1', 'Pod', s.namespace, pod, 'Ready', { timeoutMs: ctx.options.timeoutMs, signal }));
  } catch (err) {
    if (err instanceof PodProblemError) throw new VaultlabError(`the sample Postgres ${s.namespace}/${pod} does not start: ${err.message}`, { hint: `kubectl -n ${s.namespace} logs ${pod}; the image is [images] postgres (${s.image}).`, cause: err });
    throw err;
  }
  // Ready: the entrypoint has run the init SQL (its temporary server listens on no TCP port). Checked all the same:
  // a data volume initialised by an older init step lacks a group role added since, and every lease would fail on it.
  const want = s.groupRoles.map((g) => g.role);
  const uid: string | undefined = ready?.metadata?.uid;
  if (rolesKnown(ctx.state.readJson<GroupRolesRecord>(GROUP_ROLES_RECORD), pod, uid, want)) return `sample Postgres ${s.namespace}/${pod} Ready${changed ? ` (${changed} object(s) written)` : ''}`;
  const missing = await missingGroupRoles(kube, s, pod);
  if (missing && !missing.length && uid) ctx.state.writeJson(GROUP_ROLES_RECORD, { pod, uid, roles: want } satisfies GroupRolesRecord);
  if (missing?.length) {
    throw new VaultlabError(`the sample Postgres has no group role ${missing.join(', ')}: its data volume was initialised before that role was configured, and the init step runs only on an empty volume`, {
      hint: `Create it (kubectl -n ${s.namespace} exec ${pod} -- psql -h ${SOCKET_DIR} -U ${s.editorUsername} -d ${s.database} -c 'CREATE ROLE ${missing[0]} NOLOGIN'), or start the sample over: vaultlab reset --full.`,
    });
  }
  return `sample Postgres ${s.namespace}/${pod} Ready${changed ? ` (${changed} object(s) written${source === 'generated' ? ', editor password generated' : ''})` : ''}`;
}
