/**
 * `mailgate check`: every check on one client, one row each — the command a postmaster runs to
 * see why a host is treated as it is.
 */
import type { Command } from 'commander';
import {
  checkCsa,
  checkDnsxl,
  checkHelo,
  checkPtr,
  checkSpf,
  type DnsxlList,
  validateDnsxlLists,
} from '../checks/index.js';
import { parseIp } from '../dns/address.js';
import type { Resolver } from '../dns/types.js';
import { classifyConnection, classifyNetworks } from '../policy/index.js';
import { escapeForLog } from '../text/index.js';
import { resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

interface CheckCommandOptions {
  ip: string;
  helo: string;
  sender?: string;
  dnsbl?: string[];
  dnswl?: string[];
  rhsbl?: string[];
  internal?: string[];
  trusted?: string[];
  ourName?: string[];
  authenticated?: boolean;
  json?: boolean;
}

/** One line of the report. */
export interface CheckRow {
  name: string;
  result: string;
  detail: string;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('run every check on a client and show one row per check')
    .requiredOption('--ip <address>', 'SMTP client address (IPv4 or IPv6)')
    .requiredOption('--helo <name>', 'HELO/EHLO name')
    .option('--sender <address>', 'MAIL FROM address (adds SPF, and RHSBL on its domain)')
    .option('--dnsbl <zone>', 'DNS blocklist to ask (repeatable)', collect)
    .option('--dnswl <zone>', 'DNS allowlist to ask (repeatable)', collect)
    .option('--rhsbl <zone>', 'domain blocklist for the sender domain (repeatable)', collect)
    .option('--internal <cidr>', 'internal_connect network (repeatable)', collect)
    .option('--trusted <cidr>', 'trusted_relay network (repeatable)', collect)
    .option(
      '--our-name <name>',
      'one of our own names or addresses (hello_blacklist; repeatable)',
      collect,
    )
    .option('--authenticated', 'the client authenticated with SMTP AUTH')
    .option('--json', 'print { "checks": [ { "name", "result", "detail" } ] }')
    .action(async (options: CheckCommandOptions, command: Command) => {
      if (!parseIp(options.ip)) {
        throw new UsageError(`--ip: not an IP address: ${escapeForLog(options.ip)}`);
      }
      const lists: DnsxlList[] = [
        ...(options.dnsbl ?? []).map((zone) => ({ zone, kind: 'dnsbl' as const, txt: true })),
        ...(options.dnswl ?? []).map((zone) => ({ zone, kind: 'dnswl' as const })),
        ...(options.rhsbl ?? []).map((zone) => ({ zone, kind: 'rhsbl' as const, txt: true })),
      ];
      let networks: ReturnType<typeof classifyNetworks>;
      try {
        validateDnsxlLists(lists);
        networks = classifyNetworks({
          internalNetworks: options.internal,
          trustedRelays: options.trusted,
        });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const rows = await runChecks(resolverFromOptions(command), options, lists, networks);
      process.stdout.write(options.json ? `${JSON.stringify({ checks: rows })}\n` : table(rows));
    });
}

async function runChecks(
  resolver: Resolver,
  options: CheckCommandOptions,
  lists: DnsxlList[],
  networks: ReturnType<typeof classifyNetworks>,
): Promise<CheckRow[]> {
  const { ip, helo } = options;
  const sender = options.sender?.replace(/^<(.*)>$/s, '$1');
  const senderDomain = sender?.includes('@')
    ? sender.slice(sender.lastIndexOf('@') + 1)
    : undefined;
  const internal =
    networks.internal.length > 0 && classifyConnection({ ip }, networks).class === 'INTERNAL';
  // The PTR comes first: the HELO score and the classification use what it finds.
  const ptr = await checkPtr({ ip }, { resolver });
  const ipLists = lists.filter((l) => l.kind !== 'rhsbl');
  const domainLists = senderDomain ? lists.filter((l) => l.kind === 'rhsbl') : [];
  const [csa, heloResult, listed, spf] = await Promise.all([
    checkCsa({ ip, helo }, { resolver }),
    checkHelo(
      { ip, helo, ptrName: ptr.name ?? null, internal, authenticated: options.authenticated },
      { resolver, options: ourIdentity(options.ourName ?? []) },
    ),
    ipLists.length + domainLists.length > 0
      ? checkDnsxl({ ip, domain: senderDomain }, { resolver, lists: [...ipLists, ...domainLists] })
      : undefined,
    sender !== undefined ? checkSpf({ ip, sender, helo }, { resolver }) : undefined,
  ]);
  const classification = classifyConnection(
    {
      ip,
      authenticated: options.authenticated,
      ptr: {
        verified: ptr.result === 'verified',
        name: ptr.name,
        dynamic: ptr.dynamic,
        tempfail: ptr.result === 'tempfail',
      },
    },
    networks,
  );

  const rows: CheckRow[] = [];
  rows.push({
    name: 'ptr',
    result: ptr.result,
    detail: join([
      ptr.name ?? (ptr.names.length ? `names ${ptr.names.join(', ')}` : 'no PTR names'),
      ptr.dynamic ? `dynamic (${ptr.reasons.join(', ')})` : undefined,
      ptr.flags.localhost ? 'localhost PTR' : undefined,
      ptr.flags.root ? 'PTR is the root' : undefined,
      ptr.problem,
    ]),
  });
  rows.push({
    name: 'helo',
    result: heloResult.result,
    detail: join([
      heloResult.outcomes
        .filter((o) => o.result === 'fail' || o.result === 'tempfail')
        .map((o) => `${o.rule}: ${o.reason}`)
        .join(', ') || 'no rule failed',
      `bley score ${heloResult.score}`,
    ]),
  });
  rows.push({
    name: 'csa',
    result: csa.result,
    detail: join([csa.reason, csa.target ? `target ${csa.target}` : undefined, csa.problem]),
  });
  for (const list of listed?.lists ?? []) {
    rows.push({
      name: `${list.kind} ${list.zone}`,
      result: list.result,
      detail: join([list.codes.join(', ') || undefined, list.reason, list.detail]) || '-',
    });
  }
  if (spf) {
    rows.push({
      name: 'spf',
      result: spf.result,
      detail:
        join([
          spf.mechanism ? `mechanism ${spf.mechanism}` : undefined,
          spf.problem,
          spf.result === 'fail' ? spf.explanation : undefined,
          spf.guess ? `guess ${spf.guess}` : undefined,
        ]) || `domain ${spf.domain}`,
    });
  }
  rows.push({
    name: 'class',
    result: classification.class,
    detail: classification.reasons.join(', '),
  });
  // Everything shown may come from the client or from DNS: one line each, whatever it held.
  return rows.map((row) => ({
    name: escapeForLog(row.name),
    result: row.result,
    detail: escapeForLog(row.detail),
  }));
}

/** `--our-name` takes names and addresses alike; the HELO check wants them apart. */
function ourIdentity(values: string[]): { ourNames: string[]; ourAddresses: string[] } {
  const ourNames: string[] = [];
  const ourAddresses: string[] = [];
  for (const value of values) {
    const bare = value.replace(/^\[(?:IPv6:)?(.*)\]$/i, '$1');
    if (parseIp(bare)) ourAddresses.push(bare);
    else ourNames.push(value);
  }
  return { ourNames, ourAddresses };
}

function join(parts: Array<string | undefined>): string {
  return parts.filter((p): p is string => Boolean(p)).join('; ');
}

function table(rows: CheckRow[]): string {
  const nameWidth = Math.max(...rows.map((r) => r.name.length), 5);
  const resultWidth = Math.max(...rows.map((r) => r.result.length), 6);
  return rows
    .map((r) => `${r.name.padEnd(nameWidth)}  ${r.result.padEnd(resultWidth)}  ${r.detail}\n`)
    .join('');
}
