/**
 * The call-back verifier as the daemon builds it: the DSN templates (built in, or the configured
 * directory: a bad file fails the start or the reload), the SMTP client, and who we are — our
 * names and every address of this machine — so that an MX pointing back at us is a fraud and
 * never called.
 */
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/index.js';
import type { Resolver } from '../dns/types.js';
import { createSmtpClient, loadTemplates } from '../notify/index.js';
import { CachedVerifier, type PolicyLogger, type PolicySettings } from '../policy/index.js';
import type { Store } from '../store/types.js';

/**
 * @example
 * const verifier = await buildVerifier(config, policySettings(config), { resolver, store, logger });
 */
export async function buildVerifier(
  config: Config,
  settings: PolicySettings,
  services: { resolver: Resolver; store: Store; logger: PolicyLogger },
): Promise<CachedVerifier> {
  const templates = await loadTemplates(config.cbv.templates);
  const ourNames = [
    ...new Set([...settings.ourNames, settings.hostname, settings.callback.heloName]),
  ];
  return new CachedVerifier(
    {
      ...settings.callback,
      hostname: settings.hostname,
      ourNames,
      ourAddresses: [...new Set([...settings.ourAddresses, ...localAddresses()])],
      storeFailure: config.store.fail,
    },
    { ...services, smtp: createSmtpClient(), templates },
  );
}

/** Every address of this machine's interfaces, loopback included. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined)
    .map((entry) => entry.address.replace(/%.*$/u, ''));
}
