// How an app gets its secrets from Vault: a "delivery". One module per delivery, in a folder
// named after it (scripts/deliveries/<name>/index.ts), each implementing `Delivery`; the list is
// scripts/deliveries/index.ts, so another delivery (Secrets Store CSI) is one new module there.
//
// A delivery's pure side (check, planApp, vaultAccess, manifests, consume, chart values) runs in
// `vaultlab plan`: no I/O, same input, same output. Its side effects (apply, verify, status) load
// through `runtime()`, only when some enabled app uses the delivery.
//
// The join key is the app's name: it derives the app's namespace (default), ServiceAccount, Vault
// role and policy (see the name helpers at the end), so an app declares nothing twice.
import type { AppConfig, AppSecretConfig, Config, SampleKind } from '../config/schema.ts';
import type { KubeObject } from '../plan/objects.ts';
import type { ExternalSecretPlan, HelmChart, NamespacePlan, Plan, PolicyPlan, RolePlan, TransitKeyPlan } from '../plan/types.ts';
import type { DeployContext } from '../steps/context.ts';
import type { Environment } from '../lifecycle/connect.ts';
import type { Check } from '../lifecycle/status.ts';

export const DELIVERY_NAMES = ['eso', 'injector', 'vso'] as const;
export type DeliveryName = (typeof DELIVERY_NAMES)[number];
export const DEFAULT_DELIVERY: DeliveryName = 'eso';

/** Keys of an [[apps.secrets]] entry every delivery reads; any other key belongs to one delivery (`Delivery.secretFields`). */
export const COMMON_SECRET_FIELDS = ['name', 'data'] as const;

// ---------------------------------------------------------------------------------------------
// The plan of one enabled app (Plan.apps), whichever delivery it uses.

/** One value the app gets: Vault's <kv_mount>/<path> key <key>, known to the app as <secretKey>. */
export interface SecretDataPlan {
  secretKey: string;
  path: string;
  key: string;
}

interface AppPlanBase {
  name: string;
  namespace: string;
  /** The ServiceAccount the app's Vault role binds: ESO's per-namespace "external-secrets", else the app's name. */
  serviceAccount: string;
  /** The Kubernetes-auth role it logs in with (its policies are in plan.vault.kubernetesAuth.roles). */
  role: string;
  sample: SampleKind;
}

export interface EsoAppPlan extends AppPlanBase {
  delivery: 'eso';
  externalSecrets: ExternalSecretPlan[];
}

export interface InjectorFilePlan {
  /** The [[apps.secrets]] name: annotations agent-inject-secret-<name> / agent-inject-template-<name>. */
  name: string;
  /** Where the agent writes it in the app's containers: /vault/secrets/<name>. */
  file: string;
  data: SecretDataPlan[];
  /** The Vault Agent (consul-template) template vaultlab renders into agent-inject-template-<name>. */
  template: string;
  /** The config's file_template, or undefined when vaultlab's default (one KEY=value line per mapping) is used. */
  fileTemplate: string | undefined;
  /** database_role: dynamic credentials from <mount>/creds/<role> instead of KV values (data is then empty). */
  database?: InjectorDatabasePlan;
}

/** An injector file of dynamic database credentials: where the lease comes from and where it connects. */
export interface InjectorDatabasePlan {
  /** The [[databases.roles]] name. */
  role: string;
  /** Vault's path the agent reads: <mount>/creds/<role>. */
  credsPath: string;
  host: string;
  port: number;
  database: string;
  /** The table the group role may read (the sample Postgres creates it; the db-client sample reads it). */
  table: string;
}

export interface InjectorAppPlan extends AppPlanBase {
  delivery: 'injector';
  files: InjectorFilePlan[];
}

export interface VsoSecretPlan {
  /** The [[apps.secrets]] name (the VaultStaticSecret's). */
  name: string;
  /** The Kubernetes Secret VSO writes (config `target`, default: the name). */
  target: string;
  data: SecretDataPlan[];
  /** How often VSO re-reads Vault (config `refresh_after`, default "1h"). */
  refreshAfter: string;
  /** Restart the app's Deployment (named after the app) when the Secret changes (config `rollout_restart`, default true). */
  rolloutRestart: boolean;
}

