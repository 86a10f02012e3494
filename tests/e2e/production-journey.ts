// The production profile on a real kind cluster, for one distribution: 3 Vault pods in Raft over
// TLS, 5 key shares / threshold 3 kept out of the cluster, the root token revoked and only the
// setup token left, ESO synced through TLS, the NetworkPolicy enforced (a pod of an unlabelled
// namespace cannot reach Vault; ESO and a labelled namespace can), a re-deploy that changes
// nothing, the renewed-certificate rollout, reset --secrets and status, destroy.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Kube } from '../../scripts/adapters/kube.ts';
import { portForward } from '../../scripts/adapters/portforward.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { deployArgs, dockerCli, json, offline, podFingerprints, removeLeftoverCluster, skipReason, suiteEnv, type SuiteEnv } from './kind-env.ts';

const STEPS = ['preflight', 'cluster', 'install', 'vault', 'deliveries', 'samples', 'verify', 'summary'];
const timings: Record<string, number> = {};
const timed = <T extends { code: number | null }>(what: string, fn: () => T): T => {
  const t0 = performance.now();
  const r = fn();
  timings[what] = Math.round(performance.now() - t0);
  return r;
};

/** Runs a busybox pod to completion in `namespace` and returns its log (what `script` printed). */
async function probePod(kube: Kube, namespace: string, name: string, image: string, script: string, labels: Record<string, string> = {}): Promise<string> {
  // The namespace with its labels in the same apply (an apply without them would remove them).
  await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } }]);
  await kube.delete('v1', 'Pod', namespace, name);
  await kube.waitFor('v1', 'Pod', namespace, name, () => false, 'gone', { timeoutMs: 1 }).catch(() => undefined);
  await kube.apply([
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [{ name: 'probe', image, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script] }],
      },
    } as any,
  ]);
  await kube.waitFor('v1', 'Pod', namespace, name, (p) => ['Succeeded', 'Failed'].includes(p.status?.phase), 'finished', { timeoutMs: 120_000 });
  return String(await (await kube.core()).readNamespacedPodLog({ name, namespace }));
}

