/**
 * Body canonicalization (RFC 6376 sections 3.4.3 and 3.4.4) and hashing as the body streams in.
 * Nothing of the body is kept: the canonicalizer holds back only what it cannot decide yet (the
 * line ends that may turn out to be trailing empty lines, whitespace that may end a line, a CR
 * at the end of a chunk) and passes runs of unchanged bytes to the hash as views of the chunk.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Canonicalization } from './canonicalize.js';

export type HashAlgorithm = 'sha256' | 'sha1';

/** What a body hash ends with. */
export interface BodyDigest {
  /** The hash of the canonical body (of its first `l=` bytes when there is a limit). */
  hash: Buffer;
  /** Canonical bytes hashed: the limit, or the whole canonical body when it is shorter. */
  hashedLength: number;
  /** Length of the whole canonical body, to tell whether l= left part of it unsigned. */
  canonicalLength: number;
}

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const CR_BYTE = Buffer.from([CR]);
const SP_BYTE = Buffer.from([SP]);
const CRLF = Buffer.from('\r\n');
/** Held-back line ends are written in slices of this many. */
const CRLF_BATCH = 512;
const CRLFS = Buffer.from('\r\n'.repeat(CRLF_BATCH));

/** Receives canonical body bytes. */
interface CanonicalSink {
  write(bytes: Buffer): void;
}

/** A hash of at most `limit` canonical bytes, counting all of them. */
class LimitedHash implements CanonicalSink {
  private readonly hash: Hash;
  private hashed = 0;
  private total = 0;
  private result: BodyDigest | undefined;

  constructor(
    algorithm: HashAlgorithm,
    private readonly limit: number,
  ) {
    this.hash = createHash(algorithm);
  }

  write(bytes: Buffer): void {
    this.total += bytes.length;
    const room = this.limit - this.hashed;
    if (room <= 0) return;
    const part = bytes.length <= room ? bytes : bytes.subarray(0, room);
    this.hash.update(part);
    this.hashed += part.length;
  }

  digest(): BodyDigest {
    this.result ??= {
      hash: this.hash.digest(),
      hashedLength: this.hashed,
      canonicalLength: this.total,
    };
    return this.result;
  }
}

/** One canonicalization of the streaming body, written to any number of sinks. */
class BodyCanonicalizer {
  readonly sinks: CanonicalSink[] = [];
  /** Line ends held back: they are dropped if nothing but empty lines follows. */
  private crlfs = 0;
  /** A CR ended the last chunk: a line end if the next chunk starts with LF. */
  private cr = false;
  /** Relaxed: whitespace held back, written as one space if the line goes on. */
  private space = false;
  /** Something other than line ends has been written. */
  private content = false;
  private ended = false;

  constructor(private readonly how: Canonicalization) {}

  update(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    let start = 0;
    if (this.cr) {
      this.cr = false;
      if (chunk[0] === LF) {
        this.space = false;
        this.crlfs++;
        start = 1;
      } else {
        this.flushHeld();
        this.write(CR_BYTE);
      }
    }
    if (this.how === 'simple') this.simple(chunk, start);
    else this.relaxed(chunk, start);
  }

  finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.cr) {
      // A CR that ends the body is no line end: it is content, and the line needs its CRLF.
      this.cr = false;
      this.flushHeld();
      this.write(CR_BYTE);
    }
    // Simple: one CRLF ends the last line, or is the whole body when it is empty (section
    // 3.4.3). Relaxed: the same, except that an empty body stays empty (section 3.4.4).
    if (this.how === 'simple' || this.content) this.write(CRLF);
  }

  /** Simple: bytes are kept; only a run of CRLFs at the end of chunk[start, end) is held back. */
  private simple(chunk: Buffer, start: number, end = chunk.length): void {
    let stop = end;
    const trailingCr = stop > start && chunk[stop - 1] === CR;
    if (trailingCr) stop--;
    let held = 0;
    while (stop - 2 >= start && chunk[stop - 1] === LF && chunk[stop - 2] === CR) {
      stop -= 2;
      held++;
    }
    if (stop > start) {
      this.flushHeld();
      this.write(chunk.subarray(start, stop));
    }
    this.crlfs += held;
    this.cr = trailingCr;
  }

  /**
   * Relaxed: whitespace runs become one space, whitespace at line ends goes. Where a stretch of
   * the chunk holds no space or tab (base64, most of a large body), relaxed is simple, and the
   * stretch goes to the hash whole; the rest is read byte by byte.
   */
  private relaxed(chunk: Buffer, start: number): void {
    const n = chunk.length;
    let at = start;
    while (at < n) {
      if (!this.space) {
        let end = plainUntil(chunk, at);
        // A CR before the whitespace is decided with it, byte by byte.
        if (end < n && end > at && chunk[end - 1] === CR) end--;
        if (end - at >= PLAIN_MIN) {
          this.simple(chunk, at, end);
          at = end;
          continue;
        }
      }
      at = this.relaxedBytes(chunk, at, at + BYTEWISE_STRETCH);
    }
  }

  /**
   * Relaxed canonicalization byte by byte, from `start` until at least `until` (or the end of
   * the chunk). Bytes that stay as they are (words, single spaces between them, line ends
   * between lines of content) are written as one view of the chunk; only changes split it.
   * Returns where it stopped, everything before written or held.
   */
  private relaxedBytes(chunk: Buffer, start: number, until: number): number {
    const n = chunk.length;
    let run = start; // start of the bytes written unchanged
    let i = start;
    while (i < n && i < until) {
      // Nearly every byte is above the space, and none of those needs a second look.
      while (i < n && chunk[i]! > SP) i++;
      if (i >= n) break;
      const byte = chunk[i]!;
      if (byte === SP || byte === TAB) {
        if (byte === SP && i > run && i + 1 < n && isPlain(chunk[i + 1]!)) {
          i++;
          continue;
        }
        this.emit(chunk, run, i);
        this.space = true;
        run = ++i;
      } else if (byte === CR) {
        if (i + 1 >= n) {
          this.emit(chunk, run, i);
          this.cr = true;
          run = ++i;
        } else if (chunk[i + 1] === LF) {
          if (i > run && i + 2 < n && isPlain(chunk[i + 2]!)) {
            i += 2;
            continue;
          }
          this.emit(chunk, run, i);
          this.space = false;
          this.crlfs++;
          i += 2;
          run = i;
        } else {
          i++; // a bare CR is content
        }
      } else {
        i++;
      }
    }
    this.emit(chunk, run, i);
    return i;
  }

  /** Writes chunk[from, to) after what is held back, if it is not empty. */
  private emit(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    this.flushHeld();
    this.write(chunk.subarray(from, to));
  }

  /** Content follows: the held line ends and whitespace were no trailing ones. */
  private flushHeld(): void {
    while (this.crlfs > 0) {
      const count = Math.min(this.crlfs, CRLF_BATCH);
      this.write(count === CRLF_BATCH ? CRLFS : CRLFS.subarray(0, count * 2));
      this.crlfs -= count;
    }
    if (this.space) {
      this.space = false;
      this.write(SP_BYTE);
    }
    this.content = true;
  }

  private write(bytes: Buffer): void {
    for (const sink of this.sinks) sink.write(bytes);
  }
}

/** Stretches relaxed leaves alone shorter than this are read byte by byte all the same. */
const PLAIN_MIN = 64;
/** Bytes read one by one after a change before looking for a stretch to pass whole again. */
const BYTEWISE_STRETCH = 32;

/** The word scan reads the byte after each byte from the next higher address as the next lane. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const SPACES = 0x20202020;
const TABS = 0x09090909;
const CRS = 0x0d0d0d0d;
const ONES = 0x01010101;
const HIGHS = 0x80808080;

/**
 * The high bit of each byte of `word` that equals the pattern's byte, and perhaps of a byte
 * above one that does (the borrow of the subtraction): never a miss, sometimes one too many.
 */
function bytesEqual(word: number, pattern: number): number {
  const x = word ^ pattern;
  return (x - ONES) & ~x & HIGHS;
}

/**
 * Where relaxed canonicalization may first change chunk[from...]: a tab, or a space followed
 * by a space, a tab or a CR (a run, or whitespace at a line end), or a space whose next byte is
 * in the next chunk; the chunk's length when there is none. It may answer a little early (up
 * to a word before), never late. Prose has a space every few bytes, so the scan takes four
 * bytes at a time where the chunk is aligned for it.
 */
function plainUntil(chunk: Buffer, from: number): number {
  const n = chunk.length;
  let i = from;
  if (!LITTLE_ENDIAN) {
    while (i < n && !changesAt(chunk, i)) i++;
    return i;
  }
  // Byte by byte until the memory is aligned for 32-bit reads.
  while (i < n && (chunk.byteOffset + i) % 4 !== 0) {
    if (changesAt(chunk, i)) return i;
    i++;
  }
  if (i >= n) return n;
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset + i, (n - i) >>> 2);
  // The last word's follower is past the words; it is read byte by byte below.
  const last = words.length - 1;
  for (let w = 0; w < last; w++) {
    const word = words[w]!;
    // Each byte's follower: the next byte of the word, the first of the next word for the top.
    const next = (word >>> 8) | (words[w + 1]! << 24);
    const follow = bytesEqual(next, SPACES) | bytesEqual(next, TABS) | bytesEqual(next, CRS);
    if (bytesEqual(word, TABS) | (bytesEqual(word, SPACES) & follow)) {
      return i + w * 4;
    }
  }
  for (let j = i + Math.max(last, 0) * 4; j < n; j++) {
    if (changesAt(chunk, j)) return j;
  }
  return n;
}

