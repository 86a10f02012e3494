// Vault (with the Agent Injector when an app uses it) and each used delivery's own chart (ESO),
// from their official Helm charts, in parallel. A delivery's release waits (--wait gates on ESO's
// webhook and cert controller); Vault cannot be Ready before it is unsealed, so it does not.
// A release already at this chart version with these values is left alone (no restart).
// The step ends when Vault's release and the sample Postgres are there: the vault step needs
// nothing else, and runs while the deliveries' pods start (ESO's webhook and cert controller take
// 12-15 s of a cold deploy); the deliveries step waits for those releases (ctx.releases).
import type { TaskStep } from '../lib/tasks.ts';
import { need, type DeployContext } from './context.ts';
import { vaultValues, mergeValues, injectorOnlyValues } from '../plan/render.ts';
import { usedDeliveries } from '../deliveries/index.ts';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { helmUpgradeInstall, type HelmOutcome } from '../adapters/helm.ts';
import { vaultNetworkPolicy } from '../plan/manifests.ts';
import { ensureVaultTls, tlsSecrets, certManagerManifests } from '../tls/certs.ts';
import { VaultlabError } from '../lib/errors.ts';
import { guardPods, type Kube } from '../adapters/kube.ts';
import { deploySamplePostgres } from './sample-postgres.ts';

/** production with cert-manager: issue Vault's certificate, keep its CA for vaultlab's client; returns the certificate. */
export async function issueWithCertManager(ctx: DeployContext, kube: Kube): Promise<Buffer | undefined> {
  const crd = await kube.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, 'certificates.cert-manager.io');
  if (!crd) {
    throw new VaultlabError('production.tls = "cert-manager", but cert-manager is not installed in the cluster', {
      hint: 'Install it first (helm install cert-manager jetstack/cert-manager -n cert-manager --create-namespace --set crds.enabled=true), or set production.tls = "generated".',
    });
  }
  await kube.apply(certManagerManifests(ctx.plan));
  await kube.waitForCondition('cert-manager.io/v1', 'Certificate', ctx.plan.vault.namespace, 'vault-tls', 'Ready', { timeoutMs: ctx.options.timeoutMs });
  const secret = await kube.readSecret(ctx.plan.vault.namespace, 'vault-tls');
  const ca = secret?.data['ca.crt'];
  if (!ca) throw new VaultlabError(`Secret ${ctx.plan.vault.namespace}/vault-tls has no ca.crt`, { hint: 'Check the vaultlab-ca Issuer: kubectl -n vault describe issuer vaultlab-ca' });
  ctx.state.ensure().write('tls/ca.crt', ca.toString('utf8'));
  return secret?.data['tls.crt'];
}

/** A Deployment whose Available condition is True for its current generation. */
const available = (d: any) => d.status?.observedGeneration >= d.metadata?.generation && (d.status?.conditions ?? []).some((c: any) => c.type === 'Available' && c.status === 'True') && (d.status?.updatedReplicas ?? 0) >= (d.spec?.replicas ?? 1) && (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1);

export const TLS_DIGEST_ANNOTATION = 'vaultlab.dev/tls-cert-sha256';

/**
 * Vault's pods carry a digest of the certificate they mount: a new certificate (regenerated,
 * renewed) is then a new StatefulSet revision, which the Vault step rolls out pod by pod, since
 * Vault reads its certificate at start-up and the chart's update strategy is OnDelete.
 */
export function withCertificateDigest(values: Record<string, any>, certificate: Buffer): Record<string, any> {
  const digest = createHash('sha256').update(certificate).digest('hex').slice(0, 16);
  return mergeValues(values, { server: { annotations: { [TLS_DIGEST_ANNOTATION]: digest } } });
}

/** The CA that signed Vault's certificate, from the state dir (either issuer). */
export function vaultCaPem(ctx: DeployContext): string {
  if (ctx.plan.vault.tlsIssuer === 'generated') return ensureVaultTls(ctx.plan, ctx.state).caPem;
  const pem = ctx.state.read('tls/ca.crt');
  if (!pem) throw new VaultlabError('the CA of Vault\'s cert-manager certificate is not known yet', { hint: 'Re-run `vaultlab deploy`: the install step reads it.' });
  return pem;
}

const describe = (what: string, r: HelmOutcome) => `${what} ${r.action}${r.recovered ? ` (${r.recovered})` : ''}`;

