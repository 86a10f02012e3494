// Field rules several config tables share (schema.ts, kubernetes-roles.ts, databases.ts), and the
// one reading of a duration string that goes with them.
import { z } from 'zod';

export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and "-", at most 63 characters');

export const duration = z.string().regex(/^([0-9]+(ms|s|m|h))+$/, 'must be a duration like "30s", "15m" or "1h"');

/** Seconds in a `duration` ("1h30m" -> 5400; milliseconds rounded). */
export function durationSeconds(d: string): number {
  let total = 0;
  for (const m of d.matchAll(/([0-9]+)(ms|s|m|h)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  return Math.round(total);
}
