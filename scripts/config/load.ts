// config.toml -> validated Config. Pure apart from reading the file and the environment.
// Every problem becomes a ConfigError that names file:line (or the dotted field path) and what to do.
import { readFileSync, existsSync } from 'node:fs';
import { resolve, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import type { Config } from './schema.ts';
import { PROFILES, type ProfileName } from './model.ts';
import { readValidated, writeValidated } from './validated-cache.ts';
import { crossCheck } from './crosscheck.ts';
import { databasePasswordNames } from './databases.ts';
import { indexLines, lineOf } from './locate.ts';
import { ConfigError, ConfigErrors } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';
import { registerSecret } from '../lib/redact.ts';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// The zod schema (zod and the schema's construction: ~60 ms of a process start here) is required
// only when a config text is not in the validated-config cache (validated-cache.ts).
const require = createRequire(import.meta.url);
let schemaModule: typeof import('./schema.ts') | undefined;
const schemaOf = (): typeof import('./schema.ts') => (schemaModule ??= require('./schema.ts') as typeof import('./schema.ts'));
export const BUNDLED_CONFIG = resolve(PROJECT_ROOT, 'config.toml');

export interface LoadOptions {
  /** --config; default ./config.toml, else the bundled demo environment. */
  file?: string | undefined;
  /** --profile; overrides VAULTLAB_PROFILE, which overrides [profile] name. */
  profile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** --name: overrides [cluster] name (and VAULTLAB_CLUSTER_NAME). */
  clusterName?: string | undefined;
  /** CI mode: without an explicit name, derive a unique one from the CI run id. */
  ci?: boolean;
}

export interface LoadedConfig {
  config: Config;
  profile: ProfileName;
  /** Display name of the file ("config.toml" or "<bundled demo>"). */
  file: string;
  bundled: boolean;
  /** Resolved [passwords] after VAULTLAB_PASSWORD_<NAME> overrides. Never print these. */
  passwords: Readonly<Record<string, string>>;
  /** Non-empty [passwords] values of the bundled demo config: production refuses them. */
  demoDefaults: Readonly<Record<string, string>>;
  /** Names whose value came from the environment. */
  passwordsFromEnv: string[];
  warnings: string[];
}

export const passwordEnvName = (name: string): string => `VAULTLAB_PASSWORD_${name.toUpperCase()}`;

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  let path: string;
  let bundled = false;
  if (opts.file) {
    path = resolve(cwd, opts.file);
    if (!existsSync(path)) {
      throw new ConfigError(opts.file, 'file not found', 'Check the --config path, or omit --config to use ./config.toml or the bundled demo environment.');
    }
  } else if (existsSync(resolve(cwd, 'config.toml'))) {
    path = resolve(cwd, 'config.toml');
  } else {
    path = BUNDLED_CONFIG;
    bundled = true;
  }
  const display = bundled ? '<bundled demo config.toml>' : relative(cwd, path) || path;
  const text = readFileSync(path, 'utf8');
  const demoDefaults = bundledDemoDefaults(bundled ? text : undefined);
  return loadConfigText(text, display, { ...opts, env, bundled, demoDefaults, cache: env.VAULTLAB_CONFIG_CACHE !== '0' });
}

