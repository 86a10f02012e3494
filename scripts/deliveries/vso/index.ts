// Vault Secrets Operator: PLACEHOLDER. This module belongs to the VSO delivery work (branch
// issue-13vso), which replaces it with the real one (VaultConnection, VaultAuth,
// VaultStaticSecret, the VSO chart). Until then an app with delivery = "vso" is a config error.
import type { Delivery } from '../types.ts';

const notYet = (): never => {
  throw new Error('internal: the VSO delivery is not implemented on this branch');
};

export const vso: Delivery<'vso'> = {
  name: 'vso',
  title: 'Vault Secrets Operator (a Kubernetes Secret per VaultStaticSecret)',
  secretFields: ['target', 'refresh_after', 'rollout_restart'],
  samples: ['env', 'files', 'dashboard'],
  check(_app, _secrets, c) {
    c.error(['apps', c.appIndex, 'delivery'], 'delivery "vso" is not available in this build yet', 'Use delivery = "eso" or "injector".');
  },
  planApp: notYet,
  vaultAccess: notYet,
  manifests: notYet,
  consume: notYet,
  runtime: notYet,
};
