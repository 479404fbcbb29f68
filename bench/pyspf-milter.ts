/**
 * The peer of the milter SPF-policy benchmark: Debian's pyspf-milter (package pyspf-milter, from
 * spf-engine: pyspf for SPF, pymilter and libmilter for the protocol, pydns for DNS): finding
 * it, installing it as root when missing, its configuration, and starting it.
 *
 * Its configuration is the shipped /etc/pyspf-milter/pyspf-milter.conf with what the benchmark
 * needs changed (socket, pid file) and the policy made the same as mailgate's; see peerConfig.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChildServer } from './child.js';
import { installDebianPackage } from './common.js';

export const PEER_NAME = 'pyspf-milter';
const PROGRAM = '/usr/bin/pyspf-milter';
/** Its system user, made by the package; it drops to it after start-up when started as root. */
const PEER_USER = 'pyspf-milter';

/** The HELO_reject values spf-engine knows (spf_engine/__init__.py, _get_resultcodes). */
export const HELO_REJECT_VALUES = [
  'No_Check',
  'Null',
  'Fail',
  'Softfail',
  'SPF_Not_Pass',
  'False',
] as const;
export type HeloReject = (typeof HELO_REJECT_VALUES)[number];

/** Where it listens: a unix socket (its built-in default) or TCP on 127.0.0.1 (Debian's file). */
export const PEER_SOCKETS = ['unix', 'inet'] as const;
export type PeerSocket = (typeof PEER_SOCKETS)[number];

export interface PeerProgram {
  path: string;
  /** spf-engine, pyspf and pymilter versions, for the report. */
  versions: string;
}

function findPeer(): PeerProgram | undefined {
  if (!existsSync(PROGRAM)) return undefined;
  const run = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      'import spf_engine, spf, Milter; ' +
        'print("spf-engine %s, pyspf %s, pymilter %s" % ' +
        '(spf_engine.__version__, spf.__version__.split()[0], Milter.__version__))',
    ],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) return undefined;
  return { path: PROGRAM, versions: run.stdout.trim() };
}

/**
 * The installed pyspf-milter, after installing it (`apt-get install -y pyspf-milter`) when this
 * is root and it is missing; or why it is not there.
 *
 * @example
 * const peer = peerOrWhyNot();
 * if ('missing' in peer) console.log(`PEER MISSING: ${peer.missing}`);
 */
export function peerOrWhyNot(): PeerProgram | { missing: string } {
  const found = findPeer();
  if (found) return found;
  // The package would start a system pyspf-milter on port 8893; noStart stops that.
  const why = installDebianPackage('pyspf-milter', 'pyspf-milter (Debian package pyspf-milter)', {
    noStart: true,
  });
  if (why) return { missing: why };
  return findPeer() ?? { missing: 'pyspf-milter installed, but spf_engine does not import' };
}

/** What the configuration says, for the printed workload description. */
export function describePeerConfig(heloReject: HeloReject, socket: PeerSocket): string {
  return (
    (socket === 'unix'
      ? 'Socket = local: (a unix socket, its built-in default; over TCP its end-of-message answer waits ~40 ms, Nagle meeting a delayed ACK), '
      : 'Socket = inet: on 127.0.0.1 (as Debian ships it; its end-of-message answer waits ~40 ms for a delayed ACK), ') +
    "Mail_From_reject = Fail (fail rejected at MAIL FROM; softfail, so softfail-ok's, accepted with a header), " +
    `HELO_reject = ${heloReject}, TempError_Defer = True, PermError_reject = False, ` +
    'Authentication-Results at end of message (the milter always adds it), debugLevel = 0 (no syslog per message)'
  );
}

