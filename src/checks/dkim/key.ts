/**
 * DKIM key records (RFC 6376 section 3.6.1, RFC 8463): parsing the TXT record at
 * `<selector>._domainkey.<domain>` into a public key and the restrictions it puts on
 * signatures, and fetching it through the check's DNS budget.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { BudgetedQueries } from '../budget.js';
import { decodeBase64Tag, parseTagList, splitColonList } from './tags.js';

export interface DkimKey {
  keyType: 'rsa' | 'ed25519';
  publicKey: KeyObject;
  /** RSA modulus bits (256 for ed25519). */
  bits: number;
  /** h= of the key record (lowercased), or undefined: any hash. */
  hashes?: readonly string[];
  /** s= service types (lowercased); '*' or 'email' allow email. */
  services: readonly string[];
  /** t=y: the domain is testing DKIM. */
  testing: boolean;
  /** t=s: the i= domain must be d= itself, not a subdomain. */
  strict: boolean;
}

export type KeyLookup =
  | { kind: 'key'; key: DkimKey }
  | { kind: 'temperror'; reason: string }
  | { kind: 'permerror'; reason: string };

export type KeyRecordParse =
  | { ok: true; key: DkimKey }
  | { ok: false; reason: string; revoked?: boolean };

/** Longest key record read; an 8192-bit RSA key takes about 1500 characters. */
export const MAX_KEY_RECORD = 8192;

/**
 * Parse one key record (the TXT strings already joined). An empty p= is a revoked key
 * (`revoked: true`); an unknown k=, a v= other than DKIM1 or a p= that is no key of its type
 * fail with the reason.
 *
 * @example
 * parseKeyRecord('v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=')
 * // { ok: true, key: { keyType: 'ed25519', bits: 256, services: ['*'], testing: false, ... } }
 * parseKeyRecord('v=DKIM1; p=')  // { ok: false, reason: 'key revoked (empty p=)', revoked: true }
 */
export function parseKeyRecord(text: string): KeyRecordParse {
  if (text.length > MAX_KEY_RECORD) {
    return { ok: false, reason: `key record longer than ${MAX_KEY_RECORD} characters` };
  }
  const parsed = parseTagList(text);
  if (!parsed.ok) return { ok: false, reason: `bad key record: ${parsed.reason}` };
  const tags = parsed.tags;
  const version = tags.get('v');
  if (version !== undefined) {
    if (version !== 'DKIM1') return { ok: false, reason: 'key record v= is not DKIM1' };
    if (tags.keys().next().value !== 'v') {
      return { ok: false, reason: 'key record v= is not the first tag' };
    }
  }
  const keyTypeText = (tags.get('k') ?? 'rsa').toLowerCase();
  if (keyTypeText !== 'rsa' && keyTypeText !== 'ed25519') {
    return { ok: false, reason: `unknown key type k=${shown(keyTypeText)}` };
  }
  const keyType = keyTypeText;
  const p = tags.get('p');
  if (p === undefined) return { ok: false, reason: 'key record has no p=' };
  const der = decodeBase64Tag(p);
  if (der === null) return { ok: false, reason: 'key record p= is not base64' };
  if (der.length === 0) return { ok: false, reason: 'key revoked (empty p=)', revoked: true };
  const publicKey = keyObject(keyType, der);
  if (!publicKey) return { ok: false, reason: `key record p= is no ${keyType} public key` };
  const hashText = tags.get('h');
  const flags = splitColonList((tags.get('t') ?? '').toLowerCase());
  const key: DkimKey = {
    keyType,
    publicKey,
    bits: keyType === 'rsa' ? rsaBits(der, publicKey) : 256,
    services: Object.freeze(splitColonList((tags.get('s') ?? '*').toLowerCase())),
    testing: flags.includes('y'),
    strict: flags.includes('s'),
  };
  if (hashText !== undefined) key.hashes = Object.freeze(splitColonList(hashText.toLowerCase()));
  return { ok: true, key: Object.freeze(key) };
}

/**
 * The public key in p=: SubjectPublicKeyInfo or a bare RSAPublicKey for RSA, the 32 raw key
 * bytes for Ed25519. OpenSSL's SubjectPublicKeyInfo decoder costs several RSA verifications, so
 * the RSA key inside it is taken out here and given to the much cheaper PKCS#1 decoder, and
 * Ed25519 keys go in as JWK; anything unusual still gets the full decoder.
 */
function keyObject(keyType: 'rsa' | 'ed25519', der: Buffer): KeyObject | undefined {
  if (keyType === 'ed25519') {
    if (der.length !== 32) return undefined;
    return attempt(keyType, () =>
      createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: der.toString('base64url') },
        format: 'jwk',
      }),
    );
  }
  const inner = rsaKeyInSpki(der);
  return (
    (inner &&
      attempt(keyType, () => createPublicKey({ key: inner, format: 'der', type: 'pkcs1' }))) ??
    attempt(keyType, () => createPublicKey({ key: der, format: 'der', type: 'spki' })) ??
    attempt(keyType, () => createPublicKey({ key: der, format: 'der', type: 'pkcs1' }))
  );
}

