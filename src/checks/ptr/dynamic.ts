/**
 * The dynamic-address heuristic: does a PTR name look like one an access provider hands out to
 * a dial-up, DSL, cable or mobile customer, rather than one somebody chose for a server?
 *
 * Evidence of a dynamic name is the client's address written into the name (decimal octets,
 * hex, IPv6 groups or nibbles) or a provider keyword in the host part; a word that names a
 * server (mail, mx, smtp, static, colo, dedi, hosting) overrides both, since providers mark
 * static and server addresses that way. Keywords and static words are looked for only left of
 * the registrable domain: `liverpool.ac.uk` is not a pool, `mailchannels.net` no mail host.
 */
import { getSubdomain } from 'tldts';
import { formatIp, type IpAddress, parseIp, unmapIpv4 } from '../../dns/address.js';
import { comparableName } from './names.js';

/** What the heuristic concluded, and the stable words saying why. */
export interface DynamicVerdict {
  dynamic: boolean;
  /**
   * Evidence found: address evidence first (`ip-octets`, `ip-hex`, `ip6-groups`, `ip6-nibbles`,
   * in that order), then `keyword:<word>` (e.g. `keyword:dsl`), then `static:<word>` (e.g.
   * `static:mail`), words in the order they occur in the name. Static words are listed even when
   * they overrode nothing.
   */
  reasons: string[];
}

type Match = 'exact' | 'prefix';

/** Provider keywords, matched against the letter runs of each host label. */
const DYNAMIC_WORDS: ReadonlyArray<readonly [string, Match]> = [
  ['dsl', 'prefix'], // also as a suffix: adsl, vdsl, xdsl
  ['dyn', 'prefix'], // dynamic, dynip
  ['dial', 'prefix'], // dialup, dialin
  ['pool', 'prefix'],
  ['ppp', 'prefix'], // pppoe
  ['cable', 'prefix'],
  ['dip', 'exact'], // dip0 (t-ipconnect); not diplomat
  ['broadband', 'prefix'],
  ['gprs', 'prefix'],
  ['umts', 'prefix'],
  ['wimax', 'prefix'],
  ['wwan', 'prefix'],
  ['dhcp', 'prefix'],
];

/** Words naming a server or a static assignment; any of them overrides the evidence above. */
const STATIC_WORDS: ReadonlyArray<readonly [string, Match]> = [
  ['mail', 'prefix'], // mailout, mailer
  ['mx', 'exact'], // mx1, mx-out
  ['smtp', 'prefix'],
  ['static', 'prefix'],
  ['colo', 'prefix'], // colocation
  ['dedi', 'prefix'], // dedicated
  ['hosting', 'prefix'], // also as a suffix: webhosting
];

/** Separators seen between the parts of an address written into a name. */
const SEP = '[-._]';
const SEP6 = '[-._:]';

/**
 * Whether a host name looks like one given to a dynamic (dial-up, DSL, cable, mobile) address,
 * and why. Names longer than 255 characters are judged on their first 255.
 *
 * @example
 * looksDynamic('adsl-69-208-201-177.dsl.example.net', '69.208.201.177')
 * // { dynamic: true, reasons: ['ip-octets', 'keyword:dsl'] }
 * looksDynamic('mail-192-0-2-1.example.net', '192.0.2.1')
 * // { dynamic: false, reasons: ['ip-octets', 'static:mail'] }
 */
export function looksDynamic(name: string, ip: IpAddress | string): DynamicVerdict {
  const parsed = typeof ip === 'string' ? parseIp(ip) : ip;
  // The heuristic builds and runs a dozen regular expressions: the same client seen again (every
  // connection of a busy sender) is answered from a memo of this pure function.
  const key = `${name.slice(0, 255)} ${parsed ? formatIp(parsed) : String(ip)}`;
  const known = VERDICTS.get(key);
  if (known) return { dynamic: known.dynamic, reasons: [...known.reasons] };
  const verdict = judgeDynamic(name, parsed);
  if (VERDICTS.size >= MAX_VERDICTS) VERDICTS.clear();
  VERDICTS.set(key, verdict);
  return { dynamic: verdict.dynamic, reasons: [...verdict.reasons] };
}

/** Names judged, by name and address; cleared whole when full (a cheap bound). */
const VERDICTS = new Map<string, DynamicVerdict>();
const MAX_VERDICTS = 10_000;

