/**
 * IP addresses as byte arrays: parsing, printing, prefix matching and reverse-lookup names.
 *
 * Checks compare client addresses against many networks per message, so an address is parsed
 * once into 4 or 16 bytes and every comparison after that is a byte loop.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  family: 4 | 6;
  /** 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array;
}

/**
 * Parse an IPv4 or IPv6 address; `null` when it is not one. An IPv6 zone suffix (`%eth0`) is
 * not accepted: a mail client's address never has one.
 *
 * @example
 * parseIp('192.0.2.1')?.family  // 4
 * parseIp('2001:db8::1')?.bytes.length  // 16
 */
export function parseIp(text: string): IpAddress | null {
  if (isIPv4(text)) return { family: 4, bytes: parseIpv4Bytes(text) };
  if (text.includes('%') || !isIPv6(text)) return null;
  return { family: 6, bytes: parseIpv6Bytes(text) };
}

/** The bytes of a dotted quad already known to be one (isIPv4): digits and three dots. */
function parseIpv4Bytes(text: string): Uint8Array {
  const out = new Uint8Array(4);
  let i = 0;
  let value = 0;
  // A loop over char codes: this runs for every address of every check, and split() allocates.
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 46) {
      out[i++] = value;
      value = 0;
    } else {
      value = value * 10 + (c - 48);
    }
  }
  out[i] = value;
  return out;
}

function parseIpv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let head = text;
  let tail = '';
  const gap = text.indexOf('::');
  if (gap >= 0) {
    head = text.slice(0, gap);
    tail = text.slice(gap + 2);
  }
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const words: number[] = [];
  const pushGroups = (groups: string[], into: number[]) => {
    for (const g of groups) {
      if (g.includes('.')) {
        const v4 = parseIpv4Bytes(g);
        into.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        into.push(Number.parseInt(g, 16));
      }
    }
  };
  const tailWords: number[] = [];
  pushGroups(headGroups, words);
  pushGroups(tailGroups, tailWords);
  const zeros = 8 - words.length - tailWords.length;
  for (let i = 0; i < zeros; i++) words.push(0);
  words.push(...tailWords);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = words[i]! >> 8;
    out[i * 2 + 1] = words[i]! & 0xff;
  }
  return out;
}

/**
 * The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`), else the address
 * itself. RFC 7208 section 5 asks SPF to treat such clients as IPv4.
 *
 * @example
 * formatIp(unmapIpv4(parseIp('::ffff:192.0.2.1')!))  // '192.0.2.1'
 */
export function unmapIpv4(ip: IpAddress): IpAddress {
  if (ip.family !== 6) return ip;
  const b = ip.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return ip;
  if (b[10] !== 0xff || b[11] !== 0xff) return ip;
  return { family: 4, bytes: b.slice(12) };
}

/**
 * Canonical text form: dotted quad, or RFC 5952 compressed IPv6.
 *
 * @example
 * formatIp(parseIp('2001:0db8:0:0:0:0:0:0001')!)  // '2001:db8::1'
 */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of two or more zero words is compressed (RFC 5952 4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/**
 * Whether `ip` lies inside `network/prefix`. Addresses of different families never match.
 *
 * @example
 * inPrefix(parseIp('192.0.2.77')!, parseIp('192.0.2.0')!, 24)  // true
 */
export function inPrefix(ip: IpAddress, network: IpAddress, prefix: number): boolean {
  if (ip.family !== network.family) return false;
  const a = ip.bytes;
  const n = network.bytes;
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== n[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (n[whole]! & mask);
}

/**
 * The reverse-lookup name of an address, without trailing dot.
 *
 * @example
 * reverseName(parseIp('192.0.2.1')!)  // '1.2.0.192.in-addr.arpa'
 * reverseName(parseIp('2001:db8::1')!)  // '1.0.0.0. … .8.b.d.0.1.0.0.2.ip6.arpa'
 */
export function reverseName(ip: IpAddress): string {
  return `${reverseLabels(ip).join('.')}.${ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

/**
 * The labels of the reverse name before the `in-addr.arpa` / `ip6.arpa` suffix: octets for IPv4,
 * nibbles (lower-case hex) for IPv6, least significant first.
 */
export function reverseLabels(ip: IpAddress): string[] {
  const b = ip.bytes;
  const out: string[] = [];
  if (ip.family === 4) {
    for (let i = 3; i >= 0; i--) out.push(String(b[i]));
    return out;
  }
  for (let i = 15; i >= 0; i--) {
    out.push((b[i]! & 0x0f).toString(16), (b[i]! >> 4).toString(16));
  }
  return out;
}

/** Whether two parsed addresses are the same address. */
export function sameIp(a: IpAddress, b: IpAddress): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}

/** An IP network: address and prefix length. */
export interface IpNetwork {
  network: IpAddress;
  prefix: number;
}

/**
 * Parse `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a single host); `null` when it is
 * neither. The host bits need not be zero: `192.0.2.7/24` is the network 192.0.2.0/24.
 *
 * @example
 * parseNetwork('10.0.0.0/8')?.prefix  // 8
 * parseNetwork('2001:db8::1')?.prefix  // 128
 */
export function parseNetwork(text: string): IpNetwork | null {
  const slash = text.indexOf('/');
  const network = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!network) return null;
  const max = network.family === 4 ? 32 : 128;
  if (slash < 0) return { network, prefix: max };
  const length = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(length) || Number(length) > max) return null;
  return { network, prefix: Number(length) };
}

