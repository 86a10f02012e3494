// Plan -> artifacts: file path -> bytes. Deterministic, so the output can be committed for GitOps.
// Contains no secret value: seeding is described by source, never by value.
import { stringify } from 'yaml';
import { stackValues } from './stacks.ts';
import type { Plan } from './types.ts';
import { allManifests, kubernetesSecretsClusterManifests, vaultNetworkPolicy, type KubeObject } from './manifests.ts';
import { certManagerManifests } from '../tls/certs.ts';
import { vaultImageValues } from './images.ts';
import { usedDeliveries } from '../deliveries/index.ts';
import { samplePostgresManifests } from './postgres-sample.ts';
import { databaseRoles } from './databases.ts';
import { vsoOperatorManifests } from '../deliveries/vso/render.ts';

export type Artifacts = Map<string, string>;

const yaml = (value: unknown): string => stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
const yamlDocs = (objects: KubeObject[]): string => objects.map((o) => `---\n${yaml(o)}`).join('');
const HEADER = '# Rendered by `vaultlab plan`; do not edit, edit config.toml.\n';

const stack = stackValues;

export { mergeValues } from './values.ts';
import { mergeValues } from './values.ts';

export const TLS_DIR = '/vault/userconfig/vault-tls';

export function raftConfig(plan: Plan): string {
  const { release } = plan.vault;
  const joins = Array.from({ length: plan.vault.ha.replicas }, (_, i) =>
    [
      '  retry_join {',
      `    leader_api_addr         = "https://${release}-${i}.${release}-internal:8200"`,
      `    leader_ca_cert_file     = "${TLS_DIR}/ca.crt"`,
      `    leader_tls_servername   = "${release}-${i}.${release}-internal"`,
      '  }',
    ].join('\n'),
  );
  return [
    'ui = true',
    '',
    'listener "tcp" {',
    '  address         = "[::]:8200"',
    '  cluster_address = "[::]:8201"',
    `  tls_cert_file   = "${TLS_DIR}/tls.crt"`,
    `  tls_key_file    = "${TLS_DIR}/tls.key"`,
    '  tls_min_version = "tls12"',
    '}',
    '',
    'storage "raft" {',
    '  path = "/vault/data"',
    ...joins,
    '}',
    '',
    'service_registration "kubernetes" {}',
    // OpenBao creates audit devices only from its configuration (not through the API).
    ...(plan.vault.distribution === 'openbao' && plan.vault.audit.enabled
      ? ['', 'audit "file" "file" {', '  description = "vaultlab: file audit log"', '  options {', `    file_path = "${plan.vault.audit.path}"`, '  }', '}']
      : []),
    '',
  ].join('\n');
}

/** The demo server configuration for OpenBao: as values-demo.yaml, with single-node Raft storage. */
export const OPENBAO_DEMO_CONFIG = [
  'ui = true',
  'disable_mlock = true',
  'listener "tcp" {',
  '  tls_disable     = 1',
  '  address         = "[::]:8200"',
  '  cluster_address = "[::]:8201"',
  '}',
  'storage "raft" {',
  '  path    = "/openbao/data"',
  '  node_id = "HOSTNAME"',
  // Raft's highest-performance timing (the default, 5, is for minimal servers): `operator init`
  // waits one heartbeat timeout before the single node elects itself, 5 s by default, 1 s here
  // (measured with bao 2.x: init 5.6 s -> 1.6 s). It was most of OpenBao's slower vault step.
  '  performance_multiplier = 1',
  '}',
  // api_addr and cluster_addr come from the chart's BAO_API_ADDR / BAO_CLUSTER_ADDR (stable names).
  '',
].join('\n');

