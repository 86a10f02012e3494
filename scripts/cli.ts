#!/usr/bin/env node
// vaultlab: one config.toml -> kind + Vault + External Secrets Operator + sample apps.
// Start-up stays fast: this file knows every command by name and summary, and loads a
// command's module (and its heavy dependencies) only when that command runs.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import type { Command, GlobalFlags, OptionSpec } from './commands/types.ts';
import { Output } from './lib/output.ts';
import { ConfigErrors, EXIT_FAILURE, EXIT_USAGE, UsageError, VaultlabError } from './lib/errors.ts';
import { redact } from './lib/redact.ts';
import { suggest } from './lib/suggest.ts';

interface Entry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

const pick = (name: string) => (m: { commands: Command[] }) => {
  const c = m.commands.find((x) => x.name === name);
  if (!c) throw new Error(`internal: command "${name}" missing from its module`);
  return c;
};

// The whole command set, in the order `vaultlab --help` shows it.
export const COMMANDS: Entry[] = [
  { name: 'deploy', summary: 'Create or update the whole environment (kind, Vault, ESO, secrets, sample apps) and verify it', load: () => import('./commands/deploy.ts').then(pick('deploy')) },
  { name: 'status', summary: 'Show the health of cluster, Vault, ESO, SecretStores, ExternalSecrets and sample apps', load: () => import('./commands/status.ts').then(pick('status')) },
  { name: 'doctor', summary: 'Check this machine before a deploy, and the environment after one; every finding with its fix', load: () => import('./commands/doctor.ts').then(pick('doctor')) },
  { name: 'reset', summary: 'Put secrets back to their configured state (--secrets) or rebuild everything (--full)', load: () => import('./commands/reset.ts').then(pick('reset')) },
  { name: 'rotate', summary: 'Rotate random secret values and wait until every pod that reads them holds the new ones', load: () => import('./commands/rotate.ts').then(pick('rotate')) },
  { name: 'destroy', summary: "Delete the kind cluster and vaultlab's state for it", load: () => import('./commands/destroy.ts').then(pick('destroy')) },
  { name: 'images', summary: 'List every image a deploy runs (from the rendered charts) and which ones Docker holds', load: () => import('./commands/images.ts').then(pick('images')) },
  { name: 'plan', summary: 'Render everything a deploy would do (no cluster needed); --out DIR writes the artifacts', load: () => import('./commands/plan.ts').then(pick('plan')) },
  { name: 'seed', summary: 'Write the [[secrets]] matrix into Vault; idempotent, --rotate to regenerate random values', load: () => import('./commands/seed.ts').then(pick('seed')) },
  { name: 'creds', summary: 'Issue one short-lived credential (database user or ServiceAccount token) from Vault; --revoke ends one', load: () => import('./commands/creds.ts').then(pick('creds')) },
  { name: 'vault init', summary: 'Initialize Vault and store the keys before anything else', load: () => import('./commands/vault.ts').then(pick('vault init')) },
  { name: 'vault unseal', summary: 'Unseal Vault from stored keys, a file, stdin or a prompt', load: () => import('./commands/vault.ts').then(pick('vault unseal')) },
  { name: 'vault configure', summary: 'Reconcile engines, Kubernetes auth, roles, policies and audit with the config', load: () => import('./commands/vault.ts').then(pick('vault configure')) },
  { name: 'vault up', summary: 'init + unseal + configure + seed against any reachable Vault', load: () => import('./commands/vault.ts').then(pick('vault up')) },
];

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', short: 'c', value: 'FILE', description: 'config file (default ./config.toml, else the bundled demo environment)' },
  profile: { type: 'string', short: 'p', value: 'NAME', description: 'demo | production (overrides [profile] and VAULTLAB_PROFILE)' },
  name: { type: 'string', short: 'n', value: 'NAME', description: 'cluster name (overrides [cluster] name; in CI derived from the run id)' },
  json: { type: 'boolean', description: 'machine-readable output on stdout: no colour, no spinners' },
  yes: { type: 'boolean', short: 'y', description: 'answer yes to confirmations' },
  ci: { type: 'boolean', description: 'CI mode (also CI=true): no prompts, plain output' },
  verbose: { type: 'boolean', short: 'v', description: 'more detail on stderr' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
  version: { type: 'boolean', short: 'V', description: 'print the version' },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.description + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'vaultlab: a local Kubernetes secrets platform from one config.toml',
    '  (kind + HashiCorp Vault/OpenBao + External Secrets Operator + sample apps)',
    '',
    'Usage: vaultlab <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run `vaultlab <command> --help` for a command\'s own options.',
    'Exit codes: 0 ok, 1 failure, 2 usage or config error.',
  ].join('\n');
}

function commandHelp(cmd: Command): string {
  return [
    `Usage: vaultlab ${cmd.name}${Object.keys(cmd.options).length ? ' [options]' : ''}${cmd.args ? ` ${cmd.args}` : ''}`,
    '',
    cmd.summary,
    ...(cmd.description ? ['', cmd.description] : []),
    ...(Object.keys(cmd.options).length ? ['', 'Options:', ...optionLines(cmd.options)] : []),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
  ].join('\n');
}

