// The Vault Secrets Operator delivery, pure side: its config checks (file:line, exit 2), the app's
// plan (role, ServiceAccount, policy), what it renders (VaultConnection, VaultAuth,
// VaultStaticSecret, the pod's envFrom/volumes), its chart values and images, and that nothing of
// VSO is rendered or installed when no enabled app uses it.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts } from '../../scripts/plan/render.ts';
import { allManifests, deliveryRows, vaultNetworkPolicy } from '../../scripts/plan/manifests.ts';
import { usedDeliveries } from '../../scripts/deliveries/index.ts';
import { vso } from '../../scripts/deliveries/vso/index.ts';
import { compareSecret, decodeVsoError, synced } from '../../scripts/deliveries/vso/runtime.ts';
import { cacheEntryProblems } from '../../scripts/deliveries/vso/client-cache.ts';
import type { VsoAppPlan } from '../../scripts/deliveries/types.ts';
import { configErrors as configErrorsOf, messageOf } from '../harness/config-errors.ts';
import { SHOP_SEEDED, shopApp } from '../harness/fixtures/shop.ts';

const configErrors = (text: string, profile?: string) => configErrorsOf(text, profile ? { profile } : {});
const msg = messageOf;

const seeded = `${SHOP_SEEDED}
[[secrets]]
path = "shop/api"
key = "token"
`;
const vsoApp = (extra = '', secretExtra = '', sample = 'env') => shopApp({ delivery: 'vso', sample, seeded, extra, secretExtra });
const plan = (text = vsoApp(), profile?: string) => buildPlan(loadConfigText(text, 'config.toml', { env: {}, ...(profile ? { profile } : {}) }));

describe('VSO config checks (file:line, exit 2)', () => {
  it('an entry whose data come from several KV paths: one VaultStaticSecret reads one path', () => {
    const errs = configErrors(vsoApp().replace('{ secret_key = "DB_PASSWORD", path = "shop/db", key = "password" },', '{ secret_key = "DB_PASSWORD", path = "shop/db", key = "password" },\n  { secret_key = "TOKEN", path = "shop/api", key = "token" },'));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.where).toMatch(/^config\.toml:\d+: apps\[0\]\.secrets\[0\]\.data$/);
    expect(msg(errs[0]!)).toBe('a VaultStaticSecret reads one KV path, but entry "db" reads "shop/db", "shop/api"');
    expect(errs[0]!.hint).toMatch(/Split it into one \[\[apps\.secrets\]\] entry per path/);
    expect(errs[0]!.exitCode).toBe(2);
  });

  it('refresh_after in a form VSO rejects (two units, milliseconds) is an error; one unit passes', () => {
    for (const bad of ['1h30m', '500ms']) {
      const errs = configErrors(vsoApp('', `refresh_after = "${bad}"`));
      expect(errs.map((e) => e.where.replace(/:\d+:/, ':N:'))).toEqual(['config.toml:N: apps[0].secrets[0].refresh_after']);
      expect(msg(errs[0]!)).toBe(`"${bad}" is not a duration VSO accepts (one number and one unit: s, m or h)`);
    }
    expect(plan(vsoApp('', 'refresh_after = "90m"')).apps[0]).toMatchObject({ secrets: [{ refreshAfter: '90m' }] });
    // Not a duration at all: the schema's own error.
    expect(configErrors(vsoApp('', 'refresh_after = "soon"'))[0]!.where).toMatch(/refresh_after$/);
  });

  it('rollout_restart must be a bool; target a DNS name', () => {
    expect(configErrors(vsoApp('', 'rollout_restart = "yes"'))[0]!.where).toMatch(/apps\[0\]\.secrets\[0\]\.rollout_restart$/);
    expect(configErrors(vsoApp('', 'target = "Not_A_Name"'))[0]!.where).toMatch(/apps\[0\]\.secrets\[0\]\.target$/);
  });

  it('an ESO-only field on a VSO app, and a VSO field on an ESO app, are errors naming the delivery', () => {
    expect(configErrors(vsoApp('', 'creation_policy = "Merge"')).map(msg)).toEqual(['creation_policy is a field of delivery "eso", but app "shop" uses delivery "vso"']);
    expect(configErrors(vsoApp('', 'refresh_after = "1m"').replace('delivery = "vso"\n', '')).map(msg)).toEqual(['refresh_after is a field of delivery "vso", but app "shop" uses delivery "eso"']);
  });

  it("an app in VSO's own namespace, and the injector's sample on a VSO app, are errors", () => {
    expect(configErrors(vsoApp('namespace = "vault-secrets-operator"')).map(msg)).toEqual(['"vault-secrets-operator" is the Vault Secrets Operator\'s namespace ([vso] namespace); apps need their own namespace']);
    const wrong = configErrors(vsoApp('', '', 'vault-files'));
    expect(wrong.map(msg)).toEqual(['sample "vault-files" cannot consume delivery "vso" (it reads files rendered by the Vault Agent)']);
    expect(wrong[0]!.hint).toMatch(/use sample = "env" or "files" or "dashboard"/);
  });
});

