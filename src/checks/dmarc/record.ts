/**
 * The DMARC policy record (RFC 9989 sections 4.7 and 4.8; RFC 7489 section 6.3 for the `psl`
 * discovery): which TXT records are DMARC records, and what one asks for. A record comes from
 * whoever runs the zone, so nothing in it is trusted: every value is checked against its
 * grammar, what fails is discarded for its default and noted, and nothing but checked values
 * and our own words leave this module.
 */
import { printableAscii, truncate } from '../../text/index.js';
import type {
  DmarcAlignment,
  DmarcDiscovery,
  DmarcPolicy,
  DmarcRecord,
  DmarcRecordParse,
} from './types.js';

/** Longest record read (its strings joined); real ones are a few hundred characters. */
export const MAX_RECORD_LENGTH = 4096;
/** Report URIs kept per tag, and the longest one kept. */
export const MAX_REPORT_URIS = 8;
export const MAX_URI_LENGTH = 512;
/** Problems noted per record. */
const MAX_NOTES = 8;

/**
 * Whether a TXT record is a DMARC record at all: it starts with the `v` tag, and its value is
 * `DMARC1` (RFC 9989 section 4.7: anything else is ignored entirely). The tag name is an ABNF
 * literal, so any case; the value is case-sensitive.
 *
 * @example
 * isDmarcRecord('v=DMARC1; p=reject')  // true
 * isDmarcRecord('v=dmarc1; p=reject')  // false
 * isDmarcRecord('p=reject; v=DMARC1')  // false
 */
export function isDmarcRecord(text: string): boolean {
  return VERSION.test(text);
}

const VERSION = /^[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)/u;
const TAG = /^([A-Za-z]+)[ \t]*=[ \t]*(.*)$/su;
const VALUE = /^[\x20-\x3a\x3c-\x7e]+$/u;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x2b\x2d-\x7e]+$/u;
const OBSOLETE_SIZE = /![0-9]+[kmgtKMGT]?$/u;
const POLICIES: readonly DmarcPolicy[] = ['none', 'quarantine', 'reject'];

/** A record as the discovery reads it: the parse, and the `psd=` the walk stops on. */
export interface RecordReading {
  readonly parse: DmarcRecordParse;
  /** `psd=` as written when valid, even in a record unusable otherwise (the walk reads it). */
  readonly psd: 'y' | 'n' | 'u' | undefined;
}

/**
 * Parse a DMARC record (the strings of its TXT record joined). Unknown tags are ignored; a
 * known tag with a bad value is discarded for its default and noted in `ignored` (RFC 9989
 * section 4.8). A record whose `p=` (or `sp=`, `np=`) is invalid counts as `p=none` when it
 * names at least one valid `rua=` URI, and is unusable otherwise (section 4.10.1, and RFC 7489
 * section 6.6.3 step 6): then the result is `ok: false`. In `psl` mode the tags are RFC 7489's
 * (`pct=` counts; `np=`, `psd=` and `t=` do not), and `p=` must follow `v=` (section 6.3).
 *
 * @example
 * parseDmarcRecord('v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com')
 * // { ok: true, record: { p: 'reject', sp: 'quarantine', adkim: 'r', aspf: 'r',
 * //   rua: ['mailto:d@example.com'], ignored: [] } }
 * parseDmarcRecord('v=DMARC1; p=bogus')
 * // { ok: false, reason: "p= 'bogus' is not none, quarantine or reject, and ..." }
 */
export function parseDmarcRecord(
  text: string,
  discovery: DmarcDiscovery = 'tree-walk',
): DmarcRecordParse {
  return readDmarcRecord(text, discovery).parse;
}

/**
 * The record and its `psd=`, memoised: the same few thousand records come back all day.
 *
 * @example
 * readDmarcRecord('v=DMARC1; p=none; psd=y', 'tree-walk').psd  // 'y'
 */
