// ESO's errors, decoded into causes. An ExternalSecret's Ready condition only says "could not
// get secret data from provider"; the reason is in its latest Warning Event, e.g.
//   error processing spec.data[1] (key: argocd/admin), err: cannot find secret data for key: "x"
//   ... GET .../v1/secret/data/webapp/db Code: 403 ... permission denied
//   ... auth/kubernetes/login Code: 403 ... invalid audience (aud) claim
//   ... Secret does not exist
// With a Vault token the cause is pinned down further: the role or policy that drifted from the
// config, the path or key that is missing.
import type { Kube } from '../adapters/kube.ts';
import type { VaultClient } from '../adapters/vault.ts';
import type { ExternalSecretPlan, NamespacePlan, Plan } from '../plan/types.ts';
import { decodeEsoError } from '../deliveries/eso/sync.ts';

export interface EsoDiagnosis {
  cause: string;
  fix: string;
  /** ESO's own words (one line), for the curious. */
  evidence: string;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').replace(/\* /g, '').trim();

/**
 * ESO's message without the Vault client's boilerplate:
 *   "spec.data[0] (key: webapp/db): GET /v1/secret/data/webapp/db -> 403 permission denied"
 */
export function compactEsoMessage(message: string): string {
  return oneLine(message)
    .replace(/^error processing (spec\.data\[\d+\] \(key: [^)]+\)), err: /, '$1: ')
    .replace(/(?:cannot read secret data from Vault|unable to log in to auth method: unable to log in with Kubernetes auth): /, '')
    .replace(/Error making API request\. URL: (\w+) https?:\/\/[^/ ]+(\S*) Code: (\d+)\. Errors: (?:\d+ errors? occurred: )?/, '$1 $2 -> $3 ')
    .trim();
}
const when = (e: any) => Date.parse(e.lastTimestamp ?? e.eventTime ?? e.series?.lastObservedTime ?? e.metadata?.creationTimestamp ?? 0) || 0;

/** The newest Warning Event ESO recorded for an object (its message, one line). */
export async function latestEsoWarning(kube: Kube, kind: string, namespace: string, name: string): Promise<string | undefined> {
  const events = await kube.list<any>('v1', 'Event', namespace).catch((): any[] => []);
  const mine = events.filter((e) => e.type === 'Warning' && e.involvedObject?.kind === kind && e.involvedObject?.name === name).sort((a, b) => when(b) - when(a));
  return mine[0]?.message ? oneLine(mine[0].message) : undefined;
}

const sameSet = (a: unknown, b: string[]) => Array.isArray(a) && a.length === b.length && b.every((x) => a.includes(x));

/** How Vault's role for this namespace differs from the config, in words; [] when it matches. */
export async function roleDrift(vault: VaultClient, plan: Plan, ns: NamespacePlan): Promise<string[]> {
  const role = plan.vault.kubernetesAuth.roles.find((r) => r.name === ns.secretStore.role);
  if (!role) return [];
  const r = await vault.get<any>(`auth/${plan.vault.kubernetesAuth.mount}/role/${role.name}`, { accept: [404] });
  if (r.status === 404) return [`role ${role.name} does not exist in Vault`];
  const cur = r.data.data;
  const out: string[] = [];
  if (!sameSet(cur.bound_service_account_names, [role.serviceAccount])) out.push(`role ${role.name} binds ServiceAccount ${JSON.stringify(cur.bound_service_account_names)}, the config says "${role.serviceAccount}"`);
  if (!sameSet(cur.bound_service_account_namespaces, [role.namespace])) out.push(`role ${role.name} binds namespace ${JSON.stringify(cur.bound_service_account_namespaces)}, the config says "${role.namespace}"`);
  if ((cur.audience ?? '') !== role.audience) out.push(`role ${role.name} expects audience "${cur.audience ?? ''}", the SecretStore sends "${ns.secretStore.audiences.join(',')}" (config: "${role.audience}")`);
  if (!sameSet(cur.token_policies, role.policies)) out.push(`role ${role.name} grants policies ${JSON.stringify(cur.token_policies)}, the config says ${JSON.stringify(role.policies)}`);
  return out;
}

/** Policies of this namespace's role whose text in Vault differs from the config. */
export async function policyDrift(vault: VaultClient, plan: Plan, ns: NamespacePlan): Promise<string[]> {
  const role = plan.vault.kubernetesAuth.roles.find((r) => r.name === ns.secretStore.role);
  const out: string[] = [];
  for (const name of role?.policies ?? []) {
    const want = plan.vault.policies.find((p) => p.name === name);
    if (!want) continue;
    const r = await vault.get<any>(`sys/policies/acl/${name}`, { accept: [404] });
    if (r.status === 404) out.push(`policy ${name} does not exist in Vault`);
    else if ((r.data.data?.policy ?? '').trim() !== want.hcl.trim()) out.push(`policy ${name} in Vault differs from the config`);
  }
  return out;
}

/** Which of an ExternalSecret's references are not in Vault (key names only, never values). */
export async function missingInVault(vault: VaultClient, plan: Plan, es: ExternalSecretPlan): Promise<string[]> {
  const mount = plan.seeding.mount;
  const missingPaths = new Map<string, string[]>();
  const missingKeys: string[] = [];
  const keysByPath = new Map<string, string[] | undefined>();
  for (const d of es.data) {
    if (!keysByPath.has(d.path)) keysByPath.set(d.path, await vault.kvSubkeys(mount, d.path));
    const keys = keysByPath.get(d.path);
    if (keys === undefined) missingPaths.set(d.path, [...(missingPaths.get(d.path) ?? []), d.secretKey]);
    else if (!keys.includes(d.key)) missingKeys.push(`key "${d.key}" is missing at ${mount}/${d.path} (needed for ${d.secretKey})`);
  }
  return [...[...missingPaths].map(([path, uses]) => `${mount}/${path} does not exist (needed for ${uses.join(', ')})`), ...missingKeys];
}

