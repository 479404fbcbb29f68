/**
 * src/observe — how the daemon tells the postmaster what it does: structured log lines (pino)
 * with stable tags, written as JSON or as text, and the plain stderr logger libraries fall back
 * on. Imports only src/text.
 */
export {
  createLogger,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  setLogLevel,
} from './logger.js';
export { type LineLogger, stderrLogger } from './stderr.js';
export { formatTextRecord, jsonLineToText, type TextFormatOptions } from './text-format.js';