describe('VSO plan and render', () => {
  it('one app name derives namespace, ServiceAccount, role and policy; no SecretStore, no ESO role', () => {
    const p = plan();
    expect(p.apps[0]).toMatchObject({ delivery: 'vso', name: 'shop', namespace: 'shop', serviceAccount: 'shop', role: 'vso-shop-role' });
    expect(p.vault.kubernetesAuth.roles).toEqual([
      { name: 'vso-shop-role', namespace: 'shop', serviceAccount: 'shop', audience: 'vault', policies: ['vso-policy'], ttl: '1h' },
      // VSO's own, for its transit-encrypted client cache (the chart's controller ServiceAccount).
      { name: 'vso-client-cache-role', namespace: 'vault-secrets-operator', serviceAccount: 'vault-secrets-operator-controller-manager', audience: 'vault', policies: ['vso-client-cache-policy'], ttl: '1h' },
    ]);
    expect(p.vault.policies.map((x) => x.name)).toEqual(['vso-policy', 'vso-client-cache-policy']);
    expect(allManifests(p).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Namespace/shop', 'VaultConnection/vault', 'ServiceAccount/shop', 'VaultAuth/shop', 'VaultStaticSecret/db', 'Deployment/shop']);
  });

  it('production: the policy reads only the namespace\'s own paths; the VaultConnection is https with the CA Secret', () => {
    const p = plan(vsoApp(), 'production');
    expect(p.vault.policies.map((x) => x.name)).toEqual(['vso-shop-policy', 'vso-client-cache-policy']);
    expect(p.vault.policies[0]!.hcl).toContain('path "secret/data/shop/*"');
    expect(p.vault.policies[0]!.hcl).not.toContain('path "secret/data/*"');
    expect(p.vault.kubernetesAuth.roles[0]!.policies).toEqual(['vso-shop-policy']);
    const conn = allManifests(p).find((o) => o.kind === 'VaultConnection') as any;
    expect(conn.spec).toEqual({ address: 'https://vault.vault.svc:8200', skipTLSVerify: false, caCertSecretRef: 'vault-ca' });
    // VSO's controller reaches Vault from its own namespace: the NetworkPolicy lets it.
    const from = (vaultNetworkPolicy(p) as any).spec.ingress[0].from;
    expect(from).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'vault-secrets-operator' } } });
    expect((vaultNetworkPolicy(plan(vsoApp().replace('delivery = "vso"\n', ''), 'production')) as any).spec.ingress[0].from).not.toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'vault-secrets-operator' } } });
  });

  it('VaultAuth logs in as the app\'s role with its ServiceAccount and the role\'s audience; the VaultStaticSecret maps each key and restarts the Deployment', () => {
    const objects = allManifests(plan(vsoApp('', 'refresh_after = "30s"\ntarget = "shop-db"'))) as any[];
    const demoConn = objects.find((o) => o.kind === 'VaultConnection');
    expect(demoConn.spec).toEqual({ address: 'http://vault.vault.svc:8200', skipTLSVerify: false });
    const auth = objects.find((o) => o.kind === 'VaultAuth');
    expect(auth.spec).toEqual({ vaultConnectionRef: 'vault', method: 'kubernetes', mount: 'kubernetes', kubernetes: { role: 'vso-shop-role', serviceAccount: 'shop', audiences: ['vault'], tokenExpirationSeconds: 600 } });
    const vss = objects.find((o) => o.kind === 'VaultStaticSecret');
    expect(vss.spec).toEqual({
      vaultAuthRef: 'shop',
      type: 'kv-v2',
      mount: 'secret',
      path: 'shop/db',
      refreshAfter: '30s',
      hmacSecretData: true,
      destination: {
        name: 'shop-db',
        create: true,
        labels: { 'app.kubernetes.io/managed-by': 'vaultlab', 'vaultlab.dev/cluster': 'vaultlab', 'vaultlab.dev/app': 'shop' },
        transformation: {
          excludeRaw: true,
          excludes: ['.*'],
          templates: { DB_USER: { text: '{{ get .Secrets "username" }}' }, DB_PASSWORD: { text: '{{ get .Secrets "password" }}' } },
        },
      },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'shop' }],
    });
    // The env sample reads the Secret VSO writes, as env; its readiness checks each key arrived.
    const dep = objects.find((o) => o.kind === 'Deployment');
    expect(dep.spec.template.spec.containers[0].envFrom).toEqual([{ secretRef: { name: 'shop-db' } }]);
    expect(dep.spec.template.spec.containers[0].readinessProbe.exec.command[2]).toBe('test -n "$DB_USER" && test -n "$DB_PASSWORD"');
  });

  it('defaults: target = the name, refresh_after 1h, rollout restart only when the sample is a Deployment; rollout_restart = false drops the targets', () => {
    expect((plan().apps[0] as VsoAppPlan).secrets[0]).toMatchObject({ target: 'db', refreshAfter: '1h', rolloutRestart: true });
    expect((plan(vsoApp('', '', 'none')).apps[0] as VsoAppPlan).secrets[0]!.rolloutRestart).toBe(false);
    const off = allManifests(plan(vsoApp('', 'rollout_restart = false'))).find((o) => o.kind === 'VaultStaticSecret') as any;
    expect(off.spec.rolloutRestartTargets).toBeUndefined();
  });

  it('the files sample mounts each Secret under /etc/secrets/<target>', () => {
    const dep = allManifests(plan(vsoApp('', '', 'files'))).find((o) => o.kind === 'Deployment') as any;
    expect(dep.spec.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'secret-0', mountPath: '/etc/secrets/db', readOnly: true });
    expect(dep.spec.template.spec.volumes).toContainEqual({ name: 'secret-0', secret: { secretName: 'db' } });
  });

  it('the VSO chart only when an enabled app uses it: values from stacks/vso, images from [images] vso / vso_rbac_proxy or the mirror', () => {
    expect([...renderArtifacts(plan()).keys()]).toContain('helm/vso-values.yaml');
    expect(usedDeliveries(plan()).map((d) => d.name)).toEqual(['vso']);
    const off = plan(vsoApp('enabled = false'));
    expect([...renderArtifacts(off).keys()]).not.toContain('helm/vso-values.yaml');
    expect(usedDeliveries(off).map((d) => d.name)).toEqual(['eso']);
    const values = parseYaml(renderArtifacts(plan()).get('helm/vso-values.yaml')!);
    expect(values).toMatchObject({ controller: { replicas: 1, manager: { resources: { requests: { cpu: '10m' } } } }, defaultVaultConnection: { enabled: false }, defaultAuthMethod: { enabled: false }, tests: { enabled: false } });
    expect(values.controller.manager.image).toBeUndefined();
    const release = vso.release!(plan(`[images]\nvso = "registry.example.com/vso:0.10.0"\nvso_rbac_proxy = "registry.example.com/krp:v0.18.1"\n${vsoApp()}`));
    expect((release.values as any).controller.manager.image).toEqual({ repository: 'registry.example.com/vso', tag: '0.10.0' });
    expect((release.values as any).controller.kubeRbacProxy.image).toEqual({ repository: 'registry.example.com/krp', tag: 'v0.18.1' });
    const mirrored = vso.release!(plan(`[images]\nmirror = "mirror.example.com:5000"\n${vsoApp()}`));
    expect((mirrored.values as any).controller.manager.image).toEqual({ repository: 'mirror.example.com:5000/hashicorp/vault-secrets-operator' });
    expect((mirrored.values as any).controller.kubeRbacProxy.image).toEqual({ repository: 'mirror.example.com:5000/brancz/kube-rbac-proxy' });
    expect(release).toMatchObject({ title: 'VSO', namespace: 'vault-secrets-operator', release: 'vault-secrets-operator', chart: { chart: 'vault-secrets-operator', version: '0.10.0', source: { type: 'repo' } } });
    const local = vso.release!(plan(`[charts.vso]\npath = "/charts/vso"\n[vso]\nnamespace = "vso"\n${vsoApp()}`));
    expect(local).toMatchObject({ namespace: 'vso', chart: { source: { type: 'path', path: '/charts/vso' } } });
  });

  it('the bundled config: a VSO app beside ESO and the injector, listed on the dashboard; the plan is the same twice', () => {
    const text = readFileSync(BUNDLED_CONFIG, 'utf8');
    const a = plan(text);
    const billing = a.apps.find((x) => x.delivery === 'vso') as VsoAppPlan;
    expect(billing).toMatchObject({ name: 'billing', namespace: 'billing', sample: 'env', role: 'vso-billing-role' });
    expect(billing.secrets.map((s) => [s.name, s.target, s.rolloutRestart])).toEqual([['billing-config', 'billing-config', true]]);
    expect(deliveryRows(a)).toContain('<tr><td>billing</td><td>billing</td><td>vso</td><td>Secret billing-config (VaultStaticSecret, rollout restart)</td></tr>');
    const dashboard = allManifests(a).find((o) => o.kind === 'Deployment' && o.metadata.name === 'dashboard') as any;
    expect(dashboard.spec.template.spec.containers[0].args[0]).toContain('<td>reports</td><td>reports</td><td>injector</td>');
    const render = (p: ReturnType<typeof plan>) => [...renderArtifacts(p)].map(([k, v]) => `${k}\n${v}`).join('\n');
    expect(render(plan(text))).toBe(render(a));
    expect(render(plan(text, 'production'))).toBe(render(plan(text, 'production')));
  });
});

