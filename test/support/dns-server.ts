/**
 * A real DNS server for tests, on 127.0.0.1 (UDP and TCP on the same ephemeral port), serving a
 * zone written in the openspf test-suite format (the `zonedata:` sections of rfc7208-tests.yml).
 * It behaves like a recursive server that knows only this zone.
 *
 * Zone format, with the semantics of the suite's reference driver (pyspf's test/testspf.py):
 *
 *   name:                       # case-insensitive, no trailing dot
 *     - A: 192.0.2.1            # AAAA: 2001:db8::1, PTR: host, CNAME: host, NS: host
 *     - MX: [10, mx.example.com]
 *     - SRV: [0, 5, 5060, sip.example.com]   # priority, weight, port, target ('.' allowed)
 *     - TXT: "one string"       # one record of one character-string
 *     - TXT: ["two", "strings"] # one record of several character-strings; [] = no strings
 *     - SPF: "v=spf1 -all"      # type 99; same value forms as TXT
 *     - TXT: NONE               # no TXT record, and no TXT copies of the SPF records
 *     - A: TIMEOUT              # queries for A at this name are never answered
 *     - TIMEOUT                 # a query of type T is never answered if this comes before any
 *                               # entry of type T; entries after it are never served
 *
 * - A name with SPF entries and no TXT entry also serves each SPF record as TXT (appended at the
 *   end of its list, so after any TIMEOUT). `TXT: NONE` turns that off.
 * - String values are bytes: characters below 256 are written as one byte each (YAML "\xEF"
 *   escapes arrive that way), others as UTF-8. Strings over 255 bytes are split into several
 *   character-strings, which TXT consumers join again.
 * - A name neither present nor an ancestor of a present name is NXDOMAIN; a present name or an
 *   empty non-terminal without records of the type is NODATA. Negative answers carry an SOA in
 *   the authority section (owner: the last two labels of the name) whose TTL and minimum are the
 *   negative TTL. Records carry the zone's TTL.
 * - A query of type T other than CNAME at a name holding a CNAME (and no T records) is answered
 *   with the CNAME and the chase goes on inside the zone, up to 8 links; a loop ends it. The
 *   rcode, records and timeouts are those of the last name reached.
 * - As in the reference driver, a query for an absent name whose first label is `error` is never
 *   answered (option `errorPrefixTimeout`, default on).
 *
 * Extensions for negative tests (not in the suite):
 *
 *   - RCODE: SERVFAIL           # or REFUSED, FORMERR, NOTIMP, NXDOMAIN: every query for the name
 *                               # gets that rcode (and no records)
 *   - TTL: 60                   # records listed after this entry carry TTL 60
 *
 *   startDnsServer(zone, { ednsFormerr: true })  # FORMERR to every query with an OPT record
 *   startDnsServer(zone, { srvAdditional: true })  # SRV answers carry their targets' A and
 *                               # AAAA records (and CNAMEs on the way) in the additional section
 *
 * UDP replies respect the client's EDNS payload size (512 without OPT); a reply that does not
 * fit goes out with TC set and no records, so clients retry over TCP. Malformed packets are
 * ignored. Every query received is logged in `queries`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import { Rcode } from '../../src/dns/codec.js';

/** Zone data as parsed from the suite's YAML: name → entries. */
export type ZoneData = Record<string, unknown[]>;

const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;

// The rcodes a zone may force, by name; BADVERS is only an extended rcode and cannot be forced.
const RCODES: Record<string, number> = Object.fromEntries(
  Object.entries(Rcode).filter(([name]) => name !== 'BADVERS'),
);

const MAX_CHASE = 8;

interface RecordEntry {
  kind: 'record';
  type: string;
  /** Value in dns-packet's encoder shape. */
  data: unknown;
  ttl: number;
}

type ZoneEntry =
  | RecordEntry
  | { kind: 'timeout' }
  | { kind: 'typeTimeout'; type: string }
  | { kind: 'rcode'; rcode: number };

