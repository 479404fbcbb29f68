/**
 * `mailgate csa`: one CSA check of a HELO name from the command line, printed for people or as
 * JSON.
 */
import type { Command } from 'commander';
import { type CsaResult, checkCsa, DEFAULT_CSA_LIMITS } from '../checks/csa/index.js';
import { parseIp } from '../dns/address.js';
import { escapeForLog } from '../text/index.js';
import { resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

interface CsaCommandOptions {
  ip: string;
  helo: string;
  timeBudget?: string;
  json?: boolean;
}

export function registerCsaCommand(program: Command): void {
  program
    .command('csa')
    .description('check the CSA record of a HELO name (Client SMTP Authorization)')
    .requiredOption('--ip <address>', 'SMTP client address (IPv4 or IPv6)')
    .requiredOption('--helo <name>', 'HELO/EHLO argument: a host name or an address literal')
    .option(
      '--time-budget <ms>',
      `give up with tempfail after this many milliseconds (default ${DEFAULT_CSA_LIMITS.timeBudgetMs})`,
    )
    .option('--json', 'print one JSON object')
    .action(async (options: CsaCommandOptions, command: Command) => {
      if (!parseIp(options.ip))
        throw new UsageError(`--ip: not an IP address: ${escapeForLog(options.ip)}`);
      const budget = options.timeBudget === undefined ? undefined : Number(options.timeBudget);
      if (budget !== undefined && !(Number.isInteger(budget) && budget > 0)) {
        throw new UsageError('--time-budget: a positive number of ms');
      }
      const resolver = resolverFromOptions(command);
      const result = await checkCsa(
        { ip: options.ip, helo: options.helo },
        { resolver, limits: { timeBudgetMs: budget } },
      );
      process.stdout.write(options.json ? `${JSON.stringify(toJson(result))}\n` : toText(result));
    });
}

function toJson(r: CsaResult): Record<string, unknown> {
  return {
    result: r.result,
    reason: r.reason,
    ip: r.ip,
    helo: r.helo,
    domain: r.domain ?? null,
    record: r.record ?? null,
    target: r.target ?? null,
    problem: r.problem ?? null,
    queries: r.queries,
    reply: r.reply,
  };
}

function toText(r: CsaResult): string {
  const lines: Array<[string, string | undefined]> = [
    ['result', r.result],
    ['reason', r.reason],
    ['helo', r.helo],
    ['domain', r.domain],
    ['record', r.record],
    ['target', r.target],
    ['problem', r.problem],
    ['queries', String(r.queries)],
    ['reply', `${r.reply.code} ${r.reply.xcode} ${r.reply.text}`],
  ];
  let out = '';
  for (const [label, value] of lines) {
    if (value !== undefined) out += `${`${label}:`.padEnd(9)} ${escapeForLog(value)}\n`;
  }
  return out;
}
