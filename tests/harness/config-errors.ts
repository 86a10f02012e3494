// The config errors a config.toml text produces (ConfigErrors unpacked), for tests that assert on
// them; a text that loads is a test failure.
import { loadConfigText } from '../../scripts/config/load.ts';
import { ConfigError, ConfigErrors } from '../../scripts/lib/errors.ts';

export function configErrors(text: string, opts: Parameters<typeof loadConfigText>[2] = {}): ConfigError[] {
  try {
    loadConfigText(text, 'config.toml', { env: {}, ...opts });
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors;
    if (err instanceof ConfigError) return [err];
    throw err;
  }
  throw new Error('expected a config error');
}

/** An error's message without its "file:line: field: " prefix. */
export const messageOf = (e: ConfigError): string => e.message.slice(e.where.length + 2);
