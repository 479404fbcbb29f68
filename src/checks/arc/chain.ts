/**
 * The ARC sets of a message grouped by instance, and the structural rules of RFC 8617 section
 * 5.2 (steps 1 to 3) that come before any signature: no sets is `none`; too many, a gap, a
 * missing or repeated member, an unreadable instance, or a seal's cv= out of turn is `fail`.
 */
import type { HeaderField } from '../message/index.js';
import {
  ARC_FIELD_KIND,
  type ArcFieldKind,
  KIND_NAME,
  type MessageSignatureTags,
  type ReadField,
  type ReadSeal,
  type ResultsTags,
  readAuthResults,
  readMessageSignature,
  readSeal,
} from './fields.js';
import { ARC_MAX_INSTANCES, type ArcAuthResultsEntry } from './types.js';

/** One whole ARC set. */
export interface ArcSet {
  instance: number;
  results: ReadField<ResultsTags>;
  signature: ReadField<MessageSignatureTags>;
  seal: ReadSeal;
}

/** What the structure of the chain allows. */
export type ChainStructure =
  | { kind: 'none' }
  | {
      kind: 'broken';
      reason: string;
      /** Highest instance seen (0 when none could be read). */
      instances: number;
      /** The readable AARs, one per instance, for reporting. */
      authResults: ArcAuthResultsEntry[];
      /** The newest seal says cv=fail: no one may seal this chain again. */
      newestSaysFail?: true;
    }
  | {
      kind: 'whole';
      /** `sets[k]` is instance k + 1. */
      sets: ArcSet[];
      authResults: ArcAuthResultsEntry[];
    };

/** Most ARC fields read at all: three per allowed set; beyond that the chain cannot be whole. */
const MAX_ARC_FIELDS = 3 * ARC_MAX_INSTANCES;
/**
 * Most bytes of all ARC fields together. Each seal signs every older set, so checking N seals
 * hashes about N/2 times this; real sets take under 2 KB each.
 */
export const MAX_ARC_BYTES = 256 * 1024;

interface Members {
  results: ReadField<ResultsTags>[];
  signature: ReadField<MessageSignatureTags>[];
  seal: ReadSeal[];
}

/**
 * Group the ARC fields of a message into sets and check the chain's structure.
 *
 * @example
 * readChain(parseMessage(message).headers, 50).kind  // 'none' | 'broken' | 'whole'
 */
export function readChain(headers: readonly HeaderField[], maxInstances: number): ChainStructure {
  let count = 0;
  let bytes = 0;
  for (const field of headers) {
    if (ARC_FIELD_KIND[field.key] === undefined) continue;
    count++;
    bytes += field.raw.length;
  }
  if (count === 0) return { kind: 'none' };
  if (count > MAX_ARC_FIELDS) {
    return broken(`${count} ARC fields, more than ${MAX_ARC_FIELDS}`, 0, []);
  }
  if (bytes > MAX_ARC_BYTES) return broken(`ARC fields longer than ${MAX_ARC_BYTES} bytes`, 0, []);

  const byInstance = new Map<number, Members>();
  let unplaced: string | undefined;
  let highest = 0;
  const members = (instance: number): Members => {
    let m = byInstance.get(instance);
    if (!m) {
      m = { results: [], signature: [], seal: [] };
      byInstance.set(instance, m);
    }
    if (instance > highest) highest = instance;
    return m;
  };
  for (const field of headers) {
    const kind = ARC_FIELD_KIND[field.key];
    if (kind === 'seal') {
      const read = readSeal(field);
      if ('reason' in read) unplaced ??= read.reason;
      else members(read.instance).seal.push(read);
    } else if (kind === 'signature') {
      const read = readMessageSignature(field);
      if ('reason' in read) unplaced ??= read.reason;
      else members(read.instance).signature.push(read);
    } else if (kind === 'results') {
      const read = readAuthResults(field);
      if ('reason' in read) unplaced ??= read.reason;
      else members(read.instance).results.push(read);
    }
  }
  const authResults = reportedResults(byInstance, highest);

  const limit = Math.min(maxInstances, ARC_MAX_INSTANCES);
  if (highest > limit)
    return broken(`${highest} ARC sets, more than ${limit}`, highest, authResults);
  // Step 2: the newest sealer already found the chain failed; nothing before it matters.
  const newestSeals = byInstance.get(highest)?.seal ?? [];
  if (newestSeals.some((seal) => seal.cv === 'fail')) {
    return {
      ...broken(`i=${highest} seal says cv=fail`, highest, authResults),
      newestSaysFail: true,
    };
  }
  if (unplaced !== undefined) return broken(unplaced, highest, authResults);

  const sets: ArcSet[] = [];
  for (let instance = 1; instance <= highest; instance++) {
    const m = byInstance.get(instance);
    if (!m) return broken(`gap at i=${instance}`, highest, authResults);
    for (const kind of ['results', 'signature', 'seal'] as const) {
      const problem = memberProblem(instance, kind, m[kind].length);
      if (problem) return broken(problem, highest, authResults);
    }
    const results = m.results[0]!;
    if (!results.ok) return broken(`i=${instance} AAR: ${results.problem}`, highest, authResults);
    const seal = m.seal[0]!;
    const wanted = instance === 1 ? 'none' : 'pass';
    if (seal.cv === undefined) {
      const why = seal.ok ? 'unreadable cv=' : seal.problem;
      return broken(`i=${instance} seal: ${why}`, highest, authResults);
    }
    if (seal.cv !== wanted) {
      return broken(`i=${instance} seal says cv=${seal.cv}, not ${wanted}`, highest, authResults);
    }
    sets.push({ instance, results, signature: m.signature[0]!, seal });
  }
  return { kind: 'whole', sets, authResults };
}

function memberProblem(instance: number, kind: ArcFieldKind, count: number): string | undefined {
  if (count === 1) return undefined;
  if (count === 0) return `i=${instance} has no ${KIND_NAME[kind]}`;
  return `i=${instance} has ${count} ${KIND_NAME[kind]} fields`;
}

/** The AAR of each instance that has exactly one readable one, oldest first. */
function reportedResults(
  byInstance: ReadonlyMap<number, Members>,
  highest: number,
): ArcAuthResultsEntry[] {
  const out: ArcAuthResultsEntry[] = [];
  for (let instance = 1; instance <= highest; instance++) {
    const results = byInstance.get(instance)?.results;
    const only = results?.length === 1 ? results[0] : undefined;
    if (only?.ok) out.push({ instance, ...only.tags });
  }
  return out;
}

function broken(
  reason: string,
  instances: number,
  authResults: ArcAuthResultsEntry[],
): ChainStructure & { kind: 'broken' } {
  return { kind: 'broken', reason, instances, authResults };
}
