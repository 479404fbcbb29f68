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
  // No host name is this long; nor is such text kept as a memo key.
  if (helo.length > MAX_NAME * 2) return NO_ID;
  const known = IDS.get(helo);
  if (known) return known;
  const found = findId(helo);
  // A memo of a pure function: a client gives the same HELO name for every message.
  if (IDS.size >= MAX_IDS) IDS.delete(IDS.keys().next().value!);
  IDS.set(helo, found);
  return found;
}

const MAX_IDS = 10_000;
const IDS = new Map<string, RegisteredId>();
const NO_ID: RegisteredId = Object.freeze({ ok: false });

function findId(helo: string): RegisteredId {
  let name = helo.endsWith('.') ? helo.slice(0, -1) : helo;
  if (name.length === 0 || name.length > MAX_NAME * 2) return NO_ID;
  if (/[\x00-\x20\x7f]/u.test(name)) return NO_ID;
  if (/[^\x21-\x7e]/u.test(name)) {
    const ascii = domainToASCII(name);
    if (!ascii) return NO_ID;
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length > MAX_NAME) return NO_ID;
  const labels = name.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return NO_ID;
  // An all-numeric top label is an address (or garbage), never a domain.
  if (/^\d+$/u.test(labels[labels.length - 1]!)) return NO_ID;
  const id = getDomain(name, {
    allowPrivateDomains: true,
    extractHostname: false,
    detectIp: false,
  });
  if (!id) return NO_ID;
  return Object.freeze({ ok: true, id, name });
}