export interface VsoAppPlan extends AppPlanBase {
  delivery: 'vso';
  secrets: VsoSecretPlan[];
}

export type AppPlan = EsoAppPlan | InjectorAppPlan | VsoAppPlan;
export type AppPlanOf<N extends DeliveryName> = Extract<AppPlan, { delivery: N }>;

// ---------------------------------------------------------------------------------------------
// What a delivery gets to work with.

export interface CheckContext {
  config: Config;
  production: boolean;
  /** The app's index in [[apps]] and which table holds its mappings ("secrets", or the old "external_secrets"). */
  appIndex: number;
  secretsKey: 'secrets' | 'external_secrets';
  /** Records a config error at a path from the top (['apps', i, 'secrets', j, 'file_template']); the loader adds file:line. */
  error(path: (string | number)[], message: string, hint?: string): void;
  /** Does a [[secrets]] entry seed <path> key <key>? */
  seeded(path: string, key: string): boolean;
}

export interface PlanContext {
  config: Config;
  production: boolean;
  /** How apps reach Vault from inside the cluster and log in. */
  vault: {
    inClusterAddress: string;
    tls: boolean;
    kvMount: string;
    authMount: string;
    audience: string;
    tokenTtl: string;
    /** production: the Secret (in every app namespace) holding Vault's CA. */
    caSecret: { name: string; key: string } | undefined;
  };
  /**
   * Policy paths for dynamic credentials ([[kubernetes_roles]] tokens, [[databases.roles]] users)
   * that a delivery's policy for namespace `ns` gains (demo's shared policy: undefined, every
   * role); "" when there are none.
   */
  dynamicCredsHcl(ns: string | undefined): string;
}

/** A pod template (a Deployment's spec.template) a delivery wires its secrets into. */
export interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { serviceAccountName?: string; automountServiceAccountToken?: boolean; containers: any[]; initContainers?: any[]; volumes?: any[]; [key: string]: unknown };
}

/** A chart a delivery installs itself (ESO, VSO); the injector rides in the Vault chart instead. */
export interface HelmReleasePlan {
  /** "ESO", "VSO": how install reports it. */
  title: string;
  chart: HelmChart;
  namespace: string;
  release: string;
  values: Record<string, unknown>;
  /** CRDs `apply` waits for (Established). */
  crds: string[];
}

/** One delivered secret, compared with Vault (digests, never values). */
export interface DeliveryCheck {
  namespace: string;
  /** What was delivered: a Secret's name, or "<app>:/vault/secrets/<name>". */
  target: string;
  ok: boolean;
  problems: string[];
  delivery?: DeliveryName;
  app?: string;
}

export interface ApplySummary {
  applied: number;
  changed: number;
  /** One line for the step's output. */
  detail: string;
}

// ---------------------------------------------------------------------------------------------
// The interface.

export interface Delivery<N extends DeliveryName = DeliveryName> {
  name: N;
  /** "External Secrets Operator (a Kubernetes Secret per mapping)". */
  title: string;
  /** Keys of [[apps.secrets]] only this delivery reads; set on another delivery's app, they are config errors. */
  secretFields: readonly string[];
  /** Samples that can consume this delivery (others are config errors). */
  samples: readonly SampleKind[];

  /** Config checks of one app using this delivery (enabled or not), beyond the shared ones. */
  check(app: AppConfig, secrets: AppSecretConfig[], c: CheckContext): void;
  /** config -> the enabled app's plan. */
  planApp(app: AppConfig, secrets: AppSecretConfig[], c: PlanContext): AppPlanOf<N>;
  /** The Vault roles and policies its apps need; least privilege per namespace in production. */
  vaultAccess(apps: AppPlanOf<N>[], c: PlanContext): { roles: RolePlan[]; policies: PolicyPlan[]; transitKeys?: TransitKeyPlan[] };

