/**
 * The decision-log report: what the daemon decided over a period, summed up for the postmaster
 * — verdicts and their reasons, SPF results, call-back outcomes, how long greylisting held mail
 * and how much never came back, who was refused most, and how often DNS trouble deferred mail.
 *
 * It reads the log a page at a time and keeps only the sums (and, for greylisting, the set of
 * triplets it has seen), so a month of a busy site's log costs pages, not memory.
 * Only the store's types are imported: the store itself is passed in.
 */
import type { GreylistSummary, Store, StoredDecision } from '../store/types.js';
import { escapeForLog } from '../text/index.js';
import { type ChartSeries, svgChart } from './charts.js';
import { escapeHtml } from './html.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Decision-log lines read per store call. */
export const REPORT_PAGE_SIZE = 5000;
/** Entries kept in each "top" list. */
export const REPORT_TOP = 10;
/** Time buckets a timeline has at most: more would not fit a chart or a page. */
const MAX_BUCKETS = 200;
/** Bucket widths a timeline uses, the first that yields at most MAX_BUCKETS. */
const BUCKET_STEPS = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY];

/** The RFC 7208 result words, in the order reports list them. */
export const SPF_RESULT_WORDS = [
  'pass',
  'fail',
  'softfail',
  'neutral',
  'none',
  'permerror',
  'temperror',
] as const;
const SPF_WORDS: ReadonlySet<string> = new Set(SPF_RESULT_WORDS);

/**
 * Reasons of tempfail lines that are DNS trouble by construction: an SPF temperror, a CSA or
 * three-strikes lookup that failed, DMARC left in doubt, a registry lookup that failed or timed
 * out, and greylisting's own `dns-tempfail` (scoring could not finish).
 */
const DNS_REASONS: ReadonlySet<string> = new Set([
  'spf-temperror',
  'csa-tempfail',
  'three-strikes-tempfail',
  'dmarc-temperror',
  'registry-dns-error',
  'registry-timeout',
  'dns-tempfail',
]);
/** Tags that name DNS trouble (`three strikes DNS failure`, `MX lookup for x failed (timeout)`). */
const DNS_TAG = /\bDNS\b|\btemperror\b|\blookup\b.*\bfailed\b/i;

/** The greylist delay histogram's buckets, in seconds: [from, to). */
export const DELAY_BUCKETS: ReadonlyArray<{ label: string; from: number; to: number | null }> = [
  { label: '<1m', from: 0, to: 60 },
  { label: '1–5m', from: 60, to: 300 },
  { label: '5–15m', from: 300, to: 900 },
  { label: '15–60m', from: 900, to: 3600 },
  { label: '1–4h', from: 3600, to: 14_400 },
  { label: '>4h', from: 14_400, to: null },
];

/** A name and how many lines had it. */
export interface NamedCount {
  name: string;
  count: number;
}

/** Lines with one action and one reason. */
export interface ReasonCount {
  action: string;
  reason: string;
  count: number;
}

/** Lines of one name (an action, an SPF result) in one time bucket. */
export interface BucketCount {
  /** The bucket's start (ms), a whole multiple of the report's `bucketMs`. */
  bucket: number;
  name: string;
  count: number;
}

/** One bar of the greylist delay histogram. */
export interface DelayBucket {
  label: string;
  /** Seconds, inclusive. */
  fromSeconds: number;
  /** Seconds, exclusive; null for the last, open bucket. */
  toSeconds: number | null;
  count: number;
}

/** Everything the report says about a period. Lists are sorted by count, largest first. */
export interface DecisionReport {
  /** The period: lines at or after `from` and before `to` (ms). */
  from: number;
  to: number;
  /** The width of a timeline bucket (an hour, unless the period is long). */
  bucketMs: number;
  /** Decision-log lines in the period. */
  total: number;
  /** Lines the policy engine wrote (they name a stage). */
  policyLines: number;
  /** Lines greylisting wrote (they name no stage). */
  greylistLines: number;
  /** Lines by action: `pass`, `reject`, `tempfail`, `greylist`, `quarantine`, ... */
  actions: NamedCount[];
  /** Lines by action and reason word. */
  reasons: ReasonCount[];
  /** Lines by stage; greylisting's lines under `greylisting`. */
  stages: NamedCount[];
  spf: {
    /** Lines that carry an SPF result (a tag `SPF <result>` or a reason `spf-<result>`). */
    lines: number;
    results: NamedCount[];
  };
  cbv: {
    /** Lines that name a call-back or DSN that was made or skipped. */
    lines: number;
    /** `CBV accepted`, `CBV rejected`, `CBV tempfail`, `DSN ...`, `CBV skipped (...)`. */
    outcomes: NamedCount[];
    /** Of those, outcomes that came from the call-back cache. */
    cached: number;
  };
  greylisting: {
    /** Greylisting's `greylist` lines (every refusal, first attempts and early retries). */
    greylisted: number;
    /** Distinct triplets (client, sender, recipient) among them. */
    triplets: number;
    /** Distinct greylisted triplets with no pass after their last greylisting in the period. */
    neverRetried: number;
    /** Passes after waiting (lines with a delay). */
    passedAfterWaiting: number;
    delays: {
      buckets: DelayBucket[];
      /** Nearest-rank median of the delays, in seconds; null without any. */
      medianSeconds: number | null;
      /** Nearest-rank 90th percentile, in seconds; null without any. */
      p90Seconds: number | null;
      maxSeconds: number | null;
    };
  };
  /** Refused (`reject`) lines' most frequent clients, HELO names and sender domains. */
  rejected: {
    lines: number;
    clients: NamedCount[];
    helos: NamedCount[];
    /** The sender's domain, lower-cased; `<>` for the null sender. */
    senderDomains: NamedCount[];
  };
  /** Deferrals for DNS trouble, by reason. */
  dnsTempfails: {
    total: number;
    reasons: NamedCount[];
  };
  /** Lines per bucket and action; buckets without lines are absent. */
  timeline: BucketCount[];
  /** Lines carrying an SPF result, per bucket and result; empty buckets are absent. */
  spfTimeline: BucketCount[];
  /** What greylisting holds now (not limited to the period), when asked for. */
  greylistNow?: GreylistSummary;
}