/** Whether relaxed canonicalization may change the byte at `i` (see plainUntil). */
function changesAt(chunk: Buffer, i: number): boolean {
  const byte = chunk[i]!;
  if (byte === TAB) return true;
  if (byte !== SP) return false;
  if (i + 1 >= chunk.length) return true;
  const next = chunk[i + 1]!;
  return next === SP || next === TAB || next === CR;
}

/** A byte relaxed canonicalization leaves alone whatever surrounds it. */
function isPlain(byte: number): boolean {
  return byte !== SP && byte !== TAB && byte !== CR;
}

/**
 * One body canonicalization, hash and length limit, fed the body in chunks split anywhere (even
 * inside a CRLF). Never buffers the body.
 *
 * @example
 * const hasher = new BodyHasher('relaxed', 'sha256');
 * hasher.update(Buffer.from('Hi  there \r\n\r\n'));
 * hasher.digest().canonicalLength  // 10 ('Hi there\r\n')
 */
export class BodyHasher {
  private readonly canonicalizer: BodyCanonicalizer;
  private readonly hash: LimitedHash;

  /** `limit` is the l= tag: canonical bytes to hash at most. */
  constructor(how: Canonicalization, hash: HashAlgorithm, limit?: number) {
    this.canonicalizer = new BodyCanonicalizer(how);
    this.hash = new LimitedHash(hash, limit ?? Number.POSITIVE_INFINITY);
    this.canonicalizer.sinks.push(this.hash);
  }

  update(chunk: Buffer): void {
    this.canonicalizer.update(chunk);
  }

  /** Ends the body (later updates are ignored); the same digest on every call. */
  digest(): BodyDigest {
    this.canonicalizer.finish();
    return this.hash.digest();
  }
}

/** The body hash of one (canonicalization, hash, limit), readable once the body has ended. */
export interface BodyHashHandle {
  /** Throws when called before `BodyHashes.finish()` (a programming error). */
  result(): BodyDigest;
}

/**
 * The body hashes one message needs, each distinct (canonicalization, hash, limit) computed
 * once, and each canonicalization run once for all the hashes that share it.
 *
 * @example
 * const hashes = new BodyHashes();
 * const a = hashes.want('relaxed', 'sha256');
 * hashes.want('relaxed', 'sha256') === a  // true
 * hashes.update(body);
 * hashes.finish();
 * a.result().hash  // the bh= value, decoded
 */
export class BodyHashes {
  private readonly handles = new Map<string, BodyHashHandle>();
  private readonly canonicalizers = new Map<Canonicalization, BodyCanonicalizer>();
  private finished = false;

  /** Distinct hashes wanted so far. */
  get size(): number {
    return this.handles.size;
  }

  /** A handle for one body hash; the same (how, hash, limit) gives the same handle. */
  want(how: Canonicalization, hash: HashAlgorithm, limit?: number): BodyHashHandle {
    const key = `${how}/${hash}/${limit ?? ''}`;
    const known = this.handles.get(key);
    if (known) return known;
    if (this.finished) throw new Error('BodyHashes.want after finish');
    let canonicalizer = this.canonicalizers.get(how);
    if (!canonicalizer) {
      canonicalizer = new BodyCanonicalizer(how);
      this.canonicalizers.set(how, canonicalizer);
    }
    const sink = new LimitedHash(hash, limit ?? Number.POSITIVE_INFINITY);
    canonicalizer.sinks.push(sink);
    const handle: BodyHashHandle = {
      result: () => {
        if (!this.finished) throw new Error('body hash read before BodyHashes.finish');
        return sink.digest();
      },
    };
    this.handles.set(key, handle);
    return handle;
  }

  update(chunk: Buffer): void {
    if (this.finished) return;
    for (const canonicalizer of this.canonicalizers.values()) canonicalizer.update(chunk);
  }

  /** Ends the body for every hash (idempotent). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const canonicalizer of this.canonicalizers.values()) canonicalizer.finish();
  }
}