export function readDmarcRecord(text: string, discovery: DmarcDiscovery): RecordReading {
  const memo = discovery === 'psl' ? PSL_MEMO : WALK_MEMO;
  const known = memo.get(text);
  if (known) return known;
  const reading = Object.freeze(read(text, discovery));
  if (text.length > MAX_RECORD_LENGTH) return reading;
  if (memo.size >= MAX_MEMO) memo.delete(memo.keys().next().value!);
  memo.set(text, reading);
  return reading;
}

const MAX_MEMO = 5000;
const WALK_MEMO = new Map<string, RecordReading>();
const PSL_MEMO = new Map<string, RecordReading>();

/** A record while it is read. */
interface Draft {
  p?: DmarcPolicy;
  sp?: DmarcPolicy;
  np?: DmarcPolicy;
  adkim: DmarcAlignment;
  aspf: DmarcAlignment;
  t?: boolean;
  psd?: 'y' | 'n' | 'u';
  pct?: number;
  rua?: string[];
  ruf?: string[];
  ignored: string[];
}

/** Tags each discovery knows; the others are unknown tags, ignored without a word. */
const WALK_TAGS = new Set(['p', 'sp', 'np', 'adkim', 'aspf', 't', 'psd', 'rua', 'ruf', 'fo']);
const PSL_TAGS = new Set(['p', 'sp', 'adkim', 'aspf', 'pct', 'rua', 'ruf', 'fo', 'rf', 'ri']);

function read(text: string, discovery: DmarcDiscovery): RecordReading {
  if (!isDmarcRecord(text)) return unusable('does not start with v=DMARC1', undefined);
  if (text.length > MAX_RECORD_LENGTH) {
    return unusable(`is longer than ${MAX_RECORD_LENGTH} characters (${text.length})`, undefined);
  }
  const known = discovery === 'psl' ? PSL_TAGS : WALK_TAGS;
  const draft: Draft = { adkim: 'r', aspf: 'r', ignored: [] };
  const note = (problem: string) => {
    if (draft.ignored.length < MAX_NOTES) draft.ignored.push(printableAscii(problem));
  };
  const seen = new Set<string>();
  // Policy tags that were there but invalid: they decide whether the record is usable.
  const badPolicies: string[] = [];
  let pSecond = false;
  const pieces = text.split(';');
  for (let index = 1; index < pieces.length; index++) {
    const piece = pieces[index]!.replace(/^[ \t]+|[ \t]+$/gu, '');
    // The grammar allows one `;` at the end; more, or an empty tag between two, is a slip that
    // costs nothing to step over.
    if (piece === '') continue;
    const m = TAG.exec(piece);
    if (!m) {
      note(`'${shorten(piece)}' is not tag=value`);
      continue;
    }
    const name = m[1]!.toLowerCase();
    const value = m[2]!.replace(/[ \t]+$/u, '');
    if (!known.has(name)) continue;
    if (seen.has(name)) {
      note(`${name}= given twice; the first counts`);
      continue;
    }
    seen.add(name);
    if (name === 'p' && index === 1) pSecond = true;
    // A known tag whose value breaks the grammar (empty, a control or 8-bit character) is that
    // tag with an invalid value, not some other text.
    const problem = VALUE.test(value)
      ? readTag(draft, name, value)
      : value === ''
        ? 'is empty'
        : 'holds a character that is not printable ASCII';
    if (problem === undefined) continue;
    note(`${name}= '${shorten(value)}' ${problem}`);
    if (name === 'p' || name === 'sp' || name === 'np') badPolicies.push(`${name}=`);
  }
  // RFC 7489 section 6.3: "the v and p tags MUST be present and MUST appear in that order".
  if (discovery === 'psl' && draft.p !== undefined && !pSecond) {
    note('p= does not follow v= (RFC 7489 section 6.3)');
    draft.p = undefined;
    badPolicies.push('p=');
  } else if (discovery === 'psl' && !seen.has('p')) {
    note('has no p= (RFC 7489 section 6.3)');
    badPolicies.push('p=');
  }
  const psd = draft.psd;
  if (badPolicies.length > 0) {
    // RFC 9989 section 4.10.1 (RFC 7489 section 6.6.3 step 6): with at least one valid rua=
    // URI the receiver acts as if the record said p=none; without one, no DMARC processing.
    if (!draft.rua) {
      return unusable(
        `has an invalid ${badPolicies.join(' and ')} and no valid rua= URI: no DMARC processing ` +
          `(${discovery === 'psl' ? 'RFC 7489 section 6.6.3' : 'RFC 9989 section 4.10.1'})` +
          draft.ignored.map((problem) => `; ${problem}`).join(''),
        psd,
      );
    }
    draft.p = 'none';
    draft.sp = undefined;
    draft.np = undefined;
  }
  return { parse: { ok: true, record: freeze(draft) }, psd };
}