function attempt(keyType: 'rsa' | 'ed25519', make: () => KeyObject): KeyObject | undefined {
  try {
    const key = make();
    return key.asymmetricKeyType === keyType ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The modulus size of an RSA key, read from its DER when it is the usual SubjectPublicKeyInfo
 * (asking the KeyObject costs a call into OpenSSL).
 */
function rsaBits(der: Buffer, key: KeyObject): number {
  const inner = rsaKeyInSpki(der) ?? der;
  const sequence = derElement(inner, 0, 0x30);
  const modulus = sequence && derElement(inner, sequence.start, 0x02);
  if (!modulus) return key.asymmetricKeyDetails?.modulusLength ?? 0;
  let start = modulus.start;
  while (start < modulus.end && inner[start] === 0) start++;
  if (start === modulus.end) return 0;
  return (modulus.end - start) * 8 - Math.clz32(inner[start]!) + 24;
}

// AlgorithmIdentifier of rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');

/**
 * The RSAPublicKey inside a SubjectPublicKeyInfo of rsaEncryption (RFC 5280 section 4.1,
 * RFC 8017 appendix A.1.1), or undefined when `der` is not exactly that.
 */
function rsaKeyInSpki(der: Buffer): Buffer | undefined {
  const outer = derElement(der, 0, 0x30);
  if (!outer || outer.end !== der.length) return undefined;
  const algorithm = der.subarray(outer.start, outer.start + RSA_ALGORITHM.length);
  if (!algorithm.equals(RSA_ALGORITHM)) return undefined;
  const bits = derElement(der, outer.start + RSA_ALGORITHM.length, 0x03);
  if (!bits || bits.end !== outer.end || der[bits.start] !== 0) return undefined;
  return der.subarray(bits.start + 1, bits.end);
}

/** A DER element of tag `tag` at `at`: where its content starts and ends. */
function derElement(
  der: Buffer,
  at: number,
  tag: number,
): { start: number; end: number } | undefined {
  if (der[at] !== tag || at + 1 >= der.length) return undefined;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || start + count > der.length) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  return end <= der.length ? { start, end } : undefined;
}

// sub-domain labels (RFC 6376 section 3.5 selectors and domains): letters, digits, hyphens,
// and the underscores some selectors carry.
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Whether `name` is a dot-separated list of DNS labels fit for a key lookup.
 *
 * @example
 * isDnsName('mail.example.com')  // true
 * isDnsName('a..b')              // false
 */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/**
 * Fetch and parse the key record of `selector` at `domain`: the TXT at
 * `<selector>._domainkey.<domain>`, its strings joined, exactly one record required.
 *
 * @example
 * await fetchKey('brisbane', 'example.com', dns)
 * // { kind: 'key', key: { keyType: 'rsa', bits: 1024, ... } }
 * await fetchKey('gone', 'example.com', dns)
 * // { kind: 'permerror', reason: 'no key record at gone._domainkey.example.com' }
 */
export async function fetchKey(
  selector: string,
  domain: string,
  dns: BudgetedQueries,
): Promise<KeyLookup> {
  const name = `${selector}._domainkey.${domain}`;
  if (!isDnsName(selector) || !isDnsName(domain) || name.length > 253) {
    return { kind: 'permerror', reason: `no valid key name: ${shown(name)}` };
  }
  if (dns.timeLeft() <= 0) return { kind: 'temperror', reason: 'DNS time budget spent' };
  let answer: Awaited<ReturnType<BudgetedQueries['query']>>;
  try {
    answer = await dns.query(name, 'TXT');
  } catch (error) {
    return { kind: 'temperror', reason: `key lookup failed: ${shown(String(error))}` };
  }
  switch (answer.kind) {
    case 'nxdomain':
    case 'nodata':
      return { kind: 'permerror', reason: `no key record at ${name}` };
    case 'temporary':
      return {
        kind: 'temperror',
        reason: `key lookup at ${name} failed: ${answer.reason === 'budget' || answer.reason === 'deadline' ? 'DNS time budget spent' : answer.reason}`,
      };
    case 'answer': {
      const records = answer.records.filter((r) => r.type === 'TXT');
      if (records.length === 0) return { kind: 'permerror', reason: `no key record at ${name}` };
      if (records.length > 1) {
        return { kind: 'permerror', reason: `${records.length} key records at ${name}` };
      }
      const parsed = parsedKeyRecord((records[0] as { strings: string[] }).strings.join(''));
      if (!parsed.ok) return { kind: 'permerror', reason: parsed.reason };
      return { kind: 'key', key: parsed.key };
    }
  }
}

/** Key records parsed lately, by their text: the same key signs message after message. */
const PARSED = new Map<string, ReturnType<typeof parseKeyRecord>>();
const PARSED_MAX = 256;
/** Longer records (no real key is) are parsed every time rather than kept. */
const PARSED_TEXT_MAX = 4096;

/**
 * parseKeyRecord, remembered for the most recent records: parsing the key and making its
 * KeyObject (and OpenSSL's set-up for it at the first verification) cost more than verifying a
 * small message. The answer depends on the text alone, so a cached one is the same answer.
 */
function parsedKeyRecord(text: string): ReturnType<typeof parseKeyRecord> {
  if (text.length > PARSED_TEXT_MAX) return parseKeyRecord(text);
  const known = PARSED.get(text);
  if (known) {
    // Most recently used last, so that the oldest goes first.
    PARSED.delete(text);
    PARSED.set(text, known);
    return known;
  }
  // Shared by every verification from now on: nobody may change it.
  const parsed = Object.freeze(parseKeyRecord(text));
  if (parsed.ok) Object.freeze(parsed.key);
  PARSED.set(text, parsed);
  if (PARSED.size > PARSED_MAX) PARSED.delete(PARSED.keys().next().value!);
  return parsed;
}

function shown(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 80 ? `${printable.slice(0, 77)}...` : printable;
}
