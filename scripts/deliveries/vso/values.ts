// VSO chart values: stacks/vso/values.yaml, the images when overridden or mirrored, and the client
// cache: persisted in VSO's namespace, encrypted with a transit key ([vso] client_cache).
import type { Plan } from '../../plan/types.ts';
import { stackValues } from '../../plan/stacks.ts';
import { vsoImageValues } from '../../plan/images.ts';
import { mergeValues } from '../../plan/values.ts';
import { CONNECTION } from './render.ts';

export function vsoValues(plan: Plan): Record<string, any> {
  return mergeValues(mergeValues(stackValues('vso/values.yaml'), vsoImageValues(plan.images)), clientCacheValues(plan));
}

/**
 * The chart's client-cache settings: `direct-encrypted` makes the chart render its own VaultAuth
 * (<fullname>-default-transit-auth, labelled cacheStorageEncryption) that VSO logs in with to
 * encrypt and decrypt each cached client through transit; it reaches Vault through the
 * VaultConnection vaultlab applies in VSO's namespace (named as the app namespaces' are).
 */
export function clientCacheValues(plan: Plan): Record<string, any> {
  const cache = plan.vso.clientCache;
  if (!cache) return {};
  const auth = plan.vault.kubernetesAuth;
  return {
    controller: {
      manager: {
        clientCache: {
          persistenceModel: 'direct-encrypted',
          storageEncryption: {
            enabled: true,
            vaultConnectionRef: CONNECTION,
            keyName: cache.keyName,
            transitMount: cache.transitMount,
            method: 'kubernetes',
            mount: auth.mount,
            kubernetes: { role: cache.role, serviceAccount: cache.serviceAccount, tokenAudiences: [auth.audience] },
          },
        },
      },
    },
  };
}
