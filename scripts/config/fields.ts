// Field rules several config tables share (schema.ts, kubernetes-roles.ts, databases.ts), and the
// one reading of a duration string that goes with them.
import { z } from 'zod';

export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and "-", at most 63 characters');

export const duration = z.string().regex(/^([0-9]+(ms|s|m|h))+$/, 'must be a duration like "30s", "15m" or "1h"');

export { durationSeconds } from './duration.ts';
