// ESO, rendering: the namespace's ServiceAccount, SecretStore and ExternalSecrets, and how a
// sample consumes the synced Secrets (envFrom, or Secret volumes). Plain objects: plan/manifests.ts
// validates each through its kubernetes-models class.
import type { KubeObject } from '../../plan/objects.ts';
import type { ExternalSecretPlan, NamespacePlan, Plan } from '../../plan/types.ts';
import type { EsoAppPlan, PodTemplate } from '../types.ts';

const labelsOf = (plan: Plan): Record<string, string> => ({ 'app.kubernetes.io/managed-by': 'vaultlab', 'vaultlab.dev/cluster': plan.cluster.name });

/** From the namespace's plan (its SecretStore and ExternalSecrets), so a test can render a variant of it. */
export function esoManifestsOf(plan: Plan, ns: NamespacePlan): KubeObject[] {
  const labels = labelsOf(plan);
  const store = ns.secretStore;
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: ns.serviceAccount, namespace: ns.name, labels } },
    {
      apiVersion: 'external-secrets.io/v1',
      kind: 'SecretStore',
      metadata: { name: store.name, namespace: ns.name, labels },
      spec: {
        provider: {
          vault: {
            server: store.server,
            path: store.path,
            version: store.version,
            ...(store.caSecret ? { caProvider: { type: 'Secret', name: store.caSecret.name, key: store.caSecret.key } } : {}),
            auth: { kubernetes: { mountPath: store.authMount, role: store.role, serviceAccountRef: { name: store.serviceAccount, audiences: store.audiences } } },
          },
        },
      },
    },
    ...ns.externalSecrets.map((es) => externalSecretManifest(ns, es, labels)),
  ];
}

function externalSecretManifest(ns: NamespacePlan, es: ExternalSecretPlan, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'external-secrets.io/v1',
    kind: 'ExternalSecret',
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
  };
}

/** env: every target Secret as envFrom; the others: each Secret mounted under /etc/secrets/<name> (/etc/registry for registry). */
export function esoConsume(app: EsoAppPlan, pod: PodTemplate): void {
  const spec = pod.spec;
  const container = spec.containers[0];
  const secrets = app.externalSecrets.map((e) => e.target);
  if (app.sample === 'env') {
    container.envFrom = secrets.map((name) => ({ secretRef: { name } }));
    return;
  }
  const mountRoot = app.sample === 'registry' ? '/etc/registry' : '/etc/secrets';
  spec.volumes = [...(spec.volumes ?? []), ...secrets.map((name, i) => ({ name: `secret-${i}`, secret: { secretName: name } }))];
  container.volumeMounts = [...(container.volumeMounts ?? []), ...secrets.map((name, i) => ({ name: `secret-${i}`, mountPath: `${mountRoot}/${name}`, readOnly: true }))];
}