/** The period and what else to read. */
export interface ReportOptions {
  /** Start (ms, inclusive). */
  from: number;
  /** End (ms, exclusive). */
  to: number;
  /**
   * The auto-whitelist threshold (`[greylist] auto_whitelist_clients`): when given, the report
   * also says what greylisting holds now (`greylistNow`).
   */
  whitelistAt?: number;
  /** Lines per store call (default REPORT_PAGE_SIZE, at most the store's 10000). */
  pageSize?: number;
}

/**
 * The timeline bucket for a period: an hour, or the first of 3 h, 6 h, 12 h, a day, a week that
 * keeps the timeline within 200 buckets (whole days beyond).
 *
 * @example
 * reportBucketMs(0, 7 * 86_400_000)   // 3_600_000
 * reportBucketMs(0, 30 * 86_400_000)  // 21_600_000
 */
export function reportBucketMs(from: number, to: number): number {
  const span = Math.max(0, to - from);
  const step = BUCKET_STEPS.find((s) => span / s <= MAX_BUCKETS);
  return step ?? Math.ceil(span / MAX_BUCKETS / DAY) * DAY;
}

/**
 * Reads the decision log of [from, to) from the store, newest first, a page at a time, and sums
 * it up. Rejects with the store's error when a read fails.
 *
 * @example
 * const now = Date.now();
 * const report = await buildReport(store, { from: now - 86_400_000, to: now, whitelistAt: 5 });
 * process.stdout.write(renderText(report));
 */
export async function buildReport(store: Store, options: ReportOptions): Promise<DecisionReport> {
  const { from, to } = options;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from) {
    throw new RangeError(`report: not a period: from ${from} to ${to}`);
  }
  const pageSize = options.pageSize ?? REPORT_PAGE_SIZE;
  const sums = new ReportSums(from, to, reportBucketMs(from, to));
  let beforeId: number | undefined;
  for (;;) {
    const page = await store.findDecisions({
      from,
      to,
      limit: pageSize,
      ...(beforeId !== undefined ? { beforeId } : {}),
    });
    for (const line of page) sums.add(line);
    const last = page.at(-1);
    if (page.length < pageSize || !last) break;
    beforeId = last.id;
  }
  const report = sums.report();
  if (options.whitelistAt !== undefined) {
    report.greylistNow = await store.greylistSummary(options.whitelistAt);
  }
  return report;
}

/** Counts by name, in a Map: names come from the log, and `__proto__` is a fine HELO name. */
class Tally {
  readonly counts = new Map<string, number>();
  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }
  /** Largest first, then by name; at most `limit`. */
  sorted(limit = Number.POSITIVE_INFINITY): NamedCount[] {
    return [...this.counts]
      .map(([name, count]) => ({ name, count }))
      .sort((a, b) => b.count - a.count || compareText(a.name, b.name))
      .slice(0, limit);
  }
}

/** The sums, line by line; lines must come newest first (never-retried depends on it). */
class ReportSums {
  total = 0;
  policyLines = 0;
  greylistLines = 0;
  readonly actions = new Tally();
  readonly reasons = new Map<string, ReasonCount>();
  readonly stages = new Tally();
  readonly spf = new Tally();
  spfLines = 0;
  readonly cbv = new Tally();
  cbvLines = 0;
  cbvCached = 0;
  greylisted = 0;
  readonly greylistedTriplets = new Set<string>();
  /** Triplets seen passing: every greylisting of theirs read later (older) was retried. */
  readonly passedLater = new Set<string>();
  readonly neverRetried = new Set<string>();
  readonly delays = new Tally();
  passedAfterWaiting = 0;
  rejectedLines = 0;
  readonly rejectedClients = new Tally();
  readonly rejectedHelos = new Tally();
  readonly rejectedDomains = new Tally();
  readonly dnsTempfails = new Tally();
  readonly timeline = new Map<number, Tally>();
  readonly spfTimeline = new Map<number, Tally>();

