/**
 * Weighing the ratings a registry record carries: only services the receiver trusts count, each
 * with the receiver's score for its grade and its weight; reading stops once the weights are
 * enough to decide, so a record cannot dilute good ratings with a long tail of others.
 */
import type { ServiceRating } from './record.js';
import type { RegistryRating, RegistrySettings } from './types.js';

export interface Weighed {
  /** The ratings that counted, `S1:A,M2:B`. */
  ratings: string;
  average: number;
  minimum: number;
  maximum: number;
  rating: RegistryRating;
}

/**
 * The trusted ratings' weighted average, minimum and maximum; null when none is trusted.
 *
 * @example
 * weighRatings([{ service: 'S1', grade: 'A' }, { service: 'X9', grade: 'D' }], settings)
 * // { ratings: 'S1:A', average: 9, minimum: 9, maximum: 9, rating: 'HIGH' }
 */
export function weighRatings(
  ratings: readonly ServiceRating[],
  settings: Pick<RegistrySettings, 'services' | 'enoughWeight' | 'highMinimum' | 'highMaximum'>,
): Weighed | null {
  const counted: string[] = [];
  let total = 0;
  let weights = 0;
  let minimum = Number.POSITIVE_INFINITY;
  let maximum = Number.NEGATIVE_INFINITY;
  for (const { service, grade } of ratings) {
    const trusted = Object.hasOwn(settings.services, service) ? settings.services[service] : null;
    // A grade the receiver has no score for says nothing it can weigh.
    if (!trusted || !Object.hasOwn(trusted.grades, grade) || trusted.weight <= 0) continue;
    const score = trusted.grades[grade]!;
    counted.push(`${service}:${grade}`);
    total += score * trusted.weight;
    weights += trusted.weight;
    minimum = Math.min(minimum, score);
    maximum = Math.max(maximum, score);
    if (weights >= settings.enoughWeight) break;
  }
  if (weights === 0) return null;
  const rating: RegistryRating =
    minimum > settings.highMinimum && maximum > settings.highMaximum ? 'HIGH' : 'LOW';
  return { ratings: counted.join(','), average: total / weights, minimum, maximum, rating };
}
