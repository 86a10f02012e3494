// Plan -> Kubernetes manifests, each built and validated with kubernetes-models.
// Pure apart from reading the bundled sample templates in stacks/samples.
import { SAMPLES_IMAGE } from './images.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { VAULT_RBAC_NAME, vaultClusterRules, vaultNamespaceRules } from './kubernetes-secrets.ts';
import { ExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret';
import { SecretStore } from '@kubernetes-models/external-secrets/external-secrets.io/v1/SecretStore';
import type { NamespacePlan, Plan, SamplePlan, ExternalSecretPlan } from './types.ts';
import { PROJECT_ROOT } from '../config/load.ts';
import { VaultlabError } from '../lib/errors.ts';

export { MANAGED_BY, TOKEN_REVIEWER, type KubeObject } from './objects.ts';
import { MANAGED_BY, type KubeObject } from './objects.ts';

/** Validated through its kubernetes-models class, returned as a plain object. */
export function checked<T extends { validate(): void; toJSON(): unknown }>(model: T, what: string): KubeObject {
  try {
    model.validate();
  } catch (err) {
    throw new VaultlabError(`rendered ${what} is not valid: ${(err as Error).message}`, { hint: 'This is a vaultlab bug or a sample template edited by hand; check stacks/samples.' });
  }
  return JSON.parse(JSON.stringify(model.toJSON())) as KubeObject;
}

export function namespaceManifests(plan: Plan, ns: NamespacePlan): KubeObject[] {
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const out: KubeObject[] = [
    checked(new Namespace({ metadata: { name: ns.name, labels: { ...labels, 'vaultlab.dev/vault-client': 'true' } } }), `Namespace ${ns.name}`),
    checked(new ServiceAccount({ metadata: { name: ns.serviceAccount, namespace: ns.name, labels } }), `ServiceAccount ${ns.name}/${ns.serviceAccount}`),
  ];
  const store = ns.secretStore;
  out.push(
    checked(
      new SecretStore({
        metadata: { name: store.name, namespace: ns.name, labels },
        spec: {
          provider: {
            vault: {
              server: store.server,
              path: store.path,
              version: store.version,
              ...(store.caSecret ? { caProvider: { type: 'Secret', name: store.caSecret.name, key: store.caSecret.key } } : {}),
              auth: {
                kubernetes: {
                  mountPath: store.authMount,
                  role: store.role,
                  serviceAccountRef: { name: store.serviceAccount, audiences: store.audiences },
                },
              },
            },
          },
        },
      }),
      `SecretStore ${ns.name}/${store.name}`,
    ),
  );
  out.push(...kubernetesSecretsRbac(plan, ns.name));
  for (const es of ns.externalSecrets) out.push(externalSecretManifest(ns, es, labels));
  for (const sample of ns.samples) out.push(...sampleManifests(plan, ns, sample));
  return out;
}

function externalSecretManifest(ns: NamespacePlan, es: ExternalSecretPlan, labels: Record<string, string>): KubeObject {
  return checked(
    new ExternalSecret({
      metadata: { name: es.name, namespace: ns.name, labels: { ...labels, 'vaultlab.dev/app': es.app } },
      spec: {
        refreshInterval: es.refreshInterval,
        secretStoreRef: { kind: 'SecretStore', name: ns.secretStore.name },
        target: {
          name: es.target,
          creationPolicy: es.creationPolicy,
          deletionPolicy: es.deletionPolicy,
          ...(es.template
            ? {
                template: {
                  engineVersion: 'v2',
                  mergePolicy: es.template.mergePolicy,
                  ...(es.template.type ? { type: es.template.type } : {}),
                  ...(Object.keys(es.template.data).length ? { data: es.template.data } : {}),
                },
              }
            : {}),
        },
        data: es.data.map((d) => ({ secretKey: d.secretKey, remoteRef: { key: d.path, property: d.key } })),
      },
    }),
    `ExternalSecret ${ns.name}/${es.name}`,
  );
}

const templateCache = new Map<string, string>();
function sampleTemplate(kind: string): string {
  let text = templateCache.get(kind);
  if (text === undefined) {
    text = readFileSync(resolve(PROJECT_ROOT, 'stacks', 'samples', `${kind}.yaml`), 'utf8');
    templateCache.set(kind, text);
  }
  return text;
}

/** Fill ${NAME} placeholders in every string of a parsed YAML tree (never in the raw text, so values cannot break the YAML). */
function fill(node: unknown, vars: Record<string, string>): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\{([A-Z_]+)\}$/.exec(node);
    if (whole?.[1] && /^[0-9]+$/.test(vars[whole[1]] ?? '')) return Number(vars[whole[1]]);
    return node.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => vars[name] ?? m);
  }
  if (Array.isArray(node)) return node.map((n) => fill(n, vars));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, vars)]));
  return node;
}

