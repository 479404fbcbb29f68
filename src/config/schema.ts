/**
 * The configuration file's schema: every key, its type, its default, and the checks that make a
 * bad value an error naming the key. Keys are written as in the TOML file (snake_case); the
 * parsed values are ready to use (durations in milliseconds, socket modes as numbers).
 */
import { z } from 'zod';
import { validateDnsxlLists } from '../checks/dnsxl/list.js';
import type { DnsxlKind, DnsxlList } from '../checks/dnsxl/types.js';
import { parseServerSpec } from '../dns/resolv-conf.js';
import { parseListenSpec } from '../listen/spec.js';
import { formatDuration, parseDuration } from './duration.js';

/** Log levels, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * A duration key. `min` and `max` (milliseconds) bound it; timers in Node cannot be longer than
 * about 24.8 days, so keys that become timers must say so with `max`.
 */
function duration(example: string, bounds: { min?: number; max?: number } = {}) {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  return z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({
        code: 'custom',
        message: `not a duration: "${text.slice(0, 40)}" (write e.g. ${example})`,
      });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({
        code: 'custom',
        message: `${text.slice(0, 40)} is out of range (${formatDuration(min)} to ${formatDuration(max)})`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

/** A policy action: one line of printable ASCII, as Postfix reads it after `action=`. */
const action = z
  .string()
  .min(1)
  .max(1000)
  .regex(/^[\x20-\x7e]+$/u, 'must be one line of printable ASCII')
  .refine((text) => text.trim() === text, 'must not start or end with a blank');

const listenSpec = z.string().superRefine((text, ctx) => {
  try {
    parseListenSpec(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const dnsServer = z.string().superRefine((text, ctx) => {
  try {
    parseServerSpec(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const socketMode = z
  .string()
  .regex(/^0?[0-7]{3,4}$/u, 'an octal file mode such as "0660"')
  .transform((text) => Number.parseInt(text, 8));

const hostname = z
  .string()
  .max(253)
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/u,
    'a host name (letters, digits, hyphens and dots)',
  );

/** A DNS list as written: a zone, or a table with the zone and its settings. */
function dnsList(kind: DnsxlKind) {
  const table = z.strictObject({
    zone: z.string().min(1),
    weight: z.number().min(0).optional(),
    codes: z.array(z.string()).optional(),
    unusable_codes: z.array(z.string()).optional(),
  });
  return z.union([z.string().min(1), table]).transform((entry): DnsxlList => {
    if (typeof entry === 'string') return { zone: entry, kind };
    const list: DnsxlList = { zone: entry.zone, kind };
    if (entry.weight !== undefined) list.weight = entry.weight;
    if (entry.codes !== undefined) list.codes = entry.codes;
    if (entry.unusable_codes !== undefined) list.unusableCodes = entry.unusable_codes;
    return list;
  });
}

function dnsLists(kind: DnsxlKind) {
  return z
    .array(dnsList(kind))
    .superRefine((lists, ctx) => {
      try {
        validateDnsxlLists(lists);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .default([]);
}

/** A score threshold: reached at this sum; 0 would greylist (or whitelist) everything. */
const threshold = z.number().positive().max(1000);

export const logSchema = z.strictObject({
  /** Lowest level written. */
  level: z.enum(LOG_LEVELS).default('info'),
});

export const dnsSchema = z.strictObject({
  /** DNS servers as `host`, `host:port` or `[v6]:port`; default from /etc/resolv.conf. */
  servers: z.array(dnsServer).min(1).optional(),
  /** Wait for one exchange with one server. */
  timeout: duration('2s', { min: 10, max: 60_000 }).prefault('2s'),
  /** Exchanges in all, cycling through the servers. */
  attempts: z.number().int().min(1).max(10).default(2),
  /** Answers kept in the cache; 0 turns the cache off. */
  cache_entries: z.number().int().min(0).max(10_000_000).default(10_000),
});

export const storeSchema = z.strictObject({
  /** `sqlite:PATH` or `postgres://user@host:port/db`. */
  url: z
    .string()
    .regex(/^(sqlite:|postgres(ql)?:\/\/)/u, 'must start with sqlite: or postgres://')
    .default('sqlite:./var/mailgate.db'),
  /** What a store failure means: `open` lets mail through, `tempfail` defers it. */
  fail: z.enum(['open', 'tempfail']).default('open'),
  /** The action for a store failure under `fail = "tempfail"`. */
  fail_action: action.default('DEFER 4.3.0 temporary failure, try again later'),
  /**
   * The longest one store operation may take before it fails (and `fail` decides): PostgreSQL's
   * query timeout, SQLite's wait for another process's lock.
   */
  timeout: duration('5s', { min: 100, max: 600_000 }).prefault('5s'),
  /** PostgreSQL: how long opening a connection may take. */
  connect_timeout: duration('5s', { min: 100, max: 600_000 }).prefault('5s'),
  /** PostgreSQL: connections per mailgate process at most. */
  pool_size: z.number().int().min(1).max(1000).default(10),
});

export const policySchema = z.strictObject({
  /** Run the policy server. */
  enabled: z.boolean().default(true),
  /** Where to listen: `inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`. */
  listen: z.array(listenSpec).min(1).default(['inet:10027@127.0.0.1']),
  /** `postfix` keeps connections open; `exim` closes after each reply (`${readsocket}`). */
  mode: z.enum(['postfix', 'exim']).default('postfix'),
  /** File mode of unix sockets, e.g. "0660". */
  socket_mode: socketMode.optional(),
  /** A connection silent this long is closed. */
  idle_timeout: duration('5m', { min: 1000, max: 86_400_000 }).prefault('5m'),
  /** A request not decided in this time gets `error_action`. */
  request_timeout: duration('20s', { min: 100, max: 3_600_000 }).prefault('20s'),
  /** The answer when deciding failed (an internal error or a timeout). */
  error_action: action.default('DEFER_IF_PERMIT 4.3.0 temporary policy failure'),
  /** Let clients that authenticated with SMTP AUTH (sasl_username) through unchecked. */
  skip_authenticated: z.boolean().default(true),
});

export const greylistSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Minimum wait before a greylisted triplet passes. */
  period: duration('29m').prefault('29m'),
  /** Extra wait for each retry that came too early. */
  penalty: duration('10m').prefault('10m'),
  /** A triplet passes after this long, whatever its retries. */
  max: duration('12h').prefault('12h'),
  dnsbl: dnsLists('dnsbl'),
  dnswl: dnsLists('dnswl'),
  dnsbl_threshold: threshold.default(1),
  dnswl_threshold: threshold.default(1),
  rfc_threshold: threshold.default(2),
  /** Count an SPF fail or softfail in the score. */
  spf: z.boolean().default(true),
  /** Key triplets by client network (IPv4 /24, IPv6 /64) instead of the exact address. */
  key_by_network: z.boolean().default(false),
  /** Whitelist a client after this many successful deliveries; 0 turns it off. */
  auto_whitelist_clients: z.number().int().min(0).max(1_000_000).default(5),
  /**
   * All the DNS work of deciding about a new triplet (client name, DNS lists, SPF) within this
   * time; lookups not answered by then count as failed. Shorter than policy.request_timeout.
   */
  dns_budget: duration('10s', { min: 100, max: 600_000 }).prefault('10s'),
  /** How long a client's good or bad verdict is reused for new triplets; "0s" turns it off. */
  cache_valid: duration('60s', { max: 86_400_000 }).prefault('60s'),
  /** A file of recipients never greylisted (postgrey syntax). */
  whitelist_recipients: z.string().min(1).optional(),
  /** A file of clients never greylisted (postgrey syntax). */
  whitelist_clients: z.string().min(1).optional(),
  /** The answer for a greylisted request. */
  action: action.default('DEFER_IF_PERMIT greylisted, try again later'),
  /** Add X-Greylist to messages that passed after a wait. */
  header: z.boolean().default(true),
  /** Keep a log of every decision in the store. */
  decision_log: z.boolean().default(true),
  expire_passed: duration('40d').prefault('40d'),
  expire_greylisted: duration('10d').prefault('10d'),
  expire_decisions: duration('30d').prefault('30d'),
});

/** The whole file. Every table may be left out; every key has a default. */
export const configSchema = z.strictObject({
  /** This host's name, in X-Greylist and the decision log; default the system's host name. */
  hostname: hostname.optional(),
  log: logSchema.prefault({}),
  dns: dnsSchema.prefault({}),
  store: storeSchema.prefault({}),
  policy: policySchema.prefault({}),
  greylist: greylistSchema.prefault({}),
});

/** A validated configuration: durations in milliseconds, defaults filled in. */
export type Config = z.output<typeof configSchema>;

/** A setting that works but is probably not what was meant. */
export interface ConfigWarning {
  /** The key, as in the file (`greylist.dns_budget`). */
  key: string;
  problem: string;
}

/**
 * Settings that are valid but likely a mistake. They are reported (by `serve --check`, and
 * logged as `config-warning` at start and reload), not refused: a test rig or an unusual site
 * may mean them.
 *
 * @example
 * configWarnings(parseConfigText('[policy]\nrequest_timeout = "5s"\n', 'x'))
 * // [{ key: 'greylist.dns_budget', problem: 'not shorter than policy.request_timeout (5s): ...' }]
 */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const storeAndDns = config.greylist.dns_budget + config.store.timeout;
  if (
    config.greylist.enabled &&
    config.greylist.dns_budget < config.policy.request_timeout &&
    storeAndDns >= config.policy.request_timeout
  ) {
    warnings.push({
      key: 'store.timeout',
      problem:
        `with greylist.dns_budget, not shorter than policy.request_timeout (${formatDuration(config.policy.request_timeout)}): ` +
        'a store that hangs after slow lookups times the request out (error_action) instead of following store.fail',
    });
  }
  if (config.greylist.enabled && config.greylist.dns_budget >= config.policy.request_timeout) {
    warnings.push({
      key: 'greylist.dns_budget',
      problem:
        `not shorter than policy.request_timeout (${formatDuration(config.policy.request_timeout)}): ` +
        'a slow lookup times the whole request out (error_action) instead of counting as a failed lookup',
    });
  }
  return warnings;
}
