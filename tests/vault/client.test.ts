// The Vault client against a real OpenBao: retries only while Vault starts (connection errors,
// 5xx), never on 4xx; a timeout per request; the write counter; errors without values.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import http from 'node:http';
import { startBao, startBaoDev, freePort, type BaoDevServer } from '../harness/bao.ts';
import { VaultClient, VaultApiError, vaultEnv } from '../../scripts/adapters/vault.ts';
import { VaultlabError } from '../../scripts/lib/errors.ts';
import { registerSecret } from '../../scripts/lib/redact.ts';

describe('VaultClient against a real OpenBao', () => {
  // A dev-mode server: init and unseal do not matter here (the sealed case starts its own).
  let bao: BaoDevServer;
  let client: VaultClient;
  beforeAll(async () => {
    bao = await startBaoDev();
    client = new VaultClient({ address: bao.address, token: bao.token });
  });
  afterAll(async () => {
    client?.close();
    await bao?.stop();
  });

  it('counts POST, PUT, PATCH and DELETE as writes, GET (and LIST-style GETs) not', async () => {
    const w0 = client.writes;
    const r0 = client.requests;
    await client.get('sys/mounts');
    await client.get('secret/metadata?list=true', { accept: [404] });
    expect(client.writes).toBe(w0);
    await client.kvCreate('secret', 'count/a', { k: 'v1-counted' });
    await client.kvPatch('secret', 'count/a', { k2: 'v2-counted' });
    await client.put('sys/policies/acl/count-test', { policy: 'path "x" { capabilities = ["read"] }' });
    await client.delete('sys/policies/acl/count-test');
    expect(client.writes - w0).toBe(4);
    expect(client.requests - r0).toBe(6);
  });

  it('a 4xx is never retried: one request, and the error carries method, path, status and Vault\'s message', async () => {
    const r0 = client.requests;
    const err = (await client.get('sys/policies/acl/x', { token: 'not-a-real-token-1234' }).catch((e) => e)) as VaultApiError;
    expect(client.requests - r0).toBe(1);
    expect(err).toBeInstanceOf(VaultApiError);
    expect(err).toBeInstanceOf(VaultlabError);
    expect({ method: err.method, path: err.path, status: err.status }).toEqual({ method: 'GET', path: 'sys/policies/acl/x', status: 403 });
    expect(err.vaultErrors.join(' ')).toMatch(/permission denied|bad token/);
    expect(err.message).not.toContain('not-a-real-token-1234');
    expect(err.hint).toMatch(/lacks a capability/);

    const r1 = client.requests;
    const bad = (await client.kvCreate('secret', 'count/a', { k: 'x' }).catch((e) => e)) as VaultApiError; // exists: cas=0 refused
    expect(client.requests - r1).toBe(1);
    expect(bad.status).toBe(400);
    expect(bad.message).toMatch(/^Vault POST \/v1\/secret\/data\/count\/a failed \(HTTP 400\): check-and-set/);
  });

  it('a registered value never appears in an error, even where Vault echoes the request', async () => {
    registerSecret('Echoed-S3cret-987');
    const err = (await client.post('sys/tools/random/Echoed-S3cret-987', {}).catch((e) => e)) as VaultApiError;
    expect(err.status).toBe(400);
    expect(err.message).not.toContain('Echoed-S3cret-987');
    expect(err.message).toContain('***');
    expect(err.vaultErrors.join(' ')).not.toContain('Echoed-S3cret-987');
  });

  it('values read or generated are registered for redaction at once', async () => {
    const { redact } = await import('../../scripts/lib/redact.ts');
    const random = await client.random(16, 'hex');
    expect(redact(`x ${random} y`)).toBe('x *** y');
    await client.kvCreate('secret', 'count/read', { k: 'read-back-value-5678' }, {});
    // A value written by someone else becomes known the moment vaultlab reads it.
    await client.kvPatch('secret', 'count/read', { other: 'someone-elses-value-42' });
    await client.kvRead('secret', 'count/read');
    expect(redact('someone-elses-value-42')).toBe('***');
  });

  it('sealed is reported at once (503 is not retried), with the unseal command as the fix', async () => {
    const b = await startBao();
    try {
      const c = new VaultClient({ address: b.address });
      const init = (await c.put<any>('sys/init', { secret_shares: 1, secret_threshold: 1 }, { anonymous: true })).data;
      c.setToken(init.root_token);
      const r0 = c.requests;
      const err = (await c.get('sys/mounts').catch((e) => e)) as VaultApiError;
      expect(c.requests - r0).toBe(1);
      expect(err.status).toBe(503);
      expect(err.hint).toBe('Unseal it: vaultlab vault unseal');
      // health() answers in every state, read from the body.
      expect(await c.health()).toMatchObject({ initialized: true, sealed: true });
      c.close();
    } finally {
      await b.stop();
    }
  });

  it('connection refused while Vault starts is retried with backoff until it answers', async () => {
    const port = await freePort();
    const c = new VaultClient({ address: `http://127.0.0.1:${port}`, attempts: 12 });
    const pending = c.sealStatus();
    await new Promise((r) => setTimeout(r, 600));
    const late = await startBao({ port });
    try {
      expect((await pending).initialized).toBe(false);
      expect(c.requests).toBeGreaterThan(1);
    } finally {
      c.close();
      await late.stop();
    }
  });

  it('5xx from a proxy in front of Vault (e.g. "no healthy upstream" while it starts) is retried; the answer comes from Vault', async () => {
    let refused = 0;
    const target = new URL(bao.address);
    const proxy = http.createServer((req, res) => {
      if (refused < 2) {
        refused++;
        res.writeHead(503, { 'Content-Type': 'text/plain' }).end('no healthy upstream');
        return;
      }
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    const c = new VaultClient({ address: `http://127.0.0.1:${port}`, token: undefined });
    try {
      const r0 = c.requests;
      expect((await c.sealStatus()).sealed).toBe(false);
      expect(c.requests - r0).toBe(3);
      // Without retries the same 503 is an error naming the status.
      refused = 0;
      const once = new VaultClient({ address: `http://127.0.0.1:${port}`, attempts: 1 });
      const err = (await once.sealStatus().catch((e) => e)) as VaultApiError;
      expect(err.status).toBe(503);
      once.close();
    } finally {
      c.close();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('a standby\'s 307 (it cannot forward yet, just after a leader change) is asked again until the request is handled, a write counted once; a standby that never forwards ends with a hint', async () => {
    let redirected = 0;
    let redirectAll = false;
    const target = new URL(bao.address);
    // What HashiCorp Vault's standby answers while its request forwarding is not up: 307 to the
    // active node's api_addr (a cluster-internal name), nothing done.
    const standby = http.createServer((req, res) => {
      if (redirectAll || redirected < 3) {
        redirected++;
        res.writeHead(307, { Location: `https://vault-1.vault-internal:8200${req.url}`, 'Cache-Control': 'no-store' }).end();
        return;
      }
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => standby.listen(0, '127.0.0.1', r));
    const address = `http://127.0.0.1:${(standby.address() as { port: number }).port}`;
    const c = new VaultClient({ address, token: bao.token });
    const short = new VaultClient({ address, token: bao.token, standbyWaitMs: 1500 });
    try {
      const w0 = c.writes;
      await c.put('secret/data/standby-test', { data: { k: 'v' } });
      expect(redirected).toBe(3);
      expect(c.writes - w0).toBe(1);
      expect((await c.get('secret/data/standby-test')).data.data.data).toEqual({ k: 'v' });
      redirectAll = true;
      const t0 = Date.now();
      const err = (await short.get('auth/token/lookup-self').catch((e) => e)) as VaultApiError;
      expect(err).toBeInstanceOf(VaultApiError);
      expect(err.status).toBe(307);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
      expect(err.hint).toMatch(/standby that could not forward/);
      expect(String(err.message) + String(err.hint)).not.toContain(bao.token);
    } finally {
      c.close();
      short.close();
      standby.close();
    }
  });

  it('a request that gets no answer times out after timeoutMs, per request', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const c = new VaultClient({ address: `http://127.0.0.1:${port}`, timeoutMs: 300, attempts: 2 });
    const t0 = Date.now();
    const err = (await c.sealStatus().catch((e) => e)) as VaultApiError;
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(VaultApiError);
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/no response.*timeout/);
    expect(c.requests).toBe(2); // a timeout is a connection problem: retried once here
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(5000);
    c.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('keeps connections alive: many requests reuse few sockets', async () => {
    const seen = new Set<string>();
    const target = new URL(bao.address);
    // Count client connections at a TCP relay in front of Vault.
    const relay = createServer((s) => {
      seen.add(`${s.remoteAddress}:${s.remotePort}`);
      const up = connect(Number(target.port), target.hostname, () => {
        s.pipe(up);
        up.pipe(s);
      });
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as { port: number }).port;
    const c = new VaultClient({ address: `http://127.0.0.1:${port}` });
    for (let i = 0; i < 20; i++) await c.sealStatus();
    expect(seen.size).toBe(1);
    c.close();
    await new Promise((r) => relay.close(r));
  });

  it('reads VAULT_* first, then BAO_*', () => {
    expect(vaultEnv({ BAO_ADDR: 'http://b', BAO_TOKEN: 'bt', BAO_CACERT: '/b.pem' })).toEqual({ address: 'http://b', token: 'bt', caCertFile: '/b.pem' });
    expect(vaultEnv({ VAULT_ADDR: 'http://v', BAO_ADDR: 'http://b', VAULT_TOKEN: 'vt', BAO_TOKEN: 'bt', VAULT_CACERT: '/v.pem' })).toEqual({
      address: 'http://v',
      token: 'vt',
      caCertFile: '/v.pem',
    });
  });
});