  constructor(
    readonly from: number,
    readonly to: number,
    readonly bucketMs: number,
  ) {}

  add(line: StoredDecision): void {
    if (line.time < this.from || line.time >= this.to) return;
    this.total += 1;
    const greylisting = line.stage === undefined || line.stage === null;
    const tags = Array.isArray(line.tags) ? line.tags : [];
    if (greylisting) this.greylistLines += 1;
    else this.policyLines += 1;
    this.actions.add(line.action);
    const reasonKey = `${line.action}\u0000${line.reason}`;
    const reason = this.reasons.get(reasonKey);
    if (reason) reason.count += 1;
    else this.reasons.set(reasonKey, { action: line.action, reason: line.reason, count: 1 });
    this.stages.add(greylisting ? 'greylisting' : (line.stage as string));
    const bucket = Math.floor(line.time / this.bucketMs) * this.bucketMs;
    bucketTally(this.timeline, bucket).add(line.action);

    // Greylisting's lines carry the SPF result where they are the request's only line (the
    // policy server's RCPT); the milter's carry none, its end of message does.
    const spf = spfResultOf(line.reason, tags);
    if (spf !== undefined) {
      this.spfLines += 1;
      this.spf.add(spf);
      bucketTally(this.spfTimeline, bucket).add(spf);
    }
    if (!greylisting) {
      const cbv = cbvOutcomeOf(line.reason, tags);
      if (cbv !== undefined) {
        this.cbvLines += 1;
        this.cbv.add(cbv);
        if (tags.includes('cached')) this.cbvCached += 1;
      }
    } else {
      const key = `${line.client}\u0000${line.sender}\u0000${line.recipient}`;
      if (line.action === 'pass') {
        this.passedLater.add(key);
        if (typeof line.delay === 'number' && Number.isFinite(line.delay) && line.delay >= 0) {
          this.passedAfterWaiting += 1;
          this.delays.add(String(Math.floor(line.delay)));
        }
      } else if (line.action === 'greylist') {
        this.greylisted += 1;
        this.greylistedTriplets.add(key);
        if (!this.passedLater.has(key)) this.neverRetried.add(key);
      }
    }

    if (line.action === 'reject') {
      this.rejectedLines += 1;
      this.rejectedClients.add(line.client);
      if (line.helo !== undefined && line.helo !== null) this.rejectedHelos.add(line.helo);
      this.rejectedDomains.add(senderDomain(line.sender));
    }
    if (isDnsTempfail(line.action, line.reason, tags, greylisting)) {
      this.dnsTempfails.add(line.reason);
    }
  }

  report(): DecisionReport {
    const delays = [...this.delays.counts]
      .map(([seconds, count]) => [Number(seconds), count] as const)
      .sort((a, b) => a[0] - b[0]);
    const buckets: DelayBucket[] = DELAY_BUCKETS.map((b) => ({
      label: b.label,
      fromSeconds: b.from,
      toSeconds: b.to,
      count: 0,
    }));
    for (const [seconds, count] of delays) {
      const bucket = buckets.find(
        (b) => seconds >= b.fromSeconds && (b.toSeconds === null || seconds < b.toSeconds),
      );
      if (bucket) bucket.count += count;
    }
    return {
      from: this.from,
      to: this.to,
      bucketMs: this.bucketMs,
      total: this.total,
      policyLines: this.policyLines,
      greylistLines: this.greylistLines,
      actions: this.actions.sorted(),
      reasons: [...this.reasons.values()].sort(
        (a, b) =>
          b.count - a.count || compareText(a.action, b.action) || compareText(a.reason, b.reason),
      ),
      stages: this.stages.sorted(),
      spf: { lines: this.spfLines, results: this.spf.sorted() },
      cbv: { lines: this.cbvLines, outcomes: this.cbv.sorted(), cached: this.cbvCached },
      greylisting: {
        greylisted: this.greylisted,
        triplets: this.greylistedTriplets.size,
        neverRetried: this.neverRetried.size,
        passedAfterWaiting: this.passedAfterWaiting,
        delays: {
          buckets,
          medianSeconds: nearestRank(delays, 0.5),
          p90Seconds: nearestRank(delays, 0.9),
          maxSeconds: delays.at(-1)?.[0] ?? null,
        },
      },
      rejected: {
        lines: this.rejectedLines,
        clients: this.rejectedClients.sorted(REPORT_TOP),
        helos: this.rejectedHelos.sorted(REPORT_TOP),
        senderDomains: this.rejectedDomains.sorted(REPORT_TOP),
      },
      dnsTempfails: {
        total: [...this.dnsTempfails.counts.values()].reduce((a, b) => a + b, 0),
        reasons: this.dnsTempfails.sorted(),
      },
      timeline: flatten(this.timeline),
      spfTimeline: flatten(this.spfTimeline),
    };
  }
}

