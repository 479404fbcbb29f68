/**
 * The ARC check's public vocabulary (RFC 8617): settings, services, and what validation and
 * sealing give back.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock, Resolver } from '../../dns/types.js';
import type { BodyHashes } from '../dkim/body-hash.js';

/** The Chain Validation Status of RFC 8617 section 4.4 (the `cv=` of an ARC-Seal). */
export type ChainValidation = 'none' | 'pass' | 'fail';

/** The protocol's own ceiling on instances (RFC 8617 section 4.2.1). */
export const ARC_MAX_INSTANCES = 50;

/** Choices of the validating site. */
export interface ArcSettings {
  /** Shortest RSA key accepted, in bits; a shorter one fails its signature. */
  minRsaBits: number;
  /** Whether `a=rsa-sha1` is accepted at all (RFC 8301 retired it). */
  acceptRsaSha1: boolean;
  /** Most ARC sets accepted, at most 50; a longer chain fails. */
  maxInstances: number;
  /** Wall time for all the key lookups of one message, in milliseconds. */
  timeBudgetMs: number;
}

export const DEFAULT_ARC_SETTINGS: Readonly<ArcSettings> = Object.freeze({
  minRsaBits: 1024,
  acceptRsaSha1: false,
  maxInstances: ARC_MAX_INSTANCES,
  timeBudgetMs: 10_000,
});

/** The world as validation sees it. */
export interface ArcServices {
  /** Where keys are looked up. Without one, every key lookup is a temporary failure. */
  resolver?: Resolver;
  clock?: Clock;
  /**
   * Body hashers shared with a DKIM verification of the same message: ARC registers what it
   * needs on them and leaves feeding the body to their owner.
   */
  bodyHashes?: BodyHashes;
}

/** One ARC-Seal that was checked, for trusted-sealer policy. */
export interface ArcSealer {
  instance: number;
  /** The `d=` of the ARC-Seal, lowercased. */
  domain: string;
  /** The `s=` of the ARC-Seal. */
  selector: string;
  result: 'pass' | 'fail';
}

/** The ARC-Authentication-Results of one instance. */
export interface ArcAuthResultsEntry {
  instance: number;
  authservId: string;
  /** The resinfo text after the authserv-id, unfolded, without its leading `;`. */
  results: string;
}

/** What validation found. */
export interface ArcResult {
  cv: ChainValidation;
  /** Why, for logs: `chain of 2 sets verified`, `gap at i=2`, `i=2 seal did not verify`. */
  reason: string;
  /**
   * Set when the result rests on DNS trouble (a timeout, SERVFAIL, the time budget): cv is
   * `fail`, as RFC 8617 has no temporary result, but a policy may tempfail instead of acting.
   */
  temporary?: true;
  /** Highest instance number seen (0 for none). */
  instances: number;
  /** The ARC-Seals checked, oldest first, each with its `d=` and `s=`. */
  sealers: ArcSealer[];
  /**
   * The oldest instance of the newest run of ARC-Message-Signatures that still validate
   * (RFC 8617 section 5.2, step 5): 0 when all do. Only for a chain whose newest AMS validates.
   */
  oldestPass?: number;
  /** The ARC-Authentication-Results of each instance, oldest first. */
  authResults: ArcAuthResultsEntry[];
}

/** The sealing key of our ADMD. */
export interface ArcSealKey {
  /** `d=` of the new ARC-Message-Signature and ARC-Seal. */
  domain: string;
  /** `s=`: the key record is `<selector>._domainkey.<domain>`. */
  selector: string;
  privateKey: KeyObject;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
}

/** What a seal says and signs. */
export interface ArcSealOptions {
  /** Our authserv-id: the AAR starts with it. */
  authservId: string;
  /** The value of our Authentication-Results (authserv-id first), which becomes the AAR. */
  authResults: string;
  /** What validating the incoming chain gave: the new seal's `cv=`. */
  cv: ChainValidation;
  /** Signing time in seconds since the epoch (`t=`); the clock's time when not given. */
  timestamp?: number;
  /** Header field names for the new AMS's `h=`, in order; a sensible list when not given. */
  headers?: string[];
  /** Where the time comes from when `timestamp` is not given. */
  clock?: Clock;
  /**
   * The relaxed/sha256 hash of the body, when a shared BodyHashes already has it: the body then
   * need not be fed to the sealing.
   */
  bodyHash?: Buffer;
}