describe("VSO's client cache, encrypted with a transit key ([vso] client_cache)", () => {
  it('default with the transit engine: chart values for direct-encrypted, its role, policy and key, and a VaultConnection in VSO\'s namespace', () => {
    const p = plan();
    expect(p.vso.clientCache).toEqual({ transitMount: 'transit', keyName: 'vso-client-cache', role: 'vso-client-cache-role', policy: 'vso-client-cache-policy', serviceAccount: 'vault-secrets-operator-controller-manager', vaultAuth: 'vault-secrets-operator-default-transit-auth' });
    const values = parseYaml(renderArtifacts(p).get('helm/vso-values.yaml')!);
    expect(values.controller.manager.clientCache).toEqual({
      persistenceModel: 'direct-encrypted',
      storageEncryption: { enabled: true, vaultConnectionRef: 'vault', keyName: 'vso-client-cache', transitMount: 'transit', method: 'kubernetes', mount: 'kubernetes', kubernetes: { role: 'vso-client-cache-role', serviceAccount: 'vault-secrets-operator-controller-manager', tokenAudiences: ['vault'] } },
    });
    // The policy: encrypt and decrypt with that one key, nothing else.
    const hcl = p.vault.policies.find((x) => x.name === 'vso-client-cache-policy')!.hcl;
    expect(hcl.match(/path "[^"]+"/g)).toEqual(['path "transit/encrypt/vso-client-cache"', 'path "transit/decrypt/vso-client-cache"']);
    expect(hcl.match(/capabilities = \[[^\]]*\]/g)).toEqual(['capabilities = ["update"]', 'capabilities = ["update"]']);
    expect(parseYaml(renderArtifacts(p).get('vault/engines.yaml')!).transitKeys).toEqual([{ mount: 'transit', name: 'vso-client-cache', type: 'aes256-gcm96', purpose: "VSO's client cache" }]);
    const own = parseYaml(renderArtifacts(p).get('manifests/vault-secrets-operator.yaml')!);
    expect(own).toMatchObject({ kind: 'VaultConnection', metadata: { name: 'vault', namespace: 'vault-secrets-operator' }, spec: { address: 'http://vault.vault.svc:8200' } });
  });

  it('production: the setup token may create and read the key (configure), never encrypt or decrypt; the connection has the CA', () => {
    const p = plan(vsoApp(), 'production');
    const setup = p.vault.setupToken.policy.hcl;
    expect(setup).toContain('path "transit/keys/vso-client-cache" {\n  capabilities = ["create", "read", "update"]\n}');
    expect(setup).not.toMatch(/transit\/(encrypt|decrypt)/);
    const own = parseYaml(renderArtifacts(p).get('manifests/vault-secrets-operator.yaml')!);
    expect(own.spec).toEqual({ address: 'https://vault.vault.svc:8200', skipTLSVerify: false, caCertSecretRef: 'vault-ca' });
  });

  it('memory, or no transit engine: none of it; a release name changes the chart names; a custom key name', () => {
    for (const p of [plan(`[vso]\nclient_cache = "memory"\n${vsoApp()}`), plan(`[vault]\nengines = ["kv-v2", "database"]\n${vsoApp()}`)]) {
      expect(p.vso.clientCache).toBeUndefined();
      expect(p.vault.transitKeys).toEqual([]);
      expect(p.vault.policies.map((x) => x.name)).toEqual(['vso-policy']);
      expect(parseYaml(renderArtifacts(p).get('helm/vso-values.yaml')!).controller.manager.clientCache).toBeUndefined();
      expect([...renderArtifacts(p).keys()]).not.toContain('manifests/vault-secrets-operator.yaml');
    }
    expect(plan(`[vso]\nrelease = "vso"\nclient_cache_key = "cache-key"\n${vsoApp()}`).vso.clientCache).toMatchObject({ keyName: 'cache-key', serviceAccount: 'vso-vault-secrets-operator-controller-manager', vaultAuth: 'vso-vault-secrets-operator-default-transit-auth' });
    // No VSO app: no cache, no key.
    expect(plan(vsoApp('enabled = false')).vault.transitKeys).toEqual([]);
  });

  it('config errors (file:line, exit 2): "transit" without the engine; an app or namespace named like the cache role', () => {
    const errs = configErrors(`[vault]\nengines = ["kv-v2"]\n[vso]\nclient_cache = "transit"\n${vsoApp()}`);
    expect(errs.map((e) => e.where.replace(/:\d+:/, ':N:'))).toEqual(['config.toml:N: vso.client_cache']);
    expect(msg(errs[0]!)).toBe('is "transit", but vault.engines has no "transit": VSO encrypts its client cache with a transit key');
    expect(errs[0]!.exitCode).toBe(2);
    expect(configErrors(vsoApp().replace('name = "shop"\n', 'name = "client-cache"\n')).map(msg)).toEqual(['"client-cache" names VSO\'s client cache role (vso-client-cache-role); a VSO app cannot be called that']);
    expect(configErrors(vsoApp('namespace = "client-cache"')).map(msg)).toEqual(['"client-cache" names VSO\'s client cache policy (vso-client-cache-policy); a VSO app\'s namespace cannot be called that']);
    expect(configErrors(`[vso]\nclient_cache = "disk"\n${vsoApp()}`)[0]!.where).toMatch(/vso\.client_cache$/);
  });

  it('a cached client checked by its labels and its data: transit ciphertext passes; the token in the clear, or none, does not', () => {
    const p = plan();
    const app = p.apps[0] as VsoAppPlan;
    const entry = (labels: Record<string, string>, data: unknown) => ({ metadata: { name: 'vso-cc-x', labels: { 'auth/UID': 'uid-1', ...labels } }, data: { secret: Buffer.from(JSON.stringify(data)).toString('base64') } });
    const good = entry({ encrypted: 'true', vaultTransitRef: 'vault-secrets-operator-default-transit-auth' }, { ciphertext: 'vault:v1:abc', key_version: 1 });
    expect(cacheEntryProblems(p, app, 'uid-1', [good])).toEqual([]);
    expect(cacheEntryProblems(p, app, 'uid-1', [])).toEqual(['VSO has no cached client for VaultAuth shop/shop in namespace vault-secrets-operator']);
    expect(cacheEntryProblems(p, app, 'uid-1', [entry({}, { token: 'clear' })])).toEqual(['Secret vault-secrets-operator/vso-cc-x is not marked encrypted by VaultAuth vault-secrets-operator-default-transit-auth']);
    expect(cacheEntryProblems(p, app, 'uid-1', [entry({ encrypted: 'true', vaultTransitRef: 'vault-secrets-operator-default-transit-auth' }, { token: 'clear' })])).toEqual(['Secret vault-secrets-operator/vso-cc-x does not hold transit ciphertext']);
    expect(cacheEntryProblems(plan(`[vso]\nclient_cache = "memory"\n${vsoApp()}`), app, 'uid-1', [])).toEqual([]);
  });
});

