/**
 * The daemon's logger: pino, one JSON object per line on standard output (or a given stream),
 * with the host name and process id left out (the service manager adds its own) and a `msg`
 * that is a stable tag (`greylist`, `policy-error`, `store-failure`, ...).
 */
import type { Writable } from 'node:stream';
import { type Logger as PinoLogger, pino } from 'pino';

/** The logging calls every mailgate module uses; pino's shape, so pino plugs in as it is. */
export interface Logger {
  trace?(fields: Record<string, unknown>, message: string): void;
  debug?(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface LoggerOptions {
  /** Lowest level written: trace, debug, info, warn, error, fatal, silent. Default info. */
  level?: string;
  /** Where the lines go. Default standard output. */
  destination?: Writable;
}

/**
 * A pino logger for the daemon. Errors in fields named `err` are written with their stack.
 *
 * @example
 * const log = createLogger({ level: 'debug' });
 * log.info({ verdict: 'greylist', client: '192.0.2.1' }, 'greylist');
 */
export function createLogger(options: LoggerOptions = {}): PinoLogger {
  const settings = {
    level: options.level ?? 'info',
    base: { name: 'mailgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/**
 * Changes a logger's level in place, for a configuration reload.
 *
 * @example
 * setLogLevel(log, 'warn');
 */
export function setLogLevel(logger: PinoLogger, level: string): void {
  logger.level = level;
}
