// The declarative assets under stacks/ (Helm values per profile and delivery), read as objects.
// `yaml` is required on first use, not imported: the config -> plan path (every command, `seed`
// and `status` included) reaches the deliveries' modules, and loading yaml there cost ~35 ms of
// each process's start for values only install and plan read.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { PROJECT_ROOT } from '../config/load.ts';

const require = createRequire(import.meta.url);
let yaml: typeof import('yaml') | undefined;

/** stacks/<path> (a YAML file) as an object. */
export function stackValues(path: string): Record<string, any> {
  yaml ??= require('yaml') as typeof import('yaml');
  return yaml.parse(readFileSync(resolve(PROJECT_ROOT, 'stacks', path), 'utf8')) as Record<string, any>;
}
