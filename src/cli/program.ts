/**
 * The `interference` command line: commander builds it, this module gives it the project's
 * manners. Usage mistakes exit with 2 and one line (plus where to find the options) instead of
 * commander's default exit code 1; help goes to stdout with exit code 0; `serve` runs when no
 * command is named, so `interference --port 8080` works as it always did.
 */
import { Command, CommanderError } from 'commander';
import { registerChat } from './chat.js';
import { CliError, fail, usageError } from './errors.js';
import { registerImage } from './image.js';
import { registerModels } from './models.js';
import { registerProviders } from './providers.js';
import { registerServe, serveOptionsHelp, serveSummary } from './serve.js';

export function buildProgram(): Command {
  const program = new Command('interference');
  // Inherited by every command registered below.
  program.helpOption('-h, --help', 'show this help and exit');
  // No `.version()` here: -v belongs to `serve`, the default command, which prints the version.
  const commands = [registerServe(program), registerProviders(program), registerModels(program), registerChat(program), registerImage(program)];
  program.configureHelp({ formatHelp: () => rootHelp(commands) });
  for (const command of [program, ...commands])
    reportUsageErrors(command, command === program || command.name() === 'serve' ? 'interference' : `interference ${command.name()}`);
  return program;
}

/** Runs the command line; every expected failure ends here as one line and its exit code. */
export async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError && error.exitCode === 0) return; // --help was answered
    if (error instanceof CliError) fail(error.exitCode, error.message);
    throw error;
  }
}

/** `interference --help`: serve's options (it is the default) and the commands. */
function rootHelp(commands: Command[]): string {
  const terms = commands.map((command) => `${command.name()} ${command.usage()}`);
  const width = Math.max(...terms.map((term) => term.length));
  const list = commands.map((command, index) => `  ${(terms[index] ?? '').padEnd(width)}  ${command.summary()}`).join('\n');
  return `Usage: interference [options]
       interference <command> [options]

${serveSummary}

${serveOptionsHelp}
Commands:
${list}

Run "interference <command> --help" for a command's options.
Every setting is in README.md, "Configuration".
`;
}

/** Commander's usage errors as CliErrors (exit code 2), worded like the rest: "Unknown option '--prot' (did you mean --port?)". */
function reportUsageErrors(command: Command, helpCommand: string): void {
  command.configureOutput({ outputError: () => undefined });
  command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    // With no command named, extra words reach `serve` as arguments: most likely a mistyped command.
    if (error.code === 'commander.excessArguments' && command.name() === 'serve')
      throw usageError(`unknown command '${command.args[0] ?? ''}'\nRun "interference --help" for the commands and options.`);
    const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
    const suggestion = rest.map((line) => line.trim().replace(/^\(Did you mean/, '(did you mean')).join(' ');
    const message = `${first.charAt(0).toUpperCase()}${first.slice(1)}${suggestion === '' ? '' : ` ${suggestion}`}`;
    throw usageError(`${message}\nRun "${helpCommand} --help" for the options.`);
  });
}