function judgeDynamic(name: string, parsed: IpAddress | null): DynamicVerdict {
  const host = comparableName(name.slice(0, 255));
  const reasons: string[] = [];
  if (parsed) {
    const address = unmapIpv4(parsed);
    if (address.family === 4) reasons.push(...ipv4Evidence(host, [...address.bytes]));
    else reasons.push(...ipv6Evidence(host, address.bytes));
  }
  const dynamicWords = new Set<string>();
  const staticWords = new Set<string>();
  for (const label of hostLabels(host)) {
    // `.bb.` (broadband) is a whole label; as a letter run it would also catch the Barbados TLD.
    if (label === 'bb') dynamicWords.add('bb');
    for (const token of label.split(/[^a-z]+/)) {
      if (token === '') continue;
      for (const [word, how] of DYNAMIC_WORDS) {
        if (matchesWord(token, word, how) || (word === 'dsl' && token.endsWith('dsl'))) {
          dynamicWords.add(word);
        }
      }
      for (const [word, how] of STATIC_WORDS) {
        if (matchesWord(token, word, how) || (word === 'hosting' && token.endsWith(word))) {
          staticWords.add(word);
        }
      }
    }
  }
  const evidence = reasons.length > 0 || dynamicWords.size > 0;
  for (const word of dynamicWords) reasons.push(`keyword:${word}`);
  for (const word of staticWords) reasons.push(`static:${word}`);
  return { dynamic: evidence && staticWords.size === 0, reasons };
}

function matchesWord(token: string, word: string, how: Match): boolean {
  return how === 'exact' ? token === word : token.startsWith(word);
}

/** The labels left of the registrable domain; all labels when there is no registrable domain. */
function hostLabels(host: string): string[] {
  const sub = getSubdomain(host, { allowPrivateDomains: true });
  if (sub === null) return host.split('.');
  return sub === '' ? [] : sub.split('.');
}

/** A decimal octet, optionally zero-padded to three digits. */
function decimal(n: number): string {
  const s = String(n);
  return `0{0,${3 - s.length}}${s}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function ipv4Evidence(host: string, octets: number[]): string[] {
  const out: string[] = [];
  const orders = [octets, [...octets].reverse()];
  if (orders.some((o) => decimalOctetsIn(host, o))) out.push('ip-octets');
  if (orders.some((o) => hexOctetsIn(host, o))) out.push('ip-hex');
  return out;
}

/**
 * The four octets in this order with separators, three consecutive of them with separators, or
 * all four without separators (zero-padded, or unpadded when that still makes 8 digits or more),
 * never as part of a longer number.
 */
function decimalOctetsIn(host: string, o: number[]): boolean {
  const bounded = (body: string) => new RegExp(`(?<![0-9])${body}(?![0-9])`).test(host);
  const joined = (part: number[]) => part.map(decimal).join(SEP);
  if (bounded(joined(o)) || bounded(joined(o.slice(0, 3))) || bounded(joined(o.slice(1)))) {
    return true;
  }
  if (bounded(o.map((n) => String(n).padStart(3, '0')).join(''))) return true;
  const plain = o.join('');
  return plain.length >= 8 && bounded(plain);
}

/** The four octets as hex: contiguous (`c0000201`) or with separators (`c0-00-02-01`). */
function hexOctetsIn(host: string, o: number[]): boolean {
  if (host.includes(o.map(hex2).join(''))) return true;
  return new RegExp(`(?<![0-9a-f])${o.map(hex2).join(SEP)}(?![0-9a-f])`).test(host);
}

function ipv6Evidence(host: string, bytes: Uint8Array): string[] {
  const out: string[] = [];
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groupsIn(host, words) || groupsIn(host, [...words].reverse())) out.push('ip6-groups');
  let nibbles = '';
  for (const b of bytes) nibbles += hex2(b);
  const squeezed = host.replace(/[-._:]/g, '');
  const halves = [nibbles.slice(0, 16), nibbles.slice(16)];
  const chunks = [...halves, ...halves.map((h) => [...h].reverse().join(''))];
  if (chunks.some((c) => /[^0]/.test(c) && squeezed.includes(c))) out.push('ip6-nibbles');
  return out;
}

/** Four consecutive 16-bit groups (not all zero) in this order, with separators. */
function groupsIn(host: string, words: number[]): boolean {
  for (let i = 0; i + 4 <= words.length; i++) {
    const window = words.slice(i, i + 4);
    if (window.every((w) => w === 0)) continue;
    const body = window
      .map((w) => {
        const h = w.toString(16);
        return `0{0,${4 - h.length}}${h}`;
      })
      .join(SEP6);
    if (new RegExp(`(?<![0-9a-f])${body}(?![0-9a-f])`).test(host)) return true;
  }
  return false;
}
