/**
 * Where queries go: server specs as people write them, and the system's /etc/resolv.conf.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { formatIp, parseIp } from './address.js';

/** A name server address. `host` is always an IP literal (a zone suffix `%if` may follow IPv6). */
export interface ServerAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/** The server used when nothing else is configured, as the C library does. */
export const DEFAULT_SERVER: ServerAddress = Object.freeze({
  host: '127.0.0.1',
  port: 53,
  family: 4,
});

/** glibc reads no more than three name servers (MAXNS); more lines are ignored there too. */
const MAX_RESOLV_CONF_SERVERS = 3;

/**
 * Parse a server spec: `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353`,
 * `[fe80::1%eth0]`. A bare IPv6 address has no port (its colons are ambiguous). Host names are
 * refused: the resolver checks that answers come from the exact address it asked, and it must
 * not need DNS to find its DNS server. Throws an Error naming the problem.
 *
 * @example
 * parseServerSpec('127.0.0.1:5353')  // { host: '127.0.0.1', port: 5353, family: 4 }
 * parseServerSpec('[::1]:53')        // { host: '::1', port: 53, family: 6 }
 */
export function parseServerSpec(spec: string, defaultPort = 53): ServerAddress {
  const text = spec.trim();
  let host = text;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (!isIPv6(text)) {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const address = canonicalHost(host);
  if (!address) {
    throw new Error(`DNS server "${spec}": not an IP address (write host:port or [v6]:port)`);
  }
  if (bracketed && address.family === 4) {
    throw new Error(`DNS server "${spec}": brackets are only for IPv6 addresses`);
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new Error(`DNS server "${spec}": port must be a number from 1 to 65535`);
    }
  }
  return { ...address, port };
}

/**
 * An IP literal in the form the system reports addresses (compressed IPv6, zone kept), so that a
 * reply's source can be compared with the server as text; null when it is not an IP literal.
 */
function canonicalHost(text: string): { host: string; family: 4 | 6 } | null {
  const percent = text.indexOf('%');
  const bare = percent < 0 ? text : text.slice(0, percent);
  const zone = percent < 0 ? '' : text.slice(percent);
  if (isIPv4(text)) return { host: text, family: 4 };
  if (!isIPv6(bare) || zone === '%') return null;
  const ip = parseIp(bare);
  return ip ? { host: formatIp(ip) + zone, family: 6 } : null;
}

/**
 * The servers named by `nameserver` lines in resolv.conf text, in order, at most three.
 * Unusable entries are skipped rather than fatal: the file belongs to the system, not to us.
 *
 * @example
 * parseResolvConf('nameserver 192.0.2.53\nnameserver fe80::1%eth0\n')
 * // [{ host: '192.0.2.53', port: 53, family: 4 }, { host: 'fe80::1%eth0', port: 53, family: 6 }]
 */
export function parseResolvConf(text: string): ServerAddress[] {
  const servers: ServerAddress[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (fields[0] !== 'nameserver' || fields[1] === undefined) continue;
    // Only a bare address is valid here; a port or brackets would be another resolver's syntax.
    const address = canonicalHost(fields[1]);
    if (address) servers.push({ ...address, port: 53 });
    if (servers.length === MAX_RESOLV_CONF_SERVERS) break;
  }
  return servers;
}

/**
 * The system's name servers from resolv.conf; `[127.0.0.1:53]` when the file is missing,
 * unreadable or names none (the C library's default).
 *
 * @example
 * const servers = readResolvConf();  // e.g. [{ host: '127.0.0.53', port: 53, family: 4 }]
 */
export function readResolvConf(path = '/etc/resolv.conf'): ServerAddress[] {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return [{ ...DEFAULT_SERVER }];
  }
  const servers = parseResolvConf(text);
  return servers.length > 0 ? servers : [{ ...DEFAULT_SERVER }];
}

/**
 * A server as a spec string that `parseServerSpec` reads back.
 *
 * @example
 * formatServer({ host: '::1', port: 5353, family: 6 })  // '[::1]:5353'
 */
export function formatServer(server: ServerAddress): string {
  return server.family === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
