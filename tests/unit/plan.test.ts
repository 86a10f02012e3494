import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig, loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts, raftConfig } from '../../scripts/plan/render.ts';
import { lineDiff } from '../../scripts/plan/output.ts';

const demo = () => buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
const production = () => buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));

describe('plan', () => {
  it('is deterministic: same input, identical artifacts', () => {
    const a = renderArtifacts(demo());
    const b = renderArtifacts(demo());
    expect([...a.entries()]).toEqual([...b.entries()]);
  });

  it('demo: standalone, no TLS, one key share kept locally and in the cluster, one broad policy', () => {
    const p = demo();
    expect(p.vault.ha).toEqual({ enabled: false, replicas: 1 });
    expect(p.vault.tls).toBe(false);
    expect(p.vault.init).toMatchObject({ shares: 1, threshold: 1, storeInCluster: true, secretName: 'vault-init-keys' });
    // vso-client-cache-*: VSO's own client cache, encrypted with the transit engine's key.
    expect(p.vault.policies.map((x) => x.name)).toEqual(['eso-policy', 'injector-policy', 'vso-policy', 'vso-client-cache-policy']);
    expect(p.vault.kubernetesAuth.roles.map((r) => r.name)).toEqual(['eso-argocd-role', 'eso-dashboard-role', 'eso-registry-role', 'eso-webapp-role', 'injector-reports-role', 'injector-shop-role', 'vso-billing-role', 'vso-client-cache-role']);
    const appRoles = p.vault.kubernetesAuth.roles.filter((r) => r.name !== 'vso-client-cache-role');
    expect(appRoles.every((r) => r.audience === 'vault' && r.serviceAccount === (r.name.startsWith('eso-') ? 'external-secrets' : r.name.replace(/^(injector|vso)-(.*)-role$/, '$2')))).toBe(true);
    expect(p.vault.transitKeys).toEqual([{ mount: 'transit', name: 'vso-client-cache', type: 'aes256-gcm96', purpose: "VSO's client cache" }]);
    expect(p.vault.hostAddress).toBe('http://127.0.0.1:8200');
    expect(p.vault.inClusterAddress).toBe('http://vault.vault.svc:8200');
  });

  it('production: TLS, HA Raft x3, 5/3, per-namespace policies, setup token, audit, every value random', () => {
    const p = production();
    expect(p.vault.tls).toBe(true);
    expect(p.vault.ha).toEqual({ enabled: true, replicas: 3 });
    expect(p.vault.init).toMatchObject({ shares: 5, threshold: 3, storeInCluster: false });
    expect(p.vault.policies.map((x) => x.name)).toEqual(['eso-argocd-policy', 'eso-dashboard-policy', 'eso-registry-policy', 'eso-webapp-policy', 'injector-reports-policy', 'injector-shop-policy', 'vso-billing-policy', 'vso-client-cache-policy']);
    // The shop app's own dynamic database user: its policy reads exactly database/creds/shop-app, no other policy does.
    const shop = p.vault.policies.find((x) => x.name === 'injector-shop-policy')!.hcl;
    expect(shop.match(/path "database\/creds\/[^"]+"/g)).toEqual(['path "database/creds/shop-app"']);
    expect(p.vault.policies.filter((x) => x.hcl.includes('database/creds/')).map((x) => x.name)).toEqual(['injector-shop-policy']);
    expect(p.vault.policies[0]!.hcl).toContain('path "secret/data/argocd/*"');
    expect(p.vault.policies[0]!.hcl).not.toContain('path "secret/data/*"');
    expect(p.vault.setupToken.enabled).toBe(true);
    expect(p.vault.audit.enabled).toBe(true);
    expect(p.seeding.entries.every((e) => e.source.type === 'random')).toBe(true);
    expect(p.ignoredLiterals).toEqual(['argocd_admin', 'dashboard_greeting', 'registry_token', 'registry_user', 'webapp_db_user']);
    expect(p.namespaces.every((ns) => ns.secretStore.server.startsWith('https://') && ns.secretStore.caSecret)).toBe(true);
  });

  it('production uses an allowed literal, but never one that is a bundled demo default', () => {
    const base = `
[production]
allow_literals = ["registry_token"]
[passwords]
registry_token = "%VALUE%"
[[secrets]]
path = "registry/creds"
key = "password"
password = "registry_token"
`;
    const outside = buildPlan(loadConfigText(base.replace('%VALUE%', 'from-a-real-registry'), 'c', { env: {}, profile: 'production' }));
    expect(outside.seeding.entries[0]!.source).toEqual({ type: 'literal', password: 'registry_token' });
    const demoValue = buildPlan(loadConfigText(base.replace('%VALUE%', 'demo-registry-token'), 'c', { env: {}, profile: 'production' }));
    expect(demoValue.seeding.entries[0]!.source.type).toBe('random');
    expect(demoValue.ignoredLiterals).toEqual(['registry_token']);
  });

  it('switching the bundled config to OpenBao brings its own chart and image pins (none are pinned in config.toml)', () => {
    const text = readFileSync(BUNDLED_CONFIG, 'utf8');
    const vault = buildPlan(loadConfigText(text, 'config.toml', { env: {} })).vault;
    const bao = buildPlan(loadConfigText(text.replace(/^distribution = "vault"/m, 'distribution = "openbao"'), 'config.toml', { env: {} })).vault;
    expect([vault.chart.chart, vault.chart.version, `${vault.image.repository}:${vault.image.tag}`]).toEqual(['vault', '0.34.1', 'hashicorp/vault:2.0.4']);
    expect([bao.chart.chart, bao.chart.version, `${bao.image.repository}:${bao.image.tag}`]).toEqual(['openbao', '0.29.2', 'quay.io/openbao/openbao:2.7.2']);
    // An explicit pin still wins.
    const pinned = buildPlan(loadConfigText(text.replace('[vault]\n', '[vault]\nchart_version = "0.33.0"\nimage_tag = "2.0.3"\n'), 'config.toml', { env: {} })).vault;
    expect([pinned.chart.version, pinned.image.tag]).toEqual(['0.33.0', '2.0.3']);
  });

  it('random entries naming the same [passwords] entry share a group', () => {
    const p = demo();
    const pw = p.seeding.entries.find((e) => e.path === 'webapp/db' && e.key === 'password')!;
    expect(pw.source).toEqual({ type: 'random', format: 'base64', bytes: 24 });
    expect(pw.group).toBe('webapp_db_password');
  });

  it('disabled apps drop their namespace, role and manifests', () => {
    const text = `
[[secrets]]
path = "a/x"
key = "k"
[[apps]]
name = "a"
namespace = "a"
enabled = false
sample = "env"
[[apps.external_secrets]]
name = "s"
data = [{ secret_key = "K", path = "a/x", key = "k" }]
[[apps]]
name = "b"
namespace = "b"
[[apps.external_secrets]]
name = "s"
data = [{ secret_key = "K", path = "a/x", key = "k" }]
`;
    const p = buildPlan(loadConfigText(text, 'c', { env: {} }));
    expect(p.namespaces.map((n) => n.name)).toEqual(['b']);
    expect([...renderArtifacts(p).keys()].filter((k) => k.startsWith('manifests/'))).toEqual(['manifests/b.yaml']);
  });
});

describe('rendered artifacts', () => {
  it('demo writes every artifact kind', () => {
    const files = [...renderArtifacts(demo()).keys()];
    expect(files).toEqual(
      expect.arrayContaining([
        'plan.json',
        'kind/cluster.yaml',
        'helm/vault-values.yaml',
        'helm/eso-values.yaml',
        'vault/policies/eso-policy.hcl',
        'vault/auth.yaml',
        'vault/engines.yaml',
        'vault/seeding.yaml',
        'vault/init.yaml',
        'manifests/webapp.yaml',
        'manifests/argocd.yaml',
        'manifests/registry.yaml',
        'manifests/dashboard.yaml',
      ]),
    );
  });

  it('manifests use external-secrets.io/v1 and wire SecretStores to the per-namespace role and audience', () => {
    const art = renderArtifacts(demo());
    const docs = parseAllDocuments(art.get('manifests/webapp.yaml')!).map((d) => d.toJS());
    const store = docs.find((d) => d.kind === 'SecretStore');
    expect(store.apiVersion).toBe('external-secrets.io/v1');
    expect(store.spec.provider.vault).toMatchObject({
      server: 'http://vault.vault.svc:8200',
      path: 'secret',
      version: 'v2',
      auth: { kubernetes: { mountPath: 'kubernetes', role: 'eso-webapp-role', serviceAccountRef: { name: 'external-secrets', audiences: ['vault'] } } },
    });
    const es = docs.filter((d) => d.kind === 'ExternalSecret');
    expect(es.every((e) => e.apiVersion === 'external-secrets.io/v1')).toBe(true);
    const deploy = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'webapp');
    expect(deploy.spec.template.spec.containers[0].envFrom).toEqual([{ secretRef: { name: 'webapp-db' } }]);
    const worker = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'worker');
    expect(worker.spec.template.spec.containers[0].volumeMounts).toEqual([{ name: 'secret-0', mountPath: '/etc/secrets/worker-credentials', readOnly: true }]);
  });

  it('the ArgoCD pattern merges into argocd-secret and retains it; the registry secret is a dockerconfigjson template', () => {
    const art = renderArtifacts(demo());
    const argo = parseAllDocuments(art.get('manifests/argocd.yaml')!).map((d) => d.toJS());
    const es = argo.find((d) => d.kind === 'ExternalSecret');
    expect(es.spec.target).toMatchObject({ name: 'argocd-secret', creationPolicy: 'Merge', deletionPolicy: 'Retain' });
    expect(argo.find((d) => d.kind === 'Secret').metadata.name).toBe('argocd-secret');
    const reg = parseAllDocuments(art.get('manifests/registry.yaml')!).map((d) => d.toJS());
    const tpl = reg.find((d) => d.kind === 'ExternalSecret').spec.target.template;
    expect(tpl.type).toBe('kubernetes.io/dockerconfigjson');
    expect(tpl.engineVersion).toBe('v2');
    expect(Object.keys(tpl.data)).toEqual(['.dockerconfigjson']);
  });

  it('kind config maps the Vault NodePort and the dashboard to host ports', () => {
    const kind = parseYaml(renderArtifacts(demo()).get('kind/cluster.yaml')!);
    expect(kind.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(kind.nodes[0].extraPortMappings).toEqual([
      { containerPort: 30200, hostPort: 8200, listenAddress: '127.0.0.1', protocol: 'TCP' },
      { containerPort: 30080, hostPort: 8080, listenAddress: '127.0.0.1', protocol: 'TCP' },
    ]);
  });

  it('demo Vault values: standalone, TLS off, NodePort, the injector on (an app uses it) with the server image as agent, pinned image', () => {
    const v = parseYaml(renderArtifacts(demo()).get('helm/vault-values.yaml')!);
    expect(v.global.tlsDisable).toBe(true);
    expect(v.server.standalone.enabled).toBe(true);
    expect(v.server.service).toEqual({ type: 'NodePort', nodePort: 30200 });
    expect(v.server.image).toEqual({ repository: 'hashicorp/vault', tag: '2.0.4' });
    expect(v.injector).toEqual({
      enabled: true,
      replicas: 1,
      agentImage: { repository: 'hashicorp/vault', tag: '2.0.4' },
      // Small requests: with the charts' 250m per agent container a 2-core node could not schedule production's Vault pods.
      agentDefaults: { cpuRequest: '10m', cpuLimit: '500m', memRequest: '32Mi', memLimit: '128Mi' },
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
    });
  });

  it('production Vault values: HA Raft with a retry_join per replica, TLS, audit storage, no NodePort', () => {
    const p = production();
    const v = parseYaml(renderArtifacts(p).get('helm/vault-values.yaml')!);
    expect(v.global.tlsDisable).toBe(false);
    expect(v.server.ha).toMatchObject({ enabled: true, replicas: 3, raft: { enabled: true } });
    expect(v.server.ha.raft.config).toBe(raftConfig(p));
    expect(v.server.ha.raft.config.match(/retry_join \{/g)).toHaveLength(3);
    expect(v.server.ha.raft.config).toContain('leader_api_addr         = "https://vault-2.vault-internal:8200"');
    expect(v.server.auditStorage.enabled).toBe(true);
    expect(v.server.service.type).toBe('ClusterIP');
    expect(v.server.affinity).toBe(''); // single-node kind: anti-affinity relaxed
    const kind = parseYaml(renderArtifacts(p).get('kind/cluster.yaml')!);
    expect(kind.nodes[0].extraPortMappings.map((m: any) => m.containerPort)).toEqual([30080]);
  });

  it('no [passwords] value appears in any artifact, in either profile', () => {
    const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {} });
    const values = Object.values(loaded.passwords).filter((v) => v !== '');
    expect(values.length).toBeGreaterThan(3);
    for (const profile of ['demo', 'production']) {
      const art = renderArtifacts(buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile })));
      for (const [name, content] of art) for (const v of values) expect(content.includes(v), `${v} in ${profile} ${name}`).toBe(false);
    }
  });
});

