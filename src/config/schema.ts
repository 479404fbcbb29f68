/**
 * The configuration file's schema: every key, its type, its default, and the checks that make a
 * bad value an error naming the key. Keys are written as in the TOML file (snake_case); the
 * parsed values are ready to use (durations in milliseconds, socket modes as numbers).
 */
import { z } from 'zod';
import { validateDnsxlLists } from '../checks/dnsxl/list.js';
import type { DnsxlKind, DnsxlList } from '../checks/dnsxl/types.js';
import { parseNetwork } from '../dns/address.js';
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
  /** `json` for machines, `text` (one line, the same fields) for a person; read at start. */
  format: z.enum(['json', 'text']).default('json'),
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

export const policydSchema = z.strictObject({
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
  /**
   * Run the policy engine's stages (connection, HELO, MAIL FROM and SPF policy) as far as the
   * request's protocol_state allows, not only greylisting. Turn it off where the milter does it.
   */
  policy: z.boolean().default(true),
});

/** An address or a network in CIDR notation. */
const network = z.string().superRefine((text, ctx) => {
  if (!parseNetwork(text.trim())) {
    ctx.addIssue({ code: 'custom', message: `not an address or network: "${text.slice(0, 60)}"` });
  }
});

/** A mail domain as written in lists (`example.com`); compared without case. */
const domain = z
  .string()
  .max(253)
  .regex(
    /^\.?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/u,
    'a domain name (letters, digits, hyphens and dots)',
  )
  .transform((text) => text.toLowerCase().replace(/\.$/u, ''));

/** A name or address we answer to: a host name, an address, or a bracketed address literal. */
const ourName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[\x21-\x7e]+$/u, 'a host name or an address, without blanks');

export const milterSchema = z.strictObject({
  /** Run the milter. */
  enabled: z.boolean().default(true),
  /** Where to listen: `inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`. */
  listen: z.array(listenSpec).min(1).default(['inet:10028@127.0.0.1']),
  /** File mode of unix sockets, e.g. "0660". */
  socket_mode: socketMode.optional(),
  /** Our own clients (bms.py's internal_connect): addresses and networks. */
  internal_connect: z.array(network).default([]),
  /** Our own mail domains: internal clients must use them, external clients must not. */
  internal_domains: z.array(domain).default([]),
  /** Relays whose mail is taken as checked (bms.py's trusted_relay): addresses and networks. */
  trusted_relay: z.array(network).default([]),
  /** Names and addresses that are ours: a HELO naming one from outside is forged. Default: the host name. */
  hello_blacklist: z.array(ourName).optional(),
  /** Local parts refused as non-null senders (DSNs sent with a user's address by broken MTAs). */
  banned_users: z
    .array(z.string().min(1).max(64))
    .default(['postmaster', 'mailer-daemon', 'clamav']),
  /** Refuse a HELO that is a bare IPv4 address (not a bracketed literal). */
  reject_numeric_helo: z.boolean().default(true),
  /** Refuse a client whose PTR is `localhost` (from a non-loopback address) or `.`. */
  reject_ptr_localhost: z.boolean().default(true),
  /** CSA (SRV _client._smtp): `off`, `record` (in headers and logs) or `reject` (refuse a fail). */
  csa: z.enum(['off', 'record', 'reject']).default('record'),
  /** Greylist at RCPT from the milter too (for Sendmail sites), with the same store. */
  greylist: z.boolean().default(false),
  /** The authserv-id of our Authentication-Results; default the host name. */
  authserv_id: hostname.optional(),
  /** Longest a callback may take before the milter answers tempfail. */
  callback_timeout: duration('60s', { min: 1000, max: 3_600_000 }).prefault('60s'),
  /** A connection silent this long is closed. */
  idle_timeout: duration('7m', { min: 1000, max: 86_400_000 }).prefault('7m'),
});

