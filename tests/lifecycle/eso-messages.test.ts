// ESO's Warning Event messages, exactly as the ESO v0.17 controller wrote them against OpenBao
// in tests/lifecycle/synced.test.ts, decoded without a Vault token (no drift lookup): the cause
// and fix come from the message and the plan alone. synced.test.ts covers the live path.
import { describe, it, expect } from 'vitest';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';
import { compactEsoMessage, diagnoseEso } from '../../scripts/lifecycle/eso-diagnose.ts';

const plan = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} }));
const ns = (name: string) => plan.namespaces.find((n) => n.name === name)!;
const CONDITION = 'SecretSyncedError: could not get secret data from provider';

const MESSAGES = {
  denied: 'error processing spec.data[0] (key: webapp/db), err: cannot read secret data from Vault: Error making API request.\n\nURL: GET http://127.0.0.1:46643/v1/secret/data/webapp/db\nCode: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied\n\n',
  audience: 'error processing spec.data[0] (key: registry/creds), err: unable to log in to auth method: unable to log in with Kubernetes auth: Error making API request.\n\nURL: PUT http://127.0.0.1:46643/v1/auth/kubernetes/login\nCode: 403. Errors:\n\n* invalid audience (aud) claim: audience claim does not match any expected audience',
  noPath: 'error processing spec.data[0] (key: dashboard/config), err: Secret does not exist',
  noKey: 'error processing spec.data[1] (key: argocd/admin), err: cannot find secret data for key: "server.secretkey"',
  storeNotReady: 'error processing spec.data[0] (key: webapp/db), err: SecretStore "vault-backend" is not ready',
};

describe('ESO error messages decoded', () => {
  it('compacts the Vault client boilerplate', () => {
    expect(compactEsoMessage(MESSAGES.denied)).toBe('spec.data[0] (key: webapp/db): GET /v1/secret/data/webapp/db -> 403 permission denied');
    expect(compactEsoMessage(MESSAGES.audience)).toBe('spec.data[0] (key: registry/creds): PUT /v1/auth/kubernetes/login -> 403 invalid audience (aud) claim: audience claim does not match any expected audience');
    expect(compactEsoMessage(MESSAGES.noKey)).toBe('spec.data[1] (key: argocd/admin): cannot find secret data for key: "server.secretkey"');
  });

  it('permission denied names the role, the policy and the path/key', async () => {
    const d = await diagnoseEso({ plan, ns: ns('webapp'), kind: 'ExternalSecret', name: 'webapp-db', condition: CONDITION, event: MESSAGES.denied });
    expect(d.cause).toBe('Vault refused role eso-webapp-role reading secret/webapp/db (key "username" for DB_USERNAME): policy eso-policy does not allow it');
    expect(d.fix).toMatch(/^Check that policy eso-policy grants read on secret\/data\/webapp\/db; vaultlab vault configure/);
  });

  it('a login refused for its audience names the audiences', async () => {
    const d = await diagnoseEso({ plan, ns: ns('registry'), kind: 'ExternalSecret', name: 'regcred', condition: CONDITION, event: MESSAGES.audience });
    expect(d.cause).toBe('Vault refused ESO\'s login in "registry": audience mismatch (role eso-registry-role expects "vault", the SecretStore sends "vault")');
    expect(d.fix).toMatch(/audience .* equal; vaultlab vault configure/);
  });

  it('secret not found names the path, or the key', async () => {
    const path = await diagnoseEso({ plan, ns: ns('dashboard'), kind: 'ExternalSecret', name: 'dashboard-config', condition: CONDITION, event: MESSAGES.noPath });
    expect(path.cause).toBe('secret not found: secret/dashboard/config (key "greeting" for greeting) does not exist');
    expect(path.fix).toMatch(/^vaultlab seed/);
    const key = await diagnoseEso({ plan, ns: ns('argocd'), kind: 'ExternalSecret', name: 'argocd-secret', condition: CONDITION, event: MESSAGES.noKey });
    expect(key.cause).toBe('secret not found: key "server.secretkey" is missing at secret/argocd/admin');
  });

  it('a SecretStore not ready points at the store; without an event the condition is decoded', async () => {
    expect((await diagnoseEso({ plan, ns: ns('webapp'), kind: 'ExternalSecret', name: 'webapp-db', condition: CONDITION, event: MESSAGES.storeNotReady })).cause).toBe('its SecretStore webapp/vault-backend is not ready');
    const bare = await diagnoseEso({ plan, ns: ns('webapp'), kind: 'ExternalSecret', name: 'webapp-db', condition: CONDITION, event: undefined });
    expect(bare.fix).toBeTruthy();
  });
});
