/**
 * ARC sealing (RFC 8617 section 5.1): a forwarder or list host adds the set of instance N+1, its
 * ARC-Authentication-Results (our Authentication-Results), an ARC-Message-Signature over the
 * message as it leaves us, and an ARC-Seal over the chain. The body is hashed as it streams.
 *
 * A chain whose newest seal already says cv=fail is over: no later hop seals it, and neither
 * does one that already holds 50 sets. An incoming chain that failed validation gets a seal that
 * says so, cv=fail, signing its own set alone (section 5.1.2: a failed chain has no order to
 * bind), which then ends it.
 */
import { systemClock } from '../budget.js';
import { BodyHasher } from '../dkim/body-hash.js';
import { signedHeaderData } from '../dkim/canonicalize.js';
import { keyTypeOf, signData } from '../dkim/crypto.js';
import { isDnsName } from '../dkim/key.js';
import { formatMessage, type HeaderField, parseMessage } from '../message/index.js';
import { readChain } from './chain.js';
import { tagListField, wordsField } from './fold.js';
import { type SetFields, sealData } from './signing-input.js';
import {
  ARC_MAX_INSTANCES,
  type ArcSealKey,
  type ArcSealOptions,
  type ChainValidation,
} from './types.js';

/**
 * The fields a new AMS signs when the caller names none: those that say who wrote the message,
 * to whom, what it is and how it is encoded, as RFC 6376 section 5.4.1 recommends. ARC-Seal is
 * never signed (RFC 8617 section 4.1.2); Authentication-Results are left out, as downstream hops
 * remove them.
 */
export const DEFAULT_SEALED_HEADERS: readonly string[] = Object.freeze([
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-id',
  'list-help',
  'list-unsubscribe',
  'list-subscribe',
  'list-post',
  'list-owner',
  'list-archive',
  'dkim-signature',
]);

