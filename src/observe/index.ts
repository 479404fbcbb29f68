/**
 * src/observe — how the daemon tells the postmaster what it does: structured log lines (pino)
 * with stable tags. Imports nothing of ours.
 */
export { createLogger, type Logger, type LoggerOptions, setLogLevel } from './logger.js';
