// SHA-256 digests: how delivered values are compared with Vault's without printing either.
import { createHash } from 'node:crypto';

export const sha256 = (v: Buffer | string): string => createHash('sha256').update(v).digest('hex');
