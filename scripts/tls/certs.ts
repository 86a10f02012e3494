// Production TLS: vaultlab's own CA and Vault's server certificate, in the state dir's tls/
// (ca.key and tls.key 0600, written atomically; every file there 0600, the directory 0700).
// Generated with node:crypto (see x509.ts for why no library and no openssl binary).
// Reused while valid: the CA and the certificate parse, the certificate is signed by the CA,
// neither expires within RENEW_BEFORE_DAYS, each key fits its certificate, and the
// certificate's names are exactly the ones Vault is reached by; otherwise regenerated (the CA
// only when it is itself unusable, so clients that trust it keep working).
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { VAULT_CA_SECRET } from '../plan/build.ts';
import { MANAGED_BY, type KubeObject } from '../plan/objects.ts';
import { VaultlabError } from '../lib/errors.ts';
import { checked, model } from '../plan/validate.ts';
import { certPem, isIpAddress, issueCertificate, keyPem, newKey } from './x509.ts';

export const TLS_SECRET = 'vault-tls';
export const TLS_STATE_DIR = 'tls';
export const CA_VALIDITY_DAYS = 1825;
/** At most 398 days: what TLS clients accept for a server certificate. */
export const SERVER_VALIDITY_DAYS = 397;
export const RENEW_BEFORE_DAYS = 30;
const DAY = 86_400_000;

export interface TlsFiles {
  dir: string;
  caCert: string;
  /** The CA key's path; the file may be moved offline (the certificate is reused while valid). */
  caKey: string;
  serverCert: string;
  serverKey: string;
  caPem: string;
  /** The server certificate: kept, or newly issued. */
  action: 'reused' | 'generated';
  /** The CA: kept, or newly created (clients must then be given the new ca.crt). */
  ca: 'reused' | 'generated';
  /** Why something was (re)generated; empty when everything was reused. */
  reasons: string[];
  notAfter: Date;
}

/** Every name Vault is reached by: services, each pod behind the headless service, loopback. */
export function vaultSans(plan: Plan): string[] {
  const { release: r, namespace: ns } = plan.vault;
  const internal = `${r}-internal`;
  const services = [r, `${r}-active`, ...(plan.vault.ha.enabled ? [`${r}-standby`] : [])];
  return [
    ...services.flatMap((s) => [s, `${s}.${ns}`, `${s}.${ns}.svc`, `${s}.${ns}.svc.cluster.local`]),
    internal, `${internal}.${ns}`, `${internal}.${ns}.svc`, `${internal}.${ns}.svc.cluster.local`,
    `*.${internal}`, `*.${internal}.${ns}`, `*.${internal}.${ns}.svc`, `*.${internal}.${ns}.svc.cluster.local`,
    // Each pod by name as well: OpenSSL-based clients (curl, Node) refuse a wildcard over a
    // single-label domain like "*.vault-internal"; Go (Vault's retry_join) accepts both.
    ...Array.from({ length: plan.vault.ha.replicas }, (_, i) => `${r}-${i}.${internal}`),
    'localhost', '127.0.0.1',
  ];
}

interface Loaded {
  cert: X509Certificate;
  der: Buffer;
  key: KeyObject | undefined;
}

function load(certFile: string, keyFile: string): Loaded | string {
  if (!existsSync(certFile)) return `${certFile} is missing`;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certFile));
  } catch (err) {
    return `${certFile} is not a certificate (${(err as Error).message})`;
  }
  let key: KeyObject | undefined;
  if (existsSync(keyFile)) {
    try {
      key = createPrivateKey(readFileSync(keyFile));
    } catch (err) {
      return `${keyFile} is not a private key (${(err as Error).message})`;
    }
    if (!cert.checkPrivateKey(key)) return `${keyFile} does not belong to ${certFile}`;
  }
  return { cert, der: cert.raw, key };
}

function expiryProblem(cert: X509Certificate, file: string, now: Date): string | undefined {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (from > now.getTime() + 5 * 60_000) return `${file} is not valid before ${cert.validFrom}`;
  if (to < now.getTime() + RENEW_BEFORE_DAYS * DAY) return `${file} ${to < now.getTime() ? 'has expired' : `expires within ${RENEW_BEFORE_DAYS} days`} (${cert.validTo})`;
  return undefined;
}

