// Vault Secrets Operator (HashiCorp's vault-secrets-operator, its own chart): per namespace a
// VaultConnection, per app a ServiceAccount named after it and a VaultAuth (role vso-<app>-role),
// per [[apps.secrets]] entry a VaultStaticSecret that VSO syncs into a Kubernetes Secret,
// restarting the app's Deployment (rolloutRestartTargets) when the data change. One entry reads
// one KV path (a VaultStaticSecret reads one); entries from several paths are config errors.
import type { Delivery } from '../types.ts';
import { checkVsoApp, planVsoApp, vsoVaultAccess } from './plan.ts';
import { vsoConsume, vsoManifests, vsoSampleKeys } from './render.ts';
import { vsoValues } from './values.ts';

export const vso: Delivery<'vso'> = {
  name: 'vso',
  title: 'Vault Secrets Operator (a Kubernetes Secret per VaultStaticSecret)',
  secretFields: ['target', 'refresh_after', 'rollout_restart'],
  samples: ['env', 'files', 'dashboard'],
  check: checkVsoApp,
  planApp: (app, secrets) => planVsoApp(app, secrets),
  vaultAccess: vsoVaultAccess,
  manifests: vsoManifests,
  consume: (_plan, app, pod) => vsoConsume(app, pod),
  sampleKeys: vsoSampleKeys,
  release: (plan) => ({
    title: 'VSO',
    chart: plan.vso.chart,
    namespace: plan.vso.namespace,
    release: plan.vso.release,
    values: vsoValues(plan),
    crds: ['vaultconnections.secrets.hashicorp.com', 'vaultauths.secrets.hashicorp.com', 'vaultstaticsecrets.secrets.hashicorp.com'],
  }),
  runtime: async () => (await import('./runtime.ts')).vsoRuntime,
};
