// Production TLS: vaultlab's own CA and a server certificate for Vault, generated with openssl
// into the state dir (keys 0600; private keys are only ever file paths on openssl's command
// line, never values). Reused while valid and matching; regenerated otherwise.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { VAULT_CA_SECRET } from '../plan/build.ts';
import { MANAGED_BY, type KubeObject } from '../plan/manifests.ts';
import { VaultlabError } from '../lib/errors.ts';

export interface TlsFiles {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  caPem: string;
  /** "reused" or "generated" */
  action: 'reused' | 'generated';
}

/** Every name Vault is reached by: services, pods behind the headless service, loopback. */
export function vaultSans(plan: Plan): string[] {
  const { release: r, namespace: ns } = plan.vault;
  return [
    r, `${r}.${ns}`, `${r}.${ns}.svc`, `${r}.${ns}.svc.cluster.local`,
    `${r}-active`, `${r}-active.${ns}.svc`, `${r}-active.${ns}.svc.cluster.local`,
    `${r}-internal`, `*.${r}-internal`, `*.${r}-internal.${ns}.svc`, `*.${r}-internal.${ns}.svc.cluster.local`,
    'localhost', '127.0.0.1',
  ];
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new VaultlabError('openssl is needed to generate the production certificates', { hint: 'Install openssl, or set production.tls = "cert-manager".' });
  if (r.status !== 0) throw new VaultlabError(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

function stillValid(certFile: string, caFile: string, sans: string[]): boolean {
  if (!existsSync(certFile) || !existsSync(caFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const ca = new X509Certificate(readFileSync(caFile));
    const in30Days = Date.now() + 30 * 86400_000;
    if (new Date(cert.validTo).getTime() < in30Days || new Date(ca.validTo).getTime() < in30Days) return false;
    if (!cert.verify(ca.publicKey)) return false;
    const have = (cert.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS|IP Address):/, ''));
    return sans.every((s) => have.includes(s));
  } catch {
    return false;
  }
}

export function ensureVaultTls(plan: Plan, state: StateDir): TlsFiles {
  const dir = join(state.ensure().path, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { caCert: join(dir, 'ca.crt'), serverCert: join(dir, 'tls.crt'), serverKey: join(dir, 'tls.key') };
  const sans = vaultSans(plan);
  let action: TlsFiles['action'] = 'reused';
  if (!stillValid(files.serverCert, files.caCert, sans)) {
    action = 'generated';
    if (!existsSync(files.caCert) || !stillValid(files.caCert, files.caCert, [])) {
      openssl(['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '825', '-subj', `/CN=vaultlab ${plan.cluster.name} CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    }
    const ext = `subjectAltName=${sans.map((s) => (/^\d+\.\d+\.\d+\.\d+$/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`;
    writeFileSync(join(dir, 'server.ext'), ext);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'server.csr', '-subj', `/CN=${plan.vault.release}.${plan.vault.namespace}.svc`], dir);
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '397', '-extfile', 'server.ext'], dir);
  }
  for (const f of ['ca.key', 'tls.key']) if (existsSync(join(dir, f))) chmodSync(join(dir, f), 0o600);
  return { dir, ...files, caPem: readFileSync(files.caCert, 'utf8'), action };
}

const b64 = (file: string) => readFileSync(file).toString('base64');

/** Secret vault-tls (Vault's namespace) and vault-ca (each app namespace, for SecretStores). */
export function tlsSecrets(plan: Plan, tls: TlsFiles): KubeObject[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'vault-tls', namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(tls.serverCert), 'tls.key': b64(tls.serverKey), 'ca.crt': b64(tls.caCert) },
    },
    ...caSecretsFromPem(plan, tls.caPem),
  ];
}

/**
 * production.tls = "cert-manager": a self-signed bootstrap issuer, a CA certificate, a CA issuer
 * and Vault's certificate in Secret vault-tls (tls.crt, tls.key, ca.crt), as the chart mounts it.
 */
export function certManagerManifests(plan: Plan): KubeObject[] {
  const ns = plan.vault.namespace;
  const labels = { ...MANAGED_BY };
  const sans = vaultSans(plan);
  return [
    { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'vaultlab-selfsigned', namespace: ns, labels }, spec: { selfSigned: {} } },
    {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: 'vaultlab-ca', namespace: ns, labels },
      spec: { isCA: true, commonName: `vaultlab ${plan.cluster.name} CA`, secretName: 'vaultlab-ca', duration: '19800h', privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { name: 'vaultlab-selfsigned', kind: 'Issuer', group: 'cert-manager.io' } },
    },
    { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'vaultlab-ca', namespace: ns, labels }, spec: { ca: { secretName: 'vaultlab-ca' } } },
    {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: 'vault-tls', namespace: ns, labels },
      spec: {
        secretName: 'vault-tls',
        duration: '9528h',
        commonName: `${plan.vault.release}.${ns}.svc`,
        dnsNames: sans.filter((s) => !/^\d+\.\d+\.\d+\.\d+$/.test(s)),
        ipAddresses: sans.filter((s) => /^\d+\.\d+\.\d+\.\d+$/.test(s)),
        usages: ['server auth', 'client auth', 'digital signature', 'key encipherment'],
        privateKey: { algorithm: 'RSA', size: 2048 },
        issuerRef: { name: 'vaultlab-ca', kind: 'Issuer', group: 'cert-manager.io' },
      },
    },
  ];
}

/** The CA vaultlab's own client trusts, wherever it came from (kept in the state dir). */
export function caSecretsFromPem(plan: Plan, caPem: string): KubeObject[] {
  return plan.namespaces.map((ns) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: VAULT_CA_SECRET, namespace: ns.name, labels: { ...MANAGED_BY } },
    data: { 'ca.crt': Buffer.from(caPem).toString('base64') },
  }));
}
