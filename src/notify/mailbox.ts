/**
 * Which addresses and names may be put on the wire. A call-back writes an SMTP client's sender
 * into our own RCPT TO, so anything that could end the command line or change its meaning is
 * refused here, before any DNS query or connection.
 */
import { parseIp } from '../dns/address.js';

/** A mailbox that is safe to write in `RCPT TO:<...>` and in a header. */
export interface Mailbox {
  /** The local part as given: a dot-atom or a quoted-string (RFC 5321 4.1.2). */
  local: string;
  /** The domain, lower case. */
  domain: string;
  /** `local@domain`, the domain lower-cased. */
  address: string;
}

// RFC 5321 4.5.3.1: 64 octets of local part, 255 of domain, 256 of path (with the brackets).
const MAX_LOCAL = 64;
const MAX_ADDRESS = 254;

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
// qtextSMTP and quoted-pairSMTP (printable ASCII, `"` and `\` escaped), less `<` and `>`:
// valid inside quotes, but a far end that finds the path's end naively would be misled.
const QUOTED = /^"(?:[\x20\x21\x23-\x3b\x3d\x3f-\x5b\x5d-\x7e]|\\[\x20-\x3b\x3d\x3f-\x7e])*"$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Whether `name` is a host name we would look up or connect to: LDH labels of 1 to 63
 * characters, 253 in all, no trailing dot. Case is not checked.
 *
 * @example
 * isHostName('mx1.example.com')  // true
 * isHostName('bad_name.example') // false
 */
export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name
    .toLowerCase()
    .split('.')
    .every((label) => LABEL.test(label));
}

/**
 * Whether `name` may follow EHLO: a host name or an address literal (`[192.0.2.1]`,
 * `[IPv6:2001:db8::1]`).
 *
 * @example
 * isHeloName('[IPv6:2001:db8::1]')  // true
 */
export function isHeloName(name: string): boolean {
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(name);
  if (literal) {
    const ip = parseIp(literal[1]!);
    return ip !== null && (ip.family === 6) === /^\[IPv6:/i.test(name);
  }
  return isHostName(name);
}

/**
 * Parse `local@domain` as a mailbox we can send to; `null` for anything else, including the
 * null sender, address literals, non-ASCII (SMTPUTF8) addresses, angle brackets, and any
 * control character.
 *
 * @example
 * parseMailbox('Jo.Smith@Example.COM')?.address  // 'Jo.Smith@example.com'
 * parseMailbox('a\r\nRCPT TO:<b@example.com>@example.com')  // null
 */
export function parseMailbox(text: string): Mailbox | null {
  if (text.length === 0 || text.length > MAX_ADDRESS) return null;
  const at = text.lastIndexOf('@');
  if (at <= 0) return null;
  const local = text.slice(0, at);
  const domain = text.slice(at + 1).toLowerCase();
  if (local.length > MAX_LOCAL) return null;
  if (!DOT_ATOM.test(local) && !QUOTED.test(local)) return null;
  if (!isHostName(domain)) return null;
  return { local, domain, address: `${local}@${domain}` };
}

/**
 * A host name for comparison: lower case, without a trailing dot.
 *
 * @example
 * normaliseName('MX.Example.COM.')  // 'mx.example.com'
 */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
