// The one reading of a config duration string ("1h30m"); zod-free, for code that runs after the
// config is loaded (plan, Vault configure, status).
/** Seconds in a `duration` ("1h30m" -> 5400; milliseconds rounded). */
export function durationSeconds(d: string): number {
  let total = 0;
  for (const m of d.matchAll(/([0-9]+)(ms|s|m|h)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  return Math.round(total);
}
