/**
 * Whitelists in postgrey's file syntax: clients that are never greylisted (by name, address,
 * network or regular expression) and recipients that never are (by address, local part, domain
 * or regular expression). Parsing never throws on a bad line: the line is reported with its
 * file and line number and skipped.
 */
import {
  type IpAddress,
  type IpNetwork,
  inPrefix,
  networkOf,
  parseIp,
  parseNetwork,
  unmapIpv4,
} from '../dns/address.js';
import { escapeForLog, printableAscii, truncate } from '../text/index.js';
import { MAX_ADDRESS_LENGTH, normaliseAddress } from './normalise.js';

/** Longest host name compared or matched, in characters. */
const MAX_NAME_LENGTH = 255;
/** Longest regular expression accepted from a file, in characters. */
const MAX_REGEX_LENGTH = 1000;

/** A line that was skipped, and why. */
export interface WhitelistProblem {
  /** The file (or `inline`) the line came from. */
  source: string;
  line: number;
  /** The line as written, cut, with anything unprintable as `?`. */
  text: string;
  problem: string;
}

/**
 * The problem as one log-safe line: `path:line: problem: text`.
 *
 * @example
 * formatProblem({ source: '/etc/wl', line: 3, text: '/(/', problem: 'bad regular expression' })
 * // '/etc/wl:3: bad regular expression: /(/'
 */
export function formatProblem(p: WhitelistProblem): string {
  return `${escapeForLog(p.source)}:${p.line}: ${p.problem}: ${p.text}`;
}

/** One meaningful line: its number and its text without comment and surrounding blanks. */
interface Line {
  line: number;
  text: string;
}

function meaningfulLines(text: string): Line[] {
  const out: Line[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const hash = raw.indexOf('#');
    const body = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (body !== '') out.push({ line: i + 1, text: body });
  }
  return out;
}

/** `/regex/` → a case-insensitive RegExp, or a problem word. */
function compileRegex(text: string): RegExp | string {
  const body = text.slice(1, -1);
  if (body === '') return 'empty regular expression';
  if (body.length > MAX_REGEX_LENGTH) return 'regular expression too long';
  try {
    return new RegExp(body, 'i');
  } catch {
    return 'bad regular expression';
  }
}

function isRegexLine(text: string): boolean {
  return text.length >= 2 && text.startsWith('/') && text.endsWith('/');
}

/** A host name as compared: lower case, no trailing dot, at most 255 characters. */
function comparableHost(name: string): string {
  let host = name.slice(0, MAX_NAME_LENGTH + 1).toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.slice(0, MAX_NAME_LENGTH);
}

const HOST_NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;
const PARTIAL_IPV4 = /^(\d{1,3})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?\.?$/;

/** What matched, for the log: `source:line: entry`. */
function origin(source: string, line: number, text: string): string {
  return `${escapeForLog(source)}:${line}: ${printableAscii(truncate(text, 200))}`;
}

/** Parsed lines of one whitelist, with what was skipped. */
interface Parsed<T> {
  list: T;
  problems: WhitelistProblem[];
}

/**
 * Feeds each meaningful line of a file to `add` (with its `source:line: entry` origin) and
 * collects the lines it refuses, with the problem word it gave.
 */
function parseEntries(
  text: string,
  source: string,
  add: (entry: string, where: string) => string | null,
): WhitelistProblem[] {
  const problems: WhitelistProblem[] = [];
  for (const { line, text: entry } of meaningfulLines(text)) {
    const problem = add(entry, origin(source, line, entry));
    if (problem)
      problems.push({ source, line, text: printableAscii(truncate(entry, 200)), problem });
  }
  return problems;
}

/**
 * Clients that are never greylisted. Lines (postgrey's syntax):
 * - `mail.example.com`: that host name and every name under it (`a.mail.example.com`), matched
 *   against the client's verified name only;
 * - `192.0.2.1`, `2001:db8::1`: that address;
 * - `192.0.2`, `10.1`, `10`: the addresses starting with those octets (a /24, /16, /8);
 * - `192.0.2.0/24`, `2001:db8::/32`: a network;
 * - `/regex/`: matched, case-insensitively, against the client's verified name.
 *
 * @example
 * const { list, problems } = ClientWhitelist.parse('example.net\n192.0.2\n/^mx\\d+\\.example\\.org$/\n');
 * list.match(parseIp('192.0.2.9')!, undefined)  // 'inline:2: 192.0.2'
 * list.match(parseIp('198.51.100.1')!, 'smtp.example.net')  // 'inline:1: example.net'
 */
