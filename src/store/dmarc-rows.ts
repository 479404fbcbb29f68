/**
 * Rows of `dmarc_results` between the public type and the columns both backends write and read:
 * every value checked before it reaches a driver, strings bounded and made storable.
 */
import { checkLimit, checkTime } from './common.js';
import {
  type DmarcDkimResult,
  type DmarcPolicyWord,
  type DmarcPublishedPolicy,
  type DmarcResultRow,
  type DmarcResultWord,
  type DmarcSpfResult,
  MAX_DMARC_DKIM_RESULTS,
  MAX_DMARC_TEXT,
  type StoredDmarcResultRow,
  StoreError,
} from './types.js';

/**
 * What a DMARC result's plain strings must not hold: NUL, which PostgreSQL text cannot, and lone
 * surrogates, which no UTF-8 database stores as given. (Inside the JSON columns both survive as
 * JSON escapes.)
 */
const DMARC_UNSTORABLE =
  /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `value` cut to MAX_DMARC_TEXT code points. */
function dmarcBounded(value: string): string {
  // Cheap test first: more code points than UTF-16 units is impossible.
  if (value.length <= MAX_DMARC_TEXT) return value;
  const points = Array.from(value);
  return points.length > MAX_DMARC_TEXT ? points.slice(0, MAX_DMARC_TEXT).join('') : value;
}

/**
 * A plain string of a DMARC result as stored (and as `dmarcResults` compares its policy domain):
 * NUL and lone surrogates as U+FFFD, cut to MAX_DMARC_TEXT code points; anything else as given.
 *
 * @example
 * storedDmarcText('example.com\u0000')  // 'example.com\uFFFD'
 */
export function storedDmarcText(value: string): string {
  return dmarcBounded(value.replace(DMARC_UNSTORABLE, '\uFFFD'));
}

/** The columns of `dmarc_results` that `addDmarcResults` writes, in `dmarcResultParams` order. */
export const DMARC_RESULT_COLUMNS = [
  'time',
  'source_ip',
  'header_from',
  'envelope_from',
  'policy_domain',
  'p',
  'sp',
  'np',
  'adkim',
  'aspf',
  'testing',
  'psd',
  'disposition',
  'override',
  'result',
  'spf_aligned',
  'dkim_aligned',
  'dkim',
  'spf',
] as const;

const POLICY_WORDS: readonly string[] = ['none', 'quarantine', 'reject'];
const RESULT_WORDS: readonly string[] = ['pass', 'fail', 'none', 'temperror', 'permerror'];

function refuse(problem: string): never {
  throw new StoreError(`store addDmarcResults: ${problem}`);
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string') refuse(`${field} is not a string`);
  return storedDmarcText(value);
}

function optionalText(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : text(field, value);
}

function word(field: string, value: unknown, words: readonly string[]): string {
  if (typeof value !== 'string' || !words.includes(value)) {
    refuse(`${field} must be one of ${words.join(', ')}, got ${JSON.stringify(String(value))}`);
  }
  return value;
}

function optionalWord(field: string, value: unknown, words: readonly string[]): string | null {
  return value === undefined || value === null ? null : word(field, value, words);
}

function flag(field: string, value: unknown): number {
  if (typeof value !== 'boolean') refuse(`${field} must be true or false`);
  return value ? 1 : 0;
}

/** A JSON string value: kept exactly (JSON escapes what a column could not hold), bounded. */
function jsonText(field: string, value: unknown): string {
  if (typeof value !== 'string') refuse(`${field} is not a string`);
  return dmarcBounded(value);
}

/**
 * A DMARC result row checked and turned into the parameters of an INSERT, in
 * DMARC_RESULT_COLUMNS order (both backends write exactly these). Throws a StoreError naming
 * what is wrong.
 *
 * @example
 * dmarcResultParams(row)  // [1767225600000, '192.0.2.1', 'example.com', null, ...]
 */
export function dmarcResultParams(row: DmarcResultRow): (string | number | null)[] {
  if (row === null || typeof row !== 'object') refuse('a row is not an object');
  if (typeof row.time !== 'number' || !Number.isSafeInteger(row.time)) {
    refuse(`time must be integral milliseconds, got ${String(row.time)}`);
  }
  const published = row.published;
  if (published !== undefined && (published === null || typeof published !== 'object')) {
    refuse('published is not an object');
  }
  if (!Array.isArray(row.dkim)) refuse('dkim must be an array');
  const dkim = row.dkim.slice(0, MAX_DMARC_DKIM_RESULTS).map((d: unknown) => {
    if (d === null || typeof d !== 'object') refuse('a DKIM result is not an object');
    const entry = d as Partial<DmarcDkimResult>;
    const kept: DmarcDkimResult = {
      domain: jsonText('dkim domain', entry.domain),
      result: jsonText('dkim result', entry.result),
    };
    if (entry.selector !== undefined) kept.selector = jsonText('dkim selector', entry.selector);
    return kept;
  });
  let spf: string | null = null;
  if (row.spf !== undefined && row.spf !== null) {
    if (typeof row.spf !== 'object') refuse('spf is not an object');
    spf = JSON.stringify({
      domain: jsonText('spf domain', row.spf.domain),
      scope: word('spf scope', row.spf.scope, ['mfrom', 'helo']),
      result: jsonText('spf result', row.spf.result),
    });
  }
  return [
    row.time,
    text('sourceIp', row.sourceIp),
    text('headerFrom', row.headerFrom),
    optionalText('envelopeFrom', row.envelopeFrom),
    optionalText('policyDomain', row.policyDomain),
    published ? word('p', published.p, POLICY_WORDS) : null,
    published ? optionalWord('sp', published.sp, POLICY_WORDS) : null,
    published ? optionalWord('np', published.np, POLICY_WORDS) : null,
    published ? word('adkim', published.adkim, ['r', 's']) : null,
    published ? word('aspf', published.aspf, ['r', 's']) : null,
    published ? flag('testing', published.testing) : null,
    published ? optionalWord('psd', published.psd, ['y', 'n', 'u']) : null,
    word('disposition', row.disposition, POLICY_WORDS),
    optionalText('override', row.override),
    word('result', row.result, RESULT_WORDS),
    flag('spfAligned', row.spfAligned),
    flag('dkimAligned', row.dkimAligned),
    JSON.stringify(dkim),
    spf,
  ];
}

