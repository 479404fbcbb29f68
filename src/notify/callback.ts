/**
 * Call-back verification: ask the sender domain's own mail hosts whether they would accept mail
 * for the sender, the way a bounce would reach it (MAIL FROM:<>), and stop before DATA.
 */
import { logValue } from '../text/index.js';
import { type HostAttempt, walkHosts } from './attempts.js';
import { systemClock, TimeBudget } from './budget.js';
import { parseMailbox } from './mailbox.js';
import { hostsFor, type NotifyServices, type RemoteSettings, selfNames } from './settings.js';
import type { SmtpOutcome, SmtpTarget } from './types.js';

export const DEFAULT_CALLBACK_TIMEOUT_MS = 20_000;
export const DEFAULT_CALLBACK_HOST_TIMEOUT_MS = 10_000;

/**
 * - `accepted`: a mail host said 2xx to RCPT TO:<sender>.
 * - `rejected`: a mail host said 5xx to MAIL FROM:<> or to RCPT TO (the reply says which).
 * - `tempfail`: 4xx, timeouts, no host answering, DNS trouble, the budget spent.
 * - `null-mx`: the domain publishes a null MX (RFC 7505): it accepts no mail, so no bounce could
 *   ever reach the sender.
 * - `no-domain`: the sender domain does not exist (NXDOMAIN).
 * - `no-host`: the domain exists but names no mail host with an address.
 * - `fraud`: its mail hosts are ours, loopback or unspecified, or the server named one of our
 *   names; never probed.
 * - `invalid`: the sender is not an address we can probe (the null sender, an address literal,
 *   a control character, non-ASCII); nothing was looked up or sent.
 */
export type CallbackOutcome =
  | 'accepted'
  | 'rejected'
  | 'tempfail'
  | 'null-mx'
  | 'no-domain'
  | 'no-host'
  | 'fraud'
  | 'invalid';

export type CallbackSettings = RemoteSettings;

export interface CallbackResult {
  outcome: CallbackOutcome;
  /** The sender domain, lower case, when the sender parsed. */
  domain?: string;
  /** The host whose answer settled it. */
  host?: { name: string; address: string; port: number };
  /** That host's reply, one printable line of at most 300 characters. */
  reply?: { code: number; text: string };
  /** One printable line for the log. */
  detail: string;
  /** Every host tried, in order. */
  attempts: HostAttempt[];
}

/**
 * Verify that `sender` can receive mail: resolve its domain's mail hosts, and at each in turn
 * `EHLO helo`, `MAIL FROM:<>`, `RCPT TO:<sender>`, `QUIT`. Network errors, timeouts and 4xx
 * move on to the next host; a 2xx or a 5xx at MAIL or RCPT settles it. One budget
 * (`settings.timeoutMs`, 20 s) covers DNS and every host; one host gets at most
 * `settings.hostTimeoutMs` (10 s). Caching and per-domain rate limits are the caller's.
 *
 * @example
 * const r = await callbackVerify('jo@example.com', { resolver, smtp: createSmtpClient() }, {
 *   helo: 'mx.example.org', ourNames: ['mx.example.org'], ourAddresses: ['192.0.2.25'],
 * });
 * r.outcome  // 'accepted' | 'rejected' | 'tempfail' | ...
 * r.reply    // { code: 550, text: '5.1.1 no such user' } when rejected
 */
export async function callbackVerify(
  sender: string,
  services: NotifyServices,
  settings: CallbackSettings,
): Promise<CallbackResult> {
  const mailbox = parseMailbox(sender);
  if (!mailbox) {
    return {
      outcome: 'invalid',
      detail: `not an address to verify: ${logValue(sender, 100)}`,
      attempts: [],
    };
  }
  const { domain } = mailbox;
  const budget = new TimeBudget(
    services.clock ?? systemClock,
    settings.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS,
  );
  const hosts = await hostsFor(domain, services, settings, budget);
  if (hosts.kind !== 'hosts') {
    return { outcome: hosts.kind, domain, detail: hosts.detail, attempts: [] };
  }

  const walk = await walkHosts(
    hosts.targets,
    { helo: settings.helo, from: '', to: mailbox.address, selfNames: selfNames(settings) },
    services.smtp,
    {
      budget,
      hostTimeoutMs: settings.hostTimeoutMs ?? DEFAULT_CALLBACK_HOST_TIMEOUT_MS,
      // A probe carries nothing worth encrypting; TLS would only add ways to fail.
      starttls: false,
      settles: (o) =>
        o.kind === 'ok' ||
        o.kind === 'self' ||
        (o.kind === 'permanent' && (o.stage === 'mail' || o.stage === 'rcpt')),
    },
  );
  const { attempts } = walk;
  if (!walk.final) {
    const last = attempts[attempts.length - 1];
    const why = walk.spent ? 'the time budget ran out' : 'no mail host gave a final answer';
    const detail = last ? `${why}; last: ${where(last)}: ${last.detail}` : why;
    return { outcome: 'tempfail', domain, detail, attempts };
  }
  const { target, outcome } = walk.final;
  const result: CallbackResult = {
    outcome: outcomeOf(outcome),
    domain,
    host: { name: target.name, address: target.address, port: target.port },
    detail: `${where(target)}: ${outcome.detail}`,
    attempts,
  };
  if (outcome.code !== undefined && outcome.reply !== undefined) {
    result.reply = { code: outcome.code, text: outcome.reply };
  }
  return result;
}

function outcomeOf(outcome: SmtpOutcome): CallbackOutcome {
  if (outcome.kind === 'ok') return 'accepted';
  if (outcome.kind === 'self') return 'fraud';
  return 'rejected';
}

function where(target: Pick<SmtpTarget, 'name' | 'address' | 'port'>): string {
  return `${target.name} [${target.address}]:${target.port}`;
}
