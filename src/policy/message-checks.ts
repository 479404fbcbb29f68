/**
 * The checks that read the message itself, for one message: started at the end of the headers
 * (so that key lookups run while the body streams in), fed the body chunk by chunk (hashed as
 * it comes, never kept), finished at end of message. Incoming mail is verified (DKIM, ARC) and
 * may be sealed; our own mail is signed.
 */
import { ArcSealing, ArcVerification } from '../checks/arc/index.js';
import type { ArcResult, ChainValidation } from '../checks/arc/types.js';
import { BodyHashes } from '../checks/dkim/body-hash.js';
import { DkimSigning, type DkimSigningKey } from '../checks/dkim/sign.js';
import type { DkimSignatureResult } from '../checks/dkim/types.js';
import { DkimVerification } from '../checks/dkim/verify.js';
import type { HeaderField } from '../checks/message/index.js';
import type { Clock, Resolver } from '../dns/types.js';
import type { MessageFields } from './session.js';
import type { MessageAuthSettings } from './settings.js';

/** What the message checks found. */
export interface MessageCheckResults {
  /** Each DKIM signature's result; undefined when DKIM was not verified. */
  dkim?: DkimSignatureResult[];
  /** The ARC chain; undefined when ARC was not validated. */
  arc?: ArcResult;
  /** Our DKIM-Signature, for mail we sign. */
  signature?: HeaderField;
  /** Why our mail was not signed, when signing is on and it was not (no key for the domain). */
  unsigned?: string;
  /** Why incoming mail was not verified (a header over the bound). */
  unverified?: string;
}

export interface MessageCheckServices {
  resolver: Resolver;
  clock?: Clock;
}

/**
 * @example
 * const checks = new MessageChecks('incoming', fields, settings.auth, { resolver });
 * checks.update(chunk);  // each body chunk
 * const { dkim, arc } = await checks.finish();
 */
export class MessageChecks {
  readonly role: 'incoming' | 'outgoing';
  readonly fields: readonly HeaderField[];
  readonly #settings: MessageAuthSettings;
  readonly #hashes = new BodyHashes();
  readonly #dkim: DkimVerification | undefined;
  readonly #arc: ArcVerification | undefined;
  readonly #signing: DkimSigning | undefined;
  readonly #unsigned: string | undefined;
  readonly #skipped: string | undefined;
  readonly #clock: Clock | undefined;
  #finished: Promise<MessageCheckResults> | undefined;

  /**
   * `fields` are the message's header fields as sent, top first. When some were left out (the
   * header is over the bound), the message is neither verified nor signed, and the results say
   * why. `fromDomain` chooses the signing key.
   */
  constructor(
    role: 'incoming' | 'outgoing',
    gathered: MessageFields,
    settings: MessageAuthSettings,
    services: MessageCheckServices,
    fromDomain: string | undefined,
  ) {
    this.role = role;
    const fields = gathered.list;
    this.fields = fields;
    this.#settings = settings;
    if (gathered.dropped > 0) {
      this.#skipped = `header over ${settings.maxHeaderBytes} bytes, not ${role === 'incoming' ? 'verified' : 'signed'}`;
      return;
    }
    this.#clock = services.clock;
    const world = services.clock
      ? { resolver: services.resolver, clock: services.clock }
      : { resolver: services.resolver };
    if (role === 'incoming') {
      if (settings.dkimVerify) {
        this.#dkim = new DkimVerification(fields, settings.dkimVerify, {
          ...world,
          bodyHashes: this.#hashes,
        });
      }
      if (settings.arcVerify) {
        this.#arc = new ArcVerification(fields, settings.arcVerify, {
          ...world,
          bodyHashes: this.#hashes,
        });
      }
      if (settings.arcSeal) this.#hashes.want('relaxed', 'sha256');
    } else if (settings.dkimSign) {
      const key = fromDomain ? signingKeyFor(settings.dkimSign.keys, fromDomain) : undefined;
      if (key) {
        this.#signing = new DkimSigning(fields, key, {
          ...settings.dkimSign.options,
          ...(services.clock ? { clock: services.clock } : {}),
        });
      } else {
        this.#unsigned = fromDomain
          ? `no DKIM key for ${fromDomain}`
          : 'no From domain to sign for';
      }
    }
  }

  /** A body chunk, as the MTA sent it (CRLF line ends). */
  update(chunk: Buffer): void {
    // DKIM and ARC verification share these hashers: each distinct body hash runs once.
    this.#hashes.update(chunk);
    this.#signing?.update(chunk);
  }

  /** End of body: the verifications' results and our signature. Idempotent. */
  finish(): Promise<MessageCheckResults> {
    this.#finished ??= this.#finish();
    return this.#finished;
  }

  async #finish(): Promise<MessageCheckResults> {
    this.#hashes.finish();
    const [dkim, arc] = await Promise.all([this.#dkim?.finish(), this.#arc?.finish()]);
    const results: MessageCheckResults = {};
    if (this.#skipped) {
      if (this.role === 'incoming') results.unverified = this.#skipped;
      else results.unsigned = this.#skipped;
      return results;
    }
    if (dkim) results.dkim = dkim;
    if (arc) results.arc = arc;
    if (this.#signing) results.signature = this.#signing.finish();
    if (this.#unsigned) results.unsigned = this.#unsigned;
    return results;
  }

  /**
   * Our ARC set for the message as it leaves us: `authResults` is our Authentication-Results
   * value (authserv-id first), `cv` what validation of the incoming chain gave. Empty when
   * sealing is off, the message is ours, or the chain cannot take another set (50 already).
   */
  seal(authservId: string, authResults: string, cv: ChainValidation): HeaderField[] {
    const key = this.#settings.arcSeal;
    if (!key || this.role !== 'incoming' || this.#skipped) return [];
    const sealing = new ArcSealing(this.fields, key, {
      authservId,
      authResults,
      cv,
      bodyHash: this.#hashes.want('relaxed', 'sha256').result().hash,
      ...(this.#clock ? { clock: this.#clock } : {}),
    });
    if (sealing.instance === 0) return [];
    return sealing.finish();
  }
}

/**
 * The key that signs for a From domain: the one for the domain itself, else for its nearest
 * parent (a key for example.com signs mail from news.example.com, which DMARC's relaxed
 * alignment accepts).
 *
 * @example
 * signingKeyFor(keys, 'news.example.com')?.domain  // 'example.com'
 */
export function signingKeyFor(
  keys: readonly DkimSigningKey[],
  domain: string,
): DkimSigningKey | undefined {
  let best: DkimSigningKey | undefined;
  const wanted = domain.toLowerCase();
  for (const key of keys) {
    const d = key.domain.toLowerCase();
    if (wanted !== d && !wanted.endsWith(`.${d}`)) continue;
    if (!best || d.length > best.domain.length) best = key;
  }
  return best;
}
