/**
 * Argument problems found after parsing (an invalid IP, a bad server spec): the CLI prints them
 * on one line and exits 2.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}
