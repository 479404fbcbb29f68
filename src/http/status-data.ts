/**
 * Reading what the status page shows. Each part of the page is read on its own, each wait
 * bounded, so that a store that fails or hangs costs the part that needed it and not the page:
 * the postmaster looking at the page is most likely looking because something is wrong.
 */
import {
  type DecisionCount,
  type GreylistSummary,
  MAX_DECISION_SEARCH,
  type Store,
  type StoredDecision,
} from '../store/types.js';
import { errorText, withTimeout } from './health.js';
import type { StatusInfo, StatusSource } from './source.js';

/** Decision-log lines per page. */
export const PAGE_SIZE = 50;
/** Recent tempfails shown. */
export const TEMPFAIL_COUNT = 20;
/** The chart's bucket: one bar per minute. */
export const CHART_BUCKET_MS = 60_000;
/** Longest search text the store takes. */
export const MAX_SEARCH_LENGTH = MAX_DECISION_SEARCH;
/** How long one store read may take before its part of the page shows an error. */
export const DEFAULT_READ_TIMEOUT_MS = 5000;

/** A part of the page: what was read, or why it could not be. */
export type Part<T> = { ok: true; value: T } | { ok: false; error: string };

/** What the visitor asked for: a search and a page of the decision log. */
export interface StatusQuery {
  /** Text to look for in addresses, names and HELO; empty for all lines. */
  search: string;
  /** Show lines older than this id (the "older" link). */
  beforeId?: number;
}

/** The chart's window and the counts in it. */
export interface ChartData {
  /** Start of the first bucket (a whole minute). */
  from: number;
  /** End of the last bucket (a whole minute, after `now`). */
  to: number;
  hours: number;
  counts: DecisionCount[];
}

/** One page of the decision log, and the id to page on from when there are older lines. */
export interface DecisionPage {
  rows: StoredDecision[];
  olderBefore?: number;
}

/** Everything the status page shows, read at `now`. */
export interface StatusData {
  now: number;
  info: StatusInfo;
  store: string;
  whitelistAt: number;
  query: StatusQuery;
  chart: Part<ChartData>;
  greylist: Part<GreylistSummary>;
  tempfails: Part<StoredDecision[]>;
  decisions: Part<DecisionPage>;
}

/**
 * Search text as the store takes it: trimmed, at most MAX_SEARCH_LENGTH characters (cut on a
 * code point), NUL as U+FFFD (the store refuses NUL, and stores it as U+FFFD where it keeps it).
 *
 * @example
 * searchText('  192.0.2.7 ')  // '192.0.2.7'
 */
export function searchText(raw: string): string {
  const trimmed = raw.trim().replaceAll('\0', '\uFFFD');
  if (trimmed.length <= MAX_SEARCH_LENGTH) return trimmed;
  let cut = '';
  for (const point of trimmed) {
    if (cut.length + point.length > MAX_SEARCH_LENGTH) break;
    cut += point;
  }
  return cut;
}

/**
 * Reads every part of the status page from `source` at `now`. Never rejects for a store
 * failure: the failing part carries the error instead.
 *
 * @example
 * const data = await readStatus(source, { search: '192.0.2.7' }, Date.now());
 * if (!data.decisions.ok) console.log(data.decisions.error);
 */
export async function readStatus(
  source: StatusSource,
  query: StatusQuery,
  now: number,
  readTimeoutMs = DEFAULT_READ_TIMEOUT_MS,
): Promise<StatusData> {
  const info = source.info();
  const store = source.store();
  const whitelistAt = source.whitelistAt();
  const hours = chartHours(source.chartHours());
  const bounded = <T>(what: string, read: (s: Store) => Promise<T>): Promise<Part<T>> =>
    part(() => withTimeout(read(store), readTimeoutMs, what));

  const from = Math.floor((now - hours * 3_600_000) / CHART_BUCKET_MS) * CHART_BUCKET_MS;
  const to = Math.floor(now / CHART_BUCKET_MS) * CHART_BUCKET_MS + CHART_BUCKET_MS;
  const search = searchText(query.search);
  const [chart, greylist, tempfails, decisions] = await Promise.all([
    bounded('counting decisions', async (s) => ({
      from,
      to,
      hours,
      counts: await s.countDecisions(from, now + 1, CHART_BUCKET_MS),
    })),
    bounded('the greylist summary', (s) => s.greylistSummary(whitelistAt)),
    bounded('reading tempfails', (s) =>
      s.findDecisions({ action: 'tempfail', limit: TEMPFAIL_COUNT }),
    ),
    bounded('reading the decision log', async (s): Promise<DecisionPage> => {
      // One line more than a page says whether an "older" link leads anywhere.
      const rows = await s.findDecisions({
        ...(search === '' ? {} : { search }),
        ...(query.beforeId === undefined ? {} : { beforeId: query.beforeId }),
        limit: PAGE_SIZE + 1,
      });
      if (rows.length <= PAGE_SIZE) return { rows };
      const shown = rows.slice(0, PAGE_SIZE);
      return { rows: shown, olderBefore: shown.at(-1)!.id };
    }),
  ]);
  return {
    now,
    info,
    store: store.description,
    whitelistAt,
    query: { search, ...(query.beforeId === undefined ? {} : { beforeId: query.beforeId }) },
    chart,
    greylist,
    tempfails,
    decisions,
  };
}

function chartHours(hours: number): number {
  // The configuration bounds it; a source that does not still gets a chart that fits a page.
  return Number.isFinite(hours) ? Math.min(48, Math.max(1, Math.round(hours))) : 3;
}

async function part<T>(read: () => Promise<T>): Promise<Part<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
}
