/**
 * `mailgate check`: every check on one client, one row each — the command a postmaster runs to
 * see why a host is treated as it is.
 */
import type { Command } from 'commander';
import { checkDnsxl, type DnsxlList, validateDnsxlLists } from '../checks/index.js';
import type { Config } from '../config/index.js';
import { parseIp } from '../dns/address.js';
import { createResolver } from '../dns/index.js';
import type { Resolver } from '../dns/types.js';
import {
  AccessMapFile,
  classifyNetworks,
  type Decision,
  PolicyEngine,
  type PolicySettings,
  splitOurNames,
} from '../policy/index.js';
import { policySettings, resolverOptions } from '../serve/index.js';
import { escapeForLog } from '../text/index.js';
import { configFromOption, resolverFromOptions } from './services.js';
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
  config?: string;
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
    .option(
      '-c, --config <file>',
      "the daemon's configuration: its networks, names, SPF policy, access map and DNS servers",
    )
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
      const config = await configFromOption(options.config);
      let settings: PolicySettings;
      try {
        validateDnsxlLists(lists);
        settings = await checkSettings(config, options);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      // --dns wins; else the configuration's servers (the daemon's view); else resolv.conf.
      const dnsGiven = ((command.optsWithGlobals() as { dns?: string[] }).dns ?? []).length > 0;
      const resolver =
        dnsGiven || options.config === undefined
          ? resolverFromOptions(command)
          : createResolver(resolverOptions(config));
      const rows = await runChecks(resolver, options, lists, settings);
      process.stdout.write(options.json ? `${JSON.stringify({ checks: rows })}\n` : table(rows));
    });
}

/** The daemon's settings, with the command line's networks and names added. */
async function checkSettings(
  config: Config,
  options: CheckCommandOptions,
): Promise<PolicySettings> {
  const accessMap = config.spf.access_file
    ? await AccessMapFile.load(config.spf.access_file)
    : undefined;
  const base = policySettings(config, accessMap);
  const extra = classifyNetworks({
    internalNetworks: options.internal,
    trustedRelays: options.trusted,
  });
  const ours = splitOurNames(options.ourName ?? []);
  return {
    ...base,
    networks: {
      internal: [...base.networks.internal, ...extra.internal],
      trusted: [...base.networks.trusted, ...extra.trusted],
    },
    ourNames: [...base.ourNames, ...ours.ourNames],
    ourAddresses: [...base.ourAddresses, ...ours.ourAddresses],
  };
}

async function runChecks(
  resolver: Resolver,
  options: CheckCommandOptions,
  lists: DnsxlList[],
  settings: PolicySettings,
): Promise<CheckRow[]> {
  const { ip, helo } = options;
  const sender = options.sender?.replace(/^<(.*)>$/s, '$1');
  const senderDomain = sender?.includes('@')
    ? sender.slice(sender.lastIndexOf('@') + 1)
    : undefined;
  // The daemon's own engine and stages, without a store, call-backs or greylisting: what it
  // would decide at each stage, and the checks it read on the way (each run once).
  const quiet = { info() {}, warn() {}, error() {} };
  const engine = new PolicyEngine(settings, { resolver, logger: quiet });
  const session = engine.session('check', {
    ip,
    ...(options.authenticated ? { login: '(authenticated)' } : {}),
  });
  const decisions: Array<[string, Decision]> = [['connect', await engine.connect(session)]];
  decisions.push(['helo', await engine.helo(session, helo)]);
  if (sender !== undefined) decisions.push(['mail', await engine.mail(session, sender)]);
  const { facts } = session;
  const ipLists = lists.filter((l) => l.kind !== 'rhsbl');
  const domainLists = senderDomain ? lists.filter((l) => l.kind === 'rhsbl') : [];
  const [ptr, heloResult, csa, listed, spf, classification] = await Promise.all([
    facts.ptr(),
    facts.heloFull(),
    facts.csa(),
    ipLists.length + domainLists.length > 0
      ? checkDnsxl({ ip, domain: senderDomain }, { resolver, lists: [...ipLists, ...domainLists] })
      : undefined,
    sender !== undefined ? facts.spf() : undefined,
    facts.classification(),
  ]);

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
  for (const [stage, decision] of decisions) {
    rows.push({
      name: `decision ${stage}`,
      result: decision.verdict,
      detail:
        join([
          decision.reply
            ? `${decision.reply.code} ${decision.reply.xcode} ${decision.reply.text}`
            : undefined,
          decision.tags.join(', ') || undefined,
        ]) || decision.reason,
    });
  }
  // Everything shown may come from the client or from DNS: one line each, whatever it held.
  return rows.map((row) => ({
    name: escapeForLog(row.name),
    result: row.result,
    detail: escapeForLog(row.detail),
  }));
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
