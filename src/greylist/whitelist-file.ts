/**
 * A whitelist file that follows its changes: used, it looks at the file's status at most once a
 * second (one `stat`, no timer, no watcher) and reads it again when its inode, size or times
 * changed; `reload()` reads it at once (for SIGHUP). A file that disappears keeps its last
 * content, and says so once.
 */
import { readFile, stat } from 'node:fs/promises';
import { systemClock } from '../checks/budget.js';
import type { Clock } from '../dns/types.js';
import { escapeForLog } from '../text/index.js';
import type { GreylistLogger } from './types.js';
import {
  ClientWhitelist,
  formatProblem,
  RecipientWhitelist,
  type WhitelistProblem,
} from './whitelist.js';

/** How a file becomes a list. */
type Parser<L> = (text: string, source: string) => { list: L; problems: WhitelistProblem[] };

export interface WhitelistFileOptions {
  /** The time source for the once-a-second rule. Default: the system clock. */
  clock?: Clock;
  /** Where skipped lines, reloads and a vanished file are reported. */
  logger?: GreylistLogger;
  /** Look at the file's status at most this often, in milliseconds. Default 1000. */
  checkIntervalMs?: number;
}

/**
 * What identifies one version of a file without reading it (device, inode, size, times): files
 * that follow their changes compare it with the last version read.
 *
 * @example
 * if (fileVersion(await stat(path)) !== seen) reread();
 */
export function fileVersion(s: {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/**
 * An error's message, safe for a log line.
 *
 * @example
 * logger.warn({ path, error: errorText(err) }, 'file unreadable');
 */
export function errorText(err: unknown): string {
  return escapeForLog(err instanceof Error ? err.message : String(err));
}

/**
 * One whitelist file and its current content.
 *
 * @example
 * const clients = await WhitelistFile.clients('/etc/mailgate/whitelist_clients', { logger });
 * await clients.refresh();  // cheap: a stat at most once a second
 * clients.list.match(ip, 'mail.example.com');
 * process.on('SIGHUP', () => void clients.reload());
 */
export class WhitelistFile<L> {
  private current: L;
  private currentProblems: WhitelistProblem[];
  private seen: string;
  private lastCheck: number;
  private inFlight: Promise<void> | null = null;
  /** The failure last reported, so that a vanished file is reported once, not on every use. */
  private reportedFailure: string | null = null;
  private readonly clock: Clock;
  private readonly interval: number;

  private constructor(
    /** The file's path, as given. */
    readonly path: string,
    private readonly parser: Parser<L>,
    private readonly options: WhitelistFileOptions,
    first: { list: L; problems: WhitelistProblem[]; identity: string },
  ) {
    this.clock = options.clock ?? systemClock;
    this.interval = options.checkIntervalMs ?? 1000;
    this.current = first.list;
    this.currentProblems = first.problems;
    this.seen = first.identity;
    this.lastCheck = this.clock.now();
  }

  /**
   * Open a `whitelist_clients` file. Rejects, naming the path, when it cannot be read.
   *
   * @example
   * const wl = await WhitelistFile.clients('/etc/mailgate/whitelist_clients');
   */
  static clients(
    path: string,
    options: WhitelistFileOptions = {},
  ): Promise<WhitelistFile<ClientWhitelist>> {
    return WhitelistFile.open(path, ClientWhitelist.parse, options);
  }

  /**
   * Open a `whitelist_recipients` file. Rejects, naming the path, when it cannot be read.
   *
   * @example
   * const wl = await WhitelistFile.recipients('/etc/mailgate/whitelist_recipients');
   */
  static recipients(
    path: string,
    options: WhitelistFileOptions = {},
  ): Promise<WhitelistFile<RecipientWhitelist>> {
    return WhitelistFile.open(path, RecipientWhitelist.parse, options);
  }

  private static async open<L>(
    path: string,
    parser: Parser<L>,
    options: WhitelistFileOptions,
  ): Promise<WhitelistFile<L>> {
    let loaded: { list: L; problems: WhitelistProblem[]; identity: string };
    try {
      loaded = await WhitelistFile.load(path, parser);
    } catch (err) {
      throw new Error(`whitelist file ${escapeForLog(path)}: ${errorText(err)}`, { cause: err });
    }
    const file = new WhitelistFile(path, parser, options, loaded);
    file.reportProblems();
    return file;
  }

  private static async load<L>(
    path: string,
    parser: Parser<L>,
  ): Promise<{ list: L; problems: WhitelistProblem[]; identity: string }> {
    const status = await stat(path);
    if (!status.isFile()) throw new Error('not a regular file');
    const text = await readFile(path, 'utf8');
    return { ...parser(text, path), identity: fileVersion(status) };
  }

  /** The list as last read. */
  get list(): L {
    return this.current;
  }

  /** The lines skipped when the file was last read. */
  get problems(): readonly WhitelistProblem[] {
    return this.currentProblems;
  }

  /**
   * Read the file again when it changed; looks at most once per `checkIntervalMs`, and shares
   * one look between concurrent callers. Never rejects.
   */
  refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const now = this.clock.now();
    // A clock stepped back (now before the last look) must not postpone the next look until it
    // has caught up again.
    if (now >= this.lastCheck && now - this.lastCheck < this.interval) return Promise.resolve();
    this.lastCheck = now;
    const run = this.check(false).then(() => {
      this.inFlight = null;
    });
    this.inFlight = run;
    return run;
  }

  /**
   * Read the file now, changed or not (for SIGHUP). Resolves true when the content was read,
   * false when the file could not be read (its last content stays). Never rejects.
   */
  async reload(): Promise<boolean> {
    if (this.inFlight) await this.inFlight;
    this.lastCheck = this.clock.now();
    const run = this.check(true);
    this.inFlight = run.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await run;
    } finally {
      this.inFlight = null;
    }
  }

  private async check(force: boolean): Promise<boolean> {
    try {
      if (!force) {
        const status = await stat(this.path);
        if (fileVersion(status) === this.seen) {
          this.reportedFailure = null;
          return true;
        }
      }
      const loaded = await WhitelistFile.load(this.path, this.parser);
      this.current = loaded.list;
      this.currentProblems = loaded.problems;
      this.seen = loaded.identity;
      this.reportedFailure = null;
      this.options.logger?.info(
        { path: escapeForLog(this.path), skipped: loaded.problems.length },
        'whitelist reloaded',
      );
      this.reportProblems();
      return true;
    } catch (err) {
      const text = errorText(err);
      if (this.reportedFailure !== text) {
        this.reportedFailure = text;
        this.options.logger?.warn(
          { path: escapeForLog(this.path), error: text },
          'whitelist file unreadable; keeping its last content',
        );
      }
      return false;
    }
  }

  private reportProblems(): void {
    for (const p of this.currentProblems) {
      this.options.logger?.warn({ path: escapeForLog(p.source), line: p.line }, formatProblem(p));
    }
  }
}