const SHA256_BYTES = 32;
/** Longest Authentication-Results text sealed; ours are a few hundred characters. */
const MAX_AUTH_RESULTS = 8 * 1024;
// RFC 5322 field-name: printable ASCII but colon.
const FIELD_NAME = /^[!-9;-~]+$/;
// An authserv-id we write: a token without the characters that end one.
const AUTHSERV_ID = /^[!#-'*+\-./0-9A-Z^_`a-z{|}~]+$/;

/**
 * Sealing of one message, fed the header at construction and the body in chunks.
 *
 * @example
 * const sealing = new ArcSealing(headers, key, {
 *   authservId: 'mx.example.net', authResults: 'mx.example.net; spf=pass smtp.mailfrom=example.org',
 *   cv: arcResult.cv });
 * sealing.update(body);
 * const fields = sealing.finish();  // [ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results]
 */
export class ArcSealing {
  /** The instance the new set gets; 0 when nothing will be sealed. */
  readonly instance: number;
  /** Why nothing will be sealed, when nothing will. */
  readonly skipped?: string;
  private readonly existing: SetFields[] = [];
  private readonly hasher?: BodyHasher;
  private readonly bodyHash?: Buffer;
  private readonly cv: ChainValidation;
  private readonly timestamp: number;
  private readonly signedNames: readonly string[];
  private readonly authResults: string;
  private fields?: HeaderField[];

  /**
   * `headers` are the message's fields as it leaves us, top first. Options that cannot be right
   * whatever the message (a key that does not fit its algorithm, an authserv-id that is no
   * token) are programming errors and throw a TypeError; a cv that does not fit the message's
   * chain seals nothing, and says why in `skipped`.
   */
  constructor(
    private readonly headers: readonly HeaderField[],
    private readonly key: ArcSealKey,
    options: ArcSealOptions,
  ) {
    checkKey(key);
    if (options.bodyHash === undefined) this.hasher = new BodyHasher('relaxed', 'sha256');
    else if (options.bodyHash.length !== SHA256_BYTES) {
      throw new TypeError(`ARC body hash must be ${SHA256_BYTES} bytes of sha256`);
    } else this.bodyHash = options.bodyHash;
    this.authResults = aarText(options.authservId, options.authResults);
    this.signedNames = signedNames(options.headers, headers);
    this.timestamp = options.timestamp ?? Math.floor((options.clock ?? systemClock).now() / 1000);
    if (!Number.isSafeInteger(this.timestamp) || this.timestamp < 0) {
      throw new TypeError(`ARC timestamp must be whole seconds, got ${options.timestamp}`);
    }
    this.cv = options.cv;
    const chain = readChain(headers, ARC_MAX_INSTANCES);
    if (options.cv !== 'none' && options.cv !== 'pass' && options.cv !== 'fail') {
      throw new TypeError(`ARC cv must be none, pass or fail, got ${String(options.cv)}`);
    }
    // A cv that does not fit the chain means validation saw another message: no seal is better
    // than a false one, and the message's content must never make sealing throw.
    if (chain.kind === 'none') {
      this.instance = options.cv === 'none' ? 1 : 0;
      if (this.instance === 0)
        this.skipped = `cv=${options.cv} given for a message with no ARC chain`;
      return;
    }
    const highest = chain.kind === 'whole' ? chain.sets.length : chain.instances;
    this.instance = 0;
    if (options.cv === 'none') {
      this.skipped = 'cv=none given for a message with an ARC chain';
      return;
    }
    if (chain.kind === 'broken' && chain.newestSaysFail) {
      this.skipped = `the chain already failed at i=${highest}`;
      return;
    }
    if (highest >= ARC_MAX_INSTANCES) {
      this.skipped = `the chain already has ${ARC_MAX_INSTANCES} sets`;
      return;
    }
    if (options.cv === 'pass') {
      if (chain.kind !== 'whole') {
        this.skipped = `cv=pass given for a chain that is not whole (${chain.reason})`;
        return;
      }
      for (const set of chain.sets) {
        this.existing.push({
          results: set.results.field,
          signature: set.signature.field,
          seal: set.seal.field,
        });
      }
    }
    this.instance = highest + 1;
  }

  /** A chunk of the body, split anywhere. Ignored when the body hash was given. */
  update(chunk: Buffer): void {
    if (this.instance > 0) this.hasher?.update(chunk);
  }

  /**
   * Ends the body and gives the new fields to put on top of the message, in this order:
   * ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results. Empty when nothing is sealed.
   */
  finish(): HeaderField[] {
    this.fields ??= this.instance > 0 ? this.seal() : [];
    return this.fields;
  }

  private seal(): HeaderField[] {
    const { domain, selector, privateKey, algorithm } = this.key;
    const i = String(this.instance);
    const t = String(this.timestamp);
    const results = wordsField('ARC-Authentication-Results', `i=${i}; ${this.authResults}`);

    const bodyHash = (this.bodyHash ?? this.hasher!.digest().hash).toString('base64');
    const signatureTags = (b: string): Array<[string, string]> => [
      ['a', algorithm],
      ['b', b],
      ['bh', bodyHash],
      ['c', 'relaxed/relaxed'],
      ['d', domain],
      ['h', this.signedNames.join(':')],
      ['i', i],
      ['s', selector],
      ['t', t],
    ];
    const unsignedSignature = tagListField('ARC-Message-Signature', signatureTags(''));
    // The new AAR is on top when the message leaves: an h= naming it picks it as a verifier would.
    const signed = signedHeaderData(
      [results, ...this.headers],
      unsignedSignature,
      this.signedNames,
      'relaxed',
    );
    const signature = tagListField(
      'ARC-Message-Signature',
      signatureTags(signData(algorithm, privateKey, signed).toString('base64')),
    );

    const sealTags = (b: string): Array<[string, string]> => [
      ['a', algorithm],
      ['b', b],
      ['cv', this.cv],
      ['d', domain],
      ['i', i],
      ['s', selector],
      ['t', t],
    ];
    // RFC 8617 section 5.1.2: the seal of a failed chain covers its own set alone.
    const sets: SetFields[] = [
      ...(this.cv === 'fail' ? [] : this.existing),
      { results, signature, seal: tagListField('ARC-Seal', sealTags('')) },
    ];
    const seal = tagListField(
      'ARC-Seal',
      sealTags(signData(algorithm, privateKey, sealData(sets)).toString('base64')),
    );
    return [seal, signature, results];
  }
}

/**
 * Seal a whole message: the message with the new set on top, or unchanged (CRLF line ends) when
 * the chain may not be sealed.
 *
 * @example
 * const sealed = sealArc(message, key, { authservId: 'mx.example.net',
 *   authResults: 'mx.example.net; dkim=pass header.d=example.org', cv: 'none' });
 */
export function sealArc(message: Buffer, key: ArcSealKey, options: ArcSealOptions): Buffer {
  const { headers, body } = parseMessage(message);
  const sealing = new ArcSealing(headers, key, options);
  sealing.update(body);
  return formatMessage([...sealing.finish(), ...headers], body);
}

function checkKey(key: ArcSealKey): void {
  if (!isDnsName(key.domain))
    throw new TypeError(`ARC sealing domain is not a domain: ${key.domain}`);
  if (!isDnsName(key.selector)) {
    throw new TypeError(`ARC sealing selector is not a selector: ${key.selector}`);
  }
  const wanted = keyTypeOf(key.algorithm);
  if (key.algorithm !== 'rsa-sha256' && key.algorithm !== 'ed25519-sha256') {
    throw new TypeError(`ARC sealing algorithm must be rsa-sha256 or ed25519-sha256`);
  }
  if (key.privateKey.type !== 'private' || key.privateKey.asymmetricKeyType !== wanted) {
    throw new TypeError(`ARC sealing key is not a ${wanted} private key`);
  }
}

/**
 * The AAR text after `i=N; `: our Authentication-Results value with the authserv-id first,
 * unfolded, control characters made spaces, whitespace runs made one.
 */
function aarText(authservId: string, authResults: string): string {
  if (!AUTHSERV_ID.test(authservId)) {
    throw new TypeError(`ARC authserv-id is not a token: ${JSON.stringify(authservId)}`);
  }
  const text = authResults
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  if (text.length > MAX_AUTH_RESULTS) {
    throw new TypeError(`ARC Authentication-Results longer than ${MAX_AUTH_RESULTS} characters`);
  }
  const startsWithId =
    text.startsWith(authservId) &&
    (text.length === authservId.length || /[ ;]/.test(text[authservId.length]!));
  if (startsWithId) return text;
  return text === '' ? `${authservId}; none` : `${authservId}; ${text}`;
}

/** h= of the new AMS: the caller's names, or the default ones the message has, each as often. */
function signedNames(
  given: readonly string[] | undefined,
  headers: readonly HeaderField[],
): string[] {
  if (given !== undefined) {
    for (const name of given) {
      if (!FIELD_NAME.test(name))
        throw new TypeError(`not a header field name: ${JSON.stringify(name)}`);
      if (name.toLowerCase() === 'arc-seal') throw new TypeError('an AMS may not sign ARC-Seal');
    }
    return [...given];
  }
  const names: string[] = [];
  for (const name of DEFAULT_SEALED_HEADERS) {
    for (const field of headers) if (field.key === name) names.push(name);
  }
  return names;
}
