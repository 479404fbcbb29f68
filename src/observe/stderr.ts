/**
 * The logger a library uses when its caller gives none: warnings and errors on stderr, one
 * escaped line each. Kept apart from the pino logger so that the milter and policy libraries can
 * use it without loading pino.
 */
import { escapeForLog } from '../text/index.js';

/** pino's call shape, which the libraries' logger types share. */
export interface LineLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

function line(prefix: string, level: string, fields: Record<string, unknown>, message: string) {
  const parts = [`${prefix} ${level}: ${escapeForLog(message)}`];
  for (const [key, value] of Object.entries(fields)) {
    const text =
      value instanceof Error
        ? (value.stack ?? `${value.name}: ${value.message}`)
        : typeof value === 'string'
          ? value
          : String(value);
    parts.push(`${key}=${escapeForLog(text)}`);
  }
  return parts.join(' ');
}

/**
 * A logger that writes warnings and errors to stderr, each on one line starting with `prefix`;
 * info and debug are dropped. A daemon passes its own logger instead (pino fits as it is).
 *
 * @example
 * const logger = options.logger ?? stderrLogger('milter');
 * logger.warn({ remote: '127.0.0.1:4711' }, 'bad frame');  // stderr: milter warn: bad frame remote=127.0.0.1:4711
 */
export function stderrLogger(prefix: string): LineLogger {
  return {
    info() {},
    warn(fields, message) {
      process.stderr.write(`${line(prefix, 'warn', fields, message)}\n`);
    },
    error(fields, message) {
      process.stderr.write(`${line(prefix, 'error', fields, message)}\n`);
    },
  };
}