export class ClientWhitelist {
  private readonly names = new Map<string, string>();
  private readonly networks: Array<{ network: IpNetwork; origin: string }> = [];
  private readonly regexes: Array<{ regex: RegExp; origin: string }> = [];

  /** Entries kept. */
  get size(): number {
    return this.names.size + this.networks.length + this.regexes.length;
  }

  /** Whether some entry matches by name, so that the client's name is worth looking up. */
  get needsName(): boolean {
    return this.names.size > 0 || this.regexes.length > 0;
  }

  /**
   * Parse a file's text; `source` names it in problems and matches.
   *
   * @example
   * ClientWhitelist.parse('192.0.2.0/33\n', '/etc/mailgate/whitelist_clients').problems[0].problem
   * // 'bad network'
   */
  static parse(text: string, source = 'inline'): Parsed<ClientWhitelist> {
    const list = new ClientWhitelist();
    return { list, problems: parseEntries(text, source, (entry, where) => list.add(entry, where)) };
  }

  /** Adds one entry; returns a problem word when it is not one. */
  private add(entry: string, where: string): string | null {
    if (isRegexLine(entry)) {
      const regex = compileRegex(entry);
      if (typeof regex === 'string') return regex;
      this.regexes.push({ regex, origin: where });
      return null;
    }
    if (entry.includes('/')) {
      const network = parseNetwork(entry);
      if (!network) return 'bad network';
      this.networks.push({ network: canonicalNetwork(network), origin: where });
      return null;
    }
    const ip = parseIp(entry);
    if (ip) {
      const address = unmapIpv4(ip);
      this.networks.push({
        network: { network: address, prefix: address.family === 4 ? 32 : 128 },
        origin: where,
      });
      return null;
    }
    const partial = PARTIAL_IPV4.exec(entry);
    if (partial) {
      const octets = partial.slice(1).filter((o): o is string => o !== undefined);
      if (octets.some((o) => Number(o) > 255)) return 'bad address';
      const bytes = new Uint8Array(4);
      octets.forEach((o, i) => {
        bytes[i] = Number(o);
      });
      this.networks.push({
        network: { network: { family: 4, bytes }, prefix: octets.length * 8 },
        origin: where,
      });
      return null;
    }
    let host = entry.toLowerCase();
    // Postfix's `.example.com` spelling means the same here: the domain and what is under it.
    if (host.startsWith('.')) host = host.slice(1);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host.length > MAX_NAME_LENGTH || !HOST_NAME.test(host)) {
      return 'not a host name, address, network or /regex/';
    }
    if (!this.names.has(host)) this.names.set(host, where);
    return null;
  }

  /**
   * The entry that whitelists the client, as `source:line: entry`, or null. `name` is the
   * client's verified reverse name; names and regular expressions are not tried without one.
   */
  match(ip: IpAddress, name: string | undefined): string | null {
    const address = unmapIpv4(ip);
    for (const n of this.networks) {
      if (inPrefix(address, n.network.network, n.network.prefix)) return n.origin;
    }
    if (name === undefined || name === '') return null;
    const host = comparableHost(name);
    for (let suffix = host; ; ) {
      const hit = this.names.get(suffix);
      if (hit) return hit;
      const dot = suffix.indexOf('.');
      if (dot < 0) break;
      suffix = suffix.slice(dot + 1);
    }
    for (const r of this.regexes) if (r.regex.test(host)) return r.origin;
    return null;
  }
}

/** The network with its host bits cleared, so that matching compares only the prefix. */
function canonicalNetwork(n: IpNetwork): IpNetwork {
  const address = unmapIpv4(n.network);
  // A mapped network (::ffff:192.0.2.0/120) becomes its IPv4 form.
  const prefix =
    address.family === 4 && n.network.family === 6 ? Math.max(0, n.prefix - 96) : n.prefix;
  return { network: networkOf(address, prefix), prefix };
}

