// Production TLS: the CA and server certificate vaultlab generates (node:crypto, no openssl),
// checked by three independent parsers (Node's X509Certificate, `openssl verify`, and Go's
// crypto/x509 inside a real OpenBao serving them), their reuse and regeneration rules, the
// Kubernetes Secrets made from them, and the cert-manager alternative.
import { describe, it, expect, afterAll } from 'vitest';
import { startForBlock } from './servers.ts';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBao, type BaoServer } from '../harness/bao.ts';
import { VaultClient } from '../../scripts/adapters/vault.ts';
import { loadConfig, loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts, raftConfig } from '../../scripts/plan/render.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { ensureVaultTls, tlsSecrets, vaultTlsSecret, caSecretsFromPem, certManagerManifests, vaultSans, RENEW_BEFORE_DAYS } from '../../scripts/tls/certs.ts';
import { issueCertificate, newKey, certPem, keyPem } from '../../scripts/tls/x509.ts';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { parseAllDocuments } from 'yaml';
import type { Plan } from '../../scripts/plan/types.ts';

const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {}, profile: 'production' }));
const newState = () => new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-tls-')), '.vaultlab', 'vaultlab'));
const DAY = 86_400_000;
const mode = (file: string) => statSync(file).mode & 0o777;
const withVault = (p: Plan, v: Partial<Plan['vault']>): Plan => ({ ...p, vault: { ...p.vault, ...v } });

