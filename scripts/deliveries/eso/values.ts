// ESO chart values: stacks/eso/values.yaml, and the image when overridden or mirrored.
import type { Plan } from '../../plan/types.ts';
import { stackValues } from '../../plan/stacks.ts';
import { esoImageValues } from '../../plan/images.ts';
import { mergeValues } from '../../plan/values.ts';

export function esoValues(plan: Plan): Record<string, any> {
  return mergeValues(stackValues('eso/values.yaml'), esoImageValues(plan.images));
}
