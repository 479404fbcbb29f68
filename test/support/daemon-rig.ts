/**
 * Helpers for tests that start the daemon: its configuration file, a logger whose JSON lines the
 * test can read, the port a door was bound to, and a milter daemon ready to play sessions.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/index.js';
import { Daemon } from '../../src/serve/index.js';
import { type MilterSession, playMilterSession } from './milter-play.js';

/** A pino logger writing into `lines`, one parsed object per JSON line. */
export function captureLogger(level: 'debug' | 'info' | 'warn' = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

/**
 * The TCP port a door of a running daemon listens on.
 *
 * @example
 * const client = await policyClient(doorPort(daemon, 'policyd'));
 */
export function doorPort(daemon: Daemon, door: 'policyd' | 'milter' | 'http'): number {
  const address = daemon.addresses.find((a) => a.door === door);
  assert.ok(address && address.kind === 'inet', `the ${door} door listens on TCP`);
  return address.port;
}

export interface DaemonConfigOptions {
  /** The fixture DNS server's port: `[dns] servers = ["127.0.0.1:PORT"]`. */
  dnsPort: number;
  /** Default mx.mailgate.test. */
  hostname?: string;
  /** The lines of a `[log]` table, when the test wants one. */
  log?: string;
  /** More lines of the `[dns]` table (timeout, attempts). */
  dns?: string;
  /** Everything after `[store]`: the doors' and the stages' tables, as TOML. */
  rest: string;
}

/**
 * Writes `NAME.toml` in `dir` for `Daemon.start` and returns its path: the hostname, `[log]` when
 * given, the fixture DNS server, a SQLite store `NAME.db` in `dir`, then `rest`.
 *
 * @example
 * const configPath = await writeDaemonConfig(dir, 'main', {
 *   dnsPort: dns.port,
 *   rest: '[policyd]\nlisten = ["inet:0@127.0.0.1"]\n[milter]\nenabled = false\n',
 * });
 * const daemon = await Daemon.start({ configPath, logger });
 */
export async function writeDaemonConfig(
  dir: string,
  name: string,
  { dnsPort, hostname = 'mx.mailgate.test', log, dns, rest }: DaemonConfigOptions,
): Promise<string> {
  const path = join(dir, `${name}.toml`);
  await writeFile(
    path,
    [
      `hostname = "${hostname}"`,
      ...(log === undefined ? [] : ['[log]', log]),
      '[dns]',
      `servers = ["127.0.0.1:${dnsPort}"]`,
      ...(dns === undefined ? [] : [dns]),
      '[store]',
      `url = "sqlite:${join(dir, `${name}.db`)}"`,
      rest,
    ].join('\n'),
  );
  return path;
}

/** A daemon started for a milter test, with what the test plays against it. */
export interface MilterDaemon {
  daemon: Daemon;
  /** The log lines, parsed. */
  lines: Array<Record<string, unknown>>;
  /** The milter door's listen spec, `inet:PORT@127.0.0.1`. */
  spec: string;
  /** Plays one SMTP session through the milter door. */
  play(session: MilterSession): ReturnType<typeof playMilterSession>;
}

/**
 * Starts the daemon of a configuration file whose milter listens on TCP, logging into `lines`.
 *
 * @example
 * const rig = await startMilterDaemon(await writeDaemonConfig(dir, 'x', options), 'info');
 * const { answers } = await rig.play({ ip: '192.0.2.10', helo: 'mx.example.com', sender: 'jo@example.com' });
 */
export async function startMilterDaemon(
  configPath: string,
  level: 'debug' | 'info' | 'warn' = 'debug',
): Promise<MilterDaemon> {
  const { logger, lines } = captureLogger(level);
  const daemon = await Daemon.start({ configPath, logger });
  const spec = `inet:${doorPort(daemon, 'milter')}@127.0.0.1`;
  return { daemon, lines, spec, play: (session) => playMilterSession(spec, session) };
}