export function vaultValues(plan: Plan): Record<string, any> {
  const v = plan.vault;
  const base = stack(plan.profile === 'production' ? 'vault/values-production.yaml' : 'vault/values-demo.yaml');
  const over: Record<string, any> = mergeValues(vaultImageValues(v.distribution, plan.images), {
    // Every object named after the release, whichever chart: vault-0, vault, vault-internal
    // (the OpenBao chart would otherwise call them <release>-openbao…).
    fullnameOverride: v.release,
    server: {
      // A checksum of the server configuration on the pods: with the chart's OnDelete update
      // strategy, a changed configuration makes a new StatefulSet revision, which the Vault step
      // rolls out pod by pod (steps/vault-rollout.ts). The OpenBao chart names the key differently.
      [v.distribution === 'openbao' ? 'configAnnotation' : 'includeConfigAnnotation']: true,
      // Every member at once: vaultlab waits for all of them before init, and the OpenBao chart's
      // default (OrderedReady) creates member 1 only once member 0 is Ready, i.e. unsealed.
      ...(v.distribution === 'openbao' ? { podManagementPolicy: 'Parallel' } : {}),
    },
  });
  if (plan.profile === 'production') {
    over.server.ha = { replicas: v.ha.replicas, raft: { config: raftConfig(plan) } };
    // The chart's default anti-affinity needs one node per replica; relax it when kind has fewer nodes.
    if (plan.cluster.provider === 'kind' && plan.cluster.workers + 1 < v.ha.replicas) over.server.affinity = '';
    if (v.distribution === 'openbao') over.server.extraEnvironmentVars = { BAO_CACERT: `${TLS_DIR}/ca.crt` };
  } else {
    over.server.service = { nodePort: plan.cluster.nodePorts.vault };
    // OpenBao 2.x has no file storage backend: a single-node Raft instead.
    if (v.distribution === 'openbao') over.server.standalone = { config: OPENBAO_DEMO_CONFIG };
  }
  // The deliveries that ride in the Vault chart (the Agent Injector), when some enabled app uses them.
  for (const d of usedDeliveries(plan)) if (d.vaultChartValues) Object.assign(over, mergeValues(over, d.vaultChartValues(plan)));
  const values = mergeValues(base, over);
  // The OpenBao chart has the same key tree, but mounts everything under /openbao.
  return v.distribution === 'openbao' ? (rebase(values) as Record<string, any>) : values;
}

/**
 * External Vault: the Vault chart installs only what rides in it (the Agent Injector), pointed at
 * the external address: no server, no UI. Undefined when no used delivery needs the chart.
 */
export function injectorOnlyValues(plan: Plan): Record<string, any> | undefined {
  const extras = usedDeliveries(plan).flatMap((d) => (d.vaultChartValues ? [d.vaultChartValues(plan)] : []));
  if (extras.length === 0) return undefined;
  const v = plan.vault;
  const { server: _server, ...images } = vaultImageValues(v.distribution, plan.images);
  let values: Record<string, any> = mergeValues(images, {
    fullnameOverride: v.release,
    global: { enabled: true, tlsDisable: !v.inClusterAddress.startsWith('https://') },
    server: { enabled: false },
    ui: { enabled: false },
    injector: { externalVaultAddr: v.inClusterAddress },
  });
  for (const e of extras) values = mergeValues(values, e);
  return values;
}

/** The Vault chart's values as deploy installs them: the server's, or (external Vault) only the injector's. */
export function vaultChartValues(plan: Plan): Record<string, any> | undefined {
  return plan.vault.external ? injectorOnlyValues(plan) : vaultValues(plan);
}

function rebase(node: unknown): unknown {
  if (typeof node === 'string') return node.replaceAll('/vault/', '/openbao/');
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, x]) => [k, rebase(x)]));
  return node;
}

/** ESO chart values (ESO's delivery owns them). */
export { esoValues } from '../deliveries/eso/values.ts';

export function kindConfig(plan: Plan): Record<string, any> {
  const c = plan.cluster;
  const portMappings = [
    ...(plan.profile === 'production' ? [] : [{ containerPort: c.nodePorts.vault, hostPort: c.hostPorts.vault, listenAddress: '127.0.0.1', protocol: 'TCP' }]),
    { containerPort: c.nodePorts.dashboard, hostPort: c.hostPorts.http, listenAddress: '127.0.0.1', protocol: 'TCP' },
  ];
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: c.name,
    nodes: [
      { role: 'control-plane', image: c.nodeImage, extraPortMappings: portMappings },
      ...Array.from({ length: c.workers }, () => ({ role: 'worker', image: c.nodeImage })),
    ],
  };
}

export function seedingMatrix(plan: Plan): Record<string, any> {
  return {
    mount: plan.seeding.mount,
    ...(plan.ignoredLiterals.length ? { ignoredLiterals: plan.ignoredLiterals } : {}),
    entries: plan.seeding.entries.map((e) => ({
      path: e.path,
      key: e.key,
      source: e.source.type === 'literal' ? `literal [passwords].${e.source.password}` : `random ${e.source.bytes} bytes, ${e.source.format}`,
      hash: e.hash.type === 'bcrypt' ? `bcrypt cost ${e.hash.cost}` : 'none',
      ...(e.plaintextKey ? { plaintextKey: e.plaintextKey } : {}),
      ...(e.group ? { sharedWith: e.group } : {}),
      ...(e.alwaysRandom ? { alwaysRandom: true } : {}),
    })),
  };
}

