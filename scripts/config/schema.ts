// The config.toml model. Every table is strict: an unknown key is an error with a
// "did you mean" suggestion (see load.ts), so a typo can never silently do nothing.
import { z } from 'zod';
import { DELIVERY_NAMES, DEFAULT_DELIVERY } from '../deliveries/types.ts';
import { kubernetesRoles } from './kubernetes-roles-schema.ts';
import { databases } from './databases-schema.ts';
import { dnsLabel, duration } from './fields.ts';

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS subdomain: lowercase letters, digits, "-" and "."');

const port = z.number().int().min(1).max(65535);

/** A KV path below the mount: "argocd/admin". No leading slash, no "data/" prefix, no "..". */
export const kvPath = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/, 'must be a path below the KV mount like "argocd/admin" (no leading "/", no empty or ".." segments)')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

export const kvKey = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, "_", "-" or "." (e.g. "admin.password")');

export const passwordName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must start with a letter and use letters, digits and "_" (it becomes VAULTLAB_PASSWORD_<NAME>)');

import { PROFILES, ENGINES, SAMPLES } from './model.ts';
export { PROFILES, ENGINES, SAMPLES, appSecrets, type ProfileName, type SampleKind } from './model.ts';

const profileSection = z.strictObject({
  name: z.enum(PROFILES).default('demo'),
});

const clusterSection = z.strictObject({
  name: dnsLabel.default('vaultlab'),
  provider: z.enum(['kind', 'existing']).default('kind'),
  /** kubeconfig context for provider = "existing". */
  context: z.string().min(1).optional(),
  /** kubeconfig file; default: $KUBECONFIG or ~/.kube/config. */
  kubeconfig: z.string().min(1).optional(),
  node_image: z
    .string()
    .min(1)
    .default('kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed'),
  workers: z.number().int().min(0).max(5).default(0),
  ports: z
    .strictObject({
      /** Host port for the Vault API and UI. */
      vault: port.default(8200),
      /** Host port for sample apps served over HTTP. */
      http: port.default(8080),
    })
    .default({ vault: 8200, http: 8080 }),
});

const kubernetesAuthSection = z.strictObject({
  mount: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).default('kubernetes'),
  audience: z.string().min(1).default('vault'),
  token_ttl: duration.default('1h'),
});

const vaultSection = z.strictObject({
  distribution: z.enum(['vault', 'openbao']).default('vault'),
  /** Helm chart version; default depends on the distribution. */
  chart_version: z.string().min(1).optional(),
  /** Server image tag; default depends on the distribution. */
  image_tag: z.string().min(1).optional(),
  namespace: dnsLabel.default('vault'),
  release: dnsLabel.default('vault'),
  kv_mount: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).default('secret'),
  engines: z.array(z.enum(ENGINES)).min(1).default([...ENGINES]),
  /** NodePort of the Vault service inside the cluster (mapped to cluster.ports.vault on the host). */
  node_port: z.number().int().min(30000).max(32767).default(30200),
  /** An external Vault instead of the in-cluster one. */
  address: z.string().url().optional(),
  kubernetes_auth: kubernetesAuthSection.default({ mount: 'kubernetes', audience: 'vault', token_ttl: '1h' }),
});

const productionSection = z.strictObject({
  replicas: z.number().int().min(3).max(7).default(3),
  key_shares: z.number().int().min(1).max(10).default(5),
  key_threshold: z.number().int().min(1).max(10).default(3),
  /** PGP public keys (base64 or file paths), one per share: shares are returned encrypted. */
  pgp_keys: z.array(z.string().min(1)).default([]),
  tls: z.enum(['generated', 'cert-manager']).default('generated'),
  audit: z.boolean().default(true),
  network_policy: z.boolean().default(true),
  /** [passwords] names whose literal values may be used in production (values from outside, like a registry token). */
  allow_literals: z.array(passwordName).default([]),
});

const esoSection = z.strictObject({
  chart_version: z.string().min(1).default('2.9.0'),
  namespace: dnsLabel.default('external-secrets'),
  release: dnsLabel.default('external-secrets'),
});