function bucketTally(map: Map<number, Tally>, bucket: number): Tally {
  let tally = map.get(bucket);
  if (!tally) {
    tally = new Tally();
    map.set(bucket, tally);
  }
  return tally;
}

/** Buckets in time order, names within a bucket by count (as the chart stacks them). */
function flatten(map: Map<number, Tally>): BucketCount[] {
  return [...map.entries()]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([bucket, tally]) =>
      tally.sorted().map(({ name, count }) => ({ bucket, name, count })),
    );
}

/** The value at rank ceil(p × n) of a sorted list of (value, count). */
function nearestRank(sorted: ReadonlyArray<readonly [number, number]>, p: number): number | null {
  const n = sorted.reduce((sum, [, count]) => sum + count, 0);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(p * n));
  let seen = 0;
  for (const [value, count] of sorted) {
    seen += count;
    if (seen >= rank) return value;
  }
  return sorted.at(-1)?.[0] ?? null;
}

/**
 * The SPF result a policy line carries: the mail stage's tag `SPF <result>`, else a reason or
 * tag `spf-<result>` (a call-back owed for a softfail names its reason so). `HELO SPF pass` and
 * `hello SPF fail` are the HELO identity's, not the sender's, and do not count.
 */
function spfResultOf(reason: string, tags: readonly string[]): string | undefined {
  for (const tag of tags) {
    const m = /^SPF (\w+)$/.exec(tag);
    if (m && SPF_WORDS.has(m[1] as string)) return m[1];
  }
  for (const word of [reason, ...tags]) {
    const m = /^spf-(\w+)$/.exec(word);
    if (m && SPF_WORDS.has(m[1] as string)) return m[1];
  }
  return undefined;
}

/**
 * What became of a call-back or DSN, from the tags the verification wrote: its kind (`CBV`,
 * `DSN`) as a tag of its own, its refusal in the reason (`cbv-rejected`, `dsn-tempfail`), a skip
 * in a tag; a line that names one and was not refused for it was accepted.
 */
function cbvOutcomeOf(reason: string, tags: readonly string[]): string | undefined {
  const kind = tags.find((t) => t === 'CBV' || t === 'DSN');
  if (kind === undefined) return undefined;
  const lower = kind.toLowerCase();
  if (reason === `${lower}-rejected`) return `${kind} rejected`;
  if (reason === `${lower}-tempfail`) return `${kind} tempfail`;
  if (tags.includes('skipped: good standing')) return `${kind} skipped (good standing)`;
  if (tags.includes('null sender')) return `${kind} skipped (null sender)`;
  if (tags.includes('no verifier')) return `${kind} skipped (no verifier)`;
  return `${kind} accepted`;
}

function isDnsTempfail(
  action: string,
  reason: string,
  tags: readonly string[],
  greylisting: boolean,
): boolean {
  if (greylisting) return action === 'greylist' && reason === 'dns-tempfail';
  if (action !== 'tempfail') return false;
  return DNS_REASONS.has(reason) || tags.some((tag) => DNS_TAG.test(tag));
}

/** The domain of a sender address, lower-cased; `<>` for the null sender. */
function senderDomain(sender: string): string {
  if (sender === '' || sender === '<>') return '<>';
  const at = sender.lastIndexOf('@');
  return at < 0 ? '(no domain)' : sender.slice(at + 1).toLowerCase();
}

/** A stable order for text, by UTF-16 code unit (as the store orders its keys). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/**
 * The report as JSON (two-space indented, one trailing newline): the DecisionReport object as
 * it is, times in ms, plus `fromIso`/`toIso` for people reading it.
 *
 * @example
 * await writeFile('report.json', renderJson(report));
 */
export function renderJson(report: DecisionReport): string {
  const { from, to, ...rest } = report;
  return `${JSON.stringify(
    { from, to, fromIso: isoTime(from), toIso: isoTime(to), ...rest },
    null,
    2,
  )}\n`;
}

/** Longest name shown in a text table: a hostile HELO can be 255 characters. */
const TEXT_NAME_MAX = 60;

/**
 * The report as plain text, aligned for a terminal or a daily mail: one titled section after
 * another. Names from the log are escaped (control and non-ASCII characters as `\xNN`), so
 * nothing a client sent can move the cursor or forge a line.
 *
 * @example
 * process.stdout.write(renderText(report));
 * // mailgate decision log report
 * // period  2026-12-06 12:00 UTC to 2026-12-07 12:00 UTC (24h)
 * // ...
 */
