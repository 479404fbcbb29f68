/**
 * ARC validation (RFC 8617 section 5.2) as the message streams: the chain's structure is read
 * from the header, the keys it needs are looked up while the body arrives, the body hashes of
 * its ARC-Message-Signatures are computed on the way (shared with DKIM when a BodyHashes is
 * given), and at the end the newest AMS, the older ones (for oldest-pass) and every seal are
 * checked in the RFC's order.
 *
 * DNS trouble: RFC 8617 knows only none, pass and fail, and a signature whose key cannot be had
 * does not validate, so the chain fails; the result says `temporary` and names the cause, so a
 * policy can tempfail rather than act on a failure that may pass on a later try.
 */
import { printableAscii, truncate } from '../../text/index.js';
import { BudgetedQueries, systemClock } from '../budget.js';
import { BodyHashes, type BodyHashHandle } from '../dkim/body-hash.js';
import { signedHeaderData } from '../dkim/canonicalize.js';
import { hashOf, verifySignature } from '../dkim/crypto.js';
import { resolveLimits } from '../limits.js';
import { type HeaderField, parseMessage } from '../message/index.js';
import { type ArcSet, type ChainStructure, readChain } from './chain.js';
import type { CanonicalizationPair, MessageSignatureTags, SignatureBasics } from './fields.js';
import { KeyCache, keyProblem } from './keys.js';
import { RelaxedForms, sealData } from './signing-input.js';
import {
  type ArcResult,
  type ArcSealer,
  type ArcServices,
  type ArcSettings,
  DEFAULT_ARC_SETTINGS,
} from './types.js';

/** Longest reason given back; reasons carry tag names and key names from the message. */
const MAX_REASON = 300;

type Check = { ok: true } | { ok: false; reason: string; temporary?: true };

/**
 * Validation of one message's ARC chain, fed the header at construction and the body in chunks.
 *
 * @example
 * const arc = new ArcVerification(headers, {}, { resolver });
 * for (const chunk of body) arc.update(chunk);
 * const result = await arc.finish();
 * result.cv  // 'pass'
 */
export class ArcVerification {
  private readonly settings: ArcSettings;
  private readonly structure: ChainStructure;
  private readonly bodyHashes: BodyHashes;
  private readonly ownsBodyHashes: boolean;
  /** For each instance, a body hash for each canonicalization its AMS may have used. */
  private readonly bodyHandles = new Map<
    number,
    Array<{ how: CanonicalizationPair; hash: BodyHashHandle }>
  >();
  private readonly keys: KeyCache;
  private readonly nowMs: () => number;
  private result?: Promise<ArcResult>;

  /**
   * `headers` are the message's fields, top first. With `services.bodyHashes` the hashes are
   * registered there, before any body is fed to it, and its owner feeds the body.
   */
  constructor(
    private readonly headers: readonly HeaderField[],
    settings?: Partial<ArcSettings>,
    services: ArcServices = {},
  ) {
    this.settings = resolveSettings(settings);
    const clock = services.clock ?? systemClock;
    this.nowMs = () => clock.now();
    this.structure = readChain(headers, this.settings.maxInstances);
    this.ownsBodyHashes = services.bodyHashes === undefined;
    this.bodyHashes = services.bodyHashes ?? new BodyHashes();
    const dns = services.resolver
      ? new BudgetedQueries(services.resolver, clock, this.settings.timeBudgetMs)
      : undefined;
    this.keys = new KeyCache(dns);
    if (this.structure.kind !== 'whole') return;
    for (const set of this.structure.sets) {
      const signature = set.signature;
      if (signature.ok) {
        const t = signature.tags;
        const hash = hashOf(t.algorithm);
        this.bodyHandles.set(
          set.instance,
          t.canonicalizations.map((how) => ({
            how,
            hash: this.bodyHashes.want(how.body, hash, t.bodyLength),
          })),
        );
        // Keys are fetched while the body streams in; each lookup is made once.
        void this.keys.get(t.selector, t.domain);
      }
      if (set.seal.ok) void this.keys.get(set.seal.tags.selector, set.seal.tags.domain);
    }
  }

  /** A chunk of the body, split anywhere. Ignored when the body hashes are shared. */
  update(chunk: Buffer): void {
    if (this.ownsBodyHashes) this.bodyHashes.update(chunk);
  }

  /** Ends the body and gives the result (the same one on every call). */
  finish(): Promise<ArcResult> {
    this.result ??= this.evaluate();
    return this.result;
  }