describe('line diff', () => {
  it('marks added and removed lines', () => {
    expect(lineDiff(['a', 'b', 'c'], ['a', 'x', 'c'])).toEqual(['  a', '+ x', '- b', '  c']);
  });
});

describe('manifests are rendered once per plan', () => {
  it('the same plan and namespace plan give equal copies: editing one leaves the next untouched; another namespace plan of that name renders its own', async () => {
    const { namespaceManifests, sampleManifests } = await import('../../scripts/plan/manifests.ts');
    const p = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
    const ns = p.namespaces.find((n) => n.samples.length && n.externalSecrets.length > 1)!;
    const first = namespaceManifests(p, ns);
    first[0]!.metadata.labels = { edited: 'yes' };
    const second = namespaceManifests(p, ns);
    expect(second[0]!.metadata.labels).not.toHaveProperty('edited');
    expect(second).toEqual(namespaceManifests(buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} })), ns));
    const fewer = namespaceManifests(p, { ...ns, externalSecrets: ns.externalSecrets.slice(0, 1), samples: [] });
    expect(fewer.filter((o) => o.kind === 'ExternalSecret')).toHaveLength(1);
    expect(second.filter((o) => o.kind === 'ExternalSecret')).toHaveLength(ns.externalSecrets.length);
    const sample = sampleManifests(p, ns, ns.samples[0]!);
    sample[0]!.metadata.name = 'edited';
    expect(sampleManifests(p, ns, ns.samples[0]!)[0]!.metadata.name).not.toBe('edited');
  });
});
