// ESO chart values: stacks/eso/values.yaml, and the image when overridden or mirrored.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Plan } from '../../plan/types.ts';
import { PROJECT_ROOT } from '../../config/load.ts';
import { esoImageValues } from '../../plan/images.ts';
import { mergeValues } from '../../plan/values.ts';

export function esoValues(plan: Plan): Record<string, any> {
  const stack = parseYaml(readFileSync(resolve(PROJECT_ROOT, 'stacks', 'eso', 'values.yaml'), 'utf8')) as Record<string, any>;
  return mergeValues(stack, esoImageValues(plan.images));
}
