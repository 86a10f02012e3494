// One process-wide registry of secret values. Everything that prints (logger, error
// formatter, JSON reports) passes its text through `redact()`, so a value registered here
// never reaches a terminal, a log file or a CI transcript.

const MIN_LENGTH = 4; // shorter strings would mask ordinary words; such values are refused as literals anyway
const secrets = new Set<string>();

export const MASK = '***';

export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_LENGTH) return;
  secrets.add(value);
  // Also mask common encodings of the value that end up in API payloads and errors.
  secrets.add(Buffer.from(value, 'utf8').toString('base64'));
  const json = JSON.stringify(value).slice(1, -1);
  if (json !== value) secrets.add(json);
}

export function redact(text: string): string {
  if (secrets.size === 0 || !text) return text;
  let out = text;
  // Longest first, so a value containing another is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  return out;
}

export function registeredSecretCount(): number {
  return secrets.size;
}

/** For tests only. */
export function clearSecrets(): void {
  secrets.clear();
}
