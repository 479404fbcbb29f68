/**
 * The private keys the configuration names (DKIM signing, ARC sealing), read from their PEM
 * files when a world is built: a missing or bad file fails the start or the reload (which then
 * keeps the old world) with a line naming the file.
 */
import { readFile } from 'node:fs/promises';
import type { ArcSealKey } from '../checks/arc/types.js';
import { type DkimSigningKey, loadSigningKey } from '../checks/dkim/sign.js';
import type { Config } from '../config/index.js';

/** The keys of a configuration. */
export interface SigningKeys {
  dkim: DkimSigningKey[];
  arcSeal: ArcSealKey | null;
}

/**
 * Reads every key file the configuration names (only those in use: `dkim.sign`, `arc.seal`).
 *
 * @example
 * const keys = await loadSigningKeys(config);
 * keys.dkim[0]?.algorithm  // 'ed25519-sha256'
 */
export async function loadSigningKeys(config: Config): Promise<SigningKeys> {
  const dkim = config.dkim.sign
    ? await Promise.all(config.dkim.keys.map((k) => readKey(k.domain, k.selector, k.key_file)))
    : [];
  const seal = config.arc.seal ? config.arc.seal_key : undefined;
  const arcSeal = seal ? await readKey(seal.domain, seal.selector, seal.key_file) : null;
  return { dkim, arcSeal };
}

async function readKey(domain: string, selector: string, file: string): Promise<DkimSigningKey> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot read the key file ${file} (${selector}._domainkey.${domain}): ${why}`);
  }
  try {
    return loadSigningKey(domain, selector, pem);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`${file}: ${why}`);
  }
}
