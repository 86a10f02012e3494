#!/usr/bin/env node
// The `vaultlab` executable. The code is TypeScript in scripts/, run by Node's built-in type
// stripping; this shim only turns on Node's compile cache first, so repeated runs skip
// stripping and compiling (start-up goes from ~4x to ~1.5x a bare `node -e 0`).
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../scripts/cli.ts');
process.exitCode = await main(process.argv.slice(2));
