// Child processes through zx: arguments are quoted, failures carry command, exit code and
// stderr. Secrets never go on a command line: use `input` (stdin) or a 0600 temp file.
// A child started inside a deploy step is killed when the step is interrupted (Ctrl-C).
import { VaultlabError } from '../lib/errors.ts';
import { redact } from '../lib/redact.ts';
import { currentSignal } from '../lib/tasks.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Return non-zero exits instead of throwing. */
  allowFail?: boolean;
  /** Kills the child when aborted; defaults to the running step's signal. */
  signal?: AbortSignal;
}

export const DOCKER_FIX = 'Start Docker (Docker Desktop, or `sudo systemctl start docker`), then re-run. `vaultlab doctor` checks the machine.';

/** Output of a tool that could not reach the Docker engine (kind shells out to docker). */
export const dockerDown = (text: string) => /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|docker\.sock: connect: (permission denied|no such file)/i.test(text);

/**
 * The environment a child runs in. zx runs every command through bash, and bash reads the user's
 * ~/.bashrc when its stdin is a socket (Node's pipes are) and SHLVL is unset or 0: its rsh/sshd
 * detection. Started from systemd, cron, an IDE or `env -i`, every `kind`/`helm` call would then
 * pay for the rc file (pyenv init: ~130 ms each) and anything it prints would land in the output
 * vaultlab parses. A SHLVL of at least 1 says "started from a shell", which is what we are.
 */
export function childEnv(extra?: NodeJS.ProcessEnv, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = { ...base, ...extra };
  if (!(Number(env.SHLVL) >= 1)) env.SHLVL = '1';
  return env;
}

export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const { $ } = await import('zx');
  const signal = opts.signal ?? currentSignal();
  const run = $({
    quiet: true,
    nothrow: true,
    input: opts.input ?? '',
    env: childEnv(opts.env),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    ...(signal ? { signal } : {}),
  });
  let r;
  try {
    r = await run`${cmd} ${args}`;
  } catch (err) {
    if (signal?.aborted) throw new VaultlabError(`\`${cmd} ${args[0] ?? ''}\` stopped: interrupted`, { cause: err });
    throw new VaultlabError(`cannot run ${cmd}: ${(err as Error).message}`, { cause: err });
  }
  if (signal?.aborted) throw new VaultlabError(`\`${cmd} ${args[0] ?? ''}\` stopped: interrupted`);
  const result = { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
  if (result.code !== 0 && !opts.allowFail) {
    const notFound = result.code === 127 || /ENOENT|command not found/.test(result.stderr);
    const tail = result.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    const hint = notFound ? `Install ${cmd} (see README, Requirements).` : dockerDown(result.stderr) ? DOCKER_FIX : undefined;
    throw new VaultlabError(redact(`\`${cmd} ${args.join(' ')}\` failed (exit ${result.code}): ${tail}`), hint ? { hint } : {});
  }
  return result;
}
