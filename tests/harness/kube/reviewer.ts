// What the Vault chart sets up in a real cluster, for an out-of-cluster Vault: a ServiceAccount
// "vault" allowed to call TokenReview (system:auth-delegator), whose token Vault uses to check
// the ServiceAccount tokens ESO presents. Returns that reviewer token.
import type { Kube } from '../../../scripts/adapters/kube.ts';

export async function vaultReviewerToken(kube: Kube): Promise<string> {
  await kube.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vault' } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'vault', namespace: 'vault' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'vault-auth-delegator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'vault', namespace: 'vault' }],
    },
  ] as any);
  return kube.createServiceAccountToken('vault', 'vault', ['https://kubernetes.default.svc.cluster.local'], 3600);
}
