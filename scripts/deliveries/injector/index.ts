// Vault Agent Injector (vault-k8s, shipped in the Vault and OpenBao charts as injector.*): per app a
// ServiceAccount named after it and a role injector-<app>-role; its pods are annotated, and the
// injector's webhook adds a Vault Agent (init + sidecar) that renders files under /vault/secrets/.
// No Kubernetes Secret exists.
import type { Delivery } from '../types.ts';
import { vaultChartImage } from '../../plan/images.ts';
import { checkInjectorApp, injectorVaultAccess, planInjectorApp } from './plan.ts';
import { injectorConsume, injectorManifests } from './render.ts';

export const injector: Delivery<'injector'> = {
  name: 'injector',
  title: 'Vault Agent Injector (files under /vault/secrets/ rendered by an agent sidecar)',
  secretFields: ['file_template', 'database_role'],
  samples: ['vault-files', 'db-client'],
  check: checkInjectorApp,
  planApp: planInjectorApp,
  vaultAccess: injectorVaultAccess,
  manifests: injectorManifests,
  consume: injectorConsume,
  // The agent runs the server's own image unless [images] agent says otherwise: one image fewer to pull.
  vaultChartValues: (plan) => ({
    injector: {
      enabled: true,
      replicas: 1,
      ...(plan.images.agent ? {} : { agentImage: vaultChartImage(plan.vault.distribution, plan.images.vault) }),
      // Requests sized like the rest of a demo cluster (the agent uses ~20 MiB, next to no CPU):
      // the charts' 250m per agent container (init and sidecar) and none for the injector left a
      // 2-core kind node unable to schedule the production Vault pods ("Insufficient cpu").
      agentDefaults: { cpuRequest: '10m', cpuLimit: '500m', memRequest: '32Mi', memLimit: '128Mi' },
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
    },
  }),
  runtime: async () => (await import('./runtime.ts')).injectorRuntime,
};