/** The non-empty [passwords] of the bundled config.toml. */
export function bundledDemoDefaults(text?: string): Record<string, string> {
  try {
    const raw = parseToml(text ?? readFileSync(BUNDLED_CONFIG, 'utf8')) as { passwords?: Record<string, unknown> };
    return Object.fromEntries(Object.entries(raw.passwords ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
  } catch {
    return {};
  }
}

export function loadConfigText(
  source: string,
  display: string,
  opts: {
    profile?: string | undefined;
    env?: NodeJS.ProcessEnv;
    bundled?: boolean;
    demoDefaults?: Record<string, string>;
    clusterName?: string | undefined;
    ci?: boolean;
    /** Use the validated-config cache (loadConfig does, unless VAULTLAB_CONFIG_CACHE=0). */
    cache?: boolean;
  } = {},
): LoadedConfig {
  const env = opts.env ?? process.env;
  let raw: unknown;
  try {
    raw = parseToml(source);
  } catch (err) {
    if (err instanceof TomlError) {
      const firstLine = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid TOML';
      throw new ConfigError(`${display}:${err.line}:${err.column}`, `TOML syntax error: ${firstLine}`, 'Fix the syntax at that position (TOML 1.0: https://toml.io).');
    }
    throw err;
  }

  const lines = indexLines(source);
  const cacheEnv = opts.cache ? env : undefined;
  let config = cacheEnv ? readValidated(source, raw, cacheEnv) : undefined;
  if (!config) {
    const result = schemaOf().configSchema.safeParse(raw);
    if (!result.success) {
      throw new ConfigErrors(result.error.issues.map((issue) => issueToError(issue, display, lines, raw)));
    }
    config = result.data;
    if (cacheEnv) writeValidated(source, config, cacheEnv);
  }

  // Profile precedence: --profile > VAULTLAB_PROFILE > [profile] name.
  const override = opts.profile ?? env.VAULTLAB_PROFILE;
  if (override !== undefined && override !== '') {
    if (!(PROFILES as readonly string[]).includes(override)) {
      const source = opts.profile !== undefined ? '--profile' : 'VAULTLAB_PROFILE';
      throw new ConfigError(source, `unknown profile "${override}"; allowed: ${PROFILES.join(', ')}`);
    }
    config.profile.name = override as ProfileName;
  }

  const name = clusterNameOverride(config.cluster.name, opts.clusterName, env, opts.ci ?? false);
  if (name !== undefined) config.cluster.name = name;

  // Passwords: the file's values, overridden by VAULTLAB_PASSWORD_<NAME>; names may also exist only in the environment.
  const passwords: Record<string, string> = { ...config.passwords };
  const passwordsFromEnv: string[] = [];
  const referenced = new Set([...config.secrets.map((s) => s.password).filter((p): p is string => !!p), ...databasePasswordNames(config)]);
  for (const name of new Set([...Object.keys(passwords), ...referenced])) {
    const fromEnv = env[passwordEnvName(name)];
    if (fromEnv !== undefined) {
      passwords[name] = fromEnv;
      passwordsFromEnv.push(name);
    }
  }
  for (const value of Object.values(passwords)) registerSecret(value);

  const warnings: string[] = [];
  const errors = crossCheck(config, passwords, (path) => {
    const line = lineOf(lines, path);
    return line === undefined ? `${display}: ${formatPath(path)}` : `${display}:${line}: ${formatPath(path)}`;
  }, warnings);
  if (errors.length > 0) throw new ConfigErrors(errors);

  return {
    config,
    profile: config.profile.name,
    file: display,
    bundled: opts.bundled ?? false,
    passwords,
    demoDefaults: opts.demoDefaults ?? bundledDemoDefaults(),
    passwordsFromEnv: passwordsFromEnv.sort(),
    warnings,
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * --name > VAULTLAB_CLUSTER_NAME > (CI mode) "<name>-ci-<run id>" > [cluster] name.
 * The CI name is derived from the run id, so the always-run `destroy` step of the same run
 * finds the cluster that `deploy` created, and two runs on one machine never share one.
 */
export function clusterNameOverride(base: string, flag: string | undefined, env: NodeJS.ProcessEnv, ci: boolean): string | undefined {
  const explicit = flag ?? (env.VAULTLAB_CLUSTER_NAME || undefined);
  if (explicit !== undefined) {
    if (!DNS_LABEL.test(explicit)) {
      throw new ConfigError(flag !== undefined ? '--name' : 'VAULTLAB_CLUSTER_NAME', `"${explicit}" is not a valid cluster name`, 'Use lowercase letters, digits and "-", at most 63 characters.');
    }
    return explicit;
  }
  if (!ci) return undefined;
  const runId = env.GITHUB_RUN_ID
    ? `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`
    : (env.CI_PIPELINE_ID ?? env.CI_JOB_ID ?? env.BUILD_ID ?? env.BUILDKITE_BUILD_NUMBER ?? env.CIRCLE_WORKFLOW_ID);
  if (!runId) return undefined;
  const suffix = `-ci-${runId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 40);
  return `${base.slice(0, 63 - suffix.length)}${suffix}`.replace(/-+$/, '');
}

/** secrets.3.format -> secrets[3].format */
export function formatPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a table';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** Keys a strict table at `path` accepts, read from the zod schema itself. */
function allowedKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: any = schemaOf().configSchema;
  const unwrap = (s: any): any => {
    while (s?._zod?.def && ['default', 'optional', 'nullable', 'prefault', 'pipe'].includes(s._zod.def.type)) {
      s = s._zod.def.innerType ?? s._zod.def.in;
    }
    return s;
  };
  for (const p of path) {
    schema = unwrap(schema);
    const def = schema?._zod?.def;
    if (!def) return [];
    if (def.type === 'object') schema = def.shape[p as string];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return [];
  }
  schema = unwrap(schema);
  return schema?._zod?.def?.type === 'object' ? Object.keys(schema._zod.def.shape) : [];
}

function issueToError(issue: z.core.$ZodIssue, display: string, lines: Map<string, number>, raw: unknown): ConfigError {
  const path = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const keyPath = [...path, key];
    const line = lineOf(lines, keyPath);
    const where = line === undefined ? display : `${display}:${line}`;
    const allowed = allowedKeysAt(path);
    const guess = suggest(key, allowed);
    const table = path.length ? `[${formatPath(path)}]` : 'the top level';
    const keys = issue.keys.length > 1 ? `unknown keys ${issue.keys.map((k) => `"${k}"`).join(', ')}` : `unknown key "${key}"`;
    return new ConfigError(
      `${where}: ${formatPath(keyPath)}`,
      `${keys} in ${table}${guess ? `; did you mean "${guess}"?` : ''}`,
      allowed.length ? `Allowed keys there: ${allowed.join(', ')}.` : undefined,
    );
  }
  const line = lineOf(lines, path);
  const where = `${line === undefined ? display : `${display}:${line}`}: ${formatPath(path)}`;
  const found = describe(valueAt(raw, path));
  let allowed: string;
  switch (issue.code) {
    case 'invalid_type':
      allowed = found === 'nothing' ? `is required (${issue.expected})` : `must be ${issue.expected}`;
      break;
    case 'invalid_value': {
      const value = valueAt(raw, path);
      const guess = typeof value === 'string' ? suggest(value, issue.values.map(String)) : undefined;
      allowed = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`;
      break;
    }
    case 'too_small':
      allowed = issue.origin === 'array' ? `needs at least ${String(issue.minimum)} item(s)` : `must be at least ${String(issue.minimum)}`;
      break;
    case 'too_big':
      allowed = `must be at most ${String(issue.maximum)}`;
      break;
    default:
      allowed = issue.message;
  }
  return new ConfigError(where, found === 'nothing' ? allowed : `found ${found}; ${allowed}`);
}
