/**
 * Verifying the DKIM signatures of a message as it streams through the milter: at the end of
 * the headers every signature is parsed and its key lookup started, so that DNS runs while the
 * body is hashed; at the end of the body the hashes are compared and the signatures checked.
 *
 * Result words (RFC 8601 section 2.7.1; the cases from RFC 6376 sections 3.5, 3.6.1 and 6.1,
 * and RFC 8301 section 3):
 *
 * | case                                                                       | result    |
 * | -------------------------------------------------------------------------- | --------- |
 * | bad signature syntax, missing/invalid tag, unsupported q=/a=/c=            | permerror |
 * | no key (nxdomain/nodata), bad key record, several key records, revoked key  | permerror |
 * | key k= or h= or s= not allowing this signature; t=s and i= a subdomain     | permerror |
 * | DNS timeout/SERVFAIL/budget spent                                          | temperror |
 * | rsa-sha1 while not `acceptRsaSha1` (RFC 8301)                              | policy    |
 * | RSA key under `minRsaBits` (default 1024; RFC 8301 says never valid)       | policy    |
 * | signatures beyond the `signatures` limit (not verified)                    | policy    |
 * | header over `maxHeaderBytes`, or body hashes over `maxBodyHashes`          | policy    |
 * | x= in the past (beyond the clock skew allowance, default 300 s)            | fail      |
 * | t= in the future beyond the skew                                           | fail      |
 * | body hash mismatch                                                         | fail      |
 * | signature does not verify                                                  | fail      |
 * | verifies (t=y keys: reason "key in testing mode", `testing: true`)         | pass      |
 *
 * The checks run in that order of RFC 6376 section 6.1: the signature itself (6.1.1), then the
 * key (6.1.2), then the hashes (6.1.3); the first that fails decides.
 */
import type { Clock } from '../../dns/types.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { resolveLimits } from '../limits.js';
import { type HeaderField, parseMessage } from '../message/index.js';
import { BodyHashes, type BodyHashHandle } from './body-hash.js';
import { signedHeaderData } from './canonicalize.js';
import { hashOf, keyTypeOf, verifySignature } from './crypto.js';
import { fetchKey, type KeyLookup } from './key.js';
import { type DkimSignature, parseDkimSignature, type SignatureFacts } from './signature.js';
import {
  DEFAULT_DKIM_LIMITS,
  DEFAULT_DKIM_VERIFY_SETTINGS,
  type DkimLimits,
  type DkimServices,
  type DkimSignatureResult,
  type DkimVerifySettings,
} from './types.js';

/** Characters of b= in header.b at least (RFC 8601 section 2.7.1). */
const HEADER_B_MIN = 8;

/** A signature that got through the checks of the header stage, waiting for key and body. */
interface Candidate {
  result: DkimSignatureResult;
  signature: DkimSignature;
  body: BodyHashHandle;
  key: Promise<KeyLookup>;
}

/**
 * The DKIM verification of one message, fed as the milter receives it.
 *
 * @example
 * const verification = new DkimVerification(headers, {}, { resolver });
 * for (const chunk of bodyChunks) verification.update(chunk);
 * const results = await verification.finish();
 * results[0]?.result  // 'pass'
 */
export class DkimVerification {
  private readonly results: DkimSignatureResult[] = [];
  private readonly candidates: Candidate[] = [];
  private readonly hashes: BodyHashes;
  /** The hashers are ours to feed (none were shared with us). */
  private readonly ownsHashes: boolean;
  private finished: Promise<DkimSignatureResult[]> | undefined;
  private readonly minRsaBits: number;

