// What every importer of rendered objects shares, without the kubernetes-models classes that
// validate them (plan/manifests.ts loads those; status and destroy need only these names).
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'vaultlab' } as const;

/**
 * An external Vault's TokenReview account (deploy creates it, destroy removes it): a
 * ServiceAccount and a ClusterRoleBinding of the same name to system:auth-delegator.
 */
export const TOKEN_REVIEWER = { namespace: 'kube-system', serviceAccount: 'vaultlab-token-reviewer' } as const;
