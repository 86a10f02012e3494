// `vaultlab images`: every image a deploy runs, read from the rendered charts and manifests, and
// which of them this machine's Docker holds (what `deploy --preload` loads into kind).
import { loadOptions, type Command } from './types.ts';
import { loadConfig } from '../config/load.ts';

export const commands: Command[] = [
  {
    name: 'images',
    summary: 'List every image a deploy runs (from the rendered charts) and which ones Docker holds',
    description: [
      'Renders the Vault/OpenBao and ESO charts with the values vaultlab would install (`helm template`),',
      'adds the sample apps and the kind node image, and checks each against the host\'s Docker. An image',
      'missing on a machine that cannot pull makes its pod wait in ImagePullBackOff: bring it first',
      '(docker pull / docker load), or point [images] at a mirror or a local build (see README, Air-gapped).',
      'Exits 1 when an image is missing and --check is given.',
      '',
      'Examples:',
      '  vaultlab images                  table: image, present, who runs it',
      '  vaultlab images --json           the same for scripts',
      '  vaultlab images --check          exit 1 unless every image is present (CI, air-gapped prep)',
    ].join('\n'),
    options: {
      check: { type: 'boolean', description: 'exit 1 when an image is not in the local Docker' },
    },
    async run(ctx) {
      const { buildPlan } = await import('../plan/build.ts');
      const { imageStatus } = await import('../lifecycle/images.ts');
      const plan = buildPlan(loadConfig(loadOptions(ctx.flags)));
      const images = await imageStatus(plan);
      const missing = images.filter((i) => !i.present);
      const code = ctx.options.check && missing.length ? 1 : 0;
      if (ctx.flags.json) {
        ctx.out.result({ ok: missing.length === 0, exitCode: code, images, missing: missing.map((i) => i.image) });
        return code;
      }
      const width = Math.max(...images.map((i) => i.image.length));
      for (const i of images) ctx.out.info(`${i.present ? 'present' : 'MISSING'}  ${i.image.padEnd(width)}  ${i.usedBy.join(', ')}`);
      ctx.out.info(
        missing.length
          ? `${missing.length} of ${images.length} image(s) not in the local Docker. With a registry: \`vaultlab deploy\` pulls them. Offline: \`docker load -i <file>\` each (or set [images] mirror / overrides), then \`vaultlab deploy --preload\`.`
          : `All ${images.length} image(s) are in the local Docker: \`vaultlab deploy --preload\` loads them into kind without a registry.`,
      );
      return code;
    },
  },
];
