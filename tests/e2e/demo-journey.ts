// The demo journey on a real kind cluster, for one distribution: deploy -> every ExternalSecret
// synced with Vault's values (digests) and every sample Ready, the dashboard answering on the host
// port -> re-deploy changes nothing -> plain CI output -> reset --secrets -> status -> rotate and
// reset reaching the pods (env restarted, injected file re-rendered) -> the Vault pod
// deleted -> the node container restarted -> Ctrl-C in a deploy -> destroy leaves nothing.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { resolveToken } from '../../scripts/vault/token.ts';
import { stateDirFor } from '../../scripts/lib/state.ts';
import { sha256 } from '../../scripts/lib/digest.ts';
import { execInPod, podReady } from '../../scripts/deliveries/pods.ts';
import { deployArgs, dockerCli, json, offline, podFingerprints, removeLeftoverCluster, skipReason, suiteEnv, type SuiteEnv } from './kind-env.ts';
import { probeDatabaseFile } from '../../scripts/deliveries/injector/runtime.ts';
import type { InjectorAppPlan } from '../../scripts/deliveries/types.ts';

/** The journey's database role lives briefly: the agent renews it to max_ttl, then the app gets a new user. */
const SHORT_TTL = { default_ttl: '30s', max_ttl: '60s' };

const STEPS = ['preflight', 'cluster', 'install', 'vault', 'deliveries', 'samples', 'verify', 'summary'];

/** Every command's wall time, for the closing timing line (and the bench). */
export const timings: Record<string, number> = {};
const timed = <T extends { code: number | null }>(what: string, fn: () => T): T => {
  const t0 = performance.now();
  const r = fn();
  timings[what] = Math.round(performance.now() - t0);
  return r;
};

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function httpText(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
}

