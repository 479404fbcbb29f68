/**
 * `mailgate arc verify`: the ARC chain of one message validated from the command line.
 */
import type { Command } from 'commander';
import { arcAuthResults, verifyArc } from '../checks/arc/index.js';
import { authenticationResults, resultClause } from '../policy/auth-results.js';
import { escapeForLog } from '../text/index.js';
import { readMessage } from './message-input.js';
import { resolverFromOptions } from './services.js';

export function registerArcCommand(program: Command): void {
  const arc = program.command('arc').description('ARC: validate a chain');
  arc
    .command('verify')
    .description('validate the ARC chain of a message (standard input without FILE)')
    .argument('[file]', 'the message')
    .option('--json', 'print one JSON object')
    .action(async (file: string | undefined, options: { json?: boolean }, command: Command) => {
      const message = await readMessage(file);
      const result = await verifyArc(message, {}, { resolver: resolverFromOptions(command) });
      const authResults = authenticationResults('mailgate', [resultClause(arcAuthResults(result))]);
      if (options.json) {
        const json = {
          cv: result.cv,
          reason: result.reason,
          instances: result.instances,
          sealers: result.sealers,
          ...(result.oldestPass !== undefined ? { oldestPass: result.oldestPass } : {}),
          ...(result.temporary ? { temporary: true } : {}),
          authResults,
        };
        process.stdout.write(`${JSON.stringify(json)}\n`);
        return;
      }
      process.stdout.write(
        `${escapeForLog(`${result.cv} (${result.reason}) instances=${result.instances}`)}\n`,
      );
      for (const s of result.sealers) {
        process.stdout.write(
          `${escapeForLog(`i=${s.instance} ${s.result} d=${s.domain} s=${s.selector}`)}\n`,
        );
      }
    });
}
