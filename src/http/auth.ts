/**
 * The access token of the HTTP door: where a request may carry it and how it is compared. The
 * status page shows mail addresses, so once a token is set nothing but /healthz answers without it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Query parameter that may carry the token, for browsers that cannot send a header. */
export const TOKEN_PARAMETER = 'token';

// One scheme, one token, nothing after it: what RFC 6750 section 2.1 allows, less its extensions.
const BEARER = /^Bearer +([\x21-\x7e]+) *$/iu;

/**
 * The token of an `Authorization: Bearer TOKEN` header, or undefined when there is none or the
 * header is of another scheme.
 *
 * @example
 * bearerToken('Bearer s3cret-t0ken-0123456')  // 's3cret-t0ken-0123456'
 * bearerToken('Basic dXNlcjpwYXNz')            // undefined
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1];
}

/**
 * Whether `given` is the token, in time that depends on neither how much of it matches nor its
 * length: both sides are hashed first, so the comparison always runs over 32 bytes.
 *
 * @example
 * tokenMatches('s3cret-t0ken-0123456', 's3cret-t0ken-0123456')  // true
 * tokenMatches('s3cret-t0ken-0123456', 's3cret')                // false
 */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** How a request proved it may see the page: by header, by query, or it need not (no token). */
export type Credential = 'header' | 'query' | 'open';

/**
 * How a request is let in under `token`, or undefined when it is not. Either place may carry
 * the token; a wrong one in one place does not spoil a right one in the other.
 *
 * @example
 * admit('s3cret-t0ken-0123456', 'Bearer s3cret-t0ken-0123456', null)  // 'header'
 * admit('s3cret-t0ken-0123456', undefined, 's3cret-t0ken-0123456')    // 'query'
 * admit(undefined, undefined, null)                                    // 'open'
 */
export function admit(
  token: string | undefined,
  authorization: string | undefined,
  queryToken: string | null,
): Credential | undefined {
  if (token === undefined) return 'open';
  if (tokenMatches(token, bearerToken(authorization))) return 'header';
  if (queryToken !== null && tokenMatches(token, queryToken)) return 'query';
  return undefined;
}
