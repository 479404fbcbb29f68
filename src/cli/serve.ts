/**
 * `mailgate serve`: runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the configuration.
 * `--check` only validates the configuration file; `--pid-file` keeps a pid file for as long as
 * the daemon runs.
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { Command } from 'commander';
import { type Config, ConfigError, configWarnings } from '../config/index.js';
import { formatListenSpec, type ListenFailure, SocketPathError } from '../listen/index.js';
import { checkTemplate, loadTemplates } from '../notify/index.js';
import { AccessMapError, AccessMapFile, formatAccessMapProblem } from '../policy/index.js';
import { Daemon } from '../serve/index.js';
import { StoreError } from '../store/index.js';
import { type PidFile, PidFileError, refuseIfHeld, writePidFile } from './pid-file.js';
import { configFromOption } from './services.js';
import { failure, UsageError } from './usage.js';

interface ServeOptions {
  config?: string;
  check?: boolean;
  pidFile?: string;
}

/**
 * Registers `mailgate serve [--config FILE] [--check] [--pid-file FILE]`.
 *
 * @example
 * registerServeCommand(program);
 * // mailgate serve --config /etc/mailgate/mailgate.toml --pid-file /run/mailgate/mailgate.pid
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the daemon: the milter and the policy server (SIGHUP reloads, SIGTERM stops)')
    .option('-c, --config <file>', 'the TOML configuration file (default: built-in defaults)')
    .option(
      '--check',
      'check the configuration file, its access map and DSN templates, and exit (0 good, 2 bad)',
    )
    .option(
      '--pid-file <file>',
      'write the process id to this file once listening, and remove it at exit',
    )
    .action(async (options: ServeOptions) => {
      if (options.check) {
        const config = await configFromOption(options.config);
        const where = options.config ?? 'defaults';
        await checkFiles(config);
        for (const { key, problem } of configWarnings(config)) {
          process.stderr.write(`${where}: warning: ${key}: ${problem}\n`);
        }
        process.stdout.write(`${where}: configuration is valid\n`);
        return;
      }
      await runDaemon(options.config, options.pidFile);
    });
}

/**
 * The files the configuration names are checked as the daemon would read them: the access map
 * (every bad line), the DSN templates (a bad file is an error; unknown placeholders and ignored
 * header fields are warnings).
 */
async function checkFiles(config: Config): Promise<void> {
  if (config.spf.access_file) {
    try {
      await AccessMapFile.load(config.spf.access_file);
    } catch (err) {
      if (err instanceof AccessMapError) {
        throw new UsageError(err.problems.map(formatAccessMapProblem).join('\n'));
      }
      throw new UsageError(`spf.access_file: ${(err as Error).message}`);
    }
  }
  if (config.cbv.enabled) {
    let templates: Awaited<ReturnType<typeof loadTemplates>>;
    try {
      templates = await loadTemplates(config.cbv.templates);
    } catch (err) {
      throw new UsageError(`cbv.templates: ${(err as Error).message}`);
    }
    for (const template of Object.values(templates)) {
      for (const problem of checkTemplate(template)) {
        process.stderr.write(`${problem.source}: warning: ${problem.detail}\n`);
      }
    }
  }
}

