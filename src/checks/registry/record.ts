/**
 * The registry record: the grammar of docs/registry.md, parsed strictly. A record that does not
 * follow it is the registry's mistake, and the check says exactly where, so that the
 * administrator can report it; nothing in it is guessed at.
 */
import { type IpNetwork, parseNetwork } from '../../dns/address.js';

/** A method the sender offers, and the DNS queries it says the method needs. */
export interface OfferedMethod {
  /** Upper case, as the registry names it (`QR1`, `CSV`, `SPF`, `SID`, ...). */
  name: string;
  queries: number;
}

/** A rating service's grade for the domain. */
export interface ServiceRating {
  service: string;
  grade: string;
}

/** A parsed record; frozen, as parses are shared (memoised). */
export interface RegistryRecord {
  /** `ip4=` netblocks: the QR1 method. */
  readonly ip4: readonly IpNetwork[];
  /** `ip6=` netblocks: the QR1 method. */
  readonly ip6: readonly IpNetwork[];
  /** `meth=`, in the sender's order. */
  readonly methods: readonly OfferedMethod[];
  /** `svc=`, in the record's order. */
  readonly ratings: readonly ServiceRating[];
  /** `stop=all`: the domain sends no mail. */
  readonly stop: boolean;
}

/** A record while it is read. */
interface Draft {
  ip4: IpNetwork[];
  ip6: IpNetwork[];
  methods: OfferedMethod[];
  ratings: ServiceRating[];
  stop: boolean;
}

export type RecordParse = { ok: true; record: RegistryRecord } | { ok: false; error: string };

/** Longest record read (all strings of the TXT record together). */
export const MAX_RECORD_LENGTH = 2048;
/** Most netblocks per family, methods, and ratings in one record. */
export const MAX_NETBLOCKS = 64;
export const MAX_METHODS = 16;
export const MAX_RATINGS = 32;

const FIELD = /^([a-z0-9]+)=(\S+)$/u;
const METHOD = /^([A-Za-z][A-Za-z0-9-]{0,15}):(\d{1,3})$/u;
const RATING = /^([A-Za-z][A-Za-z0-9]{0,7}):([A-Za-z0-9+-]{1,4})$/u;
const KEYS = ['ip4', 'ip6', 'meth', 'svc', 'stop'] as const;
type Key = (typeof KEYS)[number];

/**
 * Parse a registry record (the strings of its TXT record, joined).
 *
 * @example
 * parseRegistryRecord('ip4=208.20.133.0/28 meth=SPF:10 svc=S1:A,M2:A')
 * // { ok: true, record: { ip4: [...], ip6: [], methods: [{ name: 'SPF', queries: 10 }],
 * //   ratings: [{ service: 'S1', grade: 'A' }, { service: 'M2', grade: 'A' }], stop: false } }
 * parseRegistryRecord('svc=S1')
 * // { ok: false, error: "field 2... svc: 'S1' is not SERVICE:GRADE" }
 */
export function parseRegistryRecord(text: string): RecordParse {
  const known = PARSED.get(text);
  if (known) return known;
  const parsed = parse(text);
  // Text too long to parse is not kept either: a key is as large as its text.
  if (text.length > MAX_RECORD_LENGTH) return parsed;
  // A memo of a pure function: the same few thousand records are read again and again.
  if (PARSED.size >= MAX_PARSED) PARSED.delete(PARSED.keys().next().value!);
  PARSED.set(text, parsed);
  return parsed;
}

/** Parsed records kept, oldest dropped first; results are frozen, so sharing them is safe. */
const MAX_PARSED = 10_000;
const PARSED = new Map<string, RecordParse>();

function parse(text: string): RecordParse {
  if (text.length > MAX_RECORD_LENGTH) {
    return fail(`longer than ${MAX_RECORD_LENGTH} characters (${text.length})`);
  }
  if (/[^\x20-\x7e]/u.test(text)) return fail('holds a character that is not printable ASCII');
  const fields = text.split(' ').filter((f) => f !== '');
  if (fields.length === 0) return fail('has no fields');
  const record: Draft = { ip4: [], ip6: [], methods: [], ratings: [], stop: false };
  const seen = new Set<Key>();
  for (const [index, field] of fields.entries()) {
    const where = `field ${index + 1}`;
    const m = FIELD.exec(field);
    if (!m) return fail(`${where} '${shorten(field)}' is not key=value`);
    const key = m[1]! as Key;
    const value = m[2]!;
    if (!(KEYS as readonly string[]).includes(key)) {
      return fail(`${where}: unknown key '${shorten(key)}' (known: ${KEYS.join(', ')})`);
    }
    if (seen.has(key)) return fail(`${where}: ${key}= given twice`);
    seen.add(key);
    const error = readField(record, key, value);
    if (error) return fail(`${where} ${key}: ${error}`);
  }
  if (record.methods.some((m) => m.name === 'QR1') && !record.ip4.length && !record.ip6.length) {
    return fail('meth= offers QR1, but the record has no ip4= or ip6= netblocks');
  }
  return { ok: true, record: freeze(record) };
}

/** Reads one field's value into the record; returns what is wrong with it, if anything. */
function readField(record: Draft, key: Key, value: string): string | undefined {
  const items = value.split(',');
  switch (key) {
    case 'ip4':
    case 'ip6': {
      if (items.length > MAX_NETBLOCKS) return `more than ${MAX_NETBLOCKS} netblocks`;
      const family = key === 'ip4' ? 4 : 6;
      for (const item of items) {
        const network = parseNetwork(item);
        if (!network || network.network.family !== family) {
          return `'${shorten(item)}' is not an IPv${family} address or CIDR block`;
        }
        record[key].push(network);
      }
      return undefined;
    }
    case 'meth': {
      if (items.length > MAX_METHODS) return `more than ${MAX_METHODS} methods`;
      for (const item of items) {
        const m = METHOD.exec(item);
        if (!m) return `'${shorten(item)}' is not METHOD:QUERIES`;
        const name = m[1]!.toUpperCase();
        if (record.methods.some((o) => o.name === name)) return `method ${name} offered twice`;
        record.methods.push({ name, queries: Number(m[2]) });
      }
      return undefined;
    }
    case 'svc': {
      if (items.length > MAX_RATINGS) return `more than ${MAX_RATINGS} ratings`;
      for (const item of items) {
        const m = RATING.exec(item);
        if (!m) return `'${shorten(item)}' is not SERVICE:GRADE`;
        const service = m[1]!.toUpperCase();
        if (record.ratings.some((r) => r.service === service)) {
          return `service ${service} rated twice`;
        }
        record.ratings.push({ service, grade: m[2]!.toUpperCase() });
      }
      return undefined;
    }
    case 'stop':
      if (value.toLowerCase() !== 'all') return `'${shorten(value)}' is not 'all'`;
      record.stop = true;
      return undefined;
  }
}

function freeze(record: Draft): RegistryRecord {
  for (const list of [record.ip4, record.ip6, record.methods, record.ratings]) {
    for (const item of list) Object.freeze(item);
    Object.freeze(list);
  }
  return Object.freeze(record);
}

function fail(error: string): RecordParse {
  return { ok: false, error: `registry record ${error}` };
}

/** Record text quoted in an error: it came from DNS, so it is kept short. */
function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