/**
 * Recipients that are never greylisted. Lines (postgrey's syntax):
 * - `postmaster@`: that local part at any domain;
 * - `jo@example.com`: that address;
 * - `example.com` or `@example.com`: every address at that domain and at the domains under it;
 * - `/regex/`: matched, case-insensitively, against the recipient address (lower case, at most
 *   254 characters).
 * Addresses are compared as given (lower case) and without their `+extension` and BATV tag, so
 * `jo@example.com` also covers `jo+news@example.com`.
 *
 * @example
 * const { list } = RecipientWhitelist.parse('abuse@\nexample.org\n');
 * list.match('abuse@example.net')     // 'inline:1: abuse@'
 * list.match('jo@lists.example.org')  // 'inline:2: example.org'
 */
export class RecipientWhitelist {
  private readonly locals = new Map<string, string>();
  private readonly addresses = new Map<string, string>();
  private readonly domains = new Map<string, string>();
  private readonly regexes: Array<{ regex: RegExp; origin: string }> = [];

  /** Entries kept. */
  get size(): number {
    return this.locals.size + this.addresses.size + this.domains.size + this.regexes.length;
  }

  /**
   * Parse a file's text; `source` names it in problems and matches.
   *
   * @example
   * RecipientWhitelist.parse('/[/\n', 'wl').problems[0].problem  // 'bad regular expression'
   */
  static parse(text: string, source = 'inline'): Parsed<RecipientWhitelist> {
    const list = new RecipientWhitelist();
    return { list, problems: parseEntries(text, source, (entry, where) => list.add(entry, where)) };
  }

  private add(entry: string, where: string): string | null {
    if (isRegexLine(entry)) {
      const regex = compileRegex(entry);
      if (typeof regex === 'string') return regex;
      this.regexes.push({ regex, origin: where });
      return null;
    }
    if (/\s/.test(entry)) return 'not an address, local part@, domain or /regex/';
    const lower = entry.toLowerCase();
    const at = lower.lastIndexOf('@');
    if (at > 0 && at === lower.length - 1) {
      setOnce(this.locals, lower.slice(0, -1), where);
      return null;
    }
    const domain = comparableHost(at < 0 ? lower : lower.slice(at + 1));
    if (!HOST_NAME.test(domain)) return 'bad domain';
    if (at <= 0) setOnce(this.domains, domain, where);
    else setOnce(this.addresses, `${lower.slice(0, at)}@${domain}`, where);
    return null;
  }

  /**
   * The entry that whitelists the recipient, as `source:line: entry`, or null. `recipient` is the
   * address as the client gave it; it is compared lower case and also in normalised form.
   */
  match(recipient: string): string | null {
    let given = recipient.trim();
    if (given.startsWith('<') && given.endsWith('>')) given = given.slice(1, -1);
    given = escapeForLog(given.slice(0, MAX_ADDRESS_LENGTH * 4).toLowerCase()).slice(
      0,
      MAX_ADDRESS_LENGTH,
    );
    const normal = normaliseAddress(recipient);
    for (const address of given === normal ? [given] : [given, normal]) {
      const at = address.lastIndexOf('@');
      const hit =
        this.addresses.get(address) ??
        (at > 0 ? this.locals.get(address.slice(0, at)) : this.locals.get(address));
      if (hit) return hit;
    }
    const domain = comparableHost(normal.slice(normal.lastIndexOf('@') + 1));
    if (normal.includes('@') && domain !== '') {
      for (let suffix = domain; ; ) {
        const hit = this.domains.get(suffix);
        if (hit) return hit;
        const dot = suffix.indexOf('.');
        if (dot < 0) break;
        suffix = suffix.slice(dot + 1);
      }
    }
    for (const r of this.regexes) if (r.regex.test(given)) return r.origin;
    return null;
  }
}

function setOnce(map: Map<string, string>, key: string, value: string): void {
  if (!map.has(key)) map.set(key, value);
}
