/**
 * Wire format: query names we can send, query messages, and responses decoded into the record
 * shapes of types.ts. dns-packet does the byte work; this module decides what we trust from it.
 */
import * as packet from 'dns-packet';
import type { DnsRecord, RecordType } from './types.js';

/** Response codes we act on. BADVERS only exists as an EDNS extended rcode. */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
  16: 'BADVERS',
};

/**
 * The text name of a response code, for details and logs.
 *
 * @example
 * rcodeName(2)  // 'SERVFAIL'
 */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

const RECORD_TYPES: ReadonlySet<string> = new Set<RecordType>([
  'A',
  'AAAA',
  'MX',
  'PTR',
  'TXT',
  'SPF',
  'CNAME',
  'SRV',
  'SOA',
  'NS',
]);

/**
 * Whether a string is one of the record types this resolver speaks.
 *
 * @example
 * isRecordType('TXT')  // true
 * isRecordType('ANY')  // false
 */
export function isRecordType(type: string): type is RecordType {
  return RECORD_TYPES.has(type);
}

/**
 * The query name to put on the wire, or `null` when the name cannot be encoded: an empty
 * label, a label over 63 octets, or a name over 253 octets. One trailing dot is accepted and
 * dropped; `.` is the root. dns-packet would silently write such names as corrupt bytes, so
 * they must be caught before encoding.
 *
 * @example
 * queryName('Example.COM.')  // 'Example.COM'
 * queryName('a..example')    // null
 */
export function queryName(name: string): string | null {
  if (name === '.') return '.';
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare === '') return null;
  let octets = 0;
  for (const label of bare.split('.')) {
    const length = Buffer.byteLength(label);
    if (length === 0 || length > 63) return null;
    octets += length + 1;
  }
  // Wire form is the labels plus the root byte: at most 255 octets, so 253 in text.
  return octets - 1 <= 253 ? bare : null;
}

/** One question, as sent and as matched against the answer. */
export interface Question {
  id: number;
  name: string;
  type: RecordType;
}

/**
 * Encode a recursive query. `ednsPayload` > 0 adds an EDNS0 OPT record advertising that UDP
 * payload size; 0 sends a plain RFC 1035 query.
 *
 * @example
 * const bytes = encodeQuery({ id: 4242, name: 'example.com', type: 'MX' }, 1232);
 */
export function encodeQuery(question: Question, ednsPayload: number): Buffer {
  // Written by hand rather than through dns-packet: a query is a fixed shape, and this is on the
  // path of every query a busy server sends.
  const labels = question.name === '' ? [] : question.name.split('.');
  let nameLength = 1;
  for (const label of labels) nameLength += 1 + Buffer.byteLength(label);
  const opt = ednsPayload > 0 ? 11 : 0;
  const bytes = Buffer.alloc(12 + nameLength + 4 + opt);
  bytes.writeUInt16BE(question.id, 0);
  bytes.writeUInt16BE(packet.RECURSION_DESIRED, 2);
  bytes.writeUInt16BE(1, 4); // one question
  bytes.writeUInt16BE(opt ? 1 : 0, 10); // the OPT record, if any
  let at = 12;
  for (const label of labels) {
    const length = bytes.write(label, at + 1, 'utf8');
    bytes[at] = length;
    at += 1 + length;
  }
  bytes[at++] = 0;
  bytes.writeUInt16BE(TYPE_CODES[question.type], at);
  bytes.writeUInt16BE(1, at + 2); // class IN
  at += 4;
  if (opt) {
    // Root name, type OPT (41), class = UDP payload size, TTL = extended rcode/version/flags 0.
    bytes[at] = 0;
    bytes.writeUInt16BE(41, at + 1);
    bytes.writeUInt16BE(ednsPayload, at + 3);
  }
  return bytes;
}

const TYPE_CODES: Record<RecordType, number> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  SPF: 99,
};

