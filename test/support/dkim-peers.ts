/**
 * The DKIM and ARC implementations Debian ships, driven from tests so that mailgate's signatures
 * and verdicts can be checked against them: dkimpy (python3-dkim, with python3-authres for ARC)
 * and OpenDKIM (opendkim). scripts/pretest-debian.sh installs them as root; without them the
 * tests that need them skip, naming the package.
 *
 * What each can do is in {@link peerCannot}: both sign and verify rsa-sha256 and ed25519-sha256
 * with every canonicalization, except that OpenDKIM's ed25519 signatures with simple header
 * canonicalization verify nowhere; only dkimpy does ARC, and only with rsa-sha256. OpenDKIM
 * re-spaces `Name:value` fields before simple header canonicalization
 * ({@link opendkimSeesFieldsAsSent}).
 *
 * Every run is the real program on a message in a throwaway directory. Public keys never come
 * from DNS: the caller's key table (`selector._domainkey.domain` → TXT value) is the peer's own key
 * source — dkimpy's `dnsfunc` hook, fed from a JSON file by a small driver script, and OpenDKIM's
 * `TestPublicKeys` file. Messages are handed over in wire form (CRLF line ends; bare LF is made
 * CRLF first) and come back that way.
 *
 * How each peer is run, and why:
 *
 * - dkimpy: `/usr/bin/python3 -I driver.py OP request.json message.eml out`, calling dkim.sign,
 *   dkim.verify, dkim.arc_sign and dkim.arc_verify. Debian's module belongs to /usr/bin/python3,
 *   not to whatever python3 comes first on PATH; `-I` keeps PYTHON* variables and user site
 *   packages out. The message and the result travel as files because they are bytes, not text.
 * - OpenDKIM: `opendkim -x opendkim.conf -vv -t message.eml`, the filter's own test mode, which
 *   reads a configuration (TestPublicKeys, Canonicalization, SignatureAlgorithm, a KeyTable) and
 *   prints the header fields it would add. opendkim-testmsg cannot serve: it signs only
 *   rsa-sha1 with relaxed/simple (compiled in), takes no configuration, so it looks keys up
 *   in the system's DNS, and without -C it mangles the end of the signature it prints.
 *
 * @example
 * const keys = testKeys();
 * const signed = await dkimpySign(message, {
 *   domain: 'example.com', selector: 'sel', privateKeyPem: keys.rsa.privateKeyPem,
 *   algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed',
 * });
 * const { ok } = await opendkimVerify(signed, { 'sel._domainkey.example.com': keys.rsa.txt });
 */
import { spawnSync } from 'node:child_process';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  fieldFromText,
  fieldValue,
  parseMessage,
  withCrlf,
} from '../../src/checks/message/index.js';
import { findProgram, type ProgramRun, runProgram } from './programs.js';

/** The signing algorithms mailgate signs and verifies with (RFC 6376 and RFC 8463). */
export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';
/** Header/body canonicalization, as the c= tag writes it. */
export type Canonicalization =
  | 'simple/simple'
  | 'simple/relaxed'
  | 'relaxed/simple'
  | 'relaxed/relaxed';

export const ALGORITHMS: readonly DkimAlgorithm[] = ['rsa-sha256', 'ed25519-sha256'];
export const CANONICALIZATIONS: readonly Canonicalization[] = [
  'simple/simple',
  'simple/relaxed',
  'relaxed/simple',
  'relaxed/relaxed',
];

/** Public keys as DNS would serve them: `selector._domainkey.domain` → the TXT value. */
export type KeyTable = Record<string, string>;

export type DkimPeer = 'dkimpy' | 'opendkim';

/** What a peer is asked to do, for {@link peerCannot}. */
export type PeerJob = 'sign' | 'verify' | 'arc-seal' | 'arc-verify';

/** Debian's python3-dkim is installed for this interpreter only. */
const DEBIAN_PYTHON = '/usr/bin/python3';

/** Each run is small; a peer that takes longer than this is stuck. */
const RUN_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// Keys

/** One key pair in the forms the peers and DNS want. */
export interface DkimTestKey {
  algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM. */
  publicKeyPem: string;
  /**
   * The key record: `v=DKIM1; k=rsa; p=...` (p= the SPKI DER) or `v=DKIM1; k=ed25519; p=...`
   * (p= the raw 32-byte key, RFC 8463).
   */
  txt: string;
}

