// Where vaultlab keeps what a run may forget at any time: ~/.cache/vaultlab (XDG_CACHE_HOME).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function vaultlabCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vaultlab');
}
