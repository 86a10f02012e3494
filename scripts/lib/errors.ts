// Error types that the CLI maps to exit codes: 1 = operation failed, 2 = usage or config error.
// Every error may carry a `hint`: the command or edit that fixes it.

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class VaultlabError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VaultlabError';
    this.exitCode = opts.exitCode ?? EXIT_FAILURE;
    this.hint = opts.hint;
  }
}

/** Bad config.toml: syntax, schema or cross-check. Always exit 2. */
export class ConfigError extends VaultlabError {
  /** Where: "config.toml:12:5" or "config.toml: secrets[3].format". */
  readonly where: string;
  constructor(where: string, message: string, hint?: string) {
    super(`${where}: ${message}`, { exitCode: EXIT_USAGE, ...(hint ? { hint } : {}) });
    this.name = 'ConfigError';
    this.where = where;
  }
}

/** Wrong flags or arguments. Exit 2. */
export class UsageError extends VaultlabError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: EXIT_USAGE, ...(hint ? { hint } : {}) });
    this.name = 'UsageError';
  }
}

/** Several config errors at once: shown together, exit 2. */
export class ConfigErrors extends VaultlabError {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'), { exitCode: EXIT_USAGE });
    this.name = 'ConfigErrors';
    this.errors = errors;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