/** Vault Secrets Operator: installed only when some enabled app has delivery = "vso". */
const vsoSection = z.strictObject({
  chart_version: z.string().min(1).default('0.10.0'),
  namespace: dnsLabel.default('vault-secrets-operator'),
  release: dnsLabel.default('vault-secrets-operator'),
  /**
   * VSO's client cache (the Vault tokens it logged in with): "transit" persists it in Secrets of
   * VSO's namespace, encrypted with a Vault transit key (a restarted VSO resumes its logins and
   * leases instead of starting over); "memory" keeps it in the controller only (VSO's default).
   * Default: "transit" when vault.engines has "transit", else "memory".
   */
  client_cache: z.enum(['transit', 'memory']).optional(),
  /** The transit key VSO encrypts its client cache with (transit/keys/<name>). */
  client_cache_key: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, "-" and "_"').default('vso-client-cache'),
});

const secretEntry = z.strictObject({
  path: kvPath,
  key: kvKey,
  /** Name of a [passwords] entry; its value is used when set, a random one when "". */
  password: passwordName.optional(),
  format: z.enum(['base64', 'hex']).default('base64'),
  bytes: z.number().int().min(8).max(512).default(32),
  hash: z.enum(['none', 'bcrypt']).default('none'),
  bcrypt_cost: z.number().int().min(4).max(15).default(10),
  /** Also store the plaintext of a bcrypt-hashed value under this key of the same path. */
  plaintext_key: kvKey.optional(),
  always_random: z.boolean().default(false),
  description: z.string().optional(),
});

const dataMapping = z.strictObject({
  secret_key: z.string().regex(/^[-._a-zA-Z0-9]+$/, 'must be a valid Secret data key: letters, digits, "-", "_" or "."'),
  path: kvPath,
  key: kvKey,
});

const templateSection = z.strictObject({
  type: z.string().min(1).optional(),
  /** Target Secret data rendered by ESO's template engine (v2): "{{ .secret_key }}". */
  data: z.record(z.string(), z.string()).default({}),
  merge_policy: z.enum(['Replace', 'Merge']).default('Replace'),
});

/**
 * What an app gets from Vault: [[apps.secrets]] (the older name [[apps.external_secrets]] is
 * accepted too). `name` and `data` mean the same for every delivery; each other key belongs to
 * the deliveries listed beside it, and set on another delivery's app it is a config error.
 * Their defaults are applied by the delivery (so an explicit value can be told from a default).
 */
const appSecret = z.strictObject({
  /** ESO: the ExternalSecret; injector: the file /vault/secrets/<name>; VSO: the VaultStaticSecret. */
  name: dnsSubdomain,
  /** The KV values it reads; at least one, except for an injector entry with database_role. */
  data: z.array(dataMapping).default([]),
  /**
   * injector: instead of KV values, dynamic database credentials: the [[databases.roles]] name whose
   * database/creds/<role> the agent reads (a Postgres user of the app's own, renewed and re-issued by
   * the agent), rendered as libpq variables (PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE, VAULT_LEASE_ID).
   */
  database_role: z.string().min(1).optional(),
  /** eso, vso: the target Kubernetes Secret; default: the name. */
  target: dnsSubdomain.optional(),
  /** eso: default "Owner". */
  creation_policy: z.enum(['Owner', 'Merge', 'Orphan', 'None']).optional(),
  /** eso: default "Retain". */
  deletion_policy: z.enum(['Delete', 'Merge', 'Retain']).optional(),
  /** eso: default "1h". */
  refresh_interval: duration.optional(),
  /** eso: the target Secret's data rendered by ESO's template engine. */
  template: templateSection.optional(),
  /**
   * injector: the file's text, a Go template over the data mappings: "{{ .secret_key }}" (or
   * {{ index . "db-password" }}). Default: one "secret_key=value" line per mapping.
   */
  file_template: z.string().min(1).optional(),
  /** vso: how often VSO re-reads Vault; default "1h". */
  refresh_after: duration.optional(),
  /** vso: restart the app's Deployment (named after the app) when the Secret changes; default true when its sample is a Deployment. */
  rollout_restart: z.boolean().optional(),
});

