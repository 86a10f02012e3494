// Vault Agent Injector, rendering: a ServiceAccount per app (named after it), and the pod-template
// annotations the injector's webhook reads: log in as injector-<app>-role with a projected token
// of the role's audience, render each [[apps.secrets]] entry to /vault/secrets/<name>.
import type { KubeObject } from '../../plan/objects.ts';
import type { NamespacePlan, Plan } from '../../plan/types.ts';
import type { InjectorAppPlan, PodTemplate } from '../types.ts';
import { TOKEN_VOLUME } from './plan.ts';

export const ANNOTATION = 'vault.hashicorp.com';
/**
 * How often the sidecar agent renders KV (static) secrets again: the agent's default is 5 min, so
 * a rotated value would reach the pod's file only minutes later. verify waits up to twice this.
 * 5 s: a rotation or reset is done when the file changed, and at 15 s that wait was most of a
 * reset with consumers (11.8-12.4 s, up to ~16 s); one KV read per file every 5 s is nothing for
 * a local environment.
 */
export const STATIC_RENDER_INTERVAL_S = 5;
/** Where the injector mounts a tls-secret in the agent containers. */
const TLS_MOUNT = '/vault/tls';

export function injectorManifests(plan: Plan, ns: NamespacePlan, apps: InjectorAppPlan[]): KubeObject[] {
  const labels = { 'app.kubernetes.io/managed-by': 'vaultlab', 'vaultlab.dev/cluster': plan.cluster.name };
  return apps.map((a) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: a.serviceAccount, namespace: ns.name, labels: { ...labels, 'vaultlab.dev/app': a.name } } }));
}

/** The annotations of an injector app's pods (what vault-k8s's webhook acts on). */
export function injectorAnnotations(plan: Plan, app: InjectorAppPlan): Record<string, string> {
  const v = plan.vault;
  const out: Record<string, string> = {
    [`${ANNOTATION}/agent-inject`]: 'true',
    [`${ANNOTATION}/role`]: app.role,
    [`${ANNOTATION}/auth-path`]: `auth/${v.kubernetesAuth.mount}`,
    [`${ANNOTATION}/service`]: v.inClusterAddress,
    // Files are there before the app starts (init container), and kept current by the sidecar.
    [`${ANNOTATION}/agent-pre-populate`]: 'true',
    [`${ANNOTATION}/agent-service-account-token-volume-name`]: TOKEN_VOLUME,
    [`${ANNOTATION}/template-static-secret-render-interval`]: `${STATIC_RENDER_INTERVAL_S}s`,
  };
  if (v.tls) {
    out[`${ANNOTATION}/tls-secret`] = 'vault-ca';
    out[`${ANNOTATION}/ca-cert`] = `${TLS_MOUNT}/ca.crt`;
  }
  for (const f of app.files) {
    out[`${ANNOTATION}/agent-inject-secret-${f.name}`] = f.database ? f.database.credsPath : `${v.kvMount}/data/${f.data[0]!.path}`;
    out[`${ANNOTATION}/agent-inject-template-${f.name}`] = f.template;
  }
  return out;
}

/**
 * The pod runs as the app's ServiceAccount; its API token stays unmounted (automount off) and the
 * agent gets a projected token with the role's audience instead, so the app never holds a token
 * Vault would accept beyond its own role.
 */
export function injectorConsume(plan: Plan, app: InjectorAppPlan, pod: PodTemplate): void {
  pod.metadata.annotations = { ...pod.metadata.annotations, ...injectorAnnotations(plan, app) };
  pod.spec.serviceAccountName = app.serviceAccount;
  pod.spec.volumes = [
    ...(pod.spec.volumes ?? []),
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: plan.vault.kubernetesAuth.audience, expirationSeconds: 3600, path: 'token' } }] } },
  ];
}
