/**
 * Work limits shared by every check: the defaults, overridden by what the caller gives.
 */

/**
 * Merge given limits over the defaults. Keys given as `undefined` keep their default; anything
 * but a whole number of at least 0 is a programming error, named with the check's label.
 *
 * @example
 * resolveLimits('SPF', DEFAULT_SPF_LIMITS, { terms: 20 }).terms  // 20
 */
export function resolveLimits<L extends { [K in keyof L]: number }>(
  label: string,
  defaults: Readonly<L>,
  given: Partial<L> | undefined,
): L {
  const limits = { ...defaults } as L;
  if (!given) return limits;
  for (const key of Object.keys(defaults) as Array<keyof L>) {
    const value = given[key];
    if (value === undefined) continue;
    if (!(Number.isInteger(value) && (value as number) >= 0)) {
      throw new TypeError(
        `${label} limit ${String(key)} must be a whole number, got ${String(value)}`,
      );
    }
    limits[key] = value as L[keyof L];
  }
  return limits;
}
