// Checks that span several entries: dangling references, duplicates and options that contradict
// each other. Each returns a ConfigError located by `where(path)`.
import type { Config } from './schema.ts';
import { appSecrets } from './model.ts';
import { DELIVERIES } from '../deliveries/index.ts';
import { COMMON_SECRET_FIELDS } from '../deliveries/types.ts';
import { ConfigError } from '../lib/errors.ts';
import { suggest } from '../lib/suggest.ts';
import { crossCheckKubernetesRoles } from './kubernetes-roles.ts';
import { crossCheckDatabases } from './databases.ts';

type Where = (path: (string | number)[]) => string;

/** Samples whose manifests hold a Deployment named after the app (stacks/samples; argocd's is only a Secret). */
const SAMPLES_WITH_DEPLOYMENT: readonly string[] = ['env', 'files', 'registry', 'dashboard', 'vault-files', 'db-client'];

export function crossCheck(config: Config, passwords: Record<string, string>, where: Where, warnings: string[]): ConfigError[] {
  const errors: ConfigError[] = [];
  const err = (path: (string | number)[], message: string, hint?: string) => errors.push(new ConfigError(where(path), message, hint));
  const production = config.profile.name === 'production';

  // --- cluster
  if (config.cluster.provider === 'kind' && config.cluster.context) {
    err(['cluster', 'context'], 'context is only used with provider = "existing"; kind clusters use the context "kind-<name>"', 'Remove cluster.context, or set provider = "existing".');
  }
  if (config.cluster.ports.vault === config.cluster.ports.http) {
    err(['cluster', 'ports', 'http'], `host port ${config.cluster.ports.http} is already used for the Vault API`, 'Give cluster.ports.vault and cluster.ports.http different values.');
  }

  // --- vault
  if (!config.vault.engines.includes('kv-v2')) {
    err(['vault', 'engines'], 'must include "kv-v2": secrets are seeded into the KV v2 mount', 'Add "kv-v2" to vault.engines.');
  }
  if (new Set(config.vault.engines).size !== config.vault.engines.length) {
    err(['vault', 'engines'], 'lists an engine twice');
  }

  // --- vso
  if (config.vso.client_cache === 'transit' && !config.vault.engines.includes('transit')) {
    err(['vso', 'client_cache'], 'is "transit", but vault.engines has no "transit": VSO encrypts its client cache with a transit key', 'Add "transit" to vault.engines, or set client_cache = "memory".');
  }

  // --- production settings (checked whatever the profile, so switching profiles never reveals a latent error)
  const prod = config.production;
  if (prod.key_threshold > prod.key_shares) {
    err(['production', 'key_threshold'], `threshold ${prod.key_threshold} is greater than key_shares ${prod.key_shares}`, 'Use a threshold at most equal to key_shares (default 5 shares, threshold 3).');
  }
  if (prod.pgp_keys.length > 0 && prod.pgp_keys.length !== prod.key_shares) {
    err(['production', 'pgp_keys'], `has ${prod.pgp_keys.length} key(s) but key_shares is ${prod.key_shares}: Vault needs exactly one PGP key per share`);
  }
  prod.allow_literals.forEach((name, i) => {
    if (!(name in config.passwords)) {
      const guess = suggest(name, Object.keys(config.passwords));
      err(['production', 'allow_literals', i], `names "${name}", which is not in [passwords]${guess ? `; did you mean "${guess}"?` : ''}`);
    }
  });

  // --- seeding matrix
  const seeded = new Map<string, number>(); // "path\u0000key" -> entry index
  const slot = (path: string, key: string) => `${path}\u0000${key}`;
  config.secrets.forEach((s, i) => {
    const id = slot(s.path, s.key);
    const first = seeded.get(id);
    if (first !== undefined) {
      err(['secrets', i, 'key'], `duplicate seeding entry for path "${s.path}" key "${s.key}" (also secrets[${first}])`, 'Each path+key is seeded by exactly one entry; remove one of them.');
    } else seeded.set(id, i);

    if (s.password !== undefined && !(s.password in passwords)) {
      const guess = suggest(s.password, Object.keys(passwords));
      err(['secrets', i, 'password'], `refers to "${s.password}", which is neither in [passwords] nor set as VAULTLAB_PASSWORD_${s.password.toUpperCase()}${guess ? `; did you mean "${guess}"?` : ''}`,
        `Add ${s.password} = "" to [passwords] (empty means random), or remove the password field.`);
    }
    if (s.always_random && s.password !== undefined) {
      err(['secrets', i, 'always_random'], 'always_random = true contradicts password = "…": a known value is not random', 'Remove one of the two.');
    }
    if (s.plaintext_key !== undefined) {
      if (s.hash !== 'bcrypt') err(['secrets', i, 'plaintext_key'], 'plaintext_key only makes sense with hash = "bcrypt"');
      if (s.plaintext_key === s.key) err(['secrets', i, 'plaintext_key'], 'must differ from key: the hash and its plaintext live side by side');
    }
  });
  config.secrets.forEach((s, i) => {
    if (s.plaintext_key === undefined) return;
    const id = slot(s.path, s.plaintext_key);
    const other = seeded.get(id);
    if (other !== undefined) err(['secrets', i, 'plaintext_key'], `"${s.path}" key "${s.plaintext_key}" is already seeded by secrets[${other}]`);
    else seeded.set(id, i);
  });

  // --- apps and what they get ([[apps.secrets]], or the older [[apps.external_secrets]])
  const appNames = new Map<string, number>();
  const esNames = new Map<string, string>(); // "ns/name" -> where
  const targets = new Map<string, string>(); // "ns/target" -> the entry writing it
  config.apps.forEach((app, ai) => {
    if (appNames.has(app.name)) err(['apps', ai, 'name'], `duplicate app name "${app.name}" (also apps[${appNames.get(app.name)}])`);
    else appNames.set(app.name, ai);
    if (app.namespace === config.vault.namespace || app.namespace === config.eso.namespace) {
      err(['apps', ai, 'namespace'], `"${app.namespace}" is the ${app.namespace === config.vault.namespace ? 'Vault' : 'ESO'} namespace; apps need their own namespace`);
    }
    if (app.secrets.length > 0 && app.external_secrets.length > 0) {
      err(['apps', ai, 'external_secrets'], `app "${app.name}" has both [[apps.secrets]] and [[apps.external_secrets]] (its older name)`, 'Move every entry into [[apps.secrets]].');
    }
    const delivery = DELIVERIES[app.delivery];
    const { key: secretsKey, entries } = appSecrets(app);
    const noun = app.delivery === 'eso' ? 'ExternalSecret' : 'secrets entry';

    entries.forEach((es, ei) => {
      const base: (string | number)[] = ['apps', ai, secretsKey, ei];
      const key = `${app.namespace}/${es.name}`;
      if (esNames.has(key)) err([...base, 'name'], `duplicate ${noun} "${es.name}" in namespace "${app.namespace}"`);
      else esNames.set(key, es.name);
      // Deliveries writing Kubernetes Secrets (ESO, VSO): two writers of one Secret fight over it.
      if (delivery.secretFields.includes('target')) {
        const target = es.target ?? es.name;
        const tkey = `${app.namespace}/${target}`;
        if (targets.has(tkey)) err([...base, 'target'], `target Secret "${target}" in namespace "${app.namespace}" is already written by ${noun} "${targets.get(tkey)}"`, 'Two writers of one Secret fight over it; give each its own target.');
        else targets.set(tkey, es.name);
      }
      // A field of another delivery does nothing here: an error, not a silent no-op.
      for (const field of Object.keys(es)) {
        if ((COMMON_SECRET_FIELDS as readonly string[]).includes(field) || delivery.secretFields.includes(field) || es[field as keyof typeof es] === undefined) continue;
        const owners = Object.values(DELIVERIES).filter((d) => d.secretFields.includes(field)).map((d) => `"${d.name}"`);
        err([...base, field], `${field} is a field of delivery ${owners.join(' / ')}, but app "${app.name}" uses delivery "${app.delivery}"`, `Remove ${field}, or set delivery = ${owners[0] ?? '"eso"'} on the app.`);
      }

      if (es.data.length === 0 && es.database_role === undefined) {
        err([...base, 'data'], `${noun} "${es.name}" reads nothing: data needs at least one mapping`, delivery.secretFields.includes('database_role') ? 'Add data = [{ secret_key = "...", path = "...", key = "..." }], or database_role = "<a [[databases.roles]] name>" for dynamic database credentials.' : 'Add data = [{ secret_key = "...", path = "...", key = "..." }].');
      }
      const secretKeys = new Set<string>();
      es.data.forEach((d, di) => {
        const dpath = [...base, 'data', di];
        if (secretKeys.has(d.secret_key)) err([...dpath, 'secret_key'], `secret_key "${d.secret_key}" appears twice in ${noun} "${es.name}"`);
        secretKeys.add(d.secret_key);
        if (!seeded.has(slot(d.path, d.key))) {
          const samePath = config.secrets.filter((s) => s.path === d.path).map((s) => s.key);
          const guess = samePath.length ? suggest(d.key, samePath) : suggest(d.path, [...new Set(config.secrets.map((s) => s.path))]);
          err([...dpath, 'key'], `${noun} "${es.name}" reads path "${d.path}" key "${d.key}", which no [[secrets]] entry seeds${guess ? `; did you mean "${guess}"?` : ''}`,
            `Add a [[secrets]] entry with path = "${d.path}" and key = "${d.key}", or fix the mapping.`);
        }
        if (production && d.path.split('/')[0] !== app.namespace) {
          err([...dpath, 'path'], `in production each namespace may read only "${app.namespace}/…" (least-privilege policy), but this reads "${d.path}"`,
            `Move the secret under "${app.namespace}/", or use the demo profile.`);
        }
      });
    });

    // A rollout restart (VSO) restarts the app's Deployment: one vaultlab renders in the app's namespace.
    entries.forEach((es, ei) => {
      if (es.rollout_restart !== true || !delivery.secretFields.includes('rollout_restart')) return;
      if (!SAMPLES_WITH_DEPLOYMENT.includes(app.sample)) {
        err(['apps', ai, secretsKey, ei, 'rollout_restart'], `rollout_restart = true restarts Deployment ${app.namespace}/${app.name}, but app "${app.name}" has sample = "${app.sample}", which is not a Deployment of namespace "${app.namespace}"`,
          `Give the app a sample with a Deployment (${SAMPLES_WITH_DEPLOYMENT.map((x) => `"${x}"`).join(', ')}), or set rollout_restart = false.`);
      }
    });

    // What each bundled sample needs from its app, and whether it can consume this delivery.
    if (app.enabled && app.sample !== 'none') {
      if (entries.length === 0) err(['apps', ai, 'sample'], `sample "${app.sample}" consumes the app's secrets, but app "${app.name}" has no [[apps.secrets]]`);
      if (!delivery.samples.includes(app.sample)) {
        const fits = Object.values(DELIVERIES).filter((d) => d.samples.includes(app.sample)).map((d) => `"${d.name}"`);
        err(['apps', ai, 'sample'], `sample "${app.sample}" cannot consume delivery "${app.delivery}" (it reads ${app.sample === 'vault-files' || app.sample === 'db-client' ? 'files rendered by the Vault Agent' : 'Kubernetes Secrets'})`,
          `With delivery "${app.delivery}" use sample = ${delivery.samples.map((x) => `"${x}"`).join(' or ')}${fits.length ? `; sample "${app.sample}" works with delivery ${fits.join(' / ')}` : ''}.`);
      }
    }
    delivery.check(app, entries, { config, production, appIndex: ai, secretsKey, error: err, seeded: (path, key) => seeded.has(slot(path, key)) });
  });

  errors.push(...crossCheckKubernetesRoles(config, where));
  errors.push(...crossCheckDatabases(config, passwords, where));
  if (config.apps.filter((a) => a.enabled).length === 0) warnings.push('no enabled [[apps]]: Vault and ESO will be installed, but nothing consumes a secret');
  return errors;
}
