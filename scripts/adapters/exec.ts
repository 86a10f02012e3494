// Child processes through zx: arguments are quoted, failures carry command, exit code and
// stderr. Secrets never go on a command line: use `input` (stdin) or a 0600 temp file.
import { VaultlabError } from '../lib/errors.ts';
import { redact } from '../lib/redact.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): Promise<ExecResult> {
  const { $ } = await import('zx');
  const run = $({ quiet: true, nothrow: true, input: opts.input ?? '', env: { ...process.env, ...opts.env }, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) });
  let r;
  try {
    r = await run`${cmd} ${args}`;
  } catch (err) {
    throw new VaultlabError(`cannot run ${cmd}: ${(err as Error).message}`, { cause: err });
  }
  const result = { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
  if (result.code !== 0 && !opts.allowFail) {
    const notFound = result.code === 127 || /ENOENT|command not found/.test(result.stderr);
    throw new VaultlabError(redact(`\`${cmd} ${args.join(' ')}\` failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`), {
      ...(notFound ? { hint: `Install ${cmd} (see README, Requirements).` } : {}),
    });
  }
  return result;
}
