// What a pod actually holds, compared by digest (never a value): commands run in a container
// through the API server (pods/exec) whose argv names a variable or a file, never a value; and,
// pure, which of a pod template's containers read which key of a Secret (env, envFrom, volume).
import { randomBytes } from 'node:crypto';
import type { Kube } from '../adapters/kube.ts';

/** Where `kubectl rollout restart` records a restart in the pod template (what vaultlab writes when it restarts a Deployment itself). */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

export interface ExecOutcome {
  stdout: string;
  stderr: string;
  ok: boolean;
}

interface Queued {
  command: string[];
  resolve(r: ExecOutcome): void;
  reject(err: unknown): void;
}

/** Commands asked for in the same tick, per Kube and pod container: they run as one exec. */
const batches = new WeakMap<Kube, Map<string, Queued[]>>();

/**
 * Runs a command in a container through the API server (pods/exec); stdout, never echoed.
 * Commands for the same container asked for at once (a verify's probes: every key of a pod) run
 * in one exec: each exec starts a process in the container through the kubelet and the runtime,
 * 0.1-0.7 s each on a busy node, and a warm re-deploy probed 9 times. Each command keeps its own
 * stdout, stderr and exit status; a container without `sh` gets them one by one.
 */
export function execInPod(kube: Kube, namespace: string, pod: string, container: string, command: string[]): Promise<ExecOutcome> {
  let byContainer = batches.get(kube);
  if (!byContainer) batches.set(kube, (byContainer = new Map()));
  const key = JSON.stringify([namespace, pod, container]);
  let queue = byContainer.get(key);
  if (!queue) {
    const q: Queued[] = (queue = []);
    byContainer.set(key, q);
    setImmediate(() => {
      byContainer.delete(key);
      void runBatch(kube, namespace, pod, container, q);
    });
  }
  return new Promise<ExecOutcome>((resolve, reject) => queue.push({ command, resolve, reject }));
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** One sh script running each command in turn, its output fenced by markers with a fresh nonce; the argv holds what the commands held (names, paths), never a value. */
export function batchScript(commands: string[][], nonce: string): string {
  return commands
    .map((argv, i) => `printf '@@${nonce} ${i}\\n'; printf '@@${nonce} ${i}\\n' >&2; ${argv.map(shellQuote).join(' ')}; printf '\\n@@${nonce} ${i} %d\\n' "$?"; printf '\\n@@${nonce} ${i} end\\n' >&2`)
    .join('\n');
}

/** Each command's outcome from a batch's output; undefined when the batch did not run them all (no sh, a cut connection). */
export function splitBatch(stdout: string, stderr: string, count: number, nonce: string): ExecOutcome[] | undefined {
  const out: ExecOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const o = new RegExp(`(?:^|\\n)@@${nonce} ${i}\\n([\\s\\S]*?)\\n@@${nonce} ${i} (\\d+)\\n`).exec(stdout);
    const e = new RegExp(`(?:^|\\n)@@${nonce} ${i}\\n([\\s\\S]*?)\\n@@${nonce} ${i} end\\n`).exec(stderr);
    if (!o) return undefined;
    out.push({ stdout: o[1]!, stderr: e?.[1] ?? '', ok: o[2] === '0' });
  }
  return out;
}

async function runBatch(kube: Kube, namespace: string, pod: string, container: string, queue: Queued[]): Promise<void> {
  const one = (q: Queued) => kube.exec(namespace, pod, container, q.command).then(q.resolve, q.reject);
  if (queue.length === 1) return one(queue[0]!);
  const nonce = randomBytes(8).toString('hex');
  const r = await kube.exec(namespace, pod, container, ['sh', '-c', batchScript(queue.map((q) => q.command), nonce)]).catch(() => undefined);
  const split = r && splitBatch(r.stdout, r.stderr, queue.length, nonce);
  if (!split) {
    await Promise.all(queue.map(one));
    return;
  }
  queue.forEach((q, i) => q.resolve(split[i]!));
}

