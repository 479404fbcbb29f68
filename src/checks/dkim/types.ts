/**
 * The DKIM check's public vocabulary: settings, limits, services and the result of one
 * signature.
 */
import type { Clock, Resolver } from '../../dns/types.js';
import type { BodyHashes } from './body-hash.js';

/** The result words of RFC 8601 section 2.7.1 for a signature. */
export type DkimResultWord = 'pass' | 'fail' | 'neutral' | 'policy' | 'temperror' | 'permerror';

/** Bounds on the work of verifying one message. */
export interface DkimLimits {
  /** Signatures verified per message; the rest get `policy`. */
  signatures: number;
  /** Wall time for all the key lookups of the message, in milliseconds. */
  timeBudgetMs: number;
  /** Header bytes read; a larger header gets its signatures `policy`, unverified. */
  maxHeaderBytes: number;
  /** Bytes of one DKIM-Signature field; a larger one is a `permerror`. */
  maxFieldBytes: number;
  /** Distinct body hashes (canonicalization, hash, l=) computed per message. */
  maxBodyHashes: number;
}

export const DEFAULT_DKIM_LIMITS: Readonly<DkimLimits> = Object.freeze({
  signatures: 10,
  timeBudgetMs: 10_000,
  maxHeaderBytes: 1024 * 1024,
  maxFieldBytes: 64 * 1024,
  maxBodyHashes: 8,
});

/** The receiver's choices. */
export interface DkimVerifySettings {
  /** Accept rsa-sha1 signatures, which RFC 8301 says verifiers must not. */
  acceptRsaSha1: boolean;
  /** Smallest RSA key accepted, in bits (RFC 8301: at least 1024). */
  minRsaBits: number;
  /** Seconds of clock difference allowed for t= and x=. */
  clockSkewSeconds: number;
  limits: Partial<DkimLimits>;
}

export const DEFAULT_DKIM_VERIFY_SETTINGS: Readonly<DkimVerifySettings> = Object.freeze({
  acceptRsaSha1: false,
  minRsaBits: 1024,
  clockSkewSeconds: 300,
  limits: Object.freeze({}),
});

/** The world the check uses: DNS for keys, the clock for t= and x=. */
export interface DkimServices {
  resolver: Resolver;
  clock?: Clock;
  /**
   * Body hashers shared with other checks of the same message (ARC): the verification
   * registers what it needs on them and leaves feeding the body to their owner.
   */
  bodyHashes?: BodyHashes;
}

/** The verdict on one DKIM-Signature field. */
export interface DkimSignatureResult {
  result: DkimResultWord;
  /** Why, for people: `signature did not verify`, `key too short: 512 bits`, ... */
  reason: string;
  /** d= (lowercased), `''` when unreadable. */
  domain: string;
  /** s= (lowercased), `''` when unreadable. */
  selector: string;
  /** a= (lowercased), `''` when unreadable. */
  algorithm: string;
  /** i=, or `@` and d=; `''` when unreadable. */
  identity: string;
  /**
   * The start of b= for Authentication-Results' header.b (RFC 8601): 8 characters, more when
   * another signature of the message starts the same (RFC 6008).
   */
  headerB: string;
  /** l=, when the signature has it. */
  bodyLength?: number;
  /** l= is less than the body: part of the body is not signed (worth reporting). */
  bodyLengthShort?: boolean;
  /** `relaxed/simple` and the like, `''` when unreadable. */
  canonicalization: string;
  /** h=, in order, as written. */
  signedHeaders: string[];
  /** The key has t=y: the domain is testing DKIM. */
  testing: boolean;
  /** Bits of the key, once fetched. */
  keyBits?: number;
  /** t=, seconds. */
  timestamp?: number;
  /** x=, seconds. */
  expiration?: number;
}
