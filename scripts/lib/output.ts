// Everything vaultlab prints goes through here: redacted, plain or JSON, no colour when
// NO_COLOR is set or stdout is not a TTY.
import { redact } from './redact.ts';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  /** Plain line output: CI=true, NO_COLOR, or stdout is not a TTY. */
  plain: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly plain: boolean;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.verbose = opts.verbose;
    this.plain = opts.plain || opts.json;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  /** Human text on stdout (suppressed in --json mode, where stdout carries only JSON). */
  info(message: string): void {
    if (!this.json) this.stdout.write(`${redact(message)}\n`);
  }

  /** Diagnostics on stderr, shown in every mode. */
  warn(message: string): void {
    this.stderr.write(`${this.plain ? 'warning: ' : '\u001b[33mwarning:\u001b[0m '}${redact(message)}\n`);
  }

  error(message: string, hint?: string): void {
    this.stderr.write(`${this.plain ? 'error: ' : '\u001b[31merror:\u001b[0m '}${redact(message)}\n`);
    if (hint) this.stderr.write(`  fix: ${redact(hint)}\n`);
  }

  debug(message: string): void {
    if (this.verbose) this.stderr.write(`${redact(message)}\n`);
  }

  /** The machine-readable result of a command (stdout, --json mode). */
  result(value: unknown): void {
    if (this.json) this.stdout.write(`${redact(JSON.stringify(value, null, 2))}\n`);
  }
}
