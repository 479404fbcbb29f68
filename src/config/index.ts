/**
 * src/config — the configuration file: its schema (every key, default and check), TOML loading,
 * and duration syntax. Read by the daemon and the CLI; it knows nothing of what the settings
 * drive.
 *
 * May import src/dns, src/listen and the checks' list validation (to reject a bad value where it
 * is written); never serve, policy or a protocol library.
 */
export { formatDuration, parseDuration } from './duration.js';
export { ConfigError, loadConfig, parseConfig, parseConfigText } from './load.js';
export {
  type Config,
  type ConfigWarning,
  configSchema,
  configWarnings,
  LOG_LEVELS,
} from './schema.js';
