// The production profile's rendered artifacts: Helm values whose server configuration really
// runs (the rendered HCL given to a real `bao server`, with the Secret's files where the chart
// mounts them), TLS wired end to end (chart volume <- Secret vault-tls <- generated files;
// SecretStores -> https + vault-ca), the NetworkPolicy, and `plan --profile production --out`
// on the bundled demo config: what it ignores, and not one [passwords] value in what it writes.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { baoBinary, freePort } from '../harness/bao.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfig, loadConfigText, BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { buildPlan, dataRoot } from '../../scripts/plan/build.ts';
import { renderArtifacts, vaultValues } from '../../scripts/plan/render.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { ensureVaultTls, vaultTlsSecret, vaultSans } from '../../scripts/tls/certs.ts';
import { initVault } from '../../scripts/vault/init.ts';
import { unsealVault, waitForActive } from '../../scripts/vault/seal.ts';
import { readInit } from '../../scripts/vault/keys.ts';
import type { Plan } from '../../scripts/plan/types.ts';

const loaded = loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' });
const plan = buildPlan(loaded);
const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS());
const CLI = join(PROJECT_ROOT, 'bin', 'vaultlab.js');

function vaultlab(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { ...process.env, NO_COLOR: '1', VAULTLAB_PROFILE: '', CI: 'true', ...opts.env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

describe('production Helm values', () => {
  const values = parseYaml(renderArtifacts(plan).get('helm/vault-values.yaml')!);
  const config: string = values.server.ha.raft.config;

  it('HA Raft with a retry_join for every replica, over TLS to each pod by a name in the certificate', () => {
    expect(values.server.ha).toMatchObject({ enabled: true, replicas: 3, raft: { enabled: true, setNodeId: true } });
    expect(values.server.standalone.enabled).toBe(false);
    const joins = [...config.matchAll(/retry_join \{([^}]*)\}/g)].map((m) => m[1]!);
    expect(joins).toHaveLength(3);
    const sans = vaultSans(plan);
    joins.forEach((j, i) => {
      expect(j).toContain(`leader_api_addr         = "https://vault-${i}.vault-internal:8200"`);
      expect(j).toContain('leader_ca_cert_file     = "/vault/userconfig/vault-tls/ca.crt"');
      const name = /leader_tls_servername\s+= "([^"]+)"/.exec(j)![1]!;
      expect(sans).toContain(name);
    });
    // More replicas, more stanzas (and more names in the certificate).
    const five = buildPlan(loadConfigText(readFileSync(BUNDLED_CONFIG, 'utf8').replace(/^replicas = 3/m, 'replicas = 5'), 'config.toml', { env: {}, profile: 'production' }));
    expect(vaultValues(five).server.ha.raft.config.match(/retry_join \{/g)).toHaveLength(5);
    expect(vaultSans(five)).toContain('vault-4.vault-internal');
  });

  it('TLS on (tlsDisable false), the injector only because an app uses it, audit storage, no NodePort, the TLS Secret mounted where the listener reads it', () => {
    expect(values.global.tlsDisable).toBe(false);
    // The bundled config's "reports" app uses the Agent Injector (delivery = "injector").
    expect(plan.apps.filter((a) => a.delivery === 'injector').map((a) => a.name)).toEqual(['reports', 'shop']);
    expect(values.injector.enabled).toBe(true);
    expect(values.server.auditStorage.enabled).toBe(true);
    expect(values.server.dataStorage.enabled).toBe(true);
    expect(values.server.service.type).toBe('ClusterIP');
    expect(JSON.stringify(values)).not.toMatch(/nodePort/i);
    expect(config).toMatch(/listener "tcp" \{[^}]*tls_cert_file\s+= "\/vault\/userconfig\/vault-tls\/tls\.crt"[^}]*tls_key_file\s+= "\/vault\/userconfig\/vault-tls\/tls\.key"/);
    expect(config).not.toMatch(/tls_disable/);
    const volume = values.server.volumes.find((v: any) => v.secret?.secretName === 'vault-tls');
    const mount = values.server.volumeMounts.find((m: any) => m.name === volume.name);
    expect(mount.mountPath).toBe('/vault/userconfig/vault-tls');
    // The Secret vaultlab applies has exactly the files the configuration names.
    const tls = ensureVaultTls(plan, new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-art-')), 'state')));
    const secret = vaultTlsSecret(plan, tls);
    expect(secret.metadata.name).toBe(volume.secret.secretName);
    for (const file of config.match(/\/vault\/userconfig\/vault-tls\/[a-z.]+/g)!) expect(Object.keys(secret.data as object)).toContain(file.split('/').pop());
    expect(values.server.extraEnvironmentVars.VAULT_CACERT).toBe('/vault/userconfig/vault-tls/ca.crt');
  });
});