function openssl(args: string[]) {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is needed for this cross-check: ${r.error.message}`);
  return r;
}

describe('generated CA and server certificate', () => {
  it('names every address Vault is reached by: services, each pod, the headless wildcards, loopback', () => {
    const sans = vaultSans(plan);
    for (const n of [
      'vault', 'vault.vault', 'vault.vault.svc', 'vault.vault.svc.cluster.local',
      'vault-active', 'vault-active.vault.svc', 'vault-active.vault.svc.cluster.local', 'vault-standby.vault.svc',
      '*.vault-internal', '*.vault-internal.vault.svc.cluster.local',
      'vault-0.vault-internal', 'vault-1.vault-internal', 'vault-2.vault-internal',
      'localhost', '127.0.0.1',
    ]) expect(sans).toContain(n);
    // The retry_join server names render.ts writes are all in the certificate.
    const rendered = [...raftConfig(plan).matchAll(/leader_tls_servername\s+= "([^"]+)"/g)].map((m) => m[1]);
    expect(rendered).toHaveLength(3);
    for (const n of rendered) expect(sans).toContain(n);
  });

  it('writes a CA and a server certificate into the state dir: keys 0600, directory 0700, valid for every name', () => {
    const state = newState();
    const tls = ensureVaultTls(plan, state);
    expect(tls).toMatchObject({ action: 'generated', ca: 'generated', dir: state.file('tls') });
    expect(mode(tls.dir)).toBe(0o700);
    for (const f of [tls.caKey, tls.serverKey, tls.caCert, tls.serverCert]) expect(mode(f)).toBe(0o600);

    const ca = new X509Certificate(readFileSync(tls.caCert));
    const cert = new X509Certificate(readFileSync(tls.serverCert));
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain('CN=vaultlab vaultlab CA');
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(tls.serverKey)))).toBe(true);
    expect(ca.checkPrivateKey(createPrivateKey(readFileSync(tls.caKey)))).toBe(true);
    expect(cert.checkHost('vault.vault.svc')).toBe('vault.vault.svc');
    expect(cert.checkHost('vault-1.vault-internal')).toBe('vault-1.vault-internal');
    expect(cert.checkHost('vault-2.vault-internal.vault.svc.cluster.local')).toBeDefined();
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('vault.other.svc')).toBeUndefined();
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1']));
    const days = (new Date(cert.validTo).getTime() - Date.now()) / DAY;
    expect(days).toBeGreaterThan(390);
    expect(days).toBeLessThan(398);
    expect(tls.caPem).toBe(readFileSync(tls.caCert, 'utf8'));

    // An independent parser and verifier: OpenSSL's, for a TLS server and a client.
    expect(openssl(['verify', '-CAfile', tls.caCert, '-purpose', 'sslserver', tls.serverCert]).stdout).toContain(': OK');
    expect(openssl(['verify', '-CAfile', tls.caCert, '-purpose', 'sslclient', tls.serverCert]).status).toBe(0);
    expect(openssl(['x509', '-in', tls.serverCert, '-noout', '-checkhost', 'vault-0.vault-internal']).stdout).toMatch(/does match/);
    expect(openssl(['x509', '-in', tls.caCert, '-noout', '-text']).stdout).toMatch(/CA:TRUE, pathlen:0[\s\S]*Certificate Sign, CRL Sign/);
  });

  it('reuses both while valid and matching: nothing is rewritten', () => {
    const state = newState();
    const first = ensureVaultTls(plan, state);
    const before = [first.caCert, first.caKey, first.serverCert, first.serverKey].map((f) => readFileSync(f, 'utf8'));
    const again = ensureVaultTls(plan, state);
    expect(again).toMatchObject({ action: 'reused', ca: 'reused', reasons: [] });
    expect([again.caCert, again.caKey, again.serverCert, again.serverKey].map((f) => readFileSync(f, 'utf8'))).toEqual(before);
    // Still good 300 days on; within 30 days of expiry it is renewed, by the same CA.
    expect(ensureVaultTls(plan, state, { now: new Date(Date.now() + 300 * DAY) }).action).toBe('reused');
    const late = ensureVaultTls(plan, state, { now: new Date(Date.now() + (397 - RENEW_BEFORE_DAYS + 2) * DAY) });
    expect(late).toMatchObject({ action: 'generated', ca: 'reused' });
    expect(late.reasons.join()).toMatch(/tls\.crt expires within 30 days/);
    expect(readFileSync(late.caCert, 'utf8')).toBe(before[0]);
  });

  it('regenerates the server certificate when the names change (release renamed, replicas added)', () => {
    const state = newState();
    const first = ensureVaultTls(plan, state);
    const renamed = ensureVaultTls(withVault(plan, { release: 'bao' }), state);
    expect(renamed).toMatchObject({ action: 'generated', ca: 'reused' });
    expect(renamed.reasons.join()).toMatch(/tls\.crt names lack bao, .*; no longer wanted vault, /);
    expect(new X509Certificate(readFileSync(renamed.serverCert)).checkHost('bao.vault.svc')).toBe('bao.vault.svc');
    expect(readFileSync(renamed.caCert, 'utf8')).toBe(first.caPem);
    const five = ensureVaultTls(withVault(withVault(plan, { release: 'bao' }), { ha: { enabled: true, replicas: 5 } }), state);
    expect(five.reasons.join()).toMatch(/lack bao-3\.bao-internal, bao-4\.bao-internal/);
  });

  it('regenerates a certificate whose key does not fit, or that another CA signed; an expired or broken CA is replaced', () => {
    const state = newState();
    const first = ensureVaultTls(plan, state);
    writeFileSync(first.serverKey, keyPem(newKey()));
    const refit = ensureVaultTls(plan, state);
    expect(refit).toMatchObject({ action: 'generated', ca: 'reused' });
    expect(refit.reasons.join()).toMatch(/tls\.key does not belong to .*tls\.crt/);

    // A certificate signed by some other CA, with the right names.
    const other = ensureVaultTls(plan, newState());
    writeFileSync(refit.serverCert, readFileSync(other.serverCert));
    writeFileSync(refit.serverKey, readFileSync(other.serverKey));
    const resigned = ensureVaultTls(plan, state);
    expect(resigned.reasons.join()).toMatch(/not signed by the CA in ca\.crt/);
    expect(new X509Certificate(readFileSync(resigned.serverCert)).checkIssued(new X509Certificate(readFileSync(resigned.caCert)))).toBe(true);

    // An expired CA: a new CA, and a new certificate from it.
    const caKey = newKey();
    const expired = issueCertificate({ subject: { commonName: 'old CA' }, publicKey: createPublicKey(caKey), selfKey: caKey, ca: true, notBefore: new Date(Date.now() - 800 * DAY), notAfter: new Date(Date.now() - DAY) });
    writeFileSync(resigned.caCert, certPem(expired));
    writeFileSync(resigned.caKey, keyPem(caKey));
    const renewed = ensureVaultTls(plan, state);
    expect(renewed).toMatchObject({ action: 'generated', ca: 'generated' });
    expect(renewed.reasons.join()).toMatch(/ca\.crt has expired/);

    writeFileSync(renewed.caCert, 'not a certificate');
    const broken = ensureVaultTls(plan, state);
    expect(broken).toMatchObject({ action: 'generated', ca: 'generated' });
    expect(broken.reasons.join()).toMatch(/ca\.crt is not a certificate/);
  });

  it('a CA key moved offline: certificates are reused while valid, and a new CA is made only when one must be signed', () => {
    const state = newState();
    const first = ensureVaultTls(plan, state);
    rmSync(first.caKey);
    expect(ensureVaultTls(plan, state)).toMatchObject({ action: 'reused', ca: 'reused' });
    const renamed = ensureVaultTls(withVault(plan, { release: 'bao' }), state);
    expect(renamed).toMatchObject({ action: 'generated', ca: 'generated' });
    expect(renamed.reasons.join()).toMatch(/ca\.key is missing, so a new CA signs/);
    expect(mode(renamed.caKey)).toBe(0o600);
  });

  it('a CA of an earlier vaultlab version (openssl, RSA 3072) is kept and signs the new certificate', () => {
    const state = newState();
    const dir = state.ensure().file('tls');
    state.write('tls/.keep', '');
    const r = openssl(['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '825', '-subj', '/CN=vaultlab vaultlab CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    expect(r.status, r.stderr).toBe(0);
    const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const tls = ensureVaultTls(plan, state);
    expect(tls).toMatchObject({ action: 'generated', ca: 'reused', caPem });
    expect(openssl(['verify', '-CAfile', tls.caCert, '-purpose', 'sslserver', tls.serverCert]).stdout).toContain(': OK');
    expect(mode(tls.caKey)).toBe(0o600);
  });

  it('Secrets: vault-tls (tls.crt, tls.key, ca.crt) in Vault\'s namespace, vault-ca (ca.crt) in every app namespace', () => {
    const tls = ensureVaultTls(plan, newState());
    const secrets = tlsSecrets(plan, tls);
    const vaultTls = vaultTlsSecret(plan, tls);
    expect(secrets[0]).toEqual(vaultTls);
    expect(vaultTls).toMatchObject({ kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'vault-tls', namespace: 'vault', labels: { 'app.kubernetes.io/managed-by': 'vaultlab' } } });
    const data = vaultTls.data as Record<string, string>;
    expect(Object.keys(data)).toEqual(['tls.crt', 'tls.key', 'ca.crt']);
    expect(Buffer.from(data['tls.key']!, 'base64').toString()).toBe(readFileSync(tls.serverKey, 'utf8'));
    expect(Buffer.from(data['ca.crt']!, 'base64').toString()).toBe(tls.caPem);
    const ca = secrets.slice(1);
    expect(ca).toEqual(caSecretsFromPem(plan, tls.caPem));
    expect(ca.map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).toEqual(plan.namespaces.map((n) => `${n.name}/vault-ca`));
    for (const s of ca) {
      expect(Object.keys(s.data as object)).toEqual(['ca.crt']); // never the key
      expect(JSON.stringify(s)).not.toContain(data['tls.key']!.slice(0, 40));
    }
    // The names the SecretStores' caProvider and the chart's volume refer to.
    const store = plan.namespaces[0]!.secretStore;
    expect(store.caSecret).toEqual({ name: 'vault-ca', key: 'ca.crt' });
  });
});

describe('TLS listener of a real OpenBao with the generated certificate', () => {
  let bao: BaoServer;
  let caPem: string;
  startForBlock(async () => {
    const tls = ensureVaultTls(plan, newState());
    caPem = tls.caPem;
    bao = await startBao({ tls: { certFile: tls.serverCert, keyFile: tls.serverKey } });
  });
  afterAll(async () => bao?.stop());

  const get = (opts: { ca?: string; servername?: string }) =>
    new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      const req = request(`${bao.address}/v1/sys/seal-status`, { ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.servername ? { servername: opts.servername } : {}) }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it("vaultlab's client trusts Vault through the generated CA", async () => {
    const good = new VaultClient({ address: bao.address, caPem });
    try {
      expect((await good.sealStatus()).initialized).toBe(false);
    } finally {
      good.close();
    }
  });

  it('node https with the CA: verified for 127.0.0.1 and for the in-cluster names (SNI), refused for a name not in the certificate', async () => {
    expect((await get({ ca: caPem })).status).toBe(200);
    expect((await get({ ca: caPem, servername: 'vault.vault.svc' })).status).toBe(200);
    expect((await get({ ca: caPem, servername: 'vault-2.vault-internal' })).status).toBe(200);
    const wrongName = await get({ ca: caPem, servername: 'vault.elsewhere.svc' }).catch((e) => e);
    expect(wrongName.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('a client with another CA, or with only the system CAs, is refused with a certificate error', async () => {
    const other = ensureVaultTls(plan, newState());
    expect(other.caPem).not.toBe(caPem);
    const bad = new VaultClient({ address: bao.address, caPem: other.caPem, attempts: 1 });
    const err = await bad.sealStatus().catch((e) => e);
    bad.close();
    expect(err.message).toMatch(/certificate|self.signed|unable to verify/i);
    expect(err.hint).toMatch(/not signed by the CA vaultlab was given/);
    const system = await get({}).catch((e) => e);
    expect(system.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
    const otherCa = await get({ ca: other.caPem }).catch((e) => e);
    expect(otherCa.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  });
});

describe('production.tls = "cert-manager"', () => {
  const text = readFileSync(BUNDLED_CONFIG, 'utf8').replace('tls = "generated"', 'tls = "cert-manager"');
  const cmPlan = buildPlan(loadConfigText(text, 'config.toml', { env: {}, profile: 'production' }));

  it('renders the issuer chain, valid against cert-manager\'s schema, with the same names as the generated certificate', () => {
    expect(cmPlan.vault.tlsIssuer).toBe('cert-manager');
    const docs = parseAllDocuments(renderArtifacts(cmPlan).get('manifests/vault-tls-cert-manager.yaml')!).map((d) => d.toJS());
    expect(docs).toEqual(certManagerManifests(cmPlan));
    for (const d of docs) (d.kind === 'Issuer' ? new Issuer(d) : new Certificate(d)).validate();
    const [selfSigned, caCert, caIssuer, vaultCert] = docs;
    expect(selfSigned.spec).toEqual({ selfSigned: {} });
    expect(caCert.spec).toMatchObject({ isCA: true, issuerRef: { name: selfSigned.metadata.name, kind: 'Issuer' } });
    expect(caIssuer.spec.ca.secretName).toBe(caCert.spec.secretName);
    expect(vaultCert.spec).toMatchObject({ secretName: 'vault-tls', issuerRef: { name: caIssuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' } });
    expect([...vaultCert.spec.dnsNames, ...vaultCert.spec.ipAddresses].sort()).toEqual([...vaultSans(cmPlan)].sort());
    for (const d of docs) expect(d.metadata.namespace).toBe('vault');
    // Renewed well before expiry, like the generated one.
    const hours = (s: string) => Number(/^(\d+)h$/.exec(s)![1]);
    for (const c of [caCert, vaultCert]) expect(hours(c.spec.renewBefore)).toBeLessThan(hours(c.spec.duration));
  });

  it('a schema violation is caught by the same validation (an unknown private key algorithm)', () => {
    const bad = { ...certManagerManifests(cmPlan)[3]! } as any;
    bad.spec = { ...bad.spec, privateKey: { algorithm: 'DSA' } };
    expect(() => new Certificate(bad).validate()).toThrow(/algorithm/);
  });

  it('nothing for vaultlab\'s own CA is rendered in that mode, and the generated mode renders no cert-manager objects', () => {
    expect([...renderArtifacts(plan).keys()].some((k) => k.includes('cert-manager'))).toBe(false);
    const files = renderArtifacts(cmPlan);
    for (const [, text] of files) expect(text).not.toMatch(/BEGIN (EC |RSA )?PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});