export const spfSchema = z.strictObject({
  /** Refuse senders with no SPF, no valid HELO and no PTR instead of calling them back. */
  reject_noptr: z.boolean().default(false),
  /** When a domain publishes no SPF, try `v=spf1 a/24 mx/24 ptr` (the three-strikes first test). */
  best_guess: z.boolean().default(true),
  /** Domains whose softfail is accepted without a call-back. */
  accept_softfail: z.array(domain).default([]),
  /** Domains whose fail is treated as a softfail (a broken record of an important sender). */
  accept_fail: z.array(domain).default([]),
  /** Domains whose neutral (and softfail) is refused: highly forged domains. */
  reject_neutral: z.array(domain).default([]),
  /** A local zone of substitute records: `<domain>._spf.<zone>` for domains that publish none. */
  fallback_zone: domain.optional(),
  /** Forwarders whose mail passes when `postmaster@<forwarder>` passes SPF for the client. */
  trusted_forwarder: z.array(domain).default([]),
  /** An access file with `SPF-<Result>:[domain]` entries overriding the policy (docs/access-map.md). */
  access_file: z.string().min(1).optional(),
  /** Add MAIL FROM as Sender when the From domain differs from it and there is no Sender. */
  supply_sender: z.boolean().default(false),
  /** Evaluate records with a permanent error leniently, and tell the sender by DSN. */
  lax: z.boolean().default(false),
});

/** A rate such as `10/h`: so many events per second, minute, hour or day. */
const rate = z.string().transform((text, ctx) => {
  const m = /^\s*(\d{1,9})\s*\/\s*(s|m|h|d)\s*$/u.exec(text);
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message: `not a rate: "${text.slice(0, 40)}" (write e.g. "10/h": per s, m, h or d)`,
    });
    return z.NEVER;
  }
  const per = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return { limit: Number(m[1]), windowMs: per };
});

export const cbvSchema = z.strictObject({
  /** Verify doubtful senders by calling back their MX (and send DSNs where the policy says so). */
  enabled: z.boolean().default(true),
  /** How long a sender's outcome is remembered, in days. */
  cache_days: z.number().int().min(1).max(3650).default(30),
  /** Call-backs and DSNs per sender domain at most, shared by all MX hosts on one store. */
  per_domain_rate: rate.prefault('10/h'),
  /** A directory of DSN templates (`strike3.txt`, `softfail.txt`, ...); built-in ones otherwise. */
  templates: z.string().min(1).optional(),
  /** The address DSNs come from; default `postmaster@<hostname>`. */
  postmaster: z
    .string()
    .min(3)
    .max(254)
    .regex(/^[^\s<>@]+@[^\s<>@]+$/u, 'an address')
    .optional(),
  /** The name we give in HELO when calling back; default the host name. */
  helo_name: hostname.optional(),
  /** All of one call-back or DSN delivery, every MX host tried, within this time. */
  timeout: duration('30s', { min: 1000, max: 600_000 }).prefault('30s'),
  /** Port of the remote MX hosts (25; tests use others). */
  port: z.number().int().min(1).max(65535).default(25),
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
  /**
   * Key a sender whose SPF passes by its domain instead of the client, so that a retry from
   * another host of the sender's pool passes.
   */
  key_spf_pass_by_domain: z.boolean().default(true),
  /** Whitelist a client after this many successful deliveries; 0 turns it off. */
  auto_whitelist_clients: z.number().int().min(0).max(1_000_000).default(5),
  /**
   * All the DNS work of deciding about a new triplet (client name, DNS lists, SPF) within this
   * time; lookups not answered by then count as failed. Shorter than policyd.request_timeout.
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

/** A service code or grade as registry records write them (`S1`, `A`). */
const registryCode = (what: string, max: number) =>
  z
    .string()
    .regex(
      new RegExp(`^[A-Za-z0-9+-]{1,${max}}$`, 'u'),
      `${what}: letters and digits, at most ${max}`,
    )
    .transform((text) => text.toUpperCase());

const registryServiceSchema = z.strictObject({
  /** The score of each grade the service gives (`A = 9`); grades not listed are ignored. */
  grades: z.record(registryCode('a grade', 4), z.number().min(-100).max(100)),
  /** How much the service counts in the weighted average. */
  weight: z.number().min(0).max(1000),
});

export const registrySchema = z
  .strictObject({
    /** Run the sender-registry ID check at MAIL FROM (milter), before SPF. */
    enabled: z.boolean().default(false),
    /** The registry's DNS zone: the record of ID is the TXT at `<ID>.<zone>`. */
    zone: domain.optional(),
    /** Methods in our order of preference, each with the most queries a sender may declare. */
    methods: z
      .array(
        z.strictObject({
          name: z.enum(['QR1', 'CSV', 'SPF']),
          max_queries: z.number().int().min(0).max(999),
        }),
      )
      .max(3)
      .default([
        { name: 'QR1', max_queries: 0 },
        { name: 'CSV', max_queries: 4 },
        { name: 'SPF', max_queries: 30 },
      ]),
    /** Trusted rating services by code; ratings from others are ignored. */
    services: z.record(registryCode('a service code', 8), registryServiceSchema).default({}),
    /** Ratings are read until their weights add up to this. */
    enough_weight: z.number().min(0).default(15),
    /** A weighted average below this is refused. */
    reject_average: z.number().default(3),
    /** Any score below this is refused. */
    reject_minimum: z.number().default(1),
    /** The rating is HIGH when the lowest score is above this and the highest above high_maximum. */
    high_minimum: z.number().default(4),
    high_maximum: z.number().default(8),
    /** What FILTER does in the milter: add `X-Registry-Filter: YES`, or quarantine the message. */
    filter: z.enum(['header', 'quarantine']).default('header'),
    /** Where refused senders can read why, added to refusals (a URL). */
    help: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\x21-\x7e]+$/u, 'one word of printable ASCII (a URL)')
      .optional(),
    /** All of one check's DNS work within this time. */
    time_budget: duration('10s', { min: 100, max: 600_000 }).prefault('10s'),
  })
  .superRefine((registry, ctx) => {
    if (registry.enabled && registry.zone === undefined) {
      ctx.addIssue({ code: 'custom', path: ['zone'], message: 'required when registry.enabled' });
    }
    const names = registry.methods.map((m) => m.name);
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: 'custom', path: ['methods'], message: 'a method is listed twice' });
    }
  });

