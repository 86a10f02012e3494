// The whole deploy, in order. Reading this list tells the create flow.
import type { TaskStep } from '../lib/tasks.ts';
import type { DeployContext } from './context.ts';
import { preflight } from './preflight.ts';
import { cluster } from './cluster.ts';
import { install } from './install.ts';
import { vault } from './vault.ts';
import { deliveries } from './deliveries.ts';
import { samples } from './samples.ts';
import { verify } from './verify.ts';
import { summary } from './summary.ts';

export const DEPLOY_STEPS: TaskStep<DeployContext>[] = [
  preflight, //     Docker, kind/helm versions, host ports, memory
  cluster, //       kind create (or reuse, or an existing context); ownership marker
  install, //       Helm: Vault (with the injector when used) and the deliveries' charts, in parallel; ends when Vault's is in
  vault, //         pod Running -> init, unseal, configure, seed -> Ready (the deliveries' pods start meanwhile)
  deliveries, //    namespaces, the deliveries' charts Ready, then each delivery's objects (ESO: SecretStores Ready)
  samples, //       the sample apps
  verify, //        each delivery's secrets match Vault by digest, apps Available
  summary, //       URLs, what synced, how to log in
];
