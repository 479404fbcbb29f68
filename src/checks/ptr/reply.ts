/**
 * The SMTP reply a receiver would give for a PTR result. Names come from the client's DNS and are
 * made printable before they reach the reply.
 */
import { escapeForLog, printableAscii, truncate } from '../../text/index.js';
import type { PtrReply, PtrResult } from './types.js';

/**
 * The suggested reply: 550 5.7.1 for a PTR of `localhost` from a remote client or of `.` (as
 * bms.py rejects them), 451 4.4.3 for tempfail, 250 2.0.0 otherwise. Whether an unverified,
 * missing or dynamic-looking name matters is the policy's decision, not this reply's.
 *
 * @example
 * ptrReply({ result: 'none', ip: '192.0.2.1', flags: { localhost: false, root: false, truncated: false } })
 * // { code: 250, xcode: '2.0.0', text: 'no PTR record for 192.0.2.1' }
 */
export function ptrReply(
  r: Pick<PtrResult, 'result' | 'ip' | 'name' | 'flags' | 'problem'>,
): PtrReply {
  if (r.flags.localhost) return reply(550, '5.7.1', `the PTR name of ${r.ip} is localhost`);
  if (r.flags.root) return reply(550, '5.7.1', `the PTR name of ${r.ip} is the root (.)`);
  switch (r.result) {
    case 'verified':
      return reply(250, '2.0.0', `${r.ip} is ${shown(r.name ?? '')}`);
    case 'unverified':
      return reply(250, '2.0.0', `no PTR name of ${r.ip} resolves back to it`);
    case 'none':
      return reply(250, '2.0.0', `no PTR record for ${r.ip}`);
    case 'tempfail':
      return reply(
        451,
        '4.4.3',
        `reverse DNS of ${r.ip} cannot be checked now: ${r.problem ?? 'DNS failure'}`,
      );
  }
}

/** A DNS name as it may appear in a reply or log line. */
function shown(name: string): string {
  return truncate(escapeForLog(name), 255);
}

function reply(code: number, xcode: string, text: string): PtrReply {
  return { code, xcode, text: truncate(printableAscii(text), 400) };
}
