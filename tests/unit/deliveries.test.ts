// Deliveries in the config and the plan: per-app delivery, the checks that keep one delivery's
// fields off another's app (file:line, exit 2), and what the injector renders.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts, vaultValues } from '../../scripts/plan/render.ts';
import { allManifests } from '../../scripts/plan/manifests.ts';
import { DELIVERIES } from '../../scripts/deliveries/index.ts';
import { DELIVERY_NAMES } from '../../scripts/deliveries/types.ts';
import { decodeAgentError } from '../../scripts/deliveries/injector/runtime.ts';
import { configErrors as configErrorsOf, messageOf } from '../harness/config-errors.ts';
import { withoutSampleDatabase } from '../harness/synced.ts';
import { SHOP_SEEDED, shopApp } from '../harness/fixtures/shop.ts';

const configErrors = (text: string, profile?: string) => configErrorsOf(text, profile ? { profile } : {});
const msg = messageOf;

const injectorApp = (extra = '', secretExtra = '') => shopApp({ delivery: 'injector', sample: 'vault-files', extra, secretExtra });

describe('the list of deliveries', () => {
  it('has one module per name, each naming itself', () => {
    expect(Object.keys(DELIVERIES).sort()).toEqual([...DELIVERY_NAMES].sort());
    for (const [name, d] of Object.entries(DELIVERIES)) expect(d.name).toBe(name);
  });
});

describe('delivery config checks (file:line, exit 2)', () => {
  it('an unknown delivery names the line and suggests the right one', () => {
    const [e, ...rest] = configErrors(injectorApp().replace('delivery = "injector"', 'delivery = "injecter"'));
    expect(rest).toEqual([]);
    expect(e!.where).toBe('config.toml:11: apps[0].delivery');
    expect(e!.message).toMatch(/must be one of "eso", "injector", "vso"; did you mean "injector"\?/);
    expect(e!.exitCode).toBe(2);
  });

  it("a field of another delivery is an error on the app's entry (file_template on an ESO app, refresh_interval on an injector app)", () => {
    const onEso = configErrors(injectorApp('', 'file_template = "{{ .DB_PASSWORD }}"').replace('delivery = "injector"\nsample = "vault-files"', 'sample = "env"'));
    expect(onEso).toHaveLength(1);
    expect(onEso[0]!.where).toMatch(/^config\.toml:\d+: apps\[0\]\.secrets\[0\]\.file_template$/);
    expect(msg(onEso[0]!)).toBe('file_template is a field of delivery "injector", but app "shop" uses delivery "eso"');
    expect(onEso[0]!.hint).toMatch(/set delivery = "injector"/);

    const onInjector = configErrors(injectorApp('', 'refresh_interval = "1m"\nrollout_restart = false'));
    expect(onInjector.map(msg)).toEqual([
      'refresh_interval is a field of delivery "eso", but app "shop" uses delivery "injector"',
      'rollout_restart is a field of delivery "vso", but app "shop" uses delivery "injector"',
    ]);
  });

  it('the older [[apps.external_secrets]] table is checked the same way, and located', () => {
    const errs = configErrors(injectorApp().replace('[[apps.secrets]]', '[[apps.external_secrets]]').replace('name = "db"', 'name = "db"\ntarget = "x"'));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.where).toMatch(/^config\.toml:\d+: apps\[0\]\.external_secrets\[0\]\.target$/);
  });

  it('a sample that cannot consume the delivery is an error that says which samples fit', () => {
    const errs = configErrors(injectorApp().replace('sample = "vault-files"', 'sample = "env"'));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.where).toBe('config.toml:12: apps[0].sample');
    expect(msg(errs[0]!)).toBe('sample "env" cannot consume delivery "injector" (it reads Kubernetes Secrets)');
    expect(errs[0]!.hint).toMatch(/use sample = "vault-files" or "db-client"; sample "env" works with delivery "eso"/);
    const back = configErrors(injectorApp().replace('delivery = "injector"\n', ''));
    expect(back.map(msg)).toEqual(['sample "vault-files" cannot consume delivery "eso" (it reads files rendered by the Vault Agent)']);
  });

  it('a rollout restart target that is not a Deployment of the namespace is an error', () => {
    const text = `${SHOP_SEEDED}
[[apps]]
name = "shop"
delivery = "vso"
sample = "none"
[[apps.secrets]]
name = "db"
rollout_restart = true
data = [{ secret_key = "DB_PASSWORD", path = "shop/db", key = "password" }]
`;
    const errs = configErrors(text).filter((e) => /rollout_restart$/.test(e.where));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.where).toMatch(/^config\.toml:\d+: apps\[0\]\.secrets\[0\]\.rollout_restart$/);
    expect(errs[0]!.message).toMatch(/restarts Deployment shop\/shop, but app "shop" has sample = "none", which is not a Deployment of namespace "shop"/);
  });

  it('entries with a "." in the name cannot be annotation suffixes', () => {
    const errs = configErrors(injectorApp().replace('name = "db"', 'name = "db.env"'));
    expect(errs.map((e) => e.where.replace(/:\d+:/, ':N:'))).toEqual(['config.toml:N: apps[0].secrets[0].name']);
  });

  it('both [[apps.secrets]] and [[apps.external_secrets]] on one app is an error', () => {
    const errs = configErrors(`${injectorApp()}\n[[apps.external_secrets]]\nname = "other"\ndata = [{ secret_key = "X", path = "shop/db", key = "password" }]\n`);
    expect(errs.map(msg)).toContain('app "shop" has both [[apps.secrets]] and [[apps.external_secrets]] (its older name)');
  });
});

