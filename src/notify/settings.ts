/**
 * What call-backs and DSNs share: the services they are given, the settings that say who we are
 * and how long to try, and finding the hosts to talk to with those settings.
 */
import type { Clock, Resolver } from '../dns/types.js';
import type { TimeBudget } from './budget.js';
import { type MailHosts, mailHosts } from './mail-hosts.js';
import type { SmtpClient } from './types.js';

/** The world services of call-backs and DSNs. */
export interface NotifyServices {
  resolver: Resolver;
  smtp: SmtpClient;
  /** For the time budget. Default: the system clock. */
  clock?: Clock;
}

/** Who we are, where to connect, and how long to try. */
export interface RemoteSettings {
  /** Our EHLO name; it also counts as one of `ourNames`. */
  helo: string;
  /** Our host names: an MX with one of them, or a server naming one, is never talked to. */
  ourNames: readonly string[];
  /** Our addresses or networks: an MX with one of them is never connected to. */
  ourAddresses: readonly string[];
  /**
   * Addresses exempt from the loopback and unspecified rules, never from `ourAddresses` or
   * `ourNames`. The daemon sets none; for a site whose mail hosts are on loopback, and tests.
   */
  allowAddresses?: readonly string[];
  /** The SMTP port of every host. Default 25. */
  port?: number;
  /** Most addresses tried. Default 5. */
  maxHosts?: number;
  /** The whole task, DNS included. */
  timeoutMs?: number;
  /** Most time one host may take. */
  hostTimeoutMs?: number;
}

/** Our names as fraud detection compares them: the configured ones and the EHLO name. */
export function selfNames(settings: RemoteSettings): string[] {
  return [...settings.ourNames, settings.helo];
}

/** mailHosts under the task's settings, within what is left of its budget. */
export function hostsFor(
  domain: string,
  services: NotifyServices,
  settings: RemoteSettings,
  budget: TimeBudget,
): Promise<MailHosts> {
  return mailHosts(domain, {
    resolver: services.resolver,
    ourAddresses: settings.ourAddresses,
    ourNames: selfNames(settings),
    ...(settings.allowAddresses ? { allowAddresses: settings.allowAddresses } : {}),
    ...(settings.maxHosts !== undefined ? { maxHosts: settings.maxHosts } : {}),
    ...(settings.port !== undefined ? { port: settings.port } : {}),
    timeoutMs: Math.max(0, budget.left()),
    ...(services.clock ? { clock: services.clock } : {}),
  });
}
