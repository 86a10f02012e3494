// The step runner and Ctrl-C, for real: listr2 rendering, per-step durations and outcomes, an
// interrupted step whose child process is killed, and `vaultlab deploy` itself stopped with
// SIGINT mid-step (exit 130, lock released, the step marked interrupted).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runSteps, rendererFor, stepLine, InterruptedError, type TaskStep, type StepOutcome } from '../../scripts/lib/tasks.ts';
import { exec } from '../../scripts/adapters/exec.ts';
import { Output } from '../../scripts/lib/output.ts';
import { registerSecret } from '../../scripts/lib/redact.ts';
import { BUNDLED_CONFIG, PROJECT_ROOT } from '../../scripts/config/load.ts';
import { ensureTool, binDir } from '../harness/kube/build.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (o: Partial<{ json: boolean; plain: boolean; verbose: boolean }> = {}) => new Output({ json: false, verbose: false, plain: true, ...o });

const steps: TaskStep<{ seen: string[] }>[] = [
  { name: 'a', title: 'Step A', run: async (ctx, report) => { report('working'); await sleep(120); ctx.seen.push('a'); return 'did a'; } },
  { name: 'b', title: 'Step B', skip: () => 'not needed', run: async (ctx) => void ctx.seen.push('b') },
  { name: 'c', title: 'Step C', run: async (ctx) => void ctx.seen.push('c') },
];

describe('step runner', () => {
  it('picks the renderer: silent with --json, plain lines in CI / NO_COLOR / no TTY, interactive otherwise', () => {
    expect(rendererFor({ json: true, plain: true, verbose: false })).toBe('silent');
    expect(rendererFor({ json: false, plain: true, verbose: false })).toBe('plain');
    expect(rendererFor({ json: false, plain: true, verbose: true })).toBe('verbose');
    expect(rendererFor({ json: false, plain: false, verbose: false })).toBe('default');
  });

  it('runs steps in order, one plain line per step with its duration, outcomes for the report', async () => {
    const lines: string[] = [];
    const ctx = { seen: [] as string[] };
    const outcomes = await runSteps(steps, ctx, out(), { write: (l) => lines.push(l), handleSigint: false });
    expect(ctx.seen).toEqual(['a', 'c']);
    expect(outcomes.map((o) => [o.name, o.outcome])).toEqual([['a', 'ok'], ['b', 'skipped'], ['c', 'ok']]);
    expect(outcomes[0]!.ms).toBeGreaterThanOrEqual(100);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^✔ Step A: did a \(0\.\d+s\)$/);
    expect(lines[1]).toBe('↓ Step B: skipped (not needed)');
    expect(lines[2]).toMatch(/^✔ Step C \(0\.\d+s\)$/);
  });

  it('a registered secret in a step\'s line is masked, like everything else vaultlab prints', async () => {
    const secret = `runner-secret-${process.pid}-value`;
    registerSecret(secret);
    const lines: string[] = [];
    await runSteps([{ name: 's', title: 'Step S', run: async () => `got ${secret}` }], {}, out(), { write: (l) => lines.push(l), handleSigint: false });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^✔ Step S: got \*\*\* \(\d\.\ds\)$/);
  });

  it('is silent with --json and stops at the first failure, carrying the outcomes so far', async () => {
    const lines: string[] = [];
    const failing: TaskStep<{ seen: string[] }>[] = [steps[0]!, { name: 'x', title: 'Step X', run: async () => { throw new Error('boom'); } }, steps[2]!];
    const err = await runSteps(failing, { seen: [] }, out({ json: true }), { write: (l) => lines.push(l), handleSigint: false }).catch((e: unknown) => e as Error & { steps: StepOutcome[] });
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('boom');
    expect((err as { steps: StepOutcome[] }).steps.map((o) => [o.name, o.outcome])).toEqual([['a', 'ok'], ['x', 'failed']]);
    expect(lines).toEqual([]);
    expect(stepLine({ name: 'x', title: 'Step X', ms: 1500, outcome: 'failed' })).toBe('✖ Step X: failed after 1.5s');
  });

  it('an interrupt stops the running step at once and kills its child process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vaultlab-int-'));
    const pidFile = join(dir, 'pid');
    const ac = new AbortController();
    const slow: TaskStep<object>[] = [
      { name: 'slow', title: 'Slow', run: async () => void (await exec('sh', ['-c', `echo $$ > ${pidFile}; exec sleep 60`])) },
      { name: 'after', title: 'After', run: async () => { throw new Error('must not run'); } },
    ];
    // Abort once the child runs (its pid is written), however loaded the machine is.
    let t0 = 0;
    const abortWhenRunning = setInterval(() => {
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) {
        clearInterval(abortWhenRunning);
        t0 = Date.now();
        ac.abort();
      }
    }, 20);
    const err = (await runSteps(slow, {}, out(), { signal: ac.signal, handleSigint: false, write: () => undefined }).catch((e: unknown) => e)) as InterruptedError & { steps: StepOutcome[] };
    clearInterval(abortWhenRunning);
    expect(t0).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(err.exitCode).toBe(130);
    expect(err.hint).toMatch(/run `vaultlab deploy` again/);
    expect(err.steps.map((o) => [o.name, o.outcome])).toEqual([['slow', 'interrupted']]);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await sleep(200);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });
});

describe('vaultlab deploy, interrupted with SIGINT', () => {
  // An API server that accepts connections and never answers: the cluster step hangs there.
  let blackhole: Server;
  const held: Socket[] = [];
  let cwd: string;
  let path: string;

  beforeAll(async () => {
    ensureTool('helm'); // preflight for provider = "existing" needs helm
    path = [binDir(), process.env.PATH].join(delimiter);
    blackhole = createServer((s) => void held.push(s.on('error', () => undefined)));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()));
    const port = (blackhole.address() as { port: number }).port;
    cwd = mkdtempSync(join(tmpdir(), 'vaultlab-sigint-'));
    writeFileSync(
      join(cwd, 'kubeconfig'),
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: hole, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: u, user: {token: not-a-secret}}]',
        'contexts: [{name: hole, context: {cluster: hole, user: u}}]',
        'current-context: hole',
        '',
      ].join('\n'),
    );
    const config = readFileSync(BUNDLED_CONFIG, 'utf8').replace(/^provider = "kind".*$/m, `provider = "existing"\nkubeconfig = "${join(cwd, 'kubeconfig')}"`);
    expect(config).toContain('provider = "existing"');
    writeFileSync(join(cwd, 'config.toml'), config);
  }, 600_000);
  afterAll(() => {
    for (const s of held) s.destroy();
    blackhole?.close();
  });

  it('exits 130 within seconds, names the step, tells to re-run, and releases the lock', async () => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'vaultlab.js'), 'deploy', '--ci', '--verbose', '--name', 'sigint-test'], {
      cwd,
      env: { ...process.env, PATH: path, NO_COLOR: '1', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const started = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('[STARTED] Cluster')) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await Promise.race([started, exited]);
    expect(stdout, stderr).toContain('[STARTED] Cluster');
    const lock = join(cwd, '.vaultlab', 'sigint-test', 'lock');
    expect(existsSync(lock)).toBe(true);
    await sleep(500); // in the middle of the cluster step: waiting on the API server
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(code).toBe(130);
    expect(stdout).toContain('[COMPLETED] Preflight checks');
    expect(stderr).toContain('error: interrupted during step "cluster"');
    expect(stderr).toContain('fix: Nothing was left that a re-run cannot finish: run `vaultlab deploy` again to complete it.');
    expect(existsSync(lock)).toBe(false);
  });
});
