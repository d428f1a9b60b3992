#!/usr/bin/env node
// Entry point of the `ironlime` command: runs the compiled CLI in dist/ (built by `npm run build`,
// and by npm's `prepare` step on install).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/lib/cli/main.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('ironlime: the package is not built yet; run `npm run build` in its folder first.\n');
  process.exit(2);
}
const { main } = await import(compiled);
process.exitCode = await main(process.argv);
