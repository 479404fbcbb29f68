/**
 * The keys one validation needs: each `<selector>._domainkey.<domain>` fetched once (chains are
 * usually sealed by one or two keys, over and over), all under the validation's one DNS budget,
 * and judged against the signature that wants them.
 */
import type { BudgetedQueries } from '../budget.js';
import { hashOf, keyTypeOf, type SigningAlgorithm } from '../dkim/crypto.js';
import { type DkimKey, fetchKey, type KeyLookup } from '../dkim/key.js';
import type { ArcSettings } from './types.js';

/**
 * Key lookups by name, each asked of DNS at most once.
 *
 * @example
 * const keys = new KeyCache(dns);
 * const lookup = await keys.get('s1', 'example.org');
 */
export class KeyCache {
  private readonly lookups = new Map<string, Promise<KeyLookup>>();

  /** `dns` is undefined when no resolver was given: every lookup is then a temporary failure. */
  constructor(private readonly dns: BudgetedQueries | undefined) {}

  get(selector: string, domain: string): Promise<KeyLookup> {
    const name = `${selector}._domainkey.${domain}`.toLowerCase();
    let lookup = this.lookups.get(name);
    if (!lookup) {
      lookup = this.dns
        ? fetchKey(selector, domain, this.dns).catch(
            (): KeyLookup => ({ kind: 'temperror', reason: `key lookup at ${name} failed` }),
          )
        : Promise.resolve({ kind: 'temperror', reason: 'no resolver to look keys up with' });
      this.lookups.set(name, lookup);
    }
    return lookup;
  }
}

/**
 * Why `key` cannot check a signature made with `algorithm`, or undefined when it can.
 *
 * @example
 * keyProblem(key512, 'rsa-sha256', DEFAULT_ARC_SETTINGS)  // 'key of 512 bits, fewer than 1024'
 */
export function keyProblem(
  key: DkimKey,
  algorithm: SigningAlgorithm,
  settings: Pick<ArcSettings, 'minRsaBits'>,
): string | undefined {
  const keyType = keyTypeOf(algorithm);
  if (key.keyType !== keyType) return `${key.keyType} key for an ${algorithm} signature`;
  if (keyType === 'rsa' && key.bits < settings.minRsaBits) {
    return `key of ${key.bits} bits, fewer than ${settings.minRsaBits}`;
  }
  const hash = hashOf(algorithm);
  if (key.hashes !== undefined && !key.hashes.includes(hash)) return `key does not allow ${hash}`;
  if (!key.services.includes('*') && !key.services.includes('email')) {
    return 'key is not for email';
  }
  return undefined;
}
