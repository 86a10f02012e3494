// Which kubeconfigs vaultlab speaks itself (adapters/kubeconfig.ts) and which go to client-node;
// what it reads from them; the errors for a broken one.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigFile, readKubeconfig } from '../../scripts/adapters/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'vaultlab-kubeconfig-'));
const b64 = (s: string) => Buffer.from(s).toString('base64');
function file(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc), { mode: 0o600 });
  return path;
}
const config = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://127.0.0.1:6443/', 'certificate-authority-data': b64('CA PEM') }) => ({
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'kind-demo',
  clusters: [{ name: 'kind-demo', cluster }],
  users: [{ name: 'kind-demo', user }],
  contexts: [
    { name: 'kind-demo', context: { cluster: 'kind-demo', user: 'kind-demo' } },
    { name: 'other', context: { cluster: 'kind-demo', user: 'nobody' } },
  ],
});

describe('readKubeconfig', () => {
  it("kind's kubeconfig (client certificate data): read directly, the server without its trailing slash", () => {
    const r = readKubeconfig({ kubeconfig: file('kind.yaml', config({ 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') })) });
    expect(r).toEqual({ target: { file: join(dir, 'kind.yaml'), context: 'kind-demo', server: 'https://127.0.0.1:6443', ca: 'CA PEM', insecureSkipTlsVerify: false, tlsServerName: undefined, cert: 'CERT', key: 'KEY', token: undefined } });
  });

  it('files named relative to the kubeconfig, a token file, TLS options, another context with no such user', () => {
    writeFileSync(join(dir, 'ca.crt'), 'CA FROM FILE');
    writeFileSync(join(dir, 'token'), 'tok\n');
    const path = file('files.yaml', config({ tokenFile: 'token' }, { server: 'https://api.example:443', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes', 'insecure-skip-tls-verify': false }));
    const r = readKubeconfig({ kubeconfig: path });
    expect(r).toMatchObject({ target: { ca: 'CA FROM FILE', token: 'tok', tlsServerName: 'kubernetes', cert: undefined } });
    expect(readKubeconfig({ kubeconfig: path, context: 'other' })).toMatchObject({ target: { context: 'other', token: undefined, cert: undefined } });
  });

  it('exec and auth-provider plugins, basic auth, impersonation, a proxy and several KUBECONFIG files go to client-node, saying why', () => {
    const cases: [Record<string, unknown>, Record<string, unknown> | undefined, RegExp][] = [
      [{ exec: { command: 'aws', args: ['eks', 'get-token'] } }, undefined, /uses exec/],
      [{ 'auth-provider': { name: 'oidc' } }, undefined, /uses auth-provider/],
      [{ username: 'u', password: 'p' }, undefined, /uses username, password/],
      [{ token: 't', as: 'someone' }, undefined, /uses as/],
      [{ token: 't' }, { server: 'https://x', 'proxy-url': 'http://proxy:3128' }, /uses proxy-url/],
    ];
    for (const [user, cluster, why] of cases) {
      const r = readKubeconfig({ kubeconfig: file('plugin.yaml', config(user, cluster)) });
      expect('clientNode' in r && r.clientNode, JSON.stringify(user)).toMatch(why);
    }
    expect(readKubeconfig({}, { KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'b')}` })).toMatchObject({ clientNode: expect.stringMatching(/several files/) });
  });

  it('the default file: KUBECONFIG when it names one, else ~/.kube/config', () => {
    expect(kubeconfigFile(undefined, { KUBECONFIG: '/k/one', HOME: '/h' })).toEqual({ file: '/k/one' });
    expect(kubeconfigFile(undefined, { HOME: '/h' })).toEqual({ file: '/h/.kube/config' });
    expect(kubeconfigFile('/given', { KUBECONFIG: '/k/one' })).toEqual({ file: '/given' });
  });

  it('errors name the file and what is wrong, with a hint', () => {
    expect(() => readKubeconfig({ kubeconfig: join(dir, 'absent') })).toThrow(`cannot load kubeconfig ${join(dir, 'absent')}: no such file`);
    expect(() => readKubeconfig({ kubeconfig: file('empty.yaml', '') })).toThrow(/it is empty or not a kubeconfig/);
    expect(() => readKubeconfig({ kubeconfig: file('bad.yaml', 'a: [') })).toThrow(/cannot load kubeconfig .*bad\.yaml/);
    const ok = file('ok.yaml', config({ token: 't' }));
    expect(() => readKubeconfig({ kubeconfig: ok, context: 'nope' })).toThrow('kubeconfig has no context "nope"');
    expect(() => readKubeconfig({ kubeconfig: file('nocurrent.yaml', { ...config({ token: 't' }), 'current-context': undefined }) })).toThrow(/it has no current context/);
    expect(() => readKubeconfig({ kubeconfig: file('noserver.yaml', config({ token: 't' }, {})) })).toThrow(/names cluster "kind-demo", which has no server/);
    expect(() => readKubeconfig({ kubeconfig: file('nofile.yaml', config({ 'client-certificate': 'missing.crt', 'client-key': 'missing.key' })) })).toThrow(/its client-certificate missing\.crt/);
  });
});
