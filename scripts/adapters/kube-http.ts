// The API server over Node's own http/https, for a kubeconfig whose user is a client
// certificate, a token or nothing (adapters/kubeconfig.ts): one keep-alive Agent per connection
// (the TLS handshake once, not per request), JSON in and out exactly as sent and received, and
// watches read as the stream of JSON lines the API server writes, pods/exec over a WebSocket
// (the `ws` package, the channel protocol kubectl speaks). The other transport,
// client-node's, serves every other kubeconfig (adapters/kube.ts); both answer the same calls.
import type { KubeTarget } from './kubeconfig.ts';

export interface KubeResponse {
  status: number;
  text: string;
}

export interface RequestOptions {
  query?: Record<string, string> | undefined;
  body?: string | undefined;
  contentType?: string | undefined;
  accept?: string | undefined;
  signal?: AbortSignal | undefined;
}

export type WatchEvent = (type: string, object: any) => void;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  /** The API server's Status for the command: "Success", or "Failure" with a message (a non-zero exit, a missing container). */
  status: { status?: string; message?: string };
}

/** What the Kube adapter needs of a connection: requests, watches it can stop, and pods/exec. */
export interface KubeTransport {
  request(method: string, path: string, opts?: RequestOptions): Promise<KubeResponse>;
  /** Resolves once the server accepted the watch; `done` is called once when it ends (closed by the server, an error, or abort()). */
  watch(path: string, query: Record<string, string>, onEvent: WatchEvent, done: (err?: Error) => void): Promise<{ abort(): void }>;
  /** Runs `command` in a container (no stdin, no TTY) and collects what it prints. */
  exec(namespace: string, pod: string, container: string, command: string[]): Promise<ExecResult>;
}

const withQuery = (path: string, query: Record<string, string> | undefined) => {
  const q = new URLSearchParams(query ?? {}).toString();
  return q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path;
};

export async function httpTransport(t: KubeTarget): Promise<KubeTransport> {
  const url = new URL(t.server);
  const secure = url.protocol === 'https:';
  const mod = secure ? await import('node:https') : await import('node:http');
  const tlsOptions = { ...(t.ca ? { ca: t.ca } : {}), ...(t.cert ? { cert: t.cert } : {}), ...(t.key ? { key: t.key } : {}) };
  // One secure context (CA, certificate and key parsed once), not one per connection.
  const secureContext = secure ? (await import('node:tls')).createSecureContext(tlsOptions) : undefined;
  const agent = secure
    ? new (mod as typeof import('node:https')).Agent({
        keepAlive: true,
        secureContext,
        ...(t.tlsServerName ? { servername: t.tlsServerName } : {}),
        rejectUnauthorized: !t.insecureSkipTlsVerify,
      })
    : new mod.Agent({ keepAlive: true });
  const basePath = url.pathname.replace(/\/+$/, '');
  const headers = (extra: Record<string, string>) => ({ ...(t.token ? { Authorization: `Bearer ${t.token}` } : {}), 'User-Agent': 'vaultlab', ...extra });

  // An idle kept-alive socket must not hold the process open (a CLI exits when its work is done).
  agent.on('free', (socket) => socket.unref());

  function open(method: string, path: string, opts: RequestOptions) {
    const h: Record<string, string> = { Accept: opts.accept ?? 'application/json' };
    if (opts.body !== undefined) {
      h['Content-Type'] = opts.contentType ?? 'application/json';
      h['Content-Length'] = String(Buffer.byteLength(opts.body));
    }
    const req = mod.request({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (secure ? 443 : 80),
      method,
      path: withQuery(`${basePath}${path}`, opts.query),
      headers: headers(h),
      agent,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    // A reused socket was unref'd while idle: it holds the process again while it carries a request.
    req.on('socket', (socket) => socket.ref());
    return req;
  }

  return {
    request(method, path, opts = {}) {
      return new Promise<KubeResponse>((resolve, reject) => {
        const req = open(method, path, opts);
        req.on('error', reject);
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        });
        req.end(opts.body);
      });
    },

    async exec(namespace, pod, container, command) {
      const { WebSocket } = await import('ws');
      const q = new URLSearchParams();
      for (const arg of command) q.append('command', arg);
      q.set('container', container);
      q.set('stdout', 'true');
      q.set('stderr', 'true');
      const target = `${secure ? 'wss' : 'ws'}://${url.host}${basePath}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec?${q}`;
      const ws = new WebSocket(target, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
        headers: headers({}),
        ...(secure ? { secureContext, ...(t.tlsServerName ? { servername: t.tlsServerName } : {}), rejectUnauthorized: !t.insecureSkipTlsVerify } : {}),
      });
      return new Promise<ExecResult>((resolve, reject) => {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let status: ExecResult['status'] | undefined;
        // Each binary message: one byte naming the channel (1 stdout, 2 stderr, 3 the Status), then data.
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          const buf = isBinary ? data : Buffer.from(data);
          if (buf.length < 1) return;
          const body = buf.subarray(1);
          if (buf[0] === 1) out.push(body);
          else if (buf[0] === 2) err.push(body);
          else if (buf[0] === 3 && body.length) {
            try {
              status = JSON.parse(body.toString('utf8'));
            } catch {
              status = { status: 'Failure', message: body.toString('utf8') };
            }
          }
        });
        ws.on('error', reject);
        ws.on('close', () => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), status: status ?? { status: 'Failure', message: 'the connection closed without a status' } }));
      });
    },

    watch(path, query, onEvent, done) {
      return new Promise((resolve, reject) => {
        let ended = false;
        const end = (err?: Error) => {
          if (ended) return;
          ended = true;
          done(err);
        };
        const req = open('GET', path, { query: { ...query, watch: 'true' } });
        req.on('error', (err) => {
          reject(err);
          end(err);
        });
        req.on('response', (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const err = Object.assign(new Error(`HTTP ${res.statusCode}`), { code: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
              reject(err);
              end(err);
            });
            return;
          }
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
              const line = buffer.slice(0, nl).trim();
              buffer = buffer.slice(nl + 1);
              if (!line) continue;
              try {
                const ev = JSON.parse(line) as { type: string; object: any };
                onEvent(ev.type, ev.object);
              } catch {
                /* a torn line: the watch is restarted by its caller when it ends */
              }
            }
          });
          res.on('end', () => end());
          res.on('close', () => end());
          res.on('error', (err) => end(err));
          // destroy(), not abort of a kept-alive socket: a watch's socket is never reused.
          resolve({ abort: () => req.destroy() });
        });
        req.end();
      });
    },
  };
}
