// The typed plan: everything a deploy will do, derived purely from config + profile.
// It never holds a secret value: literals are referenced by [passwords] name only.
import type { ProfileName, SampleKind } from '../config/schema.ts';
import type { ImagesPlan } from './images.ts';
import type { AppPlan, DeliveryName } from '../deliveries/types.ts';

export interface Plan {
  version: 1;
  profile: ProfileName;
  configFile: string;
  /** Local state dir for this cluster, relative to the working directory. */
  stateDir: string;
  cluster: ClusterPlan;
  vault: VaultPlan;
  eso: EsoPlan;
  /** Vault Secrets Operator's chart and release (installed only when some enabled app uses delivery "vso"). */
  vso: VsoPlan;
  seeding: SeedPlan;
  /** Every enabled app, as its delivery plans it (config order). */
  apps: AppPlan[];
  namespaces: NamespacePlan[];
  /** Every image vaultlab chooses (the rest are the charts' own, listed by `vaultlab images`). */
  images: ImagesPlan;
  /** [passwords] names whose literal values the production profile ignores (random instead). */
  ignoredLiterals: string[];
}

export interface VsoPlan extends EsoPlan {
  /**
   * VSO's client cache persisted in its namespace, encrypted with a transit key (the chart's
   * storage-encryption VaultAuth logs in as `role`, ServiceAccount `serviceAccount`); undefined:
   * kept in memory only ([vso] client_cache = "memory", or no VSO app).
   */
  clientCache: VsoClientCachePlan | undefined;
}

export interface VsoClientCachePlan {
  transitMount: string;
  keyName: string;
  role: string;
  policy: string;
  /** The controller's ServiceAccount, as the chart names it (<fullname>-controller-manager). */
  serviceAccount: string;
  /** The chart's VaultAuth for it (<fullname>-default-transit-auth), labelled cacheStorageEncryption. */
  vaultAuth: string;
}

/** A transit key vaultlab creates (never deletes: what it encrypted would be lost). */
export interface TransitKeyPlan {
  mount: string;
  name: string;
  type: 'aes256-gcm96';
  /** Who uses it, for `plan` and configure's report. */
  purpose: string;
}

export interface ClusterPlan {
  name: string;
  provider: 'kind' | 'existing';
  /** kubeconfig context: "kind-<name>" for kind, the configured one (or current) for existing. */
  context: string | undefined;
  kubeconfig: string | undefined;
  nodeImage: string;
  workers: number;
  hostPorts: { vault: number; http: number };
  nodePorts: { vault: number; dashboard: number };
}

export type ChartSource =
  /** The chart's Helm repository (repoUrl: the official one, or a mirror's). */
  | { type: 'repo' }
  /** A chart directory or packaged .tgz on disk (absolute). */
  | { type: 'path'; path: string }
  /** An OCI reference, e.g. oci://registry.example.com/charts/vault. */
  | { type: 'oci'; ref: string };

export interface HelmChart {
  repoName: string;
  repoUrl: string;
  chart: string;
  version: string;
  source: ChartSource;
}

export interface EnginePlan {
  path: string;
  type: 'kv' | 'database' | 'transit' | 'kubernetes';
  options: Record<string, string>;
  description: string;
}

export interface PolicyPlan {
  name: string;
  hcl: string;
}

export interface RolePlan {
  /** eso-<ns>-role, injector-<app>-role, ... (deliveries/types.ts deliveryRoleName) */
  name: string;
  namespace: string;
  serviceAccount: string;
  audience: string;
  policies: string[];
  ttl: string;
}

export interface VaultPlan {
  distribution: 'vault' | 'openbao';
  /** CLI/env names for this distribution ("vault"/"bao", VAULT_ADDR/BAO_ADDR). */
  cli: string;
  chart: HelmChart;
  image: { repository: string; tag: string };
  namespace: string;
  release: string;
  /** External Vault: no Helm install, no init/unseal by vaultlab. */
  external: boolean;
  /** Address vaultlab uses from the host. */
  hostAddress: string;
  /** Address ESO uses from inside the cluster. */
  inClusterAddress: string;
  tls: boolean;
  /** Who issues Vault's certificate in production: vaultlab's own CA, or cert-manager. */
  tlsIssuer: 'generated' | 'cert-manager';
  ha: { enabled: boolean; replicas: number };
  init: {
    shares: number;
    threshold: number;
    pgpKeys: string[];
    /** demo: a copy of the init result in Secret `secretName` of Vault's namespace. */
    storeInCluster: boolean;
    secretName: string;
  };
  kvMount: string;
  engines: EnginePlan[];
  kubernetesAuth: { mount: string; audience: string; tokenTtl: string; roles: RolePlan[] };
  policies: PolicyPlan[];
  /** Keys of the transit engine (VSO's client cache). */
  transitKeys: TransitKeyPlan[];
  audit: { enabled: boolean; path: string };
  /** production: a limited token for day-2 runs; the root token is revoked. */
  setupToken: { enabled: boolean; policy: PolicyPlan };
  networkPolicy: boolean;
  /** Vault's `kubernetes` secrets engine: short-lived ServiceAccount tokens ([[kubernetes_roles]]). */
  kubernetesSecrets: KubernetesSecretsPlan | undefined;
  /** Vault's `database` engine: dynamic Postgres users per lease ([[databases]]). */
  databases: DatabasesPlan | undefined;
}