export const install: TaskStep<DeployContext> = {
  name: 'install',
  title: 'Install Vault and the deliveries\' charts (Helm), and the sample Postgres',
  async run(ctx, report) {
    const kube = need(ctx.kube, 'kube');
    const target = { kubeconfig: need(ctx.kubeconfigPath, 'kubeconfig'), context: ctx.kubeContext, kube };
    const { plan } = ctx;
    const timeoutSeconds = Math.round(ctx.options.timeoutMs / 1000);
    const jobs: Promise<string>[] = [];
    // Each release job, and when it starts waiting on pods (helm runs, or its Deployments come back).
    const releaseJobs: { done: Promise<string>; waiting: Promise<void> }[] = [];
    if (!plan.vault.external) {
      jobs.push(
        (async () => {
          await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.vault.namespace } }]);
          let certificate: Buffer | undefined;
          if (plan.vault.tls && plan.vault.tlsIssuer === 'cert-manager') certificate = await issueWithCertManager(ctx, kube);
          else if (plan.vault.tls) {
            const tls = ensureVaultTls(plan, ctx.state);
            await kube.apply(tlsSecrets(plan, tls).filter((s) => s.metadata.namespace === plan.vault.namespace));
            certificate = readFileSync(tls.serverCert);
          }
          // production: only ESO and labelled client namespaces reach Vault's API port.
          if (plan.vault.networkPolicy) await kube.apply([vaultNetworkPolicy(plan)]);
          const values = certificate ? withCertificateDigest(vaultValues(plan), certificate) : vaultValues(plan);
          const r = await helmUpgradeInstall({ ...target, name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values });
          report(describe('Vault', r));
          return describe('Vault', r);
        })(),
      );
    }
    // An external Vault: the chart still brings what rides in it (the Agent Injector), without a server.
    const injectorOnly = plan.vault.external ? injectorOnlyValues(plan) : undefined;
    if (injectorOnly) {
      jobs.push(
        (async () => {
          await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: plan.vault.namespace } }]);
          const r = await helmUpgradeInstall({ ...target, name: plan.vault.release, namespace: plan.vault.namespace, chart: plan.vault.chart, values: injectorOnly });
          return describe('Vault chart (Agent Injector only)', r);
        })(),
      );
    }
    for (const release of usedDeliveries(plan).flatMap((d) => (d.release ? [d.release(plan)] : []))) {
      let markWaiting!: () => void;
      const waiting = new Promise<void>((r) => (markWaiting = r));
      const done = (async () => {
        const selector = `app.kubernetes.io/instance=${release.release}`;
        // --wait, but a pod that cannot pull its image or crash-loops ends it at once, with why.
        const r = await guardPods(kube, release.namespace, selector, (signal) =>
          helmUpgradeInstall({ ...target, name: release.release, namespace: release.namespace, chart: release.chart, values: release.values, wait: true, timeoutSeconds, signal, onRun: markWaiting }),
        );
        // Nothing to upgrade is no proof it runs: after a node restart its pods come back one
        // by one. Every Deployment of the release Available (one list when they are).
        if (r.action === 'unchanged') {
          const down = (await kube.list<any>('apps/v1', 'Deployment', release.namespace, selector)).filter((d) => !available(d));
          if (down.length) {
            markWaiting();
            report(`waiting for ${down.map((d) => d.metadata.name).join(', ')} to be Available`);
            await guardPods(kube, release.namespace, selector, (signal) =>
              Promise.all(down.map((d) => kube.waitFor('apps/v1', 'Deployment', release.namespace, d.metadata.name, available, 'Available', { timeoutMs: ctx.options.timeoutMs, signal }))),
            );
          }
        }
        return describe(release.title, r);
      })();
      releaseJobs.push({ done, waiting });
    }
    // The sample Postgres of [[databases]]: Ready (and its group roles there) before the vault step configures the connection.
    // Said after the releases, as the jobs were always listed: Vault, the deliveries' charts, the sample Postgres.
    const before = jobs.length;
    if (plan.vault.databases?.sample) jobs.push(deploySamplePostgres(ctx, kube, report));
    // Every job runs to the end even when one fails, so a re-run has less left to do.
    const releases = settleAll(releaseJobs.map((j) => j.done));
    releases.catch(() => undefined); // its failure is the deliveries step's (or the one below)
    let details: string[];
    try {
      details = await settleAll(jobs);
    } catch (err) {
      await releases.catch(() => undefined);
      throw err;
    }
    const inOrder = (releases: string[]) => [...details.slice(0, before), ...releases, ...details.slice(before)];
    // Each release either done or waiting on its pods; none waiting (a re-deploy: nothing to
    // upgrade, nothing down): all said here, as before.
    let anyWaiting = false;
    await Promise.all(releaseJobs.map((j) => Promise.race([j.done.then(() => undefined, () => undefined), j.waiting.then(() => void (anyWaiting = true))])));
    if (!anyWaiting) {
      const done = await releases; // a failure is this step's
      ctx.summary.install = inOrder(done);
      return inOrder(done).join(', ');
    }
    ctx.releases = releases.then((d) => {
      ctx.summary.install = inOrder(d);
      return d;
    });
    ctx.releases.catch(() => undefined);
    return `${details.join(', ')}; the deliveries' charts are starting (the deliveries step waits for them)`;
  },
};

/** Every job settled: their values in order, or the first failure (by order) once all are done. */
export async function settleAll(jobs: Promise<string>[]): Promise<string[]> {
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<string>).value);
}
