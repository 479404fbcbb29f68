/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp directory, a postmaster on loopback
 * at a random port (and a Unix socket in the same directory), trust authentication for the
 * `mailgate` superuser, durability off. One cluster serves a whole test file; each test (or file)
 * takes a database of its own with `createDatabase`.
 *
 * initdb and postgres refuse to run as root, so as root the directory is handed to `nobody` and
 * both run through `setpriv`. When the server programs are missing, `postgresAvailable()` says so
 * and `skipUnlessPostgres` skips loudly (scripts/pretest-debian.sh installs them as root).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  findProgram,
  missingRequirements,
  postgresBinDir,
  skipUnlessAvailable,
} from './programs.js';

/** The superuser initdb creates; it logs in without a password (trust). */
export const POSTGRES_USER = 'mailgate';

const NOBODY = 65534;
const START_TRIES = 5;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

/** A running throwaway cluster. */
export interface TestPostgres {
  port: number;
  /** The cluster's directory (data in `data/`, the Unix socket beside it). */
  dir: string;
  /** A URL for a database on this cluster (which need not exist yet). */
  url(database: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs one SQL statement as the superuser in a database. */
  sql(database: string, text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Fast shutdown, wait for the postmaster to exit, remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** Fast shutdown, keeping the data: the server is away until `resume`. */
  pause(): Promise<void>;
  /** Starts the paused server again on the same port, and waits until it answers. */
  resume(): Promise<void>;
}

/**
 * Why the cluster cannot be started here (e.g. `postgresql (no initdb ...)`), or undefined.
 *
 * @example
 * const missing = postgresAvailable();
 * if (missing) console.error(`skipping: ${missing}`);
 */
export function postgresAvailable(): string | undefined {
  return missingRequirements(['postgresql'])[0];
}

/**
 * Skips the test loudly when PostgreSQL is missing; returns true when skipped.
 *
 * @example
 * test('shared greylist', async (t) => {
 *   if (skipUnlessPostgres(t)) return;
 * });
 */
export function skipUnlessPostgres(t: TestContext): boolean {
  return skipUnlessAvailable(t, ['postgresql']);
}

/**
 * A port free right now on 127.0.0.1 (the kernel's choice); someone may take it before us, so
 * whoever binds it retries on a collision. Also a port where nothing listens, for refusal tests.
 *
 * @example
 * const port = await freePort();
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
  return address.port;
}

const asRoot = () => process.getuid?.() === 0;

/** The command line for a server program, run as nobody when we are root. */
function command(bin: string, program: string, args: string[]): [string, string[]] {
  const path = join(bin, program);
  if (!asRoot()) return [path, args];
  const setpriv = findProgram('setpriv') ?? 'setpriv';
  return [
    setpriv,
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', path, ...args],
  ];
}

/** Tries to connect until the server answers, the postmaster exits, or the deadline passes. */
async function waitReady(url: string, postmaster: ChildProcess, log: () => string) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    if (postmaster.exitCode !== null || postmaster.signalCode !== null) {
      throw new Error(`postgres exited before accepting connections:\n${log()}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      last = error;
      await client.end().catch(() => {});
      await sleep(50);
    }
  }
  throw new Error(
    `postgres did not accept connections in ${READY_TIMEOUT_MS} ms (${last}):\n${log()}`,
  );
}

/**
 * Runs a program in `cwd`: run as nobody from a directory nobody may not enter (the repository,
 * owned by root), initdb and postgres complain and may fail.
 */
function runIn(
  cwd: string,
  program: string,
  args: string[],
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output += chunk.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a throwaway cluster. Throws when the programs are missing (check `postgresAvailable()`
 * or `skipUnlessPostgres` first) or the server does not come up; the error includes its log.
 * `MAILGATE_KEEP_POSTGRES=1` keeps the directory after `stop()`.
 *
 * @example
 * let postgres: TestPostgres;
 * before(async () => { postgres = await startPostgres(); });
 * after(() => postgres.stop());
 * test('...', async () => {
 *   const url = await postgres.createDatabase('greylist_test');
 *   const store = await openStore(url);
 * });
 */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const missing = postgresAvailable();
  if (!bin || missing) throw new Error(`cannot start PostgreSQL: missing ${missing}`);

  const dir = mkdtempSync(join(tmpdir(), 'mailgate-pg-'));
  const data = join(dir, 'data');
  // initdb insists the data directory's parent be reachable and its own, so all of it is nobody's.
  if (asRoot()) chownSync(dir, NOBODY, NOBODY);
  const remove = () => {
    if (process.env['MAILGATE_KEEP_POSTGRES'] !== '1')
      rmSync(dir, { recursive: true, force: true });
  };

  const [initdb, initArgs] = command(bin, 'initdb', [
    '-D',
    data,
    '--auth=trust',
    '-U',
    POSTGRES_USER,
    '--no-sync',
    '-E',
    'UTF8',
    '--no-locale',
  ]);
  const init = await runIn(dir, initdb, initArgs).catch((error: Error) => {
    remove();
    throw error;
  });
  if (init.code !== 0) {
    remove();
    throw new Error(`initdb failed (exit ${init.code}):\n${init.output}`);
  }

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const [postgres, args] = command(bin, 'postgres', [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'max_connections=200',
    ]);
    let log = '';
    const keep = (chunk: Buffer) => {
      log = (log + chunk.toString('utf8')).slice(-20_000);
    };
    const spawnPostmaster = () => {
      const started = spawn(postgres, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      started.stdout?.on('data', keep);
      started.stderr?.on('data', keep);
      return started;
    };
    let child = spawnPostmaster();
    // If this process dies without stop(), do not leave a postmaster behind.
    const onExit = () => child.kill('SIGQUIT');
    process.once('exit', onExit);
    const url = (database: string) =>
      `postgres://${POSTGRES_USER}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    try {
      await waitReady(url('postgres'), child, () => log);
    } catch (error) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
      process.removeListener('exit', onExit);
      if (attempt < START_TRIES && /could not bind|already in use/i.test(log)) continue;
      remove();
      throw error;
    }

    let stopping: Promise<void> | undefined;
    const shutDown = async () => {
      // SIGINT is PostgreSQL's fast shutdown: sessions are cut, no checkpoint is waited for.
      child.kill('SIGINT');
      if (!(await waitExit(child, STOP_TIMEOUT_MS))) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
      }
    };
    const sql = async (database: string, text: string, params: unknown[] = []) => {
      const client = new pg.Client({ connectionString: url(database) });
      client.on('error', () => {});
      await client.connect();
      try {
        return await client.query(text, params);
      } finally {
        await client.end();
      }
    };
    return {
      port,
      dir,
      url,
      sql,
      async createDatabase(name) {
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
        await sql('postgres', `CREATE DATABASE ${name}`);
        return url(name);
      },
      stop() {
        stopping ??= (async () => {
          await shutDown();
          process.removeListener('exit', onExit);
          remove();
        })();
        return stopping;
      },
      pause: shutDown,
      async resume() {
        if (stopping) throw new Error('postgres: resume() after stop()');
        if (child.exitCode === null && child.signalCode === null) return;
        child = spawnPostmaster();
        await waitReady(url('postgres'), child, () => log);
      },
    };
  }
}