/**
 * The network an address is in: its first `prefix` bits kept, the rest zero.
 *
 * @example
 * formatIp(networkOf(parseIp('192.0.2.77')!, 24))  // '192.0.2.0'
 */
export function networkOf(ip: IpAddress, prefix: number): IpAddress {
  const bytes = new Uint8Array(ip.bytes);
  for (let bit = Math.max(0, prefix); bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  return { family: ip.family, bytes };
}

/**
 * Whether an address is in any of the networks. IPv4-mapped IPv6 addresses are compared as IPv4.
 *
 * @example
 * inNetworks(parseIp('10.1.2.3')!, [parseNetwork('10.0.0.0/8')!])  // true
 */
export function inNetworks(ip: IpAddress, networks: readonly IpNetwork[]): boolean {
  const address = unmapIpv4(ip);
  return networks.some((n) => inPrefix(address, n.network, n.prefix));
}

/**
 * Whether an address is a loopback address: 127.0.0.0/8, ::1, or IPv4-mapped loopback.
 *
 * @example
 * isLoopback(parseIp('::ffff:127.0.0.1')!)  // true
 */
export function isLoopback(ip: IpAddress): boolean {
  const address = unmapIpv4(ip);
  if (address.family === 4) return address.bytes[0] === 127;
  for (let i = 0; i < 15; i++) if (address.bytes[i] !== 0) return false;
  return address.bytes[15] === 1;
}

/**
 * Parse a client address as an MTA may give it (any IPv6 spelling, `::ffff:` mapped IPv4,
 * `[192.0.2.1]` or `[IPv6:2001:db8::1]` as in address literals) into its canonical form:
 * IPv4-mapped addresses become IPv4. Null when it is no address.
 *
 * @example
 * parseClientIp('::FFFF:192.0.2.1')   // { family: 4, bytes: [192, 0, 2, 1] }
 * parseClientIp('[IPv6:2001:DB8::1]')  // { family: 6, ... }
 */
export function parseClientIp(raw: string): IpAddress | null {
  let text = raw.trim();
  if (text.length > 64) return null;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (/^ipv6:/i.test(text)) text = text.slice(5);
  const ip = parseIp(text);
  return ip ? unmapIpv4(ip) : null;
}

/**
 * A client's network rather than its address, as greylisting keys and reputation subjects
 * count it: IPv4 /24, IPv6 /64 (senders send from several hosts of one farm, and IPv6 hands a
 * single site a whole /64), IPv4-mapped IPv6 as IPv4.
 *
 * @example
 * clientNetwork(parseIp('192.0.2.77')!)            // '192.0.2.0/24'
 * clientNetwork(parseIp('2001:db8:1:2:3:4:5:6')!)  // '2001:db8:1:2::/64'
 */
export function clientNetwork(ip: IpAddress): string {
  const address = unmapIpv4(ip);
  const prefix = address.family === 4 ? 24 : 64;
  return `${formatIp(networkOf(address, prefix))}/${prefix}`;
}
