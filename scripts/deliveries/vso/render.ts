// Vault Secrets Operator, rendering. Per namespace a VaultConnection (Vault's in-cluster address;
// production: the CA from Secret vault-ca); per app a ServiceAccount named after it and a
// VaultAuth (method kubernetes, role vso-<app>-role, the role's audience); per [[apps.secrets]]
// entry a VaultStaticSecret (kv-v2) that VSO syncs into the target Secret, its keys mapped by
// transformation templates, restarting the app's Deployment when the data change. The app reads
// the Secret as ESO's apps do (env, or Secret volumes).
import type { KubeObject } from '../../plan/objects.ts';
import type { NamespacePlan, Plan } from '../../plan/types.ts';
import type { PodTemplate, VsoAppPlan, VsoSecretPlan } from '../types.ts';
import { secretPath } from './plan.ts';

export const VSO_API = 'secrets.hashicorp.com/v1beta1';
/** The namespace's VaultConnection (shared by its VSO apps). */
export const CONNECTION = 'vault';
/** VSO requests tokens this long for the app's ServiceAccount (its minimum). */
const TOKEN_EXPIRATION_S = 600;

const labelsOf = (plan: Plan, app?: string): Record<string, string> => ({
  'app.kubernetes.io/managed-by': 'vaultlab',
  'vaultlab.dev/cluster': plan.cluster.name,
  ...(app ? { 'vaultlab.dev/app': app } : {}),
});

/** "{{ get .Secrets "<key>" }}": VSO's template over the KV version's data, one per mapped key. */
export const keyTemplate = (key: string): string => `{{ get .Secrets ${JSON.stringify(key)} }}`;

export function vaultStaticSecret(plan: Plan, app: VsoAppPlan, s: VsoSecretPlan): KubeObject {
  return {
    apiVersion: VSO_API,
    kind: 'VaultStaticSecret',
    metadata: { name: s.name, namespace: app.namespace, labels: labelsOf(plan, app.name) },
    spec: {
      vaultAuthRef: app.name,
      type: 'kv-v2',
      mount: plan.seeding.mount,
      path: secretPath(s),
      refreshAfter: s.refreshAfter,
      // The MAC of the synced data (status.secretMAC): drift detection, and what makes a change a rotation.
      hmacSecretData: true,
      destination: {
        name: s.target,
        create: true,
        labels: labelsOf(plan, app.name),
        transformation: {
          // Only the mapped keys, under their secret_key names: no raw KV data, no "_raw".
          excludeRaw: true,
          excludes: ['.*'],
          templates: Object.fromEntries(s.data.map((d) => [d.secretKey, { text: keyTemplate(d.key) }])),
        },
      },
      ...(s.rolloutRestart ? { rolloutRestartTargets: [{ kind: 'Deployment', name: app.name }] } : {}),
    },
  };
}

/** A namespace's VaultConnection: Vault's in-cluster address; production: the CA from Secret vault-ca there. */
function vaultConnection(plan: Plan, namespace: string): KubeObject {
  const v = plan.vault;
  return {
    apiVersion: VSO_API,
    kind: 'VaultConnection',
    metadata: { name: CONNECTION, namespace, labels: labelsOf(plan) },
    spec: {
      address: v.inClusterAddress,
      skipTLSVerify: false,
      ...(v.tls ? { caCertSecretRef: 'vault-ca' } : {}),
    },
  };
}

/**
 * VSO's own namespace, for the transit client cache: the VaultConnection the chart's
 * storage-encryption VaultAuth names (production: with Secret vault-ca, which the runtime writes
 * there from Vault's CA). Nothing when the cache is kept in memory.
 */
export function vsoOperatorManifests(plan: Plan): KubeObject[] {
  return plan.vso.clientCache ? [vaultConnection(plan, plan.vso.namespace)] : [];
}

export function vsoManifests(plan: Plan, ns: NamespacePlan, apps: VsoAppPlan[]): KubeObject[] {
  if (apps.length === 0) return [];
  const v = plan.vault;
  const connection = vaultConnection(plan, ns.name);
  const perApp = apps.flatMap((a): KubeObject[] => [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: a.serviceAccount, namespace: ns.name, labels: labelsOf(plan, a.name) } },
    {
      apiVersion: VSO_API,
      kind: 'VaultAuth',
      metadata: { name: a.name, namespace: ns.name, labels: labelsOf(plan, a.name) },
      spec: {
        vaultConnectionRef: CONNECTION,
        method: 'kubernetes',
        mount: v.kubernetesAuth.mount,
        kubernetes: { role: a.role, serviceAccount: a.serviceAccount, audiences: [v.kubernetesAuth.audience], tokenExpirationSeconds: TOKEN_EXPIRATION_S },
      },
    },
    ...a.secrets.map((s) => vaultStaticSecret(plan, a, s)),
  ]);
  return [connection, ...perApp];
}

/** The keys the app's workload sees: each entry's secret_key names. */
export const vsoSampleKeys = (app: VsoAppPlan): string[] => app.secrets.flatMap((s) => s.data.map((d) => d.secretKey));

/** env: every target Secret as envFrom; files and dashboard: each Secret mounted under /etc/secrets/<name>. */
export function vsoConsume(app: VsoAppPlan, pod: PodTemplate): void {
  const spec = pod.spec;
  const container = spec.containers[0];
  const secrets = app.secrets.map((s) => s.target);
  if (app.sample === 'env') {
    container.envFrom = secrets.map((name) => ({ secretRef: { name } }));
    return;
  }
  spec.volumes = [...(spec.volumes ?? []), ...secrets.map((name, i) => ({ name: `secret-${i}`, secret: { secretName: name } }))];
  container.volumeMounts = [...(container.volumeMounts ?? []), ...secrets.map((name, i) => ({ name: `secret-${i}`, mountPath: `/etc/secrets/${name}`, readOnly: true }))];
}