/** A response as the resolver sees it: validated header fields and converted records. */
export interface DnsMessage {
  id: number;
  /** Full response code, including the EDNS extended bits. */
  rcode: number;
  truncated: boolean;
  /** True when the response carried an OPT record. */
  edns: boolean;
  questions: Array<{ name: string; type: string; class: string }>;
  answers: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

/**
 * Decode a response; `null` when the bytes are not a well-formed DNS response. Records of types
 * we do not speak, of classes other than IN, or with implausible data are dropped rather than
 * failing the whole message.
 *
 * @example
 * const message = decodeResponse(bytes);
 * if (message && message.rcode === Rcode.NOERROR) console.log(message.answers);
 */
export function decodeResponse(bytes: Buffer): DnsMessage | null {
  let decoded: packet.DecodedPacket;
  try {
    decoded = packet.decode(bytes);
  } catch {
    return null;
  }
  if (!decoded.flag_qr) return null;
  // The opcode bits must say QUERY: anything else is not an answer to what we asked.
  if (((decoded.flags ?? 0) >> 11) & 0xf) return null;
  const raw = decoded as packet.DecodedPacket & { flags: number };
  let rcode = raw.flags & 0xf;
  let edns = false;
  for (const extra of decoded.additionals ?? []) {
    if (extra?.type === 'OPT') {
      edns = true;
      rcode |= ((extra as packet.OptAnswer).extendedRcode & 0xff) << 4;
    }
  }
  const questions: DnsMessage['questions'] = [];
  for (const q of decoded.questions ?? []) {
    if (!q || typeof q.name !== 'string') return null;
    questions.push({ name: q.name, type: String(q.type), class: String(q.class) });
  }
  return {
    id: decoded.id ?? 0,
    rcode,
    truncated: decoded.flag_tc,
    edns,
    questions,
    answers: convertAll(decoded.answers),
    authority: convertAll(decoded.authorities),
    additional: convertAll(decoded.additionals),
  };
}

/**
 * Whether a response answers `question`: same ID and the same question (name compared without
 * regard to case, type, class IN). Error responses that carry no question are accepted on the ID
 * alone, because some servers answer FORMERR that way; they carry no records to poison anything.
 *
 * @example
 * if (!answersQuestion(message, { id, name: 'example.com', type: 'A' })) return; // keep waiting
 */
export function answersQuestion(message: DnsMessage, question: Question): boolean {
  if (message.id !== question.id) return false;
  if (message.questions.length === 0) {
    return message.rcode !== Rcode.NOERROR && message.rcode !== Rcode.NXDOMAIN;
  }
  if (message.questions.length !== 1) return false;
  const q = message.questions[0]!;
  return (
    q.class === 'IN' &&
    q.type === question.type &&
    sameName(stripDot(q.name), stripDot(question.name))
  );
}

/**
 * Domain names compare without regard to ASCII case (RFC 4343).
 *
 * @example
 * sameName('Example.COM', 'example.com')  // true
 */
export function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** Names as we hand them out: no trailing dot, and `''` for the root. */
function stripDot(name: string): string {
  if (name === '.' || name === '') return '';
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function convertAll(list: packet.Answer[] | undefined): DnsRecord[] {
  const out: DnsRecord[] = [];
  for (const answer of list ?? []) {
    const record = convert(answer);
    if (record) out.push(record);
  }
  return out;
}

function convert(answer: packet.Answer | undefined): DnsRecord | null {
  if (!answer || answer.type === 'OPT') return null;
  const base = answer as packet.Answer & {
    name: unknown;
    ttl?: unknown;
    class?: unknown;
    flush?: unknown;
    data: unknown;
  };
  if (base.class !== 'IN' || base.flush || typeof base.name !== 'string') return null;
  const name = stripDot(base.name);
  const ttl = typeof base.ttl === 'number' ? base.ttl : 0;
  const data = base.data;
  // Widened: dns-packet's type list lacks SPF, which it still decodes (as raw rdata).
  const type: string = base.type;
  switch (type) {
    case 'A':
    case 'AAAA':
      return typeof data === 'string' ? { type, name, ttl, address: data } : null;
    case 'PTR':
    case 'CNAME':
    case 'NS':
      return typeof data === 'string' ? { type, name, ttl, target: stripDot(data) } : null;
    case 'MX': {
      const mx = data as Partial<packet.MxData> | null;
      if (!mx || typeof mx.exchange !== 'string' || typeof mx.preference !== 'number') return null;
      return { type: 'MX', name, ttl, preference: mx.preference, exchange: stripDot(mx.exchange) };
    }
    case 'TXT': {
      if (!Array.isArray(data) || !data.every((s) => Buffer.isBuffer(s))) return null;
      return { type: 'TXT', name, ttl, strings: data.map((s: Buffer) => s.toString('latin1')) };
    }
    case 'SPF': {
      // dns-packet has no codec for type 99 and hands back the raw rdata.
      const strings = Buffer.isBuffer(data) ? characterStrings(data) : null;
      return strings ? { type: 'SPF', name, ttl, strings } : null;
    }
    case 'SRV': {
      const srv = data as Partial<packet.SrvData> | null;
      if (!srv || typeof srv.target !== 'string' || typeof srv.port !== 'number') return null;
      return {
        type: 'SRV',
        name,
        ttl,
        priority: srv.priority ?? 0,
        weight: srv.weight ?? 0,
        port: srv.port,
        target: stripDot(srv.target),
      };
    }
    case 'SOA': {
      const soa = data as Partial<packet.SoaData> | null;
      if (!soa || typeof soa.mname !== 'string' || typeof soa.rname !== 'string') return null;
      return {
        type: 'SOA',
        name,
        ttl,
        mname: stripDot(soa.mname),
        rname: stripDot(soa.rname),
        serial: soa.serial ?? 0,
        minimum: soa.minimum ?? 0,
      };
    }
    default:
      return null;
  }
}

/** Split TXT-format rdata into its character-strings; `null` when a length overruns. */
function characterStrings(rdata: Buffer): string[] | null {
  const out: string[] = [];
  let offset = 0;
  while (offset < rdata.length) {
    const length = rdata[offset]!;
    const end = offset + 1 + length;
    if (end > rdata.length) return null;
    out.push(rdata.toString('latin1', offset + 1, end));
    offset = end;
  }
  return out;
}
