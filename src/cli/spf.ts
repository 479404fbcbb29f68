/**
 * `mailgate spf`: one SPF check from the command line, printed for people or as JSON.
 */
import type { Command } from 'commander';
import {
  authResultsClause,
  checkSpf,
  DEFAULT_GUESS_RECORD,
  DEFAULT_SPF_LIMITS,
  receivedSpf,
  type SpfResult,
} from '../checks/spf/index.js';
import { parseIp } from '../dns/address.js';
import { escapeForLog } from '../text/index.js';
import { resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

interface SpfCommandOptions {
  ip: string;
  sender: string;
  helo?: string;
  identity?: string;
  receiver?: string;
  bestGuess?: boolean;
  guessRecord?: string;
  lax?: boolean;
  fallbackZone?: string;
  timeBudget?: string;
  json?: boolean;
}

export function registerSpfCommand(program: Command): void {
  program
    .command('spf')
    .description('check the SPF policy of a sender (RFC 7208)')
    .requiredOption('--ip <address>', 'SMTP client address (IPv4 or IPv6)')
    .requiredOption(
      '--sender <address>',
      'MAIL FROM address; "" for the null sender (checks the HELO name)',
    )
    .option('--helo <name>', 'HELO/EHLO name')
    .option('--identity <which>', 'identity to check: mailfrom or helo', 'mailfrom')
    .option('--receiver <name>', 'our host name, for %{r} and the Received-SPF receiver key')
    .option(
      '--best-guess',
      `when there is no record, also evaluate a guess (${DEFAULT_GUESS_RECORD})`,
    )
    .option('--guess-record <record>', 'the record --best-guess evaluates')
    .option('--lax', 'when the result is permerror, also report the result of lax processing')
    .option('--fallback-zone <zone>', 'local records for domains without one: <domain>._spf.<zone>')
    .option(
      '--time-budget <ms>',
      `give up with temperror after this many milliseconds (default ${DEFAULT_SPF_LIMITS.timeBudgetMs})`,
    )
    .option('--json', 'print one JSON object')
    .action(async (options: SpfCommandOptions, command: Command) => {
      if (!parseIp(options.ip))
        throw new UsageError(`--ip: not an IP address: ${escapeForLog(options.ip)}`);
      if (options.identity !== 'mailfrom' && options.identity !== 'helo') {
        throw new UsageError('--identity: must be mailfrom or helo');
      }
      if (options.identity === 'helo' && !options.helo)
        throw new UsageError('--identity helo needs --helo');
      const budget = options.timeBudget === undefined ? undefined : Number(options.timeBudget);
      if (budget !== undefined && !(Number.isInteger(budget) && budget > 0)) {
        throw new UsageError('--time-budget: a positive number of ms');
      }

      const resolver = resolverFromOptions(command);
      const result = await checkSpf(
        { ip: options.ip, sender: options.sender, helo: options.helo, identity: options.identity },
        {
          resolver,
          receiver: options.receiver,
          lax: options.lax,
          bestGuess: options.bestGuess ? (options.guessRecord ?? true) : false,
          fallbackZone: options.fallbackZone,
          limits: { timeBudgetMs: budget },
        },
      );
      const header = receivedSpf(result, { receiver: options.receiver });
      const auth = authResultsClause(result);
      process.stdout.write(
        options.json ? `${JSON.stringify(toJson(result, header, auth))}\n` : toText(result, header),
      );
    });
}

function toJson(
  r: SpfResult,
  receivedSpfValue: string,
  authResults: string,
): Record<string, unknown> {
  return {
    result: r.result,
    explanation: r.explanation ?? null,
    explanationSource: r.explanationSource ?? null,
    mechanism: r.mechanism ?? null,
    problem: r.problem ?? null,
    lookups: r.lookups,
    voidLookups: r.voidLookups,
    queries: r.queries,
    identity: r.identity,
    ip: r.ip,
    sender: r.sender,
    domain: r.domain,
    helo: r.helo,
    record: r.record ?? null,
    source: r.source ?? null,
    ...(r.guess !== undefined ? { guess: r.guess } : {}),
    ...(r.laxResult !== undefined ? { laxResult: r.laxResult, forgiven: r.forgiven ?? [] } : {}),
    reply: r.reply,
    receivedSpf: receivedSpfValue,
    authResults,
  };
}

function toText(r: SpfResult, receivedSpfValue: string): string {
  const lines: Array<[string, string | undefined]> = [
    ['result', r.result],
    ['guess', r.guess],
    ['lax result', r.laxResult],
    ['forgiven', r.forgiven?.join('; ')],
    ['explanation', r.explanation],
    ['problem', r.problem],
    ['mechanism', r.mechanism],
    ['record', r.record],
    ['lookups', `${r.lookups} DNS-querying terms, ${r.voidLookups} void, ${r.queries} queries`],
    ['reply', `${r.reply.code} ${r.reply.xcode} ${r.reply.text}`],
  ];
  const width = 12;
  let out = '';
  for (const [label, value] of lines) {
    if (value !== undefined) out += `${`${label}:`.padEnd(width)} ${escapeForLog(value)}\n`;
  }
  return `${out}Received-SPF: ${receivedSpfValue}\n`;
}
