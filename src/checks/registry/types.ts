/**
 * The registry ID check's public vocabulary: inputs, settings, and the result it returns.
 */
import type { Clock, Resolver } from '../../dns/types.js';

/**
 * What the receiver should do (the actions of the milter API that checkHelo.py named):
 * - `ACCEPT`: the sender is authenticated and well rated; no further sender checks;
 * - `REJECT`: refuse (550);
 * - `FILTER`: accept, but the message goes to spam filtering (delivery uncertain);
 * - `CONTINUE`: no final answer: go on with the other checks;
 * - `TEMPFAIL`: refuse for now (451), e.g. a registry timeout;
 * - `DISCARD`: accept and drop without a word. No rule of this check yields it (tarpitting known
 *   spammers was left out of checkHelo.py as controversial); it is in the vocabulary so that
 *   callers map every action.
 */
export type RegistryAction = 'ACCEPT' | 'REJECT' | 'FILTER' | 'CONTINUE' | 'TEMPFAIL' | 'DISCARD';

/** The authentication methods this check can run. */
export type RegistryMethodName = 'QR1' | 'CSV' | 'SPF';

/** HIGH when the ratings are all good (minimum and maximum above the thresholds), else LOW. */
export type RegistryRating = 'HIGH' | 'LOW';

/** A method the receiver runs, and the most DNS queries it allows a sender to declare for it. */
export interface RegistryMethodSetting {
  name: RegistryMethodName;
  maxQueries: number;
}

/** A rating service the receiver trusts: the score of each grade, and the service's weight. */
export interface RegistryService {
  grades: Readonly<Record<string, number>>;
  weight: number;
}

/** The receiver's choices. */
export interface RegistrySettings {
  /** The registry's DNS zone: a record for ID is the TXT at `<ID>.<zone>`. */
  zone: string;
  /** Methods in the receiver's order of preference. */
  methods: readonly RegistryMethodSetting[];
  /** Trusted services by code (`S1`, `M2`, ...); ratings from any other are ignored. */
  services: Readonly<Record<string, RegistryService>>;
  /** Ratings are read until their weights add up to this. */
  enoughWeight: number;
  /** A weighted average below this is refused. */
  rejectAverage: number;
  /** Any one score below this is refused. */
  rejectMinimum: number;
  /** The rating is HIGH when the lowest score is above this... */
  highMinimum: number;
  /** ...and the highest score above this. */
  highMaximum: number;
  /** Where refused senders can read why (a URL or a sentence), added to such replies. */
  help?: string;
  /** Our host name: the receiver in Received-SPF. */
  receiver?: string;
}

export const DEFAULT_REGISTRY_METHODS: readonly RegistryMethodSetting[] = Object.freeze([
  { name: 'QR1', maxQueries: 0 },
  { name: 'CSV', maxQueries: 4 },
  { name: 'SPF', maxQueries: 30 },
] as const);

/** Everything but the zone and the services, as checkHelo.py had them. */
export const DEFAULT_REGISTRY_SETTINGS = Object.freeze({
  methods: DEFAULT_REGISTRY_METHODS,
  enoughWeight: 15,
  rejectAverage: 3,
  rejectMinimum: 1,
  highMinimum: 4,
  highMaximum: 8,
});

/** What the SMTP session tells us, whatever is known when the check runs. */
export interface RegistryInput {
  /** The SMTP client's address, IPv4 or IPv6. */
  ip: string;
  /** The HELO/EHLO argument as the client sent it. */
  helo: string;
  /** MAIL FROM without angle brackets, when known; empty for the null sender. */
  sender?: string;
  /**
   * RCPT TO addresses known so far. No method this check supports reads them; they are part of
   * the envelope a registry method may use, so callers pass what they have.
   */
  recipients?: readonly string[];
}

/** Bounds on the work of one check. */
export interface RegistryLimits {
  /** Wall time for the whole check, registry lookup and methods, in milliseconds. */
  timeBudgetMs: number;
}

export const DEFAULT_REGISTRY_LIMITS: Readonly<RegistryLimits> = Object.freeze({
  timeBudgetMs: 10_000,
});

export interface RegistryOptions {
  resolver: Resolver;
  clock?: Clock;
  limits?: Partial<RegistryLimits>;
}

/** A suggested SMTP reply. */
export interface RegistryReply {
  code: number;
  xcode: string;
  text: string;
}

/** A header field to add (`Authent`, `Received-SPF`), one line, safe to write as is. */
export interface RegistryHeader {
  name: string;
  value: string;
}

/** What `checkId` returns. */
export interface RegistryResult {
  action: RegistryAction;
  /**
   * A stable word for logs and policy: `authenticated`, `not-authorized`, `low-rating`,
   * `bad-ratings`, `no-trusted-ratings`, `no-methods`, `stop`, `no-record`, `invalid-id`,
   * `timeout`, `dns-error`, `parse-error`, `filtered` (a method said FILTER), `method-tempfail`.
   */
  reason: string;
  /** The registered ID: the registrable domain of the HELO name; absent when it has none. */
  id?: string;
  /** The method that decided, when one ran. */
  method?: RegistryMethodName;
  /** The method's own result word (`PASS`, `FAIL`, `pass`, `softfail`, ...). */
  methodResult?: string;
  /** HIGH or LOW, once the ratings were read. */
  rating?: RegistryRating;
  /** The trusted ratings read, e.g. `S1:A,M2:B`. */
  ratings?: string;
  /** The weighted average of the trusted scores. */
  average?: number;
  /** The reply to give (250 for ACCEPT, FILTER and CONTINUE). */
  reply: RegistryReply;
  /** Headers to add, in order: `Authent` first, then the method's own (`Received-SPF`). */
  headers: RegistryHeader[];
  /** The Authentication-Results clause for the result (`x-registry=...`), when a method ran. */
  authResults?: string;
  /**
   * Something for the administrator (a registry record that does not parse, a DNS error that is
   * no timeout): callers log it once as `registry-alert`.
   */
  alert?: string;
  /** DNS queries asked of the resolver, cached or not. */
  queries: number;
}