/** What the server does with one question. */
export type FixtureReply =
  | { kind: 'drop' }
  | { kind: 'reply'; rcode: number; answers: packet.Answer[]; authorities: packet.Answer[] };

export interface ZoneOptions {
  /** TTL of every record, in seconds. Default 300. */
  ttl?: number;
  /** TTL and minimum of the SOA in negative answers, in seconds. Default 60. */
  negativeTtl?: number;
}

/**
 * Bytes of a fixture string: code points below 256 as single bytes, the rest as UTF-8.
 *
 * @example
 * fixtureBytes('\xEF\u20ac')  // <Buffer ef e2 82 ac>
 */
export function fixtureBytes(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    parts.push(code < 256 ? Buffer.from([code]) : Buffer.from(ch, 'utf8'));
  }
  return Buffer.concat(parts);
}

function bare(name: string): string {
  return name.endsWith('.') && name !== '.' ? name.slice(0, -1) : name;
}

function lower(name: string): string {
  return bare(name).toLowerCase();
}

/** TXT-style value → character-strings, each at most 255 bytes. */
function characterStrings(value: unknown): Buffer[] {
  const pieces = Array.isArray(value) ? value : [value];
  const out: Buffer[] = [];
  for (const piece of pieces) {
    const bytes = fixtureBytes(piece === null || piece === undefined ? '' : String(piece));
    if (bytes.length === 0) out.push(bytes);
    for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  }
  return out;
}