/** A real `bao server` running the rendered server configuration, paths moved into `dir`. */
async function runRenderedConfig(p: Plan, dir: string): Promise<{ address: string; caPem: string; audit: string; child: ChildProcess; logs: () => string }> {
  const tls = ensureVaultTls(p, new StateDir(join(dir, 'state')));
  const root = dataRoot(p.vault.distribution);
  const [port, cport] = [await freePort(), await freePort()];
  mkdirSync(join(dir, 'data'));
  mkdirSync(join(dir, 'audit'));
  const rendered: string = vaultValues(p).server.ha.raft.config;
  const config = rendered
    .replace('address         = "[::]:8200"', `address         = "127.0.0.1:${port}"`)
    .replace('cluster_address = "[::]:8201"', `cluster_address = "127.0.0.1:${cport}"`)
    .replaceAll(`${root}/userconfig/vault-tls`, tls.dir)
    .replace(`path = "${root}/data"`, `path = "${join(dir, 'data')}"`)
    .replace(`${root}/audit/`, `${join(dir, 'audit')}/`)
    // Needs a pod (the chart's environment); the rest is the configuration as rendered.
    .replace('service_registration "kubernetes" {}', '');
  expect(config).not.toContain(`${root}/`);
  // The chart sets these through the environment (VAULT_API_ADDR, VAULT_CLUSTER_ADDR).
  writeFileSync(join(dir, 'config.hcl'), `${config}\napi_addr = "https://127.0.0.1:${port}"\ncluster_addr = "https://127.0.0.1:${cport}"\n`);
  let out = '';
  const child = spawn(baoBinary(), ['server', `-config=${join(dir, 'config.hcl')}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAO_ADDR: '', VAULT_ADDR: '' } });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const address = `https://127.0.0.1:${port}`;
  const probe = new VaultClient({ address, caPem: tls.caPem, attempts: 1, timeoutMs: 2000 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bao rejected the rendered configuration (exit ${child.exitCode}):\n${out}`);
    if (await probe.sealStatus().then(() => true, () => false)) break;
    if (Date.now() > deadline) throw new Error(`bao with the rendered configuration did not answer:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  probe.close();
  return { address, caPem: tls.caPem, audit: join(dir, 'audit', 'vault-audit.log'), child, logs: () => out };
}

describe('the rendered server configuration runs on a real server', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('hashicorp/vault values: bao accepts the listener (TLS from the Secret\'s files) and the raft storage with its retry_join stanzas', async () => {
    const s = await runRenderedConfig(plan, mkdtempSync(join(tmpdir(), 'vaultlab-rendered-')));
    children.push(s.child);
    const c = new VaultClient({ address: s.address, caPem: s.caPem });
    const st = await c.sealStatus();
    c.close();
    expect(st).toMatchObject({ initialized: false, sealed: true });
  });

  it('openbao values: the audit stanza render.ts adds creates the file audit device, which hashes what it logs', async () => {
    const bao = structuredClone(plan);
    bao.vault.distribution = 'openbao';
    bao.vault.audit.path = `${dataRoot('openbao')}/audit/vault-audit.log`;
    bao.vault.init = { ...bao.vault.init, shares: 1, threshold: 1 };
    // The OpenBao chart mounts everything under /openbao.
    expect(JSON.stringify(vaultValues(bao))).not.toContain('/vault/');
    expect(vaultValues(bao).server.extraEnvironmentVars).toMatchObject({ BAO_CACERT: '/openbao/userconfig/vault-tls/ca.crt' });
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-rendered-'));
    const s = await runRenderedConfig(bao, dir);
    children.push(s.child);
    const c = new VaultClient({ address: s.address, caPem: s.caPem });
    const state = new StateDir(join(dir, 'keys'));
    await initVault(c, bao, state);
    const init = readInit(state)!;
    await unsealVault(c, init.keys_base64);
    await waitForActive(c);
    c.setToken(init.root_token!);
    const audit = (await c.get<any>('sys/audit')).data;
    const table = audit.data ?? audit;
    expect(table['file/']).toMatchObject({ type: 'file', options: { file_path: s.audit } });
    await c.post('sys/mounts/probe', { type: 'kv', options: { version: '1' } });
    await c.post('probe/x', { value: 'not-in-the-audit-log' });
    c.close();
    const log = readFileSync(s.audit, 'utf8');
    expect(log).toContain('probe/x');
    expect(log).toContain('hmac-sha256:');
    expect(log).not.toContain('not-in-the-audit-log');
    expect(log).not.toContain(init.root_token!);
  });
});

describe('production manifests', () => {
  const art = renderArtifacts(plan);

  it('every SecretStore reaches Vault over https by a name in its certificate, trusting the vault-ca Secret', () => {
    const sans = vaultSans(plan);
    // Every namespace served by ESO (the injector's "reports" has no SecretStore).
    const esoNamespaces = plan.namespaces.filter((ns) => ns.deliveries.includes('eso'));
    expect(esoNamespaces.length).toBeGreaterThan(0);
    for (const ns of esoNamespaces) {
      const store = docs(art.get(`manifests/${ns.name}.yaml`)!).find((d) => d.kind === 'SecretStore');
      const vault = store.spec.provider.vault;
      expect(vault.server).toBe('https://vault.vault.svc:8200');
      expect(sans).toContain(new URL(vault.server).hostname);
      expect(vault.caProvider).toEqual({ type: 'Secret', name: 'vault-ca', key: 'ca.crt' });
      expect(vault.auth.kubernetes).toMatchObject({ mountPath: 'kubernetes', role: `eso-${ns.name}-role` });
    }
    expect(JSON.stringify([...art.values()])).not.toContain('http://vault');
  });

  it('a NetworkPolicy admits only ESO, labelled client namespaces and the Vault pods themselves', () => {
    const np = docs(art.get('manifests/vault-network-policy.yaml')!)[0];
    expect(np).toMatchObject({ kind: 'NetworkPolicy', metadata: { namespace: 'vault' }, spec: { policyTypes: ['Ingress'], podSelector: { matchLabels: { 'app.kubernetes.io/name': 'vault' } } } });
    const from = np.spec.ingress.flatMap((r: any) => r.from);
    expect(from).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'external-secrets' } } });
    expect(from).toContainEqual({ namespaceSelector: { matchLabels: { 'vaultlab.dev/vault-client': 'true' } } });
    expect(JSON.stringify(np)).not.toMatch(/ipBlock|0\.0\.0\.0/);
    const raft = np.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === 8201));
    expect(raft.from).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'vault' } } }]);
    // Every namespace with a SecretStore is labelled a client.
    for (const ns of plan.namespaces) {
      const namespace = docs(art.get(`manifests/${ns.name}.yaml`)!).find((d) => d.kind === 'Namespace');
      expect(namespace.metadata.labels['vaultlab.dev/vault-client']).toBe('true');
    }
  });

  it('keys stay out of the cluster; root is revoked; every seeded value is random', () => {
    const init = parseYaml(art.get('vault/init.yaml')!);
    expect(init).toMatchObject({ shares: 5, threshold: 3, audit: '/vault/audit/vault-audit.log' });
    expect(init.keysStored).toEqual(['.vaultlab/vaultlab/vault-init.json (0600, written once; move it offline)']);
    expect(init.rootToken).toMatch(/revoked after setup/);
    expect(plan.seeding.entries.every((e) => e.source.type === 'random')).toBe(true);
  });
});