export function demoJourney(distribution: 'vault' | 'openbao'): void {
  const suite = `kind demo journey (${distribution})`;
  const reason = skipReason(suite, 25, { vault: distribution === 'vault' });
  const env: SuiteEnv | undefined = reason ? undefined : suiteEnv({
    name: `e2e-${distribution}-demo`,
    profile: 'demo',
    distribution,
    edit: (toml) => {
      for (const d of toml.databases ?? []) for (const r of d.roles) Object.assign(r, SHORT_TTL);
    },
  });

  describe.skipIf(!env)(suite, () => {
    // Skipped (skipReason printed why): vitest still runs this body to collect it, and the
    // journey's body reads the suite's environment, so only the skip is listed.
    if (!env) {
      it(`needs the kind suite: ${reason}`, () => undefined);
      return;
    }
    const e = env;
    const { plan } = e;
    let first: any;
    let podsBefore: Record<string, string>;
    const noValues = (r: { stdout: string; stderr: string }) => {
      for (const v of e.knownValues) expect(r.stdout + r.stderr).not.toContain(v);
    };

    beforeAll(() => removeLeftoverCluster(e), 330_000);
    afterAll(() => {
      e.vaultlab(['destroy', '--yes']);
    });

    it('deploys: every ExternalSecret synced with Vault\'s values (SHA-256 digests), every sample Ready', async () => {
      const r = timed('cold deploy', () => e.vaultlab(deployArgs()));
      expect(r.code, r.stderr).toBe(0);
      first = json(r);
      expect(first.ok).toBe(true);
      expect(first.steps.map((s: any) => s.name)).toEqual(STEPS);
      expect(first.steps.every((s: any) => typeof s.ms === 'number' && s.outcome === 'ok')).toBe(true);
      console.log(`e2e timing (${distribution}): cold deploy ${first.ms} ms; ${first.steps.map((s: any) => `${s.name} ${s.ms}`).join(', ')}`);
      // Every ExternalSecret's Secret, and every file the Agent Injector renders into an app's pod.
      const files = plan.apps.flatMap((a: any) => (a.delivery === 'injector' ? a.files : []));
      expect(files.length).toBeGreaterThan(0);
      // ...and each env-consuming sample's process environment (ESO's env sample), by digest in its pod.
      const envApps = plan.apps.filter((a: any) => a.delivery === 'eso' && a.sample === 'env');
      expect(envApps.length).toBeGreaterThan(0);
      // And every Secret the Vault Secrets Operator writes (one per VaultStaticSecret).
      const vsoApps = plan.apps.filter((a) => a.delivery === 'vso');
      const vsoSecrets = vsoApps.flatMap((a) => a.secrets);
      expect(vsoSecrets.length).toBeGreaterThan(0);
      // ...and, with the transit client cache, one check per VSO app of its cached client.
      expect(plan.vso.clientCache).toBeDefined();
      const expected = plan.namespaces.reduce((n, ns) => n + ns.externalSecrets.length, 0) + files.length + envApps.length + vsoSecrets.length + vsoApps.length;
      expect(first.summary.verify.filter((c: any) => c.target.endsWith(':env')).map((c: any) => c.app).sort()).toEqual(envApps.map((a: any) => a.name).sort());
      expect(first.summary.verify.length).toBe(expected);
      expect(first.summary.verify.every((c: any) => c.ok)).toBe(true);
      expect(first.summary.vault.init).toBe('initialized');
      noValues(r);
      // Every sample's Deployment Available (verify waited for it); their pods Ready, none restarting.
      const kube = await e.kube();
      for (const ns of plan.namespaces) {
        for (const s of ns.samples) {
          const pods = await kube.list<any>('v1', 'Pod', ns.name, `app.kubernetes.io/name=${s.app}`);
          if (s.kind === 'argocd') continue; // the merged argocd-secret has no workload of its own
          expect(pods.length, `${ns.name}/${s.app}`).toBeGreaterThan(0);
          for (const p of pods) expect(p.status.conditions.find((c: any) => c.type === 'Ready')?.status, `${ns.name}/${p.metadata.name}`).toBe('True');
        }
      }
      podsBefore = await podFingerprints(e);
    });

    it('VSO: its controller Ready, each VaultStaticSecret synced, the Secret holding exactly Vault\'s values (digests), the app Ready with them as env', async () => {
      const { VaultClient } = await import('../../scripts/adapters/vault.ts');
      const { sha256 } = await import('../../scripts/lib/digest.ts');
      const kube = await e.kube();
      const controller = await kube.list<any>('v1', 'Pod', plan.vso.namespace, `app.kubernetes.io/instance=${plan.vso.release}`);
      expect(controller.filter((p) => p.status?.phase === 'Running').length, 'VSO controller pods').toBeGreaterThan(0);
      for (const p of controller.filter((x) => x.status?.phase === 'Running')) expect(p.status.conditions.find((c: any) => c.type === 'Ready')?.status).toBe('True');
      // Vault's values, read with the root token of the demo's state dir (compared by digest only).
      const init = JSON.parse((await import('node:fs')).readFileSync(join(e.cwd, '.vaultlab', e.name, 'vault-init.json'), 'utf8'));
      const vault = new VaultClient({ address: `http://127.0.0.1:${plan.cluster.hostPorts.vault}`, token: init.root_token });
      try {
        for (const app of plan.apps.filter((a) => a.delivery === 'vso')) {
          expect(first.summary.verify.filter((c: any) => c.delivery === 'vso' && c.app === app.name).every((c: any) => c.ok)).toBe(true);
          for (const s of app.secrets) {
            const vss = await kube.get<any>('secrets.hashicorp.com/v1beta1', 'VaultStaticSecret', app.namespace, s.name);
            expect(vss.status.secretMAC, `${app.namespace}/${s.name} synced`).toBeTruthy();
            expect(vss.status.lastGeneration).toBe(vss.metadata.generation);
            expect(vss.spec.rolloutRestartTargets).toEqual(s.rolloutRestart ? [{ kind: 'Deployment', name: app.name }] : undefined);
            const secret = (await kube.readSecret(app.namespace, s.target))!;
            expect(Object.keys(secret.data).sort()).toEqual(s.data.map((d) => d.secretKey).sort());
            const kv = (await vault.kvRead(plan.vault.kvMount, s.data[0]!.path))!;
            for (const d of s.data) expect(sha256(secret.data[d.secretKey]!), `${s.target}.${d.secretKey}`).toBe(sha256(kv.data[d.key]!));
          }
          const pods = await kube.list<any>('v1', 'Pod', app.namespace, `app.kubernetes.io/name=${app.name}`);
          expect(pods.length).toBeGreaterThan(0);
          for (const p of pods) expect(p.status.conditions.find((c: any) => c.type === 'Ready')?.status, `${app.namespace}/${p.metadata.name}`).toBe('True');
        }
        // The client cache (transit engine): each app's client stored in VSO's namespace as
        // ciphertext of the vso-client-cache key, which decrypts to a token of the app's role.
        const cache = plan.vso.clientCache!;
        expect(first.summary.verify.filter((c: any) => c.delivery === 'vso' && c.target.startsWith('client cache of')).map((c: any) => c.ok)).toEqual(plan.apps.filter((a) => a.delivery === 'vso').map(() => true));
        const stored = await kube.list<any>('v1', 'Secret', plan.vso.namespace, 'app.kubernetes.io/component=client-cache-storage');
        expect(stored.length).toBeGreaterThan(0);
        for (const entry of stored) {
          expect(entry.metadata.labels).toMatchObject({ encrypted: 'true', vaultTransitRef: cache.vaultAuth });
          const { ciphertext } = JSON.parse(Buffer.from(entry.data.secret, 'base64').toString());
          const plain = JSON.parse(Buffer.from((await vault.post<any>(`${cache.transitMount}/decrypt/${cache.keyName}`, { ciphertext })).data.data.plaintext, 'base64').toString());
          const self = (await vault.post<any>('auth/token/lookup', { token: plain.auth.client_token })).data.data;
          expect(self.meta.role).toMatch(/^vso-.*-role$/);
        }
      } finally {
        vault.close();
      }
    });

    it('the dashboard sample answers on the host port and lists every key that arrived (values masked)', async () => {
      const dash = plan.namespaces.flatMap((ns) => ns.samples.filter((s) => s.kind === 'dashboard').map((s) => ({ ns, s })))[0];
      expect(dash, 'the bundled config has a dashboard sample').toBeDefined();
      const page = await until('the dashboard page', async () => {
        const p = await httpText(`http://127.0.0.1:${plan.cluster.hostPorts.http}/`);
        return p.status === 200 ? p : undefined;
      }, 60_000);
      const kube = await e.kube();
      for (const name of dash!.s.secrets) {
        const secret = await kube.readSecret(dash!.ns.name, name);
        for (const [key, value] of Object.entries(secret!.data)) {
          expect(page.body).toContain(`<td>${name}</td><td>${key}</td>`);
          expect(page.body).toContain(`(${value.length} bytes)`);
        }
      }
      // The page also lists every app and its delivery: the VSO app among them.
      for (const a of plan.apps) expect(page.body).toContain(`<tr><td>${a.name}</td><td>${a.namespace}</td><td>${a.delivery}</td>`);
      noValues({ stdout: page.body, stderr: '' });
    });

    it('the db-client app connects with its own dynamic user; the lease rotates into the pod (new user, still connected) and the old user is dropped', async () => {
      const app = plan.apps.find((a): a is InjectorAppPlan => a.delivery === 'injector' && a.sample === 'db-client');
      expect(app, 'the bundled config has a db-client app').toBeDefined();
      const file = app!.files.find((f) => f.database)!;
      const kube = await e.kube();
      const pod = (await kube.list<any>('v1', 'Pod', app!.namespace, `app.kubernetes.io/name=${app!.name}`))[0]!.metadata.name as string;
      const probe = () => probeDatabaseFile(kube, app!.namespace, pod, 'app', file.file);
      const first = await until('the first dynamic user to connect', async () => {
        const p = await probe();
        return p?.dbUser && p.dbUser === p.fileUser ? p : undefined;
      }, 60_000);
      expect(first.leaseId.startsWith(`${file.database!.credsPath}/`)).toBe(true);
      // The dashboard shows it (user, lease end, masked password), fetched from the app's status page.
      let lastPage = '';
      const page = await until('the dashboard to show the dynamic user', async () => {
        const p = await httpText(`http://127.0.0.1:${plan.cluster.hostPorts.http}/`);
        lastPage = p.body;
        return p.status === 200 && new RegExp(`<td>${app!.name}</td><td>connected</td><td>v-[^<]+</td><td>\\d{4}-\\d\\d-\\d\\dT[^<]+Z</td><td>\\*{6} \\(\\d+ chars\\)</td>`).test(p.body) ? p : undefined;
      }, 60_000).catch((err: Error) => {
        throw new Error(`${err.message}; the last page: ${lastPage.slice(lastPage.indexOf('<h2>'), lastPage.indexOf('<h2>') + 1500)}`);
      });
      noValues({ stdout: page.body, stderr: '' });
      // max_ttl 60 s: the agent cannot renew past it and renders a new lease's user; the app picks it up.
      const t0 = Date.now();
      const next = await until('a new lease\'s user in the pod, connected', async () => {
        const p = await probe();
        return p?.dbUser && p.fileUser !== first.fileUser && p.dbUser === p.fileUser ? p : undefined;
      }, 180_000, 3000);
      expect(next.leaseId).not.toBe(first.leaseId);
      console.log(`e2e timing (${distribution}): dynamic user rotated into the pod after ${Math.round((Date.now() - t0) / 1000)} s (${first.fileUser} -> ${next.fileUser})`);
      // The old lease expires (or is revoked): Vault's revocation SQL drops its user.
      const sql = `SELECT count(*) FROM pg_roles WHERE rolname = '${first.fileUser}'`;
      await until(`user ${first.fileUser} to be gone from pg_roles`, async () => {
        const r = await execInPod(kube, app!.namespace, pod, 'app', ['sh', '-c', `. '${file.file}' && export PGUSER PGPASSWORD PGHOST PGPORT PGDATABASE && psql -XqtA -c "${sql}"`]);
        return r.ok && r.stdout.trim() === '0' ? true : undefined;
      }, 150_000, 5000);
      const after = await probe();
      expect(after?.dbUser, 'the app still connects after the old user is gone').toBe(after?.fileUser);
    }, 420_000);

    it('a re-deploy changes nothing: no Helm upgrade, SSA unchanged, zero seed writes, same pods', async () => {
      const r = timed('warm re-deploy', () => e.vaultlab(deployArgs()));
      expect(r.code, r.stderr).toBe(0);
      const j = json(r);
      console.log(`e2e timing (${distribution}): warm re-deploy ${j.ms} ms; ${j.steps.map((s: any) => `${s.name} ${s.ms}`).join(', ')}`);
      expect(j.steps.find((s: any) => s.name === 'install').detail).toBe(`Vault unchanged, ESO unchanged, VSO unchanged, sample Postgres ${plan.vault.databases!.sample!.namespace}/postgres-0 Ready`);
      expect(j.summary.vault.init).toBe('already-initialized');
      expect(j.summary.vault.configure).toBe(0);
      expect(j.summary.vault.seed).toMatchObject({ created: 0, updated: 0, rotated: 0 });
      expect(j.summary.vault.seedWrites).toBe(0);
      expect(j.summary.deliveries.changed).toBe(0);
      // --preload: every image already in the node under the same ID, none loaded again.
      if (j.summary.preload) {
        expect(j.summary.preload.loaded).toEqual([]);
        expect(j.summary.preload.present.length).toBe(first.summary.preload.loaded.length + first.summary.preload.present.length);
      }
      expect(j.steps.find((s: any) => s.name === 'samples').detail).toMatch(/, 0 changed$/);
      expect(j.summary.verify.every((c: any) => c.ok)).toBe(true);
      expect(await podFingerprints(e)).toEqual(podsBefore);
    });

    it('plain output in CI: one line per step, then the summary', () => {
      const r = e.vaultlab(deployArgs(false));
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split('\n');
      for (const title of ['Preflight checks', 'Cluster', 'Install Vault and the deliveries\' charts (Helm)', 'Deliveries', 'Verify']) {
        expect(lines.filter((l) => l.startsWith(`✔ ${title}`)).length, title).toBe(1);
      }
      expect(r.stdout).toContain(`vaultlab demo environment "${e.name}" is ready.`);
      noValues(r);
    });

    it('reset --secrets puts every value back and re-syncs; status is green', () => {
      const r = timed('reset --secrets', () => e.vaultlab(['reset', '--secrets', '--yes', '--json']));
      expect(r.code, r.stderr).toBe(0);
      const s = timed('status', () => e.vaultlab(['status', '--json']));
      expect(s.code, s.stdout).toBe(0);
      expect(json(s).ok).toBe(true);
      noValues(r);
    });

    // Rotation that reaches the pod: an ESO env consumer (restarted) and the injector's file (re-rendered).
    const ROTATED = { eso: { app: 'webapp', env: 'API_KEY', path: 'webapp/api', key: 'api_key' }, injector: { app: 'reports', file: '/vault/secrets/api', line: 'API_TOKEN', path: 'reports/api', key: 'token' } };
    async function vaultValue(path: string, key: string): Promise<string> {
      const tok = resolveToken(stateDirFor(e.name, undefined, e.cwd), {});
      const client = new VaultClient({ address: plan.vault.hostAddress, token: tok!.token, attempts: 2 });
      try {
        return (await client.kvRead(plan.seeding.mount, path))!.data[key]!;
      } finally {
        client.close();
      }
    }
    /** Digests of what the pods hold now: the ESO env app's variable (and its pod), the injector app's file. */
    async function podsHold() {
      const kube = await e.kube();
      const one = async (app: string) => {
        const pods = (await kube.list<any>('v1', 'Pod', app, `app.kubernetes.io/name=${app}`)).filter(podReady);
        expect(pods.length, app).toBe(1);
        return pods[0]!;
      };
      const [envPod, filePod] = await Promise.all([one(ROTATED.eso.app), one(ROTATED.injector.app)]);
      const env = await execInPod(kube, ROTATED.eso.app, envPod.metadata.name, 'app', ['sh', '-c', `printf %s "$${ROTATED.eso.env}" | sha256sum`]);
      const file = await execInPod(kube, ROTATED.injector.app, filePod.metadata.name, 'app', ['sha256sum', ROTATED.injector.file]);
      return { envPod: envPod.metadata.uid as string, env: env.stdout.slice(0, 64), file: file.stdout.slice(0, 64) };
    }
    async function vaultDigests() {
      return {
        env: sha256(await vaultValue(ROTATED.eso.path, ROTATED.eso.key)),
        file: sha256(`${ROTATED.injector.line}=${await vaultValue(ROTATED.injector.path, ROTATED.injector.key)}\n`),
      };
    }

    it('rotate PATH...: new values in Vault, the ESO env pod restarted and the injector file re-rendered, both holding them (digests)', async () => {
      const before = await podsHold();
      const vaultBefore = await vaultDigests();
      expect(before).toMatchObject(vaultBefore);
      const r = timed('rotate', () => e.vaultlab(['rotate', ROTATED.eso.path, ROTATED.injector.path, '--json']));
      expect(r.code, r.stderr).toBe(0);
      noValues(r);
      const j = json(r);
      expect(j.changed).toEqual(expect.arrayContaining([{ path: ROTATED.eso.path, key: ROTATED.eso.key }, { path: ROTATED.injector.path, key: ROTATED.injector.key }]));
      const restarted = j.consumers.find((c: any) => c.delivery === 'eso' && c.target === `Deployment ${ROTATED.eso.app}`);
      expect(restarted?.action).toBe('restarted (env)');
      const rendered = j.consumers.find((c: any) => c.delivery === 'injector' && c.app === ROTATED.injector.app && c.target.endsWith(`:${ROTATED.injector.file}`));
      expect(rendered?.action).toBe('re-rendered');
      // Only what reads a rotated value is touched: the worker (files of webapp/db, webapp/worker) is not.
      expect(j.consumers.some((c: any) => c.target === 'Deployment worker')).toBe(false);
      const after = await podsHold();
      const vaultAfter = await vaultDigests();
      expect(vaultAfter.env).not.toBe(vaultBefore.env);
      expect(vaultAfter.file).not.toBe(vaultBefore.file);
      expect(after.envPod).not.toBe(before.envPod);
      expect({ env: after.env, file: after.file }).toEqual(vaultAfter);
      console.log(`e2e timing (${distribution}): rotate ${j.ms} ms (seed ${j.timings.seedMs}, converge ${j.timings.convergeMs}); ${j.consumers.map((c: any) => `${c.namespace}/${c.target} ${c.action} ${c.seconds} s`).join(', ')}`);
    });

    it('rotate reaches the VSO app too: VSO re-reads Vault at once (force-sync), rolls the Deployment, and the new pod holds the new value (digest)', async () => {
      const kube = await e.kube();
      const app = 'billing';
      const readyPod = async () => {
        const pods = (await kube.list<any>('v1', 'Pod', app, `app.kubernetes.io/name=${app}`)).filter(podReady);
        expect(pods.length, app).toBe(1);
        return pods[0]!;
      };
      const envDigest = async (pod: any) => (await execInPod(kube, app, pod.metadata.name, 'app', ['sh', '-c', 'printf %s "$BILLING_API_KEY" | sha256sum'])).stdout.slice(0, 64);
      const before = await readyPod();
      const vaultBefore = sha256(await vaultValue('billing/config', 'api_key'));
      expect(await envDigest(before)).toBe(vaultBefore);
      const r = timed('rotate (vso)', () => e.vaultlab(['rotate', 'billing/config:api_key', '--json']));
      expect(r.code, r.stderr).toBe(0);
      noValues(r);
      const j = json(r);
      expect(j.changed).toEqual([{ path: 'billing/config', key: 'api_key' }]);
      const mine = j.consumers.filter((c: any) => c.delivery === 'vso' && c.app === app);
      expect(mine.map((c: any) => c.action)).toEqual(['rolled by VSO']);
      // Nothing of ESO or the injector reads billing/config: untouched.
      expect(j.consumers.filter((c: any) => c.delivery !== 'vso' && c.action !== 'unchanged')).toEqual([]);
      const after = await readyPod();
      const vaultAfter = sha256(await vaultValue('billing/config', 'api_key'));
      expect(vaultAfter).not.toBe(vaultBefore);
      expect(after.metadata.uid).not.toBe(before.metadata.uid);
      expect(await envDigest(after)).toBe(vaultAfter);
      console.log(`e2e timing (${distribution}): rotate (VSO) ${j.ms} ms; ${mine.map((c: any) => `${c.namespace}/${c.target} ${c.action} ${c.seconds} s`).join(', ')}`);
    });

    it('reset --secrets ends when the consumers hold the reset values: the env pod restarted, the injector file re-rendered', async () => {
      const before = await podsHold();
      const r = timed('reset --secrets (consumers)', () => e.vaultlab(['reset', '--secrets', '--yes', '--json']));
      expect(r.code, r.stderr).toBe(0);
      noValues(r);
      const j = json(r);
      expect(j.restarted).toContain(`${ROTATED.eso.app}/${ROTATED.eso.app}`);
      expect(j.consumers.find((c: any) => c.delivery === 'injector' && c.target.endsWith(`:${ROTATED.injector.file}`))?.action).toBe('re-rendered');
      const after = await podsHold();
      expect(after.envPod).not.toBe(before.envPod);
      expect({ env: after.env, file: after.file }).toEqual(await vaultDigests());
      console.log(`e2e timing (${distribution}): reset --secrets with consumers ${j.ms} ms (seed ${j.timings.seedMs}, converge ${j.timings.convergeMs}); restarted ${j.restarted.join(', ')}; ${j.consumers.map((c: any) => `${c.namespace}/${c.target} ${c.action} ${c.seconds} s`).join(', ')}`);
    });

    it('the Vault pod deleted: recreated, and the next status unseals it (nothing lost, next deploy writes nothing)', async () => {
      const kube = await e.kube();
      const pod = `${plan.vault.release}-0`;
      const old = (await kube.get<any>('v1', 'Pod', plan.vault.namespace, pod))!.metadata.uid;
      await kube.delete('v1', 'Pod', plan.vault.namespace, pod);
      await until('the Vault pod to come back Running', async () => {
        const p = await kube.get<any>('v1', 'Pod', plan.vault.namespace, pod);
        return p && p.metadata.uid !== old && p.status?.phase === 'Running' && p.status.containerStatuses?.every((c: any) => c.state?.running) ? p : undefined;
      }, 180_000);
      const s = e.vaultlab(['status', '--json']);
      expect(s.code, s.stdout).toBe(0);
      expect(json(s).vault.unseal).toBe('was-sealed-now-unsealed');
      const d = json(e.vaultlab(deployArgs()));
      expect(d.ok, JSON.stringify(d.error ?? d.steps)).toBe(true);
      expect(d.summary.vault.seedWrites).toBe(0);
      expect(d.summary.verify.every((c: any) => c.ok)).toBe(true);
    });

    it('the node container restarted (docker restart): the next deploy, run at once, waits for the cluster and brings Vault back, secrets intact', async () => {
      const node = `${e.name}-control-plane`;
      const r = dockerCli(['restart', node]);
      expect(r.status, r.stderr).toBe(0);
      // What a user does after a laptop reboot: `task deploy` straight away. The API server then
      // forbids every request until its RBAC has loaded, Vault's pod restarts sealed, ESO's pods
      // restart: the deploy must wait for each, not fail.
      const t0 = Date.now();
      const d = e.vaultlab(deployArgs());
      expect(d.code, d.stderr).toBe(0);
      console.log(`e2e timing (${distribution}): healthy ${Math.round((Date.now() - t0) / 1000)} s after docker restart (one deploy)`);
      const dj = json(d);
      expect(dj.ok).toBe(true);
      expect(dj.summary.vault.seedWrites).toBe(0);
      expect(dj.summary.verify.every((c: any) => c.ok)).toBe(true);
      // ESO's pods restart one after the other for a while after the node came back (the
      // Deployments' status lags the kubelet): status turns green within two minutes.
      let last = '';
      const status = await until('status to be green after the deploy', async () => {
        const s = e.vaultlab(['status', '--json']);
        last = s.stdout;
        return s.code === 0 ? json(s) : undefined;
      }, 120_000, 5000).catch((err: Error) => {
        throw new Error(`${err.message}; the last status: ${last.slice(0, 3000)}`);
      });
      expect(status.ok).toBe(true);
    });

    it('Ctrl-C in the middle of a deploy: exit 130, and the next deploy completes', async () => {
      // Something for the deploy to do: a sample app gone.
      const kube = await e.kube();
      const sample = plan.namespaces.flatMap((ns) => ns.samples.filter((s) => s.kind === 'env').map((s) => ({ ns: ns.name, app: s.app })))[0]!;
      await kube.delete('apps/v1', 'Deployment', sample.ns, sample.app);
      const child = e.start(['deploy']);
      let out = '';
      const code = await new Promise<number | null>((resolve) => {
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          // Interrupt once the Vault step is under way (its predecessors printed their lines).
          if (/✔ Install Vault and the deliveries' charts/.test(out) && !child.killed) child.kill('SIGINT');
        });
        child.stderr!.on('data', (b: Buffer) => void (out += b.toString()));
        child.on('exit', (c) => resolve(c));
      });
      expect(code, out).toBe(130);
      expect(out).toMatch(/interrupted/);
      const d = e.vaultlab(deployArgs());
      expect(d.code, d.stderr).toBe(0);
      expect(json(d).summary.verify.every((c: any) => c.ok)).toBe(true);
      expect(await kube.get('apps/v1', 'Deployment', sample.ns, sample.app)).toBeDefined();
    });

    it('doctor on the running environment passes; reset --full --yes rebuilds it from scratch (a new Vault, its data included) and the next deploy changes nothing', () => {
      const doc = e.vaultlab(['doctor', '--json']);
      expect(doc.code, doc.stdout).toBe(0);
      expect(json(doc).ok).toBe(true);
      const r = timed('reset --full', () => e.vaultlab(['reset', '--full', '--yes', '--json', ...(offline ? ['--preload'] : [])]));
      expect(r.code, r.stderr).toBe(0);
      const j = json(r);
      expect(j.ok).toBe(true);
      expect(j.destroy).toBeDefined();
      // A new cluster and a new Vault: initialized again, every secret seeded again and synced.
      expect(j.deploy.summary.vault.init).toBe('initialized');
      expect(j.deploy.summary.verify.length).toBe(first.summary.verify.length);
      expect(j.deploy.summary.verify.every((c: any) => c.ok)).toBe(true);
      noValues(r);
      const d = json(e.vaultlab(deployArgs()));
      expect(d.ok).toBe(true);
      expect(d.summary.vault.seedWrites).toBe(0);
    });

    it('destroy leaves no container, volume or state, and is safe to run twice', () => {
      const r = timed('destroy', () => e.vaultlab(['destroy', '--yes']));
      expect(r.code, r.stderr).toBe(0);
      const containers = dockerCli(['ps', '-a', '--filter', `label=io.x-k8s.kind.cluster=${e.name}`, '--format', '{{.Names}}']);
      expect(containers.stdout.trim()).toBe('');
      const volumes = dockerCli(['volume', 'ls', '--format', '{{.Name}}']).stdout.split('\n').filter((v) => v.includes(e.name));
      expect(volumes).toEqual([]);
      expect(existsSync(join(e.cwd, '.vaultlab', e.name))).toBe(false);
      expect(e.vaultlab(['destroy', '--yes']).code).toBe(0);
      console.log(`e2e timing (${distribution}): ${Object.entries(timings).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
    });
  });
}
