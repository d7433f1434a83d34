/**
 * How the command line fails: one line on stderr prefixed `interference: `, and an exit code that
 * scripts can act on. Never a stack trace for a user's mistake or an unreachable server.
 */

/** 1: could not run (server unreachable, HTTP error, port in use); 2: bad command line or configuration; 130: interrupted. */
export type ExitCode = 1 | 2 | 130;

/** A failure the user can act on; `message` is shown as is after `interference: `. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A mistake in the command line itself (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(2, message);
}

/** Writes the reason and exits. */
export function fail(code: number, message: string): never {
  process.stderr.write(`interference: ${message}\n`);
  process.exit(code);
}
