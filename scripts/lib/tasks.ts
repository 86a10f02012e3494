// Multi-step work with listr2: the interactive renderer on a terminal; one plain line per step
// (with its duration) in CI, with NO_COLOR or when stdout is not a TTY; nothing with --json,
// where the durations go into the JSON report instead.
import type { Output } from './output.ts';

export interface StepOutcome {
  name: string;
  title: string;
  ms: number;
  outcome: 'ok' | 'skipped' | 'failed';
  detail?: string | undefined;
}

export interface TaskStep<C> {
  name: string;
  title: string;
  /** A reason to skip, or false. */
  skip?: (ctx: C) => string | false;
  run: (ctx: C, report: (message: string) => void) => Promise<string | void>;
}

export async function runSteps<C>(steps: TaskStep<C>[], ctx: C, out: Output): Promise<StepOutcome[]> {
  const { Listr } = await import('listr2');
  const outcomes: StepOutcome[] = [];
  const renderer = out.json ? 'silent' : out.plain ? 'simple' : 'default';
  const list = new Listr(
    steps.map((step) => ({
      title: step.title,
      task: async (_: unknown, task: any) => {
        const t0 = performance.now();
        const skip = step.skip?.(ctx);
        if (skip) {
          outcomes.push({ name: step.name, title: step.title, ms: 0, outcome: 'skipped', detail: skip });
          task.skip(`${step.title}: skipped (${skip})`);
          return;
        }
        try {
          const detail = await step.run(ctx, (m) => {
            task.output = m;
          });
          const ms = Math.round(performance.now() - t0);
          outcomes.push({ name: step.name, title: step.title, ms, outcome: 'ok', detail: detail || undefined });
          task.title = `${step.title}${detail ? `: ${detail}` : ''} (${(ms / 1000).toFixed(1)}s)`;
        } catch (err) {
          outcomes.push({ name: step.name, title: step.title, ms: Math.round(performance.now() - t0), outcome: 'failed', detail: (err as Error).message });
          throw err;
        }
      },
    })),
    { renderer, exitOnError: true, rendererOptions: { collapseSubtasks: true } as any, registerSignalListeners: true } as any,
  );
  try {
    await list.run();
  } catch (err) {
    (err as { steps?: StepOutcome[] }).steps = outcomes;
    throw err;
  }
  return outcomes;
}
