// Multi-step work with listr2: the interactive renderer on a terminal; one plain line per step
// (with its duration) in CI, with NO_COLOR or when stdout is not a TTY; nothing with --json,
// where the durations go into the JSON report instead.
//
// Ctrl-C: the first SIGINT aborts the running step (its child processes are killed through the
// AbortSignal each step runs under, see currentSignal()), marks it "interrupted" and throws an
// InterruptedError (exit 130) so the command can release its lock and close its connections.
// Every step is idempotent, so the next run completes what was cut short. A second SIGINT
// exits at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Output } from './output.ts';
import { VaultlabError } from './errors.ts';
import { redact } from './redact.ts';

export type StepResult = 'ok' | 'skipped' | 'failed' | 'interrupted';

export interface StepOutcome {
  name: string;
  title: string;
  ms: number;
  outcome: StepResult;
  detail?: string | undefined;
  /** A step that failed or was interrupted: the last thing it reported doing ("waiting for pod vault/vault-0 to run"). */
  during?: string | undefined;
}

export interface TaskStep<C> {
  name: string;
  title: string;
  /** A reason to skip, or false. */
  skip?: (ctx: C) => string | false;
  /** Returns a one-line detail for the step's line. `signal` is aborted on Ctrl-C. */
  run: (ctx: C, report: (message: string) => void, signal: AbortSignal) => Promise<string | void>;
}

export const EXIT_INTERRUPTED = 130;

export class InterruptedError extends VaultlabError {
  readonly step: string;
  constructor(step: string, command = 'deploy') {
    super(`interrupted during step "${step}"`, {
      exitCode: EXIT_INTERRUPTED,
      hint: `Nothing was left that a re-run cannot finish: run \`vaultlab ${command}\` again to complete it.`,
    });
    this.name = 'InterruptedError';
    this.step = step;
  }
}

const ambient = new AsyncLocalStorage<AbortSignal>();

/** The abort signal of the step running in this async context (child processes honour it). */
export function currentSignal(): AbortSignal | undefined {
  return ambient.getStore();
}

/**
 * 'plain' is one line per finished step (listr2 itself silent); 'verbose' is listr2's line log
 * (start, progress, end of every step).
 */
export type RendererName = 'default' | 'plain' | 'verbose' | 'silent';

/** silent with --json; plain lines in CI, with NO_COLOR, or without a TTY; else interactive. */
export function rendererFor(out: Pick<Output, 'json' | 'plain' | 'verbose'>): RendererName {
  if (out.json) return 'silent';
  if (out.plain) return out.verbose ? 'verbose' : 'plain';
  return 'default';
}

const MARK: Record<StepResult, string> = { ok: '✔', skipped: '↓', failed: '✖', interrupted: '✖' };

/** The plain renderer's line for a finished step. */
export function stepLine(o: StepOutcome): string {
  switch (o.outcome) {
    case 'ok':
      return `${MARK.ok} ${o.title}${o.detail ? `: ${o.detail}` : ''} (${seconds(o.ms)})`;
    case 'skipped':
      return `${MARK.skipped} ${o.title}: skipped (${o.detail})`;
    default:
      return `${MARK[o.outcome]} ${o.title}: ${o.outcome} after ${seconds(o.ms)}${o.during ? ` (while ${o.during})` : ''}`;
  }
}

export interface RunOptions {
  /** Defaults to rendererFor(out). */
  renderer?: RendererName;
  /** Install a SIGINT handler for the run (default true). */
  handleSigint?: boolean;
  /** Aborting it interrupts the run like Ctrl-C (tests, embedding). */
  signal?: AbortSignal;
  /** Names the command in the interruption hint. */
  command?: string;
  /** Where the plain renderer writes its lines (default stdout). */
  write?: (line: string) => void;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export async function runSteps<C>(steps: TaskStep<C>[], ctx: C, out: Output, opts: RunOptions = {}): Promise<StepOutcome[]> {
  const { Listr } = await import('listr2');
  const outcomes: StepOutcome[] = [];
  const controller = new AbortController();
  const abort = () => controller.abort();
  opts.signal?.addEventListener('abort', abort, { once: true });
  if (opts.signal?.aborted) abort();
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\ninterrupt: stopping the current step (Ctrl-C again to exit at once)\n');
    abort();
  };
  if (opts.handleSigint !== false) process.on('SIGINT', onSigint);

  const renderer = opts.renderer ?? rendererFor(out);
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const record = (o: StepOutcome) => {
    outcomes.push(o);
    if (renderer === 'plain') write(redact(stepLine(o)));
  };
  const list = new Listr(
    steps.map((step) => ({
      title: step.title,
      task: async (_: unknown, task: { title: string; output: string; skip(m?: string): void }) => {
        const t0 = performance.now();
        const elapsed = () => Math.round(performance.now() - t0);
        if (controller.signal.aborted) throw new InterruptedError(step.name, opts.command);
        const skip = step.skip?.(ctx);
        if (skip) {
          record({ name: step.name, title: step.title, ms: 0, outcome: 'skipped', detail: skip });
          task.skip(renderer === 'verbose' ? `${step.title}: ${skip}` : skip);
          return;
        }
        let during: string | undefined;
        try {
          const interrupted = new Promise<never>((_resolve, reject) => {
            const stop = () => reject(new InterruptedError(step.name, opts.command));
            if (controller.signal.aborted) stop();
            else controller.signal.addEventListener('abort', stop, { once: true });
          });
          interrupted.catch(() => undefined);
          const work = ambient.run(controller.signal, () =>
            step.run(
              ctx,
              (m) => {
                during = redact(m);
                if (renderer === 'default' || renderer === 'verbose') task.output = during;
              },
              controller.signal,
            ),
          );
          // A step cut short may still settle later; its result no longer matters.
          work.catch(() => undefined);
          const detail = await Promise.race([work, interrupted]);
          const ms = elapsed();
          record({ name: step.name, title: step.title, ms, outcome: 'ok', detail: detail || undefined });
          task.title = redact(`${step.title}${detail ? `: ${detail}` : ''} (${seconds(ms)})`);
        } catch (err) {
          const wasInterrupted = err instanceof InterruptedError || controller.signal.aborted;
          record({ name: step.name, title: step.title, ms: elapsed(), outcome: wasInterrupted ? 'interrupted' : 'failed', detail: (err as Error).message, ...(during ? { during } : {}) });
          task.title = `${step.title} (${wasInterrupted ? 'interrupted' : 'failed'} after ${seconds(elapsed())})`;
          throw wasInterrupted && !(err instanceof InterruptedError) ? new InterruptedError(step.name, opts.command) : err;
        }
      },
    })),
    // Signals are ours (above): listr2's own handler would wait for the step and exit 127.
    {
      renderer: renderer === 'plain' ? 'silent' : renderer,
      exitOnError: true,
      registerSignalListeners: false,
      rendererOptions: { collapseSubtasks: true, showErrorMessage: false },
    } as never,
  );
  try {
    await list.run();
  } catch (err) {
    (err as { steps?: StepOutcome[] }).steps = outcomes;
    throw err;
  } finally {
    if (opts.handleSigint !== false) process.off('SIGINT', onSigint);
    opts.signal?.removeEventListener('abort', abort);
  }
  return outcomes;
}
