/**
 * Keys, key records and messages for the ARC tests: real RSA and Ed25519 key pairs, their DKIM
 * key records for the fixture DNS server, and a small message to seal and forward.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { ArcSealKey } from '../../../src/checks/arc/index.js';
import { formatMessage, type HeaderField } from '../../../src/checks/message/index.js';

export interface TestKey {
  seal: ArcSealKey;
  /** The TXT record to publish at `<selector>._domainkey.<domain>`. */
  record: string;
  publicKey: KeyObject;
}

/**
 * A fresh key pair for `selector` at `domain`, with its key record.
 *
 * @example
 * const key = makeKey('ed25519', 's1', 'list.example');
 * zone['s1._domainkey.list.example'] = [{ TXT: key.record }];
 */
export function makeKey(
  type: 'rsa' | 'ed25519',
  selector: string,
  domain: string,
  bits = 1024,
): TestKey {
  if (type === 'rsa') {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    const p = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    return {
      seal: { domain, selector, privateKey, algorithm: 'rsa-sha256' },
      record: `v=DKIM1; k=rsa; p=${p}`,
      publicKey,
    };
  }
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // RFC 8463: p= is the bare 32-byte key, the end of its SubjectPublicKeyInfo.
  const p = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
  return {
    seal: { domain, selector, privateKey, algorithm: 'ed25519-sha256' },
    record: `v=DKIM1; k=ed25519; p=${p}`,
    publicKey,
  };
}

/** The zone publishing these keys. */
export function zoneOf(keys: readonly TestKey[]): Record<string, unknown[]> {
  const zone: Record<string, unknown[]> = {};
  for (const key of keys) {
    zone[`${key.seal.selector}._domainkey.${key.seal.domain}`] = [{ TXT: key.record }];
  }
  return zone;
}

/** A plain message as its author sent it. */
export const ORIGINAL = Buffer.from(
  [
    'From: Jo Writer <jo@author.example>',
    'To: list@list.example',
    'Subject: Minutes of the meeting',
    'Date: Mon, 7 Dec 2026 10:00:00 +0000',
    'Message-ID: <minutes-1@author.example>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'The minutes are attached in spirit.',
    '',
    '  -- Jo  ',
    '',
  ].join('\r\n'),
);

/** The message with the fields on top. */
export function withFieldsOnTop(
  fields: readonly HeaderField[],
  headers: readonly HeaderField[],
  body: Buffer,
): Buffer {
  return formatMessage([...fields, ...headers], body);
}
