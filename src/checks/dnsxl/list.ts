/**
 * List settings checked and put into the form the check uses: the zone normalised, return codes
 * as ranges of 32-bit numbers. Every mistake names the key and the problem, so that a config
 * loader can report it at start-up.
 */
import { parseIp } from '../../dns/address.js';
import { dnsxlDomain } from './domain.js';
import { DEFAULT_DNSXL_UNUSABLE_CODES, type DnsxlKind, type DnsxlList } from './types.js';

/** An inclusive range of IPv4 addresses as unsigned 32-bit numbers. */
export interface CodeRange {
  low: number;
  high: number;
}

/** A list ready for use. */
export interface CompiledList {
  zone: string;
  kind: DnsxlKind;
  weight: number;
  /** The accepted codes; null accepts any code in 127.0.0.0/8 that is not unusable. */
  codes: CodeRange[] | null;
  unusable: CodeRange[];
  txt: boolean;
}

const KINDS: readonly DnsxlKind[] = ['dnsbl', 'dnswl', 'rhsbl'];
const LOOPBACK: CodeRange = { low: 0x7f000000, high: 0x7fffffff };

/**
 * Check a list's settings and compile them; throws a TypeError naming `key` and the problem.
 *
 * @example
 * compileDnsxlList({ zone: 'Zen.Example.', kind: 'dnsbl', codes: ['127.0.0.2-127.0.0.11'] })
 * // { zone: 'zen.example', kind: 'dnsbl', weight: 1, codes: [{ low: 2130706434, high: 2130706443 }], ... }
 */
export function compileDnsxlList(list: DnsxlList, key = 'list'): CompiledList {
  if (list === null || typeof list !== 'object') throw new TypeError(`${key}: not a list setting`);
  if (typeof list.zone !== 'string') throw new TypeError(`${key}.zone: missing`);
  const zone = dnsxlDomain(list.zone);
  if (zone === null) throw new TypeError(`${key}.zone: ${JSON.stringify(list.zone)} is not a zone`);
  if (!KINDS.includes(list.kind)) {
    throw new TypeError(`${key}.kind: must be one of ${KINDS.join(', ')}`);
  }
  const weight = list.weight ?? 1;
  if (!(typeof weight === 'number' && Number.isFinite(weight) && weight >= 0)) {
    throw new TypeError(`${key}.weight: must be a number of at least 0`);
  }
  if (list.txt !== undefined && typeof list.txt !== 'boolean') {
    throw new TypeError(`${key}.txt: must be true or false`);
  }
  return {
    zone,
    kind: list.kind,
    weight,
    codes: list.codes === undefined ? null : codeRanges(list.codes, `${key}.codes`),
    unusable: codeRanges(
      list.unusableCodes ?? DEFAULT_DNSXL_UNUSABLE_CODES,
      `${key}.unusableCodes`,
    ),
    txt: list.txt ?? false,
  };
}

/**
 * Check every list's settings, as a config loader does at start-up; throws on the first mistake,
 * naming it as `lists[INDEX].KEY`.
 *
 * @example
 * validateDnsxlLists([{ zone: 'zen.example', kind: 'dnsbl', codes: ['127.0.0.300'] }])
 * // TypeError: lists[0].codes[0]: "127.0.0.300" is not an address or a range of addresses
 */
export function validateDnsxlLists(lists: readonly DnsxlList[]): void {
  compileDnsxlLists(lists);
}

export function compileDnsxlLists(lists: readonly DnsxlList[]): CompiledList[] {
  if (!Array.isArray(lists)) throw new TypeError('lists: must be a list of DNS list settings');
  return lists.map((list, i) => compileDnsxlList(list, `lists[${i}]`));
}

function codeRanges(specs: readonly string[], key: string): CodeRange[] {
  if (!Array.isArray(specs)) throw new TypeError(`${key}: must be a list of codes`);
  return specs.map((spec, i) => codeRange(spec, `${key}[${i}]`));
}

function codeRange(spec: unknown, key: string): CodeRange {
  const bad = () =>
    new TypeError(`${key}: ${JSON.stringify(spec)} is not an address or a range of addresses`);
  if (typeof spec !== 'string') throw bad();
  const dash = spec.indexOf('-');
  const low = ipv4Number(dash < 0 ? spec.trim() : spec.slice(0, dash).trim());
  const high = dash < 0 ? low : ipv4Number(spec.slice(dash + 1).trim());
  if (low === null || high === null) throw bad();
  if (low > high) throw new TypeError(`${key}: ${JSON.stringify(spec)} is an empty range`);
  if (!inRange(low, LOOPBACK) || !inRange(high, LOOPBACK)) {
    throw new TypeError(`${key}: ${JSON.stringify(spec)} is not inside 127.0.0.0/8`);
  }
  return { low, high };
}

/** An IPv4 address as an unsigned 32-bit number, or null when the text is not one. */
export function ipv4Number(text: string): number | null {
  const ip = parseIp(text);
  if (ip === null || ip.family !== 4) return null;
  const b = ip.bytes;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function inRange(n: number, range: CodeRange): boolean {
  return n >= range.low && n <= range.high;
}

export function inAnyRange(n: number, ranges: readonly CodeRange[]): boolean {
  for (const range of ranges) if (inRange(n, range)) return true;
  return false;
}

/** Whether an answer is a DNS list return code at all (RFC 5782 2.3). */
export function isLoopback(n: number): boolean {
  return inRange(n, LOOPBACK);
}
