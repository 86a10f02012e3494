// The contract every command module implements. cli.ts parses global flags, finds the
// command, parses its own options with node:util parseArgs, and calls run().
import type { Output } from '../lib/output.ts';

export interface GlobalFlags {
  config: string | undefined;
  profile: string | undefined;
  /** --name: cluster name override (CI: unique per run). */
  name: string | undefined;
  json: boolean;
  yes: boolean;
  verbose: boolean;
  /** --ci or CI=true: no prompts, plain output. */
  ci: boolean;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  description: string;
  /** Shown in --help as the value name, e.g. "DIR". */
  value?: string;
}

/** What every command passes to loadConfig. */
export const loadOptions = (flags: GlobalFlags) => ({ file: flags.config, profile: flags.profile, clusterName: flags.name, ci: flags.ci });

export interface CommandContext {
  flags: GlobalFlags;
  options: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  out: Output;
}

export interface Command {
  /** "plan", or "vault init" for sub-commands. */
  name: string;
  summary: string;
  /** Extra help text: what it does, examples. */
  description: string;
  options: Record<string, OptionSpec>;
  /** Names of positional arguments for the usage line. */
  args?: string;
  /** Returns the exit code. Throw VaultlabError (exit 1) or ConfigError/UsageError (exit 2). */
  run(ctx: CommandContext): Promise<number>;
}
