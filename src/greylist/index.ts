/**
 * src/greylist — bley-style scored greylisting with postgrey's whitelists and auto-whitelisting:
 * keys (normalised triplets), whitelist files, the short-term verdict cache, the scoring of new
 * triplets, the decision (a verdict and its header), and store expiry. Usable from the policy server
 * and the milter alike: it speaks in requests and decisions, never in a protocol.
 *
 * May import src/checks, src/dns, src/text, src/reputation's subjects, the package version and
 * src/store's types; never policy, serve, or a protocol library. The store itself is passed in.
 */
export { type CachedVerdict, SpfMemo, VerdictCache } from './cache.js';
export {
  DEFAULT_EXPIRY_FIRST_DELAY_MS,
  DEFAULT_EXPIRY_INTERVAL_MS,
  type ExpiryOptions,
  expireOnce,
  expiryCutoffs,
  startExpiry,
} from './expiry.js';
export {
  type ClientWhitelistSource,
  Greylister,
  type GreylisterOptions,
  type GreylistReputation,
  type RecipientWhitelistSource,
} from './greylister.js';
export { greylistHeader, rfc5322Date, safeHostname, safeVersion } from './header.js';
export {
  canonicalIp,
  clientKey,
  domainPart,
  localPart,
  MAX_ADDRESS_LENGTH,
  normaliseAddress,
  parseClientIp,
} from './normalise.js';
export {
  exactly,
  judge,
  outcomeIn,
  rfcSum,
  type ScoreFacts,
  type ScoreOutcome,
  type ScoreRange,
  type ScoreThresholds,
  spfCouldMatter,
} from './score.js';
export { checkSettings, DEFAULT_GREYLIST_SETTINGS } from './settings.js';
export * from './types.js';
export {
  ClientWhitelist,
  formatProblem,
  RecipientWhitelist,
  type WhitelistProblem,
} from './whitelist.js';
export { WhitelistFile, type WhitelistFileOptions } from './whitelist-file.js';
