/**
 * The daemon's logger: pino, one JSON object per line on standard output (or a given stream),
 * with the host name and process id left out (the service manager adds its own) and a `msg`
 * that is a stable tag (`greylist`, `policy-error`, `store-failure`, ...). The `text` format
 * writes the same lines for a person to read (see text-format.ts).
 */
import type { Writable } from 'node:stream';
import { type Logger as PinoLogger, pino } from 'pino';
import { jsonLineToText } from './text-format.js';

/** The logging calls every mailgate module uses; pino's shape, so pino plugs in as it is. */
export interface Logger {
  trace?(fields: Record<string, unknown>, message: string): void;
  debug?(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** How lines are written: pino's JSON, or one line of text with the same fields. */
export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  /** Lowest level written: trace, debug, info, warn, error, fatal, silent. Default info. */
  level?: string;
  /** `json` (default) or `text`. */
  format?: LogFormat;
  /** Where the lines go. Default standard output. */
  destination?: Writable;
}

/**
 * A pino logger for the daemon. Errors in fields named `err` are written with their stack, in
 * the text format as in JSON.
 *
 * @example
 * const log = createLogger({ level: 'debug', format: 'text' });
 * log.info({ verdict: 'greylist', client: '192.0.2.1' }, 'greylist');
 * // 2026-12-07 12:15:30.118 info  greylist verdict=greylist client=192.0.2.1
 */
export function createLogger(options: LoggerOptions = {}): PinoLogger {
  const settings = {
    level: options.level ?? 'info',
    base: { name: 'mailgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    // pino's last step before its stream: rewriting the line here, in the same synchronous
    // call, keeps the destination (and so the order of lines and the flush at exit) as it is
    // for JSON. No transport reads these lines, so they need not stay JSON.
    ...(options.format === 'text'
      ? {
          hooks: {
            streamWrite: (line: string): string => jsonLineToText(line),
          },
        }
      : {}),
  };
  const logger: PinoLogger = options.destination
    ? pino(settings, options.destination)
    : pino(settings);
  return logger;
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
