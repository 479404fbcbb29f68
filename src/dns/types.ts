/**
 * The resolver's vocabulary: record types, records, and the four explicit outcomes of a query.
 */

/** Record types mailgate asks for. `SPF` (type 99) is obsolete but still served by some zones. */
export type RecordType =
  | 'A'
  | 'AAAA'
  | 'MX'
  | 'PTR'
  | 'TXT'
  | 'SPF'
  | 'CNAME'
  | 'SRV'
  | 'SOA'
  | 'NS';

export interface ARecord {
  type: 'A';
  name: string;
  ttl: number;
  /** Dotted quad, e.g. `192.0.2.1`. */
  address: string;
}

export interface AaaaRecord {
  type: 'AAAA';
  name: string;
  ttl: number;
  /** Compressed IPv6 text form, e.g. `2001:db8::1`. */
  address: string;
}

export interface MxRecord {
  type: 'MX';
  name: string;
  ttl: number;
  preference: number;
  /** Exchange host name without the trailing dot; `''` for the null MX of RFC 7505. */
  exchange: string;
}

export interface PtrRecord {
  type: 'PTR';
  name: string;
  ttl: number;
  /** Target host name without the trailing dot. */
  target: string;
}

export interface TxtRecord {
  type: 'TXT' | 'SPF';
  name: string;
  ttl: number;
  /**
   * The character-strings of the record, each decoded byte for byte (latin1), so that 8-bit
   * content survives and can be recognised as such by the caller.
   */
  strings: string[];
}

export interface CnameRecord {
  type: 'CNAME';
  name: string;
  ttl: number;
  target: string;
}

export interface SrvRecord {
  type: 'SRV';
  name: string;
  ttl: number;
  priority: number;
  weight: number;
  port: number;
  /** Target host name without the trailing dot; `''` for the root (`.`). */
  target: string;
}

export interface SoaRecord {
  type: 'SOA';
  name: string;
  ttl: number;
  mname: string;
  rname: string;
  serial: number;
  minimum: number;
}

export interface NsRecord {
  type: 'NS';
  name: string;
  ttl: number;
  target: string;
}

export type DnsRecord =
  | ARecord
  | AaaaRecord
  | MxRecord
  | PtrRecord
  | TxtRecord
  | CnameRecord
  | SrvRecord
  | SoaRecord
  | NsRecord;

/** The record shape for a given query type. */
export type RecordOf<T extends RecordType> = T extends 'A'
  ? ARecord
  : T extends 'AAAA'
    ? AaaaRecord
    : T extends 'MX'
      ? MxRecord
      : T extends 'PTR'
        ? PtrRecord
        : T extends 'TXT' | 'SPF'
          ? TxtRecord
          : T extends 'CNAME'
            ? CnameRecord
            : T extends 'SRV'
              ? SrvRecord
              : T extends 'SOA'
                ? SoaRecord
                : NsRecord;

/** Why a query failed temporarily. */
/**
 * Hears what a resolver does, for the daemon's metrics: each lookup answered from the cache or
 * sent out, and how each resolution sent out ended (`answer`, `nxdomain`, `nodata`, or the
 * temporary reason: `timeout`, `servfail`, ...).
 */
export interface ResolverObserver {
  cache(hit: boolean): void;
  resolved(
    type: string,
    outcome: 'answer' | 'nxdomain' | 'nodata' | TemporaryReason,
    seconds: number,
  ): void;
}

export type TemporaryReason =
  | 'servfail'
  | 'refused'
  | 'formerr'
  | 'timeout'
  | 'network'
  | 'malformed'
  | 'budget'
  | 'deadline';

/**
 * What one query produced. Every caller must handle all four kinds; there is no "empty array
 * means whatever" shortcut.
 */
export type DnsResult<T extends RecordType = RecordType> =
  | {
      kind: 'answer';
      /** Records of the asked type, reached through any CNAME chain in the answer section. */
      records: RecordOf<T>[];
      /** The CNAME chain that led to the records, in order (empty when none). */
      cnames: CnameRecord[];
      /** The additional section, as the server sent it (CSA uses it for SRV targets). */
      additional: DnsRecord[];
      /** True when the result came from the cache. */
      cached: boolean;
    }
  | { kind: 'nxdomain'; cached: boolean }
  | { kind: 'nodata'; cached: boolean }
  | { kind: 'temporary'; reason: TemporaryReason; detail: string };

/** Per-query options. */
export interface QueryOptions {
  /**
   * Absolute deadline (milliseconds on the resolver's clock) after which the query gives up with
   * reason `deadline`. The resolver's own per-query timeout still applies; the earlier one wins.
   */
  deadline?: number;
  /**
   * The same as a deadline, relative: give up with reason `deadline` after this many milliseconds
   * from now. A caller with a clock of its own passes its time left this way, so that no two
   * clocks are ever compared.
   */
  timeout?: number;
  /** Called once for every query this call asks for, before the cache is consulted. */
  meter?: QueryMeter;
}

/**
 * Lets a caller count and bound the queries it causes. `charge` is called before each query; when
 * it returns false the query is not sent and the result is a temporary failure with reason
 * `budget`.
 */
export interface QueryMeter {
  charge(name: string, type: RecordType): boolean;
}

/** The resolver every check receives. */
export interface Resolver {
  /**
   * Resolve `name` (with or without trailing dot, any case) for one record type.
   *
   * @example
   * const r = await resolver.query('example.com', 'TXT');
   * if (r.kind === 'answer') console.log(r.records.map((t) => t.strings.join('')));
   */
  query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>>;
}

/** A time source in milliseconds; production uses `Date.now`, tests may pass their own. */
export interface Clock {
  now(): number;
}