/** Local sender reputation (docs/reputation.md). */
export const reputationSchema = z.strictObject({
  /** Count events (SPF results, call-backs, greylisting) per sender domain and network. */
  enabled: z.boolean().default(true),
  /**
   * A count halves in this time. At least an hour (shorter is a rate, not a reputation); at
   * most ten years.
   */
  half_life: duration('30d', { min: 3_600_000, max: 3650 * 86_400_000 }).prefault('30d'),
  /** Good standing needs a score (−1 to 1) of at least this. */
  min_score: z.number().min(-1).max(1).default(0.5),
  /** Good standing needs a confidence of at least this; below 1, which no confidence reaches. */
  min_confidence: z.number().min(0).lt(1).default(0.5),
  /** With this many recent observations the confidence is one half (n0). */
  observations_for_confidence: z.number().positive().max(1_000_000).default(10),
  /** Events gather in memory this long before they are written to the store in one go. */
  flush_interval: duration('1s', { min: 10, max: 60_000 }).prefault('1s'),
  /**
   * Greylisting lets through a client whose network is in good standing, or a sender whose SPF
   * passes for a domain in good standing.
   */
  greylist_skip: z.boolean().default(false),
  /** No call-back for a client whose network is in good standing (both doors). */
  cbv_skip: z.boolean().default(false),
});

/** A DKIM selector: one or more DNS labels. */
const selector = z
  .string()
  .max(253)
  .regex(
    /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/u,
    'a selector (DNS labels: letters, digits, hyphens, underscores, dots)',
  )
  .transform((text) => text.toLowerCase());

/** A header field name (RFC 5322 ftext), compared without case. */
const fieldName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[\x21-\x39\x3b-\x7e]+$/u, 'a header field name (printable ASCII, no colon)')
  .transform((text) => text.toLowerCase());

/** A signing key: the domain and selector it signs as, and its private key in a PEM file. */
const signingKeySchema = z.strictObject({
  domain,
  selector,
  /** PEM file with the private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8). */
  key_file: z.string().min(1),
});