const appSection = z
  .strictObject({
    /** The join key: the namespace (default), the ServiceAccount, the Vault role and policy derive from it. */
    name: dnsLabel,
    /** Default: the app's name. */
    namespace: dnsLabel.optional(),
    /** How the app gets its secrets: "eso" (a Kubernetes Secret, the default), "injector" (files from a Vault Agent sidecar), "vso". */
    delivery: z.enum(DELIVERY_NAMES).default(DEFAULT_DELIVERY),
    /** Fuse: false switches the whole app (its secrets and sample workload) off. */
    enabled: z.boolean().default(true),
    /** The bundled sample workload that consumes this app's secrets. */
    sample: z.enum(SAMPLES).default('none'),
    secrets: z.array(appSecret).default([]),
    /** The older name of `secrets` (accepted; use one of the two). */
    external_secrets: z.array(appSecret).default([]),
  })
  .transform((a) => ({ ...a, namespace: a.namespace ?? a.name }));

/**
 * Where a chart comes from: its repository (the default, or a mirror's URL), a chart directory or
 * .tgz on disk, or an OCI reference. At most one of the three.
 */
const chartSource = z
  .strictObject({
    /** A Helm repository URL (a mirror of the official one); the chart name stays the same. */
    repository: z.string().url().optional(),
    /** A chart directory or packaged .tgz on disk (air-gapped machines). Relative to config.toml. */
    path: z.string().min(1).optional(),
    /** An OCI chart reference: "oci://registry.example.com/charts/vault". */
    oci: z.string().regex(/^oci:\/\/[^\s]+$/, 'must be an OCI reference like "oci://registry.example.com/charts/vault"').optional(),
  })
  .refine((c) => [c.repository, c.path, c.oci].filter((x) => x !== undefined).length <= 1, {
    message: 'set one of repository, path or oci, not several',
  });

const imageRef = z
  .string()
  .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/, 'must be an image reference like "registry.example.com/hashicorp/vault:1.21.0"');

const imagesSection = z.strictObject({
  /**
   * A registry mirror every image is pulled through: "mirror.example.com:5000" or
   * "mirror.example.com/proxy". The image's own registry is replaced by it, its path kept:
   * quay.io/openbao/openbao:2.7.2 -> mirror.example.com:5000/openbao/openbao:2.7.2, busybox:1.37 ->
   * mirror.example.com:5000/library/busybox:1.37. Per-component overrides below are used as given.
   */
  mirror: z.string().regex(/^[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9._-]+)*$/, 'must be a registry host with an optional port and path, like "mirror.example.com:5000"').optional(),
  /** The Vault or OpenBao server image (default: the distribution's, at vault.image_tag). */
  vault: imageRef.optional(),
  /** The Agent Injector image (vault-k8s), when the injector is enabled. */
  injector: imageRef.optional(),
  /** The Vault agent image the injector adds to pods. */
  agent: imageRef.optional(),
  /** The External Secrets Operator image (controller, webhook and cert controller). */
  eso: imageRef.optional(),
  /** The Vault Secrets Operator controller image, when some app uses delivery "vso". */
  vso: imageRef.optional(),
  /** The kube-rbac-proxy sidecar VSO's chart runs beside its controller. */
  vso_rbac_proxy: imageRef.optional(),
  /** The image of the bundled sample apps (a busybox with sh, httpd, wget). */
  samples: imageRef.optional(),
  /** The sample Postgres of [[databases]] with where = "sample". */
  postgres: imageRef.optional(),
});

export const configSchema = z.strictObject({
  profile: profileSection.default({ name: 'demo' }),
  cluster: clusterSection.default(() => clusterSection.parse({})),
  vault: vaultSection.default(() => vaultSection.parse({})),
  production: productionSection.default(() => productionSection.parse({})),
  eso: esoSection.default(() => esoSection.parse({})),
  vso: vsoSection.default(() => vsoSection.parse({})),
  charts: z
    .strictObject({ vault: chartSource.default({}), eso: chartSource.default({}), vso: chartSource.default({}) })
    .default({ vault: {}, eso: {}, vso: {} }),
  images: imagesSection.default({}),
  passwords: z.record(passwordName, z.string()).default({}),
  secrets: z.array(secretEntry).default([]),
  apps: z.array(appSection).default([]),
  kubernetes_roles: kubernetesRoles,
  databases,
});

export type Config = z.infer<typeof configSchema>;
export type SecretEntryConfig = z.infer<typeof secretEntry>;
export type AppConfig = z.infer<typeof appSection>;
export type AppSecretConfig = z.infer<typeof appSecret>;
/** The older name of AppSecretConfig. */
export type ExternalSecretConfig = AppSecretConfig;