describe('vaultlab plan --profile production on the bundled demo config', () => {
  it('works, says how many demo values it ignores, and writes no [passwords] value anywhere', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'vaultlab-plan-')), 'out');
    const r = vaultlab(['plan', '--profile', 'production', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('production profile: ignoring 5 demo value(s) from [passwords] (argocd_admin, dashboard_greeting, registry_token, registry_user, webapp_db_user); they are generated randomly instead');
    expect(r.stdout).toContain('HA Raft x3, TLS on, 5 key share(s) / threshold 3');
    const written = files(out);
    expect([...written.keys()]).toEqual(expect.arrayContaining(['helm/vault-values.yaml', 'manifests/vault-network-policy.yaml', 'vault/policies/vaultlab-setup.hcl', 'vault/policies/eso-webapp-policy.hcl']));
    const secrets = Object.values(loaded.passwords).filter((v) => v !== '');
    expect(secrets).toHaveLength(5);
    for (const [name, text] of written) {
      for (const v of secrets) expect(text.includes(v), `"${v}" in ${name}`).toBe(false);
      expect(text).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
    }
    expect(JSON.parse(written.get('plan.json')!).ignoredLiterals).toHaveLength(5);
  });

  it('an allowed literal from the environment is used by name, its value never written; the rest are still ignored', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-plan-'));
    writeFileSync(join(dir, 'config.toml'), readFileSync(BUNDLED_CONFIG, 'utf8').replace('allow_literals = []', 'allow_literals = ["registry_token"]'));
    const token = 'ci-registry-token-4f7a1c';
    const r = vaultlab(['plan', '--profile', 'production', '--out', join(dir, 'out')], { cwd: dir, env: { VAULTLAB_PASSWORD_REGISTRY_TOKEN: token } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ignoring 4 demo value\(s\)/);
    const written = files(join(dir, 'out'));
    expect(written.get('vault/seeding.yaml')).toContain('literal [passwords].registry_token');
    for (const [name, text] of written) expect(text.includes(token), `token in ${name}`).toBe(false);
    expect(r.stdout + r.stderr).not.toContain(token);
  });

  it('the demo value of an allowed name is still ignored: a value committed to git is not a secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-plan-'));
    writeFileSync(join(dir, 'config.toml'), readFileSync(BUNDLED_CONFIG, 'utf8').replace('allow_literals = []', 'allow_literals = ["registry_token"]'));
    const r = vaultlab(['plan', '--profile', 'production', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.plan.ignoredLiterals).toContain('registry_token');
    expect(r.stdout).not.toContain('demo-registry-token');
  });
});