/** Encoder-ready data for one `{TYPE: value}` entry. */
function recordData(type: string, value: unknown): unknown {
  const text = (v: unknown) => bare(String(v));
  const list = (v: unknown, n: number): unknown[] => {
    if (!Array.isArray(v) || v.length !== n) {
      throw new Error(
        `fixture zone: ${type} wants a list of ${n} values, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  switch (type) {
    case 'A':
    case 'AAAA':
      return String(value);
    case 'PTR':
    case 'CNAME':
    case 'NS':
      return text(value);
    case 'MX': {
      const [preference, exchange] = list(value, 2);
      return { preference: Number(preference), exchange: text(exchange) };
    }
    case 'SRV': {
      const [priority, weight, port, target] = list(value, 4);
      return {
        priority: Number(priority),
        weight: Number(weight),
        port: Number(port),
        target: text(target),
      };
    }
    case 'TXT':
      return characterStrings(value);
    case 'SPF': {
      // dns-packet has no codec for type 99: hand it the TXT-format rdata as raw bytes.
      const strings = characterStrings(value);
      return Buffer.concat(strings.flatMap((s) => [Buffer.from([s.length]), s]));
    }
    default:
      throw new Error(`fixture zone: unsupported record type ${type}`);
  }
}

/** A parsed fixture zone: lower-cased names to entry lists, plus the empty non-terminals. */
export class FixtureZone {
  readonly ttl: number;
  readonly negativeTtl: number;
  readonly #names: Map<string, ZoneEntry[]>;
  readonly #nonTerminals = new Set<string>();

  constructor(names: Map<string, ZoneEntry[]>, options: ZoneOptions = {}) {
    this.ttl = options.ttl ?? 300;
    this.negativeTtl = options.negativeTtl ?? 60;
    this.#names = names;
    for (const name of names.keys()) {
      const labels = name.split('.');
      for (let i = 1; i < labels.length; i++) {
        const ancestor = labels.slice(i).join('.');
        if (!names.has(ancestor)) this.#nonTerminals.add(ancestor);
      }
    }
  }

  /** Names present in the zone (lower case). */
  names(): string[] {
    return [...this.#names.keys()];
  }

  /**
   * What the server answers to `name`/`type`: pure, so the zone semantics can be tested
   * without a socket.
   *
   * @example
   * zone.answer('example.com', 'TXT')  // { kind: 'reply', rcode: 0, answers: [...], authorities: [] }
   */
  answer(name: string, type: string, options: { errorPrefixTimeout?: boolean } = {}): FixtureReply {
    const answers: packet.Answer[] = [];
    const visited = new Set<string>();
    let owner = bare(name);
    for (let hop = 0; ; hop++) {
      const key = owner.toLowerCase();
      const entries = this.#names.get(key);
      if (!entries) {
        if (this.#nonTerminals.has(key)) return this.#negative(0, key, answers);
        if ((options.errorPrefixTimeout ?? true) && key.startsWith('error.'))
          return { kind: 'drop' };
        return this.#negative(RCODES.NXDOMAIN!, key, answers);
      }
      const forced = entries.find((e) => e.kind === 'rcode');
      if (forced) {
        if (forced.rcode === RCODES.NXDOMAIN) return this.#negative(forced.rcode, key, answers);
        return { kind: 'reply', rcode: forced.rcode, answers, authorities: [] };
      }
      if (timesOut(entries, type)) return { kind: 'drop' };
      const served = servedRecords(entries);
      const matching = served.filter((e) => e.type === type);
      if (matching.length > 0) {
        for (const e of matching) answers.push(toAnswer(owner, e));
        return { kind: 'reply', rcode: 0, answers, authorities: [] };
      }
      const cname = type === 'CNAME' ? undefined : served.find((e) => e.type === 'CNAME');
      if (!cname) return this.#negative(0, key, answers);
      answers.push(toAnswer(owner, cname));
      visited.add(key);
      const target = cname.data as string;
      if (visited.has(target.toLowerCase()) || hop + 1 >= MAX_CHASE) {
        return this.#negative(0, lower(target), answers);
      }
      owner = target;
    }
  }

  /**
   * What a recursive server that has them at hand puts in the additional section of an SRV
   * answer (RFC 2782): the A and AAAA records of each target among `answers`, with the CNAMEs
   * leading to them. Targets that are `.`, absent, time out or fail add nothing.
   *
   * @example
   * zone.srvAdditionals(reply.answers)  // [{ name: 'host.example.com', type: 'A', ... }]
   */
  srvAdditionals(answers: packet.Answer[]): packet.Answer[] {
    const out: packet.Answer[] = [];
    const seen = new Set<string>();
    for (const srv of answers) {
      if (srv.type !== 'SRV') continue;
      const target = bare(srv.data.target);
      if (target === '.' || target === '') continue;
      for (const type of ['A', 'AAAA']) {
        const reply = this.answer(target, type, { errorPrefixTimeout: false });
        if (reply.kind !== 'reply' || reply.rcode !== 0) continue;
        if (!reply.answers.some((r) => r.type === type)) continue;
        for (const record of reply.answers) {
          const key = JSON.stringify([
            record.type,
            record.name.toLowerCase(),
            'data' in record ? record.data : null,
          ]);
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(record);
        }
      }
    }
    return out;
  }

  #negative(rcode: number, name: string, answers: packet.Answer[]): FixtureReply {
    const labels = name.split('.').filter((l) => l !== '');
    const apex = labels.length >= 2 ? labels.slice(-2).join('.') : '.';
    const host = (prefix: string) => (apex === '.' ? prefix : `${prefix}.${apex}`);
    const soa: packet.Answer = {
      name: apex,
      type: 'SOA',
      ttl: this.negativeTtl,
      data: {
        mname: host('ns'),
        rname: host('hostmaster'),
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: this.negativeTtl,
      },
    };
    return { kind: 'reply', rcode, answers, authorities: [soa] };
  }
}

/** The reference driver's TIMEOUT rules for one name's entry list and one query type. */
function timesOut(entries: ZoneEntry[], type: string): boolean {
  let seen = false;
  for (const e of entries) {
    if (e.kind === 'timeout') return !seen;
    if (e.kind === 'typeTimeout' && e.type === type) return true;
    if (e.kind === 'record' && e.type === type) seen = true;
  }
  return false;
}

/** Records served for a name: those before the first bare TIMEOUT. */
function servedRecords(entries: ZoneEntry[]): RecordEntry[] {
  const out: RecordEntry[] = [];
  for (const e of entries) {
    if (e.kind === 'timeout') break;
    if (e.kind === 'record') out.push(e);
  }
  return out;
}

function toAnswer(owner: string, entry: RecordEntry): packet.Answer {
  return {
    name: owner,
    type: entry.type,
    ttl: entry.ttl,
    data: entry.data,
  } as packet.Answer;
}

/**
 * Parse suite zone data into a FixtureZone. Throws on entries it does not understand, so a typo
 * in a test zone fails loudly instead of serving nothing.
 *
 * @example
 * const zone = parseSuiteZone({ 'example.com': [{ SPF: 'v=spf1 -all' }, { A: '192.0.2.1' }] });
 */
export function parseSuiteZone(zonedata: ZoneData, defaults: ZoneOptions = {}): FixtureZone {
  const ttl = defaults.ttl ?? 300;
  const names = new Map<string, ZoneEntry[]>();
  for (const [rawName, rawEntries] of Object.entries(zonedata ?? {})) {
    const name = lower(String(rawName));
    const entries = names.get(name) ?? [];
    names.set(name, entries);
    // As the driver's getrdata: SPF values become TXT copies unless the name lists TXT itself.
    const copies: ZoneEntry[] = [];
    let generate = true;
    let currentTtl = ttl;
    for (const raw of rawEntries ?? []) {
      if (raw === 'TIMEOUT') {
        entries.push({ kind: 'timeout' });
        continue;
      }
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new Error(`fixture zone: ${name}: bad entry ${JSON.stringify(raw)}`);
      }
      for (const [type, value] of Object.entries(raw as Record<string, unknown>)) {
        if (type === 'TTL') {
          currentTtl = Number(value);
          continue;
        }
        if (type === 'RCODE') {
          const rcode = RCODES[String(value).toUpperCase()];
          if (rcode === undefined) throw new Error(`fixture zone: ${name}: bad RCODE ${value}`);
          entries.push({ kind: 'rcode', rcode });
          continue;
        }
        if (type === 'TXT') generate = false;
        if (value === 'TIMEOUT') {
          entries.push({ kind: 'typeTimeout', type });
          if (type === 'SPF') copies.push({ kind: 'typeTimeout', type: 'TXT' });
          continue;
        }
        if (value === 'NONE') continue;
        const entry: RecordEntry = {
          kind: 'record',
          type,
          data: recordData(type, value),
          ttl: currentTtl,
        };
        entries.push(entry);
        if (type === 'SPF') {
          copies.push({
            kind: 'record',
            type: 'TXT',
            data: recordData('TXT', value),
            ttl: currentTtl,
          });
        }
      }
    }
    if (generate) entries.push(...copies);
  }
  return new FixtureZone(names, defaults);
}

export interface LoggedQuery {
  /** As received, without trailing dot. */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  /** Whether the query carried an EDNS0 OPT record. */
  edns: boolean;
}

export interface DnsServerOptions extends ZoneOptions {
  /** Answer FORMERR to any query carrying OPT, like a server from before EDNS. */
  ednsFormerr?: boolean;
  /** Drop queries for absent names starting with `error.`, as the reference driver. Default true. */
  errorPrefixTimeout?: boolean;
  /**
   * Put the A and AAAA records of SRV targets (and CNAMEs leading to them) that the zone holds in
   * the additional section of SRV answers, as recursive servers often do. Default false: the
   * additional section carries only the OPT record.
   */
  srvAdditional?: boolean;
}

export interface FixtureDnsServer {
  host: string;
  port: number;
  /** `127.0.0.1:PORT`, ready for the resolver's `servers` option. */
  address: string;
  /** Serve another zone from now on (raw zone data is parsed with the server's TTL options). */
  setZone(zone: FixtureZone | ZoneData): void;
  /** Every query received, in order. */
  queries: LoggedQuery[];
  resetLog(): void;
  close(): Promise<void>;
}

function toZone(zone: FixtureZone | ZoneData | undefined, options: ZoneOptions): FixtureZone {
  if (zone instanceof FixtureZone) return zone;
  return parseSuiteZone(zone ?? {}, options);
}

/**
 * Start a fixture server on 127.0.0.1 with UDP and TCP on one ephemeral port.
 *
 * @example
 * const server = await startDnsServer({ 'example.com': [{ A: '192.0.2.1' }] });
 * const resolver = createResolver({ servers: [server.address] });
 * // ...
 * await server.close();
 */
export async function startDnsServer(
  zone?: FixtureZone | ZoneData,
  options: DnsServerOptions = {},
): Promise<FixtureDnsServer> {
  const state = { zone: toZone(zone, options) };
  const queries: LoggedQuery[] = [];

  const respond = (bytes: Buffer, transport: 'udp' | 'tcp'): Buffer | null => {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(bytes);
    } catch {
      return null;
    }
    const question = query.questions?.[0];
    if (query.flag_qr || !question || typeof question.name !== 'string') return null;
    const opt = (query.additionals ?? []).find((a) => a?.type === 'OPT') as
      | packet.OptAnswer
      | undefined;
    queries.push({ name: bare(question.name), type: question.type, transport, edns: !!opt });
    const flags = FLAG_AA | FLAG_RA | ((query.flags ?? 0) & FLAG_RD);
    const base = { type: 'response' as const, id: query.id ?? 0, questions: [question] };
    if (options.ednsFormerr && opt) {
      return packet.encode({ ...base, flags: flags | RCODES.FORMERR! });
    }
    const additionals: packet.Answer[] = opt
      ? [
          {
            name: '.',
            type: 'OPT',
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [];
    let reply: FixtureReply;
    let full: Buffer;
    try {
      reply = state.zone.answer(question.name, question.type, options);
      if (reply.kind === 'drop') return null;
      const extra =
        options.srvAdditional && question.type === 'SRV'
          ? state.zone.srvAdditionals(reply.answers)
          : [];
      full = packet.encode({
        ...base,
        flags: flags | reply.rcode,
        answers: reply.answers,
        authorities: reply.authorities,
        additionals: [...extra, ...additionals],
      });
    } catch {
      // Bad zone data (say an unparsable address) should read as a server failure, not a crash.
      return packet.encode({ ...base, flags: flags | RCODES.SERVFAIL!, additionals });
    }
    const limit = transport === 'tcp' ? 0xffff : Math.max(512, opt?.udpPayloadSize ?? 512);
    if (full.length <= limit) return full;
    return packet.encode({ ...base, flags: flags | FLAG_TC | reply.rcode, additionals });
  };

  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    udp.on('error', () => {
      // A send to a vanished client must not take the fixture down.
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const sockets = new Set<Socket>();
    const tcp = createServer((socket) => serveTcp(socket, sockets, respond));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeUdp(udp);
      if (attempt < 9) continue;
      throw err;
    }
    udp.on('message', (msg, rinfo) => {
      const out = respond(msg, 'udp');
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
    return {
      host: '127.0.0.1',
      port,
      address: `127.0.0.1:${port}`,
      queries,
      setZone(next) {
        state.zone = toZone(next, options);
      },
      resetLog() {
        queries.length = 0;
      },
      close: () => closeAll(udp, tcp, sockets),
    };
  }
}

function serveTcp(
  socket: Socket,
  sockets: Set<Socket>,
  respond: (bytes: Buffer, transport: 'tcp') => Buffer | null,
): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const length = pending.readUInt16BE(0);
      if (pending.length < 2 + length) return;
      const out = respond(pending.subarray(2, 2 + length), 'tcp');
      pending = pending.subarray(2 + length);
      if (out && !socket.destroyed) {
        const frame = Buffer.alloc(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        socket.write(frame);
      }
    }
  });
}

function closeUdp(udp: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      udp.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

async function closeAll(udp: UdpSocket, tcp: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await Promise.all([closeUdp(udp), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
}
