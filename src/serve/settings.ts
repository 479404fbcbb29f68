/**
 * From the configuration file's vocabulary to the settings of the parts it drives.
 */
import { hostname as systemHostname } from 'node:os';
import { DEFAULT_DKIM_LIMITS } from '../checks/dkim/types.js';
import type { RegistrySettings } from '../checks/registry/types.js';
import type { Config } from '../config/index.js';
import type { ResolverOptions } from '../dns/index.js';
import { DEFAULT_GREYLIST_SETTINGS } from '../greylist/index.js';
import type { GreylistSettings } from '../greylist/types.js';
import {
  classifyNetworks,
  type MessageAuthSettings,
  type PolicySettings,
  type RegistryPolicySettings,
  type SpfAccessLookup,
  splitOurNames,
} from '../policy/index.js';
import {
  DEFAULT_REPUTATION_SETTINGS,
  type ReputationSettings,
  reputationTtlMs,
} from '../reputation/index.js';
import type { OpenStoreOptions } from '../store/index.js';
import type { SigningKeys } from './keys.js';

/**
 * The greylister's settings for a configuration.
 *
 * @example
 * greylistSettings(parseConfig({}), '0.2.0').periodMs  // 1740000
 */
export function greylistSettings(config: Config, version: string): GreylistSettings {
  const g = config.greylist;
  return {
    periodMs: g.period,
    penaltyMs: g.penalty,
    maxMs: g.max,
    lists: [...g.dnswl, ...g.dnsbl],
    dnsblThreshold: g.dnsbl_threshold,
    dnswlThreshold: g.dnswl_threshold,
    rfcThreshold: g.rfc_threshold,
    spf: g.spf,
    keyByNetwork: g.key_by_network,
    keySpfPassByDomain: g.key_spf_pass_by_domain,
    autoWhitelistAfter: g.auto_whitelist_clients,
    dnsBudgetMs: g.dns_budget,
    cacheMs: g.cache_valid,
    cacheEntries: DEFAULT_GREYLIST_SETTINGS.cacheEntries,
    passedTtlMs: g.expire_passed,
    greylistedTtlMs: g.expire_greylisted,
    decisionTtlMs: g.expire_decisions,
    callbackTtlMs: config.cbv.cache_days * 86_400_000,
    ...(config.reputation.enabled
      ? { reputationTtlMs: reputationTtlMs(config.reputation.half_life) }
      : {}),
    ...(keepsDmarcResults(config) ? { dmarcTtlMs: config.dmarc.keep } : {}),
    hostname: daemonHostname(config),
    version,
    header: g.header,
    decisionLog: g.decision_log,
    storeFailure: config.store.fail,
  };
}

/**
 * The host name this instance calls itself: the configured one, else the system's.
 *
 * @example
 * daemonHostname(parseConfig({ hostname: 'mx1.example.net' }))  // 'mx1.example.net'
 */
export function daemonHostname(config: Config): string {
  return config.hostname ?? systemHostname();
}

/**
 * The resolver's options for a configuration.
 *
 * @example
 * resolverOptions(parseConfig({ dns: { servers: ['127.0.0.1:5353'] } })).servers  // ['127.0.0.1:5353']
 */
export function resolverOptions(config: Config): ResolverOptions {
  const options: ResolverOptions = {
    timeout: config.dns.timeout,
    attempts: config.dns.attempts,
    cache: config.dns.cache_entries === 0 ? false : { maxEntries: config.dns.cache_entries },
  };
  if (config.dns.servers) options.servers = [...config.dns.servers];
  return options;
}

/** How the daemon opens its store; a reload reopens it when any of this changes. */
export interface StoreSettings {
  url: string;
  options: Pick<
    OpenStoreOptions,
    'busyTimeoutMs' | 'queryTimeoutMs' | 'connectTimeoutMs' | 'poolSize'
  >;
}

/**
 * The store's URL and the open options its backend uses, from `[store]`: one timeout for
 * PostgreSQL queries and for SQLite's lock waits; connection settings for PostgreSQL only (so
 * that changing them does not reopen an SQLite store).
 *
 * @example
 * const { url, options } = storeSettings(config);
 * const store = await openStore(url, { ...options, logger });
 */
export function storeSettings(config: Config): StoreSettings {
  const s = config.store;
  if (s.url.startsWith('sqlite:')) return { url: s.url, options: { busyTimeoutMs: s.timeout } };
  return {
    url: s.url,
    options: {
      queryTimeoutMs: s.timeout,
      connectTimeoutMs: s.connect_timeout,
      poolSize: s.pool_size,
    },
  };
}

/**
 * The policy engine's settings for a configuration; the access map is read by the caller (it is
 * a file, and a reload must be able to keep the old one).
 *
 * @example
 * const settings = policySettings(config, accessMap);
 * new PolicyEngine(settings, services);
 */
