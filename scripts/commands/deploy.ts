// `vaultlab deploy`: not wired yet; the deploy/lifecycle work (issues 4 and 6) replaces this module.
import type { Command } from './types.ts';
import { VaultlabError } from '../lib/errors.ts';

export const commands: Command[] = [
  {
    name: 'deploy',
    summary: '',
    description: '',
    options: {},
    async run() {
      throw new VaultlabError('`vaultlab deploy` is not available in this build yet');
    },
  },
];
