/**
 * The registered ID a client claims: the registrable domain of its HELO name, by the public
 * suffix list, so that `mx1.example.co.uk` is `example.co.uk` (checkHelo.py took the last two
 * labels, and needed a registry hint for country codes).
 */
import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';

const MAX_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/u;

export type RegisteredId = { ok: true; id: string; name: string } | { ok: false };

/**
 * The ID of a HELO name, or `{ ok: false }` for what cannot be a sender's name: a single label,
 * an address literal or bare address, a public suffix, bad syntax.
 *
 * @example
 * registeredId('mailout17.heaven.net')  // { ok: true, id: 'heaven.net', name: 'mailout17.heaven.net' }
 * registeredId('JUPITER')               // { ok: false }
 * registeredId('[192.0.2.1]')           // { ok: false }
 */
export function registeredId(helo: string): RegisteredId {
  let name = helo.endsWith('.') ? helo.slice(0, -1) : helo;
  if (name.length === 0 || name.length > MAX_NAME * 2) return { ok: false };
  if (/[\x00-\x20\x7f]/u.test(name)) return { ok: false };
  if (/[^\x21-\x7e]/u.test(name)) {
    const ascii = domainToASCII(name);
    if (!ascii) return { ok: false };
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length > MAX_NAME) return { ok: false };
  const labels = name.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return { ok: false };
  // An all-numeric top label is an address (or garbage), never a domain.
  if (/^\d+$/u.test(labels[labels.length - 1]!)) return { ok: false };
  const id = getDomain(name, {
    allowPrivateDomains: true,
    extractHostname: false,
    detectIp: false,
  });
  if (!id) return { ok: false };
  return { ok: true, id, name };
}