export function productionJourney(distribution: 'vault' | 'openbao'): void {
  const suite = `kind production journey (${distribution})`;
  const reason = skipReason(suite, 25, { vault: distribution === 'vault' });
  const env: SuiteEnv | undefined = reason ? undefined : suiteEnv({ name: `e2e-${distribution}-prod`, profile: 'production', distribution });

  describe.skipIf(!env)(suite, () => {
    // Skipped (skipReason printed why): vitest still runs this body to collect it, and the
    // journey's body reads the suite's environment, so only the skip is listed.
    if (!env) {
      it(`needs the kind suite: ${reason}`, () => undefined);
      return;
    }
    const e = env;
    const { plan } = e;
    const members = Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${plan.vault.release}-${i}`);
    const state = () => join(e.cwd, '.vaultlab', e.name);
    const readState = (f: string) => JSON.parse(readFileSync(join(state(), f), 'utf8'));
    let podsBefore: Record<string, string>;

    /** A client for the active member over vaultlab's own port-forward, with the state dir's CA. */
    async function vaultClient(token: string) {
      const kube = await e.kube();
      const fwd = await portForward(kube, plan.vault.namespace, members[0]!, 8200);
      const client = new VaultClient({ address: `https://127.0.0.1:${fwd.port}`, token, caPem: readFileSync(join(state(), 'tls', 'ca.crt'), 'utf8'), attempts: 1 });
      return { client, close: async () => (client.close(), await fwd.close()) };
    }

    beforeAll(() => removeLeftoverCluster(e), 330_000);
    afterAll(() => {
      e.vaultlab(['destroy', '--yes']);
    });

    it(`deploys: ${plan.vault.ha.replicas} members in Raft over TLS, every ExternalSecret synced, every sample Ready`, async () => {
      const r = timed('cold deploy', () => e.vaultlab(deployArgs()));
      expect(r.code, r.stderr).toBe(0);
      const j = json(r);
      expect(j.ok).toBe(true);
      expect(j.steps.map((s: any) => s.name)).toEqual(STEPS);
      console.log(`e2e timing (${distribution} production): cold deploy ${timings['cold deploy']} ms; ${j.steps.map((s: any) => `${s.name} ${s.ms}`).join(', ')}`);
      expect(j.summary.verify.length).toBeGreaterThan(0);
      expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
      for (const v of e.knownValues) expect(r.stdout + r.stderr).not.toContain(v);

      const kube = await e.kube();
      for (const m of members) {
        const pod = await kube.get<any>('v1', 'Pod', plan.vault.namespace, m);
        expect(pod?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status, m).toBe('True');
      }
      const s = e.vaultlab(['status', '--json']);
      expect(s.code, s.stdout).toBe(0);
      const ha = json(s).checks.find((c: any) => c.name === 'vault HA');
      expect(ha?.ok, JSON.stringify(ha)).toBe(true);
      expect(ha.detail).toMatch(new RegExp(`^${plan.vault.ha.replicas}/${plan.vault.ha.replicas} Raft members`));
      expect(ha.detail).not.toMatch(/non-voter/);
    });

    it('5 shares / threshold 3, none of them in the cluster; the root token revoked, the setup token the only one left', async () => {
      const init = readState('vault-init.json');
      expect([init.shares, init.threshold]).toEqual([5, 3]);
      expect(init.keys_base64).toHaveLength(5);
      expect(init.root_token_revoked).toBeTruthy();
      // No Secret anywhere in the cluster holds a key share or the root token.
      const kube = await e.kube();
      const secrets = await kube.list<any>('v1', 'Secret');
      const needles = [...init.keys_base64, ...init.keys, ...(init.root_token ? [init.root_token] : []), init.root_token_revoked].filter(Boolean) as string[];
      for (const s of secrets) {
        const blob = Object.values<string>(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8')).join('\n') + JSON.stringify(s.data ?? {});
        for (const n of needles) expect(blob.includes(n), `${s.metadata.namespace}/${s.metadata.name}`).toBe(false);
      }
      expect(secrets.some((s) => s.metadata.name === plan.vault.init.secretName)).toBe(false);
      // Vault's own word: threshold and shares, the old root token refused, the setup token alive.
      const root = init.root_token ?? init.root_token_revoked;
      const v = await vaultClient(root);
      try {
        const seal = (await v.client.request('GET', 'sys/seal-status')).data as any;
        expect([seal.n, seal.t, seal.sealed]).toEqual([5, 3, false]);
        const lookup = await v.client.request('GET', 'auth/token/lookup-self', undefined, { retry: false }).then(
          () => 'accepted',
          (err: any) => `${err.status} ${err.message}`,
        );
        expect(lookup).not.toBe('accepted');
        // OpenBao: 403 permission denied; HashiCorp Vault: 500 "failed to look up namespace from the token" (no such token).
        expect(lookup).toMatch(/^403 |permission denied|bad token|invalid token|failed to look up namespace from the token/i);
        const setup = readState('setup-token.json');
        const self = (await v.client.withToken(setup.token).request('GET', 'auth/token/lookup-self')).data as any;
        expect(self.data.policies).toEqual(expect.arrayContaining(setup.policies));
        expect(self.data.policies).not.toContain('root');
      } finally {
        await v.close();
      }
    });

    it('ESO syncs through TLS: every SecretStore speaks https to Vault with the CA, every ExternalSecret Ready', async () => {
      const kube = await e.kube();
      // Every namespace ESO serves (the injector app's has no SecretStore: its agent talks to Vault itself).
      const esoNamespaces = plan.namespaces.filter((ns) => ns.deliveries.includes('eso'));
      expect(esoNamespaces.length).toBeGreaterThan(0);
      for (const ns of esoNamespaces) {
        const store = await kube.get<any>('external-secrets.io/v1', 'SecretStore', ns.name, ns.secretStore.name);
        expect(store?.spec.provider.vault.server).toBe(plan.vault.inClusterAddress);
        expect(store.spec.provider.vault.server).toMatch(/^https:\/\//);
        expect(store.spec.provider.vault.caProvider ?? store.spec.provider.vault.caBundle, ns.name).toBeTruthy();
        expect(store.status?.conditions?.find((c: any) => c.type === 'Ready')?.status, `${ns.name} store`).toBe('True');
        for (const es of ns.externalSecrets) {
          const o = await kube.get<any>('external-secrets.io/v1', 'ExternalSecret', ns.name, es.name);
          expect(o?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status, `${ns.name}/${es.name}`).toBe('True');
        }
      }
    });

    it('VSO syncs through TLS: each VaultConnection speaks https to Vault with the CA Secret, each VaultAuth valid, each VaultStaticSecret synced', async () => {
      const kube = await e.kube();
      const vsoApps = plan.apps.filter((a) => a.delivery === 'vso');
      expect(vsoApps.length).toBeGreaterThan(0);
      for (const app of vsoApps) {
        const conn = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultConnection', app.namespace, 'vault');
        expect(conn?.spec).toMatchObject({ address: plan.vault.inClusterAddress, caCertSecretRef: 'vault-ca' });
        expect(conn.spec.address).toMatch(/^https:\/\//);
        expect(conn.status?.valid, `${app.namespace} VaultConnection`).toBe(true);
        const auth = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultAuth', app.namespace, app.name);
        expect(auth?.status?.valid, `${app.namespace}/${app.name} VaultAuth`).toBe(true);
        for (const s of app.secrets) {
          const vss = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultStaticSecret', app.namespace, s.name);
          expect(vss?.status?.secretMAC, `${app.namespace}/${s.name}`).toBeTruthy();
        }
      }
      // The client cache, through TLS too: VSO's own VaultConnection (with Vault's CA in its
      // namespace), and every cached client transit ciphertext (the setup token cannot decrypt it).
      const cache = plan.vso.clientCache!;
      const own = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultConnection', plan.vso.namespace, 'vault');
      expect(own?.spec).toMatchObject({ address: plan.vault.inClusterAddress, caCertSecretRef: 'vault-ca' });
      expect(own.status?.valid).toBe(true);
      const transitAuth = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultAuth', plan.vso.namespace, cache.vaultAuth);
      expect(transitAuth?.spec?.storageEncryption).toEqual({ keyName: cache.keyName, mount: cache.transitMount });
      const stored = await kube.list<any>('v1', 'Secret', plan.vso.namespace, 'app.kubernetes.io/component=client-cache-storage');
      expect(stored.length).toBeGreaterThanOrEqual(vsoApps.length);
      for (const entry of stored) {
        expect(entry.metadata.labels).toMatchObject({ encrypted: 'true', vaultTransitRef: cache.vaultAuth });
        expect(JSON.parse(Buffer.from(entry.data.secret, 'base64').toString()).ciphertext).toMatch(/^vault:v\d+:/);
      }
    });

    it('NetworkPolicy enforced: an unlabelled namespace cannot reach Vault; a labelled one can, and ESO re-syncs', async (ctx) => {
      if (!offline) {
        console.log('skipped: NetworkPolicy checks: the runner provides no offline image set (VAULTLAB_E2E_DOCKER=host); kind has no enforcing NetworkPolicy implementation of its own');
        return ctx.skip();
      }
      const { installNetworkPolicies } = await import('../harness/kind/network-policies.ts');
      const kube = await e.kube();
      const why = await installNetworkPolicies(kube, e.name, offline.images.networkPolicies);
      if (why) {
        console.log(`skipped: NetworkPolicy checks: ${why}`);
        return ctx.skip();
      }
      // A TCP connection to Vault's API port through its Service: dropped by the policy, the
      // connect times out (busybox's wget cannot speak TLS here: it segfaults on handshakes).
      const host = new URL(plan.vault.inClusterAddress);
      // A few tries: the enforcer learns a new pod's IP from the API a moment after the pod's first
      // packet (the race its NRI hook closes, off here), and drops what it cannot attribute.
      const script = `for i in 1 2 3 4 5; do nc -w 3 ${host.hostname} ${host.port || 8200} -e /bin/true && { echo REACHED; exit 0; }; sleep 1; done; echo BLOCKED`;
      const denied = await probePod(kube, 'e2e-np-unlabelled', 'probe', offline.images.busybox, script);
      expect(denied).toContain('BLOCKED');
      expect(denied).not.toContain('REACHED');
      // The same probe where the policy lets it in: the block above is the policy, not DNS or routing.
      const allowed = await probePod(kube, 'e2e-np-client', 'probe', offline.images.busybox, script, { 'vaultlab.dev/vault-client': 'true' });
      expect(allowed).toContain('REACHED');
      // ESO, under enforcement: every value reset and re-synced through new connections.
      const r = e.vaultlab(['reset', '--secrets', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = json(e.vaultlab(deployArgs()));
      expect(d.summary.verify.every((c: any) => c.ok)).toBe(true);
      for (const ns of ['e2e-np-unlabelled', 'e2e-np-client']) await kube.delete('v1', 'Namespace', undefined, ns);
    });

    it('a re-deploy changes nothing: no Helm upgrade, SSA unchanged, zero seed writes, same pods', async () => {
      const before = await podFingerprints(e);
      const r = timed('warm re-deploy', () => e.vaultlab(deployArgs()));
      expect(r.code, r.stderr).toBe(0);
      const j = json(r);
      expect(j.ok).toBe(true);
      console.log(`e2e timing (${distribution} production): warm re-deploy ${timings['warm re-deploy']} ms; ${j.steps.map((s: any) => `${s.name} ${s.ms}`).join(', ')}`);
      expect(j.summary.vault.seedWrites).toBe(0);
      expect(j.summary.vault.writes).toBe(0);
      expect(j.summary.vault.replaced).toEqual([]);
      expect(j.summary.deliveries.changed).toBe(0);
      expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
      expect(await podFingerprints(e)).toEqual(before);
    });

    it('a renewed certificate rolls the Vault pods one at a time: all replaced, unsealed, secrets untouched; the next deploy replaces none', async () => {
      // The server certificate goes (the CA stays): the next deploy issues a new one, whose digest
      // on the pod template makes a new StatefulSet revision.
      for (const f of ['tls.crt', 'tls.key']) rmSync(join(state(), 'tls', f), { force: true });
      const r = e.vaultlab(deployArgs());
      expect(r.code, r.stderr).toBe(0);
      const j = json(r);
      expect([...j.summary.vault.replaced].sort()).toEqual(members);
      expect(j.summary.vault.seedWrites).toBe(0);
      expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
      const again = json(e.vaultlab(deployArgs()));
      expect(again.summary.vault.replaced).toEqual([]);
      podsBefore = await podFingerprints(e);
    });

    it('reset --secrets and status: green, through the port-forward, no pod replaced', async () => {
      const r = timed('reset --secrets', () => e.vaultlab(['reset', '--secrets', '--yes', '--json']));
      expect(r.code, r.stderr).toBe(0);
      const s = timed('status', () => e.vaultlab(['status', '--json']));
      expect(s.code, s.stdout).toBe(0);
      expect(json(s).ok).toBe(true);
      const now = await podFingerprints(e);
      for (const m of members) expect(now[`${plan.vault.namespace}/${m}`]).toBe(podsBefore[`${plan.vault.namespace}/${m}`]);
    });

    it('destroy leaves no container, volume or state', () => {
      const r = timed('destroy', () => e.vaultlab(['destroy', '--yes']));
      expect(r.code, r.stderr).toBe(0);
      expect(dockerCli(['ps', '-a', '--filter', `label=io.x-k8s.kind.cluster=${e.name}`, '--format', '{{.Names}}']).stdout.trim()).toBe('');
      expect(existsSync(state())).toBe(false);
      console.log(`e2e timing (${distribution} production): ${Object.entries(timings).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
    });
  });
}
