/**
 * The world services a CLI command needs, built from the global options.
 */
import type { Command } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config/index.js';
import { createResolver, parseServerSpec } from '../dns/index.js';
import type { Resolver } from '../dns/types.js';
import { UsageError } from './usage.js';

/**
 * A resolver for the servers given with `--dns`, or those of /etc/resolv.conf.
 *
 * @example
 * const resolver = resolverFromOptions(command);
 */
export function resolverFromOptions(command: Command): Resolver {
  const servers = (command.optsWithGlobals() as { dns?: string[] }).dns ?? [];
  for (const spec of servers) {
    try {
      parseServerSpec(spec);
    } catch (err) {
      throw new UsageError(`--dns: ${(err as Error).message}`);
    }
  }
  return createResolver(servers.length ? { servers } : {});
}

/**
 * The configuration file (the defaults without one); a bad file is a usage error naming the key.
 *
 * @example
 * const config = await configFromOption(options.config);
 */
export async function configFromOption(path: string | undefined): Promise<Config> {
  try {
    return await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}