  /**
   * At the end of the headers: parses the signatures, starts their key lookups at once (so DNS
   * runs while the body streams), and registers the body hashes they need.
   */
  constructor(
    private readonly headers: readonly HeaderField[],
    settings: Partial<DkimVerifySettings> = {},
    services?: DkimServices,
  ) {
    this.hashes = services?.bodyHashes ?? new BodyHashes();
    this.ownsHashes = services?.bodyHashes === undefined;
    const chosen = { ...DEFAULT_DKIM_VERIFY_SETTINGS, ...definedOnly(settings) };
    const limits = resolveLimits('DKIM', DEFAULT_DKIM_LIMITS, chosen.limits);
    this.minRsaBits = chosen.minRsaBits;
    const clock: Clock = services?.clock ?? systemClock;
    const now = Math.floor(clock.now() / 1000);
    const dns = services
      ? new BudgetedQueries(services.resolver, clock, limits.timeBudgetMs)
      : undefined;
    const keys = new Map<string, Promise<KeyLookup>>();
    const bodyHashKeys = new Set<string>();

    let headerBytes = 0;
    for (const field of headers) headerBytes += field.raw.length + 2;
    const headerTooLarge = headerBytes > limits.maxHeaderBytes;

    let index = 0;
    for (const field of headers) {
      if (field.key !== 'dkim-signature') continue;
      const position = index++;
      if (field.raw.length > limits.maxFieldBytes) {
        this.results.push(
          unparsed('permerror', `signature field larger than ${limits.maxFieldBytes} bytes`),
        );
        continue;
      }
      const parsed = parseDkimSignature(field);
      if (!parsed.ok) {
        this.results.push(described(parsed.facts, unparsed('permerror', parsed.reason)));
        continue;
      }
      const signature = parsed.signature;
      const result = resultOf(signature);
      this.results.push(result);
      const verdict = headerVerdict(signature, position, now, chosen, limits, headerTooLarge);
      if (verdict) {
        settle(result, verdict[0], verdict[1]);
        continue;
      }
      const bodyKey = `${signature.bodyCanonicalization}/${hashOf(signature.algorithm)}/${signature.bodyLength ?? ''}`;
      if (!bodyHashKeys.has(bodyKey) && bodyHashKeys.size >= limits.maxBodyHashes) {
        settle(result, 'policy', `not verified: more than ${limits.maxBodyHashes} body hashes`);
        continue;
      }
      bodyHashKeys.add(bodyKey);
      const body = this.hashes.want(
        signature.bodyCanonicalization,
        hashOf(signature.algorithm),
        signature.bodyLength,
      );
      const keyName = `${signature.selector}._domainkey.${signature.domain}`;
      let key = keys.get(keyName);
      if (!key) {
        key = lookUp(signature, dns);
        keys.set(keyName, key);
      }
      this.candidates.push({ result, signature, body, key });
    }
    uniqueHeaderB(this.results);
  }

  /** A chunk of the body as it comes (CRLF line ends); split anywhere. */
  update(chunk: Buffer): void {
    if (this.finished || !this.ownsHashes) return;
    this.hashes.update(chunk);
  }

  /** The end of the body: waits for the keys and verifies. The same results on every call. */
  finish(): Promise<DkimSignatureResult[]> {
    this.finished ??= this.verifyAll();
    return this.finished;
  }

  private async verifyAll(): Promise<DkimSignatureResult[]> {
    this.hashes.finish();
    const lookups = await Promise.all(this.candidates.map((c) => c.key));
    this.candidates.forEach((candidate, i) => {
      const [word, reason] = this.verdict(candidate, lookups[i]!);
      settle(candidate.result, word, reason);
    });
    return this.results;
  }

  /** The key checks (RFC 6376 section 6.1.2), then the hashes (6.1.3). */
  private verdict(
    { result, signature, body }: Candidate,
    lookup: KeyLookup,
  ): [DkimSignatureResult['result'], string] {
    if (lookup.kind !== 'key') return [lookup.kind, lookup.reason];
    const key = lookup.key;
    result.keyBits = key.bits;
    result.testing = key.testing;
    const hash = hashOf(signature.algorithm);
    if (key.keyType !== keyTypeOf(signature.algorithm)) {
      return ['permerror', `key type k=${key.keyType} does not fit a=${signature.algorithm}`];
    }
    if (key.hashes && !key.hashes.includes(hash)) {
      return ['permerror', `key h= does not allow ${hash}`];
    }
    if (!key.services.includes('*') && !key.services.includes('email')) {
      return ['permerror', 'key s= does not allow email'];
    }
    if (key.strict && signature.identityDomain !== signature.domain) {
      return ['permerror', 'key t=s does not allow an i= subdomain'];
    }
    if (key.keyType === 'rsa' && key.bits < this.minRsaBits) {
      return ['policy', `key too short: ${key.bits} bits`];
    }
    const digest = body.result();
    if (signature.bodyLength !== undefined) {
      result.bodyLengthShort = signature.bodyLength < digest.canonicalLength;
    }
    if (!digest.hash.equals(signature.bodyHash)) return ['fail', 'body hash did not verify'];
    const data = signedHeaderData(
      this.headers,
      signature.field,
      signature.signedHeaders,
      signature.headerCanonicalization,
    );
    if (!verifySignature(signature.algorithm, key.publicKey, data, signature.signature)) {
      return ['fail', 'signature did not verify'];
    }
    return ['pass', key.testing ? 'key in testing mode' : 'good signature'];
  }
}

/**
 * Verify the DKIM signatures of a whole message (the command line, tests). An unsigned message
 * gives `[]`.
 *
 * @example
 * const results = await verifyDkim(readFileSync('message.eml'), {}, { resolver });
 * results.map((r) => `${r.domain}: ${r.result}`)  // ['example.com: pass']
 */
