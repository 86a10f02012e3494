// The whole deploy, in order. Reading this list tells the create flow.
import type { TaskStep } from '../lib/tasks.ts';
import type { DeployContext } from './context.ts';
import { preflight } from './preflight.ts';
import { cluster } from './cluster.ts';
import { install } from './install.ts';
import { vault } from './vault.ts';
import { esoResources } from './eso-resources.ts';
import { samples } from './samples.ts';
import { verify } from './verify.ts';

export const DEPLOY_STEPS: TaskStep<DeployContext>[] = [preflight, cluster, install, vault, esoResources, samples, verify];
