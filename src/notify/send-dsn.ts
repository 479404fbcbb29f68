/**
 * Delivering a DSN: straight to the recipient domain's mail hosts with the null sender (RFC 5321
 * 4.5.5, so that it can never bounce back), through the same host finding and fraud rules as a
 * call-back.
 */
import { logValue } from '../text/index.js';
import { type HostAttempt, walkHosts } from './attempts.js';
import { systemClock, TimeBudget } from './budget.js';
import type { MailHosts } from './mail-hosts.js';
import { parseMailbox } from './mailbox.js';
import { hostsFor, type NotifyServices, type RemoteSettings, selfNames } from './settings.js';

export const DEFAULT_DSN_TIMEOUT_MS = 60_000;
export const DEFAULT_DSN_HOST_TIMEOUT_MS = 30_000;

export interface DsnSettings extends RemoteSettings {
  /** Use STARTTLS when a host offers it (opportunistic, unverified). Default true. */
  starttls?: boolean;
}

/** `delivered`: 2xx after DATA. `rejected`: 5xx at any step, or no host could ever take it. */
export type DsnOutcome = 'delivered' | 'rejected' | 'tempfail';

export interface DsnResult {
  outcome: DsnOutcome;
  /** When no conversation decided it: why (the recipient domain's DNS, or the address). */
  cause?: Exclude<MailHosts['kind'], 'hosts'> | 'invalid';
  host?: { name: string; address: string; port: number };
  reply?: { code: number; text: string };
  detail: string;
  attempts: HostAttempt[];
}

/**
 * Deliver `message` to `to` with MAIL FROM:<>, trying its domain's mail hosts in order: the next
 * host on network errors, timeouts and 4xx; a 2xx after DATA delivers, a 5xx anywhere rejects.
 * A null MX, a missing domain, no mail host, or hosts that are ours reject without trying;
 * DNS trouble and a spent budget (`settings.timeoutMs`, 60 s) are tempfail.
 *
 * @example
 * const r = await sendDsn(message, 'sender@example.com', { resolver, smtp }, {
 *   helo: 'mx.example.org', ourNames: ['mx.example.org'], ourAddresses: ['192.0.2.25'],
 * });
 * r.outcome  // 'delivered' | 'rejected' | 'tempfail'
 */
export async function sendDsn(
  message: Buffer,
  to: string,
  services: NotifyServices,
  settings: DsnSettings,
): Promise<DsnResult> {
  const mailbox = parseMailbox(to);
  if (!mailbox) {
    return {
      outcome: 'rejected',
      cause: 'invalid',
      detail: `not an address to send to: ${logValue(to, 100)}`,
      attempts: [],
    };
  }
  const budget = new TimeBudget(
    services.clock ?? systemClock,
    settings.timeoutMs ?? DEFAULT_DSN_TIMEOUT_MS,
  );
  const hosts = await hostsFor(mailbox.domain, services, settings, budget);
  if (hosts.kind !== 'hosts') {
    const outcome = hosts.kind === 'tempfail' ? 'tempfail' : 'rejected';
    return { outcome, cause: hosts.kind, detail: hosts.detail, attempts: [] };
  }

  const walk = await walkHosts(
    hosts.targets,
    { helo: settings.helo, from: '', to: mailbox.address, message, selfNames: selfNames(settings) },
    services.smtp,
    {
      budget,
      hostTimeoutMs: settings.hostTimeoutMs ?? DEFAULT_DSN_HOST_TIMEOUT_MS,
      starttls: settings.starttls ?? true,
      settles: (o) => o.kind === 'ok' || o.kind === 'permanent' || o.kind === 'self',
    },
  );
  const { attempts } = walk;
  if (!walk.final) {
    const last = attempts[attempts.length - 1];
    const why = walk.spent ? 'the time budget ran out' : 'no mail host took it';
    return { outcome: 'tempfail', detail: last ? `${why}; last: ${last.detail}` : why, attempts };
  }
  const { target, outcome } = walk.final;
  const result: DsnResult = {
    outcome: outcome.kind === 'ok' ? 'delivered' : 'rejected',
    host: { name: target.name, address: target.address, port: target.port },
    detail: `${target.name} [${target.address}]:${target.port}: ${outcome.detail}`,
    attempts,
  };
  if (outcome.kind === 'self') result.cause = 'fraud';
  if (outcome.code !== undefined && outcome.reply !== undefined) {
    result.reply = { code: outcome.code, text: outcome.reply };
  }
  return result;
}
