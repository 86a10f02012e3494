// Helm values helpers shared by the Vault chart and the deliveries' charts.

/** Deep merge for Helm values: objects merge, everything else is replaced. */
export function mergeValues(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' && !Array.isArray(out[k]) ? mergeValues(out[k], v) : v;
  }
  return out;
}