describe('VSO runtime, pure parts', () => {
  const p = plan();
  const app = p.apps[0] as VsoAppPlan;
  const s = app.secrets[0]!;
  it('synced: a MAC recorded for the current generation', () => {
    expect(synced({ metadata: { generation: 2 }, status: { secretMAC: 'x', lastGeneration: 2 } })).toBe(true);
    expect(synced({ metadata: { generation: 3 }, status: { secretMAC: 'x', lastGeneration: 2 } })).toBe(false);
    expect(synced({ metadata: { generation: 1 }, status: { lastGeneration: 1 } })).toBe(false);
  });
  it('the Secret against Vault: exact keys, digests, never a value in a problem', () => {
    const values = { username: 'shop-user', password: 's3cret-value' };
    expect(compareSecret(app, s, { DB_USER: Buffer.from('shop-user'), DB_PASSWORD: Buffer.from('s3cret-value') }, values)).toEqual([]);
    const bad = compareSecret(app, s, { DB_USER: Buffer.from('shop-user'), DB_PASSWORD: Buffer.from('old-value'), _raw: Buffer.from('{}') }, values);
    expect(bad).toEqual(['unexpected key(s) _raw', "DB_PASSWORD differs from Vault's shop/db:password (digest mismatch)"]);
    expect(bad.join(' ')).not.toContain('s3cret-value');
    expect(compareSecret(app, s, undefined, values)).toEqual(['Secret shop/db does not exist']);
  });
  it("VSO's Warning Events decoded: permission denied names the role, ServiceAccount, policy and audience", () => {
    const d = decodeVsoError('Failed to get Vault auth login: Error making API request. URL: PUT http://vault.vault.svc:8200/v1/auth/kubernetes/login Code: 403. Errors: * permission denied', app, p);
    expect(d.cause).toBe('Vault refused VSO: role vso-shop-role (ServiceAccount shop in "shop", policy vso-policy, audience "vault")');
    expect(decodeVsoError('* invalid audience (aud) claim', app, p).cause).toMatch(/audience/);
    expect(decodeVsoError('dial tcp 10.96.0.10:8200: connect: connection refused', app, p).cause).toBe('VSO cannot reach Vault at http://vault.vault.svc:8200');
  });
});