export const dkimSchema = z
  .strictObject({
    /** Verify DKIM signatures of incoming mail (milter, end of message). */
    verify: z.boolean().default(true),
    /** Sign mail from internal (milter.internal_connect) or authenticated clients. */
    sign: z.boolean().default(false),
    /** Keys to sign with; the one whose domain is the From domain (or its parent) signs. */
    keys: z.array(signingKeySchema).default([]),
    /** Header fields to sign when present; default: the usual list (docs/authentication.md). */
    headers: z.array(fieldName).max(100).optional(),
    /** Fields signed once more than they occur, so that none can be added: From by default. */
    oversign: z.array(fieldName).max(100).default(['from']),
    /** RSA keys shorter than this give `policy` (RFC 8301: never below 1024). */
    min_rsa_bits: z.number().int().min(1024).max(16384).default(1024),
    /** Accept rsa-sha1 signatures (RFC 8301 says not to). */
    accept_rsa_sha1: z.boolean().default(false),
    /** Signatures verified per message; the rest are reported `policy`, not verified. */
    max_signatures: z.number().int().min(1).max(50).default(10),
    /** All DNS work of one message's DKIM verification. */
    time_budget: duration('10s', { min: 100, max: 300_000 }).prefault('10s'),
  })
  .superRefine((dkim, ctx) => {
    if (dkim.sign && dkim.keys.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['keys'], message: 'required when dkim.sign' });
    }
    const seen = new Set<string>();
    dkim.keys.forEach((key, index) => {
      const id = `${key.selector}._domainkey.${key.domain}`;
      if (seen.has(key.domain)) {
        ctx.addIssue({
          code: 'custom',
          path: ['keys', index, 'domain'],
          message: `a second key for ${key.domain}: one key signs per domain (${id})`,
        });
      }
      seen.add(key.domain);
    });
  });

export const dmarcSchema = z.strictObject({
  /** Evaluate DMARC at end of message (milter). */
  enabled: z.boolean().default(true),
  /** Refuse (550 5.7.1) a message that fails DMARC under p=reject. */
  reject: z.boolean().default(true),
  /** A failure under p=quarantine: mark it (`header`) or hold it (`quarantine`). */
  quarantine: z.enum(['header', 'quarantine']).default('header'),
  /** Sealers whose ARC pass overrides a DMARC failure of forwarded mail (their d= domains). */
  trusted_arc_sealers: z.array(domain).default([]),
  /** Policy discovery: RFC 9989's DNS tree walk, or RFC 7489's public suffix list. */
  discovery: z.enum(['tree-walk', 'psl']).default('tree-walk'),
  /** With discovery = "psl": apply pct= sampling as RFC 7489 says. */
  honor_pct: z.boolean().default(true),
  /** Keep each evaluation in the store for aggregate reports (RFC 9990). */
  record: z.boolean().default(true),
  /** How long evaluations are kept (reports cover a day; a week lets one be built late). */
  keep: duration('7d', { min: 86_400_000, max: 3650 * 86_400_000 }).prefault('7d'),
  /** All DNS work of one message's DMARC evaluation. */
  time_budget: duration('5s', { min: 100, max: 300_000 }).prefault('5s'),
});

export const arcSchema = z
  .strictObject({
    /** Validate the ARC chain of incoming mail (milter, end of message). */
    verify: z.boolean().default(true),
    /** Seal incoming mail with a new ARC set (for a forwarder or list host). */
    seal: z.boolean().default(false),
    /** The key to seal with. */
    seal_key: signingKeySchema.optional(),
    /** All DNS work of one message's ARC validation. */
    time_budget: duration('10s', { min: 100, max: 300_000 }).prefault('10s'),
  })
  .superRefine((arc, ctx) => {
    if (arc.seal && !arc.seal_key) {
      ctx.addIssue({ code: 'custom', path: ['seal_key'], message: 'required when arc.seal' });
    }
  });

/** Whether a listen spec stays on this host: loopback addresses and unix sockets. */
function staysOnHost(text: string): boolean {
  try {
    const spec = parseListenSpec(text);
    if (spec.kind === 'unix') return true;
    const host = spec.host.toLowerCase();
    return host === 'localhost' || host === '::1' || /^127\./u.test(host);
  } catch {
    return true; // listenSpec reports it
  }
}