/** Ready, and not on its way out (a rollout's old pod keeps Ready while it terminates). */
export const podReady = (pod: any): boolean => (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True') && !pod.metadata?.deletionTimestamp;

/** `kubectl rollout status`: the latest template observed, every replica updated and available, no old one left. */
export function rolloutComplete(d: any): boolean {
  const want = d?.spec?.replicas ?? 1;
  const s = d?.status ?? {};
  return (s.observedGeneration ?? 0) >= (d?.metadata?.generation ?? 0) && (s.updatedReplicas ?? 0) >= want && (s.replicas ?? 0) <= (s.updatedReplicas ?? 0) && (s.availableReplicas ?? 0) >= want;
}

/** One place a container reads one key of a Secret: an environment variable, or a file. */
export type SecretProbe =
  | { container: string; secret: string; key: string; via: 'env'; name: string }
  | { container: string; secret: string; key: string; via: 'file'; file: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Where a pod template's containers read the Secrets named in `keysOf` (Secret name -> its keys):
 * env valueFrom.secretKeyRef, envFrom.secretRef (with its prefix; keys that are not valid
 * variable names are skipped, as the kubelet does), and secret volumes (items, or every key)
 * at each mountPath (subPath mounts: the one file). Init containers have exited: not probed.
 */
export function secretProbes(podSpec: any, keysOf: ReadonlyMap<string, readonly string[]>): SecretProbe[] {
  const out: SecretProbe[] = [];
  const volumes = new Map<string, { secret: string; files: { key: string; path: string }[] }>();
  for (const v of podSpec?.volumes ?? []) {
    const name = v.secret?.secretName as string | undefined;
    if (!name || !keysOf.has(name)) continue;
    const items: { key: string; path: string }[] | undefined = v.secret.items;
    volumes.set(v.name, { secret: name, files: items?.length ? items.map((i) => ({ key: i.key, path: i.path })) : keysOf.get(name)!.map((k) => ({ key: k, path: k })) });
  }
  for (const c of podSpec?.containers ?? []) {
    const seen = new Set<string>();
    const add = (p: SecretProbe) => {
      const id = p.via === 'env' ? `env:${p.name}` : `file:${p.file}`;
      if (!seen.has(id)) (seen.add(id), out.push(p));
    };
    for (const from of c.envFrom ?? []) {
      const name = from.secretRef?.name as string | undefined;
      if (!name || !keysOf.has(name)) continue;
      for (const key of keysOf.get(name)!) {
        const env = `${from.prefix ?? ''}${key}`;
        if (ENV_NAME.test(env)) add({ container: c.name, secret: name, key, via: 'env', name: env });
      }
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref?.name && keysOf.has(ref.name) && keysOf.get(ref.name)!.includes(ref.key) && ENV_NAME.test(e.name)) add({ container: c.name, secret: ref.name, key: ref.key, via: 'env', name: e.name });
    }
    for (const m of c.volumeMounts ?? []) {
      const vol = volumes.get(m.name);
      if (!vol) continue;
      const root = String(m.mountPath).replace(/\/+$/, '');
      for (const f of vol.files) {
        if (!keysOf.get(vol.secret)!.includes(f.key)) continue;
        if (m.subPath) {
          if (m.subPath === f.path) add({ container: c.name, secret: vol.secret, key: f.key, via: 'file', file: root });
        } else add({ container: c.name, secret: vol.secret, key: f.key, via: 'file', file: `${root}/${f.path}` });
      }
    }
  }
  return out;
}

/** The command that prints a probe's SHA-256 in the pod; its argv holds a variable's name or a path, never a value. */
export function probeCommand(p: SecretProbe): string[] {
  if (p.via === 'file') return ['sha256sum', p.file];
  if (!ENV_NAME.test(p.name)) throw new Error(`internal: "${p.name}" is not a variable name`);
  // printf %s: the value exactly, no newline added (printenv adds one). An unset variable fails.
  return ['sh', '-c', `test -n "\${${p.name}+set}" && printf %s "$${p.name}" | sha256sum`];
}

/** What a probe found: the digest, or why there is none. */
export async function probeDigest(kube: Kube, namespace: string, pod: string, p: SecretProbe): Promise<{ digest?: string; problem?: string }> {
  const r = await execInPod(kube, namespace, pod, p.container, probeCommand(p));
  const digest = /^([0-9a-f]{64})\s/.exec(r.stdout)?.[1];
  if (r.ok && digest) return { digest };
  const what = p.via === 'env' ? `variable ${p.name}` : `file ${p.file}`;
  return { problem: `${what} is not in pod ${pod} (container ${p.container})${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}` };
}

/** Asks `check` every `intervalMs` until it finds no problem, the deadline passes or `signal` aborts; the last problems then. */
export async function settle(deadline: number, signal: AbortSignal | undefined, check: () => Promise<string[]>, intervalMs = 2000): Promise<string[]> {
  for (;;) {
    const problems = await check();
    if (problems.length === 0 || Date.now() >= deadline || signal?.aborted) return problems;
    await new Promise<void>((r) => {
      const t = setTimeout(r, intervalMs);
      signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
    });
  }
}
