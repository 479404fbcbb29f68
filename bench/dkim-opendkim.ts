/**
 * The DKIM milter benchmark's peer: Debian's OpenDKIM filter (/usr/sbin/opendkim) run as a
 * milter in a child process, verifying only. Its configuration file, written to the run's
 * directory:
 *
 *   Mode v                      verify; the shipped default `sv` would also sign, and a
 *                               verifier has nothing to sign with
 *   Socket inet:PORT@127.0.0.1  TCP on loopback, as mailgate's milter listens; with
 *                               --socket=unix (mailgate too) local:DIR/opendkim.sock. Over
 *                               TCP libmilter sends the header it adds and its answer to end
 *                               of message as two packets, and the second waits for the MTA's
 *                               delayed ACK, about 40 ms here (bench/pyspf-milter.ts found the
 *                               same of pyspf-milter); a unix socket has no such wait
 *   Background no               in the foreground, so that it is our child and stops with us
 *   Syslog no                   no log line per message (mailgate runs at `[log] level = warn`)
 *   AuthservID <receiver>       the authserv-id mailgate writes too
 *   TestPublicKeys FILE         the public keys from a file of `name TXT-value` lines instead
 *                               of DNS: OpenDKIM's documented option for testing, the way
 *                               test/support/dkim-peers.ts runs it; its warm key cache here
 *
 * Everything else is as the program defaults it.
 *
 * @example
 * const peer = opendkimOrWhyNot();
 * if (!('missing' in peer)) servers.push(await startOpendkim(peer, dir, keyRecords, RECEIVER));
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChildServer } from './child.js';
import { freePort, installDebianPackage } from './common.js';

const OPENDKIM = '/usr/sbin/opendkim';

export interface OpendkimProgram {
  path: string;
  /** `OpenDKIM Filter v2.11.0`, as `opendkim -V` says. */
  version: string;
}

function findOpendkim(): OpendkimProgram | undefined {
  if (!existsSync(OPENDKIM)) return undefined;
  const run = spawnSync(OPENDKIM, ['-V'], { encoding: 'utf8' });
  const version = /OpenDKIM Filter v\S+/.exec(`${run.stdout}${run.stderr}`)?.[0];
  return version ? { path: OPENDKIM, version } : undefined;
}

/**
 * The installed program, installed first (Debian package opendkim, without starting its system
 * service) when this is root and it is missing; or why there is none.
 *
 * @example
 * const peer = opendkimOrWhyNot();
 * if ('missing' in peer) console.log(`PEER MISSING: ${peer.missing}`);
 */
export function opendkimOrWhyNot(): OpendkimProgram | { missing: string } {
  const found = findOpendkim();
  if (found) return found;
  const why = installDebianPackage('opendkim', 'opendkim (Debian package opendkim)', {
    noStart: true,
  });
  if (why) return { missing: why };
  return findOpendkim() ?? { missing: `opendkim installed, but ${OPENDKIM} -V says no version` };
}

/** Where a milter of the benchmark listens: TCP on loopback, or a unix socket. */
export const MILTER_SOCKETS = ['inet', 'unix'] as const;
export type MilterSocket = (typeof MILTER_SOCKETS)[number];

/**
 * Writes the key file and the configuration to `dir`, starts the filter and waits until it
 * accepts connections.
 */
export async function startOpendkim(
  program: OpendkimProgram,
  dir: string,
  keyRecords: Record<string, string>,
  authservId: string,
  socket: MilterSocket = 'inet',
): Promise<ChildServer<'opendkim'>> {
  const port = socket === 'inet' ? await freePort() : 0;
  const path = join(dir, 'opendkim.sock');
  const keys = join(dir, 'opendkim-public-keys');
  writeFileSync(
    keys,
    Object.entries(keyRecords)
      .map(([name, txt]) => `${name} ${txt}\n`)
      .join(''),
  );
  const conf = join(dir, 'opendkim.conf');
  writeFileSync(
    conf,
    [
      '# Written by bench/dkim.ts (see bench/dkim-opendkim.ts for why each line).',
      'Mode v',
      socket === 'inet' ? `Socket inet:${port}@127.0.0.1` : `Socket local:${path}`,
      'Background no',
      'Syslog no',
      `AuthservID ${authservId}`,
      `TestPublicKeys ${keys}`,
      '',
    ].join('\n'),
  );
  return ChildServer.start({
    name: 'opendkim',
    command: program.path,
    args: ['-x', conf, '-f'],
    ready: socket === 'inet' ? { port } : { path },
    readyTimeoutMs: 20_000,
  });
}
