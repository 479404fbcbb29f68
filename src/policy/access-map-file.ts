/**
 * An access-map file that follows its changes, like the greylisting whitelists: used, it looks at
 * the file's status at most once a second (one `stat`, no timer, no watcher) and reads it again
 * when its inode, size or times changed; `reload()` reads it at once (for SIGHUP).
 *
 * Unlike a whitelist, a bad access map is never half taken: a file with any problem is refused
 * whole. At start that is an error (the daemon does not run on a policy it cannot read); later the
 * previous map stays and the problems are logged, because a typo in an edit must not silently turn
 * a site's SPF policy back into the defaults.
 */
import { readFile, stat } from 'node:fs/promises';
import { systemClock } from '../checks/budget.js';
import type { SpfResultWord } from '../checks/spf/types.js';
import type { Clock } from '../dns/types.js';
import { errorText, fileVersion } from '../greylist/whitelist-file.js';
import { escapeForLog } from '../text/index.js';
import {
  type AccessMapEntry,
  AccessMapError,
  type AccessMapProblem,
  formatAccessMapProblem,
  SpfAccessMap,
} from './access-map.js';

/** Where reloads and refused versions are reported (the daemon's logger fits). */
export interface AccessMapLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface AccessMapFileOptions {
  /** The time source for the once-a-second rule. Default: the system clock. */
  clock?: Clock;
  logger?: AccessMapLogger;
  /** Look at the file's status at most this often, in milliseconds. Default 1000. */
  checkIntervalMs?: number;
}

/**
 * Largest file read. Access files of many thousand lines are a few megabytes; anything bigger is
 * a mistake (the wrong path, a binary access.db) that should not be read into memory.
 */
export const MAX_ACCESS_FILE_BYTES = 16 * 1024 * 1024;

/** Problems written to the log per refused version; the rest are counted. */
const LOGGED_PROBLEMS = 10;

/** One version of the file: parsed, with its problems, or unreadable. */
type Loaded =
  | { map: SpfAccessMap; problems: AccessMapProblem[]; identity: string }
  | { unreadable: string; identity: string | null };

async function readVersion(path: string): Promise<Loaded> {
  let seen: string | null = null;
  try {
    const status = await stat(path);
    seen = fileVersion(status);
    if (!status.isFile()) return { unreadable: 'not a regular file', identity: seen };
    if (status.size > MAX_ACCESS_FILE_BYTES) {
      return { unreadable: `larger than ${MAX_ACCESS_FILE_BYTES} bytes`, identity: seen };
    }
    const text = await readFile(path, 'utf8');
    return { ...SpfAccessMap.parse(text, path), identity: seen };
  } catch (err) {
    return { unreadable: errorText(err), identity: seen };
  }
}

/**
 * The SPF access map of one file, kept current.
 *
 * @example
 * const access = await AccessMapFile.load('/etc/mail/access', { logger });
 * const entry = await access.lookup('neutral', 'aol.com');  // a stat at most once a second
 * process.on('SIGHUP', () => void access.reload());
 */
export class AccessMapFile {
  private current: SpfAccessMap;
  private seen: string | null;
  private lastCheck: number;
  private inFlight: Promise<unknown> | null = null;
  /** The failure last logged, so that a vanished or broken file is reported once, not each second. */
  private reported: string | null = null;
  private readonly clock: Clock;
  private readonly interval: number;

  private constructor(
    /** The file's path, as given. */
    readonly path: string,
    private readonly options: AccessMapFileOptions,
    map: SpfAccessMap,
    seen: string,
  ) {
    this.clock = options.clock ?? systemClock;
    this.interval = options.checkIntervalMs ?? 1000;
    this.current = map;
    this.seen = seen;
    this.lastCheck = this.clock.now();
  }

