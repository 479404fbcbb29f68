/**
 * The pid file of `mailgate serve --pid-file FILE`: claimed only when no other live process
 * holds it, written whole or not at all, and removed only while it still names this process.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A pid file that cannot be claimed or written; the message is one line for the operator. */
export class PidFileError extends Error {
  override name = 'PidFileError';
}

/** A pid file this process wrote. */
export interface PidFile {
  readonly path: string;
  readonly pid: number;
  /**
   * Removes the file if it still names this process; a file another process wrote over it, or
   * anything but a regular file, is left alone. Synchronous, so that an exit path can call it.
   */
  remove(): void;
}

/**
 * The pid a pid file names: a number, `null` when there is no file, `undefined` when it holds
 * no pid (empty, or not a number), which names no process.
 *
 * @example
 * readPidFile('/run/mailgate/mailgate.pid')  // 4711
 */
export function readPidFile(path: string): number | null | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PidFileError(`cannot read the pid file ${path}: ${causeOf(err)}`);
  }
  const match = /^\s*([0-9]{1,10})\s*$/.exec(text);
  const pid = match ? Number(match[1]) : Number.NaN;
  // 0 and negative numbers stand for process groups to kill(2): never a daemon's pid.
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Whether a process with this pid exists. EPERM means it does, under another user.
 *
 * @example
 * processExists(process.pid)  // true
 */
export function processExists(pid: number): boolean {
  if (!(Number.isSafeInteger(pid) && pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Throws a PidFileError when the file names a live process other than `pid`; a file that
 * names a dead process (left by a crash) or nothing is stale and will be replaced.
 *
 * @example
 * refuseIfHeld('/run/mailgate/mailgate.pid');
 * // PidFileError: pid file /run/mailgate/mailgate.pid names process 4711 (node), which is running: ...
 */
export function refuseIfHeld(path: string, pid = process.pid): void {
  const holder = readPidFile(path);
  if (typeof holder !== 'number' || holder === pid || !processExists(holder)) return;
  const name = commandName(holder);
  throw new PidFileError(
    `pid file ${path} names process ${holder}${name ? ` (${name})` : ''}, which is running: ` +
      'is mailgate already running? Stop it, or remove the file if that process is not mailgate',
  );
}

/**
 * Writes `pid` into `path` through a temporary file in the same directory, renamed over it, so
 * that a reader sees the old file or the whole new one, never a part.
 *
 * @example
 * const pidFile = writePidFile('/run/mailgate/mailgate.pid');
 * process.once('SIGTERM', () => pidFile.remove());
 */
export function writePidFile(path: string, pid = process.pid): PidFile {
  const temporary = join(
    dirname(path),
    `.${basename(path)}.${pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(temporary, 'wx', 0o644);
    writeSync(fd, `${pid}\n`);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // never made, or already renamed
    }
    throw new PidFileError(`cannot write the pid file ${path}: ${causeOf(err)}`);
  }
  return {
    path,
    pid,
    remove() {
      try {
        if (!lstatSync(path).isFile()) return;
        if (readPidFile(path) !== pid) return;
        unlinkSync(path);
      } catch {
        // gone already, or unreadable: either way not ours to touch
      }
    },
  };
}

/** The command name of a process (`/proc/PID/comm`), when this system shows it. */
function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A system error as its description (`no such file or directory`), without the path repeated. */
function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const match = /^[A-Z0-9]+: ([^,]+)/.exec(e.message ?? '');
  return match?.[1] ?? e.code ?? String(err);
}
