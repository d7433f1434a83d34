#!/usr/bin/env node
/**
 * The `interference` binary. The command line itself is built in src/cli/program.ts; this entry
 * only runs it, and only when executed (tests import modules without starting anything).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { run } from './cli/program.js';

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  // A reader that went away (`interference chat … | head -1`) is not an error: stop quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  run(process.argv.slice(2)).catch((error: unknown) => {
    // Not a user's mistake (those are CliErrors, reported in run): a bug, so the stack helps.
    process.stderr.write(`interference: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
