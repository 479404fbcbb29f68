/**
 * The `mailgate` program: global options, the subcommands, and the mapping of failures to exit
 * codes.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerArcCommand } from './arc.js';
import { registerCheckCommand } from './check.js';
import { registerCheckIdCommand } from './checkid.js';
import { registerCsaCommand } from './csa.js';
import { registerDkimCommand } from './dkim.js';
import { registerDmarcCommand } from './dmarc.js';
import { registerReportCommand } from './report.js';
import { registerReputationCommand } from './reputation.js';
import { registerSampleMilterCommand } from './sample-milter.js';
import { registerServeCommand } from './serve.js';
import { registerSpfCommand } from './spf.js';
import { UsageError } from './usage.js';

/** Exit codes: 0 done, 1 failure at run time, 2 bad arguments. */
export const EXIT_USAGE = 2;

/**
 * Run the CLI with the given arguments (without `node` and the script path); resolves to the exit
 * code.
 *
 * @example
 * process.exitCode = await main(['spf', '--ip', '192.0.2.1', '--sender', 'jo@example.com']);
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('mailgate')
    .description('SMTP-time sender authentication and policy checks')
    .version(VERSION, '-V, --version')
    .option(
      '--dns <host:port>',
      'DNS server to ask (repeatable; default: /etc/resolv.conf)',
      collect,
    )
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`mailgate: ${text.replace(/^error: /, '').trim()}\n`),
    });
  registerSpfCommand(program);
  registerCheckCommand(program);
  registerCsaCommand(program);
  registerCheckIdCommand(program);
  registerDkimCommand(program);
  registerDmarcCommand(program);
  registerArcCommand(program);
  registerReputationCommand(program);
  registerReportCommand(program);
  registerSampleMilterCommand(program);
  registerServeCommand(program);

  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      const informational = ['commander.helpDisplayed', 'commander.help', 'commander.version'];
      return informational.includes(err.code) ? 0 : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`mailgate: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`mailgate: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
