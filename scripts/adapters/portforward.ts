// A local port forwarded to a pod through the Kubernetes API (no kubectl): how vaultlab reaches
// Vault in production, where no NodePort exposes it, and the fallback when the NodePort does
// not answer (provider = "existing": no kind port mapping). One WebSocket per local connection.
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Kube } from './kube.ts';

export interface PortForward {
  port: number;
  /** Where the forward points, for messages: "vault/vault-0:8200". */
  target: string;
  /** The last error the API server or the kubelet reported for a connection, if any. */
  lastError(): string | undefined;
  /** Stops listening and cuts every open connection (never waits on keep-alive sockets). */
  close(): Promise<void>;
}

interface Closable {
  close(): void;
}

export async function portForward(kube: Kube, namespace: string, pod: string, remotePort: number): Promise<PortForward> {
  const { k8s, kc } = await kube.client();
  const pf = new k8s.PortForward(kc);
  const sockets = new Set<Socket>();
  const sockets2ws = new Map<Socket, Closable>();
  let lastError: string | undefined;
  let closed = false;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      sockets2ws.get(socket)?.close();
      sockets2ws.delete(socket);
    });
    // The error channel carries the kubelet's complaints ("error forwarding port ..."). The
    // client writes an empty chunk on it as the stream opens (its port header): not an error,
    // and cutting the connection there broke every forward on a real cluster.
    const errors = new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = chunk.toString('utf8').trim();
        if (text) {
          lastError = text;
          socket.destroy();
        }
        done();
      },
    });
    pf.portForward(namespace, pod, [remotePort], socket, errors, socket)
      .then((ws) => {
        const w = typeof ws === 'function' ? ws() : ws;
        if (!w) return;
        if (closed || socket.destroyed) {
          w.close();
          return;
        }
        sockets2ws.set(socket, w);
        w.on('close', () => socket.end());
      })
      .catch((err: unknown) => {
        lastError = (err as Error)?.message ?? String(err);
        socket.destroy();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    target: `${namespace}/${pod}:${remotePort}`,
    lastError: () => lastError,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const ws of sockets2ws.values()) ws.close();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
