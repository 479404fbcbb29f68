/**
 * The engine's settings: plain data, made from the configuration by the daemon (src/serve) or by
 * `mailgate check`, never read from a file here.
 */
import type { ArcSealKey, ArcSettings } from '../checks/arc/types.js';
import type { DkimSigningKey, DkimSigningOptions } from '../checks/dkim/sign.js';
import type { DkimVerifySettings } from '../checks/dkim/types.js';
import type { DmarcSettings } from '../checks/dmarc/types.js';
import type { RegistrySettings } from '../checks/registry/types.js';
import type { SpfResultWord } from '../checks/spf/types.js';
import { parseIp } from '../dns/address.js';
import type { ClassifyNetworks } from './classify.js';

/** What the SPF policy does with a result (the access map's values). */
export type SpfPolicyWord = 'OK' | 'CBV' | 'DSN' | 'REJECT';

/** An access-map entry's action. */
export interface SpfAccessEntry {
  action: { kind: SpfPolicyWord } | { kind: 'ERROR'; code: number; xcode: string; text: string };
}

/** An access-map lookup: the entry for a result and the sender's domain, most specific first. */
export interface SpfAccessLookup {
  lookup(
    result: SpfResultWord,
    domain: string,
  ): SpfAccessEntry | undefined | Promise<SpfAccessEntry | undefined>;
}

export interface SpfPolicySettings {
  rejectNoPtr: boolean;
  bestGuess: boolean;
  acceptSoftfail: readonly string[];
  acceptFail: readonly string[];
  rejectNeutral: readonly string[];
  fallbackZone?: string;
  trustedForwarders: readonly string[];
  supplySender: boolean;
  lax: boolean;
  /** The access map, when one is configured. */
  accessMap?: SpfAccessLookup;
}

export interface CallbackSettings {
  enabled: boolean;
  /** How long an outcome is reused. */
  cacheMs: number;
  /** Call-backs and DSNs per sender domain per window. */
  rate: { limit: number; windowMs: number };
  heloName: string;
  /** Where DSNs come from. */
  postmaster: string;
  timeoutMs: number;
  port: number;
}

/** The sender-registry ID check at MAIL FROM, when it is on. */
export interface RegistryPolicySettings {
  check: RegistrySettings;
  /** What FILTER does: a header for the spam filter, or quarantine (Postfix's hold queue). */
  filter: 'header' | 'quarantine';
  /** All of one check's DNS work within this time. */
  timeBudgetMs: number;
}

/** DMARC at end of message. */
export interface DmarcPolicySettings {
  check: Partial<DmarcSettings>;
  /** Refuse a failure under p=reject (otherwise it is only recorded). */
  reject: boolean;
  /** A failure under p=quarantine: a header for the spam filter, or hold the message. */
  quarantine: 'header' | 'quarantine';
  /** ARC sealers (d= domains) whose passing chain overrides a DMARC failure. */
  trustedArcSealers: readonly string[];
  /** Keep each evaluation for aggregate reports. */
  record: boolean;
}

/**
 * The checks that read the message itself (milter only): DKIM and ARC verification of incoming
 * mail, DMARC over them, DKIM signing of our own mail, ARC sealing of mail we pass on. A part
 * that is off is null.
 */
export interface MessageAuthSettings {
  dkimVerify: Partial<DkimVerifySettings> | null;
  dkimSign: {
    /** The keys; the one for the From domain (or the nearest parent domain) signs. */
    keys: readonly DkimSigningKey[];
    options: Pick<DkimSigningOptions, 'headers' | 'oversign'>;
  } | null;
  dmarc: DmarcPolicySettings | null;
  arcVerify: Partial<ArcSettings> | null;
  arcSeal: ArcSealKey | null;
  /** Header bytes kept per message for these checks; a larger header is not verified. */
  maxHeaderBytes: number;
}

export interface PolicySettings {
  /** Our host name (receiver in headers, the decision log's host). */
  hostname: string;
  authservId: string;
  networks: ClassifyNetworks;
  internalDomains: readonly string[];
  ourNames: string[];
  ourAddresses: string[];
  /** Lower-case local parts refused as non-null senders. */
  bannedUsers: ReadonlySet<string>;
  rejectNumericHelo: boolean;
  rejectPtrLocalhost: boolean;
  csa: 'off' | 'record' | 'reject';
  /** Greylist at RCPT (milter). */
  greylist: boolean;
  spf: SpfPolicySettings;
  callback: CallbackSettings;
  /** The registry ID check; null when it is off. */
  registry: RegistryPolicySettings | null;
  /** DNS time for each check. */
  checkBudgetMs: number;
  /** DKIM, DMARC and ARC; absent when the door sees no message (or all are off). */
  auth?: MessageAuthSettings;
}

/**
 * Whether a domain is one of `domains` or under one of them (`mx.aol.com` is under `aol.com`).
 *
 * @example
 * inDomains('mail.example.com', ['example.com'])  // true
 */
export function inDomains(domain: string, domains: readonly string[]): boolean {
  const d = domain.toLowerCase().replace(/\.$/u, '');
  return domains.some((entry) => {
    const e = entry.replace(/^\./u, '');
    return d === e || d.endsWith(`.${e}`);
  });
}

/**
 * Our names and addresses as a site lists them (`hello_blacklist`, `--our-name`): host names
 * apart from addresses, bracketed literals unwrapped.
 *
 * @example
 * splitOurNames(['mx.example.org', '[192.0.2.25]'])
 * // { ourNames: ['mx.example.org'], ourAddresses: ['192.0.2.25'] }
 */
export function splitOurNames(values: readonly string[]): {
  ourNames: string[];
  ourAddresses: string[];
} {
  const ourNames: string[] = [];
  const ourAddresses: string[] = [];
  for (const value of values) {
    const bare = value.replace(/^\[(?:IPv6:)?(.*)\]$/iu, '$1');
    if (parseIp(bare)) ourAddresses.push(bare);
    else ourNames.push(value);
  }
  return { ourNames, ourAddresses };
}
