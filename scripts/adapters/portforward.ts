// A local port forwarded to a pod through the Kubernetes API (no kubectl): how vaultlab reaches
// Vault in production, where no NodePort exposes it.
import { createServer, type Server } from 'node:net';
import type { Kube } from './kube.ts';

export interface PortForward {
  port: number;
  close(): Promise<void>;
}

export async function portForward(kube: Kube, namespace: string, pod: string, remotePort: number): Promise<PortForward> {
  const pf = new kube.k8s.PortForward(kube.kc);
  const server: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    void pf.portForward(namespace, pod, [remotePort], socket, null, socket).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
