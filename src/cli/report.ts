/**
 * `mailgate report`: the decision log of a period summed up — verdicts, reasons, SPF results,
 * call-backs, greylisting delays, the most rejected clients — as text, JSON or one HTML file.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import {
  buildReport,
  type DecisionReport,
  renderHtml,
  renderJson,
  renderText,
} from '../observe/report.js';
import { storeSettings } from '../serve/settings.js';
import { openStore, StoreError } from '../store/index.js';
import { parseStoreUrl } from '../store/url.js';
import { escapeForLog } from '../text/index.js';
import { configFromOption } from './services.js';
import { failure, UsageError } from './usage.js';

interface ReportCommandOptions {
  since?: string;
  from?: string;
  to?: string;
  format: string;
  output?: string;
  config?: string;
}

const FORMATS = ['text', 'json', 'html'] as const;
type ReportFormat = (typeof FORMATS)[number];

/** The period when none is given. */
const DEFAULT_SINCE = '24h';

/**
 * Registers `mailgate report [--since DURATION | --from DATE [--to DATE]] [--format F]
 * [--output FILE] [-c FILE]`.
 *
 * @example
 * registerReportCommand(program);
 * // mailgate report --since 7d --format html --output week.html -c /etc/mailgate/mailgate.toml
 */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'sum up the decision log of a period: verdicts, reasons, SPF, call-backs, greylisting delays, the most rejected clients',
    )
    .option('--since <duration>', `the period up to now, e.g. 24h, 7d (default ${DEFAULT_SINCE})`)
    .option(
      '--from <date>',
      'the period from DATE, ISO 8601 (2026-12-01, 2026-12-01T06:00Z); UTC unless it has an offset',
    )
    .option('--to <date>', 'the period up to DATE (exclusive; default now); with --from')
    .option('--format <format>', 'text, json or html', 'text')
    .option('-o, --output <file>', 'write the report to FILE instead of standard output')
    .option('-c, --config <file>', "the daemon's configuration: its store and [greylist] settings")
    .action(async (options: ReportCommandOptions) => {
      const format = reportFormat(options.format);
      const { from, to } = reportPeriod(options, Date.now());
      const config = await configFromOption(options.config);
      const { url, options: storeOptions } = storeSettings(config);
      // Reading must not create an empty database where there is none: that would report an
      // empty log instead of the mistake.
      const target = parseStoreUrl(url);
      if (target.kind === 'sqlite' && target.path !== ':memory:' && !existsSync(target.path)) {
        throw failure(
          `no store at ${target.description} (give the daemon's --config, or run from its directory)`,
        );
      }
      const whitelistAt = config.greylist.auto_whitelist_clients;
      let report: DecisionReport;
      try {
        const store = await openStore(url, storeOptions);
        try {
          report = await buildReport(store, {
            from,
            to,
            ...(whitelistAt > 0 ? { whitelistAt } : {}),
          });
        } finally {
          await store.close();
        }
      } catch (err) {
        if (err instanceof StoreError) throw failure(err.message);
        throw err;
      }
      const text =
        format === 'json'
          ? renderJson(report)
          : format === 'html'
            ? renderHtml(report)
            : renderText(report);
      if (options.output === undefined) {
        process.stdout.write(text);
        return;
      }
      try {
        await writeFile(options.output, text);
      } catch (err) {
        throw failure(
          `cannot write ${escapeForLog(options.output)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
    });
}

function reportFormat(given: string): ReportFormat {
  const format = FORMATS.find((f) => f === given);
  if (!format) {
    throw new UsageError(`--format must be text, json or html, not ${escapeForLog(given)}`);
  }
  return format;
}

/**
 * The period the options name: `--since` back from now, or `--from` to `--to` (now when absent);
 * `--since 24h` when neither is given.
 *
 * @example
 * reportPeriod({ since: '7d' }, Date.UTC(2026, 11, 8))
 * // { from: Date.UTC(2026, 11, 1), to: Date.UTC(2026, 11, 8) }
 */
export function reportPeriod(
  options: Pick<ReportCommandOptions, 'since' | 'from' | 'to'>,
  now: number,
): { from: number; to: number } {
  if (options.since !== undefined && (options.from !== undefined || options.to !== undefined)) {
    throw new UsageError('give either --since or --from/--to, not both');
  }
  if (options.to !== undefined && options.from === undefined) {
    throw new UsageError('--to needs --from');
  }
  if (options.from !== undefined) {
    const from = parseIsoDate(options.from, '--from');
    const to = options.to === undefined ? now : parseIsoDate(options.to, '--to');
    if (to <= from) throw new UsageError('--to must be after --from');
    return { from, to };
  }
  const since = options.since ?? DEFAULT_SINCE;
  const span = parseDuration(since);
  if (span === null || span <= 0) {
    throw new UsageError(
      `--since: not a duration: ${escapeForLog(since)} (write e.g. 24h, 7d, 90m)`,
    );
  }
  return { from: now - span, to: now };
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * An ISO 8601 date or date-time as ms since the epoch: `2026-12-01`, `2026-12-01T06:00`,
 * `2026-12-01T06:00:00.5+01:00`. Without an offset it is UTC (the decision log's time zone), and
 * a date that is no calendar day (February 30th) is refused rather than rolled over.
 *
 * @example
 * parseIsoDate('2026-12-01T06:00Z', '--from')  // Date.UTC(2026, 11, 1, 6)
 */
export function parseIsoDate(text: string, option: string): number {
  const m = ISO_DATE.exec(text.trim());
  const bad = () =>
    new UsageError(
      `${option}: not an ISO 8601 date: ${escapeForLog(text)} (write e.g. 2026-12-01 or 2026-12-01T06:00Z)`,
    );
  if (!m) throw bad();
  const [year, month, day, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map((v) => Number(v ?? 0));
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const local = Date.UTC(year!, month! - 1, day!, hour, minute, second, ms);
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month! - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw bad();
  }
  const zone = m[8]?.toUpperCase();
  if (zone === undefined || zone === 'Z') return local;
  const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  if (!z) throw bad();
  const offset = (Number(z[2]) * 60 + Number(z[3] ?? 0)) * 60_000;
  if (offset > 14 * 3_600_000) throw bad();
  return z[1] === '+' ? local - offset : local + offset;
}
