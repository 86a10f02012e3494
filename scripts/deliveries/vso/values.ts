// VSO chart values: stacks/vso/values.yaml, and the images when overridden or mirrored.
import type { Plan } from '../../plan/types.ts';
import { stackValues } from '../../plan/stacks.ts';
import { vsoImageValues } from '../../plan/images.ts';
import { mergeValues } from '../../plan/values.ts';

export function vsoValues(plan: Plan): Record<string, any> {
  return mergeValues(stackValues('vso/values.yaml'), vsoImageValues(plan.images));
}
