/**
 * DKIM signing (RFC 6376 section 5, RFC 8463): a DKIM-Signature for a message whose body streams
 * through, from a key loaded once at start. Keys and options are ours, not the client's, so
 * mistakes in them are programming or configuration errors and throw; the message itself is
 * never a reason to throw.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Clock } from '../../dns/types.js';
import { systemClock } from '../budget.js';
import { fieldFromText, formatMessage, type HeaderField, parseMessage } from '../message/index.js';
import { BodyHasher } from './body-hash.js';
import { type Canonicalization, signedHeaderData } from './canonicalize.js';
import { hashOf, signData } from './crypto.js';
import { isDnsName } from './key.js';

/** A private key and where its public half is published. */
export interface DkimSigningKey {
  domain: string;
  selector: string;
  privateKey: KeyObject;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
}

export type CanonicalizationPair =
  | 'relaxed/relaxed'
  | 'relaxed/simple'
  | 'simple/relaxed'
  | 'simple/simple';

export interface DkimSigningOptions {
  /** Header fields to sign when present (default DEFAULT_SIGNED_HEADERS); From always is. */
  headers?: readonly string[];
  /** Fields named once more in h= than present, so none can be added (default DEFAULT_OVERSIGNED_HEADERS). */
  oversign?: readonly string[];
  /** Default relaxed/relaxed. */
  canonicalization?: CanonicalizationPair;
  /** t=, seconds; default the clock's time. */
  timestamp?: number;
  /** Seconds after t= when the signature expires (x=); none by default. */
  expiresAfter?: number;
  /** i=: an address or `@domain` in the key's domain or below it. */
  identity?: string;
  /** Write l= with the length of the whole canonical body. */
  bodyLength?: boolean;
  clock?: Clock;
}

/** The fields RFC 6376 section 5.4.1 suggests signing, and the MIME fields. */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = Object.freeze([
  'From',
  'Sender',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'Cc',
  'In-Reply-To',
  'References',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'Content-ID',
  'Content-Description',
  'Resent-Date',
  'Resent-From',
  'Resent-Sender',
  'Resent-To',
  'Resent-Cc',
  'Resent-Message-ID',
  'List-Id',
  'List-Help',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'List-Subscribe',
  'List-Post',
  'List-Owner',
  'List-Archive',
]);

/** The fields whose addition after signing would change what a reader sees first. */
export const DEFAULT_OVERSIGNED_HEADERS: readonly string[] = Object.freeze([
  'From',
  'Reply-To',
  'Subject',
  'Date',
  'To',
  'Cc',
  'Message-ID',
]);

/** Longest line of the field we write, without its CRLF (RFC 5322 section 2.1.1). */
const LINE_MAX = 78;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
const IDENTITY = /^[\x21-\x3a\x3c-\x7e]*@[A-Za-z0-9_.-]+$/;
const CANONICALIZATIONS = new Set<string>([
  'relaxed/relaxed',
  'relaxed/simple',
  'simple/relaxed',
  'simple/simple',
]);

/**
 * A signing key from a PEM file: RSA (PKCS#8 or PKCS#1) or Ed25519 (PKCS#8). Throws an Error
 * saying what is wrong with the file or the names.
 *
 * @example
 * const key = loadSigningKey('example.com', 'mail2024', readFileSync('/etc/mailgate/dkim.pem', 'utf8'));
 * key.algorithm  // 'rsa-sha256'
 */
