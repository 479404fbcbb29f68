/**
 * Finding and running the real programs the interoperability tests use (Postfix, swaks), and
 * skipping loudly when they are not there.
 *
 * scripts/pretest-debian.sh installs them as root; without root they may be missing, and then the
 * tests that need them skip, naming what is missing — on stderr and in the test report — rather
 * than fail or pass silently.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * What a test may need. `root` because Postfix's master must start as root; `chromium` is
 * Chromium and its chromedriver, for the tests that load generated pages in a browser.
 */
export type Requirement = 'postfix' | 'swaks' | 'root' | 'postgresql' | 'chromium';

/** The lowest Postfix with `maillog_file` (logging without syslog). */
const MIN_POSTFIX = [3, 4] as const;

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** The path of an executable on PATH (or in the sbin directories, which PATH may lack), or undefined. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The installed Postfix version as [major, minor, patch], or undefined when there is none. */
export function postfixVersion(): number[] | undefined {
  const postconf = findProgram('postconf');
  if (!postconf || !findProgram('postfix')) return undefined;
  const run = spawnSync(postconf, ['-d', '-h', 'mail_version'], { encoding: 'utf8' });
  if (run.status !== 0) return undefined;
  return run.stdout.trim().split('.').map(Number);
}

/** Debian installs each PostgreSQL major version's server programs under its own directory. */
const POSTGRES_ROOT = '/usr/lib/postgresql';

/**
 * The bin directory of the newest installed PostgreSQL server (with initdb and postgres), or
 * undefined when there is none. Debian keeps them off PATH.
 *
 * @example
 * postgresBinDir()  // '/usr/lib/postgresql/15/bin'
 */
export function postgresBinDir(): string | undefined {
  let versions: string[];
  try {
    versions = readdirSync(POSTGRES_ROOT).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(POSTGRES_ROOT, version, 'bin');
    try {
      accessSync(join(bin, 'initdb'), constants.X_OK);
      accessSync(join(bin, 'postgres'), constants.X_OK);
      return bin;
    } catch {
      // an incomplete install; try an older one
    }
  }
  return undefined;
}

let cache: Map<Requirement, string | undefined> | undefined;

/** Why a requirement is unmet (e.g. `postfix (not installed)`), or undefined when it is met. */
function unmet(requirement: Requirement): string | undefined {
  cache ??= new Map();
  if (cache.has(requirement)) return cache.get(requirement);
  let why: string | undefined;
  if (requirement === 'root') {
    if (process.getuid?.() !== 0) why = "root (Postfix's master must start as root)";
  } else if (requirement === 'postgresql') {
    if (!postgresBinDir()) why = `postgresql (no initdb and postgres under ${POSTGRES_ROOT}/*/bin)`;
    else if (process.getuid?.() === 0 && !findProgram('setpriv')) {
      why = 'setpriv (util-linux; as root, PostgreSQL runs as nobody through it)';
    }
  } else if (requirement === 'swaks') {
    if (!findProgram('swaks')) why = 'swaks (not installed)';
  } else if (requirement === 'chromium') {
    const lacking = ['chromium', 'chromedriver'].filter((name) => !findProgram(name));
    if (lacking.length > 0) {
      why = `${lacking.join(' and ')} (Debian packages chromium, chromium-driver: not installed)`;
    }
  } else {
    const version = postfixVersion();
    if (!version) why = 'postfix (not installed)';
    else {
      const [major = 0, minor = 0] = version;
      if (major < MIN_POSTFIX[0] || (major === MIN_POSTFIX[0] && minor < MIN_POSTFIX[1])) {
        why = `postfix >= ${MIN_POSTFIX.join('.')} (have ${version.join('.')}; maillog_file is needed)`;
      }
    }
  }
  cache.set(requirement, why);
  return why;
}

/** Every unmet requirement, described; empty when all are met. */
export function missingRequirements(needs: readonly Requirement[]): string[] {
  return needs.map(unmet).filter((why): why is string => why !== undefined);
}

/**
 * Skips the test, loudly, when a requirement is unmet: a line on stderr and `t.skip('missing:
 * ...')` in the report. Returns true when skipped, so the test can return at once.
 *
 * @example
 * test('postfix relays', async (t) => {
 *   if (skipUnlessAvailable(t, ['postfix', 'swaks', 'root'])) return;
 *   ...
 * });
 */
export function skipUnlessAvailable(t: TestContext, needs: readonly Requirement[]): boolean {
  const missing = missingRequirements(needs);
  if (missing.length === 0) return false;
  const message = `missing: ${missing.join(', ')}`;
  console.error(`*** SKIPPED "${t.name}": ${message} — run scripts/pretest-debian.sh as root ***`);
  t.skip(message);
  return true;
}

export interface ProgramRun {
  /** Exit code, or null when killed (by the timeout or a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the timeout killed it. */
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** Default 30 s; then SIGKILL and `timedOut`. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed (at once when there is no input). */
  input?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a program and collects its output. Never rejects for a non-zero exit: the caller looks at
 * `code`. Rejects only when the program cannot be started.
 *
 * @example
 * const run = await runProgram('postconf', ['-d', '-h', 'mail_version']);
 */
export function runProgram(
  command: string,
  args: readonly string[],
  { timeoutMs = 30_000, input, env }: RunOptions = {},
): Promise<ProgramRun> {
  const started = Date.now();
  const path = command.includes('/') ? command : (findProgram(command) ?? command);
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}
