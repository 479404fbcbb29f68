/**
 * What a HELO argument names for CSA: a host name, an address (checked through its reverse
 * name), localhost, or nothing a CSA record could be published for; and, for names, the parent
 * domains the subdomain search may ask about.
 */
import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';
import { type IpAddress, parseIp, reverseLabels, unmapIpv4 } from '../../dns/address.js';

/** Most parent domains of a host name the search asks about. */
export const MAX_NAME_PARENTS = 5;
/** Steps of the search under in-addr.arpa / ip6.arpa: octets, or 16 bits (4 nibbles). */
export const MAX_REVERSE_PARENTS = 3;

/** A HELO far longer than any host name is refused before any parsing work. */
const MAX_HELO_LENGTH = 300;

// A label as hosts use them: letters, digits, hyphens inside, and the underscore that the DNS
// allows and some broken HELO names carry. Anything else (spaces, '@', '/', quotes) is not a host.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export type CsaSubject =
  | { kind: 'local' }
  | { kind: 'invalid' }
  | {
      kind: 'name' | 'address';
      /** The name whose `_client._smtp` record is asked for. */
      name: string;
      /** Parents to search when the name has no record, top-down, already bounded. */
      parents: string[];
    };

/**
 * Classify a HELO argument.
 *
 * @example
 * csaSubject('mail.dept.example.com')
 * // { kind: 'name', name: 'mail.dept.example.com', parents: ['example.com', 'dept.example.com'] }
 * csaSubject('[192.0.2.1]')
 * // { kind: 'address', name: '1.2.0.192.in-addr.arpa',
 * //   parents: ['192.in-addr.arpa', '0.192.in-addr.arpa', '2.0.192.in-addr.arpa'] }
 * csaSubject('co.uk')  // { kind: 'invalid' }: a public suffix is no host
 */
export function csaSubject(helo: string): CsaSubject {
  if (helo.length === 0 || helo.length > MAX_HELO_LENGTH) return { kind: 'invalid' };
  if (helo.startsWith('[')) {
    const ip = addressLiteral(helo);
    return ip ? addressSubject(ip) : { kind: 'invalid' };
  }
  const bare = parseIp(helo);
  if (bare) return addressSubject(unmapIpv4(bare));
  const name = hostName(helo);
  if (name === null) return { kind: 'invalid' };
  if (name === 'localhost') return { kind: 'local' };
  // The registrable domain is where the search starts; a name without one is a public suffix
  // (or a single label), which no host should claim and which is never asked about.
  const registrable = getDomain(name, {
    allowPrivateDomains: true,
    extractHostname: false,
    detectIp: false,
  });
  if (registrable === null) return { kind: 'invalid' };
  return { kind: 'name', name, parents: nameParents(name, registrable) };
}

/**
 * The address of an SMTP address literal (RFC 5321 4.1.3): `[192.0.2.1]`, `[IPv6:2001:db8::1]`,
 * or, as many clients write it, the untagged `[2001:db8::1]`. An IPv4-mapped address is its IPv4
 * address. Null for anything else, including a tag that does not match the address.
 */
function addressLiteral(helo: string): IpAddress | null {
  if (!helo.endsWith(']')) return null;
  let inner = helo.slice(1, -1);
  let wantV6 = false;
  if (/^ipv6:/i.test(inner)) {
    inner = inner.slice(5);
    wantV6 = true;
  }
  const ip = parseIp(inner);
  if (!ip || (wantV6 && ip.family !== 6)) return null;
  return unmapIpv4(ip);
}

function addressSubject(ip: IpAddress): CsaSubject {
  const labels = reverseLabels(ip);
  const suffix = ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa';
  // Parents top-down: the first octet (or 16 bits), then one step more each time.
  const step = ip.family === 4 ? 1 : 4;
  const parents: string[] = [];
  for (let i = 1; i <= MAX_REVERSE_PARENTS; i++) {
    parents.push([...labels.slice(labels.length - i * step), suffix].join('.'));
  }
  return { kind: 'address', name: [...labels, suffix].join('.'), parents };
}

/**
 * The HELO as a host name in lower-case A-label form, or null when it cannot be one: control
 * characters or spaces, labels outside letters/digits/hyphen/underscore, empty or over 63 octets,
 * over 253 in all, a single label, or an all-numeric top label. One trailing dot is dropped.
 * U-labels (SMTPUTF8 clients) are converted to A-labels, so they are checked like their ASCII form.
 */
function hostName(helo: string): string | null {
  let name = helo.endsWith('.') ? helo.slice(0, -1) : helo;
  if (/[\x00-\x20\x7f]/.test(name)) return null;
  if (/[^\x21-\x7e]/.test(name)) {
    const ascii = domainToASCII(name);
    if (!ascii) return null;
    name = ascii;
  }
  name = name.toLowerCase();
  if (name === 'localhost') return name;
  if (name.length > 253) return null;
  const labels = name.split('.');
  if (labels.length < 2) return null;
  for (const label of labels) if (!LABEL.test(label)) return null;
  return /^\d+$/.test(labels[labels.length - 1]!) ? null : name;
}

/** Parents from the registrable domain down toward the name, the name itself excluded. */
function nameParents(name: string, registrable: string): string[] {
  const labels = name.split('.');
  const depth = registrable.split('.').length;
  const parents: string[] = [];
  for (let n = depth; n < labels.length && parents.length < MAX_NAME_PARENTS; n++) {
    parents.push(labels.slice(labels.length - n).join('.'));
  }
  return parents;
}

/**
 * Whether the client is this host: 127.0.0.0/8 or ::1 (IPv4-mapped loopback arrives unmapped).
 *
 * @example
 * isLoopback(parseIp('127.0.0.2')!)  // true
 */
export function isLoopback(ip: IpAddress): boolean {
  if (ip.family === 4) return ip.bytes[0] === 127;
  for (let i = 0; i < 15; i++) if (ip.bytes[i] !== 0) return false;
  return ip.bytes[15] === 1;
}
