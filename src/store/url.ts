/**
 * Store URLs: which backend a URL names, where an SQLite file is, and how a URL is written in a
 * log line (never with its password).
 */
import { isAbsolute, resolve } from 'node:path';
import { StoreError } from './types.js';

/** What a store URL names. */
export type StoreTarget =
  | { kind: 'sqlite'; path: string; description: string }
  | { kind: 'postgres'; url: string; description: string; secrets: string[] };

/** Query parameters libpq and pg accept that carry secrets. */
const SECRET_PARAMS = ['password', 'sslpassword'];

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/**
 * Whether an `@` comes after the host: a password with an unencoded `/`, `?` or `#` ends the
 * authority early, the URL still parses (the user as the host, the rest as path, query or
 * fragment), and the password, no longer in the password field, would be shown as it is.
 */
function misencodedPassword(parsed: URL): boolean {
  return parsed.pathname.includes('@') || parsed.search.includes('@') || parsed.hash.includes('@');
}

const MISENCODED = 'an @ after the host: percent-encode / ? # @ in the password (%2F %3F %23 %40)';

/**
 * The URL for a log line: the password (and password-like query parameters) removed. A URL that
 * does not parse is not echoed at all, since it may still hold a password.
 *
 * @example
 * describeStoreUrl('postgres://mailgate:secret@db1:5432/mailgate')  // 'postgres://mailgate@db1:5432/mailgate'
 * describeStoreUrl('sqlite:./var/mailgate.db')                      // 'sqlite:./var/mailgate.db'
 */
export function describeStoreUrl(url: string): string {
  const scheme = SCHEME.exec(url)?.[1];
  if (scheme === undefined) return '(store URL without a scheme)';
  if (scheme.toLowerCase() === 'sqlite') return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${scheme}:(unparseable URL)`;
  }
  if (misencodedPassword(parsed)) return `${scheme}:(URL not shown: ${MISENCODED})`;
  parsed.password = '';
  for (const name of SECRET_PARAMS) {
    if (parsed.searchParams.has(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}

/** Every spelling of the URL's secrets a driver might quote: raw, and percent-decoded. */
function secretsOf(parsed: URL): string[] {
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (value.length === 0) return;
    secrets.add(value);
    try {
      secrets.add(decodeURIComponent(value));
    } catch {
      // a malformed escape is only kept raw
    }
  };
  add(parsed.password);
  for (const name of SECRET_PARAMS) {
    for (const value of parsed.searchParams.getAll(name)) add(value);
  }
  return [...secrets];
}

/**
 * Resolves `sqlite:PATH` (relative to the current directory), `sqlite:///abs/path`,
 * `sqlite::memory:` and `postgres://` / `postgresql://` URLs; anything else is a StoreError
 * that names the scheme (and never the rest of the URL).
 *
 * @example
 * parseStoreUrl('sqlite:./var/mailgate.db')  // { kind: 'sqlite', path: '/srv/mailgate/var/mailgate.db', ... }
 */
export function parseStoreUrl(url: string): StoreTarget {
  if (typeof url !== 'string') throw new StoreError('the store URL is not a string');
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new StoreError(
      'the store URL has no scheme; use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE',
    );
  }
  if (scheme === 'sqlite') {
    const rest = url.slice('sqlite:'.length);
    if (rest === ':memory:') return { kind: 'sqlite', path: ':memory:', description: url };
    let path = rest;
    if (rest.startsWith('//')) {
      if (!rest.startsWith('///')) {
        throw new StoreError(
          `store URL ${url}: an SQLite URL has no host; write sqlite:PATH or sqlite:///ABSOLUTE/PATH`,
        );
      }
      path = rest.slice(2);
    }
    if (path.length === 0) throw new StoreError(`store URL ${url}: the SQLite file path is empty`);
    if (path.includes('\0')) throw new StoreError('store URL: the SQLite file path contains NUL');
    return {
      kind: 'sqlite',
      path: isAbsolute(path) ? path : resolve(process.cwd(), path),
      description: url,
    };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new StoreError(`store URL ${describeStoreUrl(url)}: not a valid ${scheme}:// URL`);
    }
    if (misencodedPassword(parsed)) {
      throw new StoreError(`store URL ${scheme}://(not shown): ${MISENCODED}`);
    }
    return {
      kind: 'postgres',
      url,
      description: describeStoreUrl(url),
      secrets: secretsOf(parsed),
    };
  }
  throw new StoreError(
    `unsupported store URL scheme "${scheme}:"; use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE`,
  );
}
