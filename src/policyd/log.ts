/**
 * Logging helpers of the policy server: hostile bytes made visible and harmless in log lines,
 * and the logger used when none is given. (src/policyd imports nothing of ours but shared types
 * and src/listen, so this is a small copy of what src/text offers, as in src/milter.)
 */
import type { PolicyLogger } from './types.js';

/**
 * Text for one log line: control and non-ASCII characters as `\xNN` / `\u{NNNN}`, backslashes
 * doubled, so an operator sees what arrived and a peer cannot forge log lines.
 *
 * @example
 * escapeLogText('sender=a\r\nb')  // 'sender=a\\x0d\\x0ab'
 */
export function escapeLogText(text: string): string {
  return text.replace(/[^\x20-\x7e]|\\/gu, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

function line(level: string, fields: Record<string, unknown>, message: string): string {
  const parts = [`policyd ${level}: ${escapeLogText(message)}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      parts.push(`${key}=${escapeLogText(value.stack ?? `${value.name}: ${value.message}`)}`);
    } else {
      parts.push(`${key}=${escapeLogText(typeof value === 'string' ? value : String(value))}`);
    }
  }
  return parts.join(' ');
}

/**
 * The logger when none is given: warnings and errors to stderr, one line each; info and debug
 * dropped. A daemon passes its own (pino fits as it is).
 */
export const stderrLogger: PolicyLogger = {
  info() {},
  warn(fields, message) {
    process.stderr.write(`${line('warn', fields, message)}\n`);
  },
  error(fields, message) {
    process.stderr.write(`${line('error', fields, message)}\n`);
  },
};