  /**
   * Read and parse a file. Rejects when it cannot be read, or with an AccessMapError listing
   * every problem when any line is bad: the daemon refuses to start on it.
   *
   * @example
   * const access = await AccessMapFile.load('/etc/mail/access');
   * access.map.size  // the SPF entries; the file's other keys are not counted
   */
  static async load(path: string, options: AccessMapFileOptions = {}): Promise<AccessMapFile> {
    const loaded = await readVersion(path);
    if ('unreadable' in loaded) {
      throw new Error(`access map ${escapeForLog(path)}: ${loaded.unreadable}`);
    }
    if (loaded.problems.length) throw new AccessMapError(loaded.problems);
    const file = new AccessMapFile(path, options, loaded.map, loaded.identity);
    options.logger?.info(
      { path: escapeForLog(path), entries: loaded.map.size },
      'access map loaded',
    );
    return file;
  }

  /** The map as last accepted. */
  get map(): SpfAccessMap {
    return this.current;
  }

  /**
   * Look a result and sender domain up (see `SpfAccessMap.lookup`), first reading the file again
   * if it changed, looked at no more than once per `checkIntervalMs`.
   *
   * @example
   * (await access.lookup('softfail', 'example.com'))?.action  // { kind: 'CBV' }
   */
  async lookup(
    result: SpfResultWord,
    domain: string | null | undefined,
  ): Promise<AccessMapEntry | undefined> {
    await this.refresh();
    return this.current.lookup(result, domain);
  }

  /**
   * Read the file again when it changed; looks at most once per `checkIntervalMs`, and shares
   * one look between concurrent callers. A changed file that is unreadable or has problems leaves
   * the map as it was, and is logged once. Never rejects.
   */
  async refresh(): Promise<void> {
    if (this.inFlight) {
      await this.inFlight;
      return;
    }
    const now = this.clock.now();
    // A clock stepped back must not postpone the next look until it has caught up again.
    if (now >= this.lastCheck && now - this.lastCheck < this.interval) return;
    this.lastCheck = now;
    await this.run(false);
  }

  /**
   * Read the file now, changed or not (for SIGHUP). Resolves to the problems that kept the new
   * version out, the previous map staying in use; an empty list means the file was taken.
   * Never rejects.
   *
   * @example
   * const problems = await access.reload();
   * if (problems.length) log.warn(formatAccessMapProblem(problems[0]));
   */
  async reload(): Promise<readonly AccessMapProblem[]> {
    while (this.inFlight) await this.inFlight;
    this.lastCheck = this.clock.now();
    return this.run(true);
  }

  private async run(force: boolean): Promise<AccessMapProblem[]> {
    const work = this.check(force);
    this.inFlight = work;
    try {
      return await work;
    } finally {
      this.inFlight = null;
    }
  }

  private async check(force: boolean): Promise<AccessMapProblem[]> {
    if (!force) {
      try {
        if (fileVersion(await stat(this.path)) === this.seen) return [];
      } catch {
        // Read below, which says what is wrong.
      }
    }
    const loaded = await readVersion(this.path);
    const where = escapeForLog(this.path);
    // Remember the version even when it is refused: it is not read again until it changes.
    this.seen = loaded.identity;
    if ('unreadable' in loaded) {
      const problem = { source: this.path, line: 0, text: '', problem: loaded.unreadable };
      this.warnOnce(force, `unreadable:${loaded.unreadable}`, () =>
        this.options.logger?.warn(
          { path: where, error: loaded.unreadable },
          'access map unreadable; keeping the previous map',
        ),
      );
      return [problem];
    }
    if (loaded.problems.length) {
      this.warnOnce(force, `problems:${loaded.identity}`, () => {
        const logger = this.options.logger;
        if (!logger) return;
        logger.warn(
          { path: where, problems: loaded.problems.length },
          'access map has problems; keeping the previous map',
        );
        for (const p of loaded.problems.slice(0, LOGGED_PROBLEMS)) {
          logger.warn({ path: where, line: p.line }, formatAccessMapProblem(p));
        }
      });
      return loaded.problems;
    }
    this.current = loaded.map;
    this.reported = null;
    this.options.logger?.info({ path: where, entries: loaded.map.size }, 'access map reloaded');
    return [];
  }

  /** Warn about a refused version once while it stays, but every time a reload is asked for. */
  private warnOnce(force: boolean, what: string, warn: () => void): void {
    if (!force && this.reported === what) return;
    this.reported = what;
    warn();
  }
}
