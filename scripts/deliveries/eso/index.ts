// External Secrets Operator: per namespace a ServiceAccount "external-secrets" and a SecretStore
// "vault-backend" (Kubernetes auth, role eso-<ns>-role), per [[apps.secrets]] entry an
// ExternalSecret that ESO syncs into a Kubernetes Secret; the app reads the Secret (env or files).
import type { Delivery } from '../types.ts';
import { checkEsoApp, esoSampleKeys, esoVaultAccess, planEsoApp } from './plan.ts';
import { esoConsume, esoManifestsOf } from './render.ts';
import { esoValues } from './values.ts';

export const eso: Delivery<'eso'> = {
  name: 'eso',
  title: 'External Secrets Operator (a Kubernetes Secret per mapping)',
  secretFields: ['target', 'creation_policy', 'deletion_policy', 'refresh_interval', 'template'],
  samples: ['env', 'files', 'argocd', 'registry', 'dashboard'],
  check: checkEsoApp,
  planApp: (app, secrets) => planEsoApp(app, secrets),
  vaultAccess: esoVaultAccess,
  manifests: (plan, ns) => esoManifestsOf(plan, ns),
  consume: (_plan, app, pod) => esoConsume(app, pod),
  sampleKeys: esoSampleKeys,
  release: (plan) => ({
    title: 'ESO',
    chart: plan.eso.chart,
    namespace: plan.eso.namespace,
    release: plan.eso.release,
    values: esoValues(plan),
    crds: ['secretstores.external-secrets.io', 'externalsecrets.external-secrets.io'],
  }),
  runtime: async () => (await import('./runtime.ts')).esoRuntime,
};
