/**
 * `mailgate checkid`: the sender-registry ID check of one client from the command line, with the
 * settings of a configuration file's `[registry]` table, printed for people or as JSON.
 */
import type { Command } from 'commander';
import { checkId, type RegistryResult } from '../checks/registry/index.js';
import { parseIp } from '../dns/address.js';
import { registrySettings } from '../serve/settings.js';
import { escapeForLog } from '../text/index.js';
import { configFromOption, resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

interface CheckIdOptions {
  ip: string;
  helo: string;
  sender?: string;
  config?: string;
  zone?: string;
  json?: boolean;
}

const ZONE =
  /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)+\.?$/u;

export function registerCheckIdCommand(program: Command): void {
  program
    .command('checkid')
    .description(
      "check the client's registered ID (its HELO name's domain) against the sender registry",
    )
    .requiredOption('--ip <address>', 'SMTP client address (IPv4 or IPv6)')
    .requiredOption('--helo <name>', 'HELO/EHLO argument')
    .option('--sender <address>', 'MAIL FROM address, for the SPF method (empty: the null sender)')
    .option('--config <file>', 'configuration file whose [registry] table is used')
    .option('--zone <domain>', "the registry's DNS zone (instead of the file's registry.zone)")
    .option('--json', 'print one JSON object')
    .action(async (options: CheckIdOptions, command: Command) => {
      if (!parseIp(options.ip)) {
        throw new UsageError(`--ip: not an IP address: ${escapeForLog(options.ip)}`);
      }
      if (options.zone !== undefined && !ZONE.test(options.zone)) {
        throw new UsageError(`--zone: not a domain name: ${escapeForLog(options.zone)}`);
      }
      const config = await configFromOption(options.config);
      const settings = registrySettings(config);
      if (options.zone !== undefined) settings.zone = options.zone.replace(/\.$/u, '');
      if (settings.zone === '') {
        throw new UsageError('no registry zone: give --zone, or --config with [registry] zone');
      }
      const resolver = resolverFromOptions(command);
      const result = await checkId(
        {
          ip: options.ip,
          helo: options.helo,
          ...(options.sender !== undefined
            ? { sender: options.sender.replace(/^<(.*)>$/u, '$1') }
            : {}),
        },
        settings,
        { resolver, limits: { timeBudgetMs: config.registry.time_budget } },
      );
      process.stdout.write(options.json ? `${JSON.stringify(toJson(result))}\n` : toText(result));
    });
}

function toJson(r: RegistryResult): Record<string, unknown> {
  return {
    action: r.action,
    reason: r.reason,
    id: r.id ?? null,
    method: r.method ?? null,
    methodResult: r.methodResult ?? null,
    rating: r.rating ?? null,
    ratings: r.ratings ?? null,
    reply: r.reply,
    headers: r.headers,
    authResults: r.authResults ?? null,
    alert: r.alert ?? null,
    queries: r.queries,
  };
}

function toText(r: RegistryResult): string {
  const lines: Array<[string, string | undefined]> = [
    ['action', r.action],
    ['reason', r.reason],
    ['id', r.id],
    ['method', r.method && `${r.method} ${r.methodResult ?? ''}`.trim()],
    ['rating', r.rating && `${r.rating} (${r.ratings ?? ''})`],
    ['reply', `${r.reply.code} ${r.reply.xcode} ${r.reply.text}`],
    ...r.headers.map((h): [string, string] => ['header', `${h.name}: ${h.value}`]),
    ['auth', r.authResults],
    ['alert', r.alert],
    ['queries', String(r.queries)],
  ];
  let out = '';
  for (const [label, value] of lines) {
    if (value !== undefined) out += `${`${label}:`.padEnd(9)} ${escapeForLog(value)}\n`;
  }
  return out;
}
