/**
 * Argument problems found after parsing (an invalid IP, a bad server spec): the CLI prints them
 * on one line and exits 2.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A failure the user can act on (a missing store file, an address in use): main prints its
 * message alone, without a stack, and exits 1.
 *
 * @example
 * throw failure(`no store at ${path}`);
 */
export function failure(message: string): Error {
  const error = new Error(message);
  error.stack = message;
  return error;
}