export function sampleManifests(plan: Plan, ns: NamespacePlan, sample: SamplePlan): KubeObject[] {
  const consumed = ns.externalSecrets.filter((e) => sample.secrets.includes(e.target));
  const keys = consumed.flatMap((e) => (e.template?.data && Object.keys(e.template.data).length ? Object.keys(e.template.data) : e.data.map((d) => d.secretKey)));
  const envNames = keys.filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  const vars: Record<string, string> = {
    APP: sample.app,
    NAMESPACE: ns.name,
    NODE_PORT: String(plan.cluster.nodePorts.dashboard),
    ENV_NAMES: envNames.length ? envNames.join('|') : '__none__',
    ENV_CHECK: envNames.length ? envNames.map((n) => `test -n "$${n}"`).join(' && ') : 'true',
  };
  const docs = parseAllDocuments(sampleTemplate(sample.kind)).map((d) => fill(d.toJS(), vars) as KubeObject).filter(Boolean);
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name, 'vaultlab.dev/app': sample.app };
  return docs.map((doc) => {
    doc.metadata.labels = { ...doc.metadata.labels, ...labels };
    switch (doc.kind) {
      case 'Deployment': {
        const spec = (doc as any).spec.template.spec;
        const container = spec.containers[0];
        // The sample image from the plan ([images] samples, or the mirror): air-gapped machines.
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) if (c.image === SAMPLES_IMAGE) c.image = plan.images.samples;
        if (sample.kind === 'env') {
          container.envFrom = sample.secrets.map((name) => ({ secretRef: { name } }));
        } else {
          const mountRoot = sample.kind === 'registry' ? '/etc/registry' : '/etc/secrets';
          spec.volumes = [...(spec.volumes ?? []), ...sample.secrets.map((name, i) => ({ name: `secret-${i}`, secret: { secretName: name } }))];
          container.volumeMounts = [
            ...(container.volumeMounts ?? []),
            ...sample.secrets.map((name, i) => ({ name: `secret-${i}`, mountPath: `${mountRoot}/${name}`, readOnly: true })),
          ];
        }
        return checked(new Deployment(doc as any), `sample Deployment ${ns.name}/${doc.metadata.name}`);
      }
      case 'Service':
        return checked(new Service(doc as any), `sample Service ${ns.name}/${doc.metadata.name}`);
      case 'Secret':
        return checked(new Secret(doc as any), `sample Secret ${ns.name}/${doc.metadata.name}`);
      default:
        throw new VaultlabError(`stacks/samples/${sample.kind}.yaml: unsupported kind ${doc.kind}`);
    }
  });
}

/**
 * production: only ESO (and namespaces labelled as Vault clients) may reach Vault's API port.
 * vaultlab itself reaches Vault through a port-forward, which enters the pod's own network
 * namespace and is not subject to NetworkPolicy; production exposes no NodePort.
 */
export function vaultNetworkPolicy(plan: Plan): KubeObject {
  return checked(
    new NetworkPolicy({
      metadata: { name: 'vault-allow-clients', namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/name': plan.vault.chart.chart } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            // ESO, and namespaces labelled as Vault clients, on the API port.
            from: [
              { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': plan.eso.namespace } } },
              { namespaceSelector: { matchLabels: { 'vaultlab.dev/vault-client': 'true' } } },
            ],
            ports: [{ protocol: 'TCP', port: 8200 }],
          },
          {
            // Raft and request forwarding between Vault pods.
            from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': plan.vault.chart.chart } } }],
            ports: [
              { protocol: 'TCP', port: 8200 },
              { protocol: 'TCP', port: 8201 },
            ],
          },
        ],
      },
    }),
    'NetworkPolicy vault-allow-clients',
  );
}

/**
 * [[kubernetes_roles]]: what Vault's ServiceAccount may do in one app namespace for the secrets
 * engine, a Role and its RoleBinding; nothing when no role allows the namespace.
 */
export function kubernetesSecretsRbac(plan: Plan, ns: string): KubeObject[] {
  const ks = plan.vault.kubernetesSecrets;
  const rules = ks ? vaultNamespaceRules(ks, ns) : [];
  if (!ks || rules.length === 0) return [];
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const subject = { kind: 'ServiceAccount', name: ks.identity.serviceAccount, namespace: ks.identity.namespace };
  return [
    checked(new Role({ metadata: { name: VAULT_RBAC_NAME, namespace: ns, labels }, rules }), `Role ${ns}/${VAULT_RBAC_NAME}`),
    checked(
      new RoleBinding({
        metadata: { name: VAULT_RBAC_NAME, namespace: ns, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: VAULT_RBAC_NAME },
        subjects: [subject],
      }),
      `RoleBinding ${ns}/${VAULT_RBAC_NAME}`,
    ),
  ];
}

/**
 * Cluster-scoped objects of the secrets engine: an external Vault's own ServiceAccount, and (demo
 * only: generated ClusterRoles, cluster-wide bindings) a ClusterRole and its binding.
 */
export function kubernetesSecretsClusterManifests(plan: Plan): KubeObject[] {
  const ks = plan.vault.kubernetesSecrets;
  if (!ks) return [];
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const out: KubeObject[] = [];
  if (plan.vault.external) {
    out.push(checked(new ServiceAccount({ metadata: { name: ks.identity.serviceAccount, namespace: ks.identity.namespace, labels } }), `ServiceAccount ${ks.identity.namespace}/${ks.identity.serviceAccount}`));
  }
  const rules = vaultClusterRules(ks);
  if (rules.length) {
    out.push(
      checked(new ClusterRole({ metadata: { name: VAULT_RBAC_NAME, labels }, rules }), `ClusterRole ${VAULT_RBAC_NAME}`),
      checked(
        new ClusterRoleBinding({
          metadata: { name: VAULT_RBAC_NAME, labels },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: VAULT_RBAC_NAME },
          subjects: [{ kind: 'ServiceAccount', name: ks.identity.serviceAccount, namespace: ks.identity.namespace }],
        }),
        `ClusterRoleBinding ${VAULT_RBAC_NAME}`,
      ),
    );
  }
  return out;
}

export function allManifests(plan: Plan): KubeObject[] {
  return plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns));
}
