/**
 * `mailgate serve`: runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the configuration.
 * `--check` only validates the configuration file.
 */
import type { Command } from 'commander';
import { type Config, ConfigError, configWarnings, loadConfig } from '../config/index.js';
import { Daemon } from '../serve/index.js';
import { UsageError } from './usage.js';

interface ServeOptions {
  config?: string;
  check?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the daemon: the policy server with greylisting (SIGHUP reloads, SIGTERM stops)',
    )
    .option('-c, --config <file>', 'the TOML configuration file (default: built-in defaults)')
    .option('--check', 'check the configuration file and exit (0 good, 2 bad)')
    .action(async (options: ServeOptions) => {
      if (options.check) {
        let config: Config;
        try {
          config = await loadConfig(options.config);
        } catch (err) {
          if (err instanceof ConfigError) throw new UsageError(err.message);
          throw err;
        }
        const where = options.config ?? 'defaults';
        for (const { key, problem } of configWarnings(config)) {
          process.stderr.write(`${where}: warning: ${key}: ${problem}\n`);
        }
        process.stdout.write(`${where}: configuration is valid\n`);
        return;
      }
      await runDaemon(options.config);
    });
}

async function runDaemon(configPath: string | undefined): Promise<void> {
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
    throw err;
  }
  const running = daemon;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal while draining: the operator wants out now.
        running.logger.warn({ signal }, 'stop-forced');
        process.exit(1);
      }
      stopping = true;
      running.logger.info({ signal }, 'stopping');
      void running.close().then(resolve, (err: unknown) => {
        running.logger.error({ err }, 'stop-failed');
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    if (hupDuringStart) reload();
  });
}