export function renderArtifacts(plan: Plan): Artifacts {
  const files: [string, string][] = [];
  files.push(['plan.json', `${JSON.stringify(plan, null, 2)}\n`]);
  if (plan.cluster.provider === 'kind') files.push(['kind/cluster.yaml', HEADER + yaml(kindConfig(plan))]);
  const vaultChart = vaultChartValues(plan);
  if (vaultChart) files.push(['helm/vault-values.yaml', HEADER + yaml(vaultChart)]);
  // Each used delivery's own chart (ESO's: helm/eso-values.yaml).
  for (const d of usedDeliveries(plan)) {
    const release = d.release?.(plan);
    if (release) files.push([`helm/${d.name}-values.yaml`, HEADER + yaml(release.values)]);
  }
  for (const p of plan.vault.policies) files.push([`vault/policies/${p.name}.hcl`, p.hcl]);
  if (plan.vault.setupToken.enabled) files.push([`vault/policies/${plan.vault.setupToken.policy.name}.hcl`, plan.vault.setupToken.policy.hcl]);
  files.push(['vault/engines.yaml', HEADER + yaml({ engines: plan.vault.engines, ...(plan.vault.transitKeys.length ? { transitKeys: plan.vault.transitKeys } : {}) })]);
  files.push([
    'vault/auth.yaml',
    HEADER + yaml({ kubernetes: { mount: plan.vault.kubernetesAuth.mount, audience: plan.vault.kubernetesAuth.audience, roles: plan.vault.kubernetesAuth.roles } }),
  ]);
  files.push([
    'vault/init.yaml',
    HEADER +
      yaml({
        shares: plan.vault.init.shares,
        threshold: plan.vault.init.threshold,
        keysStored: plan.vault.init.storeInCluster
          ? [`${plan.stateDir}/vault-init.json (0600)`, `Secret ${plan.vault.namespace}/${plan.vault.init.secretName}`]
          : [`${plan.stateDir}/vault-init.json (0600, written once; move it offline)`],
        rootToken: plan.vault.setupToken.enabled ? 'revoked after setup; day-2 runs use the vaultlab-setup token' : 'kept in the state dir',
        audit: plan.vault.audit.enabled ? plan.vault.audit.path : 'off',
      }),
  ]);
  files.push(['vault/seeding.yaml', HEADER + yaml(seedingMatrix(plan))]);
  const manifests = allManifests(plan);
  for (const ns of plan.namespaces) {
    files.push([`manifests/${ns.name}.yaml`, HEADER + yamlDocs(manifests.filter((m) => m.metadata.namespace === ns.name || (m.kind === 'Namespace' && m.metadata.name === ns.name)))]);
  }
  if (plan.vault.tls && plan.vault.tlsIssuer === 'cert-manager') files.push([`manifests/${plan.vault.namespace}-tls-cert-manager.yaml`, HEADER + yamlDocs(certManagerManifests(plan))]);
  if (plan.vault.networkPolicy) files.push([`manifests/${plan.vault.namespace}-network-policy.yaml`, HEADER + yamlDocs([vaultNetworkPolicy(plan)])]);
  const db = plan.vault.databases;
  if (db) {
    files.push([
      'vault/databases.yaml',
      HEADER +
        yaml({
          mount: db.mount,
          connections: db.connections.map((c) => ({
            name: c.name,
            plugin: c.plugin,
            connectionUrl: c.connectionUrl,
            username: c.username,
            password: `[passwords].${c.passwordName} (used once; rotated by Vault with rotate-root)`,
            allowedRoles: c.allowedRoles,
          })),
          roles: databaseRoles(db).map((r) => ({ name: r.name, connection: r.dbName, app: r.app, groupRole: r.groupRole, defaultTtl: r.defaultTtl, maxTtl: r.maxTtl, creationStatements: r.creationStatements, revocationStatements: r.revocationStatements })),
        }),
    ]);
    const pg = samplePostgresManifests(plan);
    if (pg.length) files.push([`manifests/${db.sample!.namespace}.yaml`, HEADER + yamlDocs(pg)]);
  }
  const vsoOwn = vsoOperatorManifests(plan);
  if (vsoOwn.length) files.push([`manifests/${plan.vso.namespace}.yaml`, HEADER + yamlDocs(vsoOwn)]);
  const k8sCluster = kubernetesSecretsClusterManifests(plan);
  if (k8sCluster.length) files.push(['manifests/vault-kubernetes-secrets.yaml', HEADER + yamlDocs(k8sCluster)]);
  return new Map(files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