/**
 * A fresh RSA-2048 and a fresh ed25519 key pair, with their DKIM key records.
 *
 * @example
 * const { rsa, ed25519 } = testKeys();
 * const keys = { 'sel._domainkey.example.com': rsa.txt, 'ed._domainkey.example.com': ed25519.txt };
 */
export function testKeys(): { rsa: DkimTestKey; ed25519: DkimTestKey } {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  return {
    rsa: describeKey('rsa-sha256', rsa.privateKey, rsa.publicKey),
    ed25519: describeKey('ed25519-sha256', ed.privateKey, ed.publicKey),
  };
}

function describeKey(
  algorithm: DkimAlgorithm,
  privateKey: KeyObject,
  publicKey: KeyObject,
): DkimTestKey {
  return {
    algorithm,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    txt: keyRecord(publicKey),
  };
}

/**
 * The DKIM key record (TXT value) of a public key, or of the public half of a private key.
 *
 * @example
 * keyRecord(createPublicKey(ed25519Pem))  // 'v=DKIM1; k=ed25519; p=<44 base64 characters>'
 */
export function keyRecord(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const { x } = publicKey.export({ format: 'jwk' });
    return `v=DKIM1; k=ed25519; p=${Buffer.from(x ?? '', 'base64url').toString('base64')}`;
  }
  if (publicKey.asymmetricKeyType === 'rsa') {
    const der = publicKey.export({ type: 'spki', format: 'der' });
    return `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
  }
  throw new TypeError(`no DKIM key type for a ${publicKey.asymmetricKeyType} key`);
}

/**
 * The name a verifier looks a key up under.
 *
 * @example
 * keyName('sel', 'example.com')  // 'sel._domainkey.example.com'
 */
export function keyName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

// ---------------------------------------------------------------------------------------------
// What each peer can do

/**
 * Combinations a peer cannot do, found in the Debian 12 packages (dkimpy 1.1.4, OpenDKIM
 * 2.11.0~beta2). Everything else works both ways: rsa-sha256 and ed25519-sha256, all four
 * canonicalizations, signing and verifying.
 */
const LIMITS: readonly {
  peer: DkimPeer;
  job: PeerJob;
  algorithm?: DkimAlgorithm;
  /** The header half of the canonicalization the limit applies to. */
  header?: 'simple' | 'relaxed';
  why: string;
}[] = [
  {
    // OpenDKIM hashes its ed25519 signature field with b= on the h= line and then inserts it
    // with b= folded onto a line of its own; under simple header canonicalization that fold is
    // signed, so the signature verifies nowhere, OpenDKIM included (unfolding it makes it pass).
    peer: 'opendkim',
    job: 'sign',
    algorithm: 'ed25519-sha256',
    header: 'simple',
    why: 'OpenDKIM inserts its ed25519 DKIM-Signature folded otherwise than it hashed it, which simple header canonicalization cannot forgive',
  },
  {
    peer: 'dkimpy',
    job: 'arc-seal',
    algorithm: 'ed25519-sha256',
    why: 'dkimpy seals ARC with rsa-sha256 only (dkim.arc_sign ignores signature_algorithm; ARC.sign reads RSA keys only)',
  },
  {
    peer: 'dkimpy',
    job: 'arc-verify',
    algorithm: 'ed25519-sha256',
    why: "dkimpy's ARC verifier knows rsa-sha256 only (1.1.4: unknown signature algorithm ed25519-sha256)",
  },
  {
    peer: 'opendkim',
    job: 'arc-seal',
    why: 'OpenDKIM has no ARC (that is OpenARC, which Debian 12 does not ship)',
  },
  {
    peer: 'opendkim',
    job: 'arc-verify',
    why: 'OpenDKIM has no ARC (that is OpenARC, which Debian 12 does not ship)',
  },
];

/**
 * Why a peer cannot do a job with an algorithm and canonicalization, or undefined when it can.
 * The dkimpy functions below refuse such a job with this reason; tests name it when they skip.
 *
 * @example
 * peerCannot('dkimpy', 'arc-seal', 'ed25519-sha256')                   // 'dkimpy seals ARC with rsa-sha256 only (...)'
 * peerCannot('opendkim', 'sign', 'ed25519-sha256', 'simple/relaxed')   // 'OpenDKIM inserts its ed25519 ...'
 * peerCannot('opendkim', 'sign', 'ed25519-sha256', 'relaxed/simple')   // undefined
 */
export function peerCannot(
  peer: DkimPeer,
  job: PeerJob,
  algorithm?: DkimAlgorithm,
  canonicalization?: Canonicalization,
): string | undefined {
  return LIMITS.find(
    (limit) =>
      limit.peer === peer &&
      limit.job === job &&
      (limit.algorithm === undefined || limit.algorithm === algorithm) &&
      (limit.header === undefined || canonicalization?.startsWith(`${limit.header}/`) === true),
  )?.why;
}

/**
 * Whether OpenDKIM reads every header field of the message as it was sent. It takes fields as
 * a milter does, the whitespace after the colon dropped, and hashes `Name: value`; so under
 * simple header canonicalization it agrees with other implementations only when every field is
 * written that way (one space after the colon, then something else than whitespace).
 *
 * @example
 * opendkimSeesFieldsAsSent(Buffer.from('Subject: hi\r\n\r\n'))   // true
 * opendkimSeesFieldsAsSent(Buffer.from('Subject:hi\r\n\r\n'))    // false
 */
export function opendkimSeesFieldsAsSent(message: Buffer): boolean {
  return parseMessage(message).headers.every((field) => /^ [^ \t\r\n]/.test(fieldValue(field)));
}

// ---------------------------------------------------------------------------------------------
// Availability

/** Python modules the dkimpy driver imports, and the Debian package of each. */
const PYTHON_MODULES: readonly [module: string, pkg: string][] = [
  ['dkim', 'python3-dkim'],
  ['nacl', 'python3-nacl'],
  ['authres', 'python3-authres'],
];

let unmetCache: Map<DkimPeer, string[]> | undefined;

/** What a peer lacks, each naming its Debian package; empty when it can run. */
function unmetFor(peer: DkimPeer): string[] {
  unmetCache ??= new Map();
  const cached = unmetCache.get(peer);
  if (cached) return cached;
  const why: string[] = [];
  if (peer === 'dkimpy') {
    const probe = spawnSync(
      DEBIAN_PYTHON,
      [
        '-I',
        '-c',
        'import importlib.util, sys; print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))',
        ...PYTHON_MODULES.map(([module]) => module),
      ],
      { encoding: 'utf8' },
    );
    if (probe.error || probe.status !== 0) {
      why.push(`python3-dkim (no ${DEBIAN_PYTHON} to run dkimpy)`);
    } else {
      const absent = new Set(probe.stdout.trim().split(/\s+/).filter(Boolean));
      for (const [module, pkg] of PYTHON_MODULES) {
        if (absent.has(module)) why.push(`${pkg} (no ${module} module for ${DEBIAN_PYTHON})`);
      }
    }
  } else if (!findProgram('opendkim')) {
    why.push('opendkim (no opendkim program)');
  }
  unmetCache.set(peer, why);
  return why;
}

/**
 * Which peers can run here, and what is missing (each entry names the Debian package).
 *
 * @example
 * peersAvailable()  // { dkimpy: true, opendkim: false, missing: ['opendkim (no opendkim program)'] }
 */
export function peersAvailable(): { dkimpy: boolean; opendkim: boolean; missing: string[] } {
  const dkimpy = unmetFor('dkimpy');
  const opendkim = unmetFor('opendkim');
  return {
    dkimpy: dkimpy.length === 0,
    opendkim: opendkim.length === 0,
    missing: [...dkimpy, ...opendkim],
  };
}

/**
 * Skips the test, loudly, when a peer it needs cannot run: a line on stderr and `t.skip('missing:
 * ...')` naming the packages. Returns true when skipped, so the test can return at once.
 *
 * @example
 * test('dkimpy signs, OpenDKIM verifies', async (t) => {
 *   if (skipUnlessPeers(t, ['dkimpy', 'opendkim'])) return;
 *   ...
 * });
 */
export function skipUnlessPeers(t: TestContext, needs: readonly DkimPeer[]): boolean {
  const missing = needs.flatMap(unmetFor);
  if (missing.length === 0) return false;
  const message = `missing: ${missing.join(', ')}`;
  console.error(`*** SKIPPED "${t.name}": ${message} — run scripts/pretest-debian.sh as root ***`);
  t.skip(message);
  return true;
}

/** What the installed peers say about themselves. */
export interface PeerReport {
  dkimpy?: { version: string; algorithms: string[] };
  opendkim?: { version: string; algorithms: string[]; canonicalizations: string[] };
}

/**
 * Asks each available peer for its version and algorithms (`opendkim -V`; dkimpy's package
 * metadata and `dkim.HASH_ALGORITHMS`), so that tests can hold {@link peerCannot} to the truth.
 *
 * @example
 * (await describePeers()).opendkim?.algorithms  // ['rsa-sha1', 'rsa-sha256', 'ed25519-sha256']
 */
export async function describePeers(): Promise<PeerReport> {
  const report: PeerReport = {};
  if (unmetFor('dkimpy').length === 0) {
    const run = await runProgram(DEBIAN_PYTHON, [
      '-I',
      '-c',
      'import dkim, importlib.metadata as m; print(m.version("dkimpy")); print(" ".join(sorted(a.decode() for a in dkim.HASH_ALGORITHMS)))',
    ]);
    const [version = '', algorithms = ''] = run.stdout.trim().split('\n');
    report.dkimpy = { version, algorithms: algorithms.split(' ').filter(Boolean) };
  }
  if (unmetFor('opendkim').length === 0) {
    const run = await runProgram(findProgram('opendkim') ?? 'opendkim', ['-V']);
    report.opendkim = parseOpendkimVersion(run.stdout + run.stderr);
  }
  return report;
}

/** `opendkim -V` lists algorithms and canonicalizations indented under their headings. */
function parseOpendkimVersion(text: string): NonNullable<PeerReport['opendkim']> {
  const version = /OpenDKIM Filter v(\S+)/.exec(text)?.[1] ?? 'unknown';
  const listUnder = (heading: string): string[] => {
    const at = text.indexOf(heading);
    if (at < 0) return [];
    const items: string[] = [];
    for (const line of text
      .slice(at + heading.length)
      .split('\n')
      .slice(1)) {
      if (!/^\s{2,}\S/.test(line) || line.trim().endsWith(':')) break;
      items.push(line.trim());
    }
    return items;
  };
  return {
    version,
    algorithms: listUnder('Supported signing algorithms:'),
    canonicalizations: listUnder('Supported canonicalization algorithms:'),
  };
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/** The outcome of a verifier: `ok` only when there was a signature and every one verified. */
export interface VerifyResult {
  ok: boolean;
  /** What the peer said, for assertion messages. */
  output: string;
}

export interface DkimpySignOptions {
  domain: string;
  selector: string;
  privateKeyPem: string;
  algorithm: DkimAlgorithm;
  canonicalization: Canonicalization;
  /** Header fields to sign (h=); dkimpy's default is RFC 6376's list, From signed twice. */
  headers?: string[];
}

export interface ArcSignOptions {
  domain: string;
  selector: string;
  privateKeyPem: string;
  /** The sealer's authserv-id, which its Authentication-Results and the AAR carry. */
  authservId: string;
  /** Default rsa-sha256, the only one dkimpy seals with. */
  algorithm?: DkimAlgorithm;
  /**
   * Keys for checking the chain the message arrives with, when the message has no
   * Authentication-Results of `authservId` yet (the sealer writes `arc=<cv>` there first).
   */
  keys?: KeyTable;
}

export interface ArcVerifyResult {
  cv: 'none' | 'pass' | 'fail';
  output: string;
}

export interface OpendkimSignOptions {
  domain: string;
  selector: string;
  privateKeyPem: string;
  canonicalization: Canonicalization;
  algorithm: DkimAlgorithm;
}

const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

/** Names and values go into peers' configuration files and JSON: they must be plain. */
function checkName(what: string, value: string): void {
  if (!NAME.test(value))
    throw new TypeError(`${what} is not a plain DNS name: ${JSON.stringify(value)}`);
}

function checkKeys(keys: KeyTable): void {
  for (const [name, txt] of Object.entries(keys)) {
    checkName('key name', name.replace(/\.$/, ''));
    if (!PRINTABLE.test(txt)) {
      throw new TypeError(`key record for ${name} holds control or non-ASCII characters`);
    }
  }
}

/** The private key the algorithm needs, or a TypeError that says why not. */
function privateKeyFor(algorithm: DkimAlgorithm, pem: string): KeyObject {
  const key = createPrivateKey(pem);
  const wanted = algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  if (key.asymmetricKeyType !== wanted) {
    throw new TypeError(`${algorithm} needs an ${wanted} key, not ${key.asymmetricKeyType}`);
  }
  return key;
}

/** Runs `job` in a fresh directory, removed afterwards unless MAILGATE_KEEP_DKIM_PEERS=1. */
async function inTempDir<T>(job: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-dkim-peer-'));
  try {
    return await job(dir);
  } finally {
    if (process.env['MAILGATE_KEEP_DKIM_PEERS'] === '1')
      console.error(`dkim peer files kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

function transcript(run: ProgramRun): string {
  const status = run.timedOut ? 'timed out' : `exit ${run.code}`;
  return `[${status}]\n${run.stdout}${run.stderr ? `\n[stderr]\n${run.stderr}` : ''}`;
}

function assertAvailable(peer: DkimPeer): void {
  const missing = unmetFor(peer);
  if (missing.length > 0) throw new Error(`${peer} cannot run here: missing ${missing.join(', ')}`);
}

function assertCan(
  peer: DkimPeer,
  job: PeerJob,
  algorithm?: DkimAlgorithm,
  canonicalization?: Canonicalization,
): void {
  const why = peerCannot(peer, job, algorithm, canonicalization);
  if (why) throw new Error(why);
}

// ---------------------------------------------------------------------------------------------
// dkimpy

/**
 * The driver dkimpy runs under. One operation per run; the request (keys included) is a JSON
 * file, the message a file of bytes, and the result goes to a file: the message for signing,
 * JSON for verifying. Its stdout/stderr are dkimpy's log, for diagnostics only.
 */
const DKIMPY_DRIVER = String.raw`
import json
import logging
import sys
import traceback

import dkim

op, request_path, message_path, out_path = sys.argv[1:5]
with open(request_path, encoding="utf-8") as f:
    request = json.load(f)
with open(message_path, "rb") as f:
    message = f.read()

logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="dkimpy %(levelname)s: %(message)s")
logger = logging.getLogger("dkimpy")

keys = {name.lower().rstrip("."): txt.encode("ascii") for name, txt in request.get("keys", {}).items()}
asked = []


def dnsfunc(name, timeout=5):
    # dkimpy asks with a trailing dot, as bytes; the key table is all it may see.
    wanted = name.decode("ascii", "replace").lower().rstrip(".")
    asked.append(wanted)
    return keys.get(wanted)


def text(value):
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def b(value):
    return value.encode("ascii")


def write(data):
    with open(out_path, "wb") as f:
        f.write(data)


def sign():
    header, body = request["canonicalization"].split("/")
    headers = request.get("headers")
    signature = dkim.sign(
        message,
        b(request["selector"]),
        b(request["domain"]),
        b(request["private_key"]),
        canonicalize=(b(header), b(body)),
        signature_algorithm=b(request["algorithm"]),
        include_headers=[b(h) for h in headers] if headers else None,
        logger=logger,
        linesep=b"\r\n",
    )
    write(signature + message)


def verify():
    results = []
    try:
        fields = dkim.DKIM(message, logger=logger).headers
        count = sum(1 for name, _ in fields if name.lower() == b"dkim-signature")
        error = None
    except Exception as e:
        count, error = 0, "%s: %s" % (type(e).__name__, e)
    for index in range(count):
        verifier = dkim.DKIM(message, logger=logger, minkey=1024)
        try:
            ok, why = bool(verifier.verify(idx=index, dnsfunc=dnsfunc)), None
        except Exception as e:
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        results.append({
            "index": index,
            "ok": ok,
            "d": text(getattr(verifier, "domain", None)),
            "s": text(getattr(verifier, "selector", None)),
            "error": why,
        })
    write(json.dumps({"signatures": results, "error": error, "asked": asked}).encode())


def arc_chain_status(msg):
    try:
        instances, _ = dkim.ARC(msg, logger=logger).sorted_arc_headers()
    except Exception:
        return "fail"
    if instances == 0:
        return "none"
    cv, _, _ = dkim.arc_verify(msg, logger=logger, dnsfunc=dnsfunc)
    return text(cv) if cv else "fail"


def has_results_of(msg, authserv_id):
    for name, value in dkim.DKIM(msg).headers:
        if name.lower() == b"authentication-results":
            if value.strip().split(b";", 1)[0].strip().lower() == authserv_id.lower():
                return True
    return False


def arc_sign():
    # A sealer records what it found (arc=<cv>) in its own Authentication-Results before it
    # seals: dkimpy takes the new seal's cv= from there.
    srv = b(request["authserv_id"])
    msg = message
    if not has_results_of(msg, srv):
        cv = arc_chain_status(msg)
        msg = b"Authentication-Results: " + srv + b"; arc=" + b(cv) + b"\r\n" + msg
    arc_set = dkim.arc_sign(
        msg,
        b(request["selector"]),
        b(request["domain"]),
        b(request["private_key"]),
        srv,
        logger=logger,
        linesep=b"\r\n",
    )
    if not arc_set:
        raise RuntimeError("dkimpy added no ARC set (no Authentication-Results of the sealer, or a dead chain)")
    write(b"".join(arc_set) + msg)


def arc_verify():
    try:
        cv, results, reason = dkim.arc_verify(message, logger=logger, dnsfunc=dnsfunc)
        # None is dkimpy's "a seal reported failure, the chain is terminated".
        cv = text(cv) if cv else "fail"
    except Exception as e:
        cv, results, reason = "fail", [], "%s: %s" % (type(e).__name__, e)
    summary = [{k: text(v) for k, v in r.items()} for r in results]
    write(json.dumps({"cv": cv, "reason": text(reason), "instances": summary, "asked": asked}).encode())


try:
    {"sign": sign, "verify": verify, "arc-sign": arc_sign, "arc-verify": arc_verify}[op]()
except Exception:
    traceback.print_exc()
    sys.exit(2)
`;

type DkimpyOp = 'sign' | 'verify' | 'arc-sign' | 'arc-verify';

/** Runs the driver; resolves to the result file's bytes and the run's transcript. */
async function runDkimpy(
  op: DkimpyOp,
  message: Buffer,
  request: Record<string, unknown>,
): Promise<{ result: Buffer; log: string }> {
  assertAvailable('dkimpy');
  return inTempDir(async (dir) => {
    const paths = {
      driver: join(dir, 'dkimpy-driver.py'),
      request: join(dir, 'request.json'),
      message: join(dir, 'message.eml'),
      out: join(dir, 'out'),
    };
    await writeFile(paths.driver, DKIMPY_DRIVER);
    await writeFile(paths.request, JSON.stringify(request), { mode: 0o600 });
    await writeFile(paths.message, withCrlf(message));
    const run = await runProgram(
      DEBIAN_PYTHON,
      ['-I', paths.driver, op, paths.request, paths.message, paths.out],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    const log = transcript(run);
    if (run.code !== 0) throw new Error(`dkimpy ${op} failed\n${log}`);
    return { result: await readFile(paths.out), log };
  });
}

/** dkimpy wants RSA keys as PKCS#1 PEM and ed25519 keys as the base64 32-byte seed. */
function dkimpyPrivateKey(algorithm: DkimAlgorithm, pem: string): string {
  const key = privateKeyFor(algorithm, pem);
  if (algorithm === 'ed25519-sha256') {
    const { d } = key.export({ format: 'jwk' });
    return Buffer.from(d ?? '', 'base64url').toString('base64');
  }
  return key.export({ type: 'pkcs1', format: 'pem' }).toString();
}

/**
 * Signs with dkimpy (dkim.sign): the message with dkimpy's DKIM-Signature on top.
 *
 * @example
 * const signed = await dkimpySign(message, {
 *   domain: 'example.com', selector: 'sel', privateKeyPem: keys.ed25519.privateKeyPem,
 *   algorithm: 'ed25519-sha256', canonicalization: 'simple/relaxed', headers: ['from', 'subject'],
 * });
 */
export async function dkimpySign(message: Buffer, opts: DkimpySignOptions): Promise<Buffer> {
  checkName('domain', opts.domain);
  checkName('selector', opts.selector);
  assertCan('dkimpy', 'sign', opts.algorithm, opts.canonicalization);
  const { result } = await runDkimpy('sign', message, {
    domain: opts.domain,
    selector: opts.selector,
    private_key: dkimpyPrivateKey(opts.algorithm, opts.privateKeyPem),
    algorithm: opts.algorithm,
    canonicalization: opts.canonicalization,
    headers: opts.headers ?? null,
  });
  return result;
}

/**
 * Verifies every DKIM-Signature with dkimpy (dkim.DKIM.verify, one index at a time), keys from
 * the table only. `ok` when there is at least one signature and all verify.
 *
 * @example
 * const { ok, output } = await dkimpyVerify(signed, { 'sel._domainkey.example.com': keys.rsa.txt });
 */
export async function dkimpyVerify(message: Buffer, keys: KeyTable): Promise<VerifyResult> {
  checkKeys(keys);
  const { result, log } = await runDkimpy('verify', message, { keys });
  const summary = JSON.parse(result.toString('utf8')) as {
    signatures: { ok: boolean }[];
    error: string | null;
  };
  const ok = summary.signatures.length > 0 && summary.signatures.every((s) => s.ok);
  return { ok, output: `${result.toString('utf8')}\n${log}` };
}

/**
 * Seals the message with dkimpy (dkim.arc_sign), as a receiving ADMD would: when the message has
 * no Authentication-Results of `authservId`, one is written first with `arc=` the state of the
 * chain it came with (none, or what dkimpy makes of it with `keys`). Resolves to the message
 * with that field and the new ARC set (ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results) on top.
 *
 * @example
 * const hop1 = await dkimpyArcSign(message, {
 *   domain: 'relay.example', selector: 'arc', privateKeyPem: keys.rsa.privateKeyPem,
 *   authservId: 'mx.relay.example',
 * });
 * const hop2 = await dkimpyArcSign(hop1, { ...second, keys: table });  // i=2, cv=pass
 */
export async function dkimpyArcSign(message: Buffer, opts: ArcSignOptions): Promise<Buffer> {
  const algorithm = opts.algorithm ?? 'rsa-sha256';
  checkName('domain', opts.domain);
  checkName('selector', opts.selector);
  checkName('authserv-id', opts.authservId);
  assertCan('dkimpy', 'arc-seal', algorithm);
  const keys = opts.keys ?? {};
  checkKeys(keys);
  const { result } = await runDkimpy('arc-sign', message, {
    domain: opts.domain,
    selector: opts.selector,
    private_key: dkimpyPrivateKey(algorithm, opts.privateKeyPem),
    authserv_id: opts.authservId,
    keys,
  });
  return result;
}

/**
 * Verifies the ARC chain with dkimpy (dkim.arc_verify), keys from the table only: `none` with no
 * ARC set, `pass`, or `fail` (including a chain a seal already declared failed).
 *
 * @example
 * const { cv } = await dkimpyArcVerify(hop2, table);  // 'pass'
 */
export async function dkimpyArcVerify(message: Buffer, keys: KeyTable): Promise<ArcVerifyResult> {
  checkKeys(keys);
  const { result, log } = await runDkimpy('arc-verify', message, { keys });
  const summary = JSON.parse(result.toString('utf8')) as { cv: string };
  const cv = summary.cv === 'none' || summary.cv === 'pass' ? summary.cv : 'fail';
  return { cv, output: `${result.toString('utf8')}\n${log}` };
}

// ---------------------------------------------------------------------------------------------
// OpenDKIM

const OPENDKIM_AUTHSERV_ID = 'opendkim.peer.test';

/** Settings every run shares: no syslog, and no DNS (keys from TestPublicKeys only). */
function opendkimConf(dir: string, lines: readonly string[]): string {
  return [
    'Syslog no',
    `AuthservID ${OPENDKIM_AUTHSERV_ID}`,
    'AlwaysAddARHeader yes',
    `TestPublicKeys ${join(dir, 'public-keys')}`,
    ...lines,
    '',
  ].join('\n');
}

/** Runs `opendkim -x conf -vv -t message`; `-vv` prints each field it would add on stdout. */
async function runOpendkim(
  dir: string,
  message: Buffer,
  conf: string,
  keys: KeyTable,
): Promise<ProgramRun> {
  const paths = {
    conf: join(dir, 'opendkim.conf'),
    keys: join(dir, 'public-keys'),
    message: join(dir, 'message.eml'),
  };
  await writeFile(paths.conf, conf);
  const table = Object.entries(keys).map(([name, txt]) => `${name.replace(/\.$/, '')} ${txt}\n`);
  await writeFile(paths.keys, table.join(''));
  await writeFile(paths.message, withCrlf(message));
  return runProgram(
    findProgram('opendkim') ?? 'opendkim',
    ['-x', paths.conf, '-vv', '-t', paths.message],
    {
      timeoutMs: RUN_TIMEOUT_MS,
    },
  );
}

/** The fields OpenDKIM's test mode says it would insert: `### INSHEADER: idx=N hname='…' hvalue='…'`. */
function insertedFields(stdout: string): { name: string; value: string }[] {
  const fields: { name: string; value: string }[] = [];
  for (const m of stdout.matchAll(/### INSHEADER: idx=\d+ hname='([^']*)' hvalue='([^']*)'/g)) {
    fields.push({ name: m[1] ?? '', value: m[2] ?? '' });
  }
  return fields;
}

/**
 * Signs with OpenDKIM's filter in test mode: a KeyTable and a catch-all SigningTable (so the
 * From domain does not matter), the canonicalization and algorithm asked. Resolves to the
 * message with OpenDKIM's DKIM-Signature on top, written as an MTA inserts it (`Name: value`).
 * OpenDKIM signs only messages with the header fields RFC 5322 requires (From, Date); with
 * simple header canonicalization it hashes the fields as {@link opendkimSeesFieldsAsSent}
 * describes. Where {@link peerCannot} says OpenDKIM's signature verifies nowhere (ed25519 with
 * simple header canonicalization) it still signs, so that the limit itself stays tested.
 *
 * @example
 * const signed = await opendkimSign(message, {
 *   domain: 'example.com', selector: 'sel', privateKeyPem: keys.rsa.privateKeyPem,
 *   canonicalization: 'simple/simple', algorithm: 'rsa-sha256',
 * });
 */
export async function opendkimSign(message: Buffer, opts: OpendkimSignOptions): Promise<Buffer> {
  checkName('domain', opts.domain);
  checkName('selector', opts.selector);
  assertAvailable('opendkim');
  const pem = privateKeyFor(opts.algorithm, opts.privateKeyPem)
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return inTempDir(async (dir) => {
    const keyFile = join(dir, 'private.pem');
    await writeFile(keyFile, pem, { mode: 0o600 });
    await writeFile(join(dir, 'key-table'), `peer ${opts.domain}:${opts.selector}:${keyFile}\n`);
    await writeFile(join(dir, 'signing-table'), '* peer\n');
    const conf = opendkimConf(dir, [
      'Mode s',
      `KeyTable file:${join(dir, 'key-table')}`,
      `SigningTable refile:${join(dir, 'signing-table')}`,
      `Canonicalization ${opts.canonicalization}`,
      `SignatureAlgorithm ${opts.algorithm}`,
      // The temp directory sits under the world-writable /tmp, which OpenDKIM refuses by default.
      'RequireSafeKeys no',
    ]);
    const run = await runOpendkim(dir, message, conf, {});
    const signature = insertedFields(run.stdout).find((f) => f.name === 'DKIM-Signature');
    if (run.code !== 0 || !signature) {
      throw new Error(`opendkim did not sign\n${transcript(run)}`);
    }
    const field = fieldFromText(`DKIM-Signature: ${signature.value}`);
    return Buffer.concat([field.raw, Buffer.from('\r\n'), withCrlf(message)]);
  });
}

/**
 * Verifies with OpenDKIM's filter in test mode, keys from the table only (TestPublicKeys). `ok`
 * when its Authentication-Results has at least one dkim= result and every one is pass. Under
 * simple header canonicalization its verdict is only comparable when
 * {@link opendkimSeesFieldsAsSent} holds for the message.
 *
 * @example
 * const { ok, output } = await opendkimVerify(signed, { 'sel._domainkey.example.com': keys.rsa.txt });
 */
export async function opendkimVerify(message: Buffer, keys: KeyTable): Promise<VerifyResult> {
  checkKeys(keys);
  assertAvailable('opendkim');
  return inTempDir(async (dir) => {
    const run = await runOpendkim(dir, message, opendkimConf(dir, ['Mode v']), keys);
    const results = insertedFields(run.stdout)
      .filter((f) => f.name === 'Authentication-Results')
      .flatMap((f) => [...f.value.matchAll(/(?:^|[;\s])dkim=([a-z]+)/g)].map((m) => m[1]));
    const ok = run.code === 0 && results.length > 0 && results.every((r) => r === 'pass');
    return { ok, output: transcript(run) };
  });
}