export function renderText(report: DecisionReport): string {
  const out: string[] = [];
  const pct = (n: number, of: number) => (of > 0 ? `${((100 * n) / of).toFixed(1)}%` : '-');
  out.push('mailgate decision log report');
  out.push(
    `period  ${shortTime(report.from)} UTC to ${shortTime(report.to)} UTC (${spanText(report.to - report.from)})`,
  );
  out.push('');
  section(out, 'Totals', [
    ['decisions', String(report.total)],
    ['policy engine lines', String(report.policyLines)],
    ['greylisting lines', String(report.greylistLines)],
  ]);
  section(
    out,
    'Verdicts',
    report.actions.map((a) => [shown(a.name), String(a.count), pct(a.count, report.total)]),
  );
  section(
    out,
    'Reasons',
    report.reasons.map((r) => [shown(r.action), shown(r.reason), String(r.count)]),
  );
  section(
    out,
    'Stages',
    report.stages.map((s) => [shown(s.name), String(s.count)]),
  );
  section(
    out,
    `SPF results (${report.spf.lines} lines with one)`,
    report.spf.results.map((s) => [shown(s.name), String(s.count), pct(s.count, report.spf.lines)]),
  );
  section(out, `Call-back verification (${report.cbv.lines} lines, ${report.cbv.cached} cached)`, [
    ...report.cbv.outcomes.map((c) => [shown(c.name), String(c.count)]),
  ]);
  const g = report.greylisting;
  const d = g.delays;
  section(out, 'Greylisting', [
    ['greylisted (lines)', String(g.greylisted)],
    ['greylisted triplets', String(g.triplets)],
    ['never retried', String(g.neverRetried), pct(g.neverRetried, g.triplets)],
    ['passed after waiting', String(g.passedAfterWaiting)],
    ['median delay', d.medianSeconds === null ? '-' : secondsText(d.medianSeconds)],
    ['90th percentile delay', d.p90Seconds === null ? '-' : secondsText(d.p90Seconds)],
    ['longest delay', d.maxSeconds === null ? '-' : secondsText(d.maxSeconds)],
  ]);
  const widest = Math.max(1, ...d.buckets.map((b) => b.count));
  section(
    out,
    'Greylisting delays',
    d.buckets.map((b) => [
      b.label,
      String(b.count),
      '#'.repeat(Math.round((40 * b.count) / widest)) || (b.count > 0 ? '#' : ''),
    ]),
  );
  section(
    out,
    `Most rejected clients (of ${report.rejected.lines} rejections)`,
    report.rejected.clients.map((c) => [shown(c.name), String(c.count)]),
  );
  section(
    out,
    'Most rejected HELO names',
    report.rejected.helos.map((c) => [shown(c.name), String(c.count)]),
  );
  section(
    out,
    'Most rejected sender domains',
    report.rejected.senderDomains.map((c) => [shown(c.name), String(c.count)]),
  );
  section(
    out,
    `DNS tempfails (${report.dnsTempfails.total})`,
    report.dnsTempfails.reasons.map((c) => [shown(c.name), String(c.count)]),
  );
  const unit = bucketName(report.bucketMs);
  timelineSection(out, `Decisions per ${unit}`, report, report.timeline, VERDICT_ORDER);
  timelineSection(out, `SPF results per ${unit}`, report, report.spfTimeline, SPF_RESULT_WORDS);
  if (report.greylistNow) {
    section(out, 'Greylisting now (whole store)', [
      ['triplets waiting', String(report.greylistNow.waiting)],
      ['triplets passed', String(report.greylistNow.passed)],
      ['clients auto-whitelisted', String(report.greylistNow.whitelisted)],
    ]);
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/**
 * A titled table with left-aligned names and right-aligned numbers; `(none)` when empty. Cells
 * are written as given: the callers pass names from the log through `shown`.
 */
function section(out: string[], title: string, rows: ReadonlyArray<readonly string[]>): void {
  out.push(title);
  out.push('-'.repeat(Array.from(title).length));
  if (rows.length === 0) {
    out.push('  (none)', '');
    return;
  }
  out.push(...alignRows(rows));
  out.push('');
}

/** A count, a share or a placeholder: what is right-aligned (an IPv4 address is not). */
const NUMBER_CELL = /^(?:\d+(?:\.\d+)?%?|-|)$/;

/**
 * Rows as aligned text: text columns padded on the right, number-like columns on the left, so
 * that digits line up.
 */
function alignRows(rows: ReadonlyArray<readonly string[]>): string[] {
  const columns = Math.max(...rows.map((r) => r.length));
  const widths: number[] = [];
  const numeric: boolean[] = [];
  for (let c = 0; c < columns; c++) {
    widths.push(Math.max(...rows.map((r) => width(r[c] ?? ''))));
    numeric.push(rows.every((r) => NUMBER_CELL.test(r[c] ?? '')));
  }
  return rows.map((row) => {
    const cells = row.map((cell, c) => {
      const pad = ' '.repeat(Math.max(0, (widths[c] as number) - width(cell)));
      return numeric[c] ? pad + cell : cell + pad;
    });
    return `  ${cells.join('  ').trimEnd()}`;
  });
}

/** A timeline as a table: one row per bucket of the period, one column per name. */
function timelineSection(
  out: string[],
  title: string,
  report: DecisionReport,
  counts: readonly BucketCount[],
  order: readonly string[],
): void {
  if (counts.length === 0) {
    section(out, title, []);
    return;
  }
  const names = ordered(counts, order);
  const byBucket = new Map<number, Map<string, number>>();
  for (const c of counts) {
    let row = byBucket.get(c.bucket);
    if (!row) {
      row = new Map();
      byBucket.set(c.bucket, row);
    }
    row.set(c.name, c.count);
  }
  const rows: string[][] = [['', ...names.map(shown)]];
  for (const bucket of buckets(report)) {
    const row = byBucket.get(bucket);
    rows.push([shortTime(bucket), ...names.map((n) => String(row?.get(n) ?? 0))]);
  }
  out.push(title);
  out.push('-'.repeat(Array.from(title).length));
  // The header row holds names; the rest are numbers and right-aligned under them.
  const widths = names.map((n, i) =>
    Math.max(width(shown(n)), ...rows.slice(1).map((r) => width(r[i + 1] as string))),
  );
  const first = Math.max(...rows.map((r) => width(r[0] as string)));
  for (const row of rows) {
    const cells = row.slice(1).map((cell, i) => cell.padStart(widths[i] as number));
    out.push(`  ${(row[0] as string).padEnd(first)}  ${cells.join('  ')}`.trimEnd());
  }
  out.push('');
}

/** Every bucket start of the report's period, empty ones included. */
function buckets(report: DecisionReport): number[] {
  const list: number[] = [];
  const first = Math.floor(report.from / report.bucketMs) * report.bucketMs;
  for (let b = first; b < report.to && list.length <= MAX_BUCKETS + 1; b += report.bucketMs) {
    list.push(b);
  }
  return list;
}

/** Names of a timeline by their total, largest first. */
function totalsByName(counts: readonly BucketCount[]): NamedCount[] {
  const tally = new Tally();
  for (const c of counts) tally.add(c.name, c.count);
  return tally.sorted();
}

/** A name from the log, as a terminal may show it: escaped and bounded. */
function shown(name: string): string {
  const escaped = escapeForLog(name);
  const points = Array.from(escaped);
  return points.length <= TEXT_NAME_MAX
    ? escaped
    : `${points.slice(0, TEXT_NAME_MAX - 3).join('')}...`;
}

function width(text: string): number {
  return Array.from(text).length;
}

function bucketName(ms: number): string {
  if (ms === HOUR) return 'hour';
  if (ms === DAY) return 'day';
  if (ms % DAY === 0) return `${ms / DAY} days`;
  return `${ms / HOUR} hours`;
}

const two = (n: number): string => String(n).padStart(2, '0');

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** `2026-12-07 12:00` (UTC). */
function shortTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`
  );
}

/** A span for people: `24h`, `7d`, `1d 6h`, `90m`. */
function spanText(ms: number): string {
  if (ms % HOUR === 0 && ms > 0 && ms < 3 * DAY) return `${ms / HOUR}h`;
  if (ms % DAY === 0 && ms > 0) return `${ms / DAY}d`;
  if (ms >= DAY) return `${Math.floor(ms / DAY)}d ${Math.round((ms % DAY) / HOUR)}h`;
  return `${Math.round(ms / MINUTE)}m`;
}

/** Seconds for people: `45s`, `5m 30s`, `2h 5m`. */
function secondsText(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    const s = seconds % 60;
    return `${Math.floor(seconds / 60)}m${s ? ` ${s}s` : ''}`;
  }
  const m = Math.floor((seconds % 3600) / 60);
  return `${Math.floor(seconds / 3600)}h${m ? ` ${m}m` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// HTML

const STYLE = `
  :root { color-scheme: light; }
  body { font: 14px/1.45 system-ui, sans-serif; color: #222; background: #fafafa; margin: 0; }
  header, main { max-width: 1100px; margin: 0 auto; padding: 0 20px; }
  header { padding-top: 18px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
  h3 { font-size: 14px; margin: 14px 0 6px; }
  .period { color: #555; margin: 0; }
  .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
  .card b { display: block; font-size: 20px; }
  .card span { color: #555; }
  .grid { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
  table { border-collapse: collapse; background: #fff; margin: 4px 0 10px; }
  th, td { border: 1px solid #e2e2e2; padding: 3px 10px; text-align: left; }
  th { background: #f1f1f1; font-weight: 600; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  td.name { max-width: 420px; overflow-wrap: anywhere; }
  .none { color: #777; font-style: italic; }
  figure { margin: 8px 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; display: inline-block; max-width: 100%; }
  figure svg { max-width: 100%; height: auto; }
  footer { color: #777; font-size: 12px; margin: 30px 0 20px; }
`;

/**
 * The report as one self-contained HTML page: inline CSS, the charts as inline SVG (decisions
 * per hour by verdict, the greylist delay histogram, SPF results over time), tables for the
 * rest. It needs no script and fetches nothing (its Content-Security-Policy forbids it), and
 * every name from the log is escaped, so it can be mailed or opened from disk safely.
 *
 * @example
 * await writeFile('report.html', renderHtml(report));
 */
export function renderHtml(report: DecisionReport): string {
  const period = `${shortTime(report.from)} UTC to ${shortTime(report.to)} UTC`;
  const byAction = new Map(report.actions.map((a) => [a.name, a.count]));
  const card = (label: string, value: number, id: string) =>
    `<div class="card" id="card-${id}"><b>${value}</b><span>${escapeHtml(label)}</span></div>`;
  const unit = bucketName(report.bucketMs);
  const xFrom = Math.floor(report.from / report.bucketMs) * report.bucketMs;
  const xTo = Math.max(
    xFrom + report.bucketMs,
    Math.ceil(report.to / report.bucketMs) * report.bucketMs,
  );
  const g = report.greylisting;
  const d = g.delays;

  const timelineChart = svgChart(seriesOf(report.timeline), {
    title: `Decisions per ${unit} by verdict`,
    kind: 'stacked-bars',
    x: 'time',
    xStep: report.bucketMs,
    xFrom,
    xTo,
    yLabel: 'decisions',
    xLabel: 'UTC',
    width: 1000,
    height: 300,
    id: 'chart-timeline',
  });
  const delayChart = svgChart(
    d.buckets.some((b) => b.count > 0)
      ? [{ name: 'passed after waiting', points: d.buckets.map((b, i) => [i, b.count] as const) }]
      : [],
    {
      title: 'Greylisting delays',
      kind: 'bars',
      x: 'number',
      xCategories: d.buckets.map((b) => b.label),
      xLabel: 'time from first attempt to pass',
      yLabel: 'triplets',
      width: 520,
      height: 280,
      id: 'chart-delays',
    },
  );
  const spfChart = svgChart(spfSeries(report, xFrom), {
    title: `SPF results per ${unit}`,
    kind: 'lines',
    x: 'time',
    xFrom,
    xTo,
    yLabel: 'lines',
    xLabel: 'UTC',
    width: 1000,
    height: 280,
    id: 'chart-spf',
  });

  const body = [
    `<header><h1>mailgate decision log</h1><p class="period">${escapeHtml(period)} (${escapeHtml(spanText(report.to - report.from))})</p></header>`,
    '<main>',
    '<section id="totals"><div class="cards">',
    card('decisions', report.total, 'total'),
    ...report.actions.map((a) => card(a.name, a.count, `action-${cssId(a.name)}`)),
    '</div></section>',
    `<section id="timeline"><h2>Decisions per ${escapeHtml(unit)}</h2><figure>${timelineChart}</figure></section>`,
    '<section id="verdicts"><h2>Verdicts and reasons</h2><div class="grid">',
    `<div><h3>Verdicts</h3>${table(
      'table-actions',
      ['verdict', 'lines', 'share'],
      report.actions.map((a) => [a.name, a.count, percent(a.count, report.total)]),
    )}</div>`,
    `<div><h3>Stages</h3>${table(
      'table-stages',
      ['stage', 'lines'],
      report.stages.map((s) => [s.name, s.count]),
    )}</div>`,
    `<div><h3>Reasons</h3>${table(
      'table-reasons',
      ['verdict', 'reason', 'lines'],
      report.reasons.map((r) => [r.action, r.reason, r.count]),
    )}</div>`,
    '</div></section>',
    `<section id="spf"><h2>SPF</h2><p>${report.spf.lines} lines carry an SPF result.</p><div class="grid">`,
    `<div>${table(
      'table-spf',
      ['result', 'lines', 'share'],
      report.spf.results.map((s) => [s.name, s.count, percent(s.count, report.spf.lines)]),
    )}</div>`,
    `<figure>${spfChart}</figure></div></section>`,
    `<section id="cbv"><h2>Call-back verification</h2><p>${report.cbv.lines} lines name a call-back or DSN; ${report.cbv.cached} of them from the cache.</p>`,
    table(
      'table-cbv',
      ['outcome', 'lines'],
      report.cbv.outcomes.map((c) => [c.name, c.count]),
    ),
    '</section>',
    '<section id="greylisting"><h2>Greylisting</h2><div class="grid"><div>',
    table(
      'table-greylisting',
      ['', ''],
      [
        ['greylisted (lines)', g.greylisted],
        ['greylisted triplets', g.triplets],
        ['never retried', g.neverRetried],
        ['passed after waiting', g.passedAfterWaiting],
        ['median delay', d.medianSeconds === null ? '-' : secondsText(d.medianSeconds)],
        ['90th percentile delay', d.p90Seconds === null ? '-' : secondsText(d.p90Seconds)],
        ['longest delay', d.maxSeconds === null ? '-' : secondsText(d.maxSeconds)],
      ],
      false,
    ),
    table(
      'table-delays',
      ['delay', 'passes'],
      d.buckets.map((b) => [b.label, b.count]),
    ),
    `</div><figure>${delayChart}</figure></div>`,
    report.greylistNow
      ? `<h3>Now, in the whole store</h3>${table(
          'table-greylist-now',
          ['', ''],
          [
            ['triplets waiting', report.greylistNow.waiting],
            ['triplets passed', report.greylistNow.passed],
            ['clients auto-whitelisted', report.greylistNow.whitelisted],
          ],
          false,
        )}`
      : '',
    '</section>',
    `<section id="rejected"><h2>Most rejected</h2><p>${report.rejected.lines} rejections.</p><div class="grid">`,
    `<div><h3>Clients</h3>${table(
      'table-rejected-clients',
      ['client', 'rejections'],
      report.rejected.clients.map((c) => [c.name, c.count]),
    )}</div>`,
    `<div><h3>HELO names</h3>${table(
      'table-rejected-helos',
      ['HELO', 'rejections'],
      report.rejected.helos.map((c) => [c.name, c.count]),
    )}</div>`,
    `<div><h3>Sender domains</h3>${table(
      'table-rejected-domains',
      ['domain', 'rejections'],
      report.rejected.senderDomains.map((c) => [c.name, c.count]),
    )}</div>`,
    '</div></section>',
    `<section id="dns"><h2>DNS tempfails</h2><p>${report.dnsTempfails.total} deferrals for DNS trouble.</p>`,
    table(
      'table-dns',
      ['reason', 'lines'],
      report.dnsTempfails.reasons.map((c) => [c.name, c.count]),
    ),
    '</section>',
    `<footer>Generated by mailgate report from the decision log, ${escapeHtml(isoTime(report.from))} to ${escapeHtml(isoTime(report.to))}; ${byAction.get('reject') ?? 0} rejected of ${report.total}.</footer>`,
    '</main>',
  ];
  return (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    // Nothing to fetch and nothing to run: a report opened from a mail or a disk stays inert.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">\n` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<title>mailgate report: ${escapeHtml(period)}</title>\n<style>${STYLE}</style>\n</head>\n<body>\n` +
    body.join('\n') +
    '\n</body>\n</html>\n'
  );
}

/**
 * Verdicts in the order charts stack them, so that each keeps its colour from one report to the
 * next: what got through at the bottom, then refusals; other words after these, by count.
 */
const VERDICT_ORDER = ['pass', 'reject', 'tempfail', 'greylist', 'quarantine', 'discard', 'accept'];

/** Names in a fixed order where it knows them, the rest after by count. */
function ordered(counts: readonly BucketCount[], order: readonly string[]): string[] {
  const present = totalsByName(counts).map((n) => n.name);
  return [
    ...order.filter((name) => present.includes(name)),
    ...present.filter((name) => !order.includes(name)),
  ];
}

/** Timeline counts as one chart series per verdict, passes at the bottom of the stack. */
function seriesOf(counts: readonly BucketCount[]): ChartSeries[] {
  return ordered(counts, VERDICT_ORDER).map((name) => ({
    name,
    points: counts.filter((c) => c.name === name).map((c) => [c.bucket, c.count] as const),
  }));
}

/** SPF results as lines over every bucket of the period: a bucket without a result is a 0. */
function spfSeries(report: DecisionReport, first: number): ChartSeries[] {
  const names = ordered(report.spfTimeline, SPF_RESULT_WORDS);
  const counts = new Map(report.spfTimeline.map((c) => [`${c.bucket} ${c.name}`, c.count]));
  const all = buckets(report).filter((b) => b >= first);
  return names.map((name) => ({
    name,
    points: all.map((b) => [b, counts.get(`${b} ${name}`) ?? 0] as const),
  }));
}

/** A table; text cells escaped, numbers right-aligned; "none" when there are no rows. */
function table(
  id: string,
  head: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  withHead = true,
): string {
  if (rows.length === 0) return `<p class="none" id="${escapeHtml(id)}">none</p>`;
  const headRow = withHead
    ? `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`
    : '';
  const bodyRows = rows
    .map(
      (row) =>
        `<tr>${row
          .map((cell) =>
            typeof cell === 'number'
              ? `<td class="n">${cell}</td>`
              : `<td class="name">${escapeHtml(cell)}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('');
  return `<table id="${escapeHtml(id)}">${headRow}<tbody>${bodyRows}</tbody></table>`;
}

function percent(n: number, of: number): string {
  return of > 0 ? `${((100 * n) / of).toFixed(1)}%` : '-';
}

/** An action word as part of an id: letters, digits and hyphens only. */
function cssId(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, '_');
}
