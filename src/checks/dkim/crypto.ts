/**
 * The signing algorithms of DKIM and ARC: RSASSA-PKCS1-v1_5 with SHA-256 or SHA-1 (RFC 6376
 * section 3.3, RFC 8301), and Ed25519 over the SHA-256 of the data (RFC 8463).
 */
import { createHash, type KeyObject, sign, verify } from 'node:crypto';

export type SigningAlgorithm = 'rsa-sha256' | 'rsa-sha1' | 'ed25519-sha256';

/** The algorithms by their a= names. */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = Object.freeze([
  'rsa-sha256',
  'rsa-sha1',
  'ed25519-sha256',
]);

/**
 * The key type an algorithm needs (a key record's k=).
 *
 * @example
 * keyTypeOf('ed25519-sha256')  // 'ed25519'
 */
export function keyTypeOf(algorithm: SigningAlgorithm): 'rsa' | 'ed25519' {
  return algorithm === 'ed25519-sha256' ? 'ed25519' : 'rsa';
}

/**
 * The hash an algorithm uses: its name in key records' h= and in node:crypto.
 *
 * @example
 * hashOf('rsa-sha1')  // 'sha1'
 */
export function hashOf(algorithm: SigningAlgorithm): 'sha256' | 'sha1' {
  return algorithm === 'rsa-sha1' ? 'sha1' : 'sha256';
}

/**
 * Whether `signature` is `key`'s signature of `data`. False, never an exception, for a bad
 * signature, a key of the wrong type or anything the crypto library refuses.
 *
 * @example
 * verifySignature('rsa-sha256', publicKey, headerData, decodeBase64Tag(b)!)  // true
 */
export function verifySignature(
  algorithm: SigningAlgorithm,
  key: KeyObject,
  data: Buffer,
  signature: Buffer,
): boolean {
  if (key.asymmetricKeyType !== keyTypeOf(algorithm)) return false;
  try {
    if (algorithm === 'ed25519-sha256') {
      return verify(null, createHash('sha256').update(data).digest(), key, signature);
    }
    return verify(hashOf(algorithm), data, key, signature);
  } catch {
    return false;
  }
}

/**
 * `key`'s signature of `data`. Throws a TypeError when the key does not fit the algorithm.
 *
 * @example
 * signData('ed25519-sha256', privateKey, headerData).length  // 64
 */
export function signData(algorithm: SigningAlgorithm, key: KeyObject, data: Buffer): Buffer {
  if (key.asymmetricKeyType !== keyTypeOf(algorithm)) {
    throw new TypeError(`a ${key.asymmetricKeyType ?? 'secret'} key cannot sign ${algorithm}`);
  }
  if (algorithm === 'ed25519-sha256') {
    return sign(null, createHash('sha256').update(data).digest(), key);
  }
  return sign(hashOf(algorithm), data, key);
}