describe('injector plan', () => {
  const plan = (text = injectorApp(), profile?: string) => buildPlan(loadConfigText(text, 'config.toml', { env: {}, ...(profile ? { profile } : {}) }));

  it('one app name derives namespace, ServiceAccount, role and policy; no SecretStore, no ESO role', () => {
    const p = plan();
    expect(p.apps).toHaveLength(1);
    expect(p.apps[0]).toMatchObject({ delivery: 'injector', name: 'shop', namespace: 'shop', serviceAccount: 'shop', role: 'injector-shop-role' });
    expect(p.vault.kubernetesAuth.roles).toEqual([{ name: 'injector-shop-role', namespace: 'shop', serviceAccount: 'shop', audience: 'vault', policies: ['injector-policy'], ttl: '1h' }]);
    expect(p.vault.policies.map((x) => x.name)).toEqual(['injector-policy']);
    const objects = allManifests(p);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Namespace/shop', 'ServiceAccount/shop', 'Deployment/shop']);
  });

  it('production: the policy reads only the namespace\'s own paths', () => {
    const p = plan(injectorApp(), 'production');
    expect(p.vault.policies.map((x) => x.name)).toEqual(['injector-shop-policy']);
    expect(p.vault.policies[0]!.hcl).toContain('path "secret/data/shop/*"');
    expect(p.vault.policies[0]!.hcl).not.toContain('path "secret/data/*"');
    expect(p.vault.kubernetesAuth.roles[0]!.policies).toEqual(['injector-shop-policy']);
  });

  it('the pod template carries the injector annotations, a projected token of the role\'s audience and the app\'s ServiceAccount', () => {
    const p = plan();
    const dep = allManifests(p).find((o) => o.kind === 'Deployment') as any;
    const t = dep.spec.template;
    expect(t.metadata.annotations).toEqual({
      'vault.hashicorp.com/agent-inject': 'true',
      'vault.hashicorp.com/role': 'injector-shop-role',
      'vault.hashicorp.com/auth-path': 'auth/kubernetes',
      'vault.hashicorp.com/service': 'http://vault.vault.svc:8200',
      'vault.hashicorp.com/agent-pre-populate': 'true',
      'vault.hashicorp.com/agent-service-account-token-volume-name': 'vault-token',
      // KV values rendered again every 15 s (the agent's default is 5 min): a rotation reaches the file.
      'vault.hashicorp.com/template-static-secret-render-interval': '5s',
      'vault.hashicorp.com/agent-inject-secret-db': 'secret/data/shop/db',
      'vault.hashicorp.com/agent-inject-template-db':
        '{{ with secret "secret/data/shop/db" }}DB_USER={{ index .Data.data "username" }}{{ end }}\n' +
        '{{ with secret "secret/data/shop/db" }}DB_PASSWORD={{ index .Data.data "password" }}{{ end }}\n',
    });
    expect(t.spec.serviceAccountName).toBe('shop');
    expect(t.spec.automountServiceAccountToken).toBe(false);
    expect(t.spec.volumes).toEqual([{ name: 'vault-token', projected: { sources: [{ serviceAccountToken: { audience: 'vault', expirationSeconds: 3600, path: 'token' } }] } }]);
  });

  it('a file_template is rendered over the data mappings; production adds the CA', () => {
    const p = plan(injectorApp('', 'file_template = "postgres://{{ .DB_USER }}:{{ .DB_PASSWORD }}@db/shop"'), 'production');
    const t = (allManifests(p).find((o) => o.kind === 'Deployment') as any).spec.template;
    const template = t.metadata.annotations['vault.hashicorp.com/agent-inject-template-db'] as string;
    expect(template).toContain('{{- $vaultlab := sprig_dict -}}');
    expect(template).toContain('{{ $_ := sprig_set $vaultlab "DB_PASSWORD" (index .Data.data "password") }}');
    expect(template.endsWith('{{- with $vaultlab }}postgres://{{ .DB_USER }}:{{ .DB_PASSWORD }}@db/shop{{ end }}')).toBe(true);
    expect(t.metadata.annotations['vault.hashicorp.com/tls-secret']).toBe('vault-ca');
    expect(t.metadata.annotations['vault.hashicorp.com/ca-cert']).toBe('/vault/tls/ca.crt');
    expect(t.metadata.annotations['vault.hashicorp.com/service']).toBe('https://vault.vault.svc:8200');
  });

  it('the Vault chart enables the injector only when an enabled app uses it; no ESO values then', () => {
    expect(vaultValues(plan()).injector).toMatchObject({ enabled: true });
    const files = [...renderArtifacts(plan()).keys()];
    expect(files).not.toContain('helm/eso-values.yaml');
    // Both injector apps off (the shop app's database role goes with it: a role of a disabled app is a config error).
    const bundled = buildPlan(loadConfigText(withoutSampleDatabase(readFileSync(BUNDLED_CONFIG, 'utf8')).replace(/^delivery = "injector"$/m, 'delivery = "injector"\nenabled = false'), 'config.toml', { env: {} }));
    expect(vaultValues(bundled).injector.enabled).toBe(false);
    const bao = plan(`[vault]\ndistribution = "openbao"\n${injectorApp()}`);
    expect(parseYaml(renderArtifacts(bao).get('helm/vault-values.yaml')!).injector).toMatchObject({ enabled: true });
  });

  it('an external Vault: the chart installs only the injector, pointed at it', () => {
    const p = plan(`[vault]\naddress = "https://vault.example.com:8200"\n${injectorApp()}`);
    const values = parseYaml(renderArtifacts(p).get('helm/vault-values.yaml')!);
    expect(values).toMatchObject({ server: { enabled: false }, ui: { enabled: false }, global: { tlsDisable: false }, injector: { enabled: true, externalVaultAddr: 'https://vault.example.com:8200' } });
    const annotations = (allManifests(p).find((o) => o.kind === 'Deployment') as any).spec.template.metadata.annotations;
    expect(annotations['vault.hashicorp.com/service']).toBe('https://vault.example.com:8200');
    const eso = plan(`[vault]\naddress = "https://vault.example.com:8200"\n${injectorApp().replace('delivery = "injector"\nsample = "vault-files"', 'sample = "env"')}`);
    expect(renderArtifacts(eso).has('helm/vault-values.yaml')).toBe(false);
  });

  it('ESO and injector apps side by side: each namespace renders only its deliveries\' objects', () => {
    const text = `${injectorApp()}
[[secrets]]
path = "web/api"
key = "token"
[[apps]]
name = "web"
sample = "env"
[[apps.secrets]]
name = "web-api"
data = [{ secret_key = "TOKEN", path = "web/api", key = "token" }]
`;
    const p = plan(text);
    expect(p.namespaces.map((n) => [n.name, n.deliveries])).toEqual([['shop', ['injector']], ['web', ['eso']]]);
    expect(p.vault.kubernetesAuth.roles.map((r) => r.name)).toEqual(['eso-web-role', 'injector-shop-role']);
    const kinds = allManifests(p).map((o) => `${o.metadata.namespace ?? o.metadata.name}:${o.kind}`);
    expect(kinds).toEqual(['shop:Namespace', 'shop:ServiceAccount', 'shop:Deployment', 'web:Namespace', 'web:ServiceAccount', 'web:SecretStore', 'web:ExternalSecret', 'web:Deployment']);
  });
});

