/**
 * Small facts about host names and addresses that the PTR and HELO checks share: loopback
 * clients, names meaning "localhost", and the one spelling names are compared in.
 */
import { type IpAddress, inPrefix } from '../../dns/address.js';

const LOOPBACK4: IpAddress = { family: 4, bytes: new Uint8Array([127, 0, 0, 0]) };
const LOOPBACK6: IpAddress = {
  family: 6,
  bytes: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
};

/**
 * Whether an address is a loopback address: 127.0.0.0/8 or ::1. IPv4-mapped addresses must be
 * unmapped first (`unmapIpv4`).
 *
 * @example
 * isLoopback(parseIp('127.0.0.2')!)  // true
 * isLoopback(parseIp('::1')!)        // true
 */
export function isLoopback(ip: IpAddress): boolean {
  return ip.family === 4 ? inPrefix(ip, LOOPBACK4, 8) : inPrefix(ip, LOOPBACK6, 128);
}

/**
 * A host name in the form names are compared in: lower case, without one trailing dot.
 *
 * @example
 * comparableName('Mail.Example.COM.')  // 'mail.example.com'
 */
export function comparableName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') && lower !== '.' ? lower.slice(0, -1) : lower;
}

/**
 * Whether a name means "this very host": `localhost`, `localhost.localdomain`, or any name under
 * `.localhost` (RFC 6761 6.3). A remote client naming itself so is lying or broken.
 *
 * @example
 * isLocalhostName('LOCALHOST.')             // true
 * isLocalhostName('localhost.example.com')  // false
 */
export function isLocalhostName(name: string): boolean {
  const n = comparableName(name);
  return n === 'localhost' || n === 'localhost.localdomain' || n.endsWith('.localhost');
}