export const httpSchema = z
  .strictObject({
    /** Where /metrics, /healthz and the status page listen; nothing when empty (the default). */
    listen: z.array(listenSpec).max(8).default([]),
    /**
     * Asked for by every page but /healthz, as `Authorization: Bearer TOKEN` or `?token=TOKEN`;
     * required to listen beyond loopback.
     */
    token: z
      .string()
      .min(16, 'at least 16 characters')
      .max(200)
      .regex(/^[\x21-\x7e]+$/u, 'printable ASCII without blanks')
      .optional(),
    /** Collect metrics (counted at every decision) and serve them at /metrics. */
    metrics: z.boolean().default(true),
    /** Hours of decisions the status page charts. */
    chart_hours: z.number().int().min(1).max(48).default(3),
  })
  .superRefine((http, ctx) => {
    if (http.token) return;
    for (const [n, text] of http.listen.entries()) {
      if (!staysOnHost(text)) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen', n],
          message:
            'listens beyond loopback, which needs http.token (the status page shows mail addresses)',
        });
      }
    }
  });

/** The whole file. Every table may be left out; every key has a default. */
export const configSchema = z.strictObject({
  /** This host's name, in X-Greylist and the decision log; default the system's host name. */
  hostname: hostname.optional(),
  log: logSchema.prefault({}),
  dns: dnsSchema.prefault({}),
  store: storeSchema.prefault({}),
  policyd: policydSchema.prefault({}),
  milter: milterSchema.prefault({}),
  spf: spfSchema.prefault({}),
  cbv: cbvSchema.prefault({}),
  greylist: greylistSchema.prefault({}),
  reputation: reputationSchema.prefault({}),
  registry: registrySchema.prefault({}),
  dkim: dkimSchema.prefault({}),
  dmarc: dmarcSchema.prefault({}),
  arc: arcSchema.prefault({}),
  http: httpSchema.prefault({}),
});

/** A validated configuration: durations in milliseconds, defaults filled in. */
export type Config = z.output<typeof configSchema>;

/** Warnings about how the file was written (old names), kept with the parsed configuration. */
const LEGACY_WARNINGS = new WeakMap<Config, ConfigWarning[]>();

/** Remembers warnings about how a configuration was written, for `configWarnings`. */
export function noteLegacyWarnings(config: Config, warnings: ConfigWarning[]): void {
  LEGACY_WARNINGS.set(config, warnings);
}

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
 * configWarnings(parseConfigText('[policyd]\nrequest_timeout = "5s"\n', 'x'))
 * // [{ key: 'greylist.dns_budget', problem: 'not shorter than policyd.request_timeout (5s): ...' }]
 */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [...(LEGACY_WARNINGS.get(config) ?? [])];
  if (
    config.milter.enabled &&
    config.cbv.enabled &&
    config.cbv.timeout >= config.milter.callback_timeout
  ) {
    warnings.push({
      key: 'cbv.timeout',
      problem:
        `not shorter than milter.callback_timeout (${formatDuration(config.milter.callback_timeout)}): ` +
        'a slow call-back times the milter callback out (tempfail) instead of being judged',
    });
  }
  const storeAndDns = config.greylist.dns_budget + config.store.timeout;
  if (
    config.greylist.enabled &&
    config.greylist.dns_budget < config.policyd.request_timeout &&
    storeAndDns >= config.policyd.request_timeout
  ) {
    warnings.push({
      key: 'store.timeout',
      problem:
        `with greylist.dns_budget, not shorter than policyd.request_timeout (${formatDuration(config.policyd.request_timeout)}): ` +
        'a store that hangs after slow lookups times the request out (error_action) instead of following store.fail',
    });
  }
  if (config.greylist.enabled && config.greylist.dns_budget >= config.policyd.request_timeout) {
    warnings.push({
      key: 'greylist.dns_budget',
      problem:
        `not shorter than policyd.request_timeout (${formatDuration(config.policyd.request_timeout)}): ` +
        'a slow lookup times the whole request out (error_action) instead of counting as a failed lookup',
    });
  }
  if (config.registry.enabled && Object.keys(config.registry.services).length === 0) {
    warnings.push({
      key: 'registry.services',
      problem:
        'no rating service is trusted: every ID with a record is FILTER ("no trusted ratings")' +
        (config.registry.filter === 'quarantine' ? ', and filter = "quarantine" holds it' : ''),
    });
  }
  return warnings;
}
