/**
 * The two error results travel as exceptions inside an evaluation: the RFC ends check_host()
 * at once on either, wherever in a chain of include and redirect it happens.
 */
import { escapeForLog, truncate } from '../../text/index.js';

/** Longest problem text kept: problems quote records, and records can be 60 KB. */
const MESSAGE_MAX = 200;
const MECHANISM_MAX = 100;

export class SpfProblem extends Error {
  /** The directive being evaluated when it happened, if any. */
  readonly mechanism?: string;

  constructor(
    readonly result: 'permerror' | 'temperror',
    message: string,
    mechanism?: string,
  ) {
    super(excerpt(message, MESSAGE_MAX));
    this.name = 'SpfProblem';
    if (mechanism !== undefined) this.mechanism = excerpt(mechanism, MECHANISM_MAX);
  }
}

/**
 * Text from a record or a query, made safe and short enough to quote in a problem, a log line or
 * a list of forgiven mistakes.
 *
 * @example
 * excerpt('ip4:192.0.2.1\n')  // 'ip4:192.0.2.1\\x0a'
 */
export function excerpt(text: string, max = MESSAGE_MAX): string {
  return truncate(escapeForLog(text), max);
}
