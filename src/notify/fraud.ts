/**
 * Addresses a mail host may not have. A domain whose MX points at loopback, at "this host"
 * (0.0.0.0/8, ::) or at one of our own addresses would have us call ourselves: at best a wasted
 * probe, at worst a loop in which our MTA asks us about the probe we are making, or a way to
 * aim our connections at services on our own machine.
 */
import {
  type IpAddress,
  type IpNetwork,
  inNetworks,
  isLoopback,
  parseIp,
  parseNetwork,
  sameIp,
  unmapIpv4,
} from '../dns/address.js';
import { logValue } from '../text/index.js';

/** Why an address is never connected to. */
export type ForbiddenReason = 'loopback' | 'unspecified' | 'ours';

/** The parsed address rules of one call. */
export interface AddressRules {
  ours: readonly IpNetwork[];
  allowed: readonly IpAddress[];
}

/**
 * Parse `ourAddresses` (addresses or networks) and `allowAddresses` (addresses). A value that
 * does not parse is a configuration error, and throws a RangeError naming it.
 *
 * @example
 * const rules = addressRules(['192.0.2.25', '2001:db8::/64'], []);
 */
export function addressRules(
  ourAddresses: readonly string[],
  allowAddresses: readonly string[] = [],
): AddressRules {
  const ours = ourAddresses.map((text) => {
    const network = parseNetwork(text);
    if (!network)
      throw new RangeError(`ourAddresses: not an address or network: ${logValue(text, 80)}`);
    return network;
  });
  const allowed = allowAddresses.map((text) => {
    const ip = parseIp(text);
    if (!ip) throw new RangeError(`allowAddresses: not an address: ${logValue(text, 80)}`);
    return unmapIpv4(ip);
  });
  return { ours, allowed };
}

/**
 * Why `ip` may not be connected to, or null when it may. `ours` always wins; `allowed` exempts
 * an address from the loopback and unspecified rules only (a test's loopback server, a site's
 * local relay), never from being ours.
 *
 * @example
 * forbiddenAddress(parseIp('127.0.0.1')!, rules)  // 'loopback'
 * forbiddenAddress(parseIp('::ffff:0.0.0.0')!, rules)  // 'unspecified'
 */
export function forbiddenAddress(ip: IpAddress, rules: AddressRules): ForbiddenReason | null {
  const address = unmapIpv4(ip);
  if (inNetworks(address, rules.ours)) return 'ours';
  if (rules.allowed.some((a) => sameIp(a, address))) return null;
  if (isLoopback(address)) return 'loopback';
  if (isUnspecified(address)) return 'unspecified';
  return null;
}

/** 0.0.0.0/8 ("this network", RFC 1122) and `::`. */
function isUnspecified(ip: IpAddress): boolean {
  if (ip.family === 4) return ip.bytes[0] === 0;
  return ip.bytes.every((b) => b === 0);
}