describe("the agent's errors, decoded", () => {
  const p = buildPlan(loadConfigText(injectorApp(), 'config.toml', { env: {} }));
  const app = p.apps[0]! as Extract<(typeof p.apps)[number], { delivery: 'injector' }>;
  it('permission denied names the role, its ServiceAccount, namespace, policy and audience', () => {
    const d = decodeAgentError('[ERROR] agent.auth.handler: error authenticating: error="Error making API request.\n\nURL: PUT http://vault.vault.svc:8200/v1/auth/kubernetes/login\nCode: 403. Errors:\n\n* permission denied"', app, p);
    expect(d.cause).toBe('Vault refused the agent: role injector-shop-role (ServiceAccount shop in "shop", policy injector-policy, audience "vault")');
    expect(d.fix).toMatch(/vault configure/);
  });
  it('an audience, a binding, a missing role, TLS and reachability each get their own cause', () => {
    expect(decodeAgentError('Code: 403. Errors: * invalid audience (aud) claim', app, p).cause).toMatch(/audience/);
    expect(decodeAgentError('* service account name not authorized', app, p).cause).toMatch(/does not bind this pod's ServiceAccount/);
    expect(decodeAgentError('* invalid role name "injector-shop-role"', app, p).cause).toBe('Vault has no role injector-shop-role');
    expect(decodeAgentError('x509: certificate signed by unknown authority', app, p).cause).toMatch(/does not trust Vault's certificate/);
    expect(decodeAgentError('dial tcp 10.96.0.1:8200: connect: connection refused', app, p).cause).toMatch(/cannot reach Vault at http:\/\/vault.vault.svc:8200/);
  });
});
