/**
 * bley's scoring of a new triplet as arithmetic over ranges. Each score is known exactly, or,
 * when the DNS lookup behind it failed, known only to lie between a lowest and a highest value.
 * The verdict is taken when the most and the least favourable readings agree; when they do not,
 * a DNS failure could have changed it, and the caller greylists with `dns-tempfail` rather than
 * accept or greylist on a guess.
 */

/** A score known to lie in `[min, max]`; `min === max` when it is known exactly. */
export interface ScoreRange {
  min: number;
  max: number;
}

/**
 * The scores of a new triplet:
 * - `dnswl`: weights of the DNSWLs listing the client;
 * - `dnsbl`: weights of the DNSBLs listing the client;
 * - `helo`: bley's HELO score, 0 to 2;
 * - `dyn`: 1 when the verified client name looks dynamic;
 * - `spf`: 1 for an SPF fail or softfail (null: not evaluated, counts 0);
 * - `sEqR`: 1 when the sender is the recipient.
 */
export interface ScoreFacts {
  dnswl: ScoreRange;
  dnsbl: ScoreRange;
  helo: ScoreRange;
  dyn: ScoreRange;
  spf: ScoreRange | null;
  sEqR: number;
}

export interface ScoreThresholds {
  /** Pass at once when the DNSWL score reaches this. */
  dnswl: number;
  /** Greylist when the DNSBL score reaches this. */
  dnsbl: number;
  /** Greylist when helo + dyn + spf + sEqR reaches this. */
  rfc: number;
}

/** What the scores say. */
export type ScoreOutcome =
  | { verdict: 'pass'; reason: 'dnswl' | 'clean' }
  | { verdict: 'greylist'; reason: 'dnsbl' | 'score' };

/** The exact range of a known score. */
export function exactly(value: number): ScoreRange {
  return { min: value, max: value };
}

/** Sum of helo, dyn, spf and sEqR in the most (`best`) or least (`worst`) favourable reading. */
export function rfcSum(facts: ScoreFacts, reading: 'best' | 'worst'): number {
  const pick = (r: ScoreRange | null) => (r === null ? 0 : reading === 'best' ? r.min : r.max);
  return pick(facts.helo) + pick(facts.dyn) + pick(facts.spf) + facts.sEqR;
}

/**
 * The outcome in one reading: `best` takes every unknown in the client's favour (failed DNSWLs
 * listed, failed DNSBLs not, the lowest RFC scores), `worst` against it. Order as bley's: a
 * DNSWL listing passes, then a DNSBL score at the threshold greylists, then the RFC sum.
 *
 * @example
 * outcomeIn({ dnswl: exactly(0), dnsbl: exactly(0), helo: exactly(2), dyn: exactly(0),
 *   spf: null, sEqR: 0 }, { dnswl: 1, dnsbl: 1, rfc: 2 }, 'best')
 * // { verdict: 'greylist', reason: 'score' }
 */
export function outcomeIn(
  facts: ScoreFacts,
  thresholds: ScoreThresholds,
  reading: 'best' | 'worst',
): ScoreOutcome {
  const best = reading === 'best';
  if ((best ? facts.dnswl.max : facts.dnswl.min) >= thresholds.dnswl) {
    return { verdict: 'pass', reason: 'dnswl' };
  }
  if ((best ? facts.dnsbl.min : facts.dnsbl.max) >= thresholds.dnsbl) {
    return { verdict: 'greylist', reason: 'dnsbl' };
  }
  if (rfcSum(facts, reading) >= thresholds.rfc) return { verdict: 'greylist', reason: 'score' };
  return { verdict: 'pass', reason: 'clean' };
}

/**
 * The outcome when it does not depend on what failed, else `undecided`. The reason given is the
 * one that holds whatever the failed lookups would have said: for a pass, the least favourable
 * reading's; for a greylisting, the most favourable reading's.
 *
 * @example
 * judge({ dnswl: exactly(0), dnsbl: { min: 0, max: 1 }, helo: exactly(0), dyn: exactly(0),
 *   spf: null, sEqR: 0 }, { dnswl: 1, dnsbl: 1, rfc: 2 })
 * // 'undecided': the DNSBL that failed could have listed the client
 */
export function judge(facts: ScoreFacts, thresholds: ScoreThresholds): ScoreOutcome | 'undecided' {
  const best = outcomeIn(facts, thresholds, 'best');
  const worst = outcomeIn(facts, thresholds, 'worst');
  if (best.verdict !== worst.verdict) return 'undecided';
  return best.verdict === 'pass' ? worst : best;
}

/**
 * Whether SPF (0, or 1 for fail/softfail) could still change the outcome of the other scores:
 * bley's rule "sum < threshold ≤ sum + 1 and no DNSBL verdict", extended to scores that are
 * known only as ranges. When SPF cannot settle an outcome that failed lookups left open, it is
 * not worth its queries either.
 *
 * @example
 * spfCouldMatter({ dnswl: exactly(0), dnsbl: exactly(0), helo: exactly(1), dyn: exactly(0),
 *   spf: null, sEqR: 0 }, { dnswl: 1, dnsbl: 1, rfc: 2 })  // true: 1 < 2 <= 1 + 1
 */
export function spfCouldMatter(facts: ScoreFacts, thresholds: ScoreThresholds): boolean {
  const without = judge({ ...facts, spf: exactly(0) }, thresholds);
  const failing = judge({ ...facts, spf: exactly(1) }, thresholds);
  if (without === 'undecided' && failing === 'undecided') return false;
  if (without === 'undecided' || failing === 'undecided') return true;
  return without.verdict !== failing.verdict;
}
