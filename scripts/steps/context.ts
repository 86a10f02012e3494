// What every deploy step shares: the plan, the output, the state dir, adapters as they come up,
// and a small cache, so no step fetches the same thing twice.
import type { LoadedConfig } from '../config/load.ts';
import type { Plan } from '../plan/types.ts';
import type { Output } from '../lib/output.ts';
import type { StateDir } from '../lib/state.ts';
import type { Kube } from '../adapters/kube.ts';
import type { VaultClient } from '../adapters/vault.ts';
import type { PortForward } from '../adapters/portforward.ts';

export interface DeployOptions {
  preload: boolean;
  skipSamples: boolean;
  timeoutMs: number;
  /** Unseal key shares given with --keys-file (production, keys kept offline). */
  keys?: string[] | undefined;
}

export interface DeployContext {
  loaded: LoadedConfig;
  plan: Plan;
  out: Output;
  state: StateDir;
  options: DeployOptions;
  kubeconfigPath?: string;
  kube?: Kube;
  vault?: VaultClient;
  forwards: PortForward[];
  /** Facts for the final summary and the --json report. */
  summary: Record<string, unknown>;
}

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} is not set up yet (a step ran out of order)`);
  return value;
}
