// Writing, summarizing and diffing rendered artifacts.
import { usedDeliveries } from '../deliveries/index.ts';
import { mkdirSync, writeFileSync, renameSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Plan } from './types.ts';
import type { Artifacts } from './render.ts';
import { VaultlabError } from '../lib/errors.ts';

const INDEX = '.vaultlab-artifacts';

/**
 * Writes every artifact through a temporary file and a rename, then removes files that an
 * earlier `plan --out` wrote into the same directory but this plan no longer has. Everything
 * is rendered in memory before the first write, so a render error leaves the directory untouched.
 */
export function writeArtifacts(outDir: string, artifacts: Artifacts): void {
  const root = resolve(outDir);
  if (existsSync(root) && !statSync(root).isDirectory()) {
    throw new VaultlabError(`--out ${outDir} exists and is not a directory`, { exitCode: 2, hint: 'Choose a directory path.' });
  }
  const previous = existsSync(join(root, INDEX)) ? readFileSync(join(root, INDEX), 'utf8').split('\n').filter(Boolean) : [];
  const written: string[] = [];
  try {
    for (const [rel, content] of artifacts) {
      const target = join(root, rel);
      mkdirSync(dirname(target), { recursive: true });
      const tmp = `${target}.tmp-${process.pid}`;
      writeFileSync(tmp, content);
      renameSync(tmp, target);
      written.push(rel);
    }
  } catch (err) {
    for (const rel of artifacts.keys()) rmSync(join(root, `${rel}.tmp-${process.pid}`), { force: true });
    throw new VaultlabError(`could not write the artifacts to ${outDir}: ${(err as Error).message}`, { cause: err });
  }
  for (const rel of previous) if (!artifacts.has(rel)) rmSync(join(root, rel), { force: true });
  writeFileSync(join(root, INDEX), `${[...artifacts.keys()].join('\n')}\n`);
}

export function summarize(plan: Plan, artifacts: Artifacts): string {
  const v = plan.vault;
  const lines = [
    `Profile: ${plan.profile}   (config: ${plan.configFile})`,
    `Cluster: ${plan.cluster.provider === 'kind' ? `kind "${plan.cluster.name}"` : `existing context "${plan.cluster.context ?? '(current)'}"`}, ${plan.cluster.workers} worker(s)`,
    v.external
      ? `Vault:   external at ${v.hostAddress}`
      : `Vault:   ${v.distribution} ${v.image.tag} (chart ${v.chart.chart} ${v.chart.version}) in "${v.namespace}", ${v.ha.enabled ? `HA Raft x${v.ha.replicas}` : 'standalone'}, TLS ${v.tls ? 'on' : 'off'}, ${v.init.shares} key share(s) / threshold ${v.init.threshold}`,
    `         engines ${v.engines.map((e) => `${e.path}/ (${e.type})`).join(', ')}; auth ${v.kubernetesAuth.mount}/ audience "${v.kubernetesAuth.audience}"`,
    `         policies ${v.policies.map((p) => p.name).join(', ')}${v.setupToken.enabled ? `, ${v.setupToken.policy.name}` : ''}; audit ${v.audit.enabled ? 'on' : 'off'}`,
    ...(v.databases
      ? v.databases.connections.map(
          (c) =>
            `Database: ${c.name} (${c.sample ? `sample Postgres ${v.databases!.sample!.image} in "${v.databases!.sample!.namespace}"` : `${c.host}:${c.port}`}/${c.database}, editor ${c.username}, root rotated by Vault); ` +
            `roles ${c.roles.map((r) => `${r.name} -> ${r.app} (group ${r.groupRole}, ${r.defaultTtl}/${r.maxTtl})`).join(', ')}`,
        )
      : []),
    `Deliveries: ${usedDeliveries(plan).map((d) => `${d.name} (${plan.apps.filter((a) => a.delivery === d.name).length} app(s)${d.name === 'eso' ? `, chart ${plan.eso.chart.version} in "${plan.eso.namespace}"` : d.name === 'injector' ? `, in the ${plan.vault.chart.chart} chart` : d.name === 'vso' ? `, chart ${plan.vso.chart.version} in "${plan.vso.namespace}"` : ''})`).join(', ')}`,
    `Seeding: ${plan.seeding.entries.length} key(s) in ${new Set(plan.seeding.entries.map((e) => e.path)).size} path(s) under ${plan.seeding.mount}/ ` +
      `(${plan.seeding.entries.filter((e) => e.source.type === 'literal').length} literal, ${plan.seeding.entries.filter((e) => e.source.type === 'random').length} random, ` +
      `${plan.seeding.entries.filter((e) => e.hash.type === 'bcrypt').length} bcrypt)`,
    'Namespaces:',
    ...plan.namespaces.map((ns) => {
      const parts = ns.deliveries.map((d) => {
        if (d === 'eso') return `role ${ns.secretStore.role}; ExternalSecrets ${ns.externalSecrets.map((e) => `${e.name}->${e.target}`).join(', ') || '-'}`;
        const apps = plan.apps.filter((a) => a.namespace === ns.name && a.delivery === d);
        return `${d} ${apps.map((a) => `${a.name} (role ${a.role}${a.delivery === 'injector' ? `, files ${a.files.map((f) => f.file).join(', ')}` : a.delivery === 'vso' ? `, VaultStaticSecrets ${a.secrets.map((s) => `${s.name}->${s.target}`).join(', ')}` : ''})`).join(', ')}`;
      });
      return `  ${ns.name}: ${parts.join('; ')}; samples ${ns.samples.map((s) => `${s.app} (${s.kind})`).join(', ') || '-'}`;
    }),
    `Artifacts: ${artifacts.size} (${[...new Set([...artifacts.keys()].map((k) => k.split('/')[0]))].join(', ')})`,
  ];
  return lines.join('\n');
}

/** Longest-common-subsequence line diff; the artifacts are small, so O(n*m) is fine. */
export function lineDiff(a: string[], b: string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) out.push(`+ ${b[j++]}`);
    else out.push(`- ${a[i++]}`);
  }
  return out;
}

/** A readable diff of two artifact sets, changed lines with two lines of context. */
export function diffArtifacts(from: Artifacts, to: Artifacts, fromName: string, toName: string): string {
  const out: string[] = [`Differences ${fromName} -> ${toName}:`];
  const names = [...new Set([...from.keys(), ...to.keys()])].sort().filter((n) => n !== 'plan.json');
  for (const name of names) {
    const a = from.get(name);
    const b = to.get(name);
    if (a === b) continue;
    if (a === undefined) {
      out.push(`\n+++ ${name} (only in ${toName})`);
      continue;
    }
    if (b === undefined) {
      out.push(`\n--- ${name} (only in ${fromName})`);
      continue;
    }
    out.push(`\n~~~ ${name}`);
    const d = lineDiff(a.split('\n'), b.split('\n'));
    d.forEach((line, k) => {
      const near = d.slice(Math.max(0, k - 2), k + 3).some((l) => !l.startsWith('  '));
      if (near) out.push(line);
      else if (out[out.length - 1] !== '  ...') out.push('  ...');
    });
  }
  return out.join('\n');
}
