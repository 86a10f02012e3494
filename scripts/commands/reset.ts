// `vaultlab reset`: --secrets puts every secret back to its configured state in seconds;
// --full destroys and redeploys everything, Vault's data included, after one confirmation.
import type { Command, CommandContext } from './types.ts';
import { loadOptions } from './types.ts';
import { VAULT_OPTIONS } from '../vault/session.ts';
import { UsageError } from '../lib/errors.ts';

/** One yes/no question; never asked with --yes or in CI, refused without a terminal. */
export async function confirm(ctx: CommandContext, question: string, isTTY: boolean = !!process.stdin.isTTY && !!process.stderr.isTTY): Promise<boolean> {
  if (ctx.flags.yes || ctx.flags.ci) return true;
  if (!isTTY) throw new UsageError(`${question.replace(/\?$/, '')}: this needs a confirmation, and there is no terminal to ask`, 'Pass --yes (CI mode, --ci or CI=true, never asks).');
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function timeoutMs(ctx: CommandContext, fallbackSeconds: number): number {
  const raw = ctx.options.timeout;
  if (raw === undefined) return fallbackSeconds * 1000;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError('--timeout takes a number of seconds', 'e.g. --timeout 120');
  return n * 1000;
}

async function resetFull(ctx: CommandContext): Promise<number> {
  const { loadConfig } = await import('../config/load.ts');
  const { buildPlan } = await import('../plan/build.ts');
  const { stateDirFor } = await import('../lib/state.ts');
  const { destroyEnvironment } = await import('../lifecycle/destroy.ts');
  const { existsSync } = await import('node:fs');
  const plan = buildPlan(loadConfig(loadOptions(ctx.flags)));
  const where = plan.cluster.provider === 'kind' ? `kind cluster "${plan.cluster.name}"` : `what vaultlab installed in context "${plan.cluster.context ?? 'current'}"`;
  const data = plan.vault.external ? `(the external Vault at ${plan.vault.hostAddress} keeps its data; secrets are re-seeded)` : "Vault's data, its keys and every secret in it are lost";
  const state = stateDirFor(plan.cluster.name, ctx.options['state-dir'] as string | undefined);
  // A profile switch that the redeploy would refuse (an external Vault vaultlab initialized with
  // the other profile outlives the destroy) is refused before anything is destroyed.
  const { assertProfileSwitchAllowed } = await import('../production/switch.ts');
  assertProfileSwitchAllowed(state, plan.profile, { resetFull: true, cluster: plan.cluster.name, ...(plan.vault.external ? { externalVault: plan.vault.hostAddress } : {}) });
  if (!(await confirm(ctx, `Destroy ${where} and deploy it again from scratch? ${data}?`))) {
    ctx.out.info('Nothing done.');
    if (ctx.flags.json) ctx.out.result({ ok: true, action: 'cancelled' });
    return 0;
  }
  const t0 = performance.now();
  const release = existsSync(state.path) ? state.lock('reset --full') : () => {};
  let destroyed;
  try {
    destroyed = await destroyEnvironment(plan, state, { kubeconfigPath: plan.cluster.kubeconfig ?? process.env.KUBECONFIG, waitMs: timeoutMs(ctx, 300) });
  } finally {
    release();
  }
  const destroyMs = Math.round(performance.now() - t0);
  if (!ctx.flags.json) ctx.out.info(`Destroyed in ${(destroyMs / 1000).toFixed(1)} s: ${destroyed.removed.join(', ') || 'nothing was there'}. Deploying again.`);
  const deploy = (await import('./deploy.ts')).commands.find((c) => c.name === 'deploy')!;
  const options = Object.fromEntries(['timeout', 'preload', 'skip-samples'].filter((k) => ctx.options[k] !== undefined).map((k) => [k, ctx.options[k]]));
  if (!ctx.flags.json) return deploy.run({ ...ctx, options });
  // One JSON document for machines: deploy's own report nested in reset's.
  const { Output } = await import('../lib/output.ts');
  const { Writable } = await import('node:stream');
  let text = '';
  const sink = new Writable({ write: (chunk, _enc, cb) => ((text += String(chunk)), cb()) });
  let code: number;
  let deployReport: unknown;
  try {
    code = await deploy.run({ ...ctx, options, out: new Output({ json: true, verbose: ctx.flags.verbose, plain: true, stdout: sink }) });
    deployReport = text.trim() ? JSON.parse(text) : undefined;
  } catch (err) {
    (err as { report?: unknown }).report = { action: 'reset-full', destroy: { ...destroyed, ms: destroyMs }, ms: Math.round(performance.now() - t0), ...((err as { report?: object }).report ?? {}) };
    throw err;
  }
  ctx.out.result({ ok: code === 0, action: 'reset-full', ms: Math.round(performance.now() - t0), destroy: { ...destroyed, ms: destroyMs }, deploy: deployReport });
  return code;
}

export const commands: Command[] = [
  {
    name: 'reset',
    summary: 'Put secrets back to their configured state (--secrets) or rebuild everything (--full)',
    description: [
      '--secrets: demo literals back to their values, random values regenerated (Vault\'s CSPRNG), then',
      'every consumer made to see them: each ExternalSecret forced to re-sync (annotation force-sync) until',
      'its Secret equals Vault by digest, the Deployments whose pods read a changed key through env or a',
      'Secret volume restarted (kubectl.kubernetes.io/restartedAt) until their pods hold it, the injector\'s',
      'files awaited until re-rendered. It ends when every pod holds the reset values. --no-restart: only',
      'until every Secret holds them (no pod restarted); --no-wait: once Vault is reset and the re-syncs',
      'forced (with --restart: every sample Deployment restarted, not awaited). No cluster recreation:',
      'seconds. A demo Vault found sealed after a restart is unsealed first.',
      '--full: destroy and deploy again from scratch, Vault\'s data included. Asks once (never with --yes,',
      '--ci or CI=true; without a terminal it refuses: pass --yes).',
    ].join('\n'),
    options: {
      ...VAULT_OPTIONS,
      secrets: { type: 'boolean', description: 'reset the secrets only (seconds)' },
      full: { type: 'boolean', description: 'destroy and redeploy everything' },
      'no-restart': { type: 'boolean', description: 'with --secrets: wait until the Kubernetes Secrets hold the values, restart no pod' },
      'no-wait': { type: 'boolean', description: 'with --secrets: wait for nothing (re-syncs forced)' },
      restart: { type: 'boolean', description: 'with --secrets --no-wait: restart every sample Deployment (without it, the consumers that need it are restarted and awaited)' },
      wait: { type: 'boolean', description: 'with --secrets: accepted for old scripts; waiting for the consumers is the default' },
      timeout: { type: 'string', value: 'SECONDS', description: 'how long to wait (--secrets: 120; --full: per rollout, 300)' },
      preload: { type: 'boolean', description: 'with --full: load images already on the host into kind' },
      'skip-samples': { type: 'boolean', description: 'with --full: do not deploy the sample apps' },
    },
    async run(ctx) {
      if (!!ctx.options.secrets === !!ctx.options.full) throw new UsageError('reset needs exactly one of --secrets or --full', 'vaultlab reset --secrets   (seconds), or vaultlab reset --full   (rebuild)');
      if (ctx.options.full) return resetFull(ctx);
      const wait = timeoutMs(ctx, 120);
      const { connectEnvironment } = await import('../lifecycle/connect.ts');
      const { resetSecrets } = await import('../lifecycle/reset.ts');
      const { printSeed } = await import('../vault/cli-helpers.ts');
      const env = await connectEnvironment(ctx);
      const release = env.state.lock('reset --secrets');
      const t0 = performance.now();
      try {
        if (!env.kube) ctx.out.warn(`the cluster is not reachable (${env.kubeProblem}): Vault is reset, but ESO cannot be told to re-sync; it picks the values up at its next refresh`);
        if (ctx.options['no-wait'] && ctx.options['no-restart']) throw new UsageError('reset --secrets: --no-wait and --no-restart contradict each other', '--no-restart waits for the Secrets; --no-wait waits for nothing.');
        if (ctx.options.restart && !ctx.options['no-wait']) ctx.out.warn('--restart only matters with --no-wait: the consumers that need it are restarted and awaited anyway');
        const until = ctx.options['no-wait'] ? 'none' : ctx.options['no-restart'] ? 'secrets' : 'pods';
        const r = await resetSecrets(env, { until, restart: !!ctx.options.restart && until === 'none', timeoutMs: wait });
        const ms = Math.round(performance.now() - t0);
        if (ctx.flags.json) ctx.out.result({ ok: true, action: 'reset-secrets', ms, cluster: env.plan.cluster.name, clusterReachable: !!env.kube, ...r });
        else {
          if (r.unsealed) ctx.out.info('Vault was sealed (restart?); unsealed it from the stored key first.');
          printSeed(ctx, r.seed);
          const paths = new Set(r.seed.entries.filter((e) => e.action !== 'unchanged').map((e) => e.path)).size;
          const { printConsumers } = await import('./rotate.ts');
          printConsumers(ctx, r.consumers);
          ctx.out.info(`reset ${paths} secret path(s) in Vault; re-sync forced on ${r.resynced.length} ExternalSecret(s)${r.synced.length ? `, ${r.synced.length} equal to Vault` : ''}; restarted ${r.restarted.length ? r.restarted.join(', ') : 'no Deployment'}; ${(ms / 1000).toFixed(1)} s`);
        }
        return 0;
      } finally {
        release();
        await env.close();
      }
    },
  },
];
