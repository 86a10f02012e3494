// node-vault's HTTP transport, given through its own `request-promise` option: one request on a
// keep-alive agent with node:http(s), nothing else. node-vault still builds every URI, sets the
// token header and turns non-2xx answers into its ApiResponseError; this only moves bytes.
//
// Why not node-vault's default (axios): axios adds a redirect-following wrapper, proxy
// discovery and header normalisation to every request, about 0.3 ms of CPU each. A seed that
// finds everything in place is nothing but one read per path, so that overhead was most of a
// no-op re-seed's time (`npm run bench` measures both transports side by side).
import type * as Http from 'node:http';
import { createRequire } from 'node:module';

// node:http and node:https through require, not `import`: an ESM import of a built-in copies every
// export, and node:http's lazy WebSocket/EventSource getters then load undici (about 10 ms of
// every process that talks to Vault, for nothing).
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof Http;
const https = require('node:https') as typeof import('node:https');

/** What node-vault hands its request-promise: the options of `client.request`, URI resolved. */
export interface TransportRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  /** The JSON body (node-vault's rpDefaults also put `json: true` here: "parse the answer"). */
  json?: unknown;
  timeout?: number;
}

/** What node-vault expects back (the request-promise `resolveWithFullResponse` shape). */
export interface TransportResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

export type Transport = (options: TransportRequest) => Promise<TransportResponse>;

/** `{ defaults() }` is the request-promise shape node-vault asks for; its rpDefaults are not needed. */
export function keepAliveTransport(agent: Http.Agent, defaultTimeoutMs: number): { defaults(): Transport } {
  const send: Transport = (options) =>
    new Promise((resolve, reject) => {
      const url = new URL(options.uri);
      const client = url.protocol === 'https:' ? https : http;
      const payload = options.json !== undefined && typeof options.json === 'object' ? Buffer.from(JSON.stringify(options.json)) : undefined;
      const headers: Record<string, string | number> = { Accept: 'application/json', ...options.headers };
      if (payload) {
        headers['Content-Type'] ??= 'application/json';
        headers['Content-Length'] = payload.length;
      }
      const req = client.request(url, { method: options.method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if (text.length === 0) body = undefined;
          else {
            try {
              body = JSON.parse(text);
            } catch {
              // Not JSON (a proxy's error page, say): handed on as text.
            }
          }
          resolve({ statusCode: res.statusCode ?? 0, body, request: { path: url.pathname } });
        });
      });
      req.setTimeout(options.timeout ?? defaultTimeoutMs, () => {
        req.destroy(Object.assign(new Error(`timeout after ${options.timeout ?? defaultTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', reject);
      req.end(payload);
    });
  return { defaults: () => send };
}
