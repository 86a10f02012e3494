// `vaultlab plan`: config + profile -> the typed plan and every artifact a deploy uses,
// with no cluster. Deterministic: the same input gives byte-identical output.
import { loadOptions, type Command } from './types.ts';
import { loadConfig } from '../config/load.ts';

export const commands: Command[] = [
  {
    name: 'plan',
    summary: 'Render everything a deploy would do (no cluster needed); --out DIR writes the artifacts',
    description: [
      'Renders, without touching any cluster: the kind cluster config, Helm values for Vault and ESO,',
      'Vault policies (HCL), auth roles, the seeding matrix (sources and formats, never values), and every',
      'Kubernetes manifest (Namespaces, ServiceAccounts, SecretStores, ExternalSecrets, sample apps),',
      'each validated against its schema. Same input, same bytes: commit the output for GitOps.',
      '',
      'Examples:',
      '  vaultlab plan                          summary of what a deploy does',
      '  vaultlab plan --out out/demo           write all artifacts',
      '  vaultlab plan --profile production --diff   what production changes against demo',
    ].join('\n'),
    options: {
      out: { type: 'string', short: 'o', value: 'DIR', description: 'write the artifacts into DIR' },
      diff: { type: 'boolean', description: 'show how this profile differs from the other one, artifact by artifact' },
    },
    async run(ctx) {
      const { buildPlan } = await import('../plan/build.ts');
      const { renderArtifacts } = await import('../plan/render.ts');
      const { writeArtifacts, summarize, diffArtifacts } = await import('../plan/output.ts');
      const loaded = loadConfig(loadOptions(ctx.flags));
      for (const w of loaded.warnings) ctx.out.warn(w);
      const plan = buildPlan(loaded);
      const artifacts = renderArtifacts(plan);
      if (plan.ignoredLiterals.length) {
        ctx.out.warn(`production profile: ignoring ${plan.ignoredLiterals.length} demo value(s) from [passwords] (${plan.ignoredLiterals.join(', ')}); they are generated randomly instead`);
      }
      const outDir = ctx.options.out as string | undefined;
      if (outDir) writeArtifacts(outDir, artifacts);
      let diff: string | undefined;
      if (ctx.options.diff) {
        const other = plan.profile === 'production' ? 'demo' : 'production';
        const otherArtifacts = renderArtifacts(buildPlan(loadConfig({ ...loadOptions(ctx.flags), profile: other })));
        diff = diffArtifacts(otherArtifacts, artifacts, other, plan.profile);
      }
      if (ctx.flags.json) {
        ctx.out.result({ ok: true, profile: plan.profile, out: outDir ?? null, artifacts: [...artifacts.keys()], plan, ...(diff !== undefined ? { diff } : {}) });
      } else {
        ctx.out.info(summarize(plan, artifacts));
        if (outDir) ctx.out.info(`\nWrote ${artifacts.size} files to ${outDir}`);
        if (diff !== undefined) ctx.out.info(`\n${diff}`);
      }
      return 0;
    },
  },
];