  /** Render: its objects in one namespace, for its apps there (not the Namespace, not sample workloads). */
  manifests(plan: Plan, ns: NamespacePlan, apps: AppPlanOf<N>[]): KubeObject[];
  /** Render: how a sample's pod template consumes the app's secrets (mutates `pod`). */
  consume(plan: Plan, app: AppPlanOf<N>, pod: PodTemplate): void;
  /** Render: the keys the app's workload sees as environment variables (the env sample lists them); none when omitted. */
  sampleKeys?(app: AppPlanOf<N>): string[];
  /** Install: values merged into the Vault/OpenBao chart's (the injector), when some enabled app uses it. */
  vaultChartValues?(plan: Plan): Record<string, unknown>;
  /** Install: its own chart, when some enabled app uses it. */
  release?(plan: Plan): HelmReleasePlan;

  /** Deploy and status: loaded on first use. */
  runtime(): Promise<DeliveryRuntime<N>>;
}

export interface DeliveryRuntime<N extends DeliveryName = DeliveryName> {
  /** Deploy, after Vault is configured and before the sample workloads: apply its objects, wait until they are ready. */
  apply(ctx: DeployContext, apps: AppPlanOf<N>[], report: (message: string) => void): Promise<ApplySummary>;
  /** Deploy, after the workloads: every delivered secret checked against Vault. */
  verify(ctx: DeployContext, apps: AppPlanOf<N>[], report: (message: string) => void, signal: AbortSignal): Promise<DeliveryCheck[]>;
  /** `vaultlab status`: its checks (a failed check with severity "error" makes the environment unhealthy). */
  status(env: Environment, apps: AppPlanOf<N>[]): Promise<Check[]>;
  /**
   * Rotation (`vaultlab rotate`, `reset --secrets`): Vault's values at `changed` are new. Make every
   * consumer of them among `apps` see them (ESO: force a sync, then restart the Deployments that
   * read the Secret; injector: the agent re-renders; VSO: its rolloutRestartTargets), and resolve
   * only when each consumer's pod holds the new value (compared by digest); throw naming the one
   * that did not within the deadline (`opts.timeoutMs`, default 120 s). Omitted: the delivery has
   * no consumers to converge.
   */
  converge?(env: Environment, apps: AppPlanOf<N>[], changed: ChangedValue[], signal: AbortSignal, opts?: ConvergeOptions): Promise<ConvergeResult[]>;
}

export interface ConvergeOptions {
  /** How long the whole convergence may take (default 120 s). */
  timeoutMs?: number;
  /** The moment the change was made (stamps: force-sync, restartedAt); default now. */
  now?: Date;
  /** Only the Kubernetes Secrets: re-synced until they hold the values; no pod restarted or awaited. */
  secretsOnly?: boolean;
}

/** One Vault value a rotation changed: <kv_mount>/<path> key <key>. */
export interface ChangedValue {
  path: string;
  key: string;
}

/** What a delivery did so that one consumer sees a rotated value. */
export interface ConvergeResult {
  namespace: string;
  app: string;
  /** What it concerns: "ExternalSecret <name>", "Deployment <name>", "<pod>:<file>". */
  target: string;
  /**
   * "re-synced", "restarted", "re-rendered", "rolled by VSO", or "unchanged" (its pods already held
   * the new value), optionally followed by a detail in parentheses: "restarted (env+file)".
   */
  action: string;
  /** Seconds from the start of the convergence until the pod held the new value. */
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Vault names, derived from the delivery and the app or namespace (what `vault configure --prune` may delete).

/** "<delivery>-<subject>-role": ESO's subject is the namespace (eso-webapp-role), the others' the app. */
export const deliveryRoleName = (delivery: DeliveryName, subject: string): string => `${delivery}-${subject}-role`;
/** production "<delivery>-<namespace>-policy" (reads only <kv_mount>/<namespace>/*); demo "<delivery>-policy" (reads all). */
export const deliveryPolicyName = (delivery: DeliveryName, namespace?: string): string => (namespace ? `${delivery}-${namespace}-policy` : `${delivery}-policy`);
