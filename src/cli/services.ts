/**
 * The world services a CLI command needs, built from the global options.
 */
import type { Command } from 'commander';
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