  private async evaluate(): Promise<ArcResult> {
    const structure = this.structure;
    if (structure.kind === 'none') {
      return { cv: 'none', reason: 'no ARC sets', instances: 0, sealers: [], authResults: [] };
    }
    if (structure.kind === 'broken') {
      return {
        cv: 'fail',
        reason: safe(structure.reason),
        instances: structure.instances,
        sealers: [],
        authResults: structure.authResults,
      };
    }
    // Ending a shared BodyHashes here is safe: the body is over when validation finishes.
    this.bodyHashes.finish();
    const { sets, authResults } = structure;
    const newest = sets.length;
    const base = { instances: newest, authResults };
    const failed = (reason: string, check: Check, sealers: ArcSealer[]): ArcResult => {
      const result: ArcResult = { cv: 'fail', reason: safe(reason), ...base, sealers };
      if (!check.ok && check.temporary) result.temporary = true;
      return result;
    };

    // Step 4: the newest AMS must validate.
    const latest = await this.checkMessageSignature(sets[newest - 1]!);
    if (!latest.ok) return failed(`i=${newest} ${latest.reason}`, latest, []);

    // Step 5: older AMSs only tell how far back the message is as it was signed; one that cannot
    // be checked now (DNS) counts as not validating, since oldest-pass is a hint, never the verdict.
    let oldestPass = 0;
    for (let instance = newest - 1; instance >= 1; instance--) {
      const older = await this.checkMessageSignature(sets[instance - 1]!);
      if (!older.ok) {
        oldestPass = instance + 1;
        break;
      }
    }

    // Step 6: every seal, newest first.
    const sealers: ArcSealer[] = [];
    const forms = new RelaxedForms();
    for (let instance = newest; instance >= 1; instance--) {
      const set = sets[instance - 1]!;
      const check = await this.checkSeal(sets.slice(0, instance), forms);
      if (set.seal.ok) {
        sealers.unshift({
          instance,
          domain: set.seal.tags.domain,
          selector: set.seal.tags.selector,
          result: check.ok ? 'pass' : 'fail',
        });
      }
      if (!check.ok) return failed(`i=${instance} ${check.reason}`, check, sealers);
    }
    return {
      cv: 'pass',
      reason: newest === 1 ? 'chain of 1 set verified' : `chain of ${newest} sets verified`,
      ...base,
      sealers,
      oldestPass,
    };
  }

  private async checkMessageSignature(set: ArcSet): Promise<Check> {
    const signature = set.signature;
    if (!signature.ok) return no(`message signature: ${signature.problem}`);
    const tags = signature.tags;
    const refused = this.refusedAlgorithm(tags, 'message signature');
    if (refused) return refused;
    if (tags.expires !== undefined && tags.expires * 1000 < this.nowMs()) {
      return no('message signature has expired');
    }
    let failure: Check = no('body hash did not match');
    for (const { how, hash } of this.bodyHandles.get(set.instance)!) {
      const body = hash.result();
      if (tags.bodyLength !== undefined && tags.bodyLength > body.canonicalLength) {
        failure = no('message signature l= is longer than the body');
        continue;
      }
      if (!body.hash.equals(tags.bodyHash)) continue;
      const data = signedHeaderData(this.headers, signature.field, tags.signedHeaders, how.header);
      const check = await this.checkWithKey(tags, data, 'message signature');
      if (check.ok || check.temporary) return check;
      failure = check;
    }
    return failure;
  }

  private async checkSeal(sets: readonly ArcSet[], forms: RelaxedForms): Promise<Check> {
    const seal = sets[sets.length - 1]!.seal;
    if (!seal.ok) return no(`seal: ${seal.problem}`);
    const refused = this.refusedAlgorithm(seal.tags, 'seal');
    if (refused) return refused;
    const data = sealData(
      sets.map((set) => ({
        results: set.results.field,
        signature: set.signature.field,
        seal: set.seal.field,
      })),
      forms,
    );
    return this.checkWithKey(seal.tags, data, 'seal');
  }

  private refusedAlgorithm(tags: SignatureBasics, what: string): Check | undefined {
    if (tags.algorithm === 'rsa-sha1' && !this.settings.acceptRsaSha1) {
      return no(`${what} uses rsa-sha1, which is not accepted`);
    }
    return undefined;
  }

  private async checkWithKey(
    tags: SignatureBasics | MessageSignatureTags,
    data: Buffer,
    what: string,
  ): Promise<Check> {
    const lookup = await this.keys.get(tags.selector, tags.domain);
    if (lookup.kind === 'temperror') {
      return { ok: false, reason: `${what} key: temporary: ${lookup.reason}`, temporary: true };
    }
    if (lookup.kind === 'permerror') return no(`${what} key: ${lookup.reason}`);
    const problem = keyProblem(lookup.key, tags.algorithm, this.settings);
    if (problem) return no(`${what} key: ${problem}`);
    if (!verifySignature(tags.algorithm, lookup.key.publicKey, data, tags.signature)) {
      return no(`${what} did not verify`);
    }
    return { ok: true };
  }
}

/**
 * Validate the ARC chain of a whole message.
 *
 * @example
 * const r = await verifyArc(readFileSync('message.eml'), {}, { resolver });
 * r.cv         // 'pass'
 * r.sealers    // [{ instance: 1, domain: 'lists.example.org', selector: 's1', result: 'pass' }]
 */
export function verifyArc(
  message: Buffer,
  settings?: Partial<ArcSettings>,
  services?: ArcServices,
): Promise<ArcResult> {
  const { headers, body } = parseMessage(message);
  const verification = new ArcVerification(headers, settings, services);
  verification.update(body);
  return verification.finish();
}

function resolveSettings(given: Partial<ArcSettings> | undefined): ArcSettings {
  const { acceptRsaSha1, ...numbers } = given ?? {};
  const limits = resolveLimits('ARC', LIMIT_DEFAULTS, numbers);
  if (limits.maxInstances < 1) throw new TypeError('ARC limit maxInstances must be at least 1');
  return { ...limits, acceptRsaSha1: acceptRsaSha1 ?? DEFAULT_ARC_SETTINGS.acceptRsaSha1 };
}

const { acceptRsaSha1: _sha1Default, ...LIMIT_DEFAULTS } = DEFAULT_ARC_SETTINGS;

function no(reason: string): Check {
  return { ok: false, reason };
}

function safe(reason: string): string {
  return truncate(printableAscii(reason), MAX_REASON);
}
