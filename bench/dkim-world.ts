/**
 * The DKIM benchmark's world: the messages every contender verifies, signed once by mailgate's
 * signDkim, and the DNS zone that publishes their keys and lets the milter transaction pass
 * SPF and DMARC.
 *
 * Each message has the same seven header fields (From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type) and a plain-text body of seeded words in lines of about 72
 * characters, cut to the size asked. It is signed with relaxed/relaxed, h= exactly From, To,
 * Subject, Date and Message-ID (nothing oversigned), once with an RSA-2048 key and once with an
 * ed25519 key, both freshly made at each run. The tampered copy of a message changes its
 * Subject, so that every verifier must say fail for the header signature (a changed body would
 * only be a body-hash mismatch, which verifiers name differently).
 *
 * @example
 * const world = buildDkimWorld([16 * 1024]);
 * world.messages[0]  // { size: 16384, keyType: 'rsa', signed: <Buffer ...>, tampered: ... }
 */

import {
  type DkimSigningKey,
  generateKeyPair,
  loadSigningKey,
  signDkim,
} from '../src/checks/dkim/index.js';
import type { ZoneData } from '../test/support/dns-server.js';
import { prng } from './common.js';

const SUFFIX = 'bench.example';
/** d= of every signature, the From domain and the MAIL FROM domain. */
export const SIGNER_DOMAIN = `signer.${SUFFIX}`;
/** The receiving host: mailgate's hostname and authserv-id, OpenDKIM's AuthservID. */
export const RECEIVER = `mx.${SUFFIX}`;
export const SENDER = `news@${SIGNER_DOMAIN}`;
export const RECIPIENT = `reader@ours.${SUFFIX}`;
/** The SMTP client of the milter transaction: its address, verified name and HELO. */
export const CLIENT = { ip: '192.0.2.25', hostname: `out1.${SIGNER_DOMAIN}` } as const;

export const KEY_TYPES = ['rsa', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** How the tables name a key type. */
export const KEY_LABEL: Readonly<Record<KeyType, string>> = {
  rsa: 'RSA-2048',
  ed25519: 'ed25519',
};

const SELECTOR: Readonly<Record<KeyType, string>> = { rsa: 'rsa2048', ed25519: 'ed25519' };

/** The fields h= names, in that order. */
export const SIGNED_FIELDS = ['From', 'To', 'Subject', 'Date', 'Message-ID'] as const;

export interface BenchMessage {
  /** Bytes of body asked for (the body is exactly this long). */
  size: number;
  keyType: KeyType;
  /** The message with its DKIM-Signature on top, CRLF line ends. */
  signed: Buffer;
  /** The same with another Subject: every verifier must say fail. */
  tampered: Buffer;
}

export interface DkimWorld {
  messages: BenchMessage[];
  /** `selector._domainkey.domain` → the key record, as DNS publishes it. */
  keyRecords: Record<string, string>;
  zone: ZoneData;
}

/**
 * A size setting as written: `1k`, `16k`, `1m`, or bytes.
 *
 * @example
 * parseSize('128k')  // 131072
 */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([km]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const value = Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1);
  return value > 0 ? value : undefined;
}

/**
 * A size as the tables print it.
 *
 * @example
 * sizeLabel(1048576)  // '1 MB'
 */