async function runDaemon(
  configPath: string | undefined,
  pidPath: string | undefined,
): Promise<void> {
  // Before anything listens: a second daemon on the same pid file is refused with the reason,
  // not with the address-in-use failure it would otherwise meet.
  if (pidPath !== undefined) refuseIfPidFileHeld(pidPath);
  // One SIGHUP listener for the whole run: while none is registered, the signal's default action
  // (terminate) applies, so the listener is never swapped. During start-up (logrotate, an eager
  // operator) a SIGHUP is remembered and served once the daemon runs.
  let daemon: Daemon | undefined;
  let hupDuringStart = false;
  const reload = () => {
    if (!daemon) {
      hupDuringStart = true;
      return;
    }
    daemon.logger.info({ signal: 'SIGHUP' }, 'reloading');
    void daemon.reload();
  };
  process.on('SIGHUP', reload);
  try {
    daemon = await Daemon.start(configPath === undefined ? {} : { configPath });
  } catch (err) {
    process.off('SIGHUP', reload);
    if (err instanceof ConfigError) throw new UsageError(err.message);
    const listen = describeListenFailure(err);
    if (listen !== undefined) throw failure(listen);
    // The daemon logged it (store-open-failed, with the stack): one line here is enough.
    if (err instanceof StoreError) throw failure(err.message);
    throw err;
  }
  const running = daemon;
  // Written once the doors listen, so that the file names a process that serves.
  let pidFile: PidFile | undefined;
  if (pidPath !== undefined) {
    try {
      pidFile = writePidFile(pidPath);
    } catch (err) {
      process.off('SIGHUP', reload);
      await running.close();
      throw err instanceof PidFileError ? failure(err.message) : err;
    }
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal while draining: the operator wants out now.
        running.logger.warn({ signal }, 'stop-forced');
        pidFile?.remove();
        process.exit(1);
      }
      stopping = true;
      running.logger.info({ signal }, 'stopping');
      const done = () => {
        pidFile?.remove();
        resolve();
      };
      void running.close().then(done, (err: unknown) => {
        running.logger.error({ err }, 'stop-failed');
        done();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    if (hupDuringStart) reload();
  });
}

/** Refuses, with the pid file's own reason, when another live process holds the file. */
function refuseIfPidFileHeld(pidPath: string): void {
  try {
    refuseIfHeld(pidPath);
  } catch (err) {
    throw err instanceof PidFileError ? failure(err.message) : err;
  }
}

/**
 * One line for an address the daemon could not listen on — which address, and why in words an
 * operator acts on — or undefined when `err` is not such a failure.
 *
 * @example
 * describeListenFailure(err)  // 'cannot listen on inet:10028@127.0.0.1: address in use'
 */
export function describeListenFailure(err: unknown): string | undefined {
  if (err instanceof SocketPathError) return `cannot listen: ${err.message}`;
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  // removeStaleSocket looks at the path first, and the mode is set after binding.
  if ((e.syscall === 'lstat' || e.syscall === 'chmod') && typeof e.path === 'string') {
    const what = e.syscall === 'chmod' ? 'cannot set its socket_mode: ' : '';
    return `cannot listen on unix:${e.path}: ${what}${systemCause(e)}`;
  }
  // Only listen(2) failures: a store's connect or lookup failing at start is another story.
  if (e.syscall !== 'listen' || typeof e.address !== 'string') return undefined;
  // A unix socket's error names its path where a TCP one names an IP address.
  const family = isIP(e.address);
  if (family === 0) return `cannot listen on unix:${e.address}: ${unixCause(e, e.address)}`;
  const kind = family === 6 ? 'inet6' : 'inet';
  const spec =
    (err as ListenFailure).listenSpec ??
    formatListenSpec({ kind, host: e.address, port: e.port ?? 0 });
  return `cannot listen on ${spec}: ${inetCause(e, e.port ?? 0)}`;
}

function inetCause(e: NodeJS.ErrnoException, port: number): string {
  switch (e.code) {
    case 'EADDRINUSE':
      return 'address in use';
    case 'EADDRNOTAVAIL':
      return 'no interface of this host has that address';
    case 'EACCES':
      return port > 0 && port < 1024
        ? 'permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)'
        : 'permission denied';
    default:
      return systemCause(e);
  }
}

function unixCause(e: NodeJS.ErrnoException, path: string): string {
  const dir = dirname(path);
  switch (e.code) {
    case 'EADDRINUSE':
      return 'address in use';
    case 'ENOENT':
    case 'EACCES':
      // libuv reports a missing directory as EACCES.
      if (!existsSync(dir)) return `the directory ${dir} does not exist`;
      return `permission denied (this user cannot create files in ${dir})`;
    case 'EROFS':
      return `read-only file system (under systemd's ProtectSystem=strict, ${dir} must be in ReadWritePaths)`;
    default:
      return systemCause(e);
  }
}

/** The system's words for an error number (`address already in use`), else its code. */
function systemCause(e: NodeJS.ErrnoException): string {
  const described = e.errno === undefined ? undefined : getSystemErrorMap().get(e.errno)?.[1];
  return described ?? e.code ?? e.message;
}