/** A JSON column as stored; anything that is not what was written (a hand-edited row) is null. */
function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return null;
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * A `dmarc_results` row (either backend's) as a StoredDmarcResultRow: NULL columns become absent
 * properties; 0/1 become booleans.
 *
 * @example
 * dmarcResultFromColumns({ id: 1, time: '1000', source_ip: '192.0.2.1', ... }).time  // 1000
 */
export function dmarcResultFromColumns(row: Record<string, unknown>): StoredDmarcResultRow {
  const stored: StoredDmarcResultRow = {
    id: Number(row['id']),
    time: Number(row['time']),
    sourceIp: String(row['source_ip']),
    headerFrom: String(row['header_from']),
    disposition: String(row['disposition']) as DmarcPolicyWord,
    result: String(row['result']) as DmarcResultWord,
    spfAligned: Number(row['spf_aligned']) === 1,
    dkimAligned: Number(row['dkim_aligned']) === 1,
    dkim: [],
  };
  const envelopeFrom = str(row['envelope_from']);
  if (envelopeFrom !== undefined) stored.envelopeFrom = envelopeFrom;
  const policyDomain = str(row['policy_domain']);
  if (policyDomain !== undefined) stored.policyDomain = policyDomain;
  const p = str(row['p']);
  if (p !== undefined) {
    const published: DmarcPublishedPolicy = {
      p: p as DmarcPolicyWord,
      adkim: str(row['adkim']) === 's' ? 's' : 'r',
      aspf: str(row['aspf']) === 's' ? 's' : 'r',
      testing: Number(row['testing']) === 1,
    };
    const sp = str(row['sp']);
    const np = str(row['np']);
    const psd = str(row['psd']);
    if (sp !== undefined) published.sp = sp as DmarcPolicyWord;
    if (np !== undefined) published.np = np as DmarcPolicyWord;
    if (psd !== undefined) published.psd = psd as 'y' | 'n' | 'u';
    stored.published = published;
  }
  const override = str(row['override']);
  if (override !== undefined) stored.override = override;
  const dkim = parseJson(row['dkim']);
  if (Array.isArray(dkim)) {
    for (const entry of dkim) {
      if (entry === null || typeof entry !== 'object') continue;
      const domain = str(entry.domain);
      const result = str(entry.result);
      if (domain === undefined || result === undefined) continue;
      const selector = str(entry.selector);
      stored.dkim.push(selector === undefined ? { domain, result } : { domain, selector, result });
    }
  }
  const spf = parseJson(row['spf']) as Partial<DmarcSpfResult> | null;
  if (spf && typeof spf === 'object') {
    const domain = str(spf.domain);
    const result = str(spf.result);
    if (
      domain !== undefined &&
      result !== undefined &&
      (spf.scope === 'mfrom' || spf.scope === 'helo')
    ) {
      stored.spf = { domain, scope: spf.scope, result };
    }
  }
  return stored;
}

/**
 * `dmarcResults`'s arguments, checked: the policy domain as stored (or null), times as integral
 * milliseconds, the limit a whole number of at least 0.
 *
 * @example
 * dmarcQueryParams('example.com', 0, 1000, 10)  // { policyDomain: 'example.com', from: 0, to: 1000, limit: 10 }
 */
export function dmarcQueryParams(
  policyDomain: string | null,
  from: number,
  to: number,
  limit: number,
): { policyDomain: string | null; from: number; to: number; limit: number } {
  const fail = (problem: string): never => {
    throw new StoreError(`store dmarcResults: ${problem}`);
  };
  if (policyDomain !== null && typeof policyDomain !== 'string') {
    fail('policyDomain must be a string or null');
  }
  checkTime('dmarcResults', 'from', from);
  checkTime('dmarcResults', 'to', to);
  checkLimit(limit, 'dmarcResults');
  return {
    policyDomain: policyDomain === null ? null : storedDmarcText(policyDomain),
    from,
    to,
    limit,
  };
}
