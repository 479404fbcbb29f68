// Shared by the DKIM tests: key pairs as records, a DNS fixture and resolver, and signatures
// made by hand from the primitives, for what our signer refuses to write (rsa-sha1, short
// keys, odd tags).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  BodyHasher,
  type Canonicalization,
  canonicalizeHeader,
  canonicalizeSignatureField,
  type SigningAlgorithm,
  selectSignedFields,
  signData,
} from '../../../src/checks/dkim/index.js';
import {
  fieldFromText,
  formatMessage,
  type HeaderField,
  parseMessage,
} from '../../../src/checks/message/index.js';

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** p= of the key record. */
  p: string;
}

/** A fresh key pair with its p= value. */
export function testKey(type: 'rsa' | 'ed25519', bits = 1024): TestKey {
  if (type === 'ed25519') {
    const pair = generateKeyPairSync('ed25519');
    const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
    return { ...pair, p: spki.subarray(spki.length - 32).toString('base64') };
  }
  const pair = generateKeyPairSync('rsa', { modulusLength: bits });
  return { ...pair, p: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
}

export const crlf = (text: string): Buffer => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');

export const MESSAGE = crlf(`From: Jo Example <jo@example.com>
To: Sam <sam@example.org>
Subject: Lunch on   Friday?
Date: Fri, 5 Jan 2024 10:00:00 +0000
Message-ID: <lunch.1@example.com>

Shall we meet at noon?\t
The usual place.

`);

export interface HandSignature {
  algorithm: SigningAlgorithm;
  key: KeyObject;
  domain?: string;
  selector: string;
  canonicalization?: `${Canonicalization}/${Canonicalization}`;
  headers?: string[];
  /** Tags written before h=, bh= and b= (e.g. `t=...; x=...;`). */
  extra?: string;
  /** The b= value to write instead of the real one. */
  forgedB?: string;
}

/** A message signed from the primitives alone, the DKIM-Signature put on top. */
export function handSign(message: Buffer, options: HandSignature): Buffer {
  const { headers, body } = parseMessage(message);
  const [headerHow, bodyHow] = (options.canonicalization ?? 'relaxed/relaxed').split('/') as [
    Canonicalization,
    Canonicalization,
  ];
  const hasher = new BodyHasher(bodyHow, options.algorithm === 'rsa-sha1' ? 'sha1' : 'sha256');
  hasher.update(body);
  const bh = hasher.digest().hash.toString('base64');
  const names = options.headers ?? ['from', 'to', 'subject', 'date'];
  const head =
    `DKIM-Signature: v=1; a=${options.algorithm}; c=${options.canonicalization ?? 'relaxed/relaxed'};` +
    ` d=${options.domain ?? 'example.com'}; s=${options.selector}; ${options.extra ?? ''}` +
    `\r\n h=${names.join(':')}; bh=${bh};\r\n b=`;
  const data = Buffer.concat([
    ...selectSignedFields(headers, names).map((f) => canonicalizeHeader(f, headerHow)),
    canonicalizeSignatureField(fieldFromText(head), headerHow),
  ]);
  const b = options.forgedB ?? signData(options.algorithm, options.key, data).toString('base64');
  return formatMessage([fieldFromText(head + b), ...headers], body);
}

/** The message with `field` put on top. */
export function withField(message: Buffer, field: HeaderField | string): Buffer {
  const { headers, body } = parseMessage(message);
  const top = typeof field === 'string' ? fieldFromText(field) : field;
  return formatMessage([top, ...headers], body);
}

/** `message` with its header and body edited as text (latin1, byte for byte). */
export function edit(message: Buffer, change: (text: string) => string): Buffer {
  return Buffer.from(change(message.toString('latin1')), 'latin1');
}