export function loadSigningKey(domain: string, selector: string, pemText: string): DkimSigningKey {
  const where = `${selector}._domainkey.${domain}`;
  if (!isDnsName(domain) || !domain.includes('.')) {
    throw new Error(`DKIM signing domain is not a domain name: ${JSON.stringify(domain)}`);
  }
  if (!isDnsName(selector)) {
    throw new Error(`DKIM selector is not a DNS label list: ${JSON.stringify(selector)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pemText, format: 'pem' });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`DKIM key for ${where} is not a readable PEM private key: ${why}`);
  }
  if (privateKey.asymmetricKeyType === 'ed25519') {
    return { domain: domain.toLowerCase(), selector, privateKey, algorithm: 'ed25519-sha256' };
  }
  if (privateKey.asymmetricKeyType === 'rsa') {
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 1024) {
      throw new Error(`DKIM key for ${where} has ${bits} bits; RFC 8301 requires at least 1024`);
    }
    return { domain: domain.toLowerCase(), selector, privateKey, algorithm: 'rsa-sha256' };
  }
  throw new Error(
    `DKIM key for ${where} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; only RSA and Ed25519 sign`,
  );
}

/**
 * A new key pair: the private key as PKCS#8 PEM, and the TXT record to publish at
 * `<selector>._domainkey.<domain>`.
 *
 * @example
 * const { privateKeyPem, publicKeyRecord } = generateKeyPair('ed25519');
 * publicKeyRecord  // 'v=DKIM1; k=ed25519; p=...'
 */
export function generateKeyPair(
  type: 'rsa' | 'ed25519',
  bits = 2048,
): { privateKeyPem: string; publicKeyRecord: string } {
  if (type === 'ed25519') {
    const pair = generateKeyPairSync('ed25519', {
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    // The record holds the 32 key bytes bare (RFC 8463 section 4.2), after the SPKI prefix.
    const raw = pair.publicKey.subarray(pair.publicKey.length - 32);
    return {
      privateKeyPem: pair.privateKey,
      publicKeyRecord: `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`,
    };
  }
  const pair = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    privateKeyPem: pair.privateKey,
    publicKeyRecord: `v=DKIM1; k=rsa; p=${pair.publicKey.toString('base64')}`,
  };
}

/**
 * The DKIM signing of one message: headers at once, body in chunks, the signature field at
 * the end.
 *
 * @example
 * const signing = new DkimSigning(headers, key);
 * signing.update(body);
 * const field = signing.finish();  // put on top of the message
 * field.raw.toString()  // 'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; ...'
 */
export class DkimSigning {
  private readonly body: BodyHasher;
  private readonly headerHow: Canonicalization;
  private readonly canonicalization: CanonicalizationPair;
  private readonly signedNames: string[];
  private readonly timestamp: number;
  private readonly expiration: number | undefined;
  private readonly identity: string | undefined;
  private readonly withLength: boolean;
  private field: HeaderField | undefined;

  constructor(
    private readonly headers: readonly HeaderField[],
    private readonly key: DkimSigningKey,
    options: DkimSigningOptions = {},
  ) {
    this.canonicalization = options.canonicalization ?? 'relaxed/relaxed';
    if (!CANONICALIZATIONS.has(this.canonicalization)) {
      throw new TypeError(`unknown DKIM canonicalization ${JSON.stringify(this.canonicalization)}`);
    }
    const [header, body] = this.canonicalization.split('/') as [Canonicalization, Canonicalization];
    this.headerHow = header;
    this.body = new BodyHasher(body, hashOf(key.algorithm));
    const clock = options.clock ?? systemClock;
    this.timestamp = options.timestamp ?? Math.floor(clock.now() / 1000);
    if (!Number.isSafeInteger(this.timestamp) || this.timestamp < 0) {
      throw new TypeError(`DKIM timestamp must be whole seconds, got ${this.timestamp}`);
    }
    if (options.expiresAfter !== undefined) {
      if (!Number.isSafeInteger(options.expiresAfter) || options.expiresAfter <= 0) {
        throw new TypeError(`DKIM expiresAfter must be whole seconds above 0`);
      }
      this.expiration = this.timestamp + options.expiresAfter;
    }
    if (options.identity !== undefined) {
      this.identity = checkedIdentity(options.identity, key.domain);
    }
    this.withLength = options.bodyLength === true;
    this.signedNames = signedNames(
      headers,
      options.headers ?? DEFAULT_SIGNED_HEADERS,
      options.oversign ?? DEFAULT_OVERSIGNED_HEADERS,
    );
  }

  /** A chunk of the body (CRLF line ends), split anywhere. */
  update(chunk: Buffer): void {
    this.body.update(chunk);
  }

  /**
   * The DKIM-Signature field to put on top of the message, folded at 78 columns with CRLF and
   * a tab, b= last. The same field on every call.
   */
  finish(): HeaderField {
    if (this.field) return this.field;
    const digest = this.body.digest();
    const folded = new FoldedText('DKIM-Signature:');
    folded.word('v=1;');
    folded.word(`a=${this.key.algorithm};`);
    folded.word(`c=${this.canonicalization};`);
    folded.word(`d=${this.key.domain};`);
    folded.word(`s=${this.key.selector};`);
    if (this.identity !== undefined) folded.word(`i=${this.identity};`);
    folded.word(`t=${this.timestamp};`);
    if (this.expiration !== undefined) folded.word(`x=${this.expiration};`);
    if (this.withLength) folded.word(`l=${digest.canonicalLength};`);
    this.signedNames.forEach((name, i) => {
      const last = i === this.signedNames.length - 1 ? ';' : '';
      if (i === 0) folded.word(`h=${name}${last}`);
      else folded.glue(`:${name}${last}`);
    });
    folded.word(`bh=${digest.hash.toString('base64')};`);
    folded.word('b=');
    // What is signed is the field as it will be, its b= value empty (RFC 6376 section 3.7).
    const unsigned = fieldFromText(folded.text());
    const data = signedHeaderData(this.headers, unsigned, this.signedNames, this.headerHow);
    const signature = signData(this.key.algorithm, this.key.privateKey, data);
    folded.spread(signature.toString('base64'));
    this.field = fieldFromText(folded.text());
    return this.field;
  }
}

/**
 * Sign a whole message: the message with its DKIM-Signature on top (line ends made CRLF).
 *
 * @example
 * const signed = signDkim(readFileSync('message.eml'), key, { expiresAfter: 7 * 86400 });
 */
export function signDkim(
  message: Buffer,
  key: DkimSigningKey,
  options?: DkimSigningOptions,
): Buffer {
  const { headers, body } = parseMessage(message);
  const signing = new DkimSigning(headers, key, options);
  signing.update(body);
  return formatMessage([signing.finish(), ...headers], body);
}

/**
 * h=: each configured name as many times as the message has it, then each oversigned name once
 * more, so that a verifier finds nothing to pick for it in a field added later.
 */
function signedNames(
  headers: readonly HeaderField[],
  names: readonly string[],
  oversign: readonly string[],
): string[] {
  const counts = new Map<string, number>();
  for (const field of headers) counts.set(field.key, (counts.get(field.key) ?? 0) + 1);
  const seen = new Set<string>();
  const list: string[] = [];
  for (const name of ['from', ...names]) {
    const key = checkedName(name);
    if (seen.has(key)) continue;
    seen.add(key);
    for (let n = counts.get(key) ?? 0; n > 0; n--) list.push(key);
  }
  const extra = new Set<string>();
  for (const name of oversign) {
    const key = checkedName(name);
    if (extra.has(key)) continue;
    extra.add(key);
    list.push(key);
  }
  return list;
}

function checkedName(name: string): string {
  if (!FIELD_NAME.test(name))
    throw new TypeError(`not a header field name: ${JSON.stringify(name)}`);
  return name.toLowerCase();
}

function checkedIdentity(identity: string, domain: string): string {
  if (!IDENTITY.test(identity))
    throw new TypeError(`DKIM identity is not an address: ${JSON.stringify(identity)}`);
  const host = identity.slice(identity.lastIndexOf('@') + 1).toLowerCase();
  if (host !== domain && !host.endsWith(`.${domain}`)) {
    throw new TypeError(`DKIM identity ${identity} is not in the signing domain ${domain}`);
  }
  return identity;
}

/** Text folded as it is written: pieces go on the line while it has room, else on the next. */
class FoldedText {
  private readonly lines: string[] = [];
  private line: string;

  constructor(start: string) {
    this.line = start;
  }

  /** An unbreakable piece after a space. */
  word(piece: string): void {
    if (this.line.length + 1 + piece.length <= LINE_MAX) this.line += ` ${piece}`;
    else this.newLine(piece);
  }

  /** An unbreakable piece with no space before it where the line has room. */
  glue(piece: string): void {
    if (this.line.length + piece.length <= LINE_MAX) this.line += piece;
    else this.newLine(piece);
  }

  /** A piece that may break anywhere (base64 allows folding whitespace between characters). */
  spread(text: string): void {
    let rest = text;
    while (rest.length > 0) {
      const room = LINE_MAX - this.line.length;
      if (room <= 0) {
        this.newLine('');
        continue;
      }
      this.line += rest.slice(0, room);
      rest = rest.slice(room);
    }
  }

  text(): string {
    return [...this.lines, this.line].join('\r\n');
  }

  private newLine(piece: string): void {
    this.lines.push(this.line);
    this.line = `\t${piece}`;
  }
}