/** Reads one known tag into the draft; returns what is wrong with its value, if anything. */
function readTag(draft: Draft, name: string, value: string): string | undefined {
  const word = value.toLowerCase();
  switch (name) {
    case 'p':
    case 'sp':
    case 'np':
      if (!(POLICIES as readonly string[]).includes(word)) {
        return 'is not none, quarantine or reject';
      }
      draft[name] = word as DmarcPolicy;
      return undefined;
    case 'adkim':
    case 'aspf':
      if (word !== 'r' && word !== 's') return 'is not r or s; r (relaxed) applies';
      draft[name] = word;
      return undefined;
    case 't':
      if (word !== 'y' && word !== 'n') return 'is not y or n; n applies';
      draft.t = word === 'y';
      return undefined;
    case 'psd':
      if (word !== 'y' && word !== 'n' && word !== 'u') return 'is not y, n or u; u applies';
      draft.psd = word;
      return undefined;
    case 'pct':
      if (!/^[0-9]{1,3}$/u.test(value) || Number(value) > 100) {
        return 'is not a whole number from 0 to 100; 100 applies';
      }
      draft.pct = Number(value);
      return undefined;
    case 'rua':
    case 'ruf':
      return readUris(draft, name, value);
    default:
      // fo=, rf=, ri=: known, and nothing this check applies.
      return undefined;
  }
}

/** The valid URIs of a list (RFC 9989 section 4.8 dmarc-urilist); what is wrong otherwise. */
function readUris(draft: Draft, name: 'rua' | 'ruf', value: string): string | undefined {
  const kept: string[] = [];
  let bad = 0;
  for (const item of value.split(',')) {
    // The obsolete size limit is ignored, as the grammar says reporters should.
    const uri = item.replace(/^[ \t]+|[ \t]+$/gu, '').replace(OBSOLETE_SIZE, '');
    if (uri.length <= MAX_URI_LENGTH && URI.test(uri) && !uri.includes('!')) {
      if (kept.length < MAX_REPORT_URIS && !kept.includes(uri)) kept.push(uri);
    } else {
      bad++;
    }
  }
  if (kept.length > 0) draft[name] = kept;
  if (bad === 0) return undefined;
  return kept.length > 0 ? `holds ${bad} invalid URI(s), ignored` : 'holds no valid URI';
}

function freeze(draft: Draft): DmarcRecord {
  const record: {
    -readonly [K in keyof DmarcRecord]: DmarcRecord[K];
  } = {
    p: draft.p ?? 'none',
    adkim: draft.adkim,
    aspf: draft.aspf,
    ignored: Object.freeze(draft.ignored),
  };
  if (draft.sp !== undefined) record.sp = draft.sp;
  if (draft.np !== undefined) record.np = draft.np;
  if (draft.t !== undefined) record.t = draft.t;
  if (draft.psd !== undefined) record.psd = draft.psd;
  if (draft.pct !== undefined) record.pct = draft.pct;
  if (draft.rua) record.rua = Object.freeze(draft.rua);
  if (draft.ruf) record.ruf = Object.freeze(draft.ruf);
  return Object.freeze(record);
}

function unusable(problem: string, psd: RecordReading['psd']): RecordReading {
  return {
    parse: { ok: false, reason: truncate(printableAscii(`DMARC record ${problem}`), 400) },
    psd,
  };
}

/** Record text quoted in a note: it came from DNS, so it is kept short. */
function shorten(text: string): string {
  return truncate(printableAscii(text), 40);
}
