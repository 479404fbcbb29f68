/**
 * Helpers for tests that start the daemon: a logger whose JSON lines the test can read, and the
 * port a door was bound to.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/index.js';
import type { Daemon } from '../../src/serve/index.js';

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
export function doorPort(daemon: Daemon, door: 'policyd' | 'milter'): number {
  const address = daemon.addresses.find((a) => a.door === door);
  assert.ok(address && address.kind === 'inet', `the ${door} door listens on TCP`);
  return address.port;
}