export function sizeLabel(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KB`;
  return `${bytes} B`;
}

const WORDS = [
  'the',
  'quarterly',
  'figures',
  'are',
  'attached',
  'as',
  'agreed',
  'please',
  'check',
  'totals',
  'before',
  'friday',
  'meeting',
  'budget',
  'forecast',
  'revenue',
  'of',
  'and',
  'for',
  'regional',
  'office',
  'shipment',
  'invoice',
  'numbers',
  'were',
  'revised',
  'after',
  'review',
];

/** Text lines of at most 72 characters (CRLF), exactly `size` bytes (at least 8), ending in CRLF. */
function bodyOf(size: number, seed: number): Buffer {
  const random = prng(seed);
  const words = () => {
    let line = '';
    for (;;) {
      const word = WORDS[Math.floor(random() * WORDS.length)]!;
      if (line.length + word.length + 1 > 72) return line;
      line = line ? `${line} ${word}` : word;
    }
  };
  const lines: string[] = [];
  let left = size;
  // A line takes at most 74 bytes, so more than 6 are left for the last one.
  while (left > 80) {
    const line = words();
    lines.push(line);
    left -= line.length + 2;
  }
  let last = '';
  while (last.length < left - 2) last += `${words()} `;
  last = last.slice(0, left - 2);
  // No trailing space: the canonical body is then the body itself, so the size is what is hashed.
  if (last.endsWith(' ')) last = `${last.slice(0, -1)}.`;
  lines.push(last);
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
}

function unsignedMessage(size: number, keyType: KeyType): Buffer {
  const header = [
    `From: Bench Newsletter <${SENDER}>`,
    `To: <${RECIPIENT}>`,
    `Subject: Quarterly figures (${sizeLabel(size)}, ${KEY_LABEL[keyType]})`,
    'Date: Mon, 1 Jan 2024 11:59:58 +0000',
    `Message-ID: <${size}.${keyType}.bench@${SIGNER_DOMAIN}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ];
  return Buffer.concat([Buffer.from(`${header.join('\r\n')}\r\n\r\n`), bodyOf(size, size)]);
}

/** The signed message with its Subject changed (the same length, so nothing else moves). */
function tamperedCopy(signed: Buffer): Buffer {
  const copy = Buffer.from(signed);
  const at = copy.indexOf('\r\nSubject: Quarterly');
  if (at < 0) throw new Error('bench:dkim: no Subject to tamper with');
  copy.write('q', at + '\r\nSubject: '.length, 'latin1');
  return copy;
}

/**
 * Keys, the messages (every size with every key type) and the zone.
 *
 * @example
 * const { messages, zone } = buildDkimWorld([1024, 16384]);
 */
export function buildDkimWorld(sizes: readonly number[]): DkimWorld {
  const keys = new Map<KeyType, DkimSigningKey>();
  const keyRecords: Record<string, string> = {};
  for (const type of KEY_TYPES) {
    const pair = generateKeyPair(type, 2048);
    keys.set(type, loadSigningKey(SIGNER_DOMAIN, SELECTOR[type], pair.privateKeyPem));
    keyRecords[`${SELECTOR[type]}._domainkey.${SIGNER_DOMAIN}`] = pair.publicKeyRecord;
  }
  const messages: BenchMessage[] = [];
  for (const size of sizes) {
    for (const keyType of KEY_TYPES) {
      const signed = signDkim(unsignedMessage(size, keyType), keys.get(keyType)!, {
        canonicalization: 'relaxed/relaxed',
        headers: SIGNED_FIELDS,
        oversign: [],
      });
      messages.push({ size, keyType, signed, tampered: tamperedCopy(signed) });
    }
  }

  const zone: ZoneData = {};
  const add = (name: string, ...entries: unknown[]) => {
    zone[name] = [...(zone[name] ?? []), ...entries];
  };
  for (const [name, record] of Object.entries(keyRecords)) add(name, { TXT: record });
  // What the milter transaction needs besides the keys: SPF (which mailgate's milter always
  // checks) passing for the client, a verified PTR, a HELO that resolves, and a DMARC record.
  add(SIGNER_DOMAIN, { TXT: `v=spf1 ip4:${CLIENT.ip} -all` }, { MX: [10, `mx.${SIGNER_DOMAIN}`] });
  add(`mx.${SIGNER_DOMAIN}`, { A: '192.0.2.30' });
  add(CLIENT.hostname, { A: CLIENT.ip }, { TXT: `v=spf1 ip4:${CLIENT.ip} -all` });
  add(`${CLIENT.ip.split('.').reverse().join('.')}.in-addr.arpa`, { PTR: CLIENT.hostname });
  add(`_dmarc.${SIGNER_DOMAIN}`, { TXT: 'v=DMARC1; p=reject; adkim=r; aspf=r' });
  return { messages, keyRecords, zone };
}

/** The key record for a message's signature. */
export function keyNameOf(keyType: KeyType): string {
  return `${SELECTOR[keyType]}._domainkey.${SIGNER_DOMAIN}`;
}
