/**
 * Greylisting as the daemon runs it: the greylister, its whitelist files, and the expiry timer,
 * built from one configuration and stopped together when a reload replaces them.
 */
import type { Config } from '../config/index.js';
import type { Resolver } from '../dns/types.js';
import {
  Greylister,
  type GreylisterOptions,
  type GreylistReputation,
  startExpiry,
  WhitelistFile,
} from '../greylist/index.js';
import type { GreylistLogger } from '../greylist/types.js';
import type { Store } from '../store/types.js';
import { greylistSettings } from './settings.js';

/** A running greylisting setup. */
export interface Greylisting {
  greylister: Greylister;
  /** Stops the expiry timer. */
  stop(): void;
}

export interface GreylistingServices {
  store: Store;
  resolver: Resolver;
  logger: GreylistLogger;
  version: string;
  /** Local sender reputation, when it is kept. */
  reputation?: GreylistReputation | null;
  /** Told each greylist verdict and DNS-list result (the daemon's metrics). */
  checkObserver?: GreylisterOptions['checkObserver'];
}

/**
 * Builds greylisting for a configuration: reads the whitelist files (a file that cannot be read
 * rejects, naming it) and starts expiring old entries.
 *
 * @example
 * const greylisting = await buildGreylisting(config, { store, resolver, logger, version });
 * const decision = await greylisting.greylister.decide(request);
 */
export async function buildGreylisting(
  config: Config,
  services: GreylistingServices,
): Promise<Greylisting> {
  const { store, resolver, logger, version, reputation, checkObserver } = services;
  const settings = greylistSettings(config, version);
  const g = config.greylist;
  const [clients, recipients] = await Promise.all([
    g.whitelist_clients ? WhitelistFile.clients(g.whitelist_clients, { logger }) : null,
    g.whitelist_recipients ? WhitelistFile.recipients(g.whitelist_recipients, { logger }) : null,
  ]);
  const greylister = new Greylister(
    settings,
    { store, resolver },
    {
      logger,
      ...(reputation ? { reputation } : {}),
      ...(checkObserver ? { checkObserver } : {}),
      ...(clients ? { clientWhitelists: [clients] } : {}),
      ...(recipients ? { recipientWhitelists: [recipients] } : {}),
    },
  );
  const stopExpiry = startExpiry(store, settings, { logger });
  return { greylister, stop: stopExpiry };
}