export async function verifyDkim(
  message: Buffer,
  settings: Partial<DkimVerifySettings> = {},
  services?: DkimServices,
): Promise<DkimSignatureResult[]> {
  const { headers, body } = parseMessage(message);
  const verification = new DkimVerification(headers, settings, services);
  verification.update(body);
  return verification.finish();
}

/** What the header stage alone decides (RFC 6376 section 6.1.1, RFC 8301), if anything. */
function headerVerdict(
  signature: DkimSignature,
  position: number,
  now: number,
  settings: DkimVerifySettings,
  limits: DkimLimits,
  headerTooLarge: boolean,
): [DkimSignatureResult['result'], string] | undefined {
  if (headerTooLarge) {
    return ['policy', `not verified: header larger than ${limits.maxHeaderBytes} bytes`];
  }
  if (position >= limits.signatures) {
    return ['policy', `not verified: more than ${limits.signatures} signatures`];
  }
  if (signature.algorithm === 'rsa-sha1' && !settings.acceptRsaSha1) {
    return ['policy', 'rsa-sha1 not accepted'];
  }
  const skew = settings.clockSkewSeconds;
  if (signature.expiration !== undefined && signature.expiration + skew < now) {
    return ['fail', 'signature expired'];
  }
  if (signature.timestamp !== undefined && signature.timestamp - skew > now) {
    return ['fail', 'signature timestamp in the future'];
  }
  return undefined;
}

/** The key lookup of a signature; never rejects, so that it may wait unobserved. */
function lookUp(signature: DkimSignature, dns: BudgetedQueries | undefined): Promise<KeyLookup> {
  if (!dns) return Promise.resolve({ kind: 'temperror', reason: 'no DNS resolver given' });
  return fetchKey(signature.selector, signature.domain, dns).catch(
    (): KeyLookup => ({ kind: 'temperror', reason: 'key lookup failed' }),
  );
}

function resultOf(signature: DkimSignature): DkimSignatureResult {
  const result: DkimSignatureResult = {
    result: 'neutral',
    reason: 'not verified',
    domain: signature.domain,
    selector: signature.selector,
    algorithm: signature.algorithm,
    identity: signature.identity,
    headerB: signature.signatureText,
    canonicalization: `${signature.headerCanonicalization}/${signature.bodyCanonicalization}`,
    signedHeaders: signature.signedHeaders,
    testing: false,
  };
  if (signature.bodyLength !== undefined) result.bodyLength = signature.bodyLength;
  if (signature.timestamp !== undefined) result.timestamp = signature.timestamp;
  if (signature.expiration !== undefined) result.expiration = signature.expiration;
  return result;
}

function unparsed(word: DkimSignatureResult['result'], reason: string): DkimSignatureResult {
  return {
    result: word,
    reason,
    domain: '',
    selector: '',
    algorithm: '',
    identity: '',
    headerB: '',
    canonicalization: '',
    signedHeaders: [],
    testing: false,
  };
}

function described(facts: SignatureFacts, result: DkimSignatureResult): DkimSignatureResult {
  result.domain = facts.domain;
  result.selector = facts.selector;
  result.algorithm = facts.algorithm;
  result.identity = facts.identity;
  result.headerB = facts.signatureText;
  return result;
}

function settle(
  result: DkimSignatureResult,
  word: DkimSignatureResult['result'],
  reason: string,
): void {
  result.result = word;
  result.reason = reason;
}

/**
 * Cuts each b= (held whole in headerB until now) to the shortest prefix of at least 8
 * characters that no other signature of the message shares (RFC 6008 section 4). Sorted, a
 * text's longest shared prefix is with a neighbour, so this takes n log n, not n².
 */
function uniqueHeaderB(results: DkimSignatureResult[]): void {
  const order = results
    .map((result, index) => ({ text: result.headerB, index }))
    .filter((entry) => entry.text !== '')
    .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  const lengths = order.map((entry, i) => {
    const before = i > 0 ? sharedPrefix(entry.text, order[i - 1]!.text) : 0;
    const after = i + 1 < order.length ? sharedPrefix(entry.text, order[i + 1]!.text) : 0;
    return Math.min(entry.text.length, Math.max(HEADER_B_MIN, Math.max(before, after) + 1));
  });
  order.forEach((entry, i) => {
    const result = results[entry.index]!;
    result.headerB = entry.text.slice(0, lengths[i]);
  });
}

function sharedPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let n = 0;
  while (n < max && a.charCodeAt(n) === b.charCodeAt(n)) n++;
  return n;
}

/** Settings given as `undefined` keep their defaults. */
function definedOnly(settings: Partial<DkimVerifySettings>): Partial<DkimVerifySettings> {
  return Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as Partial<DkimVerifySettings>;
}