const sanList = (cert: X509Certificate): string[] =>
  (cert.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''));

function caProblem(ca: Loaded | string, file: string, now: Date): string | undefined {
  if (typeof ca === 'string') return ca;
  if (!ca.cert.ca) return `${file} is not a CA certificate`;
  if (!ca.cert.verify(ca.cert.publicKey)) return `${file} is not self-signed`;
  return expiryProblem(ca.cert, file, now);
}

function serverProblem(server: Loaded | string, ca: Loaded, files: { cert: string; key: string }, sans: string[], now: Date): string | undefined {
  if (typeof server === 'string') return server;
  if (!server.key) return `${files.key} is missing`;
  if (!server.cert.checkIssued(ca.cert) || !server.cert.verify(ca.cert.publicKey)) return `${files.cert} is not signed by the CA in ca.crt`;
  const expiry = expiryProblem(server.cert, files.cert, now);
  if (expiry) return expiry;
  const have = sanList(server.cert);
  const missing = sans.filter((s) => !have.includes(s));
  const extra = have.filter((s) => !sans.includes(s));
  if (missing.length || extra.length) {
    return `${files.cert} names ${[missing.length ? `lack ${missing.join(', ')}` : '', extra.length ? `no longer wanted ${extra.join(', ')}` : ''].filter(Boolean).join('; ')}`;
  }
  return undefined;
}

export interface EnsureTlsOptions {
  /** The clock (tests). */
  now?: Date;
}

/**
 * The CA and Vault's certificate for this plan, from the state dir when still good, generated
 * otherwise. Never writes a key outside the state dir, never passes one to another process.
 */
export function ensureVaultTls(plan: Plan, state: StateDir, opts: EnsureTlsOptions = {}): TlsFiles {
  const now = opts.now ?? new Date();
  const dir = join(state.ensure().path, TLS_STATE_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const f = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), serverCert: join(dir, 'tls.crt'), serverKey: join(dir, 'tls.key') };
  const rel = (name: string) => `${TLS_STATE_DIR}/${name}`;
  const sans = vaultSans(plan);
  const reasons: string[] = [];

  let ca = load(f.caCert, f.caKey);
  let caAction: TlsFiles['ca'] = 'reused';
  const caBad = caProblem(ca, 'ca.crt', now);
  if (caBad) reasons.push(caBad);
  let action: TlsFiles['action'] = 'reused';
  const serverBad = caBad ? 'the CA is being replaced' : serverProblem(load(f.serverCert, f.serverKey), ca as Loaded, { cert: 'tls.crt', key: 'tls.key' }, sans, now);
  if (serverBad) {
    if (!caBad) reasons.push(serverBad);
    if (caBad || !(ca as Loaded).key) {
      if (!caBad) reasons.push('ca.key is missing, so a new CA signs the new certificate');
      const key = newKey();
      const der = issueCertificate({
        subject: { organization: 'vaultlab', commonName: `vaultlab ${plan.cluster.name} CA` },
        publicKey: createPublicKey(key),
        selfKey: key,
        notBefore: new Date(now.getTime() - 5 * 60_000),
        notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY),
        ca: true,
      });
      // Key first: a crash in between leaves a key without its certificate, found unusable next time.
      state.write(rel('ca.key'), keyPem(key));
      state.write(rel('ca.crt'), certPem(der));
      ca = { cert: new X509Certificate(der), der, key };
      caAction = 'generated';
    }
    const issuer = ca as Loaded;
    const key = newKey();
    const caEnd = new Date(issuer.cert.validTo).getTime();
    const der = issueCertificate({
      subject: { organization: 'vaultlab', commonName: `${plan.vault.release}.${plan.vault.namespace}.svc` },
      publicKey: createPublicKey(key),
      issuer: { certDer: issuer.der, key: issuer.key! },
      notBefore: new Date(now.getTime() - 5 * 60_000),
      notAfter: new Date(Math.min(now.getTime() + SERVER_VALIDITY_DAYS * DAY, caEnd)),
      sans,
    });
    state.write(rel('tls.key'), keyPem(key));
    state.write(rel('tls.crt'), certPem(der));
    action = 'generated';
  }
  // Leftovers of the openssl-based generation of earlier versions.
  for (const old of ['server.csr', 'server.ext', 'ca.srl']) rmSync(join(dir, old), { force: true });
  for (const file of Object.values(f)) if (existsSync(file)) chmodSync(file, 0o600);
  const caPem = readFileSync(f.caCert, 'utf8');
  return {
    dir,
    ...f,
    caPem,
    action,
    ca: caAction,
    reasons,
    notAfter: new Date(new X509Certificate(readFileSync(f.serverCert)).validTo),
  };
}

