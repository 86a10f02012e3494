// `vaultlab deploy`: config.toml -> a working cluster where apps read secrets from Vault via ESO.
import { loadOptions, type Command } from './types.ts';

export const commands: Command[] = [
  {
    name: 'deploy',
    summary: 'Create or update the whole environment (kind, Vault, ESO, secrets, sample apps) and verify it',
    description: [
      'Steps: preflight, cluster (kind create or reuse), install Vault and ESO (Helm, in parallel),',
      'Vault init/unseal/configure/seed, ESO resources, sample apps, verify (every Secret compared with',
      'Vault by SHA-256), summary. Every step is idempotent: a re-run on a healthy environment changes',
      'nothing (no upgrade, no rotation, no restarts) and finishes fast. Ctrl-C stops the running step',
      '(exit 130); the next run completes the work. --json prints {ok, steps: [{name, ms, outcome}], summary}.',
    ].join('\n'),
    options: {
      preload: { type: 'boolean', description: 'load the images a deploy needs into kind when they are already on the host (skips registry pulls)' },
      'skip-samples': { type: 'boolean', description: 'do not deploy the sample apps' },
      timeout: { type: 'string', value: 'SECONDS', description: 'how long to wait for each rollout or sync (default 300)' },
      'keys-file': { type: 'string', value: 'FILE', description: 'production: unseal key shares, when Vault restarted sealed and the key file is kept offline' },
    },
    async run(ctx) {
      const { loadConfig } = await import('../config/load.ts');
      const { buildPlan } = await import('../plan/build.ts');
      const { stateDirFor } = await import('../lib/state.ts');
      const { runSteps, InterruptedError } = await import('../lib/tasks.ts');
      const { DEPLOY_STEPS } = await import('../steps/index.ts');
      const { newDeployContext } = await import('../steps/context.ts');
      const { summaryLines } = await import('../steps/summary.ts');
      const { UsageError } = await import('../lib/errors.ts');
      const loaded = loadConfig(loadOptions(ctx.flags));
      for (const w of loaded.warnings) ctx.out.warn(w);
      const plan = buildPlan(loaded);
      if (plan.ignoredLiterals.length) ctx.out.warn(`production profile: ignoring ${plan.ignoredLiterals.length} demo value(s) from [passwords]; they are generated randomly`);
      const timeout = ctx.options.timeout === undefined ? 300 : Number(ctx.options.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout takes a number of seconds', 'For example: vaultlab deploy --timeout 600');
      const state = stateDirFor(plan.cluster.name);
      const keysFile = ctx.options['keys-file'] as string | undefined;
      const keys = keysFile ? (await import('../vault/keys.ts')).readKeysFile(keysFile) : undefined;
      const release = state.lock('deploy');
      const dctx = newDeployContext({
        loaded,
        plan,
        out: ctx.out,
        state,
        options: { preload: !!ctx.options.preload, skipSamples: !!ctx.options['skip-samples'], timeoutMs: timeout * 1000, keys },
      });
      const t0 = performance.now();
      let interrupted = false;
      try {
        const steps = await runSteps(DEPLOY_STEPS, dctx, ctx.out, { command: 'deploy' });
        if (ctx.flags.json) ctx.out.result({ ok: true, profile: plan.profile, cluster: plan.cluster.name, ms: Math.round(performance.now() - t0), steps, summary: dctx.summary });
        else for (const l of summaryLines(dctx)) ctx.out.info(l);
        return 0;
      } catch (err) {
        interrupted = err instanceof InterruptedError;
        // The CLI's error report carries these into the --json output.
        (err as { report?: unknown }).report = { ms: Math.round(performance.now() - t0), steps: (err as { steps?: unknown }).steps ?? [], summary: dctx.summary };
        throw err;
      } finally {
        // A step after install failed while the deliveries' Helm releases were still waiting on
        // their pods: helm is left to finish (an interrupted release would be undone and done
        // again by the next run), within its own --wait timeout. Ctrl-C stops it.
        if (dctx.releases && !interrupted) {
          let settled = false;
          void dctx.releases.then(() => (settled = true), () => (settled = true));
          await new Promise((r) => setImmediate(r));
          if (!settled) ctx.out.info('waiting for the deliveries\' Helm releases to finish (Ctrl-C stops them)');
          await dctx.releases.catch(() => undefined);
        }
        dctx.vault?.close();
        await Promise.all(dctx.forwards.map((f) => f.close()));
        release();
        // A step cut short by Ctrl-C may still hold a watch or a timer: once the error is
        // printed, do not wait for it. (unref: a process that can exit sooner does.)
        if (interrupted) setTimeout(() => process.exit(130), 1000).unref();
      }
    },
  },
];