export interface DatabaseRolePlan {
  /** Vault role database/roles/<name>; credentials at database/creds/<name>. */
  name: string;
  /** The connection (database/config/<dbName>) that creates its users. */
  dbName: string;
  app: string;
  /** The app's namespace: its policy (production) may read the role's credentials. */
  namespace: string;
  groupRole: string;
  database: string;
  defaultTtl: string;
  maxTtl: string;
  creationStatements: string[];
  revocationStatements: string[];
}

export interface DatabaseConnectionPlan {
  name: string;
  plugin: 'postgresql-database-plugin';
  /** The sample Postgres vaultlab deploys, or an external server. */
  sample: boolean;
  host: string;
  port: number;
  database: string;
  /** Templated: Vault fills in {{username}} and {{password}}; no secret in it. */
  connectionUrl: string;
  username: string;
  /** The [passwords] entry with the editor's original password (used once: Vault rotates it). */
  passwordName: string;
  /** Exactly the configured roles, never "*". */
  allowedRoles: string[];
  roles: DatabaseRolePlan[];
}

export interface SamplePostgresPlan {
  /** The connection that uses it. */
  connection: string;
  namespace: string;
  /** StatefulSet and Service name. */
  name: string;
  image: string;
  database: string;
  editorUsername: string;
  /** Secret (created by deploy, never rendered) holding the editor's original password under `password`. */
  passwordSecret: string;
  /** Group roles and a table each, created by the init step. */
  groupRoles: { role: string; table: string }[];
}

export interface DatabasesPlan {
  mount: string;
  connections: DatabaseConnectionPlan[];
  sample: SamplePostgresPlan | undefined;
}

/** One RBAC rule, as the API spells it. */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface KubernetesRolePlan {
  /** Vault role kubernetes/roles/<name>; credentials at kubernetes/creds/<name>. */
  name: string;
  namespaces: string[];
  /** service-account: tokens for an existing account; rules / cluster-role: a generated account and binding per lease. */
  mode: 'service-account' | 'rules' | 'cluster-role';
  serviceAccount: string | undefined;
  /** rules: the generated Role's (or ClusterRole's) rules. */
  rules: RbacRule[];
  /** cluster-role: the existing ClusterRole bound per lease. */
  clusterRole: string | undefined;
  /** What the generated binding refers to: a generated Role, or a ClusterRole (generated or existing). */
  roleType: 'Role' | 'ClusterRole';
  /** Leases bind with a ClusterRoleBinding (demo only). */
  clusterWide: boolean;
  tokenTtl: string;
  tokenMaxTtl: string;
  audiences: string[];
}

export interface KubernetesSecretsPlan {
  mount: string;
  /** The account whose token Vault uses for these API calls: its own pod's, or (external Vault) vaultlab's. */
  identity: { namespace: string; serviceAccount: string };
  roles: KubernetesRolePlan[];
}

export interface EsoPlan {
  chart: HelmChart;
  namespace: string;
  release: string;
}

export type SeedSource =
  | { type: 'literal'; password: string }
  | { type: 'random'; format: 'base64' | 'hex'; bytes: number };

export interface SeedEntry {
  path: string;
  key: string;
  source: SeedSource;
  hash: { type: 'none' } | { type: 'bcrypt'; cost: number };
  /** With bcrypt: the plaintext is also stored at this key of the same path. */
  plaintextKey: string | undefined;
  alwaysRandom: boolean;
  /** Entries naming the same random [passwords] entry share one generated value. */
  group: string | undefined;
  description: string | undefined;
}

export interface SeedPlan {
  mount: string;
  entries: SeedEntry[];
}

export interface SecretStorePlan {
  name: string;
  server: string;
  path: string;
  version: 'v2';
  authMount: string;
  role: string;
  serviceAccount: string;
  audiences: string[];
  /** production: CA bundle reference for https. */
  caSecret: { name: string; key: string } | undefined;
}

export interface ExternalSecretPlan {
  name: string;
  target: string;
  creationPolicy: 'Owner' | 'Merge' | 'Orphan' | 'None';
  deletionPolicy: 'Delete' | 'Merge' | 'Retain';
  refreshInterval: string;
  data: { secretKey: string; path: string; key: string }[];
  template: { type: string | undefined; data: Record<string, string>; mergePolicy: 'Replace' | 'Merge' } | undefined;
  app: string;
}

export interface SamplePlan {
  app: string;
  kind: Exclude<SampleKind, 'none'>;
  /** Target Secrets the sample consumes (none for the injector: it gets files). */
  secrets: string[];
}

export interface NamespacePlan {
  name: string;
  /** The deliveries its enabled apps use (DELIVERY_NAMES order): each renders its objects here. */
  deliveries: DeliveryName[];
  /** ESO's, below: its ServiceAccount, SecretStore and ExternalSecrets (rendered when "eso" is in `deliveries`). */
  serviceAccount: string;
  secretStore: SecretStorePlan;
  externalSecrets: ExternalSecretPlan[];
  samples: SamplePlan[];
}
