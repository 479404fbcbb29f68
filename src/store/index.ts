/**
 * The state store: what mailgate keeps between requests (greylist triplets, auto-whitelisted
 * clients, the decision log, call-back verification results, rate-limit windows, reputation
 * counters), in SQLite by
 * default or in PostgreSQL when several MX hosts share it. This folder imports nothing of ours: the store sits at the bottom of the import graph, and
 * greylisting, the daemon and the CLI build on it.
 */
import type { OpenStoreOptions } from './common.js';
import { openPostgres } from './postgres.js';
import { openSqlite } from './sqlite.js';
import type { Store } from './types.js';
import { parseStoreUrl } from './url.js';

export type { OpenStoreOptions, StoreLogger } from './common.js';
export { MIGRATIONS, type Migration, SCHEMA_VERSION } from './migrations.js';
export * from './types.js';
export { describeStoreUrl } from './url.js';

/**
 * Opens the store a URL names and brings its schema up to date:
 *
 * - `sqlite:PATH` (relative to the current directory), `sqlite:///ABSOLUTE/PATH`, or
 *   `sqlite::memory:` (gone at close, for one process only); the file and its directory are
 *   created when missing;
 * - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`), with pg's query
 *   parameters such as `sslmode=require`.
 *
 * Rejects with a StoreError that names the URL scheme when the scheme is unknown, the database
 * cannot be opened, or it is at a newer schema version than this code; no message contains the
 * password.
 *
 * @example
 * const store = await openStore('sqlite:./var/mailgate.db');
 * const shared = await openStore('postgres://mailgate@db1.example.net/mailgate', { poolSize: 20 });
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStoreUrl(url);
  if (target.kind === 'sqlite') {
    return openSqlite(target, options);
  }
  return openPostgres(target, options);
}
