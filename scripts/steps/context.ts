// What every deploy step shares: the plan, the output, the state dir, adapters as they come up,
// and a small cache, so no step fetches the same thing twice. Step durations and outcomes are
// recorded by the runner (lib/tasks.ts); facts for the summary go into `summary`.
import type { LoadedConfig } from '../config/load.ts';
import type { Plan } from '../plan/types.ts';
import type { Output } from '../lib/output.ts';
import type { StateDir } from '../lib/state.ts';
import type { Kube } from '../adapters/kube.ts';
import type { VaultClient } from '../adapters/vault.ts';
import type { PortForward } from '../adapters/portforward.ts';

/** What --preload asks Docker before it looks into the nodes. */
export interface ImageFacts {
  images: string[];
  hostIds: Map<string, string>;
  /** Node container name -> ID. */
  containers: Map<string, string>;
}

export interface DeployOptions {
  preload: boolean;
  skipSamples: boolean;
  timeoutMs: number;
  /** Unseal key shares given with --keys-file (production, keys kept offline). */
  keys?: string[] | undefined;
}

export interface DeployCache {
  /** `kind get clusters`, fetched once per run. */
  kindClusters?: Promise<string[]>;
  /** --preload: the images the deploy runs (rendered while preflight's child processes run). */
  preloadImages?: Promise<string[]>;
  /** --preload on an existing cluster: the host's image IDs and the node containers, asked during preflight. */
  imageFacts?: Promise<ImageFacts>;
}

export interface DeployContext {
  loaded: LoadedConfig;
  plan: Plan;
  out: Output;
  state: StateDir;
  options: DeployOptions;
  kubeconfigPath?: string;
  /** The kubeconfig context helm must use (provider = "existing"); kind's file has only one. */
  kubeContext?: string | undefined;
  kube?: Kube;
  vault?: VaultClient;
  forwards: PortForward[];
  cache: DeployCache;
  /** Facts for the final summary and the --json report. */
  summary: Record<string, unknown>;
  /**
   * The deliveries' Helm releases (ESO's, VSO's), started by the install step and still waiting
   * for their pods while the vault step runs: the deliveries step waits for them before it
   * applies their objects. Resolves to their summary lines; rejects with the first failure.
   */
  releases?: Promise<string[]>;
  /** [passwords] the install step resolved (the sample Postgres's editor): configure uses them once. */
  databasePasswords?: Record<string, string>;
}

export function newDeployContext(init: Pick<DeployContext, 'loaded' | 'plan' | 'out' | 'state' | 'options'>): DeployContext {
  return { ...init, forwards: [], cache: {}, summary: {} };
}

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} is not set up yet (a step ran out of order)`);
  return value;
}

/** `kind get clusters`, once per run. */
export function cachedKindClusters(ctx: Pick<DeployContext, 'cache'>, load: () => Promise<string[]>): Promise<string[]> {
  ctx.cache.kindClusters ??= load();
  return ctx.cache.kindClusters;
}

/** After creating or deleting a cluster the cached list is stale. */
export function forgetKindClusters(ctx: Pick<DeployContext, 'cache'>): void {
  delete ctx.cache.kindClusters;
}
