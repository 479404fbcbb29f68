/**
 * Durations as a postmaster writes them in the configuration file: `29m`, `12h`, `1h30m`,
 * `40d`, `500ms`, `90s`.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;

/**
 * Milliseconds for a duration text; null when the text is no duration. Units: `ms`, `s`, `m`,
 * `h`, `d`, `w`; several parts add up, largest first or not. A bare number is refused: it is
 * too easy to mean seconds and write minutes.
 *
 * @example
 * parseDuration('29m')    // 1740000
 * parseDuration('1h30m')  // 5400000
 * parseDuration('30')     // null
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.length > 64) return null;
  PART.lastIndex = 0;
  let total = 0;
  let end = 0;
  for (let m = PART.exec(trimmed); m !== null; m = PART.exec(trimmed)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    end = PART.lastIndex;
  }
  if (end !== trimmed.length) return null;
  return Number.isFinite(total) ? Math.round(total) : null;
}

/**
 * A duration for people: the largest units that divide it, `29m`, `1h30m`, `0s`.
 *
 * @example
 * formatDuration(5_400_000)  // '1h30m'
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit] as number;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