/** Finds the command named by the leading positionals (global flags may come anywhere). */
function findCommand(argv: string[]): { entry: Entry | undefined; rest: string[]; words: string[] } {
  const stringGlobals = new Set(Object.entries(GLOBAL_OPTIONS).flatMap(([n, o]) => (o.type === 'string' ? [`--${n}`, ...(o.short ? [`-${o.short}`] : [])] : [])));
  const words: { word: string; index: number }[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (stringGlobals.has(a)) i++;
      continue;
    }
    words.push({ word: a, index: i });
  }
  for (const n of [2, 1]) {
    const name = words.slice(0, n).map((w) => w.word).join(' ');
    const entry = COMMANDS.find((c) => c.name === name);
    if (entry && words.length >= n) {
      const drop = new Set(words.slice(0, n).map((w) => w.index));
      return { entry, rest: argv.filter((_, i) => !drop.has(i)), words: words.map((w) => w.word) };
    }
  }
  return { entry: undefined, rest: argv, words: words.map((w) => w.word) };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const ciEnv = env.CI === 'true' || env.CI === '1';
  const plainEnv = ciEnv || env.NO_COLOR !== undefined || !process.stdout.isTTY;
  let out = new Output({ json: argv.includes('--json'), verbose: argv.includes('--verbose') || argv.includes('-v'), plain: plainEnv });
  try {
    const { entry, rest, words } = findCommand(argv);
    if (!entry) {
      if (argv.includes('--version') || argv.includes('-V')) {
        process.stdout.write(`${version()}\n`);
        return 0;
      }
      if (words.length === 0 || argv.includes('--help') || argv.includes('-h') || words[0] === 'help') {
        process.stdout.write(`${mainHelp()}\n`);
        return words.length === 0 && !argv.includes('--help') && !argv.includes('-h') ? EXIT_USAGE : 0;
      }
      const attempted = words.join(' ');
      const guess = suggest(attempted, COMMANDS.map((c) => c.name)) ?? suggest(words[0]!, COMMANDS.map((c) => c.name.split(' ')[0]!));
      throw new UsageError(`unknown command "${attempted}"${guess ? `; did you mean "${guess}"?` : ''}`, 'Run `vaultlab --help` for the list of commands.');
    }

    const cmd = await entry.load();
    const spec = { ...GLOBAL_OPTIONS, ...cmd.options };
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: Object.fromEntries(Object.entries(spec).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }])),
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      const message = (err as Error).message;
      const flag = /option '([^']+)'/.exec(message)?.[1] ?? /'(--?[^']+)'/.exec(message)?.[1];
      const guess = flag ? suggest(flag.replace(/^-+/, ''), Object.keys(spec)) : undefined;
      throw new UsageError(`${cmd.name}: ${message.split('\n')[0]!.split('. ')[0]}${guess ? `; did you mean "--${guess}"?` : ''}`, `Run \`vaultlab ${cmd.name} --help\`.`);
    }
    const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
    if (v.help) {
      process.stdout.write(`${commandHelp(cmd)}\n`);
      return 0;
    }
    const flags: GlobalFlags = {
      config: v.config as string | undefined,
      profile: v.profile as string | undefined,
      name: v.name as string | undefined,
      json: !!v.json,
      yes: !!v.yes,
      verbose: !!v.verbose,
      ci: !!v.ci || ciEnv,
    };
    out = new Output({ json: flags.json, verbose: flags.verbose, plain: plainEnv || flags.ci });
    const options = Object.fromEntries(Object.entries(v).filter(([k]) => !(k in GLOBAL_OPTIONS)));
    return await cmd.run({ flags, options, positionals: parsed.positionals, out });
  } catch (err) {
    return report(err, out);
  }
}

function report(err: unknown, out: Output): number {
  if (err instanceof ConfigErrors) {
    for (const e of err.errors) out.error(e.message, e.hint);
    if (out.json) out.result({ ok: false, exitCode: EXIT_USAGE, errors: err.errors.map((e) => ({ where: e.where, message: e.message, hint: e.hint })) });
    return EXIT_USAGE;
  }
  if (err instanceof VaultlabError) {
    out.error(err.message, err.hint);
    if (out.verbose && err.cause) out.debug(`cause: ${redact(String((err.cause as Error).stack ?? err.cause))}`);
    if (out.json) out.result({ ok: false, exitCode: err.exitCode, error: err.message, hint: err.hint, ...((err as { report?: object }).report ?? {}) });
    return err.exitCode;
  }
  out.error(`unexpected error: ${(err as Error)?.message ?? String(err)}`, 'Re-run with --verbose and report it if it persists.');
  if (out.verbose) out.debug(redact(String((err as Error)?.stack ?? '')));
  return EXIT_FAILURE;
}

// Run when executed directly (`node scripts/cli.ts`); bin/vaultlab.js and tests import main().
if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