export interface DiagnoseInput {
  plan: Plan;
  ns: NamespacePlan;
  kind: 'ExternalSecret' | 'SecretStore';
  name: string;
  /** The Ready condition's message. */
  condition: string;
  /** The latest Warning Event's message, when there is one. */
  event: string | undefined;
  /** A client with a token, to compare roles, policies and paths with the config. */
  vault?: VaultClient | undefined;
}

export async function diagnoseEso(input: DiagnoseInput): Promise<EsoDiagnosis> {
  const { plan, ns, vault } = input;
  const raw = oneLine(input.event ?? input.condition);
  const evidence = compactEsoMessage(raw);
  const es = input.kind === 'ExternalSecret' ? ns.externalSecrets.find((e) => e.name === input.name) : undefined;
  const ref = /spec\.data\[(\d+)\] \(key: ([^)]+)\)/.exec(raw);
  const item = ref && es ? es.data[Number(ref[1])] : undefined;
  const where = item ? `${plan.seeding.mount}/${item.path} (key "${item.key}" for ${item.secretKey})` : ref ? `${plan.seeding.mount}/${ref[2]}` : `${plan.seeding.mount}/`;
  const role = ns.secretStore.role;
  const policies = plan.vault.kubernetesAuth.roles.find((r) => r.name === role)?.policies ?? [];
  const ask = async (f: () => Promise<string[]>) => (vault?.hasToken() ? await f().catch((): string[] => []) : []);
  const configure = 'vaultlab vault configure (puts roles and policies back as the config says), then vaultlab reset --secrets to re-sync';

  if (/Vault is sealed/i.test(raw)) {
    return { cause: `Vault is sealed, so ESO cannot read ${where}`, fix: plan.profile === 'demo' ? 'vaultlab status (unseals a demo Vault from the stored key)' : 'vaultlab vault unseal --keys-file FILE', evidence };
  }
  if (/invalid audience|audience claim/i.test(raw)) {
    const drift = await ask(() => roleDrift(vault!, plan, ns));
    return { cause: `Vault refused ESO's login in "${ns.name}": audience mismatch${drift.length ? ` (${drift.join('; ')})` : ` (role ${role} expects "${plan.vault.kubernetesAuth.audience}", the SecretStore sends "${ns.secretStore.audiences.join(',')}")`}`, fix: `Keep [vault.kubernetes_auth] audience and the SecretStore's serviceAccountRef.audiences equal; ${configure}`, evidence };
  }
  if (/unable to log in|auth\/[^ ]*\/login/i.test(raw) && /403|permission denied|not authorized|invalid role/i.test(raw)) {
    const drift = await ask(() => roleDrift(vault!, plan, ns));
    return { cause: `Vault refused ESO's login in "${ns.name}" as role ${role} (ServiceAccount ${ns.serviceAccount}, audience "${ns.secretStore.audiences.join(',')}")${drift.length ? `: ${drift.join('; ')}` : ''}`, fix: configure, evidence };
  }
  if (/permission denied|Code: 403/i.test(raw)) {
    const drift = [...(await ask(() => roleDrift(vault!, plan, ns))), ...(await ask(() => policyDrift(vault!, plan, ns)))];
    return { cause: `Vault refused role ${role} reading ${where}: policy ${policies.join(', ') || '?'} does not allow it${drift.length ? ` (${drift.join('; ')})` : ''}`, fix: drift.length ? configure : `Check that policy ${policies.join(', ')} grants read on ${plan.seeding.mount}/data/${item?.path ?? '<path>'}; ${configure}`, evidence };
  }
  if (/Secret does not exist|cannot find secret data|not found|404/i.test(raw)) {
    const key = /cannot find secret data for key: "([^"]+)"/.exec(raw)?.[1];
    const missing = es ? await ask(() => missingInVault(vault!, plan, es)) : [];
    const what = missing.length ? missing.join('; ') : key ? `key "${key}" is missing at ${plan.seeding.mount}/${ref?.[2] ?? item?.path ?? '?'}` : `${where} does not exist`;
    return { cause: `secret not found: ${what}`, fix: 'vaultlab seed puts the configured secrets back (or vaultlab reset --secrets, which also re-syncs); if the path/key is not in [[secrets]], fix the ExternalSecret\'s data mapping in config.toml', evidence };
  }
  if (/SecretStore .* is not ready/i.test(raw)) {
    return { cause: `its SecretStore ${ns.name}/${ns.secretStore.name} is not ready`, fix: 'See the SecretStore finding; then vaultlab reset --secrets to re-sync', evidence };
  }
  if (/connection refused|no such host|dial tcp|i\/o timeout|x509|certificate|EOF/i.test(raw)) {
    return { cause: `ESO cannot reach Vault at ${ns.secretStore.server}`, fix: `Check \`vaultlab status\` (is Vault up? ${plan.vault.tls ? 'its CA in Secret ' + (ns.secretStore.caSecret?.name ?? '?') + '?' : ''}), then vaultlab reset --secrets`, evidence };
  }
  const d = decodeEsoError(raw, ns, plan);
  return { ...d, evidence };
}
