/**
 * src/serve — the daemon, the composition root: it reads the configuration, builds the world
 * (resolver, store, greylister, whitelists, expiry) and binds the policy server to it; a reload
 * rebuilds what changed without dropping connections.
 *
 * May import everything below it: config, dns, store, greylist, checks, policyd, listen,
 * observe, text. Only the CLI imports it.
 */
export { Daemon, type DaemonOptions } from './daemon.js';
export {
  type GreylistDecider,
  type PolicyHandlerSettings,
  policyHandler,
} from './policy-handler.js';
export { daemonHostname, greylistSettings, policySettings, resolverOptions } from './settings.js';
