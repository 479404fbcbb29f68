/**
 * `mailgate sample-milter`: runs the sample milter of examples/, the library's worked example.
 */
import type { Command } from 'commander';
import { runSampleMilter } from '../../examples/sample-milter.js';
import { parseListenSpec } from '../listen/index.js';
import { UsageError } from './usage.js';

export function registerSampleMilterCommand(program: Command): void {
  program
    .command('sample-milter')
    .description('run the sample milter (logs every step, adds a header, rejects reject@...)')
    .option(
      '--listen <spec>',
      'inet:PORT@HOST, inet6:PORT@HOST or unix:/path',
      'inet:8891@127.0.0.1',
    )
    .action(async (options: { listen: string }) => {
      try {
        parseListenSpec(options.listen);
      } catch (err) {
        throw new UsageError(`--listen: ${(err as Error).message}`);
      }
      await runSampleMilter(options.listen);
    });
}
