// Probes in a pod asked for at once run as one exec (scripts/deliveries/pods.ts): the batch
// script runs here in a real `sh` (busybox's or dash, as the sample images have), standing in
// for the container, and each command must come back exactly as it would alone.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { batchScript, execInPod, probeCommand, splitBatch, type ExecOutcome } from '../../scripts/deliveries/pods.ts';
import type { Kube } from '../../scripts/adapters/kube.ts';

/** A command as `sh` runs it in the container: stdout, stderr, exit status (ok = 0). */
function runHere(argv: string[], env: NodeJS.ProcessEnv = {}): ExecOutcome {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, ok: r.status === 0 };
}

/** A Kube whose pods/exec runs the command here, recording every exec it was asked for. */
function localKube(env: NodeJS.ProcessEnv, opts: { noShell?: boolean } = {}) {
  const execs: string[][] = [];
  const kube = {
    async exec(_ns: string, _pod: string, _container: string, command: string[]) {
      execs.push(command);
      if (opts.noShell && command[0] === 'sh') throw new Error('exec: "sh": executable file not found in $PATH');
      return runHere(command, env);
    },
  } as unknown as Kube;
  return { kube, execs };
}

const env = { API_KEY: "it's a \"value\"\nwith lines", EMPTY: '', DB: 'pw' };
const commands: string[][] = [
  probeCommand({ container: 'app', secret: 's', key: 'API_KEY', via: 'env', name: 'API_KEY' }),
  probeCommand({ container: 'app', secret: 's', key: 'MISSING', via: 'env', name: 'MISSING' }),
  ['sh', '-c', 'printf "no newline at the end"; echo "to stderr" >&2; exit 4'],
  ['sh', '-c', "echo 'single '\\'' quotes' \"$0\"", "arg with 'quotes' and $HOME"],
  ['sh', '-c', 'true'],
  probeCommand({ container: 'app', secret: 's', key: 'DB', via: 'env', name: 'DB' }),
];

describe('exec batching (one pods/exec for the probes of a container)', () => {
  it('every command of a batch gives what it gives alone: stdout, stderr and its exit status', () => {
    const nonce = '0123456789abcdef';
    const r = runHere(['sh', '-c', batchScript(commands, nonce)], env);
    const split = splitBatch(r.stdout, r.stderr, commands.length, nonce);
    expect(split).toEqual(commands.map((c) => runHere(c, env)));
    // A batch that did not run to the end (a cut connection) is no answer: each runs on its own.
    expect(splitBatch(r.stdout.slice(0, r.stdout.indexOf(`@@${nonce} 3 `)), r.stderr, commands.length, nonce)).toBeUndefined();
  });

  it('probes asked for at once in one container are one exec; other containers and later calls are their own', async () => {
    const { kube, execs } = localKube(env);
    const results = await Promise.all(commands.map((c) => execInPod(kube, 'ns', 'pod', 'app', c)));
    expect(results).toEqual(commands.map((c) => runHere(c, env)));
    expect(execs).toHaveLength(1);
    expect(execs[0]![0]).toBe('sh');
    // The batch's argv holds what the commands held (variable names, paths), never a value.
    for (const v of Object.values(env).filter(Boolean)) expect(execs[0]!.join(' ')).not.toContain(v);

    execs.length = 0;
    await Promise.all([execInPod(kube, 'ns', 'pod', 'app', commands[0]!), execInPod(kube, 'ns', 'pod', 'sidecar', commands[5]!), execInPod(kube, 'ns', 'other', 'app', commands[5]!)]);
    expect(execs).toEqual([commands[0], commands[5], commands[5]]);
    execs.length = 0;
    await execInPod(kube, 'ns', 'pod', 'app', commands[0]!);
    await execInPod(kube, 'ns', 'pod', 'app', commands[5]!);
    expect(execs).toEqual([commands[0], commands[5]]);
  });

  it('a container without sh gets its commands one by one, each with its own answer', async () => {
    const { kube, execs } = localKube(env, { noShell: true });
    const file = ['sha256sum', '/etc/hostname'];
    const absent = ['sha256sum', '/no/such/file'];
    const [a, b] = await Promise.all([execInPod(kube, 'ns', 'pod', 'app', file), execInPod(kube, 'ns', 'pod', 'app', absent)]);
    expect(a).toEqual(runHere(file));
    expect(b).toEqual(runHere(absent));
    expect(b.ok).toBe(false);
    expect(execs.map((c) => c[0])).toEqual(['sh', 'sha256sum', 'sha256sum']);
  });
});