/**
 * The configuration file, in the shipped file's order. What differs from the shipped file, and
 * why:
 *
 * - `Socket`: a unix socket in the benchmark's directory (`local:`, the program's built-in
 *   default and the commented-out first choice of the shipped file), unless told `inet`
 *   (Debian's file: `inet:8893@localhost`). Over TCP each message's end-of-message answer comes
 *   about 40 ms late (measured here: about 42 ms for end of message over TCP, under 1 ms on a
 *   unix socket), the mark of Nagle's algorithm meeting the MTA's delayed ACK: libmilter sends
 *   the header it adds and the answer as two packets, and the second waits for the ACK of the
 *   first. That is a cost of its TCP transport, not of its SPF work; mailgate listens on TCP, as
 *   its configuration says, so the unix socket (no wait, and cheaper than TCP) favors the peer.
 * - `PidFile`: the benchmark's directory.
 * - `debugLevel = 0`: the shipped 1 writes a syslog line per connection and per reject; mailgate
 *   runs at `[log] level = "warn"`, which writes none per message either.
 * - `HELO_reject = No_Check` (unless told otherwise): the policy decides on MAIL FROM (mailgate
 *   too: its HELO identity only stands in for the null sender; it reports a HELO result in its
 *   Authentication-Results, from its cache). pyspf-milter checks its "HELO" identity before MAIL
 *   FROM, a second SPF evaluation per message, and takes for the HELO name the client's host
 *   name from SMFIC_CONNECT (its connect callback stores it as helo_name; it has no helo
 *   callback), so that check would not check the HELO anyway. `Null` (HELO only for the null
 *   sender) still makes the lookups for every message and ignores the answer. The workload has
 *   no null senders and no HELO that fails, so No_Check decides every message as the shipped
 *   `Fail` would, with one evaluation instead of two (`--peer-helo-reject=Fail` measures the
 *   shipped value).
 * - `TempError_Defer = True`: mailgate tempfails on DNS trouble (a temperror is never a silent
 *   accept). The fixture DNS server answers everything, so it changes no decision here.
 * - `Authserv_Id`: the receiving host's name, as mailgate's authserv-id is its hostname.
 *
 * Unchanged: `Mail_From_reject = Fail` (fail refused at MAIL FROM; every softfail accepted with
 * a header, which is what `accept_softfail = ["softfail-ok…"]` asks for on this workload, its only
 * softfails being from that domain: spf-engine has no list of domains whose softfail is
 * accepted, only the opposite, Reject_Not_Pass_Domains), `PermError_reject = False`, `TestOnly =
 * 1` (act on results), `skip_addresses`, `InternalHosts = 127.0.0.1` (the clients are not
 * internal), `UserID` (it drops to its own user, as shipped). No whitelist options: each costs
 * more lookups. Its header type is Authentication-Results whatever the file says (milter_spf.py).
 */
export function peerConfig(options: {
  /** libmilter's spec: `local:/path` or `inet:PORT@HOST`. */
  socket: string;
  pidFile: string;
  heloReject: HeloReject;
  authservId: string;
}): string {
  return [
    '# Written by bench/milter-policy.ts from the shipped /etc/pyspf-milter/pyspf-milter.conf.',
    'debugLevel = 0',
    'TestOnly = 1',
    '',
    `HELO_reject = ${options.heloReject}`,
    'Mail_From_reject = Fail',
    '',
    'PermError_reject = False',
    'TempError_Defer = True',
    '',
    'skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1',
    `Authserv_Id = ${options.authservId}`,
    '',
    '# Milter specific options',
    `Socket = ${options.socket}`,
    `PidFile = ${options.pidFile}`,
    `UserID = ${PEER_USER}`,
    'InternalHosts = 127.0.0.1',
    '',
  ].join('\n');
}

function accountIds(user: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Write its configuration into `dir` and start it, listening on a unix socket in `dir` or on
 * 127.0.0.1:`port`; ready once that accepts connections. It must run where /etc/resolv.conf
 * names the fixture DNS server.
 *
 * @example
 * const peer = await startPeer({ program, dir, socket: 'unix', port: 0, heloReject: 'No_Check', authservId });
 * peer.listen  // 'unix:/tmp/…/peer/pyspf-milter.sock'
 */
export async function startPeer(options: {
  program: PeerProgram;
  dir: string;
  socket: PeerSocket;
  port: number;
  heloReject: HeloReject;
  authservId: string;
}): Promise<ChildServer<typeof PEER_NAME>> {
  const config = join(options.dir, 'pyspf-milter.conf');
  // It refuses to start when its pid file exists, and writes it as root before dropping to its
  // user, so the benchmark's directory will do.
  const pidFile = join(options.dir, 'pyspf-milter.pid');
  rmSync(pidFile, { force: true });
  let socket: string;
  let ready: { port: number } | { path: string };
  if (options.socket === 'unix') {
    // libmilter makes the socket after the drop to its user: a directory that user may write.
    const socketDir = join(options.dir, 'peer');
    mkdirSync(socketDir, { recursive: true, mode: 0o755 });
    const ids = process.getuid?.() === 0 ? accountIds(PEER_USER) : undefined;
    if (ids) chownSync(socketDir, ids.uid, ids.gid);
    const path = join(socketDir, 'pyspf-milter.sock');
    socket = `local:${path}`;
    ready = { path };
  } else {
    socket = `inet:${options.port}@127.0.0.1`;
    ready = { port: options.port };
  }
  writeFileSync(
    config,
    peerConfig({ socket, pidFile, heloReject: options.heloReject, authservId: options.authservId }),
    { mode: 0o644 },
  );
  return ChildServer.start({
    name: PEER_NAME,
    command: options.program.path,
    args: [config],
    cwd: options.dir,
    ready,
    readyTimeoutMs: 20_000,
  });
}
