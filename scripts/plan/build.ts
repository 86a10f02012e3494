// config + profile -> Plan. Pure: no I/O, no clock, no randomness; same input, same plan.
import type { LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { appSecrets, TRANSIT_MOUNT } from '../config/model.ts';
import type { EnginePlan, HelmChart, NamespacePlan, Plan, PolicyPlan, RolePlan, SamplePlan, SeedEntry, VaultPlan } from './types.ts';
import { setupPolicyHcl, transitSetupHcl, kubernetesCredsHcl, kubernetesSetupHcl, databaseCredsHcl, databaseSetupHcl, leaseLookupHcl } from './policies.ts';
import { DELIVERIES, appsOf, eachUsed, usedDeliveryNames } from '../deliveries/index.ts';
import type { AppPlan, PlanContext } from '../deliveries/types.ts';
import { SECRET_STORE, SERVICE_ACCOUNT, roleName } from '../deliveries/eso/plan.ts';
import { buildDatabases, databaseGrants } from './databases.ts';
import { buildKubernetesSecrets, credsGrants, kubernetesSecretsEngine } from './kubernetes-secrets.ts';
import { buildImages } from './images.ts';
import { vsoClientCachePlan } from '../deliveries/vso/plan.ts';
import { dirname, isAbsolute, resolve } from 'node:path';
import { homedir } from 'node:os';

export { SERVICE_ACCOUNT, SECRET_STORE, roleName, nsPolicyName, BROAD_POLICY } from '../deliveries/eso/plan.ts';
export const DASHBOARD_NODE_PORT = 30080;
export const VAULT_CA_SECRET = 'vault-ca';

const DISTRIBUTIONS = {
  vault: {
    cli: 'vault',
    chart: { repoName: 'hashicorp', repoUrl: 'https://helm.releases.hashicorp.com', chart: 'vault', version: '0.34.1' },
    image: { repository: 'hashicorp/vault', tag: '2.0.4' },
  },
  openbao: {
    cli: 'bao',
    chart: { repoName: 'openbao', repoUrl: 'https://openbao.github.io/openbao-helm', chart: 'openbao', version: '0.29.2' },
    image: { repository: 'quay.io/openbao/openbao', tag: '2.7.2' },
  },
} as const;

/** Where each chart mounts its volumes: /vault/... (hashicorp/vault) or /openbao/... (openbao). */
export const dataRoot = (distribution: 'vault' | 'openbao'): string => (distribution === 'openbao' ? '/openbao' : '/vault');

export const SETUP_POLICY = 'vaultlab-setup';

export function buildPlan(loaded: LoadedConfig): Plan {
  const { config } = loaded;
  const production = loaded.profile === 'production';
  const namespaces = enabledNamespaces(config);
  const images = buildImages(config, defaultVaultImage(config));
  const vault = buildVault(config, production, loaded.file, images.vault, images.postgres);

  // Each enabled app through its delivery; then each used delivery's Vault roles and policies.
  const ctx = planContext(config, production, vault);
  const apps: AppPlan[] = config.apps.filter((a) => a.enabled).map((a) => DELIVERIES[a.delivery].planApp(a, appSecrets(a).entries, ctx) as AppPlan);
  for (const access of eachUsed({ apps }, (d, mine) => d.vaultAccess(mine, ctx))) {
    vault.kubernetesAuth.roles.push(...access.roles);
    vault.policies.push(...access.policies);
    vault.transitKeys.push(...(access.transitKeys ?? []));
  }
  // The setup token (production day-2 runs) checks and creates those keys; it never encrypts or decrypts.
  if (vault.setupToken.enabled && vault.transitKeys.length) vault.setupToken.policy.hcl += transitSetupHcl(vault.transitKeys);

  // Production ignores literal values unless explicitly allowed, and never a value that
  // is also a bundled demo default (a value that was committed to git is not a secret).
  const allowed = new Set(config.production.allow_literals);
  const usable = (name: string): boolean => {
    const value = loaded.passwords[name] ?? '';
    if (value === '') return false;
    if (!production) return true;
    return allowed.has(name) && !Object.values(loaded.demoDefaults).includes(value);
  };
  const ignoredLiterals = production
    ? [...new Set(config.secrets.map((s) => s.password).filter((p): p is string => !!p && (loaded.passwords[p] ?? '') !== '' && !usable(p)))].sort()
    : [];

  const entries: SeedEntry[] = config.secrets.map((s) => {
    const literal = s.password !== undefined && !s.always_random && usable(s.password);
    return {
      path: s.path,
      key: s.key,
      source: literal ? { type: 'literal', password: s.password! } : { type: 'random', format: s.format, bytes: s.bytes },
      hash: s.hash === 'bcrypt' ? { type: 'bcrypt', cost: s.bcrypt_cost } : { type: 'none' },
      plaintextKey: s.plaintext_key,
      alwaysRandom: s.always_random,
      group: !literal && s.password !== undefined ? s.password : undefined,
      description: s.description,
    };
  });

  return {
    version: 1,
    profile: loaded.profile,
    configFile: loaded.file,
    stateDir: `.vaultlab/${config.cluster.name}`,
    cluster: {
      name: config.cluster.name,
      provider: config.cluster.provider,
      context: config.cluster.provider === 'kind' ? `kind-${config.cluster.name}` : config.cluster.context,
      kubeconfig: config.cluster.kubeconfig,
      nodeImage: images.node,
      workers: config.cluster.workers,
      hostPorts: { ...config.cluster.ports },
      nodePorts: { vault: config.vault.node_port, dashboard: DASHBOARD_NODE_PORT },
    },
    vault,
    eso: {
      chart: chartPlan({ repoName: 'external-secrets', repoUrl: 'https://charts.external-secrets.io', chart: 'external-secrets', version: config.eso.chart_version }, config.charts.eso, loaded.file),
      namespace: config.eso.namespace,
      release: config.eso.release,
    },
    vso: {
      chart: chartPlan({ repoName: 'hashicorp', repoUrl: 'https://helm.releases.hashicorp.com', chart: 'vault-secrets-operator', version: config.vso.chart_version }, config.charts.vso, loaded.file),
      namespace: config.vso.namespace,
      release: config.vso.release,
      clientCache: apps.some((a) => a.delivery === 'vso') ? vsoClientCachePlan(config) : undefined,
    },
    seeding: { mount: config.vault.kv_mount, entries },
    apps,
    namespaces: namespaces.map((ns) => buildNamespace(apps, vault, ns)),
    images,
    ignoredLiterals,
  };
}

function enabledNamespaces(config: Config): string[] {
  return [...new Set(config.apps.filter((a) => a.enabled).map((a) => a.namespace))].sort();
}

const defaultVaultImage = (config: Config): string => {
  const dist = DISTRIBUTIONS[config.vault.distribution];
  return `${dist.image.repository}:${config.vault.image_tag ?? dist.image.tag}`;
};

/** `~/x` and paths relative to the config file's folder, made absolute. */
function configPath(path: string, configFile: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(dirname(resolve(configFile)), path);
}

function chartPlan(base: Omit<HelmChart, 'source'>, source: Config['charts']['vault'], configFile: string): HelmChart {
  if (source.path) return { ...base, source: { type: 'path', path: configPath(source.path, configFile) } };
  if (source.oci) return { ...base, source: { type: 'oci', ref: source.oci } };
  return { ...base, repoUrl: source.repository ?? base.repoUrl, source: { type: 'repo' } };
}

/** "repo:tag" (digest allowed) -> {repository, tag}, as the plan has always described the server image. */
function splitRef(ref: string): { repository: string; tag: string } {
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  const hasTag = colon > base.lastIndexOf('/');
  const repository = hasTag ? base.slice(0, colon) : base;
  const tag = (hasTag ? base.slice(colon + 1) : 'latest') + (at >= 0 ? ref.slice(at) : '');
  return { repository, tag };
}

function planContext(config: Config, production: boolean, vault: VaultPlan): PlanContext {
  const auth = vault.kubernetesAuth;
  return {
    config,
    production,
    vault: {
      inClusterAddress: vault.inClusterAddress,
      tls: vault.tls,
      kvMount: vault.kvMount,
      authMount: auth.mount,
      audience: auth.audience,
      tokenTtl: auth.tokenTtl,
      caSecret: vault.tls ? { name: VAULT_CA_SECRET, key: 'ca.crt' } : undefined,
    },
    dynamicCredsHcl: (ns) => dynamicCredsHcl(vault, ns),
  };
}

/**
 * What a namespace's policy (every delivery's; demo: the shared one, ns undefined) gains for
 * dynamic credentials: [[kubernetes_roles]] tokens in that namespace, its apps' [[databases.roles]].
 */
function dynamicCredsHcl(vault: VaultPlan, ns: string | undefined): string {
  const k8s = vault.kubernetesSecrets;
  const db = vault.databases;
  return (k8s ? kubernetesCredsHcl(k8s.mount, credsGrants(k8s, ns)) : '') + (db ? databaseCredsHcl(db.mount, databaseGrants(db, ns)) : '');
}

/** Vault's plan; its roles and policies are the deliveries' (added by buildPlan). */
function buildVault(config: Config, production: boolean, configFile: string, serverImage: string, postgresImage: string): VaultPlan {
  const dist = DISTRIBUTIONS[config.vault.distribution];
  const tls = production;
  const scheme = tls ? 'https' : 'http';
  const external = config.vault.address !== undefined;
  const mount = config.vault.kv_mount;
  const auth = config.vault.kubernetes_auth;

  const engines: EnginePlan[] = config.vault.engines.map((e): EnginePlan => {
    switch (e) {
      case 'kv-v2':
        return { path: mount, type: 'kv', options: { version: '2' }, description: 'vaultlab: seeded secrets (KV v2)' };
      case 'database':
        return { path: 'database', type: 'database', options: {}, description: 'vaultlab: dynamic database credentials' };
      case 'transit':
        return { path: TRANSIT_MOUNT, type: 'transit', options: {}, description: 'vaultlab: encryption as a service' };
    }
  });
  const k8s = buildKubernetesSecrets(config);
  if (k8s) engines.push(kubernetesSecretsEngine(k8s));
  const db = buildDatabases(config, postgresImage);

  const policies: PolicyPlan[] = [];
  const roles: RolePlan[] = [];

  const inClusterAddress = external
    ? config.vault.address!
    : `${scheme}://${config.vault.release}.${config.vault.namespace}.svc:8200`;
  const hostAddress = external ? config.vault.address! : `${scheme}://127.0.0.1:${config.cluster.ports.vault}`;

  return {
    distribution: config.vault.distribution,
    cli: dist.cli,
    chart: chartPlan({ ...dist.chart, version: config.vault.chart_version ?? dist.chart.version }, config.charts.vault, configFile),
    image: splitRef(serverImage),
    namespace: config.vault.namespace,
    release: config.vault.release,
    external,
    hostAddress,
    inClusterAddress,
    tls,
    tlsIssuer: config.production.tls,
    ha: { enabled: production, replicas: production ? config.production.replicas : 1 },
    init: {
      shares: production ? config.production.key_shares : 1,
      threshold: production ? config.production.key_threshold : 1,
      pgpKeys: production ? config.production.pgp_keys : [],
      storeInCluster: !production,
      secretName: 'vault-init-keys',
    },
    kvMount: mount,
    engines,
    kubernetesAuth: { mount: auth.mount, audience: auth.audience, tokenTtl: auth.token_ttl, roles },
    policies,
    transitKeys: [],
    audit: { enabled: production && config.production.audit, path: `${dataRoot(config.vault.distribution)}/audit/vault-audit.log` },
    setupToken: { enabled: production, policy: { name: SETUP_POLICY, hcl: setupPolicyHcl(mount, auth.mount) + (k8s ? kubernetesSetupHcl(k8s.mount) : '') + (db ? databaseSetupHcl(db.mount) : '') + (k8s || db ? leaseLookupHcl() : '') } },
    networkPolicy: production && config.production.network_policy,
    kubernetesSecrets: k8s,
    databases: db,
  };
}

function buildNamespace(apps: AppPlan[], vault: VaultPlan, ns: string): NamespacePlan {
  const here = apps.filter((a) => a.namespace === ns);
  const samples: SamplePlan[] = here
    .filter((a) => a.sample !== 'none')
    .map((a) => ({ app: a.name, kind: a.sample as SamplePlan['kind'], secrets: a.delivery === 'eso' ? a.externalSecrets.map((e) => e.target) : a.delivery === 'vso' ? a.secrets.map((s) => s.target) : [] }));
  return {
    name: ns,
    deliveries: usedDeliveryNames(here),
    serviceAccount: SERVICE_ACCOUNT,
    secretStore: {
      name: SECRET_STORE,
      server: vault.inClusterAddress,
      path: vault.kvMount,
      version: 'v2',
      authMount: vault.kubernetesAuth.mount,
      role: roleName(ns),
      serviceAccount: SERVICE_ACCOUNT,
      audiences: [vault.kubernetesAuth.audience],
      caSecret: vault.tls ? { name: VAULT_CA_SECRET, key: 'ca.crt' } : undefined,
    },
    externalSecrets: appsOf(here, 'eso').flatMap((a) => a.externalSecrets),
    samples,
  };
}
