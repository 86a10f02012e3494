// production.tls = "cert-manager": the rendered issuer chain, and a clear stop when the cluster
// has no cert-manager (real API server; cert-manager itself cannot run without pods).
import { describe, it, expect, afterAll } from 'vitest';
import { setupOrFail } from '../harness/kube/setup.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startKube, type KubeServer } from '../harness/kube/server.ts';
import { Kube } from '../../scripts/adapters/kube.ts';
import { loadConfigText, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { renderArtifacts } from '../../scripts/plan/render.ts';
import { issueWithCertManager } from '../../scripts/steps/install.ts';
import { StateDir } from '../../scripts/lib/state.ts';
import { readFileSync } from 'node:fs';

const text = readFileSync(BUNDLED_CONFIG, 'utf8').replace('tls = "generated"', 'tls = "cert-manager"');
const plan = buildPlan(loadConfigText(text, 'config.toml', { env: {}, profile: 'production' }));

describe('cert-manager TLS mode', () => {
  let server: KubeServer;
  setupOrFail(async () => {
    server = await startKube();
  });
  afterAll(async () => server?.stop());

  it('renders a self-signed bootstrap issuer, a CA, a CA issuer and Vault\'s certificate into Secret vault-tls', () => {
    const docs = parseAllDocuments(renderArtifacts(plan).get('manifests/vault-tls-cert-manager.yaml')!).map((d) => d.toJS());
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(['Issuer/vaultlab-selfsigned', 'Certificate/vaultlab-ca', 'Issuer/vaultlab-ca', 'Certificate/vault-tls']);
    const cert = docs[3];
    expect(cert.spec.secretName).toBe('vault-tls');
    expect(cert.spec.issuerRef.name).toBe('vaultlab-ca');
    expect(cert.spec.dnsNames).toEqual(expect.arrayContaining(['vault.vault.svc', '*.vault-internal']));
    expect(cert.spec.ipAddresses).toEqual(['127.0.0.1']);
    expect(docs[2].spec.ca.secretName).toBe(docs[1].spec.secretName);
  });

  it('stops with the install command when the cluster has no cert-manager', async () => {
    const kube = await Kube.connect({ kubeconfig: server.kubeconfigPath });
    const state = new StateDir(join(mkdtempSync(join(tmpdir(), 'vaultlab-')), 'state'));
    const ctx = { plan, state, options: { preload: false, skipSamples: false, timeoutMs: 5000 } } as any;
    const err = await issueWithCertManager(ctx, kube).catch((e) => e);
    expect(err.message).toBe('production.tls = "cert-manager", but cert-manager is not installed in the cluster');
    expect(err.hint).toMatch(/helm install cert-manager/);
  });
});