const b64 = (file: string) => readFileSync(file).toString('base64');

/** Secret vault-tls for Vault's namespace: what the chart mounts at .../userconfig/vault-tls. */
export function vaultTlsSecret(plan: Plan, tls: TlsFiles): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: TLS_SECRET, namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(tls.serverCert), 'tls.key': b64(tls.serverKey), 'ca.crt': b64(tls.caCert) },
  };
}

/** Secret vault-tls (Vault's namespace) and vault-ca (each app namespace, for SecretStores). */
export function tlsSecrets(plan: Plan, tls: TlsFiles): KubeObject[] {
  return [vaultTlsSecret(plan, tls), ...caSecretsFromPem(plan, tls.caPem)];
}

/** Secret vault-ca (ca.crt) in each app namespace: the SecretStores' caProvider. */
export function caSecretsFromPem(plan: Plan, caPem: string): KubeObject[] {
  return plan.namespaces.map((ns) => caSecret(ns.name, caPem));
}

/** Secret vault-ca (ca.crt) in one namespace. */
export function caSecret(namespace: string, caPem: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: VAULT_CA_SECRET, namespace, labels: { ...MANAGED_BY } },
    data: { 'ca.crt': Buffer.from(caPem).toString('base64') },
  };
}

/**
 * production.tls = "cert-manager": a self-signed bootstrap issuer, a CA certificate, a CA issuer
 * and Vault's certificate in Secret vault-tls (tls.crt, tls.key, ca.crt), as the chart mounts it.
 * Same names as the generated certificate; renewed RENEW_BEFORE_DAYS before expiry.
 */
export function certManagerManifests(plan: Plan): KubeObject[] {
  const ns = plan.vault.namespace;
  const labels = { ...MANAGED_BY };
  const sans = vaultSans(plan);
  const h = (days: number) => `${days * 24}h`;
  const ref = (name: string) => ({ name, kind: 'Issuer', group: 'cert-manager.io' });
  return [
    checked(model.Issuer({ metadata: { name: 'vaultlab-selfsigned', namespace: ns, labels }, spec: { selfSigned: {} } }), 'Issuer vaultlab-selfsigned'),
    checked(
      model.Certificate({
        metadata: { name: 'vaultlab-ca', namespace: ns, labels },
        spec: {
          isCA: true,
          commonName: `vaultlab ${plan.cluster.name} CA`,
          subject: { organizations: ['vaultlab'] },
          secretName: 'vaultlab-ca',
          duration: h(CA_VALIDITY_DAYS),
          renewBefore: h(RENEW_BEFORE_DAYS),
          privateKey: { algorithm: 'ECDSA', size: 256 },
          issuerRef: ref('vaultlab-selfsigned'),
        },
      }),
      'Certificate vaultlab-ca',
    ),
    checked(model.Issuer({ metadata: { name: 'vaultlab-ca', namespace: ns, labels }, spec: { ca: { secretName: 'vaultlab-ca' } } }), 'Issuer vaultlab-ca'),
    checked(
      model.Certificate({
        metadata: { name: TLS_SECRET, namespace: ns, labels },
        spec: {
          secretName: TLS_SECRET,
          duration: h(SERVER_VALIDITY_DAYS),
          renewBefore: h(RENEW_BEFORE_DAYS),
          commonName: `${plan.vault.release}.${ns}.svc`,
          subject: { organizations: ['vaultlab'] },
          dnsNames: sans.filter((s) => !isIpAddress(s)),
          ipAddresses: sans.filter(isIpAddress),
          usages: ['server auth', 'client auth', 'digital signature', 'key encipherment'],
          privateKey: { algorithm: 'RSA', size: 2048, rotationPolicy: 'Always' },
          issuerRef: ref('vaultlab-ca'),
        },
      }),
      `Certificate ${TLS_SECRET}`,
    ),
  ];
}
