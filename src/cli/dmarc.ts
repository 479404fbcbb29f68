/**
 * `mailgate dmarc`: SPF, DKIM and DMARC for one message from the command line, as the milter
 * judges it at end of message (without the site's policy: what DMARC says, not what we do).
 */
import type { Command } from 'commander';
import { dkimAuthResults } from '../checks/dkim/auth-results.js';
import { verifyDkim } from '../checks/dkim/index.js';
import { checkDmarc, dmarcAuthResults } from '../checks/dmarc/index.js';
import type { DmarcSpfInput } from '../checks/dmarc/types.js';
import { parseMessage } from '../checks/message/index.js';
import { authResultsClause } from '../checks/spf/header.js';
import { checkSpf } from '../checks/spf/index.js';
import { parseIp } from '../dns/address.js';
import { authenticationResults, resultClause } from '../policy/auth-results.js';
import { dkimVerifySettings, dmarcCheckSettings } from '../serve/settings.js';
import { escapeForLog } from '../text/index.js';
import { readMessage } from './message-input.js';
import { configFromOption, resolverFromOptions } from './services.js';
import { UsageError } from './usage.js';

interface DmarcOptions {
  ip: string;
  sender: string;
  helo?: string;
  config?: string;
  json?: boolean;
}

export function registerDmarcCommand(program: Command): void {
  program
    .command('dmarc')
    .description('SPF, DKIM and DMARC for a message (standard input without FILE)')
    .argument('[file]', 'the message')
    .requiredOption('--ip <address>', 'SMTP client address (IPv4 or IPv6)')
    .requiredOption('--sender <address>', 'MAIL FROM address (empty: the null sender)')
    .option('--helo <name>', 'HELO/EHLO argument')
    .option('--config <file>', 'configuration file whose [dmarc] and [dkim] tables are used')
    .option('--json', 'print one JSON object')
    .action(async (file: string | undefined, options: DmarcOptions, command: Command) => {
      if (!parseIp(options.ip)) {
        throw new UsageError(`--ip: not an IP address: ${escapeForLog(options.ip)}`);
      }
      const config = await configFromOption(options.config);
      const message = await readMessage(file);
      const resolver = resolverFromOptions(command);
      const sender = options.sender.replace(/^<(.*)>$/u, '$1');
      const helo = options.helo ?? '';
      const [spf, dkim] = await Promise.all([
        checkSpf(
          { ip: options.ip, sender, helo, identity: sender === '' ? 'helo' : 'mailfrom' },
          { resolver, receiver: 'mailgate' },
        ),
        verifyDkim(message, dkimVerifySettings(config), { resolver }),
      ]);
      const spfInput: DmarcSpfInput = {
        domain: spf.domain,
        result: spf.result,
        scope: spf.identity === 'helo' ? 'helo' : 'mfrom',
      };
      const from = parseMessage(message).headers.filter((h) => h.key === 'from');
      const dmarc = await checkDmarc(
        {
          from,
          spf: spfInput,
          dkim: dkim.map((r) => ({ domain: r.domain, result: r.result, selector: r.selector })),
        },
        dmarcCheckSettings(config),
        { resolver },
      );
      const authResults = authenticationResults('mailgate', [
        authResultsClause(spf),
        ...dkimAuthResults(dkim).map(resultClause),
        resultClause(dmarcAuthResults(dmarc)),
      ]);
      if (options.json) {
        const json = {
          spf: { result: spf.result, domain: spf.domain, scope: spfInput.scope },
          dkim: dkim.map((r) => ({
            result: r.result,
            domain: r.domain,
            selector: r.selector,
            algorithm: r.algorithm,
            reason: r.reason,
          })),
          dmarc: {
            result: dmarc.result,
            policy: dmarc.policy,
            disposition: dmarc.disposition,
            domain: dmarc.domain ?? null,
            policyDomain: dmarc.policyDomain ?? null,
            spfAligned: dmarc.spfAligned,
            dkimAligned: dmarc.dkimAligned,
            testing: dmarc.testing,
            reason: dmarc.reason,
          },
          authResults,
        };
        process.stdout.write(`${JSON.stringify(json)}\n`);
        return;
      }
      const lines: Array<[string, string]> = [
        ['spf', `${spf.result} ${spf.domain}`],
        ...dkim.map((r): [string, string] => ['dkim', `${r.result} d=${r.domain} (${r.reason})`]),
        [
          'dmarc',
          `${dmarc.result} ${dmarc.domain ?? '-'} policy=${dmarc.policy} disposition=${dmarc.disposition}`,
        ],
        ['aligned', `spf=${dmarc.spfAligned} dkim=${dmarc.dkimAligned}`],
        ['reason', dmarc.reason],
        ['auth', authResults],
      ];
      for (const [label, value] of lines) {
        process.stdout.write(`${`${label}:`.padEnd(9)} ${escapeForLog(value)}\n`);
      }
    });
}
