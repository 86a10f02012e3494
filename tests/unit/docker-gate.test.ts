// The Docker/kind suite lives in `npm run test:e2e`. `npm test` says here, at run time, whether
// this machine can run it, so a Docker-less run never looks like a pass of the kind path.
import { it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { dockerInfo } from '../../scripts/adapters/docker.ts';

it('reports whether the Docker-gated e2e suite can run here', async () => {
  const info = await dockerInfo();
  const raw = spawnSync('docker', ['info'], { encoding: 'utf8' });
  expect(info.reachable).toBe(raw.status === 0);
  if (!info.reachable) console.log(`skipped: e2e suite (kind, Helm, pods): no Docker engine (${info.reason})`);
  else console.log('Docker engine found: run `npm run test:e2e` for the kind suite');
});