export function policySettings(
  config: Config,
  accessMap?: SpfAccessLookup,
  keys: SigningKeys = { dkim: [], arcSeal: null },
): PolicySettings {
  const m = config.milter;
  const host = daemonHostname(config);
  const { ourNames, ourAddresses } = splitOurNames(m.hello_blacklist ?? [host]);
  const spf = config.spf;
  const cbv = config.cbv;
  return {
    hostname: host,
    authservId: m.authserv_id ?? host,
    networks: classifyNetworks({
      internalNetworks: m.internal_connect,
      trustedRelays: m.trusted_relay,
    }),
    internalDomains: m.internal_domains,
    ourNames,
    ourAddresses,
    bannedUsers: new Set(m.banned_users.map((u) => u.toLowerCase())),
    rejectNumericHelo: m.reject_numeric_helo,
    rejectPtrLocalhost: m.reject_ptr_localhost,
    csa: m.csa,
    greylist: m.greylist && config.greylist.enabled,
    spf: {
      rejectNoPtr: spf.reject_noptr,
      bestGuess: spf.best_guess,
      acceptSoftfail: spf.accept_softfail,
      acceptFail: spf.accept_fail,
      rejectNeutral: spf.reject_neutral,
      ...(spf.fallback_zone !== undefined ? { fallbackZone: spf.fallback_zone } : {}),
      trustedForwarders: spf.trusted_forwarder,
      supplySender: spf.supply_sender,
      lax: spf.lax,
      ...(accessMap ? { accessMap } : {}),
    },
    callback: {
      enabled: cbv.enabled,
      cacheMs: cbv.cache_days * 86_400_000,
      rate: cbv.per_domain_rate,
      heloName: cbv.helo_name ?? host,
      postmaster: cbv.postmaster ?? `postmaster@${host}`,
      timeoutMs: cbv.timeout,
      port: cbv.port,
    },
    registry: config.registry.enabled ? registryPolicySettings(config) : null,
    checkBudgetMs: config.greylist.dns_budget,
    auth: messageAuthSettings(config, keys),
  };
}

/** Header bytes kept per message for DKIM, DMARC and ARC: the DKIM check's own bound. */
const MAX_HEADER_BYTES = DEFAULT_DKIM_LIMITS.maxHeaderBytes;

/**
 * `[dkim]`'s verification settings, whether or not the daemon verifies (`mailgate dmarc` does).
 *
 * @example
 * dkimVerifySettings(parseConfig({})).minRsaBits  // 1024
 */
export function dkimVerifySettings(config: Config) {
  const { dkim } = config;
  return {
    acceptRsaSha1: dkim.accept_rsa_sha1,
    minRsaBits: dkim.min_rsa_bits,
    limits: { signatures: dkim.max_signatures, timeBudgetMs: dkim.time_budget },
  };
}

/**
 * `[dmarc]`'s settings of the check itself, whether or not the daemon evaluates DMARC.
 *
 * @example
 * dmarcCheckSettings(parseConfig({})).discovery  // 'tree-walk'
 */
export function dmarcCheckSettings(config: Config) {
  const { dmarc } = config;
  return {
    discovery: dmarc.discovery,
    honorPct: dmarc.honor_pct,
    timeBudgetMs: dmarc.time_budget,
  };
}

/**
 * The message checks' settings (`[dkim]`, `[dmarc]`, `[arc]`), with the keys already read.
 *
 * @example
 * messageAuthSettings(parseConfig({}), { dkim: [], arcSeal: null }).dkimVerify?.minRsaBits  // 1024
 */
export function messageAuthSettings(config: Config, keys: SigningKeys): MessageAuthSettings {
  const { dkim, dmarc, arc } = config;
  return {
    dkimVerify: dkim.verify ? dkimVerifySettings(config) : null,
    dkimSign:
      dkim.sign && keys.dkim.length > 0
        ? {
            keys: keys.dkim,
            options: {
              ...(dkim.headers ? { headers: dkim.headers } : {}),
              oversign: dkim.oversign,
            },
          }
        : null,
    dmarc: dmarc.enabled
      ? {
          check: dmarcCheckSettings(config),
          reject: dmarc.reject,
          quarantine: dmarc.quarantine,
          trustedArcSealers: dmarc.trusted_arc_sealers,
          record: dmarc.record,
        }
      : null,
    arcVerify: arc.verify
      ? {
          acceptRsaSha1: dkim.accept_rsa_sha1,
          minRsaBits: dkim.min_rsa_bits,
          timeBudgetMs: arc.time_budget,
        }
      : null,
    arcSeal: arc.seal ? keys.arcSeal : null,
    maxHeaderBytes: MAX_HEADER_BYTES,
  };
}

/**
 * The registry check's settings for a configuration, whether or not `[registry] enabled` is on
 * (`mailgate checkid` runs it either way).
 *
 * @example
 * registrySettings(parseConfig({ registry: { zone: 'registry.example' } })).enoughWeight  // 15
 */
export function registrySettings(config: Config): RegistrySettings {
  const r = config.registry;
  const services: Record<string, RegistrySettings['services'][string]> = {};
  for (const [code, service] of Object.entries(r.services)) {
    services[code] = { grades: { ...service.grades }, weight: service.weight };
  }
  return {
    zone: r.zone ?? '',
    methods: r.methods.map((m) => ({ name: m.name, maxQueries: m.max_queries })),
    services,
    enoughWeight: r.enough_weight,
    rejectAverage: r.reject_average,
    rejectMinimum: r.reject_minimum,
    highMinimum: r.high_minimum,
    highMaximum: r.high_maximum,
    ...(r.help !== undefined ? { help: r.help } : {}),
    receiver: daemonHostname(config),
  };
}

function registryPolicySettings(config: Config): RegistryPolicySettings {
  return {
    check: registrySettings(config),
    filter: config.registry.filter,
    timeBudgetMs: config.registry.time_budget,
  };
}

/**
 * The reputation settings of a configuration's `[reputation]` table.
 *
 * @example
 * reputationSettings(parseConfig({})).halfLifeMs  // 30 days in ms
 */
export function reputationSettings(config: Config): ReputationSettings {
  const r = config.reputation;
  return {
    halfLifeMs: r.half_life,
    minScore: r.min_score,
    minConfidence: r.min_confidence,
    observationsForConfidence: r.observations_for_confidence,
    prior: DEFAULT_REPUTATION_SETTINGS.prior,
  };
}

/** Whether DMARC evaluations are kept in the store (for aggregate reports). */
export function keepsDmarcResults(config: Config): boolean {
  return config.dmarc.enabled && config.dmarc.record;
}
