/**
 * Listen specs as MTAs write them (`inet:PORT@HOST`, `inet6:PORT@HOST`, `unix:/path`,
 * `local:/path`): parsing with errors that name the problem, and formatting back.
 */
import { isIP } from 'node:net';

/** A parsed listen spec. */
export type ListenSpec =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'inet6'; host: string; port: number }
  | { kind: 'unix'; path: string };

/** A listen spec that cannot be used; the message says what is wrong with it. */
export class ListenSpecError extends Error {
  override name = 'ListenSpecError';
}

/**
 * The host an `inet:PORT` spec without `@HOST` listens on. Sendmail takes a missing host as
 * "all interfaces"; we take loopback, because a milter or policy port open to the network lets
 * anyone drive the policy engine. Listening everywhere must be asked for: `inet:8891@0.0.0.0`.
 */
export const DEFAULT_INET_HOST = '127.0.0.1';
/** The host of an `inet6:PORT` spec without `@HOST` (loopback, as for inet). */
export const DEFAULT_INET6_HOST = '::1';

// sun_path is 108 bytes on Linux (104 on the BSDs), including the terminating NUL.
const MAX_UNIX_PATH_BYTES = 107;
// A host name as a resolver would accept it: letters, digits, hyphens, dots.
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const EXAMPLES = 'e.g. inet:8891@127.0.0.1, inet6:8891@::1 or unix:/run/mailgate/milter.sock';

/**
 * Parse a listen spec. A missing host means loopback (see `DEFAULT_INET_HOST`); an IPv6 host may
 * be written with or without brackets; `local:` is a synonym of `unix:`.
 *
 * @example
 * parseListenSpec('inet:8891@0.0.0.0')   // { kind: 'inet', host: '0.0.0.0', port: 8891 }
 * parseListenSpec('inet:8891')           // { kind: 'inet', host: '127.0.0.1', port: 8891 }
 * parseListenSpec('inet6:8891@[::1]')    // { kind: 'inet6', host: '::1', port: 8891 }
 * parseListenSpec('unix:/run/m.sock')    // { kind: 'unix', path: '/run/m.sock' }
 */
export function parseListenSpec(spec: string): ListenSpec {
  const fail = (problem: string): never => {
    throw new ListenSpecError(`listen spec ${JSON.stringify(spec)}: ${problem}`);
  };
  if (typeof spec !== 'string' || spec.length === 0)
    fail(`empty; expected TYPE:ADDRESS, ${EXAMPLES}`);
  const colon = spec.indexOf(':');
  if (colon < 0) fail(`no "TYPE:" prefix; expected TYPE:ADDRESS, ${EXAMPLES}`);
  const type = spec.slice(0, colon).toLowerCase();
  const rest = spec.slice(colon + 1);
  if (type === 'unix' || type === 'local') {
    if (rest.length === 0) fail('the socket path is empty');
    if (rest.includes('\0')) fail('the socket path contains a NUL byte');
    if (Buffer.byteLength(rest) > MAX_UNIX_PATH_BYTES) {
      fail(
        `the socket path is longer than ${MAX_UNIX_PATH_BYTES} bytes, the limit of unix sockets`,
      );
    }
    return { kind: 'unix', path: rest };
  }
  if (type !== 'inet' && type !== 'inet6') {
    return fail(`unknown type "${type}"; expected inet, inet6, unix or local`);
  }
  const at = rest.indexOf('@');
  const portText = at < 0 ? rest : rest.slice(0, at);
  let host = at < 0 ? undefined : rest.slice(at + 1);
  if (portText.length === 0) fail('the port is missing; write PORT@HOST, e.g. 8891@127.0.0.1');
  if (!/^[0-9]{1,5}$/.test(portText)) fail(`the port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) fail(`the port ${port} is out of range (0-65535)`);
  if (host === undefined) {
    host = type === 'inet' ? DEFAULT_INET_HOST : DEFAULT_INET6_HOST;
  } else if (host.length === 0) {
    fail('the host after "@" is empty');
  }
  if (type === 'inet6' && host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const family = isIP(host);
  if (type === 'inet' && family === 6) fail(`"${host}" is an IPv6 address; use inet6:`);
  if (type === 'inet6' && family === 4) fail(`"${host}" is an IPv4 address; use inet:`);
  if (family === 0 && !HOST_NAME.test(host))
    fail(`the host "${host}" is not an address or host name`);
  return { kind: type, host, port };
}

/**
 * Write a spec back in MTA syntax (IPv6 hosts without brackets, as Sendmail writes them).
 *
 * @example
 * formatListenSpec({ kind: 'inet', host: '127.0.0.1', port: 8891 })  // 'inet:8891@127.0.0.1'
 */
export function formatListenSpec(spec: ListenSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}`;
  return `${spec.kind}:${spec.port}@${spec.host}`;
}
