// The parts of the config model that need no zod: the enumerations the schema is built from, and
// helpers over a validated Config. Code that runs after loading imports these from here, not from
// schema.ts, so a process whose config came from the validated-config cache never loads zod.
import type { AppConfig, AppSecretConfig, Config } from './schema.ts';

export const PROFILES = ['demo', 'production'] as const;
export type ProfileName = (typeof PROFILES)[number];

export const ENGINES = ['kv-v2', 'database', 'transit'] as const;
/** Where the transit engine is mounted (plan/build.ts), and where VSO's client cache key lives. */
export const TRANSIT_MOUNT = 'transit';
export const SAMPLES = ['env', 'files', 'argocd', 'registry', 'dashboard', 'vault-files', 'db-client', 'none'] as const;
export type SampleKind = (typeof SAMPLES)[number];

/** An app's [[apps.secrets]] (or, in older configs, [[apps.external_secrets]]) and which table holds them. */
export function appSecrets(app: AppConfig): { key: 'secrets' | 'external_secrets'; entries: AppSecretConfig[] } {
  return app.secrets.length > 0 || app.external_secrets.length === 0 ? { key: 'secrets', entries: app.secrets } : { key: 'external_secrets', entries: app.external_secrets };
}

/** How VSO keeps its client cache: [vso] client_cache, or by default "transit" when the transit engine is enabled. */
export function vsoClientCache(config: Config): 'transit' | 'memory' {
  return config.vso.client_cache ?? (config.vault.engines.includes('transit') ? 'transit' : 'memory');
}

/** The names the VSO client cache's Vault role and policy take (vso-<app>-role's pattern, so --prune knows them). */
export const VSO_CACHE_NAME = 'client-cache';
